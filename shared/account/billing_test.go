package account

import (
	"fmt"
	"maps"
	"testing"
	"time"
)

func TestMoneyIsShownWithTheCurrencysOwnDecimals(t *testing.T) {
	tests := []struct {
		name     string
		minor    int64
		currency string
		want     string
	}{
		{"dollars have cents", 29700, "usd", "297.00 USD"},
		{"yen are whole: ¥5,000 is 5000, not 50.00", 5000, "jpy", "5000 JPY"},
		{"won are whole", 12000, "KRW", "12000 KRW"},
		{"Kuwaiti dinars have three decimals", 12345, "kwd", "12.345 KWD"},
		{"a negative amount keeps its sign", -150, "eur", "-1.50 EUR"},
		{"no currency shows two decimals and no code", 150, "", "1.50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatMoney(tt.minor, tt.currency); got != tt.want {
				t.Errorf("FormatMoney(%d, %q) = %q, want %q", tt.minor, tt.currency, got, tt.want)
			}
		})
	}
}

func TestMRRInSeveralCurrenciesIsNeverSummed(t *testing.T) {
	var b Billing
	b.ApplySubscription(Subscription{ID: "sub_usd", Status: StatusActive, Currency: "usd", MRR: 30000, At: t0.Unix()})
	b.ApplySubscription(Subscription{ID: "sub_eur", Status: StatusActive, Currency: "eur", MRR: 10000, At: t0.Unix()})
	b.ApplySubscription(Subscription{ID: "sub_usd2", Status: StatusPastDue, Currency: "usd", MRR: 500, At: t0.Unix()})
	if got, want := b.MRRByCurrency(t0), map[string]int64{"usd": 30500, "eur": 10000}; !maps.Equal(got, want) {
		t.Errorf("MRR by currency %v, want %v", got, want)
	}
	if amount, cur := b.MRRAt(t0); amount != 30500 || cur != "usd" {
		t.Errorf("headline MRR %d %s, want the largest currency's: 30500 usd (never 40500)", amount, cur)
	}
}

func TestTheHeadlineMRRComparesCurrenciesInMajorUnits(t *testing.T) {
	var b Billing
	// ¥5,000 is 5000 minor units; $60.00 is 6000 — but ¥5,000 is the larger number of units.
	b.ApplySubscription(Subscription{ID: "a", Status: StatusActive, Currency: "jpy", MRR: 5000, At: t0.Unix()})
	b.ApplySubscription(Subscription{ID: "b", Status: StatusActive, Currency: "usd", MRR: 6000, At: t0.Unix()})
	if _, cur := b.MRRAt(t0); cur != "jpy" {
		t.Errorf("headline currency %s, want jpy", cur)
	}
}

func TestAChurnedAccountKeepsItsCurrency(t *testing.T) {
	var b Billing
	b.ApplySubscription(Subscription{ID: "a", Status: StatusActive, Currency: "usd", MRR: 29700, At: t0.Unix()})
	b.ApplySubscription(Subscription{ID: "a", Status: StatusCanceled, Currency: "usd", MRR: 29700, At: t0.Unix() + 60})
	if amount, cur := b.MRRAt(t0.Add(time.Hour)); amount != 0 || cur != "usd" {
		t.Errorf("churned MRR %d %q, want 0 usd", amount, cur)
	}
	if amount, cur := b.LastMRR(); amount != 29700 || cur != "usd" {
		t.Errorf("last MRR %d %q, want 29700 usd", amount, cur)
	}
}

func TestADiscountStopsReducingMRRWhenItEnds(t *testing.T) {
	end := t0.AddDate(0, 1, 0)
	var b Billing
	b.ApplySubscription(Subscription{ID: "s", Status: StatusActive, Currency: "usd", MRR: 10000, At: t0.Unix(),
		Discount: &Discount{Coupon: "LAUNCH50", PercentOff: 50, End: end, MRR: 5000}})
	tests := []struct {
		name string
		at   time.Time
		want int64
	}{
		{"while the discount runs", t0.AddDate(0, 0, 10), 5000},
		{"the second before it ends", end.Add(-time.Second), 5000},
		{"the moment it ends, with no Stripe event since", end, 10000},
		{"a month later", end.AddDate(0, 1, 0), 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := b.MRRAt(tt.at); got != tt.want {
				t.Errorf("MRR %d, want %d", got, tt.want)
			}
		})
	}
}

func TestUnpaidFailuresAreExactBeyondTheListCap(t *testing.T) {
	var b Billing
	for i := 0; i < MaxFailures+5; i++ {
		b.PaymentFailed(fmt.Sprintf("in_%d", i), t0.Add(-time.Duration(i)*time.Hour), false)
	}
	b.InvoicePaid("in_0", t0.Add(time.Hour))
	b.InvoicePaid("in_1", t0.Add(time.Hour))
	all, open := b.FailuresSince(t0.AddDate(0, 0, -30))
	if all != MaxFailures+5 || open != MaxFailures+3 {
		t.Fatalf("failures %d, unpaid %d; want %d and %d", all, open, MaxFailures+5, MaxFailures+3)
	}
	if len(b.Failures) > MaxFailures {
		t.Errorf("the failure list grew to %d", len(b.Failures))
	}
}

func TestAFailedInvoiceIsKeptForDunningUntilPaid(t *testing.T) {
	var b Billing
	b.PaymentFailed("in_1", t0, false)
	b.InvoiceFailed(Invoice{ID: "in_1", AmountDue: 9000, Currency: "usd", AttemptCount: 1, At: t0})
	if b.Dunning == nil || b.Dunning.ID != "in_1" || b.Dunning.AmountDue != 9000 {
		t.Fatalf("dunning %+v, want in_1 for 9000", b.Dunning)
	}
	b.InvoicePaid("in_1", t0.Add(time.Hour))
	if b.Dunning != nil {
		t.Errorf("a paid invoice is still in dunning: %+v", b.Dunning)
	}
}

func TestMergingNeverReusesAnEpisodeOrSequence(t *testing.T) {
	product := New("acme", t0)
	product.Risk = Risk{Episode: 1, Seq: 2} // raised and cleared episode 1 already
	placeholder := New("cus_1", t0)
	placeholder.Risk = Risk{Open: true, Episode: 1, Seq: 1, Kind: "involuntary", Since: t0}
	product.Merge(placeholder)
	if !product.Risk.Open || product.Risk.Episode != 2 || product.Risk.Seq != 2 {
		t.Fatalf("risk after merge %+v, want the open episode adopted as episode 2 and seq kept at 2", product.Risk)
	}
}
