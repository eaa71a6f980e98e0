package publish

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

// BatchPublisher publishes several messages and returns the ids of those it could not
// publish; *SNS implements it.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, msgs []store.Message) (failed []string, err error)
}

// StreamOutbox is what Stream needs of the table whose stream it reads; *dynamo.Store
// implements it.
type StreamOutbox interface {
	// OutboxPending reports which keys still name an item: one deleted was published.
	OutboxPending(ctx context.Context, keys []dynamo.OutboxKey) (map[dynamo.OutboxKey]bool, error)
	// DeleteOutbox removes published items.
	DeleteOutbox(ctx context.Context, keys []dynamo.OutboxKey) error
}

var (
	_ BatchPublisher = (*SNS)(nil)
	_ StreamOutbox   = (*dynamo.Store)(nil)
)

// Stream publishes the outbox items a DynamoDB stream delivers (the publisher function on
// AWS): each new outbox item becomes one message, published with its attributes, and its item
// is deleted once published.
type Stream struct {
	Publisher BatchPublisher
	Outbox    StreamOutbox
	Log       *slog.Logger
}

// Handle publishes one stream batch. Records that are not inserts of outbox items (the
// function's event filter should already drop them) are skipped, and so is an outbox image that
// does not decode (it never will; TTL removes the item), and so is a record whose item is gone:
// it was published and deleted before (a batch delivered again from an earlier failure), so
// its message is not sent twice. When messages fail to publish, the
// response names the lowest sequence number among their records: Lambda delivers the batch
// again from that record, so the failed items are published later and the ones after it again
// (at-least-once; consumers deduplicate on the stable event id). A failed delete is only
// logged: the item was published, and its TTL removes it. Handle never returns an error, so one
// bad batch cannot stall the shard beyond the event source's bounded retries.
func (s *Stream) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	start := time.Now()
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	var (
		msgs    []store.Message
		records []events.DynamoDBEventRecord
		keys    []dynamo.OutboxKey
		skipped int
	)
	for _, r := range ev.Records {
		k, ok := dynamo.OutboxStreamKey(r.Change.Keys)
		if r.EventName != string(events.DynamoDBOperationTypeInsert) || !ok {
			skipped++
			continue
		}
		m, err := dynamo.OutboxMessage(r.Change.NewImage)
		if err != nil {
			skipped++
			log.Error("outbox item does not decode; skipped (its TTL removes it)", "pk", k.PK, "sk", k.SK,
				"sequence_number", r.Change.SequenceNumber, "err", err.Error())
			continue
		}
		msgs, records, keys = append(msgs, m), append(records, r), append(keys, k)
	}
	done := 0
	if len(keys) > 0 {
		// A failed check publishes everything: a duplicate is better than a stalled stream.
		if pending, err := s.Outbox.OutboxPending(ctx, keys); err != nil {
			log.Warn("could not check which outbox items are still pending; publishing every record", "err", err.Error())
		} else {
			n := 0
			for i := range msgs {
				if pending[keys[i]] {
					msgs[n], records[n], keys[n] = msgs[i], records[i], keys[i]
					n++
				}
			}
			done = len(msgs) - n
			msgs, records, keys = msgs[:n], records[:n], keys[:n]
		}
	}

	var failedIDs []string
	var pubErr error
	if len(msgs) > 0 {
		failedIDs, pubErr = s.Publisher.PublishBatch(ctx, msgs)
	}
	failed := make(map[string]bool, len(failedIDs))
	for _, id := range failedIDs {
		failed[id] = true
	}
	refused := Refused(pubErr)
	var published []dynamo.OutboxKey
	lowest := ""
	for i, m := range msgs {
		if refused[m.ID] {
			// SNS will never take it: retrying would block the events after it until the
			// record leaves the stream. Drop it, loudly; its id and reason are in the log.
			log.Error("event refused by SNS for good; dropped", "event_id", m.ID)
			published = append(published, keys[i])
			continue
		}
		if !failed[m.ID] {
			published = append(published, keys[i])
			continue
		}
		if seq := records[i].Change.SequenceNumber; lowest == "" || seqLess(seq, lowest) {
			lowest = seq
		}
	}
	var delErr error
	if len(published) > 0 {
		delErr = s.Outbox.DeleteOutbox(ctx, published)
	}

	var resp events.DynamoDBEventResponse
	if lowest != "" {
		resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: lowest}}
	}
	attrs := []slog.Attr{slog.Int("records", len(ev.Records)), slog.Int("skipped", skipped), slog.Int("already_published", done),
		slog.Int("published", len(published)), slog.Int("failed", len(failedIDs)),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
	level := slog.LevelInfo
	if pubErr != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("retry_from", lowest), slog.String("err", pubErr.Error()))
	}
	if delErr != nil {
		level = max(level, slog.LevelWarn)
		attrs = append(attrs, slog.String("delete_err", delErr.Error()))
	}
	log.LogAttrs(ctx, level, "outbox batch", attrs...)
	return resp, nil
}

// seqLess orders DynamoDB stream sequence numbers: decimal strings of up to 40 digits, compared
// as numbers (a shorter one is smaller).
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
