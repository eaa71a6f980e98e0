package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// MaxEnvelopeBytes bounds the encoded size of one envelope: SQS takes messages up to 256 KiB,
// and a request's accepted messages are split into as few envelopes as fit under it.
const MaxEnvelopeBytes = 240 << 10

// AcceptResult is what the product webhook answers when it queues messages instead of
// applying them (on AWS): 202 with what was accepted and what was not, and why.
type AcceptResult struct {
	Accepted int            `json:"accepted"`
	Rejected int            `json:"rejected"`
	Ignored  int            `json:"ignored"`
	Errors   []MessageError `json:"errors"`
}

// Accept validates a request's messages received at now and packs the accepted ones into
// envelopes for the queue; the consumer applies them later with Queued. A message is rejected
// here for the reasons Product would reject it, so the sender learns at once; messages of
// types that are not applied (alias) are acknowledged as ignored and not queued.
func Accept(raws []json.RawMessage, now time.Time) ([]Envelope, AcceptResult) {
	res := AcceptResult{Errors: []MessageError{}}
	var envs []Envelope
	cur := Envelope{Received: now.UTC()}
	size := 64
	for i, raw := range raws {
		_, _, v, notes := read(i, raw, now)
		res.Errors = append(res.Errors, notes...)
		switch v {
		case ignored:
			res.Ignored++
			continue
		case rejected:
			res.Rejected++
			continue
		}
		raw = withoutWriteKey(raw)
		if len(raw)+64 > MaxEnvelopeBytes {
			res.Rejected++
			res.Errors = append(res.Errors, MessageError{Index: i, Error: fmt.Sprintf("message of %d bytes is over the %d bytes a queued message may have", len(raw), MaxEnvelopeBytes-64)})
			continue
		}
		if len(cur.Messages) > 0 && size+len(raw)+1 > MaxEnvelopeBytes {
			envs = append(envs, cur)
			cur, size = Envelope{Received: now.UTC()}, 64
		}
		cur.Messages = append(cur.Messages, raw)
		size += len(raw) + 1
		res.Accepted++
	}
	if len(cur.Messages) > 0 {
		envs = append(envs, cur)
	}
	return envs, res
}

// Encode writes an envelope as a queue message body: JSON without HTML escaping, so a message
// takes no more bytes than Accept counted for it (json.Marshal would turn each <, > and & into
// six bytes and could push an envelope over SQS's limit).
func (e Envelope) Encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
