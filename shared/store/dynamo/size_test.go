package dynamo

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/scenario"
	"github.com/churnsignal/churnsignal/shared/store"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

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
			a := scenario.ActiveAccount(tt.users, tt.every, t0)
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
