// Package publish delivers outbox messages to subscribers: JSON lines locally, SNS on AWS
// (store/dynamo's issue). Delivery is at-least-once: a message is removed from the outbox only
// after it was published, and consumers deduplicate on the event id.
package publish

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/churnsignal/churnsignal/shared/store"
)

// Publisher sends one message to subscribers.
type Publisher interface {
	Publish(ctx context.Context, m store.Message) error
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, m store.Message) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, m store.Message) error { return f(ctx, m) }

// Lines writes each message body as one JSON line.
type Lines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLines returns a Publisher writing to w.
func NewLines(w io.Writer) *Lines { return &Lines{w: w} }

// Publish implements Publisher.
func (l *Lines) Publish(ctx context.Context, m store.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(append(append([]byte(nil), m.Body...), '\n')); err != nil {
		return fmt.Errorf("publish: write event %s: %w", m.ID, err)
	}
	if f, ok := l.w.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}
	return nil
}

// Outbox is what the drainer needs of a store that keeps its outbox for polling (bbolt,
// locally); it is not part of store.Store, since on AWS DynamoDB Streams deliver the outbox.
// Outbox must return each account's messages in commit order; a global order is not needed.
type Outbox interface {
	// Outbox returns up to limit unpublished messages.
	Outbox(ctx context.Context, limit int) ([]store.Message, error)
	// Ack removes published messages.
	Ack(ctx context.Context, ids ...string) error
}

// Drainer moves messages from an Outbox to a Publisher, keeping each account's commit order.
type Drainer struct {
	Outbox    Outbox
	Publisher Publisher
	Log       *slog.Logger
	wake      chan struct{}
	once      sync.Once
}

func (d *Drainer) init() { d.once.Do(func() { d.wake = make(chan struct{}, 1) }) }

// Wake asks the drainer to look at the outbox now; it never blocks.
func (d *Drainer) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Drain publishes everything in the outbox and returns how many messages it published. It
// stops at the first failure, leaving that message and the rest for the next call.
func (d *Drainer) Drain(ctx context.Context) (int, error) {
	n := 0
	for {
		msgs, err := d.Outbox.Outbox(ctx, 100)
		if err != nil || len(msgs) == 0 {
			return n, err
		}
		for _, m := range msgs {
			if err := d.Publisher.Publish(ctx, m); err != nil {
				return n, err
			}
			if err := d.Outbox.Ack(ctx, m.ID); err != nil {
				return n, err
			}
			n++
		}
	}
}

// Run drains whenever woken and at least every interval, until ctx ends; then it drains once
// more so a graceful shutdown publishes what was committed.
func (d *Drainer) Run(ctx context.Context, interval time.Duration) {
	d.init()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := d.Drain(ctx); err != nil && ctx.Err() == nil && d.Log != nil {
			d.Log.Error("publish failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = d.Drain(final)
			cancel()
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}
