package recompute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/awstest"
	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

var (
	created = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	at      = time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)
	quiet   = slog.New(slog.NewJSONHandler(io.Discard, nil))
)

// scheduled is the event an EventBridge schedule delivers, as Lambda receives it.
func scheduled(t time.Time) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event",
"source":"aws.events","account":"123456789012","time":%q,"region":"us-east-1",
"resources":["arn:aws:events:us-east-1:123456789012:rule/churnsignal-recompute"],"detail":{}}`, t.Format(time.RFC3339)))
}

// receive takes every message off the queue and returns them as the SQS event Lambda would
// deliver, one record each.
func receive(t *testing.T, client *sqs.Client, url string) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	for {
		r, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			rec := map[string]any{"messageId": aws.ToString(m.MessageId), "receiptHandle": aws.ToString(m.ReceiptHandle),
				"body": aws.ToString(m.Body), "attributes": m.Attributes, "messageAttributes": map[string]any{},
				"md5OfBody": aws.ToString(m.MD5OfBody), "eventSource": "aws:sqs",
				"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:churnsignal-recompute", "awsRegion": "us-east-1"}
			raw, err := json.Marshal(map[string]any{"Records": []any{rec}})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, raw)
			client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

func newQueue(t *testing.T, client *sqs.Client) string {
	t.Helper()
	q, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name("churnsignal-recompute"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })
	return aws.ToString(q.QueueUrl)
}

func TestAScheduledEventFansOutOneJobPerShardAndEachJobRescoresItsShard(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(cfg)
	table := awstest.Name("churnsignal-recompute")
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}) })
	st := dynamo.New(db, table, dynamo.WithClock(func() time.Time { return at }))
	ids := []string{"acme", "globex", "initech", "umbrella", "hooli", "soylent", "vandelay", "wayne"}
	for _, id := range ids {
		if err := st.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: account.New(id, created)}}}); err != nil {
			t.Fatal(err)
		}
	}
	client := sqs.NewFromConfig(cfg)
	f := &Fanout{Service: &ingest.Service{Store: st, Scorecard: score.Default(), Log: quiet}, SQS: client,
		QueueURL: newQueue(t, client), Shards: 4, Log: quiet}

	if _, err := f.Invoke(ctx, scheduled(at)); err != nil {
		t.Fatal(err)
	}
	batches := receive(t, client, f.QueueURL)
	var shards []int
	for _, b := range batches {
		var ev events.SQSEvent
		json.Unmarshal(b, &ev)
		var j Job
		json.Unmarshal([]byte(ev.Records[0].Body), &j)
		if j.Shards != 4 || j.Cursor != "" || !j.At.Equal(at) {
			t.Errorf("job %+v, want one of 4 shards from the start, as of the schedule's time %s", j, at)
		}
		shards = append(shards, j.Shard)
	}
	slices.Sort(shards)
	if !slices.Equal(shards, []int{0, 1, 2, 3}) {
		t.Fatalf("the schedule enqueued jobs for shards %v, want 0..3 once each", shards)
	}

	for _, b := range batches {
		resp, err := f.Invoke(ctx, b)
		if err != nil || len(resp.(events.SQSEventResponse).BatchItemFailures) != 0 {
			t.Fatalf("job failed: %+v, %v", resp, err)
		}
	}
	versions := map[string]int64{}
	for _, id := range ids {
		a, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a.Health.Band == "" || a.Version != 2 {
			t.Errorf("%s: version %d, band %q; want every account rescored once (version 2)", id, a.Version, a.Health.Band)
		}
		versions[id] = a.Version
	}
	if rest := receive(t, client, f.QueueURL); len(rest) != 0 {
		t.Errorf("%d continuations enqueued for shards that finished", len(rest))
	}

	// A second run as of the same time changes nothing, so it writes nothing.
	if _, err := f.Invoke(ctx, scheduled(at)); err != nil {
		t.Fatal(err)
	}
	for _, b := range receive(t, client, f.QueueURL) {
		if _, err := f.Invoke(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if a, _ := st.Get(ctx, id); a.Version != versions[id] {
			t.Errorf("%s was written again (version %d) although its health did not change", id, a.Version)
		}
	}
}

func TestAJobThatRunsOutOfBudgetEnqueuesTheRestOfItsShard(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := range 150 { // more than one scan page of 100
		if err := st.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: account.New(fmt.Sprintf("acct-%03d", i), created)}}}); err != nil {
			t.Fatal(err)
		}
	}
	client := sqs.NewFromConfig(cfg)
	f := &Fanout{Service: &ingest.Service{Store: st, Scorecard: score.Default(), Log: quiet}, SQS: client,
		QueueURL: newQueue(t, client), Shards: 1, Budget: time.Nanosecond, Log: quiet}
	if err := f.Start(ctx, at); err != nil {
		t.Fatal(err)
	}
	first := receive(t, client, f.QueueURL)
	if len(first) != 1 {
		t.Fatalf("%d jobs for one shard", len(first))
	}
	if _, err := f.Invoke(ctx, first[0]); err != nil {
		t.Fatal(err)
	}
	next := receive(t, client, f.QueueURL)
	if len(next) != 1 {
		t.Fatalf("%d continuations after the budget ended, want 1", len(next))
	}
	var ev events.SQSEvent
	json.Unmarshal(next[0], &ev)
	var j Job
	json.Unmarshal([]byte(ev.Records[0].Body), &j)
	if j.Cursor == "" || j.Shard != 0 || j.Shards != 1 || !j.At.Equal(at) {
		t.Fatalf("continuation %+v, want shard 0 of 1 as of %s from a cursor", j, at)
	}
	if _, err := f.Invoke(ctx, next[0]); err != nil {
		t.Fatal(err)
	}
	if rest := receive(t, client, f.QueueURL); len(rest) != 0 {
		t.Errorf("%d more continuations after the shard's end", len(rest))
	}
	for i := range 150 {
		if a, _ := st.Get(ctx, fmt.Sprintf("acct-%03d", i)); a.Health.Band == "" {
			t.Fatalf("acct-%03d was never rescored", i)
		}
	}
}

// sqsFunc is a fake SQS.
type sqsFunc func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)

func (f sqsFunc) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return f(in)
}

func record(id, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: body, EventSource: "aws:sqs"}
}

func TestFailingJobsAreReportedAsBatchItemFailures(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := range 150 {
		st.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: account.New(fmt.Sprintf("acct-%03d", i), created)}}})
	}
	down := sqsFunc(func(*sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return nil, errors.New("connection refused")
	})
	up := sqsFunc(func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return &sqs.SendMessageBatchOutput{}, nil
	})
	job := func(j Job) string { b, _ := json.Marshal(j); return string(b) }
	tests := []struct {
		name   string
		sqs    SQSClient
		budget time.Duration
		body   string
		failed bool
	}{
		{"a job that finishes its shard is done", down, 0, job(Job{Shard: 0, Shards: 2, At: at}), false},
		{"a job whose continuation could not be enqueued is retried", down, time.Nanosecond, job(Job{Shard: 0, Shards: 1, At: at}), true},
		{"a job whose continuation was enqueued is done", up, time.Nanosecond, job(Job{Shard: 0, Shards: 1, At: at}), false},
		{"a body that is not a job", up, 0, `{"shard":`, true},
		{"a shard count that does not divide 256", up, 0, job(Job{Shard: 0, Shards: 3, At: at}), true},
		{"a shard outside the fan-out", up, 0, job(Job{Shard: 4, Shards: 4, At: at}), true},
		{"a cursor that is not one", up, 0, job(Job{Shard: 0, Shards: 1, Cursor: "garbage", At: at}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Fanout{Service: &ingest.Service{Store: st, Scorecard: score.Default(), Log: quiet}, SQS: tt.sqs, QueueURL: "q", Budget: tt.budget, Log: quiet}
			resp, err := f.Work(ctx, events.SQSEvent{Records: []events.SQSMessage{record("m1", tt.body), record("m2", job(Job{Shard: 1, Shards: 2, At: at}))}})
			if err != nil {
				t.Fatal(err)
			}
			want := []events.SQSBatchItemFailure(nil)
			if tt.failed {
				want = []events.SQSBatchItemFailure{{ItemIdentifier: "m1"}}
			}
			if !slices.Equal(resp.BatchItemFailures, want) {
				t.Errorf("failures %+v, want %+v (the good job m2 is never reported)", resp.BatchItemFailures, want)
			}
		})
	}
}

func TestAScheduleThatCannotEnqueueFailsTheInvocationSoItIsRetried(t *testing.T) {
	calls := 0
	f := &Fanout{SQS: sqsFunc(func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		calls++
		if len(in.Entries) > 10 {
			t.Errorf("a batch of %d entries; SQS takes 10", len(in.Entries))
		}
		out := &sqs.SendMessageBatchOutput{}
		if calls == 2 {
			out.Failed = []sqstypes.BatchResultErrorEntry{{Id: in.Entries[0].Id, Code: aws.String("InternalError"), SenderFault: false}}
		}
		return out, nil
	}), QueueURL: "q", Shards: 16, Log: quiet}
	if _, err := f.Invoke(context.Background(), scheduled(at)); err == nil {
		t.Error("a job SQS refused did not fail the scheduled invocation")
	}
	if calls != 2 {
		t.Errorf("%d SendMessageBatch calls for 16 shards, want 2", calls)
	}
}

func TestShardCountsMustDivideTheFixedShards(t *testing.T) {
	for _, tt := range []struct {
		n  int
		ok bool
	}{{1, true}, {16, true}, {256, true}, {0, false}, {3, false}, {512, false}} {
		if err := ValidShards(tt.n); (err == nil) != tt.ok {
			t.Errorf("ValidShards(%d) = %v, want ok=%v", tt.n, err, tt.ok)
		}
	}
}
