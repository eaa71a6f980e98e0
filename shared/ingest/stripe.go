package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/billing"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
)

// Stripe outcome statuses, as the webhook answers them.
const (
	StatusApplied   = "applied"
	StatusDuplicate = "duplicate"
	StatusIgnored   = "ignored"
	// StatusStale answers a snapshot older than the one stored: recorded as delivered, not applied.
	StatusStale = "stale"
)

// ErrChargeNotFound is what a ChargeLookup returns for a charge Stripe does not know.
var ErrChargeNotFound = errors.New("charge not found")

// StripeResult is what applying one Stripe event did.
type StripeResult struct {
	Status  string `json:"status"`
	Account string `json:"account,omitempty"`
	Events  int    `json:"events,omitempty"`
}

// Stripe applies one verified Stripe event, received at now. A customer first seen without
// metadata.account_id lives under its Stripe id until a customer update or a product group
// call names its account; then the two are folded into one.
func (s *Service) Stripe(ctx context.Context, c billing.Change, now time.Time) (StripeResult, error) {
	if c.Ignored {
		return StripeResult{Status: StatusIgnored}, nil
	}
	if c.Customer == "" && c.Charge != "" {
		if s.Charges == nil {
			s.logger().Warn("stripe dispute not applied: set STRIPE_API_KEY to resolve its charge to a customer",
				"event_id", c.EventID, "charge", c.Charge)
			return StripeResult{Status: StatusIgnored}, nil
		}
		cus, err := s.Charges.ChargeCustomer(ctx, c.Charge)
		if errors.Is(err, ErrChargeNotFound) || (err == nil && cus == "") {
			s.logger().Warn("stripe dispute not applied: charge has no customer", "event_id", c.EventID, "charge", c.Charge)
			return StripeResult{Status: StatusIgnored}, nil
		}
		if err != nil {
			return StripeResult{}, fault.Dependency("resolve charge "+c.Charge, err)
		}
		c.Customer = cus
	}
	key := "stripe:" + c.EventID
	stale := false
	out, err := s.run(ctx, write{
		keys:     []string{key},
		occurred: c.Created,
		resolve: func(ctx context.Context) (plan, error) {
			return s.resolveCustomer(ctx, c.Customer, c.AccountID, claimOrder(c))
		},
		apply: func(a *account.Account, fresh map[string]bool, _ *store.Tx) error {
			if fresh[key] {
				stale = !c.Apply(a)
				a.AddStripeCustomer(c.Customer)
				a.Billing.Tag(c.Customer)
			}
			return nil
		},
	}, now)
	if err != nil {
		return StripeResult{}, err
	}
	res := StripeResult{Status: StatusApplied, Account: out.account, Events: len(out.events)}
	switch {
	case len(out.applied) == 0:
		res.Status = StatusDuplicate
		links, err := s.Store.Links(ctx, []string{stripeLink(c.Customer)})
		if err != nil {
			return StripeResult{}, fault.Dependency("link lookup", err)
		}
		res.Account = links[stripeLink(c.Customer)].Account
	case stale:
		res.Status = StatusStale
	}
	return res, nil
}

// resolveCustomer decides which account a Stripe customer's event lands on. named is the
// account the customer's metadata.account_id names, "" when the event does not say, and at
// the event's created time; Stripe's word is authoritative, so it moves the link wherever it
// points, unless a newer customer snapshot placed the customer already.
func (s *Service) resolveCustomer(ctx context.Context, customer, named string, order int64) (plan, error) {
	return s.claim(ctx, customer, named, store.SourceStripe, order)
}

// claimOrder orders the claims of Stripe customer events: by created, then, within one second
// (Stripe's resolution), customer.created before customer.updated before customer.deleted.
func claimOrder(c billing.Change) int64 {
	rank := int64(1)
	switch c.Type {
	case "customer.created":
		rank = 0
	case "customer.deleted":
		rank = 2
	}
	return c.Created.Unix()*4 + rank
}

// groupOrder orders the claims of group calls by the message's time, in the same units.
func groupOrder(at time.Time) int64 { return at.Unix() * 4 }

// claim resolves customer for a claim by source (store.SourceStripe: metadata.account_id;
// store.SourceGroup: a product group trait) naming account named ("" = no claim), in order
// (claimOrder, groupOrder: the fact's time). A group trait may take a customer nobody claimed, or one only a group
// trait claimed; it never takes one that Stripe's metadata placed elsewhere. No claim moves a
// customer that a newer claim placed (a late delivery, a replay). A refused claim lands on
// named without linking, and refused says why; a stale Stripe claim lands where the customer is.
func (s *Service) claim(ctx context.Context, customer, named, source string, order int64) (plan, error) {
	key := stripeLink(customer)
	got, err := s.Store.Links(ctx, []string{key})
	if err != nil {
		return plan{}, fault.Dependency("link lookup", err)
	}
	cur := got[key]
	when := order
	link := store.Link{Key: key, Account: named, Source: source, At: when, Expect: cur.Account}
	placeholder := cur.Account == "" || cur.Account == customer
	switch {
	case named == "" && cur.Account != "":
		return plan{target: cur.Account}, nil
	case named == "":
		// First sight of a customer no account claims: it lives under its own id for now.
		link.Account, link.Source, link.At = customer, "", 0
		return plan{target: customer, links: []store.Link{link}}, nil
	case cur.Account == named:
		// Confirmed where it is: record Stripe's word over a group's, and the newest time, so
		// an older claim delivered late cannot move it.
		if (source == store.SourceStripe && cur.Source != store.SourceStripe) || (source == cur.Source && when > cur.At) {
			return plan{target: named, links: []store.Link{link}}, nil
		}
		return plan{target: named}, nil
	case placeholder:
		return plan{target: named, absorb: cur.Account, links: []store.Link{link}}, nil
	case source == store.SourceGroup && cur.Source == store.SourceStripe:
		s.logger().Warn("group trait claims a Stripe customer whose metadata.account_id names another account; not linked",
			"customer", customer, "linked", cur.Account, "claimed_by", named)
		return plan{target: named, refused: fmt.Sprintf("stripe_customer_id %s belongs to account %s by its Stripe metadata.account_id; not linked to %s",
			customer, cur.Account, named)}, nil
	case when < cur.At && (source == cur.Source || source == store.SourceGroup):
		s.logger().Warn("an older claim on a Stripe customer arrived after a newer one; the customer stays",
			"customer", customer, "linked", cur.Account, "claimed_by", named, "by", source)
		if source == store.SourceGroup {
			return plan{target: named, refused: fmt.Sprintf("stripe_customer_id %s was linked to account %s by a newer claim; this older one does not move it",
				customer, cur.Account)}, nil
		}
		return plan{target: cur.Account}, nil
	}
	s.logger().Info("stripe customer moves to another account; its billing moves with it", "customer", customer, "from", cur.Account, "to", named, "by", source)
	return plan{target: named, links: []store.Link{link}, move: &move{customer: customer, from: cur.Account}}, nil
}
