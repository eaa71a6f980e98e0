package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

// unscored stores n accounts that were never scored, so a recompute changes every one.
func unscored(t *testing.T, st store.Store, n int) []string {
	t.Helper()
	var ids []string
	var tx store.Tx
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("acct-%03d", i)
		ids = append(ids, id)
		tx.Accounts = append(tx.Accounts, store.Put{Account: account.New(id, now)})
	}
	if err := st.Commit(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestADryRunRecomputeWritesAndPublishesNothing(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	for _, name := range []string{"acme-customer.created.json", "acme-customer.subscription.created.json"} {
		if _, err := svc.Stripe(ctx, change(t, name), now); err != nil {
			t.Fatal(err)
		}
	}
	// acme is active today; sixty silent days later it would be at risk.
	for i, user := range []string{"u_acme_01", "u_acme_02", "u_acme_03"} {
		msg := fmt.Sprintf(`{"type":"track","messageId":"m%d","userId":%q,"event":"Report Created","context":{"groupId":"acme"},"timestamp":"2026-11-20T11:00:00Z"}`, i, user)
		if _, err := svc.Product(ctx, []json.RawMessage{json.RawMessage(msg)}, now); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := st.Get(ctx, "acme")
	if before.Health.Band == account.BandBad {
		t.Fatalf("acme starts BAD: %+v", before.Health)
	}
	queued, _ := st.Outbox(ctx, 100)
	res, err := svc.Recompute(ctx, RecomputeRequest{At: now.AddDate(0, 0, 60), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.Scored != 1 || res.Changed != 1 || len(res.Accounts) != 1 || res.Events != len(res.Accounts[0].Events) {
		t.Fatalf("dry run = %+v, want acme would change", res)
	}
	if got := res.Accounts[0]; got.ID != "acme" || got.Band != account.BandBad || got.PreviousBand != before.Health.Band ||
		got.PreviousScore != before.Health.Score || got.Score >= got.PreviousScore || !strings.Contains(fmt.Sprint(got.Events), "churn_risk.raised") {
		t.Fatalf("simulated acme = %+v, want a fall to BAD raising churn risk", got)
	}
	after, _ := st.Get(ctx, "acme")
	if after.Version != before.Version || after.Health.Score != before.Health.Score || len(after.Health.History) != len(before.Health.History) {
		t.Fatalf("a dry run wrote the account: version %d→%d, score %d→%d", before.Version, after.Version, before.Health.Score, after.Health.Score)
	}
	if out, _ := st.Outbox(ctx, 100); len(out) != len(queued) {
		t.Fatalf("a dry run queued %d events", len(out)-len(queued))
	}
}

func TestADryRunListsAtMostMaxSimulatedAccounts(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	var tx store.Tx
	for i := 0; i < MaxSimulated+1; i++ {
		tx.Accounts = append(tx.Accounts, store.Put{Account: account.New(fmt.Sprintf("more-%03d", i), now)})
		if len(tx.Accounts) == store.MaxTxItems {
			if err := st.Commit(ctx, tx); err != nil {
				t.Fatal(err)
			}
			tx = store.Tx{}
		}
	}
	if err := st.Commit(ctx, tx); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Recompute(ctx, RecomputeRequest{At: now, DryRun: true})
	if err != nil || res.Changed != MaxSimulated+1 || len(res.Accounts) != MaxSimulated || !res.Truncated {
		t.Fatalf("changed %d, listed %d, truncated %v, %v; want %d, %d, true", res.Changed, len(res.Accounts), res.Truncated, err, MaxSimulated+1, MaxSimulated)
	}
}

func TestRecomputeStopsWithinItsBudgetAndResumesFromTheCursor(t *testing.T) {
	ctx := context.Background()
	defer func(n int) { scanPage = n }(scanPage)
	scanPage = 2
	svc, st := newService(t)
	unscored(t, st, 7)
	total, calls, cursor := 0, 0, ""
	for ; calls < 20; calls++ {
		res, err := svc.Recompute(ctx, RecomputeRequest{At: now, Cursor: cursor, Budget: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		total += res.Changed
		if cursor = res.NextCursor; cursor == "" {
			break
		}
	}
	if total != 7 || calls != 3 {
		t.Fatalf("changed %d accounts in %d resumed calls, want 7 in 4 (one page of 2 per call)", total, calls+1)
	}
	if res, err := svc.Recompute(ctx, RecomputeRequest{At: now}); err != nil || res.Changed != 0 {
		t.Fatalf("a full run after the resumed ones: %+v %v; want nothing left to change", res, err)
	}
}

func TestRecomputeShardsTogetherScoreEveryAccountOnce(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	unscored(t, st, 40)
	const shards = 4
	total := 0
	for shard := 0; shard < shards; shard++ {
		res, err := svc.Recompute(ctx, RecomputeRequest{At: now, Shard: shard, Shards: shards})
		if err != nil {
			t.Fatal(err)
		}
		if res.Scored == 40 {
			t.Fatalf("shard %d scored every account", shard)
		}
		total += res.Changed
	}
	if total != 40 {
		t.Fatalf("the shards changed %d accounts in all, want 40", total)
	}
}

// failingStore refuses every commit that writes one account.
type failingStore struct {
	*bolt.Store
	id string
}

func (f *failingStore) Commit(ctx context.Context, tx store.Tx) error {
	for _, p := range tx.Accounts {
		if p.Account.ID == f.id {
			return errors.New("disk full")
		}
	}
	return f.Store.Commit(ctx, tx)
}

func TestOneFailingAccountIsReportedAndTheRecomputeGoesOn(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	ids := unscored(t, st, 5)
	svc.Store = &failingStore{Store: st, id: ids[1]}
	svc.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	res, err := svc.Recompute(ctx, RecomputeRequest{At: now})
	if err != nil {
		t.Fatalf("one failing account aborted the run: %v", err)
	}
	if res.Scored != 5 || res.Changed != 4 || res.FailedCount != 1 || len(res.Failed) != 1 || res.Failed[0].ID != ids[1] || res.Failed[0].Error == "" {
		t.Fatalf("result %+v, want 4 changed and %s reported failed", res, ids[1])
	}
	for _, id := range []string{ids[0], ids[4]} {
		if a, _ := st.Get(ctx, id); !a.Health.Scored() {
			t.Errorf("%s, after the failing account, was not scored", id)
		}
	}
}

func TestRecomputeRefusesACursorItDidNotReturn(t *testing.T) {
	svc, st := newService(t)
	unscored(t, st, 3)
	_, err := svc.Recompute(context.Background(), RecomputeRequest{At: now, Cursor: "garbage"})
	if !errors.Is(err, store.ErrInvalidCursor) {
		t.Fatalf("err %v, want ErrInvalidCursor", err)
	}
}
