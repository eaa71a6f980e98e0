package billing

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/churnsignal/churnsignal/shared/account"
)

func TestASubscriptionWithManyLongItemsStoresABoundedNoteAndItems(t *testing.T) {
	tests := []struct {
		name  string
		usage stripe.PriceRecurringUsageType
		mrr   int64
	}{
		{"twenty metered items", stripe.PriceRecurringUsageTypeMetered, 0},
		{"twenty licensed items", stripe.PriceRecurringUsageTypeLicensed, 20 * 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &stripe.Subscription{ID: "sub_1", Currency: "usd", Items: &stripe.SubscriptionItemList{}}
			for i := 0; i < 20; i++ { // Stripe's cap of items per subscription; ids up to 255 bytes
				id := fmt.Sprintf("price_%02d_", i) + strings.Repeat("x", 246)
				s.Items.Data = append(s.Items.Data, &stripe.SubscriptionItem{Quantity: 1, Price: &stripe.Price{ID: id, UnitAmount: 1000,
					BillingScheme: stripe.PriceBillingSchemePerUnit,
					Recurring:     &stripe.PriceRecurring{Interval: "month", IntervalCount: 1, UsageType: tt.usage}}})
			}
			m := MRR(s, created)
			if len(m.Note) > account.MaxString {
				t.Errorf("the MRR note is %d bytes, want at most %d", len(m.Note), account.MaxString)
			}
			if len(m.Items) > account.MaxItems {
				t.Errorf("%d items kept, want at most %d", len(m.Items), account.MaxItems)
			}
			if m.Amount != tt.mrr {
				t.Errorf("MRR %d, want %d from every item", m.Amount, tt.mrr)
			}
		})
	}
}
