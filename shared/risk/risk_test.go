package risk

import (
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
