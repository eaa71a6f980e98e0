// Package risk rescores an account and turns the change in its health into the events
// downstream tools subscribe to: churn_risk.raised / churn_risk.cleared (one pair per risk
// episode, with band hysteresis), health.dropped and account.churned.
package risk

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/score"
)

// Event types.
const (
	TypeRaised  = "churn_risk.raised"
	TypeCleared = "churn_risk.cleared"
	TypeDropped = "health.dropped"
	TypeChurned = "account.churned"
)

// SchemaVersion is the version of the published event schema (events/schema/).
const SchemaVersion = "1"

// Event is what is published: the SNS message body and a local JSON line.
type Event struct {
	ID               string           `json:"id"`
	Type             string           `json:"type"`
	Kind             string           `json:"kind"`
	OccurredAt       time.Time        `json:"occurred_at"`
	Account          AccountRef       `json:"account"`
	Health           HealthChange     `json:"health"`
	Reasons          []account.Reason `json:"reasons"`
	Changes          []Change         `json:"changes"`
	ScorecardVersion string           `json:"scorecard_version"`
	SchemaVersion    string           `json:"schema_version"`
	// MRRLost is set on account.churned: the MRR in force before the subscription ended.
	MRRLost *Money `json:"mrr_lost,omitempty"`
}

// AccountRef identifies the account an event is about.
type AccountRef struct {
	ID               string `json:"id"`
	Name             string `json:"name,omitempty"`
	StripeCustomerID string `json:"stripe_customer_id,omitempty"`
	Segment          string `json:"segment"`
	MRR              Money  `json:"mrr"`
}

// Money is an exact amount in minor units of a currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// HealthChange is the score and band after and before the change.
type HealthChange struct {
	Score         int    `json:"score"`
	Band          string `json:"band"`
	PreviousScore *int   `json:"previous_score"`
	PreviousBand  string `json:"previous_band,omitempty"`
}

// Change is what one measure moved: its contribution in points before and after.
type Change struct {
	Measure  string  `json:"measure"`
	Previous float64 `json:"previous"`
	Current  float64 `json:"current"`
	Delta    float64 `json:"delta"`
}

// Attributes are the SNS message attributes subscribers filter on.
func (e Event) Attributes() map[string]string {
	return map[string]string{"type": e.Type, "kind": e.Kind, "band": e.Health.Band, "segment": e.Account.Segment}
}

// Rescore computes a's health as of now, records it in a (health, daily history, risk state)
// and returns the events the change causes. Calling it again with nothing new returns none.
func Rescore(a *account.Account, sc *score.Scorecard, now time.Time) []Event {
	old := a.Health
	h := score.Compute(a, sc, now)
	h.History = old.History
	today := account.Day(now)
	h.Record(today, h.Score, h.Band)
	a.Health = h

	var events []Event
	emit := func(typ, kind, idPart string) {
		e := Event{
			ID: eventID(a.ID, typ, idPart), Type: typ, Kind: kind, OccurredAt: now.UTC(),
			Account:          ref(a),
			Health:           HealthChange{Score: h.Score, Band: h.Band},
			Reasons:          h.Reasons,
			Changes:          changes(old, h),
			ScorecardVersion: sc.Version, SchemaVersion: SchemaVersion,
		}
		if old.Scored() {
			s := old.Score
			e.Health.PreviousScore, e.Health.PreviousBand = &s, old.Band
		}
		if e.Reasons == nil {
			e.Reasons = []account.Reason{}
		}
		events = append(events, e)
	}

	churned := a.Churned()
	switch {
	case churned && a.Risk.ChurnedAt.IsZero():
		a.Risk.ChurnedAt = now.UTC()
		a.Risk.Open = false // the episode ends in churn, not in a recovery
		emit(TypeChurned, churnKind(a), strings.Join(canceledIDs(a), ","))
		events[len(events)-1].MRRLost = lostMRR(a)
		return events
	case !churned && !a.Risk.ChurnedAt.IsZero():
		a.Risk.ChurnedAt = time.Time{} // reactivated: a new subscription started
	}
	if churned {
		return events
	}

	if h.Band == account.BandBad && !a.Risk.Open {
		a.Risk.Open, a.Risk.Episode, a.Risk.Since = true, a.Risk.Episode+1, now.UTC()
		a.Risk.Kind = riskKind(a, h)
		emit(TypeRaised, a.Risk.Kind, strconv.Itoa(a.Risk.Episode))
	} else if h.Band != account.BandBad && a.Risk.Open {
		a.Risk.Open = false
		emit(TypeCleared, a.Risk.Kind, strconv.Itoa(a.Risk.Episode))
	}

	if old.Scored() && (a.Risk.LastDrop.IsZero() || now.Sub(a.Risk.LastDrop) >= time.Duration(sc.Drop.Days)*24*time.Hour) {
		peak, _ := old.PeakSince(today-int32(sc.Drop.Days), today+1)
		if old.Score > peak {
			peak = old.Score
		}
		if peak-h.Score >= sc.Drop.Points {
			a.Risk.LastDrop = now.UTC()
			emit(TypeDropped, dropKind(old, h), strconv.Itoa(int(today)))
		}
	}
	return events
}

// riskKind says what kind of risk an episode is: a billing failure is involuntary whatever
// else is wrong, a scheduled cancellation is voluntary, otherwise the kind of the worst reason.
func riskKind(a *account.Account, h account.Health) string {
	switch a.Billing.Status() {
	case account.StatusPastDue, account.StatusUnpaid:
		return score.KindInvoluntary
	}
	if _, open := a.Billing.FailuresSince(h.UpdatedAt.AddDate(0, 0, -30)); open > 0 || len(a.Billing.Uncollectible) > 0 || len(a.Billing.ActionRequired) > 0 {
		return score.KindInvoluntary
	}
	if _, ok := a.Billing.CancelScheduled(); ok {
		return score.KindVoluntary
	}
	for _, r := range h.Reasons {
		if !strings.HasPrefix(r.Measure, "rule:") && r.Kind != "" {
			return r.Kind
		}
	}
	return score.KindEngagement
}

// churnKind is involuntary when the subscription ended for non-payment.
func churnKind(a *account.Account) string {
	for _, s := range a.Billing.Subscriptions {
		if s.Status == account.StatusCanceled && (s.CancelReason == "payment_failed" || s.CancelReason == "payment_disputed") {
			return score.KindInvoluntary
		}
	}
	return score.KindVoluntary
}

// dropKind is the kind of the measure that lost the most points.
func dropKind(old, h account.Health) string {
	kind, worst := score.KindEngagement, 0.0
	prev := map[string]float64{}
	for _, m := range old.Measures {
		prev[m.Name] = m.Contribution
	}
	for _, m := range h.Measures {
		if d := m.Contribution - prev[m.Name]; d < worst {
			kind, worst = m.Kind, d
		}
	}
	return kind
}

// changes lists the measures whose contribution moved, biggest move first.
func changes(old, h account.Health) []Change {
	prev := map[string]float64{}
	for _, m := range old.Measures {
		prev[m.Name] = m.Contribution
	}
	out := []Change{}
	for _, m := range h.Measures {
		p := prev[m.Name]
		if d := round2(m.Contribution - p); d != 0 {
			out = append(out, Change{Measure: m.Name, Previous: p, Current: m.Contribution, Delta: d})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return math.Abs(out[i].Delta) > math.Abs(out[j].Delta) })
	return out
}

func ref(a *account.Account) AccountRef {
	mrr, cur := a.Billing.MRR()
	return AccountRef{ID: a.ID, Name: a.Name, StripeCustomerID: a.StripeCustomerID, Segment: a.Health.Segment, MRR: Money{Amount: mrr, Currency: cur}}
}

// lostMRR is the last non-zero MRR the account had, in the currency of its most recently
// changed subscription (ties broken by id, so a replay renders the same event).
func lostMRR(a *account.Account) *Money {
	cur, last := "", account.Subscription{}
	for _, s := range a.Billing.Subscriptions {
		if s.Currency != "" && (cur == "" || s.At > last.At || (s.At == last.At && s.ID > last.ID)) {
			cur, last = s.Currency, s
		}
	}
	h := a.Billing.MRRHistory
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Amount > 0 {
			return &Money{Amount: h[i].Amount, Currency: cur}
		}
	}
	return &Money{Currency: cur}
}

func canceledIDs(a *account.Account) []string {
	var ids []string
	for id, s := range a.Billing.Subscriptions {
		if s.Status == account.StatusCanceled {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// eventID is stable for the same transition, so a redelivered or replayed one dedupes.
func eventID(accountID, typ, part string) string {
	s := sha256.Sum256([]byte(accountID + "\x00" + typ + "\x00" + part))
	return "evt_" + hex.EncodeToString(s[:12])
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
