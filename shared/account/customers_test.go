package account

import (
	"encoding/json"
	"testing"
	"time"
)

func TestMovingACustomerTakesOnlyItsOwnFacts(t *testing.T) {
	from, to := New("x", t0), New("y", t0)
	apply := func(cus string, f func()) { f(); from.AddStripeCustomer(cus); from.Billing.Tag(cus) }
	apply("cus_A", func() {
		from.Billing.ApplySubscription(Subscription{ID: "sub_A", Status: StatusActive, Currency: "usd", MRR: 1000, At: t0.Unix()})
	})
	apply("cus_A", func() { from.Billing.PaymentFailed("in_A", t0, false) })
	apply("cus_A", func() { from.Billing.AddDispute(t0) })
	apply("cus_B", func() {
		from.Billing.ApplySubscription(Subscription{ID: "sub_B", Status: StatusActive, Currency: "usd", MRR: 500, At: t0.Unix()})
	})
	apply("cus_B", func() { from.Billing.AddRefund(t0) })
	to.MoveCustomer(from, "cus_A", t0)
	fromMRR, _ := from.Billing.MRRAt(t0)
	toMRR, _ := to.Billing.MRRAt(t0)
	fromFailed, _ := from.Billing.FailuresSince(t0.AddDate(0, 0, -1))
	toFailed, toOpen := to.Billing.FailuresSince(t0.AddDate(0, 0, -1))
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"x MRR (cus_B's only)", int(fromMRR), 500},
		{"y MRR (cus_A's)", int(toMRR), 1000},
		{"x failures", fromFailed, 0},
		{"y failures, unpaid", toFailed + 10*toOpen, 11},
		{"x disputes", CountSince(from.Billing.Disputes, t0), 0},
		{"y disputes", CountSince(to.Billing.Disputes, t0), 1},
		{"x refunds (cus_B's stay)", CountSince(from.Billing.Refunds, t0), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	if from.StripeCustomerID != "cus_B" || len(from.StripeCustomerIDs) != 1 || to.StripeCustomerID != "cus_A" {
		t.Errorf("customers: x %s %v, y %s", from.StripeCustomerID, from.StripeCustomerIDs, to.StripeCustomerID)
	}
}

func TestFactsStoredBeforeTheyNamedACustomerStillDecode(t *testing.T) {
	var b Billing
	old := `{"refunds":["2026-11-20T12:00:00Z"],"disputes":["2026-11-19T12:00:00Z"],"action_required":["in_1"],"uncollectible":["in_2"]}`
	if err := json.Unmarshal([]byte(old), &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Refunds) != 1 || !b.Refunds[0].At.Equal(t0) || b.ActionRequired[0].ID != "in_1" || b.Uncollectible[0].ID != "in_2" || len(b.Disputes) != 1 {
		t.Errorf("decoded %+v", b)
	}
}

func TestAGroupNameWinsOverAStripeName(t *testing.T) {
	tests := []struct {
		name  string
		order [][2]string
		want  string
	}{
		{"stripe first, then the product", [][2]string{{"ACME CORP (Stripe)", NameFromStripe}, {"Acme", NameFromGroup}}, "Acme"},
		{"the product first, then stripe", [][2]string{{"Acme", NameFromGroup}, {"ACME CORP (Stripe)", NameFromStripe}}, "Acme"},
		{"a renamed product account", [][2]string{{"Acme", NameFromGroup}, {"Acme Inc", NameFromGroup}}, "Acme Inc"},
		{"stripe alone", [][2]string{{"ACME CORP", NameFromStripe}}, "ACME CORP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New("acme", t0)
			for _, n := range tt.order {
				a.SetName(n[0], n[1])
			}
			if a.Name != tt.want {
				t.Errorf("name %q, want %q", a.Name, tt.want)
			}
		})
	}
}

func TestMergingTwoOpenEpisodesKeepsTheMoreUrgentKindAndTheEarlierStart(t *testing.T) {
	tests := []struct{ into, from, want string }{
		{"engagement", "involuntary", "involuntary"},
		{"involuntary", "voluntary", "involuntary"},
		{"voluntary", "engagement", "voluntary"},
	}
	for _, tt := range tests {
		a, src := New("acme", t0), New("cus_1", t0)
		a.Risk = Risk{Open: true, Episode: 3, Seq: 7, Kind: tt.into, Since: t0}
		src.Risk = Risk{Open: true, Episode: 1, Seq: 1, Kind: tt.from, Since: t0.Add(-time.Hour)}
		a.Merge(src)
		if a.Risk.Kind != tt.want || !a.Risk.Since.Equal(t0.Add(-time.Hour)) || a.Risk.Episode != 3 || a.Risk.Seq != 7 {
			t.Errorf("%s into %s: %+v; want kind %s since the earlier start, episode and sequence kept", tt.from, tt.into, a.Risk, tt.want)
		}
	}
}

func TestAnAnonymousIDFoldsIntoItsUser(t *testing.T) {
	var s UserSet
	s.Touch("anon:dev1", 100)
	s.Touch("alice", 90)
	s.Alias("anon:dev1", "alice")
	if s.Len() != 1 || s.ActiveSince(100, 1) != 1 {
		t.Errorf("after the alias: %d users, %d active on day 100; want alice alone, active on day 100", s.Len(), s.ActiveSince(100, 1))
	}
	s.Alias("anon:unknown", "alice") // nothing to fold
	if s.Len() != 1 {
		t.Errorf("aliasing an unknown id changed the set: %d users", s.Len())
	}
}
