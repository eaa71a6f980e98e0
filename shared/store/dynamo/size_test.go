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
	receipt := func(n int) int {
		r := store.Receipt{ReceiptKey: store.ReceiptKey{Account: "acme", Bucket: store.BucketOf(t0)}, Expires: exp}
		for i := 0; i < n; i++ {
			r.IDs = append(r.IDs, store.ReceiptID(fmt.Sprintf("ajs-next-%d", i)))
		}
		return wcu(receiptItem(r))
	}
	if receipt(60) != 1 || receipt(600) != 5 {
		t.Errorf("a receipt of 60 ids costs %d units, of 600 ids %d; want 1 and 5 (8 bytes an id)", receipt(60), receipt(600))
	}
	tests := []struct {
		name         string
		users, every int
		// budgets a user would notice on the bill: units per Stripe event that raises a risk
		// event, per product message in a commit of 60 messages of one minute, and per message
		// of an account sending 10 a second, committed every 5 seconds.
		stripe, product, busy float64
	}{
		{"25 users active every day of a month", 25, 1, 10, 0.15, 0.2},
		{"2,000 users active every day of a month", 2000, 1, 24, 0.4, 0.5},
		{"2,000 users active once a month, spread over its days", 2000, 31, 24, 0.4, 0.5},
		{"2,000 users active once a week", 2000, 7, 24, 0.4, 0.5},
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
			// A commit of n product messages of one account, all of one minute: the account and
			// the minute's receipt, one transaction. With a marker per message (before
			// receipts) it was 2*(acct+n) units.
			per := func(n int) float64 { return float64(2*(acct+receipt(n))) / float64(n) }
			// An account sending 10 messages a second, committed every 5 s: each commit rewrites
			// the minute's receipt as it has grown (50, 100, … 600 ids).
			busy := 0
			for k := 1; k <= 12; k++ {
				busy += 2 * (acct + receipt(50*k))
			}
			perBusy := float64(busy) / 600
			t.Logf("account item %d B = %d WCU; Stripe event %d WCU (%d with a risk event); product message %.2f WCU alone, %.2f in a commit of 10, %.2f of 60 (was %.2f with markers); %.2f at 10 messages/s",
				itemSize(item), acct, plain, raised, per(1), per(10), per(60), float64(2*(acct+60))/60, perBusy)
			if float64(raised) > tt.stripe || per(60) > tt.product || perBusy > tt.busy {
				t.Errorf("a Stripe event costs %d units (budget %.0f), a product message %.2f in a commit of 60 (budget %.2f), %.2f at 10/s (budget %.2f)",
					raised, tt.stripe, per(60), tt.product, perBusy, tt.busy)
			}
		})
	}
}
