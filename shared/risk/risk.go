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
	// TypeMerged tells that an account known by one id (a Stripe customer seen before its
	// product account) was folded into another: from now on its events carry the other id.
	TypeMerged = "account.merged"
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
	// Billing is set on involuntary events when a failed invoice is known: what a dunning
	// playbook acts on.
	Billing *BillingFacts `json:"billing,omitempty"`
	// Cancellation is set on voluntary events when a cancellation is scheduled or happened:
	// when, Stripe's reason, and the customer's own feedback and comment.
	Cancellation *Cancellation `json:"cancellation,omitempty"`
	// Merge is set on account.merged.
	Merge *Merge `json:"merge,omitempty"`
}

// Merge says which account id was folded into which, and what became of the folded account's
// open risk episode, so a subscriber that tracks episodes by account id re-keys or closes it.
type Merge struct {
	From string `json:"from"`
	Into string `json:"into"`
	// Episode is EpisodeContinued (the open episode of From goes on under Into: a later
	// churn_risk.cleared for Into clears it), EpisodeClosed (Into had an open episode of its
	// own, which goes on with the more urgent kind of the two; From's ends here), or empty
	// when From had no open episode.
	Episode string `json:"episode,omitempty"`
}

// What became of a folded account's open episode.
const (
	EpisodeContinued = "continued"
	EpisodeClosed    = "closed"
)

// BillingFacts describes the latest failed, unpaid invoice.
type BillingFacts struct {
	InvoiceID          string     `json:"invoice_id"`
	AmountDue          int64      `json:"amount_due"`
	Currency           string     `json:"currency"`
	AttemptCount       int64      `json:"attempt_count"`
	NextPaymentAttempt *time.Time `json:"next_payment_attempt"`
	HostedInvoiceURL   string     `json:"hosted_invoice_url,omitempty"`
	Email              string     `json:"email,omitempty"`
}

// Cancellation describes a scheduled or completed cancellation, from Stripe's subscription
// and its cancellation_details.
type Cancellation struct {
	// CancelAt is when the subscription ends (or ended).
	CancelAt *time.Time `json:"cancel_at"`
	// Reason is Stripe's cancellation_details.reason: cancellation_requested, payment_failed
	// or payment_disputed.
	Reason string `json:"reason,omitempty"`
	// Feedback and Comment are the customer's own words (cancellation_details).
	Feedback string `json:"feedback,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

// AccountRef identifies the account an event is about.
type AccountRef struct {
	ID               string `json:"id"`
	Name             string `json:"name,omitempty"`
	StripeCustomerID string `json:"stripe_customer_id,omitempty"`
	// StripeCustomerIDs are all the account's Stripe customers; StripeCustomerID is the first
	// linked and never changes when another links.
	StripeCustomerIDs []string `json:"stripe_customer_ids,omitempty"`
	Segment           string   `json:"segment"`
	// MRR is the headline MRR: the largest of the per-currency amounts (never a sum across
	// currencies); MRRByCurrency holds each currency's.
	MRR           Money            `json:"mrr"`
	MRRByCurrency map[string]int64 `json:"mrr_by_currency,omitempty"`
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

// Rescore computes a's health as of now (the scoring time; usage windows end there), records
// it in a (health, daily history, risk state) and returns the events the change causes, dated
// occurred: the time of the fact that triggered it (a Stripe event's created, a message's
// timestamp; a recompute passes now twice). Calling it again with nothing new returns none.
func Rescore(a *account.Account, sc *score.Scorecard, now, occurred time.Time) []Event {
	now = now.UTC()
	if occurred.IsZero() {
		occurred = now
	}
	occurred = occurred.UTC()
	old := a.Health
	ex := score.Compute(a, sc, now)
	h := ex.Health
	h.History = append(account.Points(nil), old.History...) // old keeps its own points: see DayPoint
	today := account.Day(now)
	h.Record(today, h.Score, h.Band)
	a.Health = h

	var events []Event
	emit := func(typ, kind string) *Event {
		a.Risk.Seq++
		e := Event{
			ID: eventID(a.ID, a.Risk.Seq), Type: typ, Kind: kind, OccurredAt: occurred,
			Account:          ref(a, now),
			Health:           HealthChange{Score: h.Score, Band: h.Band},
			Reasons:          ex.Reasons,
			Changes:          changes(old, h, sc),
			ScorecardVersion: sc.Version, SchemaVersion: SchemaVersion,
		}
		if old.Scored() {
			s := old.Score
			e.Health.PreviousScore, e.Health.PreviousBand = &s, old.Band
		}
		if e.Reasons == nil {
			e.Reasons = []account.Reason{}
		}
		switch kind {
		case score.KindInvoluntary:
			e.Billing = billingFacts(a)
		case score.KindVoluntary:
			e.Cancellation = cancellation(a)
		}
		events = append(events, e)
		return &events[len(events)-1]
	}

	churned := a.Churned()
	switch {
	case churned && a.Risk.ChurnedAt.IsZero():
		a.Risk.ChurnedAt = occurred
		a.Risk.Open = false // the episode ends in churn, not in a recovery
		e := emit(TypeChurned, score.ChurnKind(&a.Billing))
		amount, cur := a.Billing.LastMRR()
		e.MRRLost = &Money{Amount: amount, Currency: cur}
		if e.Cancellation == nil {
			e.Cancellation = cancellation(a)
		}
		return events
	case !churned && !a.Risk.ChurnedAt.IsZero():
		a.Risk.ChurnedAt = time.Time{} // reactivated: a new subscription started
	}
	if churned {
		return events
	}

	raised := false
	if h.Band == account.BandBad && !a.Risk.Open {
		a.Risk.Open, a.Risk.Episode, a.Risk.Since = true, a.Risk.Episode+1, occurred
		a.Risk.Kind = riskKind(a, ex)
		e := emit(TypeRaised, a.Risk.Kind)
		if e.Cancellation == nil && e.Kind != score.KindVoluntary {
			if c := cancellation(a); c != nil && (c.Feedback != "" || c.Comment != "") {
				e.Cancellation = c // the customer's own words, whatever the kind
			}
		}
		raised = true
	} else if h.Band != account.BandBad && a.Risk.Open {
		a.Risk.Open = false
		emit(TypeCleared, a.Risk.Kind)
	} else if a.Risk.Open {
		// An open episode takes the most urgent kind it has had: an account that started
		// dunning (or merged with one that did) is involuntary risk now.
		a.Risk.Kind = account.MoreUrgent(a.Risk.Kind, riskKind(a, ex))
	}

	if old.Scored() && (a.Risk.LastDrop.IsZero() || now.Sub(a.Risk.LastDrop) >= time.Duration(sc.Drop.Days)*24*time.Hour) {
		peak, _ := old.PeakSince(today-int32(sc.Drop.Days), today+1)
		if old.Score > peak {
			peak = old.Score
		}
		if peak-h.Score >= sc.Drop.Points {
			// One alert per incident: the churn_risk.raised of this write already tells of the
			// fall, so the drop is recorded (no second alert in the window) but not emitted.
			a.Risk.LastDrop = now
			if !raised {
				emit(TypeDropped, dropKind(old, h, sc))
			}
		}
	}
	return events
}

// DayPoint returns the daily point Rescore recorded in h for now's day when it differs from
// what old held for that day: the point to store as the day's history item.
func DayPoint(old, h account.Health, now time.Time) (account.Point, bool) {
	day := account.Day(now)
	var p, q account.Point
	for _, x := range h.History {
		if x.Day == day {
			p = x
		}
	}
	for _, x := range old.History {
		if x.Day == day {
			q = x
		}
	}
	return p, p.Band != "" && p != q
}

// billingFacts describes the account's latest failed, unpaid invoice, if any.
func billingFacts(a *account.Account) *BillingFacts {
	d := a.Billing.Dunning
	if d == nil {
		return nil
	}
	f := &BillingFacts{InvoiceID: d.ID, AmountDue: d.AmountDue, Currency: d.Currency, AttemptCount: d.AttemptCount,
		HostedInvoiceURL: d.HostedInvoiceURL, Email: d.Email}
	if !d.NextPaymentAttempt.IsZero() {
		t := d.NextPaymentAttempt
		f.NextPaymentAttempt = &t
	}
	if f.Email == "" {
		f.Email = a.Email
	}
	return f
}

// cancellation describes the scheduled cancellation, else the last one that happened.
func cancellation(a *account.Account) *Cancellation {
	s, ok := a.Billing.CancelScheduled()
	when := s.CancelAt
	if ok && when.IsZero() {
		when = s.CurrentPeriodEnd
	}
	if !ok {
		if s, ok = score.LastCanceled(&a.Billing); !ok {
			return nil
		}
		when = s.EndedAt
		if when.IsZero() {
			when = s.CanceledAt
		}
	}
	c := &Cancellation{Reason: s.CancelReason, Feedback: s.CancelFeedback, Comment: s.CancelComment}
	if !when.IsZero() {
		c.CancelAt = &when
	}
	return c
}

// riskKind says what kind of risk an episode is: a billing failure is involuntary whatever
// else is wrong, a scheduled cancellation is voluntary, otherwise the kind of the worst reason.
func riskKind(a *account.Account, ex score.Explanation) string {
	h := ex.Health
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
	for _, r := range ex.Reasons {
		if !strings.HasPrefix(r.Measure, "rule:") && r.Kind != "" {
			return r.Kind
		}
	}
	return score.KindEngagement
}

// contributions are the points each measure gives, from compact per-measure scores, by measure
// name; nil when h was scored with another version of the scorecard.
func contributions(h account.Health, sc *score.Scorecard) map[string]float64 {
	if h.ScorecardVersion != sc.Version || len(h.Measures) != len(sc.Measures) {
		return nil
	}
	var weights float64
	for i, m := range sc.Measures {
		if h.Measures[i] != account.NoData {
			weights += float64(m.Weight)
		}
	}
	out := map[string]float64{}
	for i, m := range sc.Measures {
		if h.Measures[i] != account.NoData && weights > 0 {
			out[m.Name] = round2(float64(m.Weight) * float64(h.Measures[i]) / weights)
		} else {
			out[m.Name] = 0
		}
	}
	return out
}

// dropKind is the kind of the measure that lost the most points.
func dropKind(old, h account.Health, sc *score.Scorecard) string {
	kind, worst := score.KindEngagement, 0.0
	prev, cur := contributions(old, sc), contributions(h, sc)
	for _, m := range sc.Measures {
		if d := cur[m.Name] - prev[m.Name]; d < worst {
			kind, worst = score.MeasureKind(m.Name), d
		}
	}
	return kind
}

// changes lists the measures whose contribution moved since the previous score, biggest move
// first. Against a score from another scorecard version there is nothing to compare.
func changes(old, h account.Health, sc *score.Scorecard) []Change {
	out := []Change{}
	prev, cur := contributions(old, sc), contributions(h, sc)
	if prev == nil && old.Scored() {
		return out
	}
	for _, m := range sc.Measures {
		p, c := prev[m.Name], cur[m.Name]
		if d := round2(c - p); d != 0 {
			out = append(out, Change{Measure: m.Name, Previous: p, Current: c, Delta: d})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return math.Abs(out[i].Delta) > math.Abs(out[j].Delta) })
	return out
}

func ref(a *account.Account, now time.Time) AccountRef {
	mrr, cur := a.Billing.MRRAt(now)
	r := AccountRef{ID: a.ID, Name: a.Name, StripeCustomerID: a.StripeCustomerID, StripeCustomerIDs: a.Customers(),
		Segment: a.Health.Segment, MRR: Money{Amount: mrr, Currency: cur}}
	if by := a.Billing.MRRByCurrency(now); len(by) > 0 {
		r.MRRByCurrency = by
	}
	return r
}

// IDPrefix starts every event id, so ours never look like Stripe's evt_… ids.
const IDPrefix = "csev_"

// eventID names the seq-th event of an account: unique per transition forever (the counter
// never goes back, merges included) and stable when the same stored state is rescored again.
func eventID(accountID string, seq int) string {
	s := sha256.Sum256([]byte(accountID + "\x00" + strconv.Itoa(seq)))
	return IDPrefix + hex.EncodeToString(s[:12])
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
