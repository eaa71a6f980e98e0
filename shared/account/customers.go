package account

import (
	"encoding/json"
	"slices"
	"time"
)

// An account may have several Stripe customers, and a customer may move to another account
// (its metadata.account_id changes). Every billing fact records the customer it came from, so
// a move takes exactly that customer's facts along: Tag marks what an event just added, Take
// removes a customer's facts from one account and Merge adds them to another.

// Stamp is the time of a billing fact (a refund, a dispute) and the customer it concerns.
type Stamp struct {
	At       time.Time `json:"at"`
	Customer string    `json:"customer,omitempty"`
}

// UnmarshalJSON reads a Stamp, or a bare time as stored before facts named their customer.
func (s *Stamp) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*s = Stamp{}
		return json.Unmarshal(b, &s.At)
	}
	type plain Stamp
	return json.Unmarshal(b, (*plain)(s))
}

// Ref is an invoice id and the customer it belongs to.
type Ref struct {
	ID       string `json:"id"`
	Customer string `json:"customer,omitempty"`
}

// UnmarshalJSON reads a Ref, or a bare id as stored before facts named their customer.
func (r *Ref) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*r = Ref{}
		return json.Unmarshal(b, &r.ID)
	}
	type plain Ref
	return json.Unmarshal(b, (*plain)(r))
}

// CountSince counts the stamps at or after since.
func CountSince(ss []Stamp, since time.Time) int {
	n := 0
	for _, s := range ss {
		if !s.At.Before(since) {
			n++
		}
	}
	return n
}

func insertStamp(ss []Stamp, s Stamp, max int) []Stamp {
	s.At = s.At.UTC()
	return insertSorted(ss, s, func(s Stamp) time.Time { return s.At }, max)
}

func addRef(rs []Ref, r Ref, max int) []Ref {
	if slices.ContainsFunc(rs, func(x Ref) bool { return x.ID == r.ID }) {
		return rs
	}
	rs = append(rs, r)
	if len(rs) > max {
		rs = rs[len(rs)-max:]
	}
	return rs
}

func removeRef(rs []Ref, id string) []Ref {
	return slices.DeleteFunc(slices.Clone(rs), func(r Ref) bool { return r.ID == id })
}

// AddStripeCustomer records that customer's billing lands on the account: the first one linked
// stays StripeCustomerID (stable, for consumers to correlate on), every one is listed in
// StripeCustomerIDs.
func (a *Account) AddStripeCustomer(customer string) {
	if customer == "" {
		return
	}
	if a.StripeCustomerID == "" {
		a.StripeCustomerID = customer
	}
	if !slices.Contains(a.StripeCustomerIDs, customer) && len(a.StripeCustomerIDs) < MaxStripeCustomers {
		a.StripeCustomerIDs = append(a.StripeCustomerIDs, customer)
	}
}

// MaxStripeCustomers bounds the Stripe customers one account lists.
const MaxStripeCustomers = 20

// Customers returns every Stripe customer of the account, the first linked first.
func (a *Account) Customers() []string {
	out := append([]string{}, a.StripeCustomerIDs...)
	if a.StripeCustomerID != "" && !slices.Contains(out, a.StripeCustomerID) {
		out = append([]string{a.StripeCustomerID}, out...)
	}
	return out
}

// Tag marks the billing facts that name no customer as customer's. An event concerns one
// customer, so calling it after applying the event attributes what the event added; facts
// stored before facts named their customer are attributed to the next customer that writes.
func (b *Billing) Tag(customer string) {
	for id, s := range b.Subscriptions {
		if s.Customer == "" {
			s.Customer = customer
			b.Subscriptions[id] = s
		}
	}
	for i := range b.Failures {
		if b.Failures[i].Customer == "" {
			b.Failures[i].Customer = customer
		}
	}
	for i := range b.Paid {
		if b.Paid[i].Customer == "" {
			b.Paid[i].Customer = customer
		}
	}
	if b.Dunning != nil && b.Dunning.Customer == "" {
		b.Dunning.Customer = customer
	}
	for _, rs := range [][]Ref{b.ActionRequired, b.Uncollectible} {
		for i := range rs {
			if rs[i].Customer == "" {
				rs[i].Customer = customer
			}
		}
	}
	for _, ss := range [][]Stamp{b.Refunds, b.Disputes} {
		for i := range ss {
			if ss[i].Customer == "" {
				ss[i].Customer = customer
			}
		}
	}
}

// Take removes customer's billing facts from b and returns them as a Billing of their own,
// for the account the customer moves to; at is when the move happened (both MRR histories get
// a point then). Exact day counts move with the failures they count that are still listed.
func (b *Billing) Take(customer string, at time.Time) Billing {
	var out Billing
	for id, s := range b.Subscriptions {
		if s.Customer == customer {
			if out.Subscriptions == nil {
				out.Subscriptions = map[string]Subscription{}
			}
			out.Subscriptions[id] = s
			delete(b.Subscriptions, id)
		}
	}
	keep := b.Failures[:0:0]
	for _, f := range b.Failures {
		if f.Customer != customer {
			keep = append(keep, f)
			continue
		}
		out.Failures = append(out.Failures, f)
		if uncountDay(b.FailureDays, Day(f.At)) {
			out.FailureDays = countDay(out.FailureDays, Day(f.At), 1)
		}
		if f.Recovered && uncountDay(b.RecoveredDays, Day(f.At)) {
			out.RecoveredDays = countDay(out.RecoveredDays, Day(f.At), 1)
		}
	}
	b.Failures = keep
	b.Paid, out.Paid = split(b.Paid, func(p PaidInvoice) bool { return p.Customer == customer })
	b.ActionRequired, out.ActionRequired = split(b.ActionRequired, func(r Ref) bool { return r.Customer == customer })
	b.Uncollectible, out.Uncollectible = split(b.Uncollectible, func(r Ref) bool { return r.Customer == customer })
	b.Refunds, out.Refunds = split(b.Refunds, func(s Stamp) bool { return s.Customer == customer })
	b.Disputes, out.Disputes = split(b.Disputes, func(s Stamp) bool { return s.Customer == customer })
	if b.Dunning != nil && b.Dunning.Customer == customer {
		out.Dunning, b.Dunning = b.Dunning, nil
	}
	for _, p := range out.Paid {
		if p.At.After(out.LastPaidAt) {
			out.LastPaidAt = p.At
		}
	}
	out.CustomerAt, out.CustomerDeleted = b.CustomerAt, b.CustomerDeleted
	b.recordMRR(at)
	out.recordMRR(at)
	return out
}

// uncountDay takes one away from day d's count, if the window still counts it.
func uncountDay(days []DayCount, d int32) bool {
	for i := range days {
		if days[i].Day == d && days[i].Events > 0 {
			days[i].Events--
			return true
		}
	}
	return false
}

// split returns the elements of xs that do not match and those that do.
func split[T any](xs []T, match func(T) bool) (keep, taken []T) {
	for _, x := range xs {
		if match(x) {
			taken = append(taken, x)
		} else {
			keep = append(keep, x)
		}
	}
	return keep, taken
}

// MoveCustomer moves customer, with every billing fact it brought, from the account from to a,
// at time at: the customer's subscriptions, MRR, failed payments, refunds and disputes leave
// from and count on a from now on.
func (a *Account) MoveCustomer(from *Account, customer string, at time.Time) {
	taken := from.Billing.Take(customer, at)
	from.StripeCustomerIDs = slices.DeleteFunc(from.StripeCustomerIDs, func(c string) bool { return c == customer })
	if from.StripeCustomerID == customer {
		from.StripeCustomerID = ""
		if len(from.StripeCustomerIDs) > 0 {
			from.StripeCustomerID = from.StripeCustomerIDs[0]
		}
	}
	if from.NameFrom == NameFromStripe && len(from.Customers()) == 0 {
		from.Name, from.NameFrom = "", "" // the name was the departed customer's
	}
	a.Billing.merge(&taken)
	a.Billing.recordMRR(at)
	a.AddStripeCustomer(customer)
}
