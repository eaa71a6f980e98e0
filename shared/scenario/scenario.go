// Package scenario builds realistic accounts, the same for every package that measures them
// (the encoded size in shared/risk, the write units in shared/store/dynamo), so the figures in
// the docs come from one scenario.
package scenario

import (
	"fmt"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/risk"
	"github.com/churnsignal/churnsignal/shared/score"
)

// ActiveAccount is a customer with a month of activity by users users, a 25-seat
// subscription, every key feature used daily and every onboarding milestone, rescored daily as
// the pipeline does, as of t0. Each user is active every every-th day (1: daily), starting on a day of
// its own, so with every > 1 the users' last active days spread over the month: the worst case
// for the user set's encoding.
func ActiveAccount(users, every int, t0 time.Time) *account.Account {
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
