// Package storetest is the conformance suite every store.Store implementation must pass:
// atomic conditional commits, dedupe markers, conflict retry, per-account outbox order, listing
// most at risk first with opaque cursors, scans by shard, held messages and links. Run it from
// the implementation's tests with Run.
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
		{"a list shows the summary the writer indexed", summaries},
		{"a cursor that was not returned for the query is refused", badCursors},
		{"daily history points are kept per account and day until they expire", history},
		{"receipts are kept per account and bucket, guarded by the account's version", receipts},
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
	if ob, ok := s.(outboxReader); ok {
		if out, _ := ob.Outbox(ctx, 10); len(out) != 0 {
			t.Errorf("outbox written by a failed commit: %+v", out)
		}
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
	mustCommit(t, s, store.Tx{Links: []store.Link{{Key: "stripe:cus_1", Account: "acme", Source: store.SourceGroup, At: 1787400000, Expect: "cus_1"}}})
	mustCommit(t, s, store.Tx{Links: []store.Link{{Key: "user:u1", Account: "acme", Force: true}, {Key: "user:u2", Account: "acme", Pending: true, Force: true}}})
	if got, _ := s.Links(ctx, []string{"user:u2"}); !got["user:u2"].Pending {
		t.Errorf("Links(user:u2) = %+v, want the pending release recorded", got)
	}
	mustCommit(t, s, store.Tx{Links: []store.Link{{Key: "user:u1", Account: "globex", Force: true}}})
	mustCommit(t, s, store.Tx{Unlink: []string{"user:u2"}})
	got, err := s.Links(ctx, []string{"stripe:cus_1", "user:u1", "user:u2", "user:none"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.Target{"stripe:cus_1": {Account: "acme", Source: store.SourceGroup, At: 1787400000}, "user:u1": {Account: "globex"}}
	if len(got) != len(want) {
		t.Errorf("Links = %v, want %v (unlinked and unknown keys absent)", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("Links[%s] = %+v, want %+v", k, got[k], w)
		}
	}
}

// outboxReader is how the suite reads an adapter's outbox when the adapter has one to drain
// (bbolt); an adapter whose outbox is delivered another way (DynamoDB Streams) skips it.
type outboxReader interface {
	Outbox(ctx context.Context, limit int) ([]store.Message, error)
	Ack(ctx context.Context, ids ...string) error
}

func outboxOrder(t *testing.T, s store.Store) {
	ob, ok := s.(outboxReader)
	if !ok {
		t.Skip("this store's outbox is not drained through Outbox/Ack")
	}
	for i := 0; i < 5; i++ {
		for _, acct := range []string{"acme", "globex"} {
			mustCommit(t, s, store.Tx{Outbox: []store.Message{
				{ID: fmt.Sprintf("%s_%d_a", acct, i), Body: []byte(`{"n":1}`), Attributes: map[string]string{"type": "churn_risk.raised"}},
				{ID: fmt.Sprintf("%s_%d_b", acct, i), Body: []byte(`{"n":2}`)},
			}})
		}
	}
	got, err := ob.Outbox(ctx, 100)
	if err != nil || len(got) != 20 {
		t.Fatalf("Outbox = %d messages, %v; want 20", len(got), err)
	}
	wantOrder := func(msgs []store.Message, acct string, want []string) {
		t.Helper()
		var ids []string
		for _, m := range msgs {
			if strings.HasPrefix(m.ID, acct+"_") {
				ids = append(ids, m.ID)
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Fatalf("%s's messages come as %v, want %v (its commit order)", acct, ids, want)
		}
	}
	for _, acct := range []string{"acme", "globex"} {
		var want []string
		for i := 0; i < 10; i++ {
			want = append(want, fmt.Sprintf("%s_%d_%c", acct, i/2, "ab"[i%2]))
		}
		wantOrder(got, acct, want)
	}
	for _, m := range got {
		if m.ID == "acme_0_a" && (m.Attributes["type"] != "churn_risk.raised" || string(m.Body) != `{"n":1}`) {
			t.Errorf("message content lost: %+v", m)
		}
	}
	if err := ob.Ack(ctx, "acme_0_a", "acme_1_b", "globex_0_a"); err != nil {
		t.Fatal(err)
	}
	rest, _ := ob.Outbox(ctx, 100)
	if len(rest) != 17 {
		t.Fatalf("after acking 3 of 20: %d left", len(rest))
	}
	wantOrder(rest, "acme", []string{"acme_0_b", "acme_1_a", "acme_2_a", "acme_2_b", "acme_3_a", "acme_3_b", "acme_4_a", "acme_4_b"})
	wantOrder(rest, "globex", []string{"globex_0_b", "globex_1_a", "globex_1_b", "globex_2_a", "globex_2_b", "globex_3_a", "globex_3_b", "globex_4_a", "globex_4_b"})
}

func listing(t *testing.T, s store.Store) {
	churned := acct("gone", 5, account.BandBad)
	churned.Billing.ApplySubscription(account.Subscription{ID: "sub_x", Status: account.StatusCanceled, At: 1})
	other := acct("tech", 20, account.BandBad)
	other.Health.Segment = "tech-touch"
	puts := []store.Put{{Account: acct("b30", 30, account.BandBad)}, {Account: acct("b10", 10, account.BandBad)}, {Account: acct("b40", 40, account.BandBad)},
		{Account: acct("g90", 90, account.BandGood)}, {Account: churned}, {Account: other}, {Account: acct("b11", 11, account.BandBad)},
		{Account: acct("g75", 75, account.BandGood)}, {Account: acct("n55", 55, account.BandNormal)}}
	mustCommit(t, s, store.Tx{Accounts: puts})

	page, err := s.List(ctx, store.Query{Band: account.BandBad, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if ids := idsOf(page.Summaries); fmt.Sprint(ids) != "[b10 b11 tech b30 b40]" {
		t.Errorf("BAD accounts = %v, want most at risk first without the churned one", ids)
	}
	page, _ = s.List(ctx, store.Query{Band: account.BandBad, Segment: "tech-touch"})
	if ids := idsOf(page.Summaries); fmt.Sprint(ids) != "[tech]" {
		t.Errorf("BAD tech-touch = %v", ids)
	}
	page, _ = s.List(ctx, store.Query{Band: account.BandBad, IncludeChurned: true})
	if ids := idsOf(page.Summaries); fmt.Sprint(ids) != "[gone b10 b11 tech b30 b40]" {
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
		all = append(all, idsOf(page.Summaries)...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if fmt.Sprint(all) != "[b11 tech b30 b40]" {
		t.Errorf("paged BAD list = %v", all)
	}
	// Without a band: BAD, then NORMAL, then GOOD, each by score, so the first page is the most
	// at risk whatever the band names sort as.
	page, _ = s.List(ctx, store.Query{})
	if ids := idsOf(page.Summaries); fmt.Sprint(ids) != "[b11 tech b30 b40 n55 b10 g75 g90]" {
		t.Errorf("all bands = %v, want BAD, NORMAL, GOOD, each lowest score first", ids)
	}
	all, cursor = nil, ""
	for i := 0; i < 10; i++ {
		page, err := s.List(ctx, store.Query{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, idsOf(page.Summaries)...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if fmt.Sprint(all) != "[b11 tech b30 b40 n55 b10 g75 g90]" {
		t.Errorf("paged list of all bands = %v", all)
	}
}

func idsOf(ss []store.Summary) []string {
	ids := []string{}
	for _, s := range ss {
		ids = append(ids, s.ID)
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
	// Expired items of other kinds (a daily history point) do not disturb the count.
	mustCommit(t, s, store.Tx{History: []store.Point{{Account: "acme", Day: 20000, Score: 50, Band: account.BandNormal, Expires: now.Add(-time.Hour)}}})
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
	for _, shards := range []int{1, 3, 8} {
		seen := map[string]int{}
		for shard := 0; shard < shards; shard++ {
			cursor := ""
			for pages := 0; pages < 30; pages++ {
				as, next, err := s.Scan(ctx, shard, shards, cursor, 4)
				if err != nil {
					t.Fatal(err)
				}
				if len(as) > 4 {
					t.Fatalf("a page of %d accounts, limit 4", len(as))
				}
				for _, a := range as {
					if prev, ok := seen[a.ID]; ok {
						t.Fatalf("%d shards: %s scanned in shard %d and again in shard %d", shards, a.ID, prev, shard)
					}
					seen[a.ID] = shard
				}
				if next == "" {
					break
				}
				cursor = next
			}
		}
		if len(seen) != 25 {
			t.Fatalf("%d shards: scanned %d accounts, want 25", shards, len(seen))
		}
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
	var heavy store.Tx // 11 outbox messages of 390 KB: each fits an item, together over 4 MB
	for i := 0; i < 11; i++ {
		heavy.Outbox = append(heavy.Outbox, store.Message{ID: fmt.Sprintf("heavy-%d", i), Body: []byte(`"` + strings.Repeat("x", 390<<10) + `"`)})
	}
	heavy.Markers = []store.Marker{{Key: "msg:heavy", Expires: time.Now().Add(time.Hour)}}
	if err := s.Commit(ctx, heavy); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("a transaction over 4 MB: %v, want ErrTooLarge", err)
	}
	if seen, _ := s.Seen(ctx, []string{"msg:heavy"}); seen["msg:heavy"] {
		t.Error("part of a transaction over 4 MB was written")
	}
}

func summaries(t *testing.T, s store.Store) {
	a := acct("acme", 40, account.BandBad)
	a.Billing.ApplySubscription(account.Subscription{ID: "sub_1", Status: account.StatusPastDue, MRR: 75000, Currency: "usd", At: 1})
	sum := store.NewSummary(a)
	sum.TopReason, sum.TopMeasure = "subscription is past_due", "billing_status"
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: a, Summary: sum}}})
	page, err := s.List(ctx, store.Query{})
	if err != nil || len(page.Summaries) != 1 {
		t.Fatalf("List = %+v, %v; want acme", page, err)
	}
	got := page.Summaries[0]
	if got.ID != "acme" || got.Name != "Account acme" || got.Segment != "low-touch" || got.Score != 40 || got.Band != account.BandBad ||
		got.MRR != 75000 || got.Currency != "usd" || got.TopReason != "subscription is past_due" || got.TopMeasure != "billing_status" {
		t.Fatalf("summary = %+v, want what the writer indexed", got)
	}
	// A later write replaces the summary: one row, the new words.
	a, _ = s.Get(ctx, "acme")
	a.Health.Score, a.Health.Band = 80, account.BandGood
	sum = store.NewSummary(a)
	sum.TopReason = "1 of 4 key features used"
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: a, Expect: a.Version, Summary: sum}}})
	page, _ = s.List(ctx, store.Query{})
	if len(page.Summaries) != 1 || page.Summaries[0].Score != 80 || page.Summaries[0].TopReason != "1 of 4 key features used" {
		t.Fatalf("after an update: %+v", page.Summaries)
	}
}

func badCursors(t *testing.T, s store.Store) {
	var puts []store.Put
	for i := 0; i < 6; i++ {
		puts = append(puts, store.Put{Account: acct(fmt.Sprintf("b%d", i), 10+i, account.BandBad)},
			store.Put{Account: acct(fmt.Sprintf("g%d", i), 80+i, account.BandGood)})
	}
	mustCommit(t, s, store.Tx{Accounts: puts})
	bad, err := s.List(ctx, store.Query{Band: account.BandBad, Limit: 2})
	if err != nil || bad.Next == "" {
		t.Fatalf("first BAD page: %+v %v", bad, err)
	}
	scanned, next, err := s.Scan(ctx, 0, 1, "", 2)
	if err != nil || next == "" || len(scanned) != 2 {
		t.Fatalf("first scan page: %d %q %v", len(scanned), next, err)
	}
	tampered := []byte(bad.Next)
	tampered[len(tampered)/2] ^= 1
	for _, tt := range []struct {
		name   string
		q      store.Query
		cursor string
	}{
		{"garbage", store.Query{}, "not-a-cursor!"},
		{"empty base64", store.Query{}, "AA"},
		{"a tampered cursor", store.Query{Band: account.BandBad}, string(tampered)},
		{"a BAD cursor for the GOOD list", store.Query{Band: account.BandGood}, bad.Next},
		{"a BAD cursor for another segment", store.Query{Band: account.BandBad, Segment: "high-touch"}, bad.Next},
		{"a scan cursor for a list", store.Query{}, next},
	} {
		tt.q.Cursor = tt.cursor
		if page, err := s.List(ctx, tt.q); !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("List with %s: %+v, %v; want ErrInvalidCursor", tt.name, page, err)
		}
	}
	for _, tt := range []struct {
		name          string
		shard, shards int
		cursor        string
	}{
		{"garbage", 0, 1, "%%%"},
		{"a list cursor", 0, 1, bad.Next},
		{"another shard's cursor", 1, 2, next},
	} {
		if _, _, err := s.Scan(ctx, tt.shard, tt.shards, tt.cursor, 2); !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("Scan with %s: %v, want ErrInvalidCursor", tt.name, err)
		}
	}
	// The real cursors resume.
	if page, err := s.List(ctx, store.Query{Band: account.BandBad, Limit: 2, Cursor: bad.Next}); err != nil || fmt.Sprint(idsOf(page.Summaries)) != "[b2 b3]" {
		t.Errorf("resuming the BAD list: %v %v", idsOf(page.Summaries), err)
	}
	if rest, _, err := s.Scan(ctx, 0, 1, next, 100); err != nil || len(rest) != 10 {
		t.Errorf("resuming the scan: %d accounts, %v; want 10", len(rest), err)
	}
}

func history(t *testing.T, s store.Store) {
	now := time.Now()
	day := account.Day(now)
	live := now.Add(store.HistoryTTL)
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: acct("acme", 80, account.BandGood)}}, History: []store.Point{
		{Account: "acme", Day: day - 2, Score: 80, Band: account.BandGood, Expires: live},
		{Account: "acme", Day: day - 1, Score: 75, Band: account.BandGood, Expires: live},
		{Account: "acme", Day: day, Score: 70, Band: account.BandNormal, Expires: live},
		{Account: "acme", Day: day - 40, Score: 10, Band: account.BandBad, Expires: now.Add(-time.Minute)},
		{Account: "acme2", Day: day, Score: 5, Band: account.BandBad, Expires: live},
	}})
	// A later point of the same day replaces the earlier one, without any condition.
	mustCommit(t, s, store.Tx{History: []store.Point{{Account: "acme", Day: day, Score: 40, Band: account.BandBad, Expires: live}}})
	got, err := s.History(ctx, "acme", day-60, day+1)
	if err != nil {
		t.Fatal(err)
	}
	var sum []string
	for _, p := range got {
		sum = append(sum, fmt.Sprintf("%d:%d:%s", p.Day-day, p.Score, p.Band))
	}
	if want := "-2:80:GOOD -1:75:GOOD 0:40:BAD"; strings.Join(sum, " ") != want {
		t.Fatalf("History = %q, want %q (oldest first, expired left out, other accounts apart)", strings.Join(sum, " "), want)
	}
	if got, _ := s.History(ctx, "acme", day-1, day); len(got) != 1 || got[0].Day != day-1 {
		t.Errorf("History of [day-1, day) = %+v, want the one point of day-1", got)
	}
	if got, _ := s.History(ctx, "nobody", day-60, day+1); len(got) != 0 {
		t.Errorf("History of an unknown account = %+v, want none", got)
	}
}

func receipts(t *testing.T, s store.Store) {
	a := acct("acme", 60, account.BandNormal)
	b := acct("beta", 60, account.BandNormal)
	hour := time.Now().Add(time.Hour)
	k1, k2 := store.ReceiptKey{Account: "acme", Bucket: 29_000_000}, store.ReceiptKey{Account: "acme", Bucket: 29_000_001}
	kb := store.ReceiptKey{Account: "beta", Bucket: 29_000_000} // same bucket, another account
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: a}, {Account: b}}, Receipts: []store.Receipt{
		{ReceiptKey: k1, IDs: []uint64{3, 7, 1 << 63}, Expires: hour},
		{ReceiptKey: k2, IDs: []uint64{5}, Expires: time.Now().Add(-time.Minute)}, // expired: absent
		{ReceiptKey: kb, IDs: []uint64{9}, Expires: hour},
	}})
	got, err := s.Received(ctx, []store.ReceiptKey{k1, k2, kb, {Account: "acme", Bucket: 1}, {Account: "nobody", Bucket: 29_000_000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[k1].Has(7) || !got[k1].Has(1<<63) || got[k1].Has(9) || !got[kb].Has(9) || got[kb].Has(3) {
		t.Fatalf("Received = %+v, want acme's bucket {3, 7, 2^63} and beta's {9} only", got)
	}
	if r := got[k1]; r.Expires.Unix() != hour.Unix() || r.Account != "acme" || r.Bucket != k1.Bucket {
		t.Errorf("receipt reads back as %+v", r)
	}
	// A later commit replaces the receipt whole; a failed one leaves it as it was.
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: a, Expect: 1}}, Receipts: []store.Receipt{{ReceiptKey: k1, IDs: []uint64{1, 3, 7, 1 << 63}, Expires: hour}}})
	err = s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: a, Expect: 1}}, Receipts: []store.Receipt{{ReceiptKey: k1, IDs: []uint64{2}, Expires: hour}}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a receipt written on a stale version: %v, want ErrConflict", err)
	}
	got, _ = s.Received(ctx, []store.ReceiptKey{k1})
	if r := got[k1]; len(r.IDs) != 4 || !r.Has(1) || r.Has(2) {
		t.Errorf("after a replace and a failed commit the receipt holds %v, want [1 3 7 2^63]", r.IDs)
	}
	// A receipt is only written under its account's version condition.
	err = s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: b, Expect: 1}}, Receipts: []store.Receipt{{ReceiptKey: k1, IDs: []uint64{4}, Expires: hour}}})
	if err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("a receipt of acme in a commit of beta: %v, want a refusal", err)
	}
	if err := s.Commit(ctx, store.Tx{Receipts: []store.Receipt{{ReceiptKey: k1, IDs: []uint64{4}, Expires: hour}}}); err == nil {
		t.Errorf("a receipt without any account put was accepted")
	}
	// Receipts share the account's partition on DynamoDB; they are not history and not accounts.
	if pts, err := s.History(ctx, "acme", -1<<31+1, 1<<31-1); err != nil || len(pts) != 0 {
		t.Errorf("History of an account with receipts = %v, %v; want none", pts, err)
	}
	if g, err := s.Get(ctx, "acme"); err != nil || g.Version != 2 {
		t.Errorf("Get(acme) = %v, %v; want version 2", g, err)
	}
}
