package account

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"
)

// The account item is billed by size on every write, so its lists of numbers are stored as
// compact strings (base64 of unsigned varints) rather than as JSON arrays of objects. Each
// decoder also reads what earlier versions wrote, so an existing data file still opens.

var errCompact = errors.New("account: bad compact encoding")

// DayCounts are counts per UTC day, ascending by day. They encode as base64 of uvarints: the
// first day and its count, then for each further day the gap from the previous day and the
// count. A month of daily counts takes about a hundred bytes.
type DayCounts []DayCount

// MarshalJSON implements json.Marshaler.
func (ds DayCounts) MarshalJSON() ([]byte, error) {
	var buf []byte
	prev := int32(0)
	for i, d := range ds {
		if i == 0 {
			buf = binary.AppendUvarint(buf, uint64(uint32(d.Day)))
		} else {
			buf = binary.AppendUvarint(buf, uint64(uint32(d.Day-prev)))
		}
		buf = binary.AppendUvarint(buf, uint64(max(d.Events, 0)))
		prev = d.Day
	}
	return json.Marshal(base64.RawStdEncoding.EncodeToString(buf))
}

// UnmarshalJSON reads the compact string, or the earlier array of {"d","n"} objects.
func (ds *DayCounts) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' {
		var old []DayCount
		if err := json.Unmarshal(b, &old); err != nil {
			return err
		}
		*ds = old
		return nil
	}
	buf, err := decode64(b)
	if err != nil {
		return err
	}
	var out DayCounts
	var day int32
	for len(buf) > 0 {
		d, n := binary.Uvarint(buf)
		if n <= 0 || d > 1<<32-1 {
			return errCompact
		}
		buf = buf[n:]
		c, n := binary.Uvarint(buf)
		if n <= 0 || c > 1<<31-1 {
			return errCompact
		}
		buf = buf[n:]
		if len(out) == 0 {
			day = int32(uint32(d))
		} else {
			if d == 0 {
				return errCompact
			}
			day += int32(uint32(d))
		}
		out = append(out, DayCount{Day: day, Events: int(c)})
	}
	*ds = out
	return nil
}

// Points are the recent daily health points, ascending by day. They encode as base64 of: the
// first day (uvarint), then per point the gap from the previous day (uvarint, 0 for the
// first), the score (uvarint) and the band (one byte: 0 none, 1 GOOD, 2 NORMAL, 3 BAD).
type Points []Point

var bandCodes = []string{"", BandGood, BandNormal, BandBad}

// MarshalJSON implements json.Marshaler.
func (ps Points) MarshalJSON() ([]byte, error) {
	var buf []byte
	if len(ps) > 0 {
		buf = binary.AppendUvarint(buf, uint64(uint32(ps[0].Day)))
	}
	prev := int32(0)
	for i, p := range ps {
		gap := uint32(0)
		if i > 0 {
			gap = uint32(p.Day - prev)
		}
		code := byte(0)
		for c, b := range bandCodes {
			if b == p.Band {
				code = byte(c)
			}
		}
		buf = binary.AppendUvarint(buf, uint64(gap))
		buf = binary.AppendUvarint(buf, uint64(max(p.Score, 0)))
		buf = append(buf, code)
		prev = p.Day
	}
	return json.Marshal(base64.RawStdEncoding.EncodeToString(buf))
}

// UnmarshalJSON reads the compact string, or the earlier array of {"d","s","b"} objects.
func (ps *Points) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' {
		var old []Point
		if err := json.Unmarshal(b, &old); err != nil {
			return err
		}
		*ps = old
		return nil
	}
	buf, err := decode64(b)
	if err != nil {
		return err
	}
	var out Points
	if len(buf) > 0 {
		first, n := binary.Uvarint(buf)
		if n <= 0 || first > 1<<32-1 {
			return errCompact
		}
		buf = buf[n:]
		day := int32(uint32(first))
		for len(buf) > 0 {
			gap, n := binary.Uvarint(buf)
			if n <= 0 || gap > 1<<32-1 {
				return errCompact
			}
			buf = buf[n:]
			s, n := binary.Uvarint(buf)
			if n <= 0 || s > 1<<31-1 || len(buf) < n+1 || int(buf[n]) >= len(bandCodes) {
				return errCompact
			}
			day += int32(uint32(gap))
			out = append(out, Point{Day: day, Score: int(s), Band: bandCodes[buf[n]]})
			buf = buf[n+1:]
		}
	}
	*ps = out
	return nil
}

// MarshalJSON encodes a feature's use as [first, last, count], times in unix seconds.
func (f Feature) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]int64{unixOrZero(f.First), unixOrZero(f.Last), int64(f.Count)})
}

// UnmarshalJSON reads [first, last, count], or the earlier {"first","last","count"} object.
func (f *Feature) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		type plain Feature
		var old plain
		if err := json.Unmarshal(b, &old); err != nil {
			return err
		}
		*f = Feature(old)
		return nil
	}
	var v [3]int64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Feature{First: fromUnix(v[0]), Last: fromUnix(v[1]), Count: int(v[2])}
	return nil
}

// Moments are named times (onboarding milestones), encoded as unix seconds by name.
type Moments map[string]time.Time

// MarshalJSON implements json.Marshaler.
func (m Moments) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	out := make(map[string]int64, len(m))
	for k, t := range m {
		out[k] = unixOrZero(t)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads unix seconds, or the earlier RFC 3339 strings, by name.
func (m *Moments) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*m = nil
		return nil
	}
	out := make(Moments, len(raw))
	for k, v := range raw {
		var t time.Time
		if len(v) > 0 && v[0] == '"' {
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
		} else {
			var s int64
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			t = fromUnix(s)
		}
		out[k] = t.UTC()
	}
	*m = out
	return nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func decode64(b []byte) ([]byte, error) {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	buf, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, errCompact
	}
	return buf, nil
}
