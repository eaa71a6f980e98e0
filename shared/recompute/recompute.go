// Package recompute fans the scheduled rescoring of every account out over an SQS queue (the
// recompute function on AWS): the schedule enqueues one job per shard of the accounts, and a
// worker rescores its shard within a time budget, enqueuing the rest of the shard as a new job
// when the budget ends.
//
// Sizing, for 1M accounts: DefaultShards = 16 jobs of about 62,500 accounts each. A shard is
// read in pages of 100 (a query of the KEYS_ONLY shard index, then one BatchGetItem: about 20–40
// ms a page, so about 25 s for the shard), scoring is microseconds an account, and only
// accounts whose health changed are written (a transaction of about 10–20 ms; even 5% changed
// is about 3,000 writes, a minute). So a shard finishes in a few minutes, well inside one
// 600-second budget and a 15-minute Lambda, and the whole run in minutes rather than the day
// it has. Far more shards would not help: 16 workers writing about 50 accounts a second each
// stay under the ~1,000 writes a second one partition of the risk index takes (one band is one
// partition, docs/DYNAMO.md), which 64 or 256 busy workers could exceed on a day when many
// accounts move. The count must divide dynamo.ScanShards (256) so every fixed shard key
// belongs to exactly one job.
package recompute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

// Defaults of the fan-out (RECOMPUTE_SHARDS, RECOMPUTE_BUDGET_SECONDS).
const (
	DefaultShards = 16
	DefaultBudget = 600 * time.Second
	// margin is kept free before the invocation's deadline, for the last account write, the
	// continuation's enqueue and the response.
	margin = 30 * time.Second
)

// Job is one queue message: rescore shard Shard of Shards as of At, from Cursor ("" is the
// shard's start).
type Job struct {
	Shard  int       `json:"shard"`
	Shards int       `json:"shards"`
	Cursor string    `json:"cursor"`
	At     time.Time `json:"at"`
}

// Validate says whether the job names a shard of a valid fan-out.
func (j Job) Validate() error {
	if err := ValidShards(j.Shards); err != nil {
		return err
	}
	if j.Shard < 0 || j.Shard >= j.Shards {
		return fault.New("recompute job", fault.Invalid, fmt.Sprintf("shard %d is not in 0..%d", j.Shard, j.Shards-1))
	}
	if j.At.IsZero() {
		return fault.New("recompute job", fault.Invalid, "the job has no time to score as of")
	}
	return nil
}

// ValidShards checks a shard count: it must divide dynamo.ScanShards.
func ValidShards(n int) error {
	if n < 1 || n > dynamo.ScanShards || dynamo.ScanShards%n != 0 {
		return fault.New("recompute", fault.Invalid, fmt.Sprintf("%d shards: the count must divide %d", n, dynamo.ScanShards))
	}
	return nil
}

// SQSClient is what the fan-out needs of SQS; *sqs.Client satisfies it.
type SQSClient interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ SQSClient = (*sqs.Client)(nil)

// Fanout starts scheduled runs and works their jobs.
type Fanout struct {
	Service  *ingest.Service
	SQS      SQSClient
	QueueURL string
	// Shards is how many jobs a run is split into (DefaultShards when 0).
	Shards int
	// Budget bounds one job's work (DefaultBudget when 0); the invocation's deadline, less a
	// margin, bounds it too.
	Budget time.Duration
	Log    *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (f *Fanout) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fanout) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}

// Start enqueues one job per shard, all scoring as of at. A run started twice (a retried
// schedule) rescores each shard twice, which writes nothing the second time.
func (f *Fanout) Start(ctx context.Context, at time.Time) error {
	start := time.Now()
	shards := f.Shards
	if shards == 0 {
		shards = DefaultShards
	}
	if err := ValidShards(shards); err != nil {
		return err
	}
	jobs := make([]Job, shards)
	for i := range jobs {
		jobs[i] = Job{Shard: i, Shards: shards, At: at.UTC()}
	}
	err := f.enqueue(ctx, jobs)
	level, attrs := slog.LevelInfo, []slog.Attr{slog.Int("shards", shards), slog.Time("at", at),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
	if err != nil {
		level, attrs = slog.LevelError, append(attrs, slog.String("err", err.Error()))
	}
	f.log().LogAttrs(ctx, level, "recompute started", attrs...)
	return err
}

// enqueue sends jobs, ten to a SendMessageBatch call.
func (f *Fanout) enqueue(ctx context.Context, jobs []Job) error {
	var errs []error
	for len(jobs) > 0 {
		n := min(len(jobs), 10)
		entries := make([]types.SendMessageBatchRequestEntry, n)
		for i, j := range jobs[:n] {
			body, err := json.Marshal(j)
			if err != nil {
				return fault.E("encode recompute job", fault.Internal, err)
			}
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))}
		}
		out, err := f.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(f.QueueURL), Entries: entries})
		if err != nil {
			return fault.Dependency("enqueue recompute jobs", err)
		}
		for _, e := range out.Failed {
			errs = append(errs, fault.New("enqueue recompute job "+aws.ToString(e.Id), fault.Transient, aws.ToString(e.Code)+": "+aws.ToString(e.Message)))
		}
		jobs = jobs[n:]
	}
	return errors.Join(errs...)
}

// Work runs the jobs of one queue batch in turn. A job whose shard ends within the budget is
// done; one the budget interrupts enqueues its continuation (same shard, the next cursor) and
// is done; a job that fails (a failing scan, a continuation that could not be enqueued, a job
// that does not decode) is reported as a batch item failure, so SQS delivers it again and
// after the queue's bounded receives moves it to the dead-letter queue. Rescoring accounts a
// failed job had already written changes nothing.
func (f *Fanout) Work(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		if err := f.work(ctx, r); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return resp, nil
}

func (f *Fanout) work(ctx context.Context, r events.SQSMessage) (err error) {
	start := time.Now()
	var j Job
	var res ingest.RecomputeResult
	continued := false
	defer func() {
		attrs := []slog.Attr{slog.String("message_id", r.MessageId), slog.Int("shard", j.Shard), slog.Int("shards", j.Shards),
			slog.Bool("resumed", j.Cursor != ""), slog.Int("scored", res.Scored), slog.Int("changed", res.Changed),
			slog.Int("events", res.Events), slog.Int("failed_accounts", res.FailedCount), slog.Bool("continued", continued),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
		level := slog.LevelInfo
		if res.FailedCount > 0 {
			level = slog.LevelWarn
		}
		if err != nil {
			level, attrs = slog.LevelError, append(attrs, slog.String("err", err.Error()))
		}
		f.log().LogAttrs(ctx, level, "recompute job", attrs...)
	}()
	if err := json.Unmarshal([]byte(r.Body), &j); err != nil {
		return fault.E("decode recompute job", fault.Invalid, err)
	}
	if err := j.Validate(); err != nil {
		return err
	}
	budget := f.Budget
	if budget == 0 {
		budget = DefaultBudget
	}
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d) - margin
		if left <= 0 {
			return fault.New("recompute job", fault.Transient, "no time left in this invocation")
		}
		budget = min(budget, left)
	}
	res, err = f.Service.Recompute(ctx, ingest.RecomputeRequest{At: j.At, Shard: j.Shard, Shards: j.Shards, Cursor: j.Cursor, Budget: budget})
	if err != nil {
		return err
	}
	if res.NextCursor == "" {
		return nil
	}
	next := j
	next.Cursor = res.NextCursor
	if err := f.enqueue(ctx, []Job{next}); err != nil {
		return err
	}
	continued = true
	return nil
}

// Invoke is the function's handler: an SQS batch of jobs is worked (Work), and any other event
// — the EventBridge schedule's — starts a run as of the event's time (Start).
func (f *Fanout) Invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fault.E("recompute", fault.Invalid, err)
	}
	if len(probe.Records) > 0 {
		if probe.Records[0].EventSource != "aws:sqs" {
			return nil, fault.New("recompute", fault.Invalid, "records from "+probe.Records[0].EventSource+", not SQS")
		}
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fault.E("recompute", fault.Invalid, err)
		}
		return f.Work(ctx, ev)
	}
	at := probe.Time
	if at.IsZero() {
		at = f.now()
	}
	return nil, f.Start(ctx, at)
}
