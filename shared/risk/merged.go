package risk

import (
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/score"
)

// Merged returns the account.merged event of folding the account from into a (already
// merged, and rescored), and says what became of from's open episode: wasOpen is whether a
// had an open episode of its own before the merge, fromOpen whether from had one. The event
// carries a's id, health and (when an episode is open) its kind.
func Merged(a *account.Account, from string, wasOpen, fromOpen bool, sc *score.Scorecard, now, occurred time.Time) Event {
	now = now.UTC()
	if occurred.IsZero() {
		occurred = now
	}
	m := &Merge{From: from, Into: a.ID}
	switch {
	case fromOpen && wasOpen:
		m.Episode = EpisodeClosed
	case fromOpen:
		m.Episode = EpisodeContinued
	}
	kind := score.KindEngagement
	if a.Risk.Open {
		kind = a.Risk.Kind
	}
	a.Risk.Seq++
	ex := score.Explain(a, sc)
	e := Event{
		ID: eventID(a.ID, a.Risk.Seq), Type: TypeMerged, Kind: kind, OccurredAt: occurred.UTC(),
		Account: ref(a, now), Health: HealthChange{Score: a.Health.Score, Band: a.Health.Band},
		Reasons: ex.Reasons, Changes: []Change{}, ScorecardVersion: sc.Version, SchemaVersion: SchemaVersion,
		Merge: m,
	}
	if e.Reasons == nil {
		e.Reasons = []account.Reason{}
	}
	return e
}
