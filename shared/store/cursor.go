package store

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
)

// cursorVersion is the first byte of every cursor, so the format can change without an old
// cursor being misread.
const cursorVersion = 1

// EncodeCursor wraps an adapter's position (a key to resume after) in an opaque cursor bound
// to scope, which names the query the position belongs to (its band, segment, shard…). The
// cursor is base64url of a version byte, the position and a CRC-32 of version, scope and
// position: it is opaque to callers, and one that was altered or that belongs to another
// query is refused by DecodeCursor.
func EncodeCursor(scope string, pos []byte) string {
	b := append([]byte{cursorVersion}, pos...)
	b = binary.BigEndian.AppendUint32(b, cursorSum(scope, b))
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor returns the position EncodeCursor wrapped for the same scope, or
// ErrInvalidCursor.
func DecodeCursor(scope, cursor string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 1+4 || b[0] != cursorVersion {
		return nil, ErrInvalidCursor
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if cursorSum(scope, body) != sum {
		return nil, ErrInvalidCursor
	}
	return body[1:], nil
}

func cursorSum(scope string, body []byte) uint32 {
	h := crc32.NewIEEE()
	h.Write(body[:1])
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write(body[1:])
	return h.Sum32()
}
