package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/risk"
)

// eventsFor returns the types (with kinds) of the events published about account id.
func eventsFor(es []risk.Event, id string) []string {
	var out []string
	for _, e := range es {
		if e.Account.ID == id {
			out = append(out, e.Type+"/"+e.Kind)
		}
	}
	return out
}

func TestSampleCustomersEndInTheRightBand(t *testing.T) {
	h := newHarness(t)
	for _, f := range samples(t) {
		if code, m := h.send(f); code != 200 {
			t.Fatalf("%s: %d %v", f, code, m)
		}
	}
	tests := []struct {
		id, band, status, segment string
		mrr                       float64
		churned                   bool
		reason                    string
		events                    []string
	}{
		{id: "acme", band: "GOOD", status: "active", segment: "high-touch", mrr: 275000},
		{id: "globex", band: "BAD", status: "past_due", segment: "low-touch", mrr: 75000, reason: "past_due",
			events: []string{"churn_risk.raised/involuntary"}},
		{id: "initech", band: "BAD", status: "active", segment: "tech-touch", mrr: 32000, reason: "set to cancel",
			events: []string{"churn_risk.raised/voluntary"}},
		{id: "umbrella", band: "BAD", status: "active", segment: "low-touch", mrr: 208000, reason: "no product activity for 25 days",
			events: []string{"churn_risk.raised/engagement"}},
		{id: "hooli", band: "GOOD", status: "active", segment: "tech-touch", mrr: 30000,
			events: []string{"churn_risk.cleared/involuntary"}},
		{id: "vandelay", band: "BAD", status: "canceled", segment: "tech-touch", mrr: 0, churned: true, reason: "churned"},
		{id: "soylent", status: "trialing", segment: "tech-touch", mrr: 0},
	}
	es := h.events()
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			a := h.account(tt.id)
			if tt.band != "" && path(a, "health", "band") != tt.band {
				t.Errorf("band %v, want %s (reasons %v)", path(a, "health", "band"), tt.band, path(a, "health", "reasons"))
			}
			if path(a, "billing", "status") != tt.status || a["segment"] != tt.segment || path(a, "billing", "mrr", "amount") != tt.mrr {
				t.Errorf("status %v segment %v mrr %v, want %s %s %v", path(a, "billing", "status"), a["segment"], path(a, "billing", "mrr", "amount"), tt.status, tt.segment, tt.mrr)
			}
			if a["churned"] != tt.churned {
				t.Errorf("churned %v", a["churned"])
			}
			if tt.reason != "" && !strings.Contains(fmt.Sprint(path(a, "health", "reasons")), tt.reason) {
				t.Errorf("reasons %v do not mention %q", path(a, "health", "reasons"), tt.reason)
			}
			got := strings.Join(eventsFor(es, tt.id), " ")
			for _, want := range tt.events {
				if !strings.Contains(got, want) {
					t.Errorf("events %q, want %s", got, want)
				}
			}
		})
	}
	if got := eventsFor(es, "vandelay"); len(got) == 0 || got[len(got)-1] != "account.churned/involuntary" {
		t.Errorf("vandelay events %v, want to end in account.churned/involuntary (canceled for non-payment)", got)
	}
	// The churned account is left out of the at-risk list.
	_, list := h.get("/accounts?band=BAD")
	ids := fmt.Sprint(list["accounts"])
	for _, want := range []string{"globex", "initech", "umbrella"} {
		if !strings.Contains(ids, want) {
			t.Errorf("BAD list lacks %s: %s", want, ids)
		}
	}
	if strings.Contains(ids, "vandelay") {
		t.Errorf("a churned account is in the at-risk list: %s", ids)
	}
}

func TestRiskEventsCarryTheContract(t *testing.T) {
	h := newHarness(t)
	h.sendCustomer("globex")
	var raised *risk.Event
	for _, e := range h.events() {
		if e.Type == risk.TypeRaised {
			raised = &e
		}
	}
	if raised == nil {
		t.Fatal("no churn_risk.raised for a past-due customer")
	}
	if raised.ID == "" || raised.Kind != "involuntary" || raised.Account.StripeCustomerID != "cus_P8Globex00000001" ||
		raised.Account.MRR.Amount != 75000 || raised.Account.MRR.Currency != "usd" || raised.Account.Segment != "low-touch" ||
		raised.Health.PreviousScore == nil || raised.ScorecardVersion == "" || raised.SchemaVersion != "1" || len(raised.Reasons) == 0 || len(raised.Changes) == 0 {
		t.Fatalf("incomplete event: %+v", raised)
	}
	if raised.Attributes()["kind"] != "involuntary" || raised.Attributes()["band"] != "BAD" {
		t.Errorf("attributes %v", raised.Attributes())
	}
}

func TestLinkingInEitherOrder(t *testing.T) {
	group := `{"type":"group","messageId":"g-1","userId":"u1","groupId":"soylent","timestamp":"2026-11-11T12:00:00Z","traits":{"name":"Soylent","stripe_customer_id":"cus_P8Soylent000001"}}`
	usage := track("t-1", "u1", "", sampleNow.Add(-time.Hour), "Signed In")
	usage = strings.Replace(usage, `"context":{"groupId":""}`, `"context":{}`, 1)
	stripeFiles := []string{"soylent-customer.created.json", "soylent-customer.subscription.created.json"}
	orders := map[string][]string{
		"stripe first":  {"s0", "s1", "g", "u"},
		"product first": {"g", "u", "s0", "s1"},
		"interleaved":   {"s1", "g", "u", "s0"},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			for _, step := range order {
				var code int
				var m map[string]any
				switch step {
				case "g":
					code, m = h.product([]byte(group))
				case "u":
					code, m = h.product([]byte(usage))
				case "s0", "s1":
					code, m = h.stripe(sample(t, "stripe", stripeFiles[step[1]-'0']))
				}
				if code != 200 {
					t.Fatalf("%s: %d %v", step, code, m)
				}
			}
			a := h.account("soylent")
			if a["stripe_customer_id"] != "cus_P8Soylent000001" || path(a, "billing", "status") != "trialing" || path(a, "usage", "events_30d") != 1.0 {
				t.Fatalf("not one whole account: %v", a)
			}
			// The Stripe customer id finds the same account.
			if b := h.account("cus_P8Soylent000001"); b["id"] != "soylent" {
				t.Fatalf("GET by customer id gave %v", b["id"])
			}
			_, list := h.get("/accounts")
			if n := len(list["accounts"].([]any)); n != 1 {
				t.Fatalf("%d accounts listed, want 1: %v", n, list)
			}
		})
	}
}

func TestHeldMessagesApplyWhenTheUserIsKnown(t *testing.T) {
	h := newHarness(t)
	orphan := `{"type":"track","messageId":"h-1","userId":"u-new","event":"Report Created","timestamp":"2026-11-20T10:00:00Z"}`
	code, m := h.product([]byte(orphan))
	if code != 200 || m["held"] != 1.0 || m["applied"] != 0.0 {
		t.Fatalf("orphan: %d %v", code, m)
	}
	h.nothingStored()
	// Redelivered while held: still held, never applied twice.
	if _, m := h.product([]byte(orphan)); m["held"] != 1.0 {
		t.Fatalf("redelivered orphan: %v", m)
	}
	identify := `{"type":"identify","messageId":"h-2","userId":"u-new","timestamp":"2026-11-20T11:00:00Z","traits":{"company":{"id":"newco"}}}`
	if code, m := h.product([]byte(identify)); code != 200 || m["applied"] != 1.0 {
		t.Fatalf("identify: %d %v", code, m)
	}
	a := h.account("newco")
	if path(a, "usage", "events_30d") != 1.0 || path(a, "usage", "key_features_last_used", "Report Created") == nil {
		t.Fatalf("held message not applied: %v", path(a, "usage"))
	}
	if _, m := h.product([]byte(orphan)); m["duplicate"] != 1.0 {
		t.Fatalf("released message redelivered: %v", m)
	}
	// Later messages of the user resolve through the membership learned.
	later := `{"type":"track","messageId":"h-3","userId":"u-new","event":"Signed In","timestamp":"2026-11-20T11:30:00Z"}`
	if _, m := h.product([]byte(later)); m["applied"] != 1.0 {
		t.Fatalf("member's message: %v", m)
	}
	if got := path(h.account("newco"), "usage", "events_30d"); got != 2.0 {
		t.Fatalf("events_30d %v, want 2", got)
	}
}

func TestRecomputeSixtyDaysLaterRaisesEngagementRisk(t *testing.T) {
	h := newHarness(t)
	h.sendCustomer("acme")
	if b := path(h.account("acme"), "health", "band"); b != "GOOD" {
		t.Fatalf("acme starts %v", b)
	}
	before := len(h.events())
	later := sampleNow.AddDate(0, 0, 60)
	res := h.recompute(later)
	if res["scored"] != 1.0 || res["changed"] != 1.0 {
		t.Fatalf("recompute %v", res)
	}
	h.setNow(later)
	a := h.account("acme")
	if path(a, "health", "band") != "BAD" || !strings.Contains(fmt.Sprint(path(a, "health", "reasons")), "no product activity for 60 days") {
		t.Fatalf("after 60 silent days: %v %v", path(a, "health", "band"), path(a, "health", "reasons"))
	}
	es := h.events()[before:]
	if got := eventsFor(es, "acme"); len(got) == 0 || got[0] != "churn_risk.raised/engagement" {
		t.Fatalf("events %v, want churn_risk.raised/engagement", got)
	}
	// Recomputing again at the same time changes nothing and publishes nothing.
	if res := h.recompute(later); res["changed"] != 0.0 || res["events"] != 0.0 {
		t.Fatalf("second recompute %v", res)
	}
}

func TestRiskEpisodesDoNotFlap(t *testing.T) {
	h := newHarness(t)
	h.sendCustomer("acme")
	// Recompute daily for 40 days: the account goes BAD once and stays there.
	for d := 1; d <= 40; d++ {
		h.recompute(sampleNow.AddDate(0, 0, d))
	}
	var raised, cleared int
	for _, e := range h.events() {
		switch e.Type {
		case risk.TypeRaised:
			raised++
		case risk.TypeCleared:
			cleared++
		}
	}
	if raised != 1 || cleared != 0 {
		t.Fatalf("raised %d cleared %d over a steady decline, want 1 and 0", raised, cleared)
	}
	// Activity comes back: the episode clears once.
	h.setNow(sampleNow.AddDate(0, 0, 41))
	var batch []string
	for i := 0; i < 60; i++ {
		batch = append(batch, track(fmt.Sprintf("back-%d", i), fmt.Sprintf("u_acme_%02d", i%18+1), "acme", sampleNow.AddDate(0, 0, 41).Add(-time.Duration(i)*time.Minute), []string{"Report Created", "Dashboard Shared", "Integration Connected", "Export Completed"}[i%4]))
	}
	if code, m := h.product([]byte("[" + strings.Join(batch, ",") + "]")); code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	cleared = 0
	for _, e := range h.events() {
		if e.Type == risk.TypeCleared {
			cleared++
		}
	}
	if cleared != 1 {
		t.Fatalf("cleared %d times after activity returned, want 1 (band %v)", cleared, path(h.account("acme"), "health"))
	}
}

func TestAccountRoutes(t *testing.T) {
	h := newHarness(t)
	h.product([]byte(track("m1", "u1", "acme", sampleNow, "Signed In")))
	tests := []struct {
		name, path, token string
		code              int
	}{
		{"an account", "/accounts/acme", apiToken, 200},
		{"no token", "/accounts/acme", "", 401},
		{"wrong token", "/accounts/acme", "nope", 401},
		{"an unknown account", "/accounts/nobody", apiToken, 404},
		{"a list", "/accounts?band=NORMAL", apiToken, 200},
		{"an unknown band", "/accounts?band=PURPLE", apiToken, 400},
		{"a bad limit", "/accounts?limit=0", apiToken, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, h.srv.URL+tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			if code, m := h.do(req); code != tt.code {
				t.Fatalf("got %d %v, want %d", code, m, tt.code)
			}
		})
	}
	a := h.account("acme")
	for _, p := range [][]string{{"id"}, {"name"}, {"stripe_customer_id"}, {"segment"}, {"billing", "status"}, {"billing", "mrr", "amount"},
		{"billing", "mrr", "currency"}, {"billing", "cancel_at_period_end"}, {"billing", "failed_payments_30d"}, {"usage", "last_seen_at"},
		{"usage", "active_users_7d"}, {"usage", "active_users_30d"}, {"usage", "events_30d"}, {"usage", "seats_purchased"},
		{"usage", "seats_used"}, {"health", "score"}, {"health", "band"}, {"health", "measures"}, {"health", "reasons"}, {"health", "updated_at"}} {
		m := a
		var v any = m
		for _, k := range p {
			mm, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object", p)
			}
			if _, ok := mm[k]; !ok {
				t.Errorf("account view lacks %s", strings.Join(p, "."))
			}
			v = mm[k]
		}
	}
	for _, m := range path(a, "health", "measures").([]any) {
		for _, k := range []string{"name", "score", "weight", "contribution", "detail"} {
			if _, ok := m.(map[string]any)[k]; !ok {
				t.Errorf("measure lacks %s: %v", k, m)
			}
		}
	}
}
