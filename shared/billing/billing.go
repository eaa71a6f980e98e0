// Package billing maps Stripe events (stripe-go v76 types, API version 2023-10-16) to account
// changes. Snapshots (customer, subscription) are applied only when not older than what is
// stored; counters (failed payments, refunds, disputes) rely on the caller applying each event
// id once.
package billing

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/churnsignal/churnsignal/shared/account"
)

// MetadataAccountID is the Stripe customer metadata key that names the product account.
const MetadataAccountID = "account_id"

// Change is what one Stripe event does to an account.
type Change struct {
	EventID string
	Type    string
	// Customer is the Stripe customer id the event is about ("" until a dispute is resolved).
	Customer string
	// AccountID is the product account the customer names in metadata.account_id, if any.
	AccountID string
	// Charge is set for charge.dispute.created: the charge whose customer must be looked up.
	Charge string
	// Ignored is true for event types that do not affect health.
	Ignored bool
	// Created is the event's creation time: when the fact it reports happened.
	Created time.Time
	// Apply changes the account and reports whether it did: false for a stale snapshot (older
	// than the one stored). It is pure and may run more than once on fresh copies.
	Apply func(a *account.Account) bool
}

// MalformedError says the event's object could not be read as its type claims.
type MalformedError struct {
	Type string
	Err  error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed data.object for %s: %v", e.Type, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

// MismatchError says the event's data.object is of another kind than its type names (a
// subscription inside customer.created). Such an event is acknowledged and not applied.
type MismatchError struct {
	Type string
	// Want and Got are the expected and the received data.object.object.
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s carries a %q object, not a %q", e.Type, e.Got, e.Want)
}

// objectKinds names the data.object.object each handled event type carries.
var objectKinds = map[string]string{
	"customer": "customer", "customer.subscription": "subscription", "invoice": "invoice",
	"charge.refunded": "charge", "charge.dispute": "dispute",
}

// Map turns a verified Stripe event into a Change.
func Map(e stripe.Event) (Change, error) {
	at := time.Unix(e.Created, 0).UTC()
	c := Change{EventID: e.ID, Type: string(e.Type), Created: at}
	if e.Data == nil || len(e.Data.Raw) == 0 {
		if handled(c.Type) {
			return c, &MalformedError{Type: c.Type, Err: fmt.Errorf("no data.object")}
		}
		c.Ignored = true
		return c, nil
	}
	decode := func(v any) error {
		if err := json.Unmarshal(e.Data.Raw, v); err != nil {
			return &MalformedError{Type: c.Type, Err: err}
		}
		return nil
	}
	if handled(c.Type) {
		var kind struct {
			Object string `json:"object"`
		}
		_ = json.Unmarshal(e.Data.Raw, &kind) // a malformed object is reported by decode below
		want := objectKinds[c.Type[:strings.LastIndexByte(c.Type, '.')]]
		if want == "" {
			want = objectKinds[c.Type]
		}
		if kind.Object != "" && kind.Object != want {
			return c, &MismatchError{Type: c.Type, Want: want, Got: kind.Object}
		}
	}
	switch c.Type {
	case "customer.created", "customer.updated", "customer.deleted":
		var cu stripe.Customer
		if err := decode(&cu); err != nil {
			return c, err
		}
		if cu.ID == "" {
			return c, &MalformedError{Type: c.Type, Err: fmt.Errorf("customer has no id")}
		}
		c.Customer, c.AccountID = cu.ID, cu.Metadata[MetadataAccountID]
		deleted := c.Type == "customer.deleted"
		c.Apply = func(a *account.Account) bool {
			a.AddStripeCustomer(cu.ID)
			if e.Created < a.Billing.CustomerAt {
				return false
			}
			a.Billing.CustomerAt = e.Created
			a.Billing.CustomerDeleted = deleted
			if a.StripeCustomerID == cu.ID { // an account's Stripe name and email are its first customer's
				a.SetName(cu.Name, account.NameFromStripe)
				if cu.Email != "" {
					a.Email = account.Clip(cu.Email, account.MaxString)
				}
			}
			return true
		}
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
		"customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end",
		"customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired":
		var s stripe.Subscription
		if err := decode(&s); err != nil {
			return c, err
		}
		if s.ID == "" || s.Customer == nil || s.Customer.ID == "" {
			return c, &MalformedError{Type: c.Type, Err: fmt.Errorf("subscription without id or customer")}
		}
		c.Customer = s.Customer.ID
		snap := Snapshot(&s, e.Created)
		trialEnding := c.Type == "customer.subscription.trial_will_end"
		c.Apply = func(a *account.Account) bool {
			a.AddStripeCustomer(c.Customer)
			applied := a.Billing.ApplySubscription(snap)
			if trialEnding {
				a.Billing.MarkTrialEnding(snap.ID)
			}
			return applied || trialEnding
		}
	case "invoice.payment_failed", "invoice.paid", "invoice.payment_succeeded", "invoice.payment_action_required", "invoice.marked_uncollectible":
		var in stripe.Invoice
		if err := decode(&in); err != nil {
			return c, err
		}
		if in.ID == "" || in.Customer == nil || in.Customer.ID == "" {
			return c, &MalformedError{Type: c.Type, Err: fmt.Errorf("invoice without id or customer")}
		}
		c.Customer = in.Customer.ID
		typ := c.Type
		c.Apply = func(a *account.Account) bool {
			a.AddStripeCustomer(c.Customer)
			switch typ {
			case "invoice.payment_failed":
				a.Billing.PaymentFailed(in.ID, at, in.NextPaymentAttempt == 0)
				a.Billing.InvoiceFailed(FailedInvoice(&in, at))
			case "invoice.paid", "invoice.payment_succeeded":
				a.Billing.InvoicePaid(in.ID, at)
			case "invoice.payment_action_required":
				a.Billing.PaymentActionRequired(in.ID)
			case "invoice.marked_uncollectible":
				a.Billing.MarkUncollectible(in.ID)
			}
			return true
		}
	case "charge.refunded":
		var ch stripe.Charge
		if err := decode(&ch); err != nil {
			return c, err
		}
		if ch.Customer == nil || ch.Customer.ID == "" {
			c.Ignored = true // a guest charge belongs to no account
			return c, nil
		}
		c.Customer = ch.Customer.ID
		c.Apply = func(a *account.Account) bool {
			a.AddStripeCustomer(c.Customer)
			a.Billing.AddRefund(at)
			return true
		}
	case "charge.dispute.created":
		var d stripe.Dispute
		if err := decode(&d); err != nil {
			return c, err
		}
		if d.Charge == nil || d.Charge.ID == "" {
			return c, &MalformedError{Type: c.Type, Err: fmt.Errorf("dispute without charge")}
		}
		c.Charge = d.Charge.ID
		if d.Charge.Customer != nil { // present only when the charge was expanded
			c.Customer = d.Charge.Customer.ID
		}
		c.Apply = func(a *account.Account) bool {
			a.AddStripeCustomer(c.Customer)
			a.Billing.AddDispute(at)
			return true
		}
	default:
		c.Ignored = true
	}
	return c, nil
}

// handled reports whether Map acts on the event type.
func handled(t string) bool {
	switch t {
	case "customer.created", "customer.updated", "customer.deleted",
		"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
		"customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end",
		"customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired",
		"invoice.payment_failed", "invoice.paid", "invoice.payment_succeeded", "invoice.payment_action_required",
		"invoice.marked_uncollectible", "charge.refunded", "charge.dispute.created":
		return true
	}
	return false
}

// Snapshot converts a Stripe subscription, as of event time at (unix seconds), into the
// account's record of it, with its normalized MRR.
func Snapshot(s *stripe.Subscription, at int64) account.Subscription {
	out := account.Subscription{
		ID: s.ID, Status: string(s.Status), Currency: Currency(s),
		CancelAtPeriodEnd: s.CancelAtPeriodEnd,
		CancelAt:          unix(s.CancelAt), CanceledAt: unix(s.CanceledAt), TrialEnd: unix(s.TrialEnd),
		CurrentPeriodEnd: unix(s.CurrentPeriodEnd), EndedAt: unix(s.EndedAt), At: at,
	}
	if d := s.CancellationDetails; d != nil {
		out.CancelReason, out.CancelFeedback, out.CancelComment = string(d.Reason), string(d.Feedback), limit(d.Comment, 500)
	}
	m := MRR(s, at)
	out.MRR, out.Discount, out.MRRNote, out.Items, out.Seats = m.Full, m.Discount, m.Note, m.Items, m.Seats
	return out
}

// FailedInvoice is what a dunning playbook needs of a failed invoice, as of event time at.
func FailedInvoice(in *stripe.Invoice, at time.Time) account.Invoice {
	return account.Invoice{ID: in.ID, AmountDue: in.AmountDue, Currency: string(in.Currency), AttemptCount: in.AttemptCount,
		NextPaymentAttempt: unix(in.NextPaymentAttempt), HostedInvoiceURL: limit(in.HostedInvoiceURL, 500),
		Email: limit(in.CustomerEmail, 256), At: at}
}

// limit cuts s to at most n bytes, so a stored field stays bounded.
func limit(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func unix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}
