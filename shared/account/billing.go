package account

import (
	"math"
	"sort"
	"time"
)

// Subscription statuses as Stripe names them.
const (
	StatusActive            = "active"
	StatusTrialing          = "trialing"
	StatusPastDue           = "past_due"
	StatusUnpaid            = "unpaid"
	StatusPaused            = "paused"
	StatusIncomplete        = "incomplete"
	StatusIncompleteExpired = "incomplete_expired"
	StatusCanceled          = "canceled"
)

// Final reports whether a subscription status can never change again. A late or redelivered
// snapshot never moves a subscription out of a final status.
func Final(status string) bool {
	return status == StatusCanceled || status == StatusIncompleteExpired
}

// Billing is the account's billing state, assembled from Stripe snapshots and counters.
type Billing struct {
	// Subscriptions by Stripe subscription id. A customer rarely has more than a few; ended
	// ones are kept (capped) so a late redelivery cannot resurrect them.
	Subscriptions map[string]Subscription `json:"subscriptions,omitempty"`
	// CustomerAt is the Stripe event time (unix seconds) of the customer snapshot applied last.
	CustomerAt      int64 `json:"customer_at,omitempty"`
	CustomerDeleted bool  `json:"customer_deleted,omitempty"`
	// Failures are recent failed invoice payments, oldest first, capped; FailureDays counts
	// every failure per day, exactly, over the usage window.
	Failures    []PaymentFailure `json:"failures,omitempty"`
	FailureDays []DayCount       `json:"failure_days,omitempty"`
	// Paid lists recently paid invoices, so a failure delivered after its invoice's payment
	// is recorded as already recovered.
	Paid []PaidInvoice `json:"paid,omitempty"`
	// LastPaidAt is when an invoice was last paid.
	LastPaidAt time.Time `json:"last_paid_at,omitzero"`
	// ActionRequired lists invoices waiting for customer authentication (3-D Secure).
	ActionRequired []string `json:"action_required,omitempty"`
	// Uncollectible lists invoices marked uncollectible, capped.
	Uncollectible []string `json:"uncollectible,omitempty"`
	// Refunds and Disputes are times of recent refunds and charge disputes, capped.
	Refunds  []time.Time `json:"refunds,omitempty"`
	Disputes []time.Time `json:"disputes,omitempty"`
	// MRRHistory records the account MRR each time it changed, oldest first, capped.
	MRRHistory []MRRPoint `json:"mrr_history,omitempty"`
}

// Subscription is the latest applied snapshot of one Stripe subscription.
type Subscription struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Currency string `json:"currency,omitempty"`
	// MRR is the normalized monthly amount in minor units, after discounts.
	MRR int64 `json:"mrr"`
	// MRRNote says why MRR is not exact (metered or tiered items), empty when it is.
	MRRNote           string    `json:"mrr_note,omitempty"`
	Seats             int64     `json:"seats,omitempty"`
	Items             []Item    `json:"items,omitempty"`
	CancelAtPeriodEnd bool      `json:"cancel_at_period_end,omitempty"`
	CancelAt          time.Time `json:"cancel_at,omitzero"`
	CanceledAt        time.Time `json:"canceled_at,omitzero"`
	CancelReason      string    `json:"cancel_reason,omitempty"`
	TrialEnd          time.Time `json:"trial_end,omitzero"`
	CurrentPeriodEnd  time.Time `json:"current_period_end,omitzero"`
	EndedAt           time.Time `json:"ended_at,omitzero"`
	// TrialEnding is set by customer.subscription.trial_will_end.
	TrialEnding bool `json:"trial_ending,omitempty"`
	// At is the Stripe event time (unix seconds) of the snapshot; older ones are not applied.
	At int64 `json:"at"`
}

// Item is one subscription item with its contribution to MRR.
type Item struct {
	Price         string `json:"price,omitempty"`
	Quantity      int64  `json:"quantity"`
	UnitAmount    int64  `json:"unit_amount"`
	Interval      string `json:"interval,omitempty"`
	IntervalCount int64  `json:"interval_count,omitempty"`
	MRR           int64  `json:"mrr"`
}

// PaymentFailure is one failed attempt to pay an invoice.
type PaymentFailure struct {
	Invoice string    `json:"invoice"`
	At      time.Time `json:"at"`
	// Final is true when Stripe will not retry (no next_payment_attempt).
	Final bool `json:"final,omitempty"`
	// Recovered is set when the invoice was paid later.
	Recovered bool `json:"recovered,omitempty"`
}

// PaidInvoice is an invoice and when it was paid.
type PaidInvoice struct {
	Invoice string    `json:"invoice"`
	At      time.Time `json:"at"`
}

// MRRPoint is the account MRR from At on.
type MRRPoint struct {
	At     time.Time `json:"at"`
	Amount int64     `json:"amount"`
}

// Caps on billing lists.
const (
	MaxSubscriptions = 20
	MaxFailures      = 20
	MaxInvoiceIDs    = 20
	MaxMRRHistory    = 24
)

// ApplySubscription stores a subscription snapshot unless a newer one (by event time) is already
// stored, or the stored one is final. A snapshot from the same second is applied. It reports
// whether the snapshot was applied.
func (b *Billing) ApplySubscription(s Subscription) bool {
	if old, ok := b.Subscriptions[s.ID]; ok {
		if s.At < old.At || (Final(old.Status) && !Final(s.Status)) {
			return false
		}
		if old.TrialEnding && s.Status == StatusTrialing {
			s.TrialEnding = true
		}
	}
	if b.Subscriptions == nil {
		b.Subscriptions = map[string]Subscription{}
	}
	b.Subscriptions[s.ID] = s
	b.pruneSubscriptions()
	b.recordMRR(time.Unix(s.At, 0))
	return true
}

// MarkTrialEnding flags a trialing subscription whose trial ends soon.
func (b *Billing) MarkTrialEnding(id string) {
	if s, ok := b.Subscriptions[id]; ok {
		s.TrialEnding = true
		b.Subscriptions[id] = s
	}
}

// pruneSubscriptions drops the oldest ended subscriptions beyond the cap.
func (b *Billing) pruneSubscriptions() {
	for len(b.Subscriptions) > MaxSubscriptions {
		oldest := ""
		for id, s := range b.Subscriptions {
			if Final(s.Status) && (oldest == "" || s.At < b.Subscriptions[oldest].At) {
				oldest = id
			}
		}
		if oldest == "" {
			return
		}
		delete(b.Subscriptions, oldest)
	}
}

// live returns the subscriptions that have not ended, in id order.
func (b *Billing) live() []Subscription {
	var out []Subscription
	for _, s := range b.Subscriptions {
		if !Final(s.Status) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// statusRank orders live statuses from healthiest to most at risk.
var statusRank = map[string]int{
	StatusActive: 1, StatusTrialing: 2, StatusIncomplete: 3, StatusPaused: 4, StatusPastDue: 5, StatusUnpaid: 6,
}

// Status is the account's billing status: the most at-risk status among live subscriptions,
// "canceled" when every subscription ended and one was canceled, or "" with no subscription.
func (b *Billing) Status() string {
	worst := ""
	for _, s := range b.live() {
		if statusRank[s.Status] > statusRank[worst] {
			worst = s.Status
		}
	}
	if worst != "" {
		return worst
	}
	for _, s := range b.Subscriptions {
		if s.Status == StatusCanceled {
			return StatusCanceled
		}
	}
	if len(b.Subscriptions) > 0 {
		return StatusIncompleteExpired
	}
	return ""
}

// HasSubscription reports whether any subscription was ever seen.
func (b *Billing) HasSubscription() bool { return len(b.Subscriptions) > 0 }

// Churned reports whether every subscription ended and at least one was canceled.
func (b *Billing) Churned() bool { return b.Status() == StatusCanceled }

// countsTowardMRR says which statuses contribute MRR: paying ones, including those in dunning.
func countsTowardMRR(status string) bool {
	return status == StatusActive || status == StatusPastDue || status == StatusUnpaid
}

// MRR returns the account MRR in minor units and its currency, summed over paying subscriptions.
func (b *Billing) MRR() (int64, string) {
	var sum int64
	cur := ""
	for _, s := range b.live() {
		if countsTowardMRR(s.Status) {
			sum += s.MRR
			if cur == "" {
				cur = s.Currency
			}
		}
	}
	if cur == "" {
		for _, s := range b.live() {
			cur = s.Currency
			break
		}
	}
	return sum, cur
}

// CancelScheduled returns the live subscription set to cancel, if any.
func (b *Billing) CancelScheduled() (Subscription, bool) {
	for _, s := range b.live() {
		if s.CancelAtPeriodEnd || !s.CancelAt.IsZero() {
			return s, true
		}
	}
	return Subscription{}, false
}

// Seats returns the seats bought across live subscriptions (sum of licensed quantities).
func (b *Billing) Seats() int64 {
	var n int64
	for _, s := range b.live() {
		n += s.Seats
	}
	return n
}

// recordMRR appends a history point when the account MRR changed.
func (b *Billing) recordMRR(at time.Time) {
	mrr, _ := b.MRR()
	if n := len(b.MRRHistory); n > 0 && b.MRRHistory[n-1].Amount == mrr {
		return
	}
	if len(b.MRRHistory) == 0 && mrr == 0 {
		return
	}
	b.MRRHistory = insertSorted(b.MRRHistory, MRRPoint{At: at.UTC(), Amount: mrr}, func(p MRRPoint) time.Time { return p.At }, MaxMRRHistory)
}

// PeakMRRSince returns the highest MRR in force at any time from since until now.
func (b *Billing) PeakMRRSince(since time.Time) int64 {
	var peak int64
	for i, p := range b.MRRHistory {
		if i+1 < len(b.MRRHistory) && !b.MRRHistory[i+1].At.After(since) {
			continue // superseded before the window opened
		}
		if p.Amount > peak {
			peak = p.Amount
		}
	}
	return peak
}

// PaymentFailed records a failed payment of invoice at t; final means Stripe will not retry.
func (b *Billing) PaymentFailed(invoice string, at time.Time, final bool) {
	f := PaymentFailure{Invoice: invoice, At: at.UTC(), Final: final}
	for _, p := range b.Paid {
		if p.Invoice == invoice && !p.At.Before(f.At) {
			f.Recovered = true
		}
	}
	b.Failures = insertSorted(b.Failures, f, func(f PaymentFailure) time.Time { return f.At }, MaxFailures)
	b.FailureDays = countDay(b.FailureDays, Day(f.At), 1)
}

// InvoicePaid marks every failure of the invoice recovered and clears its pending actions.
func (b *Billing) InvoicePaid(invoice string, at time.Time) {
	for i := range b.Failures {
		if b.Failures[i].Invoice == invoice {
			b.Failures[i].Recovered = true
		}
	}
	b.ActionRequired = remove(b.ActionRequired, invoice)
	b.Uncollectible = remove(b.Uncollectible, invoice)
	b.Paid = append(b.Paid, PaidInvoice{Invoice: invoice, At: at.UTC()})
	if len(b.Paid) > MaxInvoiceIDs {
		b.Paid = b.Paid[len(b.Paid)-MaxInvoiceIDs:]
	}
	if at.After(b.LastPaidAt) {
		b.LastPaidAt = at.UTC()
	}
}

// PaymentActionRequired records an invoice waiting for the customer to authenticate.
func (b *Billing) PaymentActionRequired(invoice string) {
	b.ActionRequired = addCapped(b.ActionRequired, invoice, MaxInvoiceIDs)
}

// MarkUncollectible records an invoice Stripe gave up on.
func (b *Billing) MarkUncollectible(invoice string) {
	b.Uncollectible = addCapped(b.Uncollectible, invoice, MaxInvoiceIDs)
}

// AddRefund records a refund at t.
func (b *Billing) AddRefund(t time.Time) { b.Refunds = insertTime(b.Refunds, t, MaxFailures) }

// AddDispute records a charge dispute at t.
func (b *Billing) AddDispute(t time.Time) { b.Disputes = insertTime(b.Disputes, t, MaxFailures) }

// FailuresSince returns how many payments failed from t's day on (exact), and how many
// failures at or after t are not recovered (among the most recent MaxFailures).
func (b *Billing) FailuresSince(t time.Time) (all, open int) {
	all = sumDays(b.FailureDays, Day(t), math.MaxInt32)
	for _, f := range b.Failures {
		if !f.At.Before(t) && !f.Recovered {
			open++
		}
	}
	return all, open
}

func (b Billing) clone() Billing {
	b.Subscriptions = cloneMap(b.Subscriptions)
	for id, s := range b.Subscriptions {
		s.Items = append([]Item(nil), s.Items...)
		b.Subscriptions[id] = s
	}
	b.Failures = append([]PaymentFailure(nil), b.Failures...)
	b.FailureDays = append([]DayCount(nil), b.FailureDays...)
	b.Paid = append([]PaidInvoice(nil), b.Paid...)
	b.ActionRequired = append([]string(nil), b.ActionRequired...)
	b.Uncollectible = append([]string(nil), b.Uncollectible...)
	b.Refunds = append([]time.Time(nil), b.Refunds...)
	b.Disputes = append([]time.Time(nil), b.Disputes...)
	b.MRRHistory = append([]MRRPoint(nil), b.MRRHistory...)
	return b
}

// merge folds src's billing into b: subscriptions by the usual snapshot rules, lists joined.
func (b *Billing) merge(src *Billing) {
	ids := make([]string, 0, len(src.Subscriptions))
	for id := range src.Subscriptions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b.ApplySubscription(src.Subscriptions[id])
	}
	if src.CustomerAt > b.CustomerAt {
		b.CustomerAt, b.CustomerDeleted = src.CustomerAt, src.CustomerDeleted
	}
	b.Paid = append(b.Paid, src.Paid...)
	if len(b.Paid) > MaxInvoiceIDs {
		b.Paid = b.Paid[len(b.Paid)-MaxInvoiceIDs:]
	}
	for _, f := range src.Failures {
		b.Failures = insertSorted(b.Failures, f, func(f PaymentFailure) time.Time { return f.At }, MaxFailures)
	}
	for _, d := range src.FailureDays {
		b.FailureDays = countDay(b.FailureDays, d.Day, d.Events)
	}
	for _, p := range b.Paid { // payments on either side recover failures on either side
		for i := range b.Failures {
			if b.Failures[i].Invoice == p.Invoice && !p.At.Before(b.Failures[i].At) {
				b.Failures[i].Recovered = true
			}
		}
	}
	if src.LastPaidAt.After(b.LastPaidAt) {
		b.LastPaidAt = src.LastPaidAt
	}
	for _, id := range src.ActionRequired {
		b.PaymentActionRequired(id)
	}
	for _, id := range src.Uncollectible {
		b.MarkUncollectible(id)
	}
	for _, t := range src.Refunds {
		b.AddRefund(t)
	}
	for _, t := range src.Disputes {
		b.AddDispute(t)
	}
}

func addCapped(xs []string, x string, max int) []string {
	if contains(xs, x) {
		return xs
	}
	xs = append(xs, x)
	if len(xs) > max {
		xs = xs[len(xs)-max:]
	}
	return xs
}

func remove(xs []string, x string) []string {
	out := xs[:0:0]
	for _, y := range xs {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}
