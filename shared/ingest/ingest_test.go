package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/billing"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func newService(t testing.TB) (*Service, *bolt.Store) {
	t.Helper()
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Service{Store: st, Scorecard: score.Default()}, st
}

func change(t *testing.T, name string) billing.Change {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join("..", "..", "events", "stripe", "*"+name))
	if len(m) != 1 {
		t.Fatalf("sample %s", name)
	}
	b, _ := os.ReadFile(m[0])
	var e stripe.Event
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	c, err := billing.Map(e)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDisputesResolveThroughTheCharge(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		lookup   ChargeLookup
		status   string
		disputes int
		kind     fault.Kind
	}{
		{"without an API key the dispute is acknowledged, not applied", nil, StatusIgnored, 0, fault.Other},
		{"the charge's customer gets the dispute", ChargeLookupFunc(func(context.Context, string) (string, error) { return "cus_P8Globex00000001", nil }), StatusApplied, 1, fault.Other},
		{"a charge Stripe does not know is acknowledged", ChargeLookupFunc(func(context.Context, string) (string, error) { return "", ErrChargeNotFound }), StatusIgnored, 0, fault.Other},
		{"an API outage is transient, so Stripe retries", ChargeLookupFunc(func(context.Context, string) (string, error) { return "", errors.New("timeout") }), "", 0, fault.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, st := newService(t)
			svc.Charges = tt.lookup
			if _, err := svc.Stripe(ctx, change(t, "globex-customer.created.json"), now); err != nil {
				t.Fatal(err)
			}
			res, err := svc.Stripe(ctx, change(t, "globex-charge.dispute.created.json"), now)
			if tt.kind != fault.Other {
				if fault.KindOf(err) != tt.kind {
					t.Fatalf("err %v, want kind %v", err, tt.kind)
				}
				return
			}
			if err != nil || res.Status != tt.status {
				t.Fatalf("%+v %v, want %s", res, err, tt.status)
			}
			a, _ := st.Get(ctx, "globex")
			if len(a.Billing.Disputes) != tt.disputes {
				t.Fatalf("disputes %d, want %d", len(a.Billing.Disputes), tt.disputes)
			}
		})
	}
}

func TestSubscriptionBeforeCustomerEndsOnTheNamedAccount(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	for _, name := range []string{"290-hooli-customer.subscription.created.json", "300-hooli-invoice.payment_failed.json",
		"310-hooli-customer.subscription.updated.json", "320-hooli-customer.created.json"} {
		if _, err := svc.Stripe(ctx, change(t, name), now); err != nil {
			t.Fatal(err)
		}
	}
	a, err := st.Get(ctx, "hooli")
	if err != nil {
		t.Fatal(err)
	}
	if a.Billing.Status() != "past_due" || len(a.Billing.Failures) != 1 || a.Name != "Hooli" || a.StripeCustomerID != "cus_P8Hooli000000001" {
		t.Fatalf("merged account incomplete: status %s failures %d name %q", a.Billing.Status(), len(a.Billing.Failures), a.Name)
	}
	if !a.Risk.Open {
		t.Error("the placeholder's open risk episode was lost in the merge")
	}
	out, _ := st.Outbox(ctx, 100)
	raised := 0
	for _, m := range out {
		if m.Attributes["type"] == "churn_risk.raised" {
			raised++
		}
	}
	if raised != 1 {
		t.Errorf("%d churn_risk.raised for one episode across the merge, want 1", raised)
	}
	tomb, _ := st.Get(ctx, "cus_P8Hooli000000001")
	if tomb.MergedInto != "hooli" || tomb.Billing.HasSubscription() {
		t.Fatalf("placeholder not folded: %+v", tomb)
	}
	// A late event for the customer lands on the named account.
	if res, err := svc.Stripe(ctx, change(t, "350-hooli-invoice.paid.json"), now); err != nil || res.Account != "hooli" {
		t.Fatalf("%+v %v", res, err)
	}
	page, _ := st.List(ctx, store.Query{})
	if len(page.Summaries) != 1 {
		t.Fatalf("%d accounts listed, want 1", len(page.Summaries))
	}
}

func TestRecomputeWritesOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	for _, name := range []string{"acme-customer.created.json", "acme-customer.subscription.created.json", "globex-customer.created.json"} {
		svc.Stripe(ctx, change(t, name), now)
	}
	res, err := svc.Recompute(ctx, RecomputeRequest{At: now})
	if err != nil || res.Scored != 2 || res.Changed != 0 || res.Events != 0 {
		t.Fatalf("recompute at the same time: %+v %v", res, err)
	}
}

// countingStore counts account reads, to show recompute reads unchanged accounts once.
type countingStore struct {
	*bolt.Store
	gets int
}

func (c *countingStore) Get(ctx context.Context, id string) (*account.Account, error) {
	c.gets++
	return c.Store.Get(ctx, id)
}

func TestRecomputeReadsUnchangedAccountsOnlyInTheScan(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	for _, name := range []string{"acme-customer.created.json", "acme-customer.subscription.created.json", "globex-customer.created.json"} {
		svc.Stripe(ctx, change(t, name), now)
	}
	cs := &countingStore{Store: st}
	svc.Store = cs
	if res, err := svc.Recompute(ctx, RecomputeRequest{At: now}); err != nil || res.Changed != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if cs.gets != 0 {
		t.Fatalf("%d extra account reads for a recompute that changed nothing, want 0", cs.gets)
	}
}

func TestHeldMessagesAreBoundedPerUser(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	var batch []json.RawMessage
	for i := 0; i < MaxHeldPerUser+5; i++ {
		batch = append(batch, json.RawMessage(fmt.Sprintf(`{"type":"track","messageId":"h%d","userId":"drifter","event":"Signed In","timestamp":"2026-11-20T10:00:00Z"}`, i)))
	}
	res, err := svc.Product(ctx, batch, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Held != MaxHeldPerUser || res.Rejected != 5 || len(res.Errors) != 5 {
		t.Fatalf("held %d rejected %d errors %d, want %d, 5, 5", res.Held, res.Rejected, len(res.Errors), MaxHeldPerUser)
	}
	if held, _ := st.Held(ctx, "drifter"); len(held) != MaxHeldPerUser {
		t.Fatalf("%d messages held, want %d", len(held), MaxHeldPerUser)
	}
}
