package httpapi

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/risk"
	"github.com/churnsignal/churnsignal/shared/score"
)

func TestTheAccountViewReadsAsACSMExpects(t *testing.T) {
	sc := score.Default()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	at := now.Add(-48 * time.Hour)
	a := account.New("acme", now.AddDate(0, -2, 0))
	a.Billing.ApplySubscription(account.Subscription{ID: "sub_usd", Status: account.StatusPastDue, Currency: "usd", MRR: 30000, At: at.Unix(),
		Items:    []account.Item{{Price: "price_1", Quantity: 3, UnitAmount: 10000, Interval: "month", IntervalCount: 1, MRR: 30000}},
		Discount: &account.Discount{Coupon: "TENOFF", PercentOff: 10, End: now.AddDate(0, 1, 0), MRR: 27000}})
	a.Billing.ApplySubscription(account.Subscription{ID: "sub_eur", Status: account.StatusActive, Currency: "eur", MRR: 10000, At: at.Unix()})
	for i := 0; i < account.MaxFailures+5; i++ {
		a.Billing.PaymentFailed(fmt.Sprintf("in_%d", i), now.Add(-time.Duration(i)*time.Hour), false)
	}
	risk.Rescore(a, sc, now, now)

	b, err := json.Marshal(NewView(a, sc, now))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Billing struct {
			MRR           risk.Money       `json:"mrr"`
			MRRByCurrency map[string]int64 `json:"mrr_by_currency"`
			Unpaid        int              `json:"unpaid_failures_30d"`
			Subscriptions []struct {
				ID       string `json:"id"`
				MRR      int64  `json:"mrr"`
				At       any    `json:"at"`
				Discount *struct {
					InForce bool  `json:"in_force"`
					MRR     int64 `json:"mrr"`
				} `json:"discount"`
				Items []struct {
					MRR int64 `json:"mrr"`
				} `json:"items"`
			} `json:"subscriptions"`
		} `json:"billing"`
		Health struct {
			Score    int               `json:"score"`
			RawScore int               `json:"raw_score"`
			Band     string            `json:"band"`
			Coverage float64           `json:"coverage"`
			CappedBy string            `json:"capped_by"`
			Measures []account.Measure `json:"measures"`
			Reasons  []account.Reason  `json:"reasons"`
		} `json:"health"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	t.Run("subscription times are RFC 3339", func(t *testing.T) {
		for _, s := range v.Billing.Subscriptions {
			str, ok := s.At.(string)
			if _, err := time.Parse(time.RFC3339, str); !ok || err != nil {
				t.Errorf("%s: at = %v, want an RFC 3339 time", s.ID, s.At)
			}
		}
	})
	t.Run("a subscription shows its MRR after the discount, the discount beside its items", func(t *testing.T) {
		s := v.Billing.Subscriptions[1]
		if s.ID != "sub_usd" || s.MRR != 27000 || s.Discount == nil || !s.Discount.InForce || s.Items[0].MRR != 30000 {
			t.Errorf("subscription %+v", s)
		}
	})
	t.Run("currencies are never summed", func(t *testing.T) {
		if v.Billing.MRR != (risk.Money{Amount: 27000, Currency: "usd"}) || v.Billing.MRRByCurrency["eur"] != 10000 || v.Billing.MRRByCurrency["usd"] != 27000 {
			t.Errorf("mrr %+v by currency %v", v.Billing.MRR, v.Billing.MRRByCurrency)
		}
	})
	t.Run("unpaid failures are counted exactly", func(t *testing.T) {
		if v.Billing.Unpaid != account.MaxFailures+5 {
			t.Errorf("unpaid_failures_30d = %d, want %d", v.Billing.Unpaid, account.MaxFailures+5)
		}
	})
	t.Run("the score agrees with its band and says what capped it", func(t *testing.T) {
		h := v.Health
		if h.Band != "BAD" || h.Score >= sc.Bands.BadEnter || h.RawScore <= h.Score || h.CappedBy != "rule:past_due" || h.Coverage <= 0 {
			t.Errorf("health score %d raw %d band %s capped by %q coverage %.2f", h.Score, h.RawScore, h.Band, h.CappedBy, h.Coverage)
		}
		if len(h.Measures) != len(sc.Measures) || len(h.Reasons) == 0 || h.Reasons[0].Measure != "rule:past_due" {
			t.Errorf("measures %d, reasons %+v: the explanation was not rebuilt", len(h.Measures), h.Reasons)
		}
	})
}

func TestPublishedEventsAreDatedByTheStripeEventNotItsReceipt(t *testing.T) {
	h := newHarness(t)
	h.sendCustomer("globex")
	var raw struct {
		Created int64 `json:"created"`
	}
	if err := json.Unmarshal(sample(t, "stripe", "120-globex-customer.subscription.updated.json"), &raw); err != nil {
		t.Fatal(err)
	}
	created := time.Unix(raw.Created, 0).UTC()
	if created.Equal(sampleNow) {
		t.Fatal("the sample was created at the receipt time; the test cannot tell them apart")
	}
	for _, e := range h.events() {
		if e.Type == risk.TypeRaised && e.Account.ID == "globex" {
			if !e.OccurredAt.Equal(created) {
				t.Errorf("occurred_at %v, want the Stripe event's created %v (received %v)", e.OccurredAt, created, sampleNow)
			}
			if since := path(h.account("globex"), "risk", "since"); since != created.Format(time.RFC3339) {
				t.Errorf("risk.since %v, want %v", since, created.Format(time.RFC3339))
			}
			return
		}
	}
	t.Fatal("no churn_risk.raised for globex")
}
