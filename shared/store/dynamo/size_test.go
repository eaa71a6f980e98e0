package dynamo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/risk"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// activeAccount is shared/risk/size_test.go's scenario, rebuilt here (test helpers do not cross
// packages): a month of activity by users users, each active every every-th day, a 25-seat
// subscription, every key feature used daily, every onboarding milestone, rescored daily.
func activeAccount(users, every int) *account.Account {
	sc := score.Default()
	a := account.New("acme", t0.AddDate(0, -2, 0))
	a.Name, a.Email, a.StripeCustomerID = "Acme Corp", "billing@acme.example", "cus_P8Acme0000000001"
	a.Billing.ApplySubscription(account.Subscription{ID: "sub_1OAcme0000000000000001", Status: "active", Currency: "usd", MRR: 275000, Seats: 25,
		Items:            []account.Item{{Price: "price_1OAcmeSeats00000000001", Quantity: 25, UnitAmount: 11000, Interval: "month", IntervalCount: 1, MRR: 275000}},
		CurrentPeriodEnd: t0.AddDate(0, 0, 10), At: t0.AddDate(0, -1, 0).Unix()})
	for d := 30; d >= 0; d-- {
		day := t0.AddDate(0, 0, -d)
		for u := 0; u < users; u++ {
			if (u+d)%every != 0 {
				continue
			}
			a.Usage.Record(fmt.Sprintf("user_%04d@acme.example", u), day, true)
		}
		for _, f := range sc.Events.KeyFeatures {
			a.Usage.UseFeature(f, day)
		}
		risk.Rescore(a, sc, day, day)
	}
	for _, m := range sc.Events.Onboarding {
		a.Usage.Reach(m, t0.AddDate(0, -1, 0))
	}
	risk.Rescore(a, sc, t0, t0)
	return a
}

// wcu is the write units of one item write: 1 per started KB.
func wcu(item map[string]types.AttributeValue) int { return (itemSize(item) + 1023) / 1024 }

// riskEvent is the example churn_risk.raised event of events/schema, compacted as published.
func riskEvent(t *testing.T) []byte {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "schema", "examples", "churn_risk.raised.involuntary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestWriteUnitsPerStripeEventAndProductMessage measures, from the items this adapter writes,
// what docs/DYNAMO.md reports: the write units of a Stripe event and of a product message, for
// the account sizes of shared/risk/size_test.go. A transaction bills each item twice; a
// one-item commit is a plain put, billed once.
func TestWriteUnitsPerStripeEventAndProductMessage(t *testing.T) {
	exp := t0.Add(30 * 24 * time.Hour)
	marker := func(k string) map[string]types.AttributeValue {
		item := key(markerKey(k))
		item[attrExpires] = num(exp.Unix())
		return item
	}
	stripeMarker := wcu(marker("stripe:evt_1OAcme0000000000000000001"))
	productMarker := wcu(marker("msg:ajs-next-1700000000000-7f3c9a5e-1b2d-4e6f-8a9b-0c1d2e3f4a5b"))
	body := riskEvent(t)
	ob := outboxItem(store.Tx{Accounts: []store.Put{{Account: account.New("acme", t0)}},
		Outbox: []store.Message{{ID: "evt_risk_0123456789abcdef", Body: body, Attributes: map[string]string{
			"type": "churn_risk.raised", "kind": "involuntary", "band": "BAD", "segment": "high-touch"}}}}, 0, t0)
	if stripeMarker != 1 || productMarker != 1 || wcu(ob) != 2 {
		t.Errorf("a marker costs %d/%d units, an outbox item of %d bytes %d; want 1, 1 and 2", stripeMarker, productMarker, itemSize(ob), wcu(ob))
	}
	tests := []struct {
		name         string
		users, every int
		// budgets a user would notice on the bill: units per Stripe event that raises a risk
		// event, and per product message in a commit of 60 messages.
		stripe, product float64
	}{
		{"25 users active every day of a month", 25, 1, 10, 2.1},
		{"2,000 users active every day of a month", 2000, 1, 24, 2.3},
		{"2,000 users active once a month, spread over its days", 2000, 31, 24, 2.3},
		{"2,000 users active once a week", 2000, 7, 24, 2.3},
	}
	t.Logf("marker %d B, outbox item %d B (%d-byte event body)", itemSize(marker("stripe:evt_1OAcme0000000000000000001")), itemSize(ob), len(body))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := activeAccount(tt.users, tt.every)
			item, err := accountItem(store.Put{Account: a, Expect: 41})
			if err != nil {
				t.Fatal(err)
			}
			acct := wcu(item)
			// A Stripe event: account + marker in one transaction; one that moves the band adds an
			// outbox item. Both items of a transaction are billed twice.
			plain := 2 * (acct + stripeMarker)
			raised := 2 * (acct + stripeMarker + wcu(ob))
			// A product request of n messages of one account: account + n markers, one transaction.
			per := func(n int) float64 { return float64(2*(acct+n*productMarker)) / float64(n) }
			t.Logf("account item %d B = %d WCU; Stripe event %d WCU (%d with a risk event); product message %.2f WCU alone, %.2f in a batch of 10, %.2f in a batch of 60",
				itemSize(item), acct, plain, raised, per(1), per(10), per(60))
			if float64(raised) > tt.stripe || per(60) > tt.product {
				t.Errorf("a Stripe event costs %d units (budget %.0f), a product message %.2f (budget %.2f)", raised, tt.stripe, per(60), tt.product)
			}
		})
	}
}
