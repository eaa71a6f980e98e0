package queue

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/churnsignal/churnsignal/shared/awstest"
	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// refusing fails commits to one account, as a store outage limited to it would.
type refusing struct {
	store.Store
	account string
}

func (r *refusing) Commit(ctx context.Context, tx store.Tx) error {
	for _, p := range tx.Accounts {
		if p.Account.ID == r.account {
			return errors.New("i/o timeout")
		}
	}
	return r.Store.Commit(ctx, tx)
}

func message(id, acct string) json.RawMessage {
	return json.RawMessage(`{"type":"track","messageId":"` + id + `","userId":"u","event":"Signed In","timestamp":"2026-11-20T11:00:00Z","context":{"groupId":"` + acct + `"}}`)
}

func TestEnvelopesTravelThroughSQSAndFailuresAreReportedPerRecord(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	client := sqs.NewFromConfig(cfg)
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name("churnsignal-product"))})
	if err != nil {
		t.Fatal(err)
	}
	queue := NewSQS(client, *q.QueueUrl)
	for _, e := range []ingest.Envelope{
		{Received: now, Messages: []json.RawMessage{message("a1", "acme"), message("a2", "acme")}},
		{Received: now, Messages: []json.RawMessage{message("g1", "globex")}},
	} {
		if err := queue.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil || len(out.Messages) != 2 {
		t.Fatalf("received %d, %v; want the 2 envelopes", len(out.Messages), err)
	}
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "poison", Body: `{"not":"an envelope"}`}}}
	globexRecord := ""
	for _, m := range out.Messages {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: *m.MessageId, Body: *m.Body})
		var e ingest.Envelope
		json.Unmarshal([]byte(*m.Body), &e)
		if len(e.Messages) == 1 {
			globexRecord = *m.MessageId
		}
	}
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := &ingest.Service{Store: &refusing{Store: st, account: "globex"}, Scorecard: score.Default()}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	resp := Consume(ctx, svc, ev, log)
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if len(failed) != 2 || failed[0] != "poison" || failed[1] != globexRecord {
		t.Fatalf("batch item failures %v, want the poison record and globex's", failed)
	}
	a, err := st.Get(ctx, "acme")
	if err != nil || a.Usage.EventsBetween(0, 1<<30) != 2 {
		t.Fatalf("acme after the batch: %v", err)
	}
	// SQS redelivers only the failed records; the store is back.
	svc.Store = st
	var again events.SQSEvent
	for _, r := range ev.Records {
		if r.MessageId == globexRecord {
			again.Records = append(again.Records, r)
		}
	}
	resp = Consume(ctx, svc, again, log)
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("redelivery failed again: %v", resp.BatchItemFailures)
	}
	if g, err := st.Get(ctx, "globex"); err != nil || g.Usage.EventsBetween(0, 1<<30) != 1 {
		t.Errorf("globex after the redelivery: %v", err)
	}
}

func TestABatchOutOfTimeReportsWhatItCouldNotCommit(t *testing.T) {
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := &ingest.Service{Store: st, Scorecard: score.Default()}
	env, _ := ingest.Envelope{Received: now, Messages: []json.RawMessage{message("late-1", "acme")}}.Encode()
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "r1", Body: string(env)}}}
	// The invocation has less time left than the margin: nothing may be written.
	ctx, cancel := context.WithTimeout(context.Background(), DeadlineMargin/2)
	defer cancel()
	resp := Consume(ctx, svc, ev, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "r1" {
		t.Fatalf("batch item failures %v, want r1 reported for redelivery", resp.BatchItemFailures)
	}
	if _, err := st.Get(context.Background(), "acme"); err == nil {
		t.Error("a write happened after the deadline margin")
	}
}
