package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/risk"
	"github.com/churnsignal/churnsignal/shared/store"
)

// RecomputeResult counts what a recompute did.
type RecomputeResult struct {
	Scored  int `json:"scored"`
	Changed int `json:"changed"`
	Events  int `json:"events"`
}

// Recompute rescores every account as of at, because silence is a signal: an account nobody
// used for three weeks gets worse without any event arriving. Only accounts whose score, band
// or segment changed (or that emit an event) are written.
func (s *Service) Recompute(ctx context.Context, at time.Time) (RecomputeResult, error) {
	var res RecomputeResult
	cursor := ""
	for {
		page, next, err := s.Store.Scan(ctx, cursor, 100)
		if err != nil {
			return res, transient("scan", err)
		}
		for _, a := range page {
			if a.MergedInto != "" {
				continue
			}
			res.Scored++
			// Score the scanned copy first: most accounts do not change, and those cost only the
			// scan's read. The write below re-reads and re-scores under its version condition.
			probe := a.Clone()
			old := probe.Health
			if events := risk.Rescore(probe, s.Scorecard, at, at); len(events) == 0 && !healthMoved(old, probe.Health) {
				continue
			}
			id := a.ID
			out, err := s.run(ctx, write{
				resolve: func(context.Context) (plan, error) { return plan{target: id}, nil },
				apply:   func(*account.Account, map[string]bool, *store.Tx) error { return nil },
			}, at)
			if err != nil {
				return res, err
			}
			if out.changed {
				res.Changed++
			}
			res.Events += len(out.events)
		}
		if next == "" {
			return res, nil
		}
		cursor = next
	}
}

func (s *Service) logger() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}
