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
	// uses it for keys recorded by markers instead of reading again, a retry after a conflict
	// reads afresh. Keys in packed are always read after the account.
	seen map[string]bool
	// packed records keys (product messages with a timestamp of their own) in the target
	// account's receipt for the bucket of their timestamp instead of by a marker each.
	packed map[string]mark
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

// mark is how a product message is recorded in a receipt: its timestamp's bucket and its id's
// ReceiptID.
type mark struct {
	bucket int64
	id     uint64
}

// errReceiptsFull says a commit's messages spilled over full receipts into more markers than
// one transaction takes; the caller commits them in smaller parts.
var errReceiptsFull = fault.New("product commit", fault.Permanent, "receipts full: too many markers for one transaction")

// receiptCap is how many ids one receipt takes before further messages of its bucket get a
// marker each; a variable so tests can reach it.
var receiptCap = store.MaxReceiptIDs

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
	// Markers can be checked before the account is known; receipts only after it is read.
	seen := map[string]bool{}
	var markerKeys []string
	for _, k := range w.keys {
		if _, ok := w.packed[k]; !ok {
			markerKeys = append(markerKeys, k)
		}
	}
	if len(markerKeys) > 0 {
		if w.seen == nil {
			var err error
			if w.seen, err = s.Store.Seen(ctx, markerKeys); err != nil {
				return out, fault.Dependency("dedupe lookup", err)
			}
		}
		for _, k := range markerKeys {
			seen[k] = w.seen[k]
		}
	}
	if len(w.packed) == 0 && len(w.keys) > 0 && !w.always && !slices.ContainsFunc(w.keys, func(k string) bool { return !seen[k] }) {
		return dedupeOnly(w.keys, seen), nil
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
	// The receipts are read after the account: they show at least what the version read
	// recorded, and a later commit fails this one on the version.
	var receipts map[store.ReceiptKey]store.Receipt
	var spilled map[string]bool
	if len(w.packed) > 0 {
		if receipts, spilled, err = s.received(ctx, cur.ID, w, seen); err != nil {
			return out, err
		}
	}
	out = dedupeOnly(w.keys, seen)
	if len(w.keys) > 0 && len(out.applied) == 0 && !w.always {
		return out, nil
	}
	fresh := make(map[string]bool, len(out.applied))
	for _, k := range out.applied {
		fresh[k] = true
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
	tx.Markers, tx.Receipts = records(a.ID, out.applied, w, receipts, spilled, now)
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
	if len(w.packed) > 0 && tx.Size() > store.MaxTxItems {
		// split keeps a commit of packed messages inside the limits unless receipts filled
		// up and spilled into markers.
		return out, errReceiptsFull
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

// dedupeOnly splits keys into the applied (first of each, not seen) and the duplicates.
func dedupeOnly(keys []string, seen map[string]bool) outcome {
	var out outcome
	fresh := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			out.duplicate = append(out.duplicate, k)
		} else if !fresh[k] {
			fresh[k] = true
			out.applied = append(out.applied, k)
		}
	}
	return out
}

// received reads acct's receipts for w's packed keys and marks in seen the keys they record.
// A key whose receipt is full was recorded by a marker, if at all: those markers are read too,
// and such keys are returned in spilled (the whole bucket's new keys get markers).
func (s *Service) received(ctx context.Context, acct string, w write, seen map[string]bool) (map[store.ReceiptKey]store.Receipt, map[string]bool, error) {
	var keys []store.ReceiptKey
	for _, k := range w.keys {
		if m, ok := w.packed[k]; ok {
			keys = append(keys, store.ReceiptKey{Account: acct, Bucket: m.bucket})
		}
	}
	recs, err := s.Store.Received(ctx, keys)
	if err != nil {
		return nil, nil, fault.Dependency("dedupe lookup", err)
	}
	var full []string
	for _, k := range w.keys {
		m, ok := w.packed[k]
		if !ok {
			continue
		}
		r := recs[store.ReceiptKey{Account: acct, Bucket: m.bucket}]
		switch {
		case r.Has(m.id):
			seen[k] = true
		case len(r.IDs) >= receiptCap:
			full = append(full, k)
		}
	}
	if len(full) == 0 {
		return recs, nil, nil
	}
	marked, err := s.Store.Seen(ctx, full)
	if err != nil {
		return nil, nil, fault.Dependency("dedupe lookup", err)
	}
	spilled := make(map[string]bool, len(full))
	for _, k := range full {
		seen[k] = seen[k] || marked[k]
		spilled[k] = true
	}
	return recs, spilled, nil
}

// records is what a commit writes to remember the applied keys: their ids added to the
// receipts of acct (recs as read), up to receiptCap ids a receipt, and a marker for every
// other key. A receipt lives as long as the longest-lived mark of its bucket, markers that
// spilled over included, so a receipt that is absent means no mark of its bucket is alive.
func records(acct string, applied []string, w write, recs map[store.ReceiptKey]store.Receipt, spilled map[string]bool, now time.Time) ([]store.Marker, []store.Receipt) {
	var markers []store.Marker
	byKey := map[store.ReceiptKey]*store.Receipt{}
	var order []store.ReceiptKey
	receipt := func(b int64) *store.Receipt {
		k := store.ReceiptKey{Account: acct, Bucket: b}
		if r, ok := byKey[k]; ok {
			return r
		}
		old := recs[k]
		r := &store.Receipt{ReceiptKey: k, IDs: slices.Clone(old.IDs), Expires: old.Expires}
		byKey[k] = r
		order = append(order, k)
		return r
	}
	for _, k := range applied {
		exp, ok := w.expires[k]
		if !ok {
			exp = now.Add(MarkerTTL)
		}
		m, packed := w.packed[k]
		if !packed {
			markers = append(markers, store.Marker{Key: k, Expires: exp})
			continue
		}
		r := receipt(m.bucket)
		if exp.After(r.Expires) {
			r.Expires = exp
		}
		if spilled[k] || len(r.IDs) >= receiptCap {
			markers = append(markers, store.Marker{Key: k, Expires: exp})
			continue
		}
		r.IDs = append(r.IDs, m.id)
	}
	out := make([]store.Receipt, 0, len(order))
	for _, k := range order {
		r := byKey[k]
		slices.Sort(r.IDs)
		r.IDs = slices.Compact(r.IDs)
		out = append(out, *r)
	}
	return markers, out
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
