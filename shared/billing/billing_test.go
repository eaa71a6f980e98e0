package billing

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/churnsignal/churnsignal/shared/account"
)

type item struct {
	unit     int64
	decimal  float64
	qty      int64
	interval string
	count    int64
	metered  bool
	tiered   bool
	divideBy int64
	roundUp  bool
}

func sub(items []item, disc *stripe.Discount) *stripe.Subscription {
	s := &stripe.Subscription{ID: "sub_1", Currency: "usd", Discount: disc, Items: &stripe.SubscriptionItemList{}}
	for i, it := range items {
		p := &stripe.Price{ID: "price_" + string(rune('a'+i)), UnitAmount: it.unit, UnitAmountDecimal: it.decimal,
			BillingScheme: stripe.PriceBillingSchemePerUnit,
			Recurring:     &stripe.PriceRecurring{Interval: stripe.PriceRecurringInterval(it.interval), IntervalCount: it.count, UsageType: stripe.PriceRecurringUsageTypeLicensed}}
		if it.metered {
			p.Recurring.UsageType = stripe.PriceRecurringUsageTypeMetered
		}
		if it.tiered {
			p.BillingScheme = stripe.PriceBillingSchemeTiered
		}
		if it.divideBy > 0 {
			p.TransformQuantity = &stripe.PriceTransformQuantity{DivideBy: it.divideBy, Round: stripe.PriceTransformQuantityRoundDown}
			if it.roundUp {
				p.TransformQuantity.Round = stripe.PriceTransformQuantityRoundUp
			}
		}
		s.Items.Data = append(s.Items.Data, &stripe.SubscriptionItem{Price: p, Quantity: it.qty})
	}
	return s
}

func TestMRRIsExactMinorUnits(t *testing.T) {
	tests := []struct {
		name  string
		items []item
		disc  *stripe.Discount
		want  int64
		note  string
		seats int64
	}{
		{name: "monthly per-seat price times quantity", items: []item{{unit: 5000, qty: 25, interval: "month", count: 1}}, want: 125000, seats: 25},
		{name: "yearly price is divided by twelve", items: []item{{unit: 900000, qty: 1, interval: "year", count: 1}}, want: 75000, seats: 1},
		{name: "yearly price that does not divide evenly rounds half up once", items: []item{{unit: 1000, qty: 1, interval: "year", count: 1}}, want: 83}, // 83.33
		{name: "quarterly (3 months) is divided by three", items: []item{{unit: 30000, qty: 2, interval: "month", count: 3}}, want: 20000},
		{name: "weekly is times 52 over 12", items: []item{{unit: 12000, qty: 4, interval: "week", count: 1}}, want: 208000},
		{name: "every two weeks", items: []item{{unit: 1000, qty: 1, interval: "week", count: 2}}, want: 2167},                                                                   // 2166.67
		{name: "daily is times 365 over 12", items: []item{{unit: 100, qty: 1, interval: "day", count: 1}}, want: 3042},                                                          // 3041.67
		{name: "items are summed before rounding", items: []item{{unit: 1000, qty: 1, interval: "year", count: 1}, {unit: 1000, qty: 1, interval: "year", count: 1}}, want: 167}, // 166.67, not 83+83
		{name: "a sub-cent decimal price is exact", items: []item{{unit: 0, decimal: 0.5, qty: 3001, interval: "month", count: 1}}, want: 1501},                                  // 1500.5
		{name: "percent discount applies to the total", items: []item{{unit: 40000, qty: 1, interval: "month", count: 1}},
			disc: &stripe.Discount{Coupon: &stripe.Coupon{PercentOff: 20}}, want: 32000},
		{name: "amount discount applies per billing interval", items: []item{{unit: 120000, qty: 1, interval: "year", count: 1}},
			disc: &stripe.Discount{Coupon: &stripe.Coupon{AmountOff: 12000, Currency: "usd"}}, want: 9000},
		{name: "a discount in another currency is not applied", items: []item{{unit: 1000, qty: 1, interval: "month", count: 1}},
			disc: &stripe.Discount{Coupon: &stripe.Coupon{AmountOff: 500, Currency: "eur"}}, want: 1000},
		{name: "an ended discount is not applied", items: []item{{unit: 1000, qty: 1, interval: "month", count: 1}},
			disc: &stripe.Discount{End: 100, Coupon: &stripe.Coupon{PercentOff: 50}}, want: 1000},
		{name: "a discount never makes MRR negative", items: []item{{unit: 1000, qty: 1, interval: "month", count: 1}},
			disc: &stripe.Discount{Coupon: &stripe.Coupon{AmountOff: 5000, Currency: "usd"}}, want: 0},
		{name: "transform_quantity bills packages, rounding up", items: []item{{unit: 1000, qty: 11, interval: "month", count: 1, divideBy: 5, roundUp: true}}, want: 3000, seats: 11},
		{name: "metered items are left out and named", items: []item{{unit: 1000, qty: 1, interval: "month", count: 1}, {unit: 5, interval: "month", count: 1, metered: true}},
			want: 1000, note: "metered price price_b", seats: 1},
		{name: "tiered prices are left out and named", items: []item{{qty: 10, interval: "month", count: 1, tiered: true}}, want: 0, note: "tiered price price_a", seats: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MRR(sub(tt.items, tt.disc), 1000)
			if got.Amount != tt.want {
				t.Errorf("MRR = %d, want %d", got.Amount, tt.want)
			}
			if !strings.Contains(got.Note, tt.note) || (tt.note == "") != (got.Note == "") {
				t.Errorf("note = %q, want it to name %q", got.Note, tt.note)
			}
			if tt.seats != 0 && got.Seats != tt.seats {
				t.Errorf("seats = %d, want %d", got.Seats, tt.seats)
			}
		})
	}
}

func loadSample(t *testing.T, name string) stripe.Event {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join("..", "..", "events", "stripe", "*"+name))
	if len(matches) == 0 {
		t.Fatalf("no sample %s", name)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	var e stripe.Event
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEverySampleMaps(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "stripe", "*.json"))
	if len(files) < 20 {
		t.Fatalf("only %d Stripe samples", len(files))
	}
	types := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var e stripe.Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if e.APIVersion != stripe.APIVersion {
			t.Errorf("%s: api_version %s, want %s", f, e.APIVersion, stripe.APIVersion)
		}
		c, err := Map(e)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		types[c.Type] = true
		if handled(c.Type) != !c.Ignored {
			t.Errorf("%s: handled=%v ignored=%v", f, handled(c.Type), c.Ignored)
		}
		if !c.Ignored && c.Customer == "" && c.Charge == "" {
			t.Errorf("%s: no customer or charge", f)
		}
	}
	for _, want := range []string{"customer.created", "customer.updated", "customer.deleted", "customer.subscription.created",
		"customer.subscription.updated", "customer.subscription.deleted", "customer.subscription.paused", "customer.subscription.resumed",
		"customer.subscription.trial_will_end", "invoice.payment_failed", "invoice.paid", "invoice.payment_action_required",
		"invoice.marked_uncollectible", "charge.refunded", "charge.dispute.created"} {
		if !types[want] {
			t.Errorf("no sample of %s", want)
		}
	}
}

func apply(t *testing.T, a *account.Account, e stripe.Event) {
	t.Helper()
	c, err := Map(e)
	if err != nil {
		t.Fatal(err)
	}
	c.Apply(a)
}

func TestSnapshotOrdering(t *testing.T) {
	created := loadSample(t, "initech-customer.subscription.created.json")
	cancelling := loadSample(t, "initech-customer.subscription.updated.json")
	uncancel := cancelling
	uncancel.Created++
	var raw map[string]any
	json.Unmarshal(cancelling.Data.Raw, &raw)
	raw["cancel_at_period_end"], raw["cancel_at"] = false, nil
	uncancel.Data = &stripe.EventData{Raw: mustJSON(raw)}
	raw["status"] = "canceled"
	canceled := cancelling
	canceled.Created += 100
	canceled.Data = &stripe.EventData{Raw: mustJSON(raw)}
	raw["status"] = "active"
	resurrect := canceled
	resurrect.Created += 100
	resurrect.Data = &stripe.EventData{Raw: mustJSON(raw)}
	sameSecond := created
	sameSecond.Created = cancelling.Created

	tests := []struct {
		name       string
		events     []stripe.Event
		status     string
		cancelling bool
	}{
		{"a later cancel_at_period_end schedules cancellation", []stripe.Event{created, cancelling}, "active", true},
		{"an older snapshot arriving late does not overwrite", []stripe.Event{cancelling, created}, "active", true},
		{"a snapshot in the same second is applied", []stripe.Event{cancelling, sameSecond}, "active", false},
		{"un-cancelling clears the scheduled cancellation", []stripe.Event{created, cancelling, uncancel}, "active", false},
		{"canceled is final: a later active snapshot does not resurrect", []stripe.Event{created, canceled, resurrect}, "canceled", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := account.New("initech", time.Unix(created.Created, 0))
			for _, e := range tt.events {
				apply(t, a, e)
			}
			if got := a.Billing.Status(); got != tt.status {
				t.Errorf("status %s, want %s", got, tt.status)
			}
			if _, got := a.Billing.CancelScheduled(); got != tt.cancelling {
				t.Errorf("cancelling %v, want %v", got, tt.cancelling)
			}
		})
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func TestMalformedObjectIsAnError(t *testing.T) {
	e := loadSample(t, "acme-invoice.paid.json")
	e.Data = &stripe.EventData{Raw: json.RawMessage(`{"id": 12}`)}
	if _, err := Map(e); err == nil {
		t.Fatal("a malformed invoice was accepted")
	}
	e.Data = &stripe.EventData{Raw: json.RawMessage(`{"id": "in_1"}`)}
	if _, err := Map(e); err == nil {
		t.Fatal("an invoice without customer was accepted")
	}
}
