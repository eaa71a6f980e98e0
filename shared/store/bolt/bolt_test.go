package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := account.New("acme", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	a.Health.Band, a.Health.Score = account.BandBad, 12
	err = s.Commit(context.Background(), store.Tx{
		Accounts: []store.Put{{Account: a}},
		Links:    []store.Link{{Key: "stripe:cus_1", Account: "acme"}},
		Outbox:   []store.Message{{ID: "evt_1", Body: []byte(`{}`)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if got, err := s.Get(ctx, "acme"); err != nil || got.Version != 1 {
		t.Errorf("account after reopen: %+v %v", got, err)
	}
	if l, _ := s.Links(ctx, []string{"stripe:cus_1"}); l["stripe:cus_1"].Account != "acme" {
		t.Errorf("link after reopen: %v", l)
	}
	if out, _ := s.Outbox(ctx, 10); len(out) != 1 {
		t.Errorf("outbox after reopen: %+v", out)
	}
	if page, _ := s.List(ctx, store.Query{Band: account.BandBad}); len(page.Summaries) != 1 {
		t.Errorf("band index after reopen: %+v", page)
	}
}

func TestPurgeDropsOnlyExpiredEntries(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	err = s.Commit(ctx, store.Tx{Markers: []store.Marker{{Key: "old", Expires: now.Add(-time.Hour)}, {Key: "new", Expires: now.Add(time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Hold(ctx, store.Held{User: "u", MessageID: "old", At: now, Expires: now.Add(-time.Minute)})
	s.Hold(ctx, store.Held{User: "u", MessageID: "new", At: now, Expires: now.Add(time.Hour)})
	err = s.Commit(ctx, store.Tx{History: []store.Point{{Account: "a", Day: 1, Expires: now.Add(-time.Hour)}, {Account: "a", Day: 2, Expires: now.Add(time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Purge(now)
	if err != nil || n != 3 {
		t.Fatalf("purged %d, %v; want 3", n, err)
	}
	var kept int
	s.db.View(func(tx *bbolt.Tx) error { kept = tx.Bucket(bHistory).Stats().KeyN; return nil })
	if kept != 1 {
		t.Errorf("%d history points left after purge, want the live one", kept)
	}
	if seen, _ := s.Seen(ctx, []string{"new"}); !seen["new"] {
		t.Error("a live marker was purged")
	}
	if h, _ := s.Held(ctx, "u"); len(h) != 1 || h[0].MessageID != "new" {
		t.Errorf("held after purge: %+v", h)
	}
}

func TestExpiryFollowsTheInjectedClockNotTheWallClock(t *testing.T) {
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(t.TempDir(), WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Both expire in 2029 by the store's clock; by the wall clock they are still live.
	if err := s.Commit(ctx, store.Tx{Markers: []store.Marker{{Key: "msg:a", Expires: clock.Add(-time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, store.Held{User: "u", MessageID: "m", Body: []byte(`{}`), At: clock.Add(-8 * 24 * time.Hour), Expires: clock.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if seen, err := s.Seen(ctx, []string{"msg:a"}); err != nil || seen["msg:a"] {
		t.Errorf("Seen(expired by the store's clock) = %v, %v; want not seen", seen, err)
	}
	if hs, err := s.Held(ctx, "u"); err != nil || len(hs) != 0 {
		t.Errorf("Held(expired by the store's clock) = %d messages, %v; want none", len(hs), err)
	}
	if err := s.Commit(ctx, store.Tx{Markers: []store.Marker{{Key: "msg:a", Expires: clock.Add(time.Hour)}}}); err != nil {
		t.Errorf("re-marking an expired marker: %v", err)
	}
}

func TestADataFileWithTheOldBandIndexListsMostAtRiskFirst(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var puts []store.Put
	for _, x := range []struct {
		id    string
		score int
		band  string
	}{{"good", 90, account.BandGood}, {"normal", 60, account.BandNormal}, {"bad", 30, account.BandBad}} {
		a := account.New(x.id, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		a.Health.Score, a.Health.Band = x.score, x.band
		puts = append(puts, store.Put{Account: a})
	}
	if err := s.Commit(context.Background(), store.Tx{Accounts: puts}); err != nil {
		t.Fatal(err)
	}
	// Make the file look like one written by the previous version: its index was by_band,
	// keyed by band name.
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bByRisk); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bByBandV0)
		if err != nil {
			return err
		}
		return b.Put([]byte("BAD\x00030\x00bad"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	page, err := s.List(context.Background(), store.Query{})
	if err != nil || len(page.Summaries) != 3 {
		t.Fatalf("List after reopening an old file: %+v %v", page, err)
	}
	if got := page.Summaries[0]; got.ID != "bad" || got.Score != 30 || page.Summaries[2].ID != "good" {
		t.Fatalf("List after reopening an old file = %+v, want bad first, good last", page.Summaries)
	}
}

// TestADataFileOfTheFirstReleaseStillOpens stores the accounts that the demo of commit
// 7c1b6a9 wrote (testdata/accounts-7c1b6a9.json, with its index), then opens the file as
// an upgraded server would: every account must decode, list and take a new write.
func TestADataFileOfTheFirstReleaseStillOpens(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "accounts-7c1b6a9.json"))
	if err != nil {
		t.Fatal(err)
	}
	var old map[string]json.RawMessage
	if err := json.Unmarshal(raw, &old); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bByRisk); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bByBandV0); err != nil {
			return err
		}
		for id, v := range old {
			var compact bytes.Buffer
			if err := json.Compact(&compact, v); err != nil {
				return err
			}
			if err := tx.Bucket(bAccounts).Put([]byte(id), compact.Bytes()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatalf("an upgraded server cannot open the data file: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	for id := range old {
		a, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		if err := s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: a, Expect: a.Version}}}); err != nil {
			t.Errorf("writing %s back: %v", id, err)
		}
	}
	g, _ := s.Get(ctx, "globex")
	if mrr, cur := g.Billing.MRRAt(g.UpdatedAt); mrr != 75000 || cur != "usd" || g.Health.Band != account.BandBad || len(g.Usage.Days) == 0 {
		t.Errorf("globex after the upgrade: MRR %d %s, band %s, %d usage days", mrr, cur, g.Health.Band, len(g.Usage.Days))
	}
	page, err := s.List(ctx, store.Query{IncludeChurned: true, Limit: 50})
	if err != nil || len(page.Summaries) != 7 {
		t.Errorf("List after the upgrade: %d accounts, %v; want 7 (two placeholders were merged)", len(page.Summaries), err)
	}
}
