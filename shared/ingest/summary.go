package ingest

import (
	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/store"
)

// summarize is what GET /accounts shows of a, indexed by the store with the account so a list
// reads no account. The top reason is chosen here, at commit time, from the health just
// scored, because the stored account need not keep the words of its reasons.
func summarize(a *account.Account) store.Summary {
	sum := store.NewSummary(a)
	if len(a.Health.Reasons) > 0 {
		sum.TopReason, sum.TopMeasure = a.Health.Reasons[0].Detail, a.Health.Reasons[0].Measure
	}
	return sum
}
