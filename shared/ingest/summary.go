package ingest

import (
	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
)

// summarize is what GET /accounts shows of a, indexed by the store with the account so a list
// reads no account. The top reason is chosen here, at commit time, from the health just
// scored, because the stored account need not keep the words of its reasons.
func (s *Service) summarize(a *account.Account) store.Summary {
	sum := store.NewSummary(a)
	if rs := score.Explain(a, s.Scorecard).Reasons; len(rs) > 0 {
		sum.TopReason, sum.TopMeasure = rs[0].Detail, rs[0].Measure
	}
	return sum
}
