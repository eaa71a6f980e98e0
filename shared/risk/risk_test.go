package risk

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/score"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func paying(a *account.Account, status string, at time.Time) {
	a.Billing.ApplySubscription(account.Subscription{ID: "sub_1", Status: status, Currency: "usd", MRR: 10000, Seats: 5, At: at.Unix()})
}

func types(es []Event) string {
	var s []string
	for _, e := range es {
		s = append(s, e.Type+"/"+e.Kind)
	}
	return strings.Join(s, " ")
}

func TestTransitions(t *testing.T) {
	sc := score.Default()
	tests := []struct {
		name  string
		steps []func(a *account.Account) time.Time
		want  []string // events of each step
	}{
		{
			name: "dunning raises involuntary risk once, recovery clears it once",
			steps: []func(a *account.Account) time.Time{
				func(a *account.Account) time.Time { paying(a, "active", t0); return t0 },
				func(a *account.Account) time.Time { paying(a, "past_due", t0.Add(time.Hour)); return t0.Add(time.Hour) },
				func(a *account.Account) time.Time { return t0.Add(2 * time.Hour) }, // nothing new
				func(a *account.Account) time.Time {
					paying(a, "active", t0.Add(3*time.Hour))
					return t0.Add(3 * time.Hour)
				},
			},
			want: []string{"", "churn_risk.raised/involuntary", "", "churn_risk.cleared/involuntary"},
		},
		{
			name: "churn while at risk closes the episode without a cleared",
			steps: []func(a *account.Account) time.Time{
				func(a *account.Account) time.Time { paying(a, "past_due", t0); return t0 },
				func(a *account.Account) time.Time { paying(a, "canceled", t0.Add(time.Hour)); return t0.Add(time.Hour) },
				func(a *account.Account) time.Time { return t0.Add(48 * time.Hour) },
			},
			want: []string{"churn_risk.raised/involuntary", "account.churned/voluntary", ""},
		},
		{
			name: "scheduling a cancellation raises voluntary risk; undoing it clears",
			steps: []func(a *account.Account) time.Time{
				func(a *account.Account) time.Time { paying(a, "active", t0); return t0 },
				func(a *account.Account) time.Time {
					a.Billing.ApplySubscription(account.Subscription{ID: "sub_1", Status: "active", MRR: 10000, CancelAtPeriodEnd: true, At: t0.Add(time.Hour).Unix()})
					return t0.Add(time.Hour)
				},
				func(a *account.Account) time.Time {
					paying(a, "active", t0.Add(2*time.Hour))
					return t0.Add(2 * time.Hour)
				},
			},
			want: []string{"", "churn_risk.raised/voluntary", "churn_risk.cleared/voluntary"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := account.New("acme", t0)
			for i, step := range tt.steps {
				at := step(a)
				if got := types(Rescore(a, sc, at, at)); got != tt.want[i] {
					t.Fatalf("step %d: events %q, want %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestEventIDsAreStablePerTransition(t *testing.T) {
	sc := score.Default()
	run := func() []Event {
		a := account.New("acme", t0)
		paying(a, "active", t0)
		Rescore(a, sc, t0, t0)
		paying(a, "past_due", t0.Add(time.Hour))
		return Rescore(a, sc, t0.Add(time.Hour), t0.Add(time.Hour))
	}
	x, y := run(), run()
	if len(x) == 0 || x[0].ID != y[0].ID {
		t.Fatalf("replaying the same transition gave ids %v and %v", x, y)
	}
	if x[0].ID == x[len(x)-1].ID && len(x) > 1 {
		t.Fatal("two events of one transition share an id")
	}
}

func TestHealthDroppedOncePerWindow(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0)
	for d := 0; d < 40; d++ {
		for u := 0; u < 5; u++ {
			a.Usage.Record(string(rune('a'+u)), t0.AddDate(0, 0, -d), true)
		}
	}
	paying(a, "active", t0)
	Rescore(a, sc, t0, t0)
	drops := 0
	for d := 1; d <= 30; d++ {
		for _, e := range Rescore(a, sc, t0.AddDate(0, 0, d), t0.AddDate(0, 0, d)) {
			if e.Type == TypeDropped {
				drops++
			}
		}
	}
	if drops == 0 || drops > 30/sc.Drop.Days+1 {
		t.Fatalf("%d health.dropped over 30 days of decline, want at least one and at most one per %d days", drops, sc.Drop.Days)
	}
}

func TestChurnReportsTheMRRLost(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0)
	paying(a, "active", t0)
	Rescore(a, sc, t0, t0)
	paying(a, "canceled", t0.Add(time.Hour))
	es := Rescore(a, sc, t0.Add(time.Hour), t0.Add(time.Hour))
	if len(es) != 1 || es[0].Type != TypeChurned || es[0].MRRLost == nil || es[0].MRRLost.Amount != 10000 || es[0].MRRLost.Currency != "usd" {
		t.Fatalf("churn events %+v, want account.churned with mrr_lost 10000 usd", es)
	}
	if es[0].Account.MRR.Amount != 0 {
		t.Errorf("a churned account still shows MRR %d", es[0].Account.MRR.Amount)
	}
}

func TestChurnCurrencyIsDeterministic(t *testing.T) {
	sc := score.Default()
	for i := 0; i < 20; i++ {
		a := account.New("acme", t0)
		a.Billing.ApplySubscription(account.Subscription{ID: "sub_a", Status: "active", Currency: "eur", MRR: 500, At: t0.Unix()})
		a.Billing.ApplySubscription(account.Subscription{ID: "sub_b", Status: "active", Currency: "usd", MRR: 700, At: t0.Unix() + 10})
		Rescore(a, sc, t0, t0)
		a.Billing.ApplySubscription(account.Subscription{ID: "sub_a", Status: "canceled", Currency: "eur", At: t0.Unix() + 20})
		a.Billing.ApplySubscription(account.Subscription{ID: "sub_b", Status: "canceled", Currency: "usd", At: t0.Unix() + 30})
		es := Rescore(a, sc, t0.Add(time.Hour), t0.Add(time.Hour))
		if len(es) != 1 || es[0].MRRLost.Currency != "usd" {
			t.Fatalf("run %d: mrr_lost %+v, want the currency of the latest subscription (usd)", i, es[0].MRRLost)
		}
	}
}

func TestEventIDsAreOursNotStripes(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0)
	paying(a, "active", t0)
	Rescore(a, sc, t0, t0)
	paying(a, "past_due", t0.Add(time.Hour))
	es := Rescore(a, sc, t0.Add(time.Hour), t0.Add(time.Hour))
	if len(es) == 0 {
		t.Fatal("no event")
	}
	for _, e := range es {
		if !strings.HasPrefix(e.ID, "csev_") || strings.HasPrefix(e.ID, "evt_") {
			t.Errorf("event id %q, want our own csev_ prefix", e.ID)
		}
	}
}

func TestAMergedAccountNeverRepeatsAnEventID(t *testing.T) {
	sc := score.Default()
	seen := map[string]string{}
	record := func(es []Event) {
		for _, e := range es {
			if prev, ok := seen[e.ID]; ok {
				t.Errorf("%s reuses the id %s of an earlier %s", e.Type, e.ID, prev)
			}
			seen[e.ID] = e.Type
		}
	}
	// The product account had a risk episode of its own, raised and cleared.
	product := account.New("acme", t0)
	paying(product, "active", t0)
	record(Rescore(product, sc, t0, t0))
	paying(product, "past_due", t0.Add(time.Hour))
	record(Rescore(product, sc, t0.Add(time.Hour), t0.Add(time.Hour)))
	paying(product, "active", t0.Add(2*time.Hour))
	record(Rescore(product, sc, t0.Add(2*time.Hour), t0.Add(2*time.Hour)))
	// A placeholder for a second Stripe customer opened its own episode 1.
	placeholder := account.New("cus_2", t0)
	placeholder.Billing.ApplySubscription(account.Subscription{ID: "sub_2", Status: "past_due", Currency: "usd", MRR: 5000, At: t0.Add(3 * time.Hour).Unix()})
	Rescore(placeholder, sc, t0.Add(3*time.Hour), t0.Add(3*time.Hour))
	if !placeholder.Risk.Open || placeholder.Risk.Episode != 1 {
		t.Fatalf("placeholder risk %+v, want episode 1 open", placeholder.Risk)
	}
	product.Merge(placeholder)
	record(Rescore(product, sc, t0.Add(4*time.Hour), t0.Add(4*time.Hour)))
	// The merged customer pays: the adopted episode clears, under a new id.
	product.Billing.ApplySubscription(account.Subscription{ID: "sub_2", Status: "active", Currency: "usd", MRR: 5000, At: t0.Add(5 * time.Hour).Unix()})
	es := Rescore(product, sc, t0.Add(5*time.Hour), t0.Add(5*time.Hour))
	if types(es) != "churn_risk.cleared/involuntary" {
		t.Fatalf("after recovery: %q, want one churn_risk.cleared", types(es))
	}
	record(es)
}

func TestRescoringTheSameStoredStateGivesTheSameIDs(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0)
	paying(a, "active", t0)
	Rescore(a, sc, t0, t0)
	paying(a, "past_due", t0.Add(time.Hour))
	first, retry := a.Clone(), a.Clone() // a failed commit retries from the same stored state
	x, y := Rescore(first, sc, t0.Add(time.Hour), t0.Add(time.Hour)), Rescore(retry, sc, t0.Add(time.Hour), t0.Add(time.Hour))
	if len(x) == 0 || len(x) != len(y) || x[0].ID != y[0].ID {
		t.Fatalf("ids %v and %v differ for the same stored state", x, y)
	}
}

func TestEventsAreDatedByTheFactNotByReceipt(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0)
	paying(a, "active", t0)
	Rescore(a, sc, t0, t0)
	fact := t0.Add(time.Hour)
	paying(a, "past_due", fact)
	received := fact.Add(40 * time.Minute) // a retried delivery
	es := Rescore(a, sc, received, fact)
	if len(es) == 0 || !es[0].OccurredAt.Equal(fact) || !a.Risk.Since.Equal(fact) {
		t.Fatalf("occurred_at %v, risk since %v; want the fact's time %v", es, a.Risk.Since, fact)
	}
}

func TestOneAlertPerIncident(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0)
	for d := 0; d < 40; d++ {
		for u := 0; u < 5; u++ {
			a.Usage.Record(string(rune('a'+u)), t0.AddDate(0, 0, -d), true)
		}
	}
	paying(a, "active", t0)
	Rescore(a, sc, t0, t0)
	paying(a, "past_due", t0.Add(time.Hour))
	if got := types(Rescore(a, sc, t0.Add(time.Hour), t0.Add(time.Hour))); got != "churn_risk.raised/involuntary" {
		t.Fatalf("the fall into BAD emitted %q, want only churn_risk.raised", got)
	}
	if got := types(Rescore(a, sc, t0.Add(2*time.Hour), t0.Add(2*time.Hour))); got != "" {
		t.Fatalf("the next write emitted %q, want nothing: the incident was already told", got)
	}
}

func TestInvoluntaryEventsCarryWhatADunningPlaybookNeeds(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0)
	a.Email = "billing@acme.example"
	paying(a, "active", t0)
	Rescore(a, sc, t0, t0)
	retry := t0.Add(72 * time.Hour)
	a.Billing.PaymentFailed("in_1", t0.Add(time.Hour), false)
	a.Billing.InvoiceFailed(account.Invoice{ID: "in_1", AmountDue: 10000, Currency: "usd", AttemptCount: 2,
		NextPaymentAttempt: retry, HostedInvoiceURL: "https://invoice.stripe.com/i/x", At: t0.Add(time.Hour)})
	paying(a, "past_due", t0.Add(time.Hour))
	es := Rescore(a, sc, t0.Add(time.Hour), t0.Add(time.Hour))
	if len(es) != 1 || es[0].Kind != "involuntary" {
		t.Fatalf("events %q", types(es))
	}
	b := es[0].Billing
	if b == nil || b.InvoiceID != "in_1" || b.AmountDue != 10000 || b.Currency != "usd" || b.AttemptCount != 2 ||
		b.NextPaymentAttempt == nil || !b.NextPaymentAttempt.Equal(retry) || b.HostedInvoiceURL == "" || b.Email != "billing@acme.example" {
		t.Fatalf("billing %+v, want the failed invoice's facts", b)
	}
	if es[0].Cancellation != nil {
		t.Errorf("an involuntary event carries a cancellation: %+v", es[0].Cancellation)
	}
}

func TestVoluntaryEventsCarryTheCancellationInTheCustomersWords(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0)
	paying(a, "active", t0)
	Rescore(a, sc, t0, t0)
	end := t0.AddDate(0, 0, 20)
	a.Billing.ApplySubscription(account.Subscription{ID: "sub_1", Status: "active", Currency: "usd", MRR: 10000, CancelAtPeriodEnd: true,
		CurrentPeriodEnd: end, CancelReason: "cancellation_requested", CancelFeedback: "missing_features", CancelComment: "No SSO",
		At: t0.Add(time.Hour).Unix()})
	es := Rescore(a, sc, t0.Add(time.Hour), t0.Add(time.Hour))
	if len(es) != 1 || es[0].Type != TypeRaised || es[0].Kind != "voluntary" {
		t.Fatalf("events %q", types(es))
	}
	c := es[0].Cancellation
	if c == nil || c.CancelAt == nil || !c.CancelAt.Equal(end) || c.Reason != "cancellation_requested" || c.Feedback != "missing_features" || c.Comment != "No SSO" {
		t.Fatalf("cancellation %+v", c)
	}
	if !strings.Contains(fmt.Sprint(es[0].Reasons), "No SSO") {
		t.Errorf("reasons %+v do not carry the customer's comment", es[0].Reasons)
	}
	a.Billing.ApplySubscription(account.Subscription{ID: "sub_1", Status: "canceled", Currency: "usd", MRR: 10000, EndedAt: end,
		CancelReason: "cancellation_requested", CancelFeedback: "missing_features", CancelComment: "No SSO", At: end.Unix()})
	es = Rescore(a, sc, end, end)
	if len(es) != 1 || es[0].Type != TypeChurned || es[0].Kind != "voluntary" || es[0].Cancellation == nil || es[0].Cancellation.Comment != "No SSO" {
		t.Fatalf("churn %+v, want a voluntary account.churned with the customer's comment", es)
	}
	if n := strings.Count(fmt.Sprint(es[0].Reasons), "has churned"); n != 1 {
		t.Errorf("churn said %d times in %+v", n, es[0].Reasons)
	}
	if es[0].Account.MRR.Currency != "usd" || es[0].MRRLost.Amount != 10000 {
		t.Errorf("churned account mrr %+v lost %+v, want 0 usd and 10000 usd", es[0].Account.MRR, es[0].MRRLost)
	}
}

func TestEventsNeverSumCurrencies(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0)
	a.Billing.ApplySubscription(account.Subscription{ID: "sub_usd", Status: "active", Currency: "usd", MRR: 30000, At: t0.Unix()})
	a.Billing.ApplySubscription(account.Subscription{ID: "sub_eur", Status: "past_due", Currency: "eur", MRR: 10000, At: t0.Unix()})
	es := Rescore(a, sc, t0, t0)
	if len(es) == 0 {
		t.Fatal("no event")
	}
	m := es[0].Account
	if m.MRR.Amount != 30000 || m.MRR.Currency != "usd" || m.MRRByCurrency["eur"] != 10000 || m.MRRByCurrency["usd"] != 30000 {
		t.Fatalf("account mrr %+v by currency %v, want 30000 usd headline and both currencies", m.MRR, m.MRRByCurrency)
	}
}

func TestAnOpenEpisodeTakesTheMostUrgentKindItHasHad(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0.AddDate(0, -2, 0))
	paying(a, "active", t0.AddDate(0, -1, 0))
	a.Usage.Record("u1", t0.AddDate(0, 0, -30), true) // silent for 30 days: engagement risk
	es := Rescore(a, sc, t0, t0)
	if types(es) != TypeRaised+"/"+score.KindEngagement || a.Risk.Kind != score.KindEngagement {
		t.Fatalf("first rescore: %s, kind %s; want an engagement raise", types(es), a.Risk.Kind)
	}
	paying(a, "past_due", t0.Add(time.Hour)) // now dunning too
	Rescore(a, sc, t0.Add(time.Hour), t0.Add(time.Hour))
	if !a.Risk.Open || a.Risk.Kind != score.KindInvoluntary {
		t.Errorf("while dunning the open episode is %s (open %v), want involuntary", a.Risk.Kind, a.Risk.Open)
	}
}
