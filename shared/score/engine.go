package score

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
)

// MaxReasons is how many reasons a score keeps.
const MaxReasons = 3

// result is one measure's raw outcome: a score 0–100, or no data; and a plain-words detail.
type result struct {
	score  float64
	ok     bool
	detail string
}

func none(detail string) result           { return result{detail: detail} }
func got(s float64, detail string) result { return result{score: clamp(s), ok: true, detail: detail} }

// Explanation is a health score with the words that explain it: Health is what is stored,
// Measures and Reasons are rebuilt whenever they are read.
type Explanation struct {
	Health   account.Health
	Measures []account.Measure
	Reasons  []account.Reason
}

// Compute scores account a with scorecard sc as of now. The previous band (a.Health.Band)
// feeds the hysteresis; history is left to the caller. Pure and deterministic.
func Compute(a *account.Account, sc *Scorecard, now time.Time) Explanation {
	now = now.UTC()
	rs := evaluateAll(a, sc, now)
	h := account.Health{ScorecardVersion: sc.Version, UpdatedAt: now, Measures: make([]int8, len(rs))}
	var total, weights, all float64
	for i, spec := range sc.Measures {
		r := rs[i]
		h.Measures[i] = account.NoData
		if r.ok {
			h.Measures[i] = int8(math.Round(r.score))
		}
		if spec.Weight > 0 {
			all += float64(spec.Weight)
			if r.ok {
				total += float64(spec.Weight) * r.score
				weights += float64(spec.Weight)
			}
		}
	}
	h.RawScore = 50
	if weights > 0 {
		h.RawScore = int(math.Round(total / weights))
	}
	if all > 0 {
		h.Coverage = round2(weights / all)
	}
	mrr, _ := a.Billing.MRRAt(now)
	h.Segment = sc.SegmentFor(mrr)
	h.Score = h.RawScore
	h.Band = band(a.Health.Band, h.RawScore, sc.Bands)
	capAt := func(band, by string, limit int) {
		h.Band, h.CappedBy, h.Score = band, by, max(0, min(h.Score, limit))
	}
	if a.Churned() {
		capAt(account.BandBad, capChurned, sc.Bands.BadEnter-1)
	} else if c, _ := firstCondition(sc.BadWhen, a, sc, now); c != "" {
		capAt(account.BandBad, "rule:"+c, sc.Bands.BadEnter-1)
	} else if h.Band == account.BandGood {
		if c, _ := firstCondition(sc.NeverGood, a, sc, now); c != "" {
			capAt(account.BandNormal, "rule:"+c, sc.Bands.GoodEnter-1)
		} else if h.Coverage < sc.minCoverage() {
			capAt(account.BandNormal, capCoverage, sc.Bands.GoodEnter-1)
		}
	}
	return explain(a, sc, rs, h)
}

// Explain rebuilds the words of a's stored health (measure details, reasons) from its stored
// signals as of the time it was scored. Score, band and cap are the stored ones.
func Explain(a *account.Account, sc *Scorecard) Explanation {
	if !a.Health.Scored() {
		return Explanation{Health: a.Health, Measures: []account.Measure{}, Reasons: []account.Reason{}}
	}
	return explain(a, sc, evaluateAll(a, sc, a.Health.UpdatedAt.UTC()), a.Health)
}

// What can set the band over the raw score, besides "rule:<condition>".
const (
	capChurned  = "churned"
	capCoverage = "coverage"
)

func evaluateAll(a *account.Account, sc *Scorecard, now time.Time) []result {
	rs := make([]result, len(sc.Measures))
	for i, spec := range sc.Measures {
		rs[i] = evaluate(spec, a, sc, now)
	}
	return rs
}

// explain puts health h, computed from measure results rs, in words.
func explain(a *account.Account, sc *Scorecard, rs []result, h account.Health) Explanation {
	now := h.UpdatedAt
	ex := Explanation{Health: h, Measures: []account.Measure{}, Reasons: []account.Reason{}}
	var weights float64
	for i, spec := range sc.Measures {
		if rs[i].ok && spec.Weight > 0 {
			weights += float64(spec.Weight)
		}
	}
	churned := h.CappedBy == capChurned
	var reasons []account.Reason
	for i, spec := range sc.Measures {
		r := rs[i]
		m := account.Measure{Name: spec.Name, Kind: builtin[spec.Name].kind, Weight: spec.Weight, Detail: r.detail}
		if r.ok {
			s := int(math.Round(r.score))
			m.Score = &s
			if weights > 0 {
				m.Contribution = round2(float64(spec.Weight) * r.score / weights)
				// A churned account's billing measures only repeat that it churned.
				repeats := churned && (spec.Name == "billing_status" || spec.Name == "scheduled_cancellation")
				if loss := float64(spec.Weight) * (100 - r.score) / weights; loss >= 0.5 && !repeats {
					reasons = append(reasons, account.Reason{Measure: spec.Name, Kind: m.Kind, Detail: r.detail, Impact: -round2(loss)})
				}
			}
		}
		ex.Measures = append(ex.Measures, m)
	}
	sort.SliceStable(reasons, func(i, j int) bool { return reasons[i].Impact < reasons[j].Impact })
	if len(reasons) > MaxReasons {
		reasons = reasons[:MaxReasons]
	}
	if weights == 0 {
		reasons = []account.Reason{{Measure: "none", Kind: KindEngagement, Detail: "no billing or usage data yet; score is neutral"}}
	}
	var first []account.Reason
	capped := ""
	if h.Score < h.RawScore {
		capped = fmt.Sprintf(" (score capped at %d from %d)", h.Score, h.RawScore)
	}
	switch c := h.CappedBy; {
	case c == capChurned:
		first = append(first, account.Reason{Measure: "rule:churned", Kind: ChurnKind(&a.Billing), Detail: "subscription canceled: the account has churned" + capped})
	case c == capCoverage:
		first = append(first, account.Reason{Measure: "coverage", Kind: KindEngagement, Detail: fmt.Sprintf(
			"not enough data: measures with data carry %.0f%% of the scorecard's weight (minimum %.0f%%); band capped at NORMAL%s",
			h.Coverage*100, sc.minCoverage()*100, capped)})
	case strings.HasPrefix(c, "rule:"):
		cond := strings.TrimPrefix(c, "rule:")
		why, _ := condition(cond, a, sc, now)
		if why == "" {
			why = cond
		}
		if h.Band == account.BandBad {
			why += "; band set to BAD"
		} else {
			why += "; band capped at NORMAL"
		}
		first = append(first, account.Reason{Measure: c, Kind: conditionKind(cond), Detail: why + capped})
	}
	if r, ok := customerVoice(a); ok {
		first = append(first, r)
	}
	ex.Reasons = append(first, reasons...)
	return ex
}

// customerVoice is the reason a customer gave when cancelling (Stripe's cancellation_details
// feedback and comment), for an account that churned or is set to cancel.
func customerVoice(a *account.Account) (account.Reason, bool) {
	s, ok := a.Billing.CancelScheduled()
	if !ok && a.Churned() {
		s, ok = LastCanceled(&a.Billing)
	}
	if !ok || (s.CancelFeedback == "" && s.CancelComment == "") {
		return account.Reason{}, false
	}
	var parts []string
	if s.CancelFeedback != "" {
		parts = append(parts, "feedback "+strings.ReplaceAll(s.CancelFeedback, "_", " "))
	}
	if s.CancelComment != "" {
		parts = append(parts, "comment "+strconv.Quote(s.CancelComment))
	}
	return account.Reason{Measure: "cancellation_feedback", Kind: KindVoluntary, Detail: "the customer said when cancelling: " + strings.Join(parts, "; ")}, true
}

// LastCanceled returns the most recently canceled subscription (ties by id).
func LastCanceled(b *account.Billing) (account.Subscription, bool) {
	var last account.Subscription
	found := false
	for _, s := range b.Subscriptions {
		if s.Status == account.StatusCanceled && (!found || s.At > last.At || (s.At == last.At && s.ID > last.ID)) {
			last, found = s, true
		}
	}
	return last, found
}

// ChurnKind is the kind of a churn, from Stripe's cancellation_details.reason of the most
// recently canceled subscription: payment_failed and payment_disputed are involuntary; a
// customer's own cancellation (cancellation_requested) and anything else are voluntary.
func ChurnKind(b *account.Billing) string {
	if s, ok := LastCanceled(b); ok && (s.CancelReason == "payment_failed" || s.CancelReason == "payment_disputed") {
		return KindInvoluntary
	}
	return KindVoluntary
}

// band applies the thresholds with hysteresis around the previous band.
func band(prev string, s int, b Bands) string {
	switch {
	case prev == account.BandGood && s >= b.GoodExit:
		return account.BandGood
	case prev == account.BandBad && s < b.BadExit:
		return account.BandBad
	case s >= b.GoodEnter:
		return account.BandGood
	case s < b.BadEnter:
		return account.BandBad
	}
	return account.BandNormal
}

// firstCondition returns the first of the hard-rule conditions that holds, with a plain-words
// reason.
func firstCondition(conds []string, a *account.Account, sc *Scorecard, now time.Time) (string, string) {
	for _, c := range conds {
		if why, ok := condition(c, a, sc, now); ok {
			return c, why
		}
	}
	return "", ""
}

// condition reports whether hard-rule condition c holds, with a plain-words reason.
func condition(c string, a *account.Account, sc *Scorecard, now time.Time) (string, bool) {
	status := a.Billing.Status()
	switch c {
	case "past_due", "unpaid", "incomplete":
		if status == c {
			return "subscription is " + status, true
		}
	case "cancelling":
		if s, ok := a.Billing.CancelScheduled(); ok {
			return "subscription " + s.ID + " is set to cancel", true
		}
	case "payment_action_required":
		if len(a.Billing.ActionRequired) > 0 {
			return "a payment waits for customer authentication", true
		}
	case "uncollectible":
		if len(a.Billing.Uncollectible) > 0 {
			return "an invoice was marked uncollectible", true
		}
	case "inactive":
		last := a.Usage.LastSeenAt
		if sc.InactiveDays > 0 && !last.IsZero() && now.Sub(last) >= time.Duration(sc.InactiveDays)*24*time.Hour {
			return fmt.Sprintf("no product activity for %d days (threshold %d)", int(now.Sub(last).Hours()/24), sc.InactiveDays), true
		}
	case "open_payment_failure":
		if _, open := a.Billing.FailuresSince(now.AddDate(0, 0, -30)); open > 0 {
			return "a failed payment is not yet recovered", true
		}
	}
	return "", false
}

func conditionKind(c string) string {
	if c == "cancelling" {
		return KindVoluntary
	}
	if c == "incomplete" || c == "inactive" {
		return KindEngagement
	}
	return KindInvoluntary
}

// evaluate computes one measure.
func evaluate(spec Spec, a *account.Account, sc *Scorecard, now time.Time) result {
	good, bad := spec.scale()
	u, b := &a.Usage, &a.Billing
	today := account.Day(now)
	switch spec.Name {
	case "login_recency":
		if u.LastSeenAt.IsZero() {
			return none("no product activity seen yet")
		}
		days := now.Sub(u.LastSeenAt).Hours() / 24
		if days < 0 {
			days = 0
		}
		return got(linear(days, good, bad), "last active "+ago(days))
	case "active_users":
		if u.LastSeenAt.IsZero() {
			return none("no product activity seen yet")
		}
		seats := b.Seats()
		if seats == 0 {
			seats = u.SeatsPurchased
		}
		active := u.Users.ActiveSince(today, 30)
		if seats == 0 {
			return none(fmt.Sprintf("%d users active in 30 days; seats purchased unknown", active))
		}
		ratio := float64(active) / float64(seats)
		return got(linear(ratio, good, bad), fmt.Sprintf("%d of %d purchased seats active in 30 days", active, seats))
	case "feature_adoption":
		return coverage(sc.Events.KeyFeatures, u, sc, now, "key features used in 30 days", "unused", good, bad, func(n string) bool {
			f, ok := u.Features[n]
			return ok && !f.Last.Before(now.AddDate(0, 0, -30))
		})
	case "onboarding":
		return coverage(sc.Events.Onboarding, u, sc, now, "onboarding milestones reached", "missing", good, bad, func(n string) bool {
			_, ok := u.Milestones[n]
			return ok
		})
	case "usage_trend":
		cur := u.EventsBetween(today-29, today+1)
		prior := u.EventsBetween(today-59, today-29)
		if prior == 0 {
			return none("no activity in the prior 30 days to compare with")
		}
		ratio := float64(cur) / float64(prior)
		change := (ratio - 1) * 100
		dir := "up"
		if change < 0 {
			dir, change = "down", -change
		}
		return got(linear(ratio, good, bad), fmt.Sprintf("events %s %.0f%% vs the prior 30 days (%d vs %d)", dir, change, cur, prior))
	case "billing_status":
		return billingStatus(a, now)
	case "failed_payments":
		if !billed(b) {
			return none(nothingBilled(b))
		}
		all, open := b.FailuresSince(now.AddDate(0, 0, -30))
		final := false
		for _, f := range b.Failures {
			if !f.Recovered && f.Final && !f.At.Before(now.AddDate(0, 0, -30)) {
				final = true
			}
		}
		switch {
		case all == 0:
			return got(100, "no failed payments in 30 days")
		case open == 0:
			return got(80, fmt.Sprintf("%d failed payment(s) in 30 days, all recovered", all))
		case final:
			return got(0, fmt.Sprintf("%d failed payment(s) in 30 days, %d unpaid; Stripe has no retries left", all, open))
		}
		return got(linear(float64(open), good, bad)*0.6, fmt.Sprintf("%d failed payment(s) in 30 days, %d unpaid; Stripe will retry", all, open))
	case "scheduled_cancellation":
		if a.Churned() {
			return got(0, "subscription canceled")
		}
		if !b.HasSubscription() {
			return none("no subscription")
		}
		if s, ok := b.CancelScheduled(); ok {
			when := s.CancelAt
			if when.IsZero() {
				when = s.CurrentPeriodEnd
			}
			d := "subscription " + s.ID + " is set to cancel"
			if !when.IsZero() {
				d += " on " + when.Format("2006-01-02")
			}
			return got(0, d)
		}
		if !billed(b) {
			// A trial that has not converted has not chosen to stay yet: no evidence either way.
			return none("no cancellation scheduled; nothing billed yet (trial)")
		}
		return got(100, "no cancellation scheduled")
	case "mrr_contraction":
		if len(b.MRRHistory) == 0 {
			return none("no MRR recorded")
		}
		cur, currency := b.MRRAt(now)
		peak := b.PeakMRRSince(now.AddDate(0, 0, -90), currency)
		if peak <= 0 || cur >= peak {
			return got(100, "no MRR contraction in 90 days")
		}
		drop := float64(peak-cur) / float64(peak)
		return got(linear(drop, good, bad), fmt.Sprintf("MRR down %.0f%% in 90 days (%s to %s)", drop*100,
			account.FormatAmount(peak, currency), account.FormatMoney(cur, currency)))
	case "disputes":
		if !billed(b) && len(b.Disputes) == 0 && len(b.Refunds) == 0 {
			return none(nothingBilled(b))
		}
		since := now.AddDate(0, 0, -90)
		disputes, refunds := account.CountSince(b.Disputes, since), account.CountSince(b.Refunds, since)
		if disputes > 0 {
			return got(0, fmt.Sprintf("%d charge dispute(s) in 90 days", disputes))
		}
		if refunds > 0 {
			return got(linear(float64(refunds), good, bad), fmt.Sprintf("%d refund(s) in 90 days", refunds))
		}
		return got(100, "no refunds or disputes in 90 days")
	case "support_load":
		if !a.Voice.TicketsSeen {
			return none("no support tickets tracked")
		}
		n := a.Voice.TicketsSince(now.AddDate(0, 0, -30))
		return got(linear(float64(n), good, bad), fmt.Sprintf("%d ticket(s) opened in 30 days, %d open", n, len(a.Voice.OpenTickets)))
	case "nps":
		var last *account.NPSResponse
		for i := range a.Voice.NPS {
			if !a.Voice.NPS[i].At.Before(now.AddDate(0, 0, -180)) && !a.Voice.NPS[i].At.After(now) {
				last = &a.Voice.NPS[i]
			}
		}
		if last == nil {
			return none("no NPS response in 180 days")
		}
		label := "detractor"
		if last.Score >= 9 {
			label = "promoter"
		} else if last.Score >= 7 {
			label = "passive"
		}
		return got(linear(float64(last.Score), good, bad), fmt.Sprintf("latest NPS %d (%s) on %s", last.Score, label, last.At.Format("2006-01-02")))
	}
	return none("unknown measure")
}

// billed reports whether the account was ever asked to pay: a paid or failed invoice, or a
// subscription past its trial. Before that, "no failed payments" says nothing.
func billed(b *account.Billing) bool {
	if !b.LastPaidAt.IsZero() || len(b.FailureDays) > 0 || len(b.Failures) > 0 {
		return true
	}
	for _, s := range b.Subscriptions {
		switch s.Status {
		case account.StatusTrialing, account.StatusIncomplete, account.StatusIncompleteExpired:
		default:
			return true
		}
	}
	return false
}

func nothingBilled(b *account.Billing) string {
	if b.HasSubscription() {
		return "nothing billed yet (trial)"
	}
	return "no subscription"
}

// coverage scores the share of names that has() holds for, naming the ones it does not. An
// account without product activity, or too new to judge, has no data.
func coverage(names []string, u *account.Usage, sc *Scorecard, now time.Time, what, lacking string, good, bad float64, has func(string) bool) result {
	if len(names) == 0 || u.LastSeenAt.IsZero() {
		return none("no product activity seen yet")
	}
	if r, young := tooNew(u, sc, now); young {
		return r
	}
	var missing []string
	for _, n := range names {
		if !has(n) {
			missing = append(missing, n)
		}
	}
	done := len(names) - len(missing)
	d := fmt.Sprintf("%d of %d %s", done, len(names), what)
	if len(missing) > 0 {
		d += " (" + lacking + ": " + strings.Join(missing, ", ") + ")"
	}
	return got(linear(float64(done)/float64(len(names)), good, bad), d)
}

// tooNew says an account whose product use began less than NewAccountDays ago is not judged
// on adoption yet.
func tooNew(u *account.Usage, sc *Scorecard, now time.Time) (result, bool) {
	age := now.Sub(u.FirstSeenAt)
	if sc.NewAccountDays > 0 && age < time.Duration(sc.NewAccountDays)*24*time.Hour {
		return none(fmt.Sprintf("account is %d days old; judged after %d days", int(age.Hours()/24), sc.NewAccountDays)), true
	}
	return result{}, false
}

// statusScore maps a billing status to points.
var statusScore = map[string]float64{
	account.StatusActive: 100, account.StatusTrialing: 80, account.StatusIncomplete: 50, account.StatusPaused: 30,
	account.StatusPastDue: 15, account.StatusUnpaid: 0, account.StatusCanceled: 0, account.StatusIncompleteExpired: 0,
}

func billingStatus(a *account.Account, now time.Time) result {
	b := &a.Billing
	status := b.Status()
	if status == "" {
		return none("no subscription")
	}
	s := statusScore[status]
	d := "subscription " + status
	if status == account.StatusTrialing {
		for _, sub := range b.Subscriptions {
			if sub.Status == account.StatusTrialing && !sub.TrialEnd.IsZero() {
				d += ", trial ends " + sub.TrialEnd.Format("2006-01-02")
				if sub.TrialEnding || sub.TrialEnd.Sub(now) < 4*24*time.Hour {
					s = 60
				}
				break
			}
		}
	}
	if len(b.Uncollectible) > 0 {
		s, d = 0, d+"; an invoice was marked uncollectible"
	} else if len(b.ActionRequired) > 0 && s > 40 {
		s, d = 40, d+"; a payment waits for customer authentication"
	}
	return got(s, d)
}

// linear maps x onto 0–100: 100 at good, 0 at bad, straight in between, either direction.
func linear(x, good, bad float64) float64 {
	if good == bad {
		if x == good {
			return 100
		}
		return 0
	}
	return clamp((x - bad) / (good - bad) * 100)
}

func clamp(s float64) float64 { return math.Max(0, math.Min(100, s)) }

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func ago(days float64) string {
	switch d := int(days); {
	case d == 0:
		return "today"
	case d == 1:
		return "1 day ago"
	default:
		return fmt.Sprintf("%d days ago", d)
	}
}
