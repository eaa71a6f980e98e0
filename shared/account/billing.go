package account

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"
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
	FailureDays DayCounts        `json:"failure_days,omitempty"`
	// Paid lists recently paid invoices, so a failure delivered after its invoice's payment
	// is recorded as already recovered.
	Paid []PaidInvoice `json:"paid,omitempty"`
	// LastPaidAt is when an invoice was last paid.
	LastPaidAt time.Time `json:"last_paid_at,omitzero"`
	// ActionRequired lists invoices waiting for customer authentication (3-D Secure).
	ActionRequired []Ref `json:"action_required,omitempty"`
	// Uncollectible lists invoices marked uncollectible, capped.
	Uncollectible []Ref `json:"uncollectible,omitempty"`
	// Refunds and Disputes are times of recent refunds and charge disputes, capped.
	Refunds  []Stamp `json:"refunds,omitempty"`
	Disputes []Stamp `json:"disputes,omitempty"`
	// RecoveredDays counts, per day of the failure, the failures later recovered, exactly;
	// with FailureDays it makes the number of unpaid failures exact whatever the list's cap.
	RecoveredDays DayCounts `json:"recovered_days,omitempty"`
	// Dunning is the latest failed invoice not yet paid: what a dunning playbook acts on.
	Dunning *Invoice `json:"dunning,omitempty"`
	// MRRHistory records the account MRR each time it changed, oldest first, capped.
	MRRHistory []MRRPoint `json:"mrr_history,omitempty"`
}

// Invoice is what a dunning playbook needs of a failed invoice.
type Invoice struct {
	ID string `json:"id"`
	// Customer is the Stripe customer the invoice belongs to (see Billing.Tag).
	Customer  string `json:"customer,omitempty"`
	AmountDue int64  `json:"amount_due"`
	Currency  string `json:"currency,omitempty"`
	// AttemptCount is how many times Stripe tried to collect it.
	AttemptCount int64 `json:"attempt_count,omitempty"`
	// NextPaymentAttempt is when Stripe retries; zero when it will not.
	NextPaymentAttempt time.Time `json:"next_payment_attempt,omitzero"`
	HostedInvoiceURL   string    `json:"hosted_invoice_url,omitempty"`
	// Email is the customer's email as the invoice carries it.
	Email string `json:"email,omitempty"`
	// At is when it failed.
	At time.Time `json:"at"`
}

// Subscription is the latest applied snapshot of one Stripe subscription.
type Subscription struct {
	ID string `json:"id"`
	// Customer is the Stripe customer the subscription belongs to (see Billing.Tag).
	Customer string `json:"customer,omitempty"`
	Status   string `json:"status"`
	Currency string `json:"currency,omitempty"`
	// MRR is the normalized monthly amount in minor units, before any discount; MRRAt applies
	// the discount while it is in force.
	MRR int64 `json:"mrr"`
	// Discount is the subscription's discount, if any, with the MRR while it is in force.
	Discount *Discount `json:"discount,omitempty"`
	// MRRNote says why MRR is not exact (metered or tiered items), empty when it is.
	MRRNote           string    `json:"mrr_note,omitempty"`
	Seats             int64     `json:"seats,omitempty"`
	Items             []Item    `json:"items,omitempty"`
	CancelAtPeriodEnd bool      `json:"cancel_at_period_end,omitempty"`
	CancelAt          time.Time `json:"cancel_at,omitzero"`
	CanceledAt        time.Time `json:"canceled_at,omitzero"`
	CancelReason      string    `json:"cancel_reason,omitempty"`
	// CancelFeedback and CancelComment are the customer's own words from Stripe's
	// cancellation_details (feedback is one of Stripe's enum values, comment is free text).
	CancelFeedback   string    `json:"cancel_feedback,omitempty"`
	CancelComment    string    `json:"cancel_comment,omitempty"`
	TrialEnd         time.Time `json:"trial_end,omitzero"`
	CurrentPeriodEnd time.Time `json:"current_period_end,omitzero"`
	EndedAt          time.Time `json:"ended_at,omitzero"`
	// TrialEnding is set by customer.subscription.trial_will_end.
	TrialEnding bool `json:"trial_ending,omitempty"`
	// At is the Stripe event time (unix seconds) of the snapshot; older ones are not applied.
	At int64 `json:"at"`
}

// Discount is a coupon applied to a subscription, with the subscription's MRR while it is in
// force (from Start, until End; zero times are open-ended).
type Discount struct {
	Coupon     string  `json:"coupon,omitempty"`
	PercentOff float64 `json:"percent_off,omitempty"`
	// AmountOff is in minor units of the subscription currency, per billing interval.
	AmountOff int64     `json:"amount_off,omitempty"`
	Start     time.Time `json:"start,omitzero"`
	End       time.Time `json:"end,omitzero"`
	// MRR is the subscription's MRR while the discount is in force.
	MRR int64 `json:"mrr"`
}

// InForce reports whether the discount applies at t.
func (d *Discount) InForce(t time.Time) bool {
	return d != nil && (d.Start.IsZero() || !t.Before(d.Start)) && (d.End.IsZero() || t.Before(d.End))
}

// MRRAt is the subscription's MRR at t: discounted while its discount is in force, so a
// discount that ended stops reducing MRR when it ends, not at the next Stripe event.
func (s Subscription) MRRAt(t time.Time) int64 {
	if s.Discount.InForce(t) {
		return s.Discount.MRR
	}
	return s.MRR
}

// Item is one subscription item with its contribution to MRR. Items are shown, never summed
// again (the subscription's MRR and seats are computed from every item when the snapshot is
// mapped), so an account keeps only a bounded number of them: see MaxItems.
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
	// Customer is the Stripe customer the invoice belongs to (see Billing.Tag).
	Customer string `json:"customer,omitempty"`
	// Final is true when Stripe will not retry (no next_payment_attempt).
	Final bool `json:"final,omitempty"`
	// Recovered is set when the invoice was paid later.
	Recovered bool `json:"recovered,omitempty"`
}

// PaidInvoice is an invoice and when it was paid.
type PaidInvoice struct {
	Invoice  string    `json:"invoice"`
	At       time.Time `json:"at"`
	Customer string    `json:"customer,omitempty"`
}

// MRRPoint is the account's headline MRR from At on.
type MRRPoint struct {
	At       time.Time `json:"at"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency,omitempty"`
}

// Caps on billing lists.
const (
	// MaxSubscriptions caps the subscriptions kept: beyond it the oldest snapshots go, ended
	// subscriptions first, then live ones (a customer with more live subscriptions than this
	// keeps the most recently updated).
	MaxSubscriptions = 20
	MaxFailures      = 20
	MaxInvoiceIDs    = 20
	MaxMRRHistory    = 24
)

// Caps on stored subscription items. MaxItems caps the items kept per subscription (its
// largest by MRR, in Stripe's order); MaxAccountItems caps them across the account: live
// subscriptions with the newest snapshots keep theirs first, ended ones keep none.
const (
	MaxItems        = 10
	MaxAccountItems = 40
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
	s.Items = TopItems(s.Items, MaxItems)
	b.Subscriptions[s.ID] = s
	b.pruneSubscriptions()
	b.recordMRR(time.Unix(s.At, 0).UTC())
	return true
}

// MarkTrialEnding flags a trialing subscription whose trial ends soon.
func (b *Billing) MarkTrialEnding(id string) {
	if s, ok := b.Subscriptions[id]; ok {
		s.TrialEnding = true
		b.Subscriptions[id] = s
	}
}

// pruneSubscriptions drops subscriptions beyond MaxSubscriptions (the oldest snapshot first,
// ended subscriptions before live ones) and items beyond MaxAccountItems, so the account
// stays bounded however many subscriptions a customer has.
func (b *Billing) pruneSubscriptions() {
	subs := make([]Subscription, 0, len(b.Subscriptions))
	for _, s := range b.Subscriptions {
		subs = append(subs, s)
	}
	// Most worth keeping first: live before ended, newest snapshot first, then by id.
	sort.Slice(subs, func(i, j int) bool {
		if fi, fj := Final(subs[i].Status), Final(subs[j].Status); fi != fj {
			return !fi
		}
		if subs[i].At != subs[j].At {
			return subs[i].At > subs[j].At
		}
		return subs[i].ID < subs[j].ID
	})
	budget := MaxAccountItems
	for i, s := range subs {
		if i >= MaxSubscriptions {
			delete(b.Subscriptions, s.ID)
			continue
		}
		keep := 0
		if !Final(s.Status) {
			keep = min(len(s.Items), budget)
		}
		if keep < len(s.Items) {
			s.Items = TopItems(s.Items, keep)
			b.Subscriptions[s.ID] = s
		}
		budget -= keep
	}
}

// TopItems returns at most n of items, the largest by MRR (ties: the earlier), in their
// original order.
func TopItems(items []Item, n int) []Item {
	if len(items) <= n {
		return items
	}
	if n <= 0 {
		return nil
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return items[idx[a]].MRR > items[idx[b]].MRR })
	idx = idx[:n]
	sort.Ints(idx)
	out := make([]Item, 0, n)
	for _, i := range idx {
		out = append(out, items[i])
	}
	return out
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

// MRRByCurrency returns the MRR at t in minor units per currency, over paying subscriptions.
// Amounts in different currencies are never added together.
func (b *Billing) MRRByCurrency(t time.Time) map[string]int64 {
	out := map[string]int64{}
	for _, s := range b.live() {
		if countsTowardMRR(s.Status) {
			out[s.Currency] += s.MRRAt(t)
		}
	}
	return out
}

// MRRAt returns the account's headline MRR at t: the largest of its per-currency amounts
// (compared in major units; ties broken by currency code), with that currency. An account
// with no paying subscription has 0 in the currency of its most recent subscription, so a
// churned account still reads in its currency.
func (b *Billing) MRRAt(t time.Time) (int64, string) {
	var best int64
	cur := ""
	for c, amount := range b.MRRByCurrency(t) {
		if cur == "" || larger(amount, c, best, cur) {
			best, cur = amount, c
		}
	}
	if cur == "" {
		cur = b.lastCurrency()
	}
	return best, cur
}

// MRR returns the headline MRR as of the newest subscription snapshot; scoring and views use
// MRRAt with their own time, so that discounts end on time.
func (b *Billing) MRR() (int64, string) {
	var at int64
	for _, s := range b.Subscriptions {
		at = max(at, s.At)
	}
	return b.MRRAt(time.Unix(at, 0).UTC())
}

// larger reports whether amount a in currency ca is larger than amount b in currency cb,
// compared in major units; on a tie the currency code decides, so the choice is stable.
func larger(a int64, ca string, b int64, cb string) bool {
	x := new(big.Rat).SetFrac64(a, pow10(Decimals(ca)))
	y := new(big.Rat).SetFrac64(b, pow10(Decimals(cb)))
	if c := x.Cmp(y); c != 0 {
		return c > 0
	}
	return ca < cb
}

func pow10(n int) int64 {
	p := int64(1)
	for ; n > 0; n-- {
		p *= 10
	}
	return p
}

// lastCurrency is the currency of the most recently updated subscription (ties by id).
func (b *Billing) lastCurrency() string {
	var last Subscription
	cur := ""
	for _, s := range b.Subscriptions {
		if s.Currency != "" && (cur == "" || s.At > last.At || (s.At == last.At && s.ID > last.ID)) {
			cur, last = s.Currency, s
		}
	}
	return cur
}

// decimals lists the currencies whose minor unit is not a hundredth, as
// Stripe lists them (https://stripe.com/docs/currencies#zero-decimal): Stripe amounts in a
// zero-decimal currency are whole units (¥5,000 is 5000).
var decimals = map[string]int{
	"bif": 0, "clp": 0, "djf": 0, "gnf": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0,
	"pyg": 0, "rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
	"bhd": 3, "jod": 3, "kwd": 3, "omr": 3, "tnd": 3,
}

// Decimals returns how many decimal places a currency's Stripe amounts carry: 0 for
// zero-decimal currencies (JPY, KRW…), 3 for BHD, JOD, KWD, OMR and TND, else 2.
func Decimals(currency string) int {
	if d, ok := decimals[strings.ToLower(currency)]; ok {
		return d
	}
	return 2
}

// FormatMoney renders an amount in minor units with the currency's decimals and its upper-case
// code: "297.00 USD", "5000 JPY". Without a currency it renders two decimals and no code.
func FormatMoney(minor int64, currency string) string {
	s := formatAmount(minor, Decimals(currency))
	if currency == "" {
		return s
	}
	return s + " " + strings.ToUpper(currency)
}

// FormatAmount renders an amount in minor units with the currency's decimals, without the code.
func FormatAmount(minor int64, currency string) string {
	return formatAmount(minor, Decimals(currency))
}

func formatAmount(minor int64, decimals int) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	if decimals == 0 {
		return sign + fmt.Sprint(minor)
	}
	p := pow10(decimals)
	return fmt.Sprintf("%s%d.%0*d", sign, minor/p, decimals, minor%p)
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

// recordMRR appends a history point when the account's headline MRR changed.
func (b *Billing) recordMRR(at time.Time) {
	mrr, cur := b.MRRAt(at)
	if n := len(b.MRRHistory); n > 0 && b.MRRHistory[n-1].Amount == mrr && b.MRRHistory[n-1].Currency == cur {
		return
	}
	if len(b.MRRHistory) == 0 && mrr == 0 {
		return
	}
	b.MRRHistory = insertSorted(b.MRRHistory, MRRPoint{At: at.UTC(), Amount: mrr, Currency: cur}, func(p MRRPoint) time.Time { return p.At }, MaxMRRHistory)
}

// PeakMRRSince returns the highest MRR in currency cur in force at any time from since on.
// Points in another currency are not comparable and are left out.
func (b *Billing) PeakMRRSince(since time.Time, cur string) int64 {
	var peak int64
	for i, p := range b.MRRHistory {
		if i+1 < len(b.MRRHistory) && !b.MRRHistory[i+1].At.After(since) {
			continue // superseded before the window opened
		}
		if p.Amount > peak && (p.Currency == "" || p.Currency == cur) {
			peak = p.Amount
		}
	}
	return peak
}

// LastMRR returns the last non-zero MRR recorded, with its currency: what a churned account
// paid before it ended.
func (b *Billing) LastMRR() (int64, string) {
	for i := len(b.MRRHistory) - 1; i >= 0; i-- {
		if p := b.MRRHistory[i]; p.Amount > 0 {
			cur := p.Currency
			if cur == "" {
				cur = b.lastCurrency()
			}
			return p.Amount, cur
		}
	}
	return 0, b.lastCurrency()
}

// PaymentFailed records a failed payment of invoice at t; final means Stripe will not retry.
func (b *Billing) PaymentFailed(invoice string, at time.Time, final bool) {
	f := PaymentFailure{Invoice: invoice, At: at.UTC(), Final: final}
	for _, p := range b.Paid {
		if p.Invoice == invoice && !p.At.Before(f.At) {
			f.Recovered = true
		}
	}
	if f.Recovered {
		b.RecoveredDays = countDay(b.RecoveredDays, Day(f.At), 1)
	}
	b.Failures = insertFailure(b.Failures, f)
	b.FailureDays = countDay(b.FailureDays, Day(f.At), 1)
}

// InvoiceFailed keeps the details of a failed invoice for dunning playbooks, unless a newer
// failure is already kept or the invoice was paid since.
func (b *Billing) InvoiceFailed(in Invoice) {
	in.At = in.At.UTC()
	for _, p := range b.Paid {
		if p.Invoice == in.ID && !p.At.Before(in.At) {
			return
		}
	}
	if b.Dunning != nil && b.Dunning.At.After(in.At) {
		return
	}
	b.Dunning = &in
}

// insertFailure inserts f in time order. Beyond MaxFailures it drops the oldest recovered
// failure (already counted in RecoveredDays), else the oldest one.
func insertFailure(fs []PaymentFailure, f PaymentFailure) []PaymentFailure {
	fs = insertSorted(fs, f, func(f PaymentFailure) time.Time { return f.At }, math.MaxInt)
	if len(fs) <= MaxFailures {
		return fs
	}
	drop := 0
	for i, g := range fs {
		if g.Recovered {
			drop = i
			break
		}
	}
	return append(fs[:drop:drop], fs[drop+1:]...)
}

// InvoicePaid marks every failure of the invoice recovered and clears its pending actions.
func (b *Billing) InvoicePaid(invoice string, at time.Time) {
	b.recover(invoice, at)
	b.ActionRequired = removeRef(b.ActionRequired, invoice)
	b.Uncollectible = removeRef(b.Uncollectible, invoice)
	b.Paid = append(b.Paid, PaidInvoice{Invoice: invoice, At: at.UTC()})
	if len(b.Paid) > MaxInvoiceIDs {
		b.Paid = b.Paid[len(b.Paid)-MaxInvoiceIDs:]
	}
	if at.After(b.LastPaidAt) {
		b.LastPaidAt = at.UTC()
	}
}

// recover marks the failures of invoice up to at recovered, counting each once.
func (b *Billing) recover(invoice string, at time.Time) {
	for i, f := range b.Failures {
		if f.Invoice == invoice && !f.Recovered && !at.Before(f.At) {
			b.Failures[i].Recovered = true
			b.RecoveredDays = countDay(b.RecoveredDays, Day(f.At), 1)
		}
	}
	if b.Dunning != nil && b.Dunning.ID == invoice && !at.Before(b.Dunning.At) {
		b.Dunning = nil
	}
}

// PaymentActionRequired records an invoice waiting for the customer to authenticate.
func (b *Billing) PaymentActionRequired(invoice string) {
	b.ActionRequired = addRef(b.ActionRequired, Ref{ID: invoice}, MaxInvoiceIDs)
}

// MarkUncollectible records an invoice Stripe gave up on.
func (b *Billing) MarkUncollectible(invoice string) {
	b.Uncollectible = addRef(b.Uncollectible, Ref{ID: invoice}, MaxInvoiceIDs)
}

// AddRefund records a refund at t.
func (b *Billing) AddRefund(t time.Time) {
	b.Refunds = insertStamp(b.Refunds, Stamp{At: t}, MaxFailures)
}

// AddDispute records a charge dispute at t.
func (b *Billing) AddDispute(t time.Time) {
	b.Disputes = insertStamp(b.Disputes, Stamp{At: t}, MaxFailures)
}

// FailuresSince returns how many payments failed from t's day on and how many of those are
// not recovered, both exact: counted per day, not from the capped list of failures.
func (b *Billing) FailuresSince(t time.Time) (all, open int) {
	all = sumDays(b.FailureDays, Day(t), math.MaxInt32)
	open = all - sumDays(b.RecoveredDays, Day(t), math.MaxInt32)
	return all, max(open, 0)
}

func (b Billing) clone() Billing {
	b.Subscriptions = cloneMap(b.Subscriptions)
	for id, s := range b.Subscriptions {
		s.Items = append([]Item(nil), s.Items...)
		b.Subscriptions[id] = s
	}
	b.Failures = append([]PaymentFailure(nil), b.Failures...)
	b.FailureDays = append([]DayCount(nil), b.FailureDays...)
	b.RecoveredDays = append([]DayCount(nil), b.RecoveredDays...)
	if b.Dunning != nil {
		d := *b.Dunning
		b.Dunning = &d
	}
	b.Paid = append([]PaidInvoice(nil), b.Paid...)
	b.ActionRequired = append([]Ref(nil), b.ActionRequired...)
	b.Uncollectible = append([]Ref(nil), b.Uncollectible...)
	b.Refunds = append([]Stamp(nil), b.Refunds...)
	b.Disputes = append([]Stamp(nil), b.Disputes...)
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
		b.Failures = insertFailure(b.Failures, f)
	}
	for _, d := range src.FailureDays {
		b.FailureDays = countDay(b.FailureDays, d.Day, d.Events)
	}
	for _, d := range src.RecoveredDays {
		b.RecoveredDays = countDay(b.RecoveredDays, d.Day, d.Events)
	}
	if src.Dunning != nil {
		b.InvoiceFailed(*src.Dunning)
	}
	for _, p := range b.Paid { // payments on either side recover failures on either side
		b.recover(p.Invoice, p.At)
	}
	if src.LastPaidAt.After(b.LastPaidAt) {
		b.LastPaidAt = src.LastPaidAt
	}
	for _, r := range src.ActionRequired {
		b.ActionRequired = addRef(b.ActionRequired, r, MaxInvoiceIDs)
	}
	for _, r := range src.Uncollectible {
		b.Uncollectible = addRef(b.Uncollectible, r, MaxInvoiceIDs)
	}
	for _, t := range src.Refunds {
		b.Refunds = insertStamp(b.Refunds, t, MaxFailures)
	}
	for _, t := range src.Disputes {
		b.Disputes = insertStamp(b.Disputes, t, MaxFailures)
	}
}
