package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/risk"
)

// stripeEvent builds a Stripe event of type typ about object, created at.
func stripeEvent(id, typ string, at time.Time, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2023-10-16", "type": typ,
		"created": at.Unix(), "data": map[string]any{"object": object}})
	return b
}

func customer(id, name, acct string) map[string]any {
	c := map[string]any{"id": id, "object": "customer", "name": name, "email": "billing@" + id + ".example", "metadata": map[string]any{}}
	if acct != "" {
		c["metadata"] = map[string]any{"account_id": acct}
	}
	return c
}

func subscription(id, cus, status string, amount int64) map[string]any {
	return map[string]any{"id": id, "object": "subscription", "customer": cus, "status": status, "currency": "usd",
		"items": map[string]any{"object": "list", "data": []any{map[string]any{"id": "si_" + id, "object": "subscription_item", "quantity": 1,
			"price": map[string]any{"id": "price_" + id, "object": "price", "currency": "usd", "unit_amount": amount, "billing_scheme": "per_unit",
				"recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "licensed"}}}}}}
}

func failedInvoice(id, cus string) map[string]any {
	return map[string]any{"id": id, "object": "invoice", "customer": cus, "amount_due": 10000, "currency": "usd", "attempt_count": 1,
		"next_payment_attempt": sampleNow.Add(72 * time.Hour).Unix()}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (h *harness) mustStripe(body []byte) map[string]any {
	h.t.Helper()
	code, m := h.stripe(body)
	if code != 200 {
		h.t.Fatalf("stripe event: %d %v", code, m)
	}
	return m
}

func (h *harness) mustProduct(body string) map[string]any {
	h.t.Helper()
	code, m := h.product([]byte(body))
	if code != 200 {
		h.t.Fatalf("product: %d %v", code, m)
	}
	return m
}

func TestAMovingCustomerTakesItsBillingAlong(t *testing.T) {
	h := newHarness(t)
	t0 := sampleNow.Add(-4 * time.Hour)
	h.mustProduct(`{"type":"group","messageId":"nh-1","userId":"nh-admin","groupId":"new-home","timestamp":"2026-11-20T07:00:00Z","traits":{"name":"New Home Inc"}}`)
	h.mustStripe(stripeEvent("evt_m1", "customer.created", t0, customer("cus_Mover", "Mover Stripe Name", "old-home")))
	h.mustStripe(stripeEvent("evt_m2", "customer.subscription.created", t0.Add(time.Minute), subscription("sub_Mover", "cus_Mover", "active", 10000)))
	h.mustStripe(stripeEvent("evt_m3", "invoice.payment_failed", t0.Add(2*time.Minute), failedInvoice("in_Mover1", "cus_Mover")))
	if got := path(h.account("old-home"), "billing", "mrr", "amount"); got != 10000.0 {
		t.Fatalf("before the move old-home MRR %v", got)
	}
	// The customer's metadata.account_id now names another account.
	if m := h.mustStripe(stripeEvent("evt_m4", "customer.updated", t0.Add(3*time.Minute), customer("cus_Mover", "Mover Stripe Name", "new-home"))); m["account"] != "new-home" {
		t.Fatalf("customer.updated landed on %v", m["account"])
	}
	old, moved := h.account("old-home"), h.account("new-home")
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"old-home MRR", path(old, "billing", "mrr", "amount"), 0.0},
		{"old-home subscriptions", len(path(old, "billing", "subscriptions").([]any)), 0},
		{"old-home failed payments", path(old, "billing", "failed_payments_30d"), 0.0},
		{"old-home customers", len(path(old, "stripe_customer_ids").([]any)), 0},
		{"new-home MRR", path(moved, "billing", "mrr", "amount"), 10000.0},
		{"new-home status", path(moved, "billing", "status"), "active"},
		{"new-home failed payments", path(moved, "billing", "failed_payments_30d"), 1.0},
		{"new-home unpaid failures", path(moved, "billing", "unpaid_failures_30d"), 1.0},
		{"new-home name (the product's, not Stripe's)", path(moved, "name"), "New Home Inc"},
		{"new-home customer", path(moved, "stripe_customer_id"), "cus_Mover"},
		{"GET /accounts/cus_… after the move", h.account("cus_Mover")["id"], "new-home"},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// The next billing event lands on the new account.
	if m := h.mustStripe(stripeEvent("evt_m5", "invoice.paid", t0.Add(4*time.Minute), failedInvoice("in_Mover1", "cus_Mover"))); m["account"] != "new-home" {
		t.Errorf("the next billing event landed on %v", m["account"])
	}
	if got := path(h.account("new-home"), "billing", "unpaid_failures_30d"); got != 0.0 {
		t.Errorf("after payment, unpaid failures = %v", got)
	}
}

func TestAnAccountListsEveryStripeCustomerAndKeepsTheFirst(t *testing.T) {
	h := newHarness(t)
	t0 := sampleNow.Add(-time.Hour)
	h.mustStripe(stripeEvent("evt_a1", "customer.created", t0, customer("cus_First", "Two Cos", "twoco")))
	h.mustStripe(stripeEvent("evt_a2", "customer.subscription.created", t0.Add(time.Second), subscription("sub_A", "cus_First", "active", 5000)))
	h.mustStripe(stripeEvent("evt_a3", "customer.created", t0.Add(time.Minute), customer("cus_Second", "Two Cos EU", "twoco")))
	h.mustStripe(stripeEvent("evt_a4", "customer.subscription.created", t0.Add(2*time.Minute), subscription("sub_B", "cus_Second", "past_due", 7000)))
	a := h.account("twoco")
	if a["name"] != "Two Cos" {
		t.Errorf("name %v, want the first customer's (Two Cos), not the one linked later", a["name"])
	}
	if a["stripe_customer_id"] != "cus_First" || fmt.Sprint(a["stripe_customer_ids"]) != "[cus_First cus_Second]" {
		t.Errorf("stripe_customer_id %v, stripe_customer_ids %v; want cus_First and both", a["stripe_customer_id"], a["stripe_customer_ids"])
	}
	var raised *risk.Event
	for _, e := range h.events() {
		if e.Type == risk.TypeRaised {
			raised = &e
		}
	}
	if raised == nil || raised.Account.StripeCustomerID != "cus_First" || !slices.Equal(raised.Account.StripeCustomerIDs, []string{"cus_First", "cus_Second"}) {
		t.Fatalf("raised event account = %+v, want cus_First first and both listed", raised)
	}
}

// subscriber tracks open risk episodes by account id, as a Slack or CRM integration would.
type subscriber struct {
	open map[string]string // account id → kind of the raise
	ids  map[string]bool
}

func (s *subscriber) consume(t *testing.T, es []risk.Event) {
	t.Helper()
	for _, e := range es {
		if s.ids[e.ID] {
			t.Errorf("event id %s delivered for two transitions (%s)", e.ID, e.Type)
		}
		s.ids[e.ID] = true
		switch e.Type {
		case risk.TypeRaised:
			s.open[e.Account.ID] = e.Kind
		case risk.TypeCleared, risk.TypeChurned:
			delete(s.open, e.Account.ID)
		case risk.TypeMerged:
			from := e.Merge.From
			switch e.Merge.Episode {
			case risk.EpisodeContinued:
				s.open[e.Merge.Into] = s.open[from]
				delete(s.open, from)
			case risk.EpisodeClosed:
				delete(s.open, from)
			}
		}
	}
}

func TestMergingAccountsAtRiskLeavesNoRaiseUncleared(t *testing.T) {
	tests := []struct {
		name          string
		productAtRisk bool
		episode       string
	}{
		{"both at risk: the placeholder's episode closes, the product's goes on as involuntary", true, risk.EpisodeClosed},
		{"only the placeholder at risk: its episode continues under the product id", false, risk.EpisodeContinued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			sub := &subscriber{open: map[string]string{}, ids: map[string]bool{}}
			t0 := sampleNow.Add(-time.Hour)
			last := "2026-11-20T11:00:00Z"
			if tt.productAtRisk {
				last = "2026-10-25T11:00:00Z" // silent for 26 days: inactive
			}
			h.mustProduct(fmt.Sprintf(`{"type":"track","messageId":"duo-1","userId":"duo-u","event":"Signed In","timestamp":%q,"context":{"groupId":"duo"}}`, last))
			h.mustStripe(stripeEvent("evt_d1", "customer.subscription.created", t0, subscription("sub_Duo", "cus_Duo", "past_due", 20000)))
			first := h.events()
			sub.consume(t, first)
			for _, e := range first {
				if e.Type == risk.TypeRaised && e.Account.ID == "duo" && !e.OccurredAt.Equal(mustTime(t, last)) {
					t.Errorf("the product's raise occurred_at %v, want the message's timestamp %s", e.OccurredAt, last)
				}
			}
			if _, ok := sub.open["cus_Duo"]; !ok {
				t.Fatalf("the placeholder raised no risk: %v", sub.open)
			}
			if _, ok := sub.open["duo"]; ok != tt.productAtRisk {
				t.Fatalf("product at risk = %v, want %v", ok, tt.productAtRisk)
			}
			before := len(h.events())
			h.mustStripe(stripeEvent("evt_d2", "customer.created", t0.Add(time.Minute), customer("cus_Duo", "Duo Billing", "duo")))
			es := h.events()[before:]
			sub.consume(t, es)
			for _, e := range es[1:] {
				if e.Type == risk.TypeDropped {
					t.Errorf("a merge alerted health.dropped: two records becoming one is not a fall")
				}
			}
			if len(es) == 0 || es[0].Type != risk.TypeMerged || es[0].Merge.From != "cus_Duo" || es[0].Merge.Into != "duo" || es[0].Merge.Episode != tt.episode {
				t.Fatalf("events of the merge = %+v, want account.merged from cus_Duo into duo, episode %s", es, tt.episode)
			}
			if got := path(h.account("duo"), "risk", "kind"); got != "involuntary" {
				t.Errorf("merged account's risk kind %v, want involuntary (past_due)", got)
			}
			if len(sub.open) != 1 || sub.open["duo"] == "" {
				t.Errorf("open episodes after the merge = %v, want just duo's", sub.open)
			}
			// Recovery: paid up and active again; the one open episode clears.
			before = len(h.events())
			h.mustProduct(`{"type":"track","messageId":"duo-2","userId":"duo-u","event":"Signed In","timestamp":"2026-11-20T11:30:00Z","context":{"groupId":"duo"}}`)
			h.mustStripe(stripeEvent("evt_d3", "customer.subscription.updated", t0.Add(2*time.Minute), subscription("sub_Duo", "cus_Duo", "active", 20000)))
			sub.consume(t, h.events()[before:])
			if len(sub.open) != 0 {
				t.Errorf("raises nothing will clear: %v", sub.open)
			}
		})
	}
}

func TestAnOlderClaimDeliveredLateDoesNotMoveACustomer(t *testing.T) {
	h := newHarness(t)
	t0 := sampleNow.Add(-time.Hour)
	h.mustStripe(stripeEvent("evt_o1", "customer.created", t0, customer("cus_Late", "Late Co", "first-home")))
	h.mustStripe(stripeEvent("evt_o2", "customer.subscription.created", t0.Add(time.Second), subscription("sub_Late", "cus_Late", "active", 50000)))
	h.mustStripe(stripeEvent("evt_o3", "customer.updated", t0.Add(50*time.Minute), customer("cus_Late", "Late Co", "second-home")))
	// Stripe delivers the update of minute 10 after the one of minute 50.
	if m := h.mustStripe(stripeEvent("evt_o4", "customer.updated", t0.Add(10*time.Minute), customer("cus_Late", "Late Co", "first-home"))); m["status"] != "stale" {
		t.Errorf("the late, older update answered %v, want stale", m)
	}
	if id := h.account("cus_Late")["id"]; id != "second-home" {
		t.Errorf("GET /accounts/cus_Late = %v, want second-home (the newer snapshot's account)", id)
	}
	if got := path(h.account("second-home"), "billing", "mrr", "amount"); got != 50000.0 {
		t.Errorf("second-home MRR %v, want 50000", got)
	}
	// A group call replayed from before the newest claim does not move it either, and says so.
	m := h.mustProduct(`{"type":"group","messageId":"late-g","userId":"late-u","groupId":"third-home","timestamp":"2026-11-20T10:05:00Z","traits":{"stripe_customer_id":"cus_Late"}}`)
	if errs, _ := m["errors"].([]any); len(errs) != 1 {
		t.Errorf("an older group claim on a Stripe-linked customer: errors %v, want it refused", m["errors"])
	}
	if id := h.account("cus_Late")["id"]; id != "second-home" {
		t.Errorf("after an old group claim, GET /accounts/cus_Late = %v, want second-home", id)
	}
}

func TestAnOlderGroupClaimDoesNotTakeACustomerANewerGroupClaimed(t *testing.T) {
	h := newHarness(t)
	claim := func(id, acct, at string) map[string]any {
		return h.mustProduct(fmt.Sprintf(`{"type":"group","messageId":%q,"userId":"u-%s","groupId":%q,"timestamp":%q,"traits":{"stripe_customer_id":"cus_Replayed"}}`, id, acct, acct, at))
	}
	claim("r1", "current", "2026-11-20T11:00:00Z")
	m := claim("r2", "replayed", "2026-08-20T11:00:00Z") // a Segment Replay of an old group call
	if errs, _ := m["errors"].([]any); len(errs) != 1 {
		t.Errorf("errors %v, want the older claim refused", m["errors"])
	}
	if id := h.account("cus_Replayed")["id"]; id != "current" {
		t.Errorf("GET /accounts/cus_Replayed = %v, want current", id)
	}
	claim("r3", "newest", "2026-11-20T11:30:00Z")
	if id := h.account("cus_Replayed")["id"]; id != "newest" {
		t.Errorf("a newer group claim: GET /accounts/cus_Replayed = %v, want newest", id)
	}
}

func TestAPersonWhoBrowsedAnonymouslyCountsOnceAndNothingWaits(t *testing.T) {
	h := newHarness(t)
	for _, m := range []string{
		`{"type":"track","messageId":"z-1","anonymousId":"anon_Z1","event":"Report Created","timestamp":"2026-11-20T09:00:00Z"}`,
		`{"type":"identify","messageId":"z-2","userId":"user_Z1","anonymousId":"anon_Z1","timestamp":"2026-11-20T09:05:00Z"}`,
	} {
		if r := h.mustProduct(m); r["held"] != 1.0 {
			t.Fatalf("%s: %v, want held", m, r)
		}
	}
	h.mustProduct(`{"type":"group","messageId":"z-3","userId":"user_Z1","groupId":"acct_Z1","timestamp":"2026-11-20T09:10:00Z"}`)
	a := h.account("acct_Z1")
	if got := path(a, "usage", "active_users_30d"); got != 1.0 {
		t.Errorf("active_users_30d = %v, want 1 (one person, anonymous then identified)", got)
	}
	if got := path(a, "usage", "events_30d"); got != 1.0 {
		t.Errorf("events_30d = %v, want 1: the anonymous track must be released too", got)
	}
	if hs, _ := h.st.Held(context.Background(), "anon:anon_Z1"); len(hs) != 0 {
		t.Errorf("%d messages still wait for the anonymous id", len(hs))
	}
}

func TestLateCustomerEventsNeverUndoANewerPlacement(t *testing.T) {
	t0 := sampleNow.Add(-time.Hour)
	tests := []struct {
		name   string
		events [][]byte
		want   string
	}{
		{"same second: customer.updated is newer than customer.created, whatever the delivery order", [][]byte{
			stripeEvent("evt_t2", "customer.updated", t0, customer("cus_X", "X", "acct-b")),
			stripeEvent("evt_t1", "customer.created", t0, customer("cus_X", "X", "acct-a")),
		}, "acct-b"},
		{"a newer update that only confirms the account still outranks an older one delivered late", [][]byte{
			stripeEvent("evt_c1", "customer.created", t0, customer("cus_X", "X", "acct-a")),
			stripeEvent("evt_c3", "customer.updated", t0.Add(30*time.Minute), customer("cus_X", "X", "acct-a")),
			stripeEvent("evt_c2", "customer.updated", t0.Add(10*time.Minute), customer("cus_X", "X", "acct-b")),
		}, "acct-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for _, e := range tt.events {
				h.mustStripe(e)
			}
			if id := h.account("cus_X")["id"]; id != tt.want {
				t.Errorf("cus_X is on %v, want %s", id, tt.want)
			}
		})
	}
}
