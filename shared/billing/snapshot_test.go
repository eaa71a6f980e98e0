package billing

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/churnsignal/churnsignal/shared/account"
)

// event builds a Stripe event of type typ around a data.object given as JSON.
func event(t *testing.T, typ string, created int64, object string) stripe.Event {
	t.Helper()
	var e stripe.Event
	body := `{"id":"evt_test","object":"event","api_version":"2023-10-16","created":` + itoa(created) +
		`,"type":"` + typ + `","data":{"object":` + object + `}}`
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func mapAndApply(t *testing.T, e stripe.Event) (*account.Account, Change) {
	t.Helper()
	c, err := Map(e)
	if err != nil || c.Apply == nil {
		t.Fatalf("Map: %v (ignored %v)", err, c.Ignored)
	}
	a := account.New("acme", time.Unix(e.Created, 0))
	c.Apply(a)
	return a, c
}

const created = 1795000000 // 2026-11-19

func TestADiscountEndingLaterRaisesMRRWhenItEnds(t *testing.T) {
	end := int64(created + 30*86400)
	e := event(t, "customer.subscription.updated", created, `{
		"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active", "currency": "usd",
		"discount": {"id": "di_1", "object": "discount", "start": 1790000000, "end": `+itoa(end)+`,
			"coupon": {"id": "HALF3M", "object": "coupon", "percent_off": 50, "duration": "repeating", "duration_in_months": 3}},
		"items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item", "quantity": 2,
			"price": {"id": "price_1", "object": "price", "unit_amount": 5000, "currency": "usd", "billing_scheme": "per_unit",
				"recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"}}}]}
	}`)
	a, c := mapAndApply(t, e)
	if !c.Created.Equal(time.Unix(created, 0)) {
		t.Errorf("change created %v, want the event's created time", c.Created)
	}
	for _, tt := range []struct {
		name string
		at   time.Time
		want int64
	}{
		{"while the coupon runs", time.Unix(created+86400, 0), 5000},
		{"once it has ended, without another Stripe event", time.Unix(end, 0), 10000},
	} {
		if got, _ := a.Billing.MRRAt(tt.at); got != tt.want {
			t.Errorf("%s: MRR %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestASnapshotKeepsTheCustomersCancellationWords(t *testing.T) {
	e := event(t, "customer.subscription.updated", created, `{
		"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active", "currency": "usd",
		"cancel_at_period_end": true, "current_period_end": 1796000000,
		"cancellation_details": {"reason": "cancellation_requested", "feedback": "too_expensive", "comment": "Budget cuts this year"},
		"items": {"object": "list", "data": []}
	}`)
	a, _ := mapAndApply(t, e)
	s := a.Billing.Subscriptions["sub_1"]
	if s.CancelReason != "cancellation_requested" || s.CancelFeedback != "too_expensive" || s.CancelComment != "Budget cuts this year" {
		t.Fatalf("stored cancellation %q %q %q", s.CancelReason, s.CancelFeedback, s.CancelComment)
	}
}

func TestAFailedInvoiceKeepsWhatADunningPlaybookNeeds(t *testing.T) {
	e := event(t, "invoice.payment_failed", created, `{
		"id": "in_1", "object": "invoice", "customer": "cus_1", "customer_email": "ap@acme.example",
		"amount_due": 29700, "currency": "usd", "attempt_count": 2, "next_payment_attempt": 1795259200,
		"hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test_in_1"
	}`)
	a, _ := mapAndApply(t, e)
	d := a.Billing.Dunning
	if d == nil || d.ID != "in_1" || d.AmountDue != 29700 || d.Currency != "usd" || d.AttemptCount != 2 ||
		!d.NextPaymentAttempt.Equal(time.Unix(1795259200, 0)) || d.HostedInvoiceURL == "" || d.Email != "ap@acme.example" {
		t.Fatalf("dunning %+v", d)
	}
}
