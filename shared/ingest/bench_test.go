package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// messages returns n track messages for one account, with ids unique to round.
func messages(round, n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = json.RawMessage(fmt.Sprintf(`{"type":"track","messageId":"r%d-m%d","userId":"u%d","event":"Report Created","timestamp":%q,"context":{"groupId":"busy"}}`,
			round, i, i%25, now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339)))
	}
	return out
}

// BenchmarkProductBatched applies 100 messages for one account as one request: a few
// commits (one per 30 messages), one rescore.
func BenchmarkProductBatched(b *testing.B) {
	svc, _ := newService(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Product(ctx, messages(i, 100), now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProductOneByOne is the baseline: the same 100 messages as 100 requests.
func BenchmarkProductOneByOne(b *testing.B) {
	svc, _ := newService(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		for _, m := range messages(i, 100) {
			if _, err := svc.Product(ctx, []json.RawMessage{m}, now); err != nil {
				b.Fatal(err)
			}
		}
	}
}
