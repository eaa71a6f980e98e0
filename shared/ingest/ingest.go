// Package ingest runs the pipeline between the HTTP edge and the store: it resolves which
// account a delivery is about, skips what was applied before, applies the change, rescores,
// and commits account, dedupe markers, links and outbox events in one conditional write,
// retrying on conflict. The same code serves the Lambda functions and the local server.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/risk"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
)

// Defaults for retention and retries.
const (
	// MarkerTTL outlives every sender's retry period (Stripe retries for three days).
	MarkerTTL = 30 * 24 * time.Hour
	// HeldTTL is how long a message waits for its user's account to become known.
	HeldTTL = 7 * 24 * time.Hour
	// MaxHeldPerUser bounds the messages held for one user.
	MaxHeldPerUser = 200
	maxAttempts    = 25
)

// Service is the pipeline. Its zero value is not usable; fill Store and Scorecard.
type Service struct {
	Store     store.Store
	Scorecard *score.Scorecard
	// Charges resolves a charge to its customer for disputes; nil when STRIPE_API_KEY is unset.
	Charges ChargeLookup
	Log     *slog.Logger
	// Committed is called after a commit that wrote outbox messages (wakes the publisher).
	Committed func()

	locks [64]sync.Mutex
}

// ChargeLookup finds the customer of a charge.
type ChargeLookup interface {
	ChargeCustomer(ctx context.Context, chargeID string) (string, error)
}

// ChargeLookupFunc adapts a function to ChargeLookup.
type ChargeLookupFunc func(ctx context.Context, chargeID string) (string, error)

// ChargeCustomer calls f.
func (f ChargeLookupFunc) ChargeCustomer(ctx context.Context, chargeID string) (string, error) {
	return f(ctx, chargeID)
}

// write is one atomic, retried read-modify-write of an account.
type write struct {
	// keys are the dedupe keys of the deliveries this write applies.
	keys []string
	// expires, when set, gives a key's marker expiry; others expire MarkerTTL after now.
	expires map[string]time.Time
	// seen, when set, is a dedupe lookup of keys the caller made already; the first attempt
	// uses it instead of reading again, a retry after a conflict reads afresh.
	seen map[string]bool
	// resolve names the target account and what else the write links or folds in. It runs on
	// every attempt, so it sees links committed by a concurrent writer.
	resolve func(ctx context.Context) (plan, error)
	// apply changes the account for the fresh (not yet applied) keys.
	apply func(a *account.Account, fresh map[string]bool, tx *store.Tx) error
	// always writes even when no key is fresh and health did not change.
	always bool
	// deferScore leaves health alone: a later write of the same request rescores, so one
	// request's partial state never raises or clears risk.
	deferScore bool
	// occurred is the time of the fact the write applies (events' occurred_at); zero = now.
	occurred time.Time
}

type plan struct {
	target string
	absorb string // a placeholder account to fold into target
	links  []store.Link
	// refused says why a group trait's claim on a Stripe customer was not linked.
	refused string
	// move is set when a Stripe customer moves from one account to another: its billing moves
	// with it in the same commit.
	move *move
}

// move is a Stripe customer leaving account from.
type move struct {
	customer, from string
}

// outcome says what a write did.
type outcome struct {
	account   string
	applied   []string
	duplicate []string
	events    []risk.Event
	changed   bool
}

func (s *Service) lock(id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

// run executes w at time now, retrying on conflict with jittered backoff.
func (s *Service) run(ctx context.Context, w write, now time.Time) (outcome, error) {
	backoff := 2 * time.Millisecond
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil { // out of time (a Lambda deadline): write nothing more
			return outcome{}, fault.E("write", fault.Transient, err)
		}
		out, err := s.attempt(ctx, w, now)
		w.seen = nil
		if !errors.Is(err, store.ErrConflict) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, fault.E("write", fault.Transient, ctx.Err())
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)))):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
	return outcome{}, fault.E("write", fault.Transient, fmt.Errorf("gave up after %d conflicting attempts", maxAttempts))
}

func (s *Service) attempt(ctx context.Context, w write, now time.Time) (outcome, error) {
	var out outcome
	seen := w.seen
	if len(w.keys) > 0 && seen == nil {
		var err error
		if seen, err = s.Store.Seen(ctx, w.keys); err != nil {
			return out, fault.Dependency("dedupe lookup", err)
		}
	}
	fresh := map[string]bool{}
	for _, k := range w.keys {
		if seen[k] {
			out.duplicate = append(out.duplicate, k)
		} else if !fresh[k] {
			fresh[k] = true
			out.applied = append(out.applied, k)
		}
	}
	if len(w.keys) > 0 && len(fresh) == 0 && !w.always {
		return out, nil
	}
	p, err := w.resolve(ctx)
	if err != nil {
		return out, err
	}
	mu := s.lock(p.target)
	mu.Lock()
	defer mu.Unlock()

	var tx store.Tx
	cur, expect, err := s.load(ctx, p.target, now)
	if err != nil {
		return out, err
	}
	if cur.MergedInto != "" { // folded into another account since we resolved: follow it
		p.target, p.absorb = cur.MergedInto, ""
		if cur, expect, err = s.load(ctx, p.target, now); err != nil {
			return out, err
		}
	}
	out.account = cur.ID
	a := cur.Clone()
	// Fold in a placeholder account (a Stripe customer seen before its product account).
	var folded *account.Account
	wasOpen := a.Risk.Open
	if p.absorb != "" && p.absorb != p.target {
		src, err := s.Store.Get(ctx, p.absorb)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return out, fault.Dependency("load "+p.absorb, err)
		case src.MergedInto == "":
			a.Merge(src)
			folded = src
			tomb := &account.Account{ID: src.ID, MergedInto: p.target, CreatedAt: src.CreatedAt, UpdatedAt: now.UTC()}
			tx.Accounts = append(tx.Accounts, store.Put{Account: tomb, Expect: src.Version})
		}
	}
	// A customer moving from another account takes its billing along; that account is
	// rescored in the same commit.
	var left []risk.Event
	if m := p.move; m != nil && m.from != p.target {
		from, err := s.Store.Get(ctx, m.from)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return out, fault.Dependency("load "+m.from, err)
		case from.MergedInto == "":
			f := from.Clone()
			a.MoveCustomer(f, m.customer, w.occurred)
			left = risk.Rescore(f, s.Scorecard, now, w.occurred)
			f.UpdatedAt = now.UTC()
			tx.Accounts = append(tx.Accounts, store.Put{Account: f, Expect: from.Version, Summary: s.summarize(f)})
		}
	}
	if err := w.apply(a, fresh, &tx); err != nil {
		return out, err
	}
	old := a.Health
	if !w.deferScore {
		out.events = risk.Rescore(a, s.Scorecard, now, w.occurred)
	}
	if folded != nil {
		// A score that moves because two records became one is not a fall to alert on: the
		// account.merged event tells subscribers what happened.
		out.events = slices.DeleteFunc(out.events, func(e risk.Event) bool { return e.Type == risk.TypeDropped })
		e := risk.Merged(a, folded.ID, wasOpen, folded.Risk.Open, s.Scorecard, now, w.occurred)
		out.events = append([]risk.Event{e}, out.events...)
	}
	out.events = append(out.events, left...)
	out.changed = len(fresh) > 0 || len(out.events) > 0 || len(tx.Accounts) > 0 || healthMoved(old, a.Health) || w.always
	if !out.changed {
		return out, nil
	}
	a.UpdatedAt = now.UTC()
	tx.Accounts = append([]store.Put{{Account: a, Expect: expect, Summary: s.summarize(a)}}, tx.Accounts...)
	for k := range fresh {
		exp, ok := w.expires[k]
		if !ok {
			exp = now.Add(MarkerTTL)
		}
		tx.Markers = append(tx.Markers, store.Marker{Key: k, Expires: exp})
	}
	tx.Links = append(tx.Links, p.links...)
	if pt, ok := risk.DayPoint(old, a.Health, now); ok {
		tx.History = append(tx.History, store.Point{Account: a.ID, Day: pt.Day, Score: pt.Score, Band: pt.Band, Expires: now.Add(store.HistoryTTL)})
	}
	for _, e := range out.events {
		body, err := json.Marshal(e)
		if err != nil {
			return out, fault.E("encode event", fault.Internal, err)
		}
		tx.Outbox = append(tx.Outbox, store.Message{ID: e.ID, Body: body, Attributes: e.Attributes()})
	}
	if err := s.Store.Commit(ctx, tx); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return out, err
		}
		return out, fault.Dependency("commit", err)
	}
	if len(tx.Outbox) > 0 && s.Committed != nil {
		s.Committed()
	}
	return out, nil
}

// load returns the stored account (or a new one) and the version to expect when writing it.
func (s *Service) load(ctx context.Context, id string, now time.Time) (*account.Account, int64, error) {
	a, err := s.Store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return account.New(id, now), 0, nil
	}
	if err != nil {
		return nil, 0, fault.Dependency("load "+id, err)
	}
	return a, a.Version, nil
}

// healthMoved reports whether a rescore changed the score, band or segment. Details that
// move daily without moving the score ("last active 4 days ago") are not worth a write.
func healthMoved(old, h account.Health) bool {
	return old.Score != h.Score || old.Band != h.Band || old.Segment != h.Segment
}

// stripeLink is the link key of a Stripe customer; userLink that of a product user.
func stripeLink(customer string) string { return "stripe:" + customer }
func userLink(user string) string       { return "user:" + user }
