// Package storetest is the conformance suite every store.Store implementation must pass:
// atomic conditional commits, dedupe markers, conflict retry, outbox order, listing by band,
// held messages and links. Run it from the implementation's tests with Run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
)

// Run runs the suite; open returns a fresh, empty store for each test.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"a missing account is not found", missingAccount},
		{"a new account commits once and versions increase", versions},
		{"a failed condition writes nothing at all", atomicity},
		{"a dedupe marker is seen until it expires", markers},
		{"links are compare-and-set unless forced", links},
		{"the outbox drains in commit order and ack removes", outboxOrder},
		{"listing by band orders by risk, filters and pages", listing},
		{"held messages are kept per user and released by a commit", held},
		{"scan pages through every account", scan},
		{"concurrent writers to one account each land exactly once", concurrentWriters},
		{"a transaction over 100 items is refused", tooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

var ctx = context.Background()

func acct(id string, score int, band string) *account.Account {
	a := account.New(id, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	a.Name = "Account " + id
	a.Health.Score, a.Health.Band, a.Health.Segment = score, band, "low-touch"
	return a
}

func mustCommit(t *testing.T, s store.Store, tx store.Tx) {
	t.Helper()
	if err := s.Commit(ctx, tx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func missingAccount(t *testing.T, s store.Store) {
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func versions(t *testing.T, s store.Store) {
	a := acct("acme", 80, account.BandGood)
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: a, Expect: 0}}})
	got, err := s.Get(ctx, "acme")
	if err != nil || got.Version != 1 || got.Name != "Account acme" {
		t.Fatalf("after first commit: %+v, %v; want version 1", got, err)
	}
	if err := s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: a, Expect: 0}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("creating an existing account: %v, want ErrConflict", err)
	}
	got.Name = "Acme"
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: got, Expect: 1}}})
	if err := s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: got, Expect: 1}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale version: %v, want ErrConflict", err)
	}
	got, _ = s.Get(ctx, "acme")
	if got.Version != 2 || got.Name != "Acme" {
		t.Fatalf("after update: version %d name %q", got.Version, got.Name)
	}
}

func atomicity(t *testing.T, s store.Store) {
	exp := time.Now().Add(time.Hour)
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: acct("a", 50, account.BandNormal)}}, Markers: []store.Marker{{Key: "stripe:evt_1", Expires: exp}}})
	a, _ := s.Get(ctx, "a")
	a.Name = "changed"
	bad := []struct {
		on, key string
		tx      store.Tx
	}{
		{store.OnMarker, "stripe:evt_1", store.Tx{ // the marker exists already
			Accounts: []store.Put{{Account: a, Expect: 1}}, Markers: []store.Marker{{Key: "stripe:evt_2", Expires: exp}, {Key: "stripe:evt_1", Expires: exp}},
			Outbox: []store.Message{{ID: "evt_x", Body: []byte(`{}`)}}, Links: []store.Link{{Key: "stripe:cus_1", Account: "a"}},
		}},
		{store.OnAccount, "b", store.Tx{ // the second account's version is stale
			Accounts: []store.Put{{Account: a, Expect: 1}, {Account: acct("b", 10, account.BandBad), Expect: 3}},
			Markers:  []store.Marker{{Key: "stripe:evt_3", Expires: exp}}, Outbox: []store.Message{{ID: "evt_y", Body: []byte(`{}`)}},
		}},
		{store.OnLink, "user:u1", store.Tx{ // the link moved
			Accounts: []store.Put{{Account: a, Expect: 1}}, Links: []store.Link{{Key: "user:u1", Account: "a", Expect: "zzz"}},
		}},
	}
	for i, b := range bad {
		err := s.Commit(ctx, b.tx)
		var ce *store.ConflictError
		if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ce) || fault.KindOf(err) != fault.Conflict {
			t.Fatalf("tx %d: %v, want a *ConflictError", i, err)
		}
		if ce.On != b.on || ce.Key != b.key {
			t.Errorf("tx %d: conflict on %s %q, want on %s %q", i, ce.On, ce.Key, b.on, b.key)
		}
	}
	got, _ := s.Get(ctx, "a")
	if got.Name == "changed" || got.Version != 1 {
		t.Errorf("account written by a failed commit: %+v", got)
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("account b created by a failed commit")
	}
	seen, _ := s.Seen(ctx, []string{"stripe:evt_2", "stripe:evt_3"})
	if len(seen) != 0 {
		t.Errorf("markers written by a failed commit: %v", seen)
	}
	if out, _ := s.Outbox(ctx, 10); len(out) != 0 {
		t.Errorf("outbox written by a failed commit: %+v", out)
	}
	if l, _ := s.Links(ctx, []string{"stripe:cus_1"}); len(l) != 0 {
		t.Errorf("link written by a failed commit: %v", l)
	}
}

func markers(t *testing.T, s store.Store) {
	mustCommit(t, s, store.Tx{Markers: []store.Marker{
		{Key: "msg:live", Expires: time.Now().Add(time.Hour)},
		{Key: "msg:expired", Expires: time.Now().Add(-time.Minute)},
	}})
	seen, err := s.Seen(ctx, []string{"msg:live", "msg:expired", "msg:never"})
	if err != nil {
		t.Fatal(err)
	}
	if !seen["msg:live"] || seen["msg:expired"] || seen["msg:never"] {
		t.Fatalf("Seen = %v, want only msg:live", seen)
	}
	if err := s.Commit(ctx, store.Tx{Markers: []store.Marker{{Key: "msg:expired", Expires: time.Now().Add(time.Hour)}}}); err != nil {
		t.Errorf("an expired marker blocks a new delivery: %v", err)
	}
}

func links(t *testing.T, s store.Store) {
	mustCommit(t, s, store.Tx{Links: []store.Link{{Key: "stripe:cus_1", Account: "cus_1"}}})
	if err := s.Commit(ctx, store.Tx{Links: []store.Link{{Key: "stripe:cus_1", Account: "acme"}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("relinking without the expected target: %v, want ErrConflict", err)
	}
	mustCommit(t, s, store.Tx{Links: []store.Link{{Key: "stripe:cus_1", Account: "acme", Source: store.SourceGroup, Expect: "cus_1"}}})
	mustCommit(t, s, store.Tx{Links: []store.Link{{Key: "user:u1", Account: "acme", Force: true}, {Key: "user:u2", Account: "acme", Force: true}}})
	mustCommit(t, s, store.Tx{Links: []store.Link{{Key: "user:u1", Account: "globex", Force: true}}})
	mustCommit(t, s, store.Tx{Unlink: []string{"user:u2"}})
	got, err := s.Links(ctx, []string{"stripe:cus_1", "user:u1", "user:u2", "user:none"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.Target{"stripe:cus_1": {Account: "acme", Source: store.SourceGroup}, "user:u1": {Account: "globex"}}
	if len(got) != len(want) {
		t.Errorf("Links = %v, want %v (unlinked and unknown keys absent)", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("Links[%s] = %+v, want %+v", k, got[k], w)
		}
	}
}

func outboxOrder(t *testing.T, s store.Store) {
	for i := 0; i < 5; i++ {
		mustCommit(t, s, store.Tx{Outbox: []store.Message{
			{ID: fmt.Sprintf("evt_%d_a", i), Body: []byte(`{"n":1}`), Attributes: map[string]string{"type": "churn_risk.raised"}},
			{ID: fmt.Sprintf("evt_%d_b", i), Body: []byte(`{"n":2}`)},
		}})
	}
	got, err := s.Outbox(ctx, 100)
	if err != nil || len(got) != 10 {
		t.Fatalf("Outbox = %d messages, %v; want 10", len(got), err)
	}
	for i, m := range got {
		want := fmt.Sprintf("evt_%d_%c", i/2, "ab"[i%2])
		if m.ID != want {
			t.Fatalf("message %d is %s, want %s (commit order)", i, m.ID, want)
		}
	}
	if got[0].Attributes["type"] != "churn_risk.raised" || string(got[0].Body) != `{"n":1}` {
		t.Errorf("message content lost: %+v", got[0])
	}
	if err := s.Ack(ctx, "evt_0_a", "evt_1_b"); err != nil {
		t.Fatal(err)
	}
	rest, _ := s.Outbox(ctx, 3)
	if len(rest) != 3 || rest[0].ID != "evt_0_b" || rest[1].ID != "evt_1_a" || rest[2].ID != "evt_2_a" {
		t.Fatalf("after ack: %+v", rest)
	}
}

func listing(t *testing.T, s store.Store) {
	churned := acct("gone", 5, account.BandBad)
	churned.Billing.ApplySubscription(account.Subscription{ID: "sub_x", Status: account.StatusCanceled, At: 1})
	other := acct("tech", 20, account.BandBad)
	other.Health.Segment = "tech-touch"
	puts := []store.Put{{Account: acct("b30", 30, account.BandBad)}, {Account: acct("b10", 10, account.BandBad)}, {Account: acct("b40", 40, account.BandBad)},
		{Account: acct("g90", 90, account.BandGood)}, {Account: churned}, {Account: other}, {Account: acct("b11", 11, account.BandBad)}}
	mustCommit(t, s, store.Tx{Accounts: puts})

	page, err := s.List(ctx, store.Query{Band: account.BandBad, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if ids := idsOf(page.Accounts); fmt.Sprint(ids) != "[b10 b11 tech b30 b40]" {
		t.Errorf("BAD accounts = %v, want most at risk first without the churned one", ids)
	}
	page, _ = s.List(ctx, store.Query{Band: account.BandBad, Segment: "tech-touch"})
	if ids := idsOf(page.Accounts); fmt.Sprint(ids) != "[tech]" {
		t.Errorf("BAD tech-touch = %v", ids)
	}
	page, _ = s.List(ctx, store.Query{Band: account.BandBad, IncludeChurned: true})
	if ids := idsOf(page.Accounts); fmt.Sprint(ids) != "[gone b10 b11 tech b30 b40]" {
		t.Errorf("BAD with churned = %v", ids)
	}
	// Moving an account out of BAD removes it from the BAD list.
	b10, _ := s.Get(ctx, "b10")
	b10.Health.Score, b10.Health.Band = 60, account.BandNormal
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: b10, Expect: b10.Version}}})
	var all []string
	cursor := ""
	for i := 0; i < 10; i++ {
		page, err := s.List(ctx, store.Query{Band: account.BandBad, Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, idsOf(page.Accounts)...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if fmt.Sprint(all) != "[b11 tech b30 b40]" {
		t.Errorf("paged BAD list = %v", all)
	}
	page, _ = s.List(ctx, store.Query{})
	if len(page.Accounts) != 6 {
		t.Errorf("all bands: %v", idsOf(page.Accounts))
	}
}

func idsOf(as []*account.Account) []string {
	ids := []string{}
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return ids
}

func held(t *testing.T, s store.Store) {
	now := time.Now()
	h := func(user, id string, at time.Time, exp time.Duration) store.Held {
		return store.Held{User: user, MessageID: id, Body: []byte(`{"messageId":"` + id + `"}`), At: at, Expires: now.Add(exp)}
	}
	for _, x := range []store.Held{h("u1", "m2", now.Add(-time.Minute), time.Hour), h("u1", "m1", now.Add(-time.Hour), time.Hour),
		h("u1", "old", now.Add(-2*time.Hour), -time.Second), h("u2", "m3", now, time.Hour), h("u1", "m2", now.Add(-time.Minute), time.Hour)} {
		if err := s.Hold(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Held(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.HeldCount(ctx, "u1"); err != nil || n != 2 {
		t.Errorf("HeldCount(u1) = %d, %v; want 2 (expired left out, holding twice counts once)", n, err)
	}
	if len(got) != 2 || got[0].MessageID != "m1" || got[1].MessageID != "m2" || string(got[1].Body) != `{"messageId":"m2"}` {
		t.Fatalf("Held(u1) = %+v, want m1, m2 (oldest first, expired left out, holding twice keeps one)", got)
	}
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: acct("acme", 50, account.BandNormal)}}, Release: got})
	if got, _ := s.Held(ctx, "u1"); len(got) != 0 {
		t.Errorf("released messages still held: %+v", got)
	}
	if got, _ := s.Held(ctx, "u2"); len(got) != 1 {
		t.Errorf("another user's held messages were touched: %+v", got)
	}
}

func scan(t *testing.T, s store.Store) {
	var puts []store.Put
	for i := 0; i < 25; i++ {
		puts = append(puts, store.Put{Account: acct(fmt.Sprintf("acct-%02d", i), i, account.BandNormal)})
	}
	mustCommit(t, s, store.Tx{Accounts: puts})
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; pages < 20; pages++ {
		as, next, err := s.Scan(ctx, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if seen[a.ID] {
				t.Fatalf("%s scanned twice", a.ID)
			}
			seen[a.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 25 {
		t.Fatalf("scanned %d accounts, want 25", len(seen))
	}
}

// concurrentWriters runs read-modify-write loops on one account, each with its own dedupe
// marker, and checks every increment landed exactly once.
func concurrentWriters(t *testing.T, s store.Store) {
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: acct("hot", 50, account.BandNormal)}}})
	const writers = 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for attempt := 0; attempt < 500; attempt++ {
				a, err := s.Get(ctx, "hot")
				if err != nil {
					errs <- err
					return
				}
				a.Usage.Invites++
				err = s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: a, Expect: a.Version}},
					Markers: []store.Marker{{Key: fmt.Sprintf("msg:%d", i), Expires: time.Now().Add(time.Hour)}}})
				if err == nil {
					return
				}
				if !errors.Is(err, store.ErrConflict) {
					errs <- err
					return
				}
				time.Sleep(time.Duration(attempt%7) * time.Millisecond)
			}
			errs <- fmt.Errorf("writer %d never committed", i)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	a, _ := s.Get(ctx, "hot")
	if a.Usage.Invites != writers || a.Version != writers+1 {
		t.Fatalf("invites %d version %d, want %d and %d", a.Usage.Invites, a.Version, writers, writers+1)
	}
}

func tooLarge(t *testing.T, s store.Store) {
	var tx store.Tx
	for i := 0; i <= store.MaxTxItems; i++ {
		tx.Markers = append(tx.Markers, store.Marker{Key: fmt.Sprintf("msg:%d", i), Expires: time.Now().Add(time.Hour)})
	}
	if err := s.Commit(ctx, tx); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("101 items: %v, want ErrTooLarge", err)
	}
	if seen, _ := s.Seen(ctx, []string{"msg:0"}); seen["msg:0"] {
		t.Fatal("part of an oversized transaction was written")
	}
	big := acct("big", 50, account.BandNormal)
	big.Name = strings.Repeat("x", store.MaxItemBytes)
	err := s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: big}}, Markers: []store.Marker{{Key: "msg:big", Expires: time.Now().Add(time.Hour)}}})
	if !errors.Is(err, store.ErrTooLarge) || fault.KindOf(err) != fault.Permanent {
		t.Fatalf("an account over 400 KB: %v, want ErrTooLarge, a permanent error", err)
	}
	if _, err := s.Get(ctx, "big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an oversized account was written: %v", err)
	}
}
