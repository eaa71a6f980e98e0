// Package account holds the per-account record that every signal lands on: identity and links,
// billing state, usage in bounded rolling windows, voice-of-customer signals and the current
// health. It has no I/O and no clock: every function that needs the time takes it.
package account

import (
	"math"
	"slices"
	"sort"
	"time"
	"unicode/utf8"
)

// Account is one customer account. It is stored whole, so every field is bounded in size
// whatever the account's activity: windows are fixed-size, sets are capped.
type Account struct {
	ID               string `json:"id"`
	Name             string `json:"name,omitempty"`
	Email            string `json:"email,omitempty"`
	StripeCustomerID string `json:"stripe_customer_id,omitempty"`
	// StripeCustomerIDs are all the Stripe customers whose billing lands on the account, the
	// first linked first (StripeCustomerID stays that one, whatever links later).
	StripeCustomerIDs []string `json:"stripe_customer_ids,omitempty"`
	// NameFrom says where Name came from: NameFromGroup (the product's group traits, which
	// win) or NameFromStripe (the customer's name in Stripe).
	NameFrom string `json:"name_from,omitempty"`
	// MergedInto is set on an account that was folded into another (a Stripe customer seen
	// before its product account was known). Writers that land on it follow the pointer.
	MergedInto string `json:"merged_into,omitempty"`
	// Traits are the latest group traits the product sent (plan, industry…), capped.
	Traits map[string]string `json:"traits,omitempty"`

	Billing Billing `json:"billing"`
	Usage   Usage   `json:"usage"`
	Voice   Voice   `json:"voice"`
	Health  Health  `json:"health"`
	Risk    Risk    `json:"risk"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Version increases by one on every committed write; stores use it for optimistic
	// concurrency. Zero means the account has never been stored.
	Version int64 `json:"version"`
}

// New returns an empty account with the given id, created at now.
func New(id string, now time.Time) *Account {
	return &Account{ID: id, CreatedAt: now.UTC()}
}

// Clone returns a deep copy, so a mutation that fails or is retried leaves the original intact.
func (a *Account) Clone() *Account {
	c := *a
	c.Traits = cloneMap(a.Traits)
	c.StripeCustomerIDs = slices.Clone(a.StripeCustomerIDs)
	c.Billing = a.Billing.clone()
	c.Usage = a.Usage.clone()
	c.Voice = a.Voice.clone()
	c.Health = a.Health.clone()
	return &c
}

// Churned reports whether the account's subscriptions have all ended.
func (a *Account) Churned() bool { return a.Billing.Churned() }

// Merge folds src (an account known only by its Stripe customer id) into a. Billing comes from
// whichever side has Stripe data; usage and voice signals are distinct messages, so they add.
func (a *Account) Merge(src *Account) {
	for _, c := range src.Customers() {
		a.AddStripeCustomer(c)
	}
	if a.Name == "" || nameRank(src.NameFrom) > nameRank(a.NameFrom) {
		a.SetName(src.Name, src.NameFrom) // the surviving account's name wins a tie
	}
	if a.Email == "" {
		a.Email = src.Email
	}
	for k, v := range src.Traits {
		if _, ok := a.Traits[k]; !ok {
			a.SetTrait(k, v)
		}
	}
	a.Billing.merge(&src.Billing)
	a.Usage.merge(&src.Usage)
	a.Voice.merge(&src.Voice)
	if !a.Health.Scored() {
		a.Health = src.Health.clone()
	}
	a.Risk.merge(&src.Risk)
	if a.CreatedAt.IsZero() || (!src.CreatedAt.IsZero() && src.CreatedAt.Before(a.CreatedAt)) {
		a.CreatedAt = src.CreatedAt
	}
}

// Where an account's name came from.
const (
	NameFromGroup  = "group"
	NameFromStripe = "stripe"
)

// SetName records name from source (NameFromGroup, NameFromStripe, or "" when unknown): the
// product's own name for the account (a group trait) wins over the Stripe customer's name,
// and a later name from the same or a stronger source replaces an earlier one.
func (a *Account) SetName(name, source string) {
	if name == "" || (a.Name != "" && nameRank(source) < nameRank(a.NameFrom)) {
		return
	}
	a.Name, a.NameFrom = Clip(name, MaxString), source
}

func nameRank(source string) int {
	switch source {
	case NameFromGroup:
		return 2
	case NameFromStripe:
		return 1
	}
	return 0
}

// Byte bounds on the strings an account stores, so its encoded size stays bounded whatever
// senders send (see TestAccountSizeStaysWithinBudget).
const (
	// MaxTraits bounds the number of group traits kept on an account.
	MaxTraits = 32
	// MaxString bounds ids, names, e-mail addresses, trait keys and trait values, in bytes.
	MaxString = 256
	// MaxTicketID bounds a support ticket id, in bytes.
	MaxTicketID = 128
)

// Clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// SetTrait records a group trait, keeping at most MaxTraits of them, key and value cut to
// MaxString bytes.
func (a *Account) SetTrait(k, v string) {
	k, v = Clip(k, MaxString), Clip(v, MaxString)
	if a.Traits == nil {
		a.Traits = map[string]string{}
	}
	if _, ok := a.Traits[k]; !ok && len(a.Traits) >= MaxTraits {
		return
	}
	a.Traits[k] = v
}

// Voice holds voice-of-customer signals: support tickets and NPS responses.
type Voice struct {
	// TicketDays counts tickets opened per day, exactly, over the usage window.
	TicketDays DayCounts `json:"ticket_days,omitempty"`
	// OpenTickets are ids of tickets opened and not yet resolved, capped.
	OpenTickets []string `json:"open_tickets,omitempty"`
	// TicketsSeen is true once any ticket event arrived, so "no tickets" is data, not absence.
	TicketsSeen bool `json:"tickets_seen,omitempty"`
	// NPS are recent survey responses, oldest first, capped.
	NPS []NPSResponse `json:"nps,omitempty"`
}

// NPSResponse is one NPS survey answer (0–10).
type NPSResponse struct {
	Score int       `json:"score"`
	At    time.Time `json:"at"`
}

// Caps for voice signals.
const (
	MaxOpenTickets = 50
	MaxNPS         = 20
)

// TicketOpened records a support ticket opening at t with an optional ticket id.
func (v *Voice) TicketOpened(id string, t time.Time) {
	id = Clip(id, MaxTicketID)
	v.TicketsSeen = true
	v.TicketDays = countDay(v.TicketDays, Day(t), 1)
	if id != "" && !contains(v.OpenTickets, id) {
		v.OpenTickets = append(v.OpenTickets, id)
		if len(v.OpenTickets) > MaxOpenTickets {
			v.OpenTickets = v.OpenTickets[len(v.OpenTickets)-MaxOpenTickets:]
		}
	}
}

// TicketResolved records that ticket id is no longer open.
func (v *Voice) TicketResolved(id string) {
	id = Clip(id, MaxTicketID)
	v.TicketsSeen = true
	for i, t := range v.OpenTickets {
		if t == id {
			v.OpenTickets = append(v.OpenTickets[:i:i], v.OpenTickets[i+1:]...)
			return
		}
	}
}

// TicketsSince counts tickets opened from t's day on.
func (v *Voice) TicketsSince(t time.Time) int { return sumDays(v.TicketDays, Day(t), math.MaxInt32) }

// AddNPS records a survey response, keeping the newest MaxNPS in time order.
func (v *Voice) AddNPS(score int, t time.Time) {
	v.NPS = insertSorted(v.NPS, NPSResponse{Score: score, At: t.UTC()}, func(r NPSResponse) time.Time { return r.At }, MaxNPS)
}

func (v Voice) clone() Voice {
	v.TicketDays = append([]DayCount(nil), v.TicketDays...)
	v.OpenTickets = append([]string(nil), v.OpenTickets...)
	v.NPS = append([]NPSResponse(nil), v.NPS...)
	return v
}

func (v *Voice) merge(src *Voice) {
	for _, d := range src.TicketDays {
		v.TicketDays = countDay(v.TicketDays, d.Day, d.Events)
	}
	for _, id := range src.OpenTickets {
		if !contains(v.OpenTickets, id) && len(v.OpenTickets) < MaxOpenTickets {
			v.OpenTickets = append(v.OpenTickets, id)
		}
	}
	v.TicketsSeen = v.TicketsSeen || src.TicketsSeen
	for _, r := range src.NPS {
		v.AddNPS(r.Score, r.At)
	}
}

// Risk is the churn-risk state that events are derived from.
type Risk struct {
	// Open is true while a churn-risk episode is open (raised and not yet cleared).
	Open bool `json:"open,omitempty"`
	// Episode counts risk episodes.
	Episode int `json:"episode,omitempty"`
	// Seq counts the events emitted for this account. Event ids hash the account id and Seq,
	// so they are unique per transition forever and stable when the same stored state is
	// rescored again (after a failed commit, say).
	Seq   int       `json:"seq,omitempty"`
	Since time.Time `json:"since,omitzero"`
	// Kind is the kind of the open (or last) episode: involuntary, voluntary or engagement.
	Kind string `json:"kind,omitempty"`
	// LastDrop is when the last health.dropped event was emitted (one per window).
	LastDrop time.Time `json:"last_drop,omitzero"`
	// ChurnedAt is set when account.churned was emitted; cleared on reactivation.
	ChurnedAt time.Time `json:"churned_at,omitzero"`
}

// merge folds src's risk state into r, the surviving account's. Event ids are derived from
// the surviving account's id and counters, so those counters never go back or repeat: an open
// episode adopted from src gets an episode number r has not used, and Seq keeps counting.
func (r *Risk) merge(src *Risk) {
	switch {
	case src.Open && !r.Open:
		r.Open, r.Since, r.Kind = true, src.Since, src.Kind
		r.Episode = max(src.Episode, r.Episode+1)
	case src.Open && r.Open:
		// Two open episodes become one: r's goes on, with the more urgent kind, since the
		// earlier of the two.
		r.Kind = MoreUrgent(r.Kind, src.Kind)
		if src.Since.Before(r.Since) {
			r.Since = src.Since
		}
	}
	if src.LastDrop.After(r.LastDrop) {
		r.LastDrop = src.LastDrop
	}
}

// MoreUrgent returns the more urgent of two risk kinds: involuntary (billing is failing) over
// voluntary (the customer is leaving) over engagement.
func MoreUrgent(a, b string) string {
	rank := func(k string) int {
		switch k {
		case "involuntary":
			return 3
		case "voluntary":
			return 2
		case "engagement":
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// insertSorted inserts x into xs, kept in ascending order of at, after any entry at the same
// time, and keeps the newest max entries.
func insertSorted[T any](xs []T, x T, at func(T) time.Time, max int) []T {
	t := at(x)
	i := sort.Search(len(xs), func(i int) bool { return at(xs[i]).After(t) })
	xs = slices.Insert(xs, i, x)
	if len(xs) > max {
		xs = xs[len(xs)-max:]
	}
	return xs
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
