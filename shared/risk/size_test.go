package risk

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/score"
)

// activeAccount is a customer with a month of activity by users users, a 25-seat
// subscription, every key feature used daily and every onboarding milestone, rescored daily as
// the pipeline does. Each user is active every every-th day (1: daily), starting on a day of
// its own, so with every > 1 the users' last active days spread over the month: the worst case
// for the user set's encoding.
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
		Rescore(a, sc, day, day)
	}
	for _, m := range sc.Events.Onboarding {
		a.Usage.Reach(m, t0.AddDate(0, -1, 0))
	}
	Rescore(a, sc, t0, t0)
	return a
}

// fieldSizes lists the encoded size of each top-level field of v and of its nested structs,
// largest first, so a failure says where the bytes went.
func fieldSizes(prefix string, v reflect.Value) []string {
	var out []string
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		b, _ := json.Marshal(v.Field(i).Interface())
		out = append(out, fmt.Sprintf("%s%s %d", prefix, f.Name, len(b)))
		if fv := v.Field(i); fv.Kind() == reflect.Struct && fv.Type().PkgPath() == v.Type().PkgPath() {
			out = append(out, fieldSizes(prefix+f.Name+".", fv)...)
		}
	}
	return out
}

func TestAnActiveAccountEncodesSmall(t *testing.T) {
	tests := []struct {
		name   string
		users  int
		every  int
		budget int
	}{
		{"25 users active every day of a month", 25, 1, 2 << 10},
		{"2,000 users active every day of a month", 2000, 1, 8 << 10},
		{"2,000 users active once a month, spread over its days", 2000, 31, 8 << 10},
		{"2,000 users active once a week", 2000, 7, 8 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := activeAccount(tt.users, tt.every)
			b, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			sizes := strings.Join(fieldSizes("", reflect.ValueOf(*a)), ", ")
			t.Logf("%d users: %d bytes (%s)", tt.users, len(b), sizes)
			if len(b) > tt.budget {
				t.Errorf("the account encodes to %d bytes, over the %d-byte target: %s", len(b), tt.budget, sizes)
			}
			var back account.Account
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("the compact account does not decode: %v", err)
			}
			if again, _ := json.Marshal(&back); string(again) != string(b) {
				t.Errorf("decoding and encoding again changes the account:\n%s\n%s", b, again)
			}
		})
	}
}
