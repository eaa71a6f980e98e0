package account

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func TestStatusAndChurn(t *testing.T) {
	tests := []struct {
		name    string
		subs    []Subscription
		status  string
		churned bool
		mrr     int64
	}{
		{"no subscription", nil, "", false, 0},
		{"active", []Subscription{{ID: "a", Status: StatusActive, MRR: 100}}, StatusActive, false, 100},
		{"incomplete is not churn", []Subscription{{ID: "a", Status: StatusIncomplete, MRR: 100}}, StatusIncomplete, false, 0},
		{"incomplete_expired is final but not churn", []Subscription{{ID: "a", Status: StatusIncompleteExpired}}, StatusIncompleteExpired, false, 0},
		{"canceled is churn", []Subscription{{ID: "a", Status: StatusCanceled, MRR: 100}}, StatusCanceled, true, 0},
		{"a live subscription beside a canceled one is not churn", []Subscription{{ID: "a", Status: StatusCanceled}, {ID: "b", Status: StatusActive, MRR: 50}}, StatusActive, false, 50},
		{"the most at-risk live status wins", []Subscription{{ID: "a", Status: StatusActive, MRR: 50}, {ID: "b", Status: StatusPastDue, MRR: 70}}, StatusPastDue, false, 120},
		{"trials carry no MRR", []Subscription{{ID: "a", Status: StatusTrialing, MRR: 50}}, StatusTrialing, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Billing
			for _, s := range tt.subs {
				b.ApplySubscription(s)
			}
			mrr, _ := b.MRR()
			if b.Status() != tt.status || b.Churned() != tt.churned || mrr != tt.mrr {
				t.Fatalf("status %q churned %v mrr %d; want %q %v %d", b.Status(), b.Churned(), mrr, tt.status, tt.churned, tt.mrr)
			}
		})
	}
}

func TestPeakMRRSince(t *testing.T) {
	var b Billing
	b.ApplySubscription(Subscription{ID: "a", Status: StatusActive, MRR: 1000, At: t0.AddDate(0, 0, -200).Unix()})
	b.ApplySubscription(Subscription{ID: "a", Status: StatusActive, MRR: 800, At: t0.AddDate(0, 0, -60).Unix()})
	b.ApplySubscription(Subscription{ID: "a", Status: StatusActive, MRR: 500, At: t0.AddDate(0, 0, -10).Unix()})
	for _, tt := range []struct {
		since time.Time
		want  int64
	}{{t0.AddDate(0, 0, -90), 1000}, {t0.AddDate(0, 0, -30), 800}, {t0.AddDate(0, 0, -5), 500}} {
		if got := b.PeakMRRSince(tt.since, ""); got != tt.want {
			t.Errorf("peak since %s = %d, want %d", tt.since.Format("2006-01-02"), got, tt.want)
		}
	}
}

func TestUsageStaysBoundedAndSmall(t *testing.T) {
	a := New("busy", t0)
	for d := 0; d < 400; d++ {
		for u := 0; u < 30; u++ {
			a.Usage.Record(fmt.Sprintf("user-%d-%d", d, u), t0.AddDate(0, 0, -d), true)
		}
	}
	for i := 0; i < 200; i++ {
		a.Usage.UseFeature(fmt.Sprintf("feature %d", i), t0)
		a.Voice.TicketOpened(fmt.Sprintf("T%d", i), t0)
		a.Voice.AddNPS(i%11, t0.Add(time.Duration(i)*time.Minute))
		a.Billing.PaymentFailed(fmt.Sprintf("in_%d", i), t0, false)
	}
	if len(a.Usage.Days) > WindowDays || a.Usage.Users.Len() > MaxUsers || len(a.Usage.Features) > MaxFeatures ||
		len(a.Voice.TicketDays) > WindowDays || len(a.Voice.OpenTickets) > MaxOpenTickets || len(a.Voice.NPS) > MaxNPS || len(a.Billing.Failures) > MaxFailures {
		t.Fatalf("unbounded: days %d users %d features %d tickets %d nps %d failures %d", len(a.Usage.Days), a.Usage.Users.Len(),
			len(a.Usage.Features), len(a.Voice.OpenTickets), len(a.Voice.NPS), len(a.Billing.Failures))
	}
	if n := a.Voice.TicketsSince(t0.AddDate(0, 0, -30)); n != 200 {
		t.Errorf("tickets in 30 days = %d, want all 200 counted", n)
	}
	if all, _ := a.Billing.FailuresSince(t0.AddDate(0, 0, -30)); all != 200 {
		t.Errorf("failed payments in 30 days = %d, want all 200 counted", all)
	}
	b, _ := json.Marshal(a)
	if len(b) > 64<<10 {
		t.Fatalf("a maximal account encodes to %d bytes, want under 64 KiB", len(b))
	}
	// The 30 most recent days still count every user but for fingerprint collisions: 30
	// users a day, all distinct; among these 2,000 ids two share a 22-bit fingerprint.
	if got := a.Usage.Users.ActiveSince(Day(t0), 30); got < 899 || got > 900 {
		t.Errorf("active users in 30 days = %d, want 900 (899 with the one collision)", got)
	}
	if got := a.Usage.EventsBetween(Day(t0)-29, Day(t0)+1); got != 900 {
		t.Errorf("events in 30 days = %d, want 900", got)
	}
}

func TestUserSetRoundTrip(t *testing.T) {
	var s UserSet
	s.Touch("alice", 100)
	s.Touch("bob", 90)
	s.Touch("alice", 95) // older activity does not move alice back
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back UserSet
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Len() != 2 || back.ActiveSince(100, 1) != 1 || back.ActiveSince(100, 11) != 2 {
		t.Fatalf("round trip lost data: %s", b)
	}
	if err := json.Unmarshal([]byte(`"not base64!"`), &back); err == nil {
		t.Error("garbage decoded")
	}
}

func TestCloneIsDeep(t *testing.T) {
	a := New("acme", t0)
	a.Billing.ApplySubscription(Subscription{ID: "s", Status: StatusActive, Items: []Item{{Price: "p"}}})
	a.Usage.Record("u", t0, true)
	a.SetTrait("plan", "pro")
	c := a.Clone()
	c.Billing.ApplySubscription(Subscription{ID: "s", Status: StatusCanceled, At: 5})
	c.Usage.Record("v", t0, true)
	c.Traits["plan"] = "free"
	if a.Billing.Status() != StatusActive || a.Usage.Users.Len() != 1 || a.Traits["plan"] != "pro" || a.Usage.Days[0].Events != 1 {
		t.Fatal("changing a clone changed the original")
	}
}

func TestMergeKeepsBothSides(t *testing.T) {
	product := New("acme", t0)
	product.Name = "Acme"
	product.Usage.Record("u1", t0, true)
	stripe := New("cus_1", t0.AddDate(0, 0, -10))
	stripe.StripeCustomerID, stripe.Name = "cus_1", "ACME CORP"
	stripe.Billing.ApplySubscription(Subscription{ID: "s", Status: StatusPastDue, MRR: 100})
	stripe.Usage.Record("u2", t0, true)
	product.Merge(stripe)
	if product.StripeCustomerID != "cus_1" || product.Name != "Acme" || product.Billing.Status() != StatusPastDue ||
		product.Usage.Users.Len() != 2 || product.Usage.Days[0].Events != 2 || !product.CreatedAt.Equal(stripe.CreatedAt) {
		t.Fatalf("merge lost data: %+v", product)
	}
}

func TestUserSetEncodesTwoThousandUsersInAFewKilobytesExactly(t *testing.T) {
	var s UserSet
	today := Day(t0)
	for u := 0; u < MaxUsers; u++ {
		s.Touch(fmt.Sprintf("user-%d@example.com", u), today-int32(u%30))
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back UserSet
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 7, 30} {
		if got, want := back.ActiveSince(today, n), s.ActiveSince(today, n); got != want {
			t.Errorf("ActiveSince(%d) after a round trip = %d, want %d", n, got, want)
		}
	}
	// 2,000 users were 24,000 bytes (32 KB as base64) in the 12-byte format; now about 2.5
	// bytes a user before base64.
	if len(b) > 6700 {
		t.Errorf("2,000 users encode to %d bytes, want at most 6,700", len(b))
	}
	t.Logf("2,000 users: %d bytes (%.2f a user)", len(b), float64(len(b))/MaxUsers)
}

func TestUserSetReadsTheEarlierFormatAndRefusesGarbage(t *testing.T) {
	old := make([]byte, 0, 24)
	old = binary.BigEndian.AppendUint64(old, 0xABCDEF0123456789)
	old = binary.BigEndian.AppendUint32(old, 100)
	old = binary.BigEndian.AppendUint64(old, 0x0000000000000001)
	old = binary.BigEndian.AppendUint32(old, 90)
	var s UserSet
	if err := json.Unmarshal([]byte(`"`+base64.StdEncoding.EncodeToString(old)+`"`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || s.ActiveSince(100, 1) != 1 || s.ActiveSince(100, 11) != 2 {
		t.Errorf("earlier format decoded to %d users", s.Len())
	}
	for _, garbage := range [][]byte{{1}, {1, 5}, {1, 5, 200, 1}, {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if err := json.Unmarshal([]byte(`"`+base64.StdEncoding.EncodeToString(garbage)+`"`), &s); err == nil {
			t.Errorf("garbage %x decoded", garbage)
		}
	}
}
