package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

// memQueue is an in-process queue: what the webhook enqueues, for the test to deliver.
type memQueue struct {
	envs []ingest.Envelope
	fail error
}

func (q *memQueue) Enqueue(_ context.Context, e ingest.Envelope) error {
	if q.fail != nil {
		return q.fail
	}
	q.envs = append(q.envs, e)
	return nil
}

func TestOnAWSTheProductWebhookQueuesAndAnswers202(t *testing.T) {
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return sampleNow }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := &ingest.Service{Store: st, Scorecard: score.Default()}
	q := &memQueue{}
	srv := httptest.NewServer(New(Config{Service: svc, Store: st, ProductSecret: productSecret, APIToken: apiToken, Queue: q,
		Now: func() time.Time { return sampleNow }, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}))
	defer srv.Close()
	h := &harness{t: t, srv: srv, st: st, now: sampleNow}

	body := `{"writeKey":"` + productSecret + `","batch":[
		{"type":"track","messageId":"q-1","userId":"u1","event":"Report Created","timestamp":"2026-11-20T10:00:00Z","context":{"groupId":"acme"}},
		{"type":"track","messageId":"q-2","userId":"u1","timestamp":"2026-11-20T10:01:00Z"},
		{"type":"alias","messageId":"q-3","userId":"u1","previousId":"x"}]}`
	code, m := h.post("/webhooks/product", []byte(body), nil)
	if code != http.StatusAccepted || m["accepted"] != 1.0 || m["rejected"] != 1.0 || m["ignored"] != 1.0 {
		t.Fatalf("%d %v, want 202 with 1 accepted, 1 rejected (no event), 1 ignored (alias)", code, m)
	}
	if len(q.envs) != 1 || len(q.envs[0].Messages) != 1 || strings.Contains(string(q.envs[0].Messages[0]), productSecret) {
		t.Fatalf("queued %+v, want one envelope with the one accepted message and no secret", q.envs)
	}
	if _, err := st.Get(context.Background(), "acme"); err == nil {
		t.Fatal("a queued message was applied before the consumer ran")
	}
	// The consumer applies the batch; a redelivery of it changes nothing.
	for i, want := range []int{1, 0} {
		res, failed, err := svc.Queued(context.Background(), q.envs)
		if err != nil || len(failed) != 0 || res.Applied != want {
			t.Fatalf("delivery %d: applied %d failed %v %v, want %d", i, res.Applied, failed, err, want)
		}
	}
	if got := path(h.account("acme"), "usage", "events_30d"); got != 1.0 {
		t.Errorf("events_30d %v, want 1", got)
	}

	// A big request is split into envelopes under SQS's 256 KiB.
	var msgs []string
	for i := 0; i < 400; i++ {
		msgs = append(msgs, fmt.Sprintf(`{"type":"track","messageId":"big-%d","userId":"u1","event":"E","properties":{"pad":%q},"context":{"groupId":"acme"}}`, i, strings.Repeat("p", 1000)))
	}
	q.envs = nil
	if code, m := h.product([]byte("[" + strings.Join(msgs, ",") + "]")); code != http.StatusAccepted || m["accepted"] != 400.0 {
		t.Fatalf("big request: %d %v", code, m)
	}
	n := 0
	for _, e := range q.envs {
		size := 0
		for _, raw := range e.Messages {
			size += len(raw)
		}
		if size > ingest.MaxEnvelopeBytes {
			t.Errorf("an envelope holds %d bytes", size)
		}
		n += len(e.Messages)
	}
	if len(q.envs) < 2 || n != 400 {
		t.Errorf("%d envelopes holding %d messages, want several holding 400", len(q.envs), n)
	}

	// A queue that refuses: the sender is told to retry.
	q.fail = errors.New("throttled")
	if code, _ := h.product([]byte(`{"type":"track","messageId":"q-9","userId":"u1","event":"E","context":{"groupId":"acme"}}`)); code != http.StatusServiceUnavailable {
		t.Errorf("an unavailable queue answered %d, want 503", code)
	}
}
