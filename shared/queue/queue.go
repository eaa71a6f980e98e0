// Package queue carries accepted product messages from the webhook to the consumer that
// applies them in batches: SQS on AWS. The webhook enqueues one envelope per request (split
// only past SQS's 256 KiB); the consumer applies a whole queue batch with each account written
// once, and reports per queue message what must be delivered again.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/ingest"
)

// DeadlineMargin is how long before the invocation's deadline Consume stops writing.
const DeadlineMargin = 5 * time.Second

// SQSClient is what the webhook needs of SQS.
type SQSClient interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ SQSClient = (*sqs.Client)(nil)

// SQS enqueues envelopes on one queue.
type SQS struct {
	client SQSClient
	url    string
}

// NewSQS returns a queue writing to the queue at url.
func NewSQS(client SQSClient, url string) *SQS { return &SQS{client: client, url: url} }

// Enqueue sends one envelope as one queue message. A failure is transient: the webhook answers
// 503 and the sender retries (what was queued already is a duplicate when applied).
func (q *SQS) Enqueue(ctx context.Context, e ingest.Envelope) error {
	body, err := e.Encode()
	if err != nil {
		return fault.E("encode envelope", fault.Internal, err)
	}
	_, err = q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(body))})
	var api smithy.APIError
	if errors.As(err, &api) && (api.ErrorCode() == "InvalidParameterValue" || api.ErrorCode() == "InvalidMessageContents") {
		return fault.E("enqueue", fault.Permanent, err) // SQS will never take this message: do not have the sender retry it
	}
	return fault.Dependency("enqueue", err)
}

// Consume applies one SQS batch delivered to the consumer function. Records whose messages
// were not all committed (a store failure), and records that are not envelopes at all, are
// reported as batch item failures: SQS delivers them again, and after the queue's bounded
// receive count moves them to its dead-letter queue. Every other record is done.
func Consume(ctx context.Context, svc *ingest.Service, ev events.SQSEvent, log *slog.Logger) events.SQSEventResponse {
	start := time.Now()
	// Stop writing a little before the invocation's deadline, so what could not be committed
	// is reported per record and delivered again, instead of the whole batch timing out.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-DeadlineMargin))
		defer cancel()
	}
	var resp events.SQSEventResponse
	var envs []ingest.Envelope
	var ids []string
	poison := 0
	for _, r := range ev.Records {
		var e ingest.Envelope
		if err := json.Unmarshal([]byte(r.Body), &e); err != nil || e.Received.IsZero() {
			poison++
			log.Error("queue message is not an envelope; reported as failed, it goes to the dead-letter queue after its last receive",
				"message_id", r.MessageId, "err", fmt.Sprint(err))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			continue
		}
		envs = append(envs, e)
		ids = append(ids, r.MessageId)
	}
	res, failed, err := svc.Queued(ctx, envs)
	for _, i := range failed {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ids[i]})
	}
	level := slog.LevelInfo
	if err != nil || poison > 0 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.Int("records", len(ev.Records)), slog.Int("applied", res.Applied),
		slog.Int("duplicate", res.Duplicate), slog.Int("held", res.Held), slog.Int("rejected", res.Rejected),
		slog.Int("failed_records", len(resp.BatchItemFailures)), slog.Int("accounts", len(res.Accounts)),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	log.LogAttrs(ctx, level, "product batch", attrs...)
	return resp
}
