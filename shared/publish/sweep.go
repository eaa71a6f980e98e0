package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

// SweepOutbox is what Sweep needs of the table; *dynamo.Store implements it.
type SweepOutbox interface {
	// StaleOutbox hands the outbox items written at or before a time to page, a page at a
	// time, until page returns false.
	StaleOutbox(ctx context.Context, before time.Time, page func([]dynamo.OutboxItem) bool) error
	// DeleteOutbox removes published items.
	DeleteOutbox(ctx context.Context, keys []dynamo.OutboxKey) error
}

var _ SweepOutbox = (*dynamo.Store)(nil)

// DefaultGrace is how old an outbox item must be before a sweep publishes it: the stream
// delivers a new item within seconds, so an item older than this is one the stream publisher
// failed on (and may have given up on: the stream keeps records 24 hours).
const DefaultGrace = 15 * time.Minute

// sweepMargin is the time a sweep leaves before its invocation's deadline.
const sweepMargin = 5 * time.Second

// Sweep publishes outbox items the stream publisher left behind (an SNS outage, a batch it
// gave up on, records past the stream's 24 hours), oldest first, and deletes each once
// published, so an outbox item is published before its 30-day TTL whatever happened to its
// stream record. It runs on a schedule in the publisher function. An item the stream publishes
// at the same time may be published twice, never zero times: both delete only after SNS took
// the message, and consumers deduplicate on the stable event id.
type Sweep struct {
	Publisher BatchPublisher
	Outbox    SweepOutbox
	// Grace is the age below which an item is left to the stream (DefaultGrace when zero).
	Grace time.Duration
	// Now is the clock the grace is measured by (time.Now when nil).
	Now func() time.Time
	Log *slog.Logger
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	// Found is the outbox items older than the grace period that were still there.
	Found int `json:"found"`
	// Published were published and deleted; Dropped were refused by SNS for good (logged,
	// deleted); Failed are left for the next sweep.
	Published int `json:"published"`
	Dropped   int `json:"dropped"`
	Failed    int `json:"failed"`
	// Incomplete is true when the invocation's deadline or a failure stopped the sweep before
	// every stale item was seen; the next sweep goes on.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Run sweeps once. It stops at the first page SNS did not fully take (a topic still missing
// would fail every page alike) and 5 s before ctx's deadline. The error reports items left
// unpublished or a failed read, so the function's Errors alarm shows an outage the stream
// publisher could not report; a failed delete is only logged (the item was published; the
// next sweep publishes it again at worst).
func (s *Sweep) Run(ctx context.Context) (SweepResult, error) {
	start := time.Now()
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	grace := s.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	var (
		res     SweepResult
		pubErr  error
		delErrs []error
	)
	readErr := s.Outbox.StaleOutbox(ctx, now().Add(-grace), func(items []dynamo.OutboxItem) bool {
		res.Found += len(items)
		msgs := make([]store.Message, len(items))
		for i, it := range items {
			msgs[i] = it.Message
		}
		failedIDs, err := s.Publisher.PublishBatch(ctx, msgs)
		failed := make(map[string]bool, len(failedIDs))
		for _, id := range failedIDs {
			failed[id] = true
		}
		refused := Refused(err)
		var done []dynamo.OutboxKey
		for _, it := range items {
			switch {
			case refused[it.Message.ID]:
				log.Error("event refused by SNS for good; dropped", "event_id", it.Message.ID)
				res.Dropped++
				done = append(done, it.Key)
			case failed[it.Message.ID]:
				res.Failed++
			default:
				res.Published++
				done = append(done, it.Key)
			}
		}
		if len(done) > 0 {
			if err := s.Outbox.DeleteOutbox(ctx, done); err != nil {
				delErrs = append(delErrs, err)
			}
		}
		if len(failedIDs) > len(refused) {
			pubErr = err
			res.Incomplete = true
			return false
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < sweepMargin {
			res.Incomplete = true
			return false
		}
		return true
	})
	if readErr != nil {
		res.Incomplete = true
	}
	attrs := []slog.Attr{slog.Int("found", res.Found), slog.Int("published", res.Published), slog.Int("dropped", res.Dropped),
		slog.Int("failed", res.Failed), slog.Bool("incomplete", res.Incomplete),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
	level := slog.LevelInfo
	var err error
	switch {
	case readErr != nil:
		err = readErr
	case pubErr != nil:
		err = fault.E("sweep outbox", fault.Transient, fmt.Errorf("%d events left for the next sweep: %w", res.Failed, pubErr))
	}
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	if len(delErrs) > 0 {
		level = max(level, slog.LevelWarn)
		attrs = append(attrs, slog.String("delete_err", errors.Join(delErrs...).Error()))
	}
	log.LogAttrs(ctx, level, "outbox sweep", attrs...)
	return res, err
}

// Handler is the publisher function's entry point: a DynamoDB stream batch goes to Stream
// (answered exactly as Stream.Handle answers), an EventBridge scheduled event runs Sweep.
type Handler struct {
	Stream *Stream
	Sweep  *Sweep
}

// Invoke dispatches one invocation on the shape of its event: a body with "Records" is a
// stream batch; one with "detail-type": "Scheduled Event" is the sweep's schedule. Anything
// else is an error (fault.Invalid), since it can only be a misconfigured trigger.
func (h *Handler) Invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	var shape struct {
		Records    json.RawMessage `json:"Records"`
		DetailType string          `json:"detail-type"`
	}
	if err := json.Unmarshal(raw, &shape); err != nil {
		return nil, fault.E("publisher", fault.Invalid, fmt.Errorf("event is not a JSON object: %w", err))
	}
	switch {
	case shape.Records != nil:
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fault.E("publisher", fault.Invalid, fmt.Errorf("stream event: %w", err))
		}
		return h.Stream.Handle(ctx, ev)
	case shape.DetailType == "Scheduled Event":
		return h.Sweep.Run(ctx)
	}
	return nil, fault.New("publisher", fault.Invalid, "neither a DynamoDB stream batch (Records) nor a scheduled event (detail-type Scheduled Event)")
}
