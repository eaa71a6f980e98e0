package billing

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// fixture reads a subscription object from the real payloads beside the repository
// (../shared/fixtures/external, or CHURNSIGNAL_FIXTURES), skipping when they are absent.
func fixture(t *testing.T, name string) *stripe.Subscription {
	t.Helper()
	dir := os.Getenv("CHURNSIGNAL_FIXTURES")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "fixtures", "external")
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Skipf("external fixture %s not found (set CHURNSIGNAL_FIXTURES): %v", name, err)
	}
	var s stripe.Subscription
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestSubscriptionsOfOlderAPIVersionsKeepTheirCurrencyAndDiscount(t *testing.T) {
	tests := []struct {
		file     string
		currency string
		mrr      int64
		note     bool
	}{
		// No top-level currency (older API versions): it comes from the price, and the 10 USD
		// amount_off coupon applies to the 25 USD price.
		{"pay-vcr__object.subscription.with_coupon_discount.json", "usd", 1500, false},
		{"pay-vcr__object.subscription.yearly_price.json", "usd", 2083, false},
		// Items with a plan and no price: the plan is read as the price; metered is named.
		{"djstripe__object.subscription.metered.json", "usd", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			s := fixture(t, tt.file)
			snap := Snapshot(s, s.Created)
			if snap.Currency != tt.currency || snap.MRRAt(time.Unix(s.Created, 0)) != tt.mrr || (snap.MRRNote != "") != tt.note {
				t.Errorf("currency %q MRR %d note %q; want %q, %d, note %v", snap.Currency, snap.MRRAt(time.Unix(s.Created, 0)), snap.MRRNote, tt.currency, tt.mrr, tt.note)
			}
		})
	}
}
