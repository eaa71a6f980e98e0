package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/risk"
	"github.com/churnsignal/churnsignal/shared/store"
)

// Bounds on what one recompute result lists.
const (
	// MaxSimulated bounds the accounts a dry run lists; Truncated says when more would change.
	MaxSimulated = 500
	// MaxFailed bounds the failed accounts a result lists; FailedCount counts them all.
	MaxFailed = 100
)

// scanPage is how many accounts a recompute reads per Scan call.
var scanPage = 100

// MarshalJSON always shows a dry run's accounts and truncated, even when empty or false.
func (r RecomputeResult) MarshalJSON() ([]byte, error) {
	type plain RecomputeResult
	if !r.DryRun {
		return json.Marshal(plain(r))
	}
	accounts := r.Accounts
	if accounts == nil {
		accounts = []Simulated{}
	}
	return json.Marshal(struct {
		plain
		Accounts  []Simulated `json:"accounts"`
		Truncated bool        `json:"truncated"`
	}{plain(r), accounts, r.Truncated})
}

// RecomputeRequest says which accounts to rescore, as of when, and for how long.
type RecomputeRequest struct {
	// At is the time to score as of.
	At time.Time
	// Shard and Shards select a part of the key space (0 ≤ Shard < Shards), so a schedule can
	// fan a recompute out over workers; Shards ≤ 1 is every account.
	Shard, Shards int
	// Cursor resumes a run from the NextCursor of an earlier result for the same shard.
	Cursor string
	// Budget stops the run after about this long (0: no limit), returning NextCursor. At least
	// one page of accounts is done per call, so a run always progresses.
	Budget time.Duration
	// DryRun writes and publishes nothing: the result lists what would change.
	DryRun bool
}

// RecomputeResult counts what a recompute did, or with DryRun what it would do.
type RecomputeResult struct {
	Scored  int  `json:"scored"`
	Changed int  `json:"changed"`
	Events  int  `json:"events"`
	DryRun  bool `json:"dry_run,omitempty"`
	// Accounts are the accounts a dry run would change, the first MaxSimulated of them.
	Accounts  []Simulated `json:"accounts,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`
	// Failed are accounts that could not be rescored (the first MaxFailed); each was skipped
	// and the run went on.
	Failed      []Failure `json:"failed,omitempty"`
	FailedCount int       `json:"failed_count,omitempty"`
	// NextCursor is set when the budget ended the run before the shard's end: pass it as
	// Cursor to continue. Accounts of the interrupted page are scored again, which changes
	// nothing for those already written.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Simulated is one account a dry run would change.
type Simulated struct {
	ID            string `json:"id"`
	Score         int    `json:"score"`
	Band          string `json:"band"`
	PreviousScore int    `json:"previous_score"`
	PreviousBand  string `json:"previous_band"`
	// Events are the types of the events that would be published.
	Events []string `json:"events"`
}

// Failure is an account a recompute skipped, and why.
type Failure struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// Recompute rescores a shard of the accounts as of req.At, because silence is a signal: an
// account nobody used for three weeks gets worse without any event arriving. Only accounts
// whose score, band or segment changed (or that emit an event) are written. One account that
// fails is reported in the result and skipped; only a failing scan stops the run.
func (s *Service) Recompute(ctx context.Context, req RecomputeRequest) (RecomputeResult, error) {
	res := RecomputeResult{DryRun: req.DryRun}
	start := time.Now()
	expired := func() bool { return req.Budget > 0 && time.Since(start) >= req.Budget }
	cursor := req.Cursor
	for pages := 0; ; pages++ {
		page, next, err := s.Store.Scan(ctx, req.Shard, req.Shards, cursor, scanPage)
		if errors.Is(err, store.ErrInvalidCursor) {
			return res, fault.E("scan", fault.Invalid, err)
		}
		if err != nil {
			res.NextCursor = cursor
			return res, fault.Dependency("scan", err)
		}
		for _, a := range page {
			if err := ctx.Err(); err != nil {
				res.NextCursor = cursor
				return res, fault.Dependency("recompute", err)
			}
			if pages > 0 && expired() {
				res.NextCursor = cursor // this page again: the budget ended inside it
				return res, nil
			}
			s.recomputeOne(ctx, a, req, &res)
		}
		if next == "" {
			return res, nil
		}
		cursor = next
		if expired() {
			res.NextCursor = cursor
			return res, nil
		}
	}
}

// recomputeOne rescores one scanned account into res.
func (s *Service) recomputeOne(ctx context.Context, a *account.Account, req RecomputeRequest, res *RecomputeResult) {
	if a.MergedInto != "" {
		return
	}
	res.Scored++
	// Score the scanned copy first: most accounts do not change, and those cost only the scan's
	// read. The write below re-reads and re-scores under its version condition.
	probe := a.Clone()
	old := probe.Health
	events := risk.Rescore(probe, s.Scorecard, req.At, req.At)
	if len(events) == 0 && !healthMoved(old, probe.Health) {
		return
	}
	if req.DryRun {
		res.Changed++
		res.Events += len(events)
		if len(res.Accounts) == MaxSimulated {
			res.Truncated = true
			return
		}
		sim := Simulated{ID: a.ID, Score: probe.Health.Score, Band: probe.Health.Band,
			PreviousScore: old.Score, PreviousBand: old.Band, Events: []string{}}
		for _, e := range events {
			sim.Events = append(sim.Events, e.Type)
		}
		res.Accounts = append(res.Accounts, sim)
		return
	}
	id := a.ID
	out, err := s.run(ctx, write{
		resolve: func(context.Context) (plan, error) { return plan{target: id}, nil },
		apply:   func(*account.Account, map[string]bool, *store.Tx) error { return nil },
	}, req.At)
	if err != nil {
		s.logger().Error("recompute account failed; skipped", "account", id, "err", err)
		res.FailedCount++
		if len(res.Failed) < MaxFailed {
			res.Failed = append(res.Failed, Failure{ID: id, Error: err.Error()})
		}
		return
	}
	if out.changed {
		res.Changed++
	}
	res.Events += len(out.events)
}

func (s *Service) logger() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}
