package account

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// Size budgets of one account's JSON, stated in the README. With every string at its bound,
// Stripe ids included ("object IDs we generate will never exceed 255 characters",
// https://stripe.com/docs/upgrades), an account stays under DynamoDB's 400 KB item limit; with
// Stripe ids of the length Stripe generates today (under 40 bytes), under 192 KiB. Most of it
// is MaxSubscriptions subscriptions × 20 items (Stripe's cap of items per subscription).
const (
	SizeBudget          = 320 << 10
	SizeBudgetRealistic = 192 << 10
)

// long returns a string of n bytes unique to tag, made of 2-byte runes where n allows.
func long(tag string, n int) string {
	s := tag + strings.Repeat("é", n)
	return Clip(s, n)
}

// maximal builds an account with every list at its cap and every string at its bound; huge
// is what a sender tried to store (it goes through the same setters as real input).
func maximal(huge string, stripeID int) *Account {
	a := New(long("acct", MaxString), t0)
	a.Name, a.Email = Clip(huge, MaxString), Clip(huge, MaxString)
	a.StripeCustomerID = long("cus_", stripeID)
	for i := 0; i < MaxTraits+10; i++ {
		a.SetTrait(fmt.Sprintf("%d", i)+huge, huge)
	}
	for d := 0; d < 400; d++ {
		for u := 0; u < 10; u++ {
			a.Usage.Record(fmt.Sprintf("user-%d-%d", d, u), t0.AddDate(0, 0, -d/7), true)
		}
	}
	for i := 0; i < MaxFeatures+10; i++ { // scorecard names: bounded by whoever writes the scorecard
		a.Usage.UseFeature(long(fmt.Sprintf("feature %d ", i), MaxString), t0)
		a.Usage.Reach(long(fmt.Sprintf("milestone %d ", i), MaxString), t0)
	}
	a.Usage.SeatChange(+5)
	a.Usage.Invites, a.Usage.SeatsPurchased = 1000, 1000
	for i := 0; i < 2*MaxOpenTickets; i++ {
		a.Voice.TicketOpened(fmt.Sprintf("%d", i)+huge, t0.AddDate(0, 0, -i%60))
		a.Voice.AddNPS(i%11, t0.AddDate(0, 0, -i))
	}
	for i := 0; i < MaxSubscriptions; i++ {
		s := Subscription{ID: long(fmt.Sprintf("sub_%d", i), stripeID), Status: StatusActive, Currency: "usd",
			MRR: 1 << 40, MRRNote: long("note", MaxString), Seats: 1 << 40, CancelAtPeriodEnd: true,
			CancelAt: t0, CanceledAt: t0, CancelReason: "cancellation_requested", TrialEnd: t0, CurrentPeriodEnd: t0,
			EndedAt: t0, TrialEnding: true, At: t0.Unix()}
		for j := 0; j < 20; j++ { // Stripe allows at most 20 items per subscription
			s.Items = append(s.Items, Item{Price: long(fmt.Sprintf("price_%d_%d", i, j), stripeID), Quantity: 1 << 40,
				UnitAmount: 1 << 40, Interval: "month", IntervalCount: 12, MRR: 1 << 40})
		}
		a.Billing.ApplySubscription(s)
	}
	for i := 0; i < 3*MaxInvoiceIDs; i++ {
		inv := long(fmt.Sprintf("in_%d", i), stripeID)
		a.Billing.PaymentFailed(inv, t0.AddDate(0, 0, -i), true)
		a.Billing.InvoicePaid(long(fmt.Sprintf("in_paid_%d", i), stripeID), t0.AddDate(0, 0, -i))
		a.Billing.PaymentActionRequired(inv)
		a.Billing.MarkUncollectible(inv)
		a.Billing.AddRefund(t0.AddDate(0, 0, -i))
		a.Billing.AddDispute(t0.AddDate(0, 0, -i))
		a.Billing.recordMRR(t0.AddDate(0, 0, -i))
	}
	for i := 0; i < 12; i++ { // the default scorecard has 12 measures, stored as compact scores
		a.Health.Measures = append(a.Health.Measures, 100)
	}
	for d := 0; d < 2*MaxHistory; d++ {
		a.Health.Record(Day(t0)-int32(d), 50, BandNormal)
	}
	a.Health.Score, a.Health.Band, a.Health.Segment, a.Health.ScorecardVersion = 50, BandNormal, "high-touch", long("v", 64)
	a.Risk = Risk{Open: true, Episode: 1 << 30, Since: t0, Kind: "involuntary", LastDrop: t0, ChurnedAt: t0}
	return a
}

func TestAccountSizeStaysWithinBudget(t *testing.T) {
	tests := []struct {
		name     string
		huge     string
		stripeID int
		budget   int
	}{
		{"ASCII strings of 450 KB, Stripe ids of 256 bytes", strings.Repeat("x", 450<<10), MaxString, SizeBudget},
		{"2-byte UTF-8 strings of 450 KB, Stripe ids of 256 bytes", strings.Repeat("ü", 225<<10), MaxString, SizeBudget},
		{"4-byte UTF-8 strings of 450 KB, Stripe ids of 256 bytes", strings.Repeat("🙂", 115<<10), MaxString, SizeBudget},
		{"ASCII strings of 450 KB, Stripe ids of 40 bytes", strings.Repeat("x", 450<<10), 40, SizeBudgetRealistic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := maximal(tt.huge, tt.stripeID)
			b, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > tt.budget {
				t.Fatalf("a maximal account encodes to %d bytes, over the %d-byte budget", len(b), tt.budget)
			}
			if !utf8.Valid(b) || strings.Contains(string(b), `\ufffd`) {
				t.Error("a string was cut inside a UTF-8 sequence")
			}
			t.Logf("maximal account: %d bytes (budget %d)", len(b), tt.budget)
		})
	}
}

func TestClipCutsOnARuneBoundary(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"},   // é is 2 bytes: not split
		{"a🙂b", 4, "a"},  // 🙂 is 4 bytes
		{"a🙂b", 5, "a🙂"}, // fits whole
		{"🙂", 0, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q to %d bytes", tt.in, tt.n), func(t *testing.T) {
			if got := Clip(tt.in, tt.n); got != tt.want {
				t.Fatalf("Clip = %q, want %q", got, tt.want)
			}
		})
	}
}
