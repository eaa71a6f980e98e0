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
// https://stripe.com/docs/upgrades), an account stays under 128 KiB, well under DynamoDB's
// 400 KB item limit; with Stripe ids of the length Stripe generates today (under 40 bytes),
// under 96 KiB. A customer with more live subscriptions than MaxSubscriptions, each with
// Stripe's 20 items, keeps MaxSubscriptions of them and MaxAccountItems items in all.
const (
	SizeBudget          = 128 << 10
	SizeBudgetRealistic = 96 << 10
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
	for i := 0; i < MaxSubscriptions+10; i++ { // more live subscriptions than are kept
		s := Subscription{ID: long(fmt.Sprintf("sub_%d", i), stripeID), Status: StatusActive, Currency: "usd",
			MRR: 1 << 40, MRRNote: long("note", MaxString), Seats: 1 << 40, CancelAtPeriodEnd: true,
			CancelAt: t0, CanceledAt: t0, CancelReason: "cancellation_requested", TrialEnd: t0, CurrentPeriodEnd: t0,
			EndedAt: t0, TrialEnding: true, At: t0.Unix() + int64(i)}
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
			if n := len(a.Billing.Subscriptions); n > MaxSubscriptions {
				t.Errorf("%d subscriptions kept, want at most %d", n, MaxSubscriptions)
			}
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

func TestSubscriptionsAndItemsStayBounded(t *testing.T) {
	item := func(price string, mrr int64) Item {
		return Item{Price: price, Quantity: 1, UnitAmount: mrr, Interval: "month", IntervalCount: 1, MRR: mrr}
	}
	sub := func(id, status string, at int64, items int) Subscription {
		s := Subscription{ID: id, Status: status, Currency: "usd", At: at}
		for j := 0; j < items; j++ {
			s.Items = append(s.Items, item(fmt.Sprintf("price_%s_%d", id, j), int64(100*(j%7))))
			s.MRR += int64(100 * (j % 7))
		}
		return s
	}
	tests := []struct {
		name  string
		subs  []Subscription
		gone  []string // ids no longer kept
		kept  []string // ids still kept
		items int      // items kept across the account
	}{
		{"25 live subscriptions keep the 20 updated last",
			func() (ss []Subscription) {
				for i := 0; i < 25; i++ {
					ss = append(ss, sub(fmt.Sprintf("sub_%02d", i), StatusActive, int64(1000+i), 0))
				}
				return ss
			}(), []string{"sub_00", "sub_04"}, []string{"sub_05", "sub_24"}, 0},
		{"an ended subscription goes before an older live one",
			func() (ss []Subscription) {
				ss = append(ss, sub("sub_old_live", StatusActive, 1, 0))
				for i := 0; i < 19; i++ {
					ss = append(ss, sub(fmt.Sprintf("sub_%02d", i), StatusActive, int64(1000+i), 0))
				}
				return append(ss, sub("sub_ended", StatusCanceled, 5000, 0))
			}(), []string{"sub_ended"}, []string{"sub_old_live", "sub_18"}, 0},
		{"a subscription with 20 items keeps its 10 largest",
			[]Subscription{sub("sub_big", StatusActive, 1, 20)}, nil, []string{"sub_big"}, MaxItems},
		{"items across subscriptions are capped, ended ones keep none",
			func() (ss []Subscription) {
				for i := 0; i < 8; i++ {
					ss = append(ss, sub(fmt.Sprintf("sub_%02d", i), StatusActive, int64(1000+i), 20))
				}
				return append(ss, sub("sub_ended", StatusCanceled, 5000, 20))
			}(), nil, []string{"sub_07", "sub_ended"}, MaxAccountItems},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Billing
			for _, s := range tt.subs {
				b.ApplySubscription(s)
			}
			if len(b.Subscriptions) > MaxSubscriptions {
				t.Fatalf("%d subscriptions kept, want at most %d", len(b.Subscriptions), MaxSubscriptions)
			}
			for _, id := range tt.gone {
				if _, ok := b.Subscriptions[id]; ok {
					t.Errorf("%s is still kept", id)
				}
			}
			for _, id := range tt.kept {
				if _, ok := b.Subscriptions[id]; !ok {
					t.Errorf("%s was dropped", id)
				}
			}
			items := 0
			for _, s := range b.Subscriptions {
				items += len(s.Items)
				if len(s.Items) > MaxItems {
					t.Errorf("%s keeps %d items, want at most %d", s.ID, len(s.Items), MaxItems)
				}
				if Final(s.Status) && len(s.Items) > 0 {
					t.Errorf("ended %s keeps %d items", s.ID, len(s.Items))
				}
				for _, it := range s.Items {
					if it.MRR < 300 && len(s.Items) == MaxItems {
						t.Errorf("%s keeps item %s of MRR %d over a larger one", s.ID, it.Price, it.MRR)
					}
				}
			}
			if items != tt.items {
				t.Errorf("%d items kept across the account, want %d", items, tt.items)
			}
			if s, ok := b.Subscriptions["sub_big"]; ok && s.MRR != 5700 {
				t.Errorf("dropping items changed the subscription's MRR to %d, want 5700", s.MRR)
			}
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
