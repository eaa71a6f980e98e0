package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/billing"
	"github.com/churnsignal/churnsignal/shared/store"
)

// Stripe outcome statuses, as the webhook answers them.
const (
	StatusApplied   = "applied"
	StatusDuplicate = "duplicate"
	StatusIgnored   = "ignored"
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
			return StripeResult{}, transient("resolve charge "+c.Charge, err)
		}
		c.Customer = cus
	}
	key := "stripe:" + c.EventID
	out, err := s.run(ctx, write{
		keys:     []string{key},
		occurred: c.Created,
		resolve:  func(ctx context.Context) (plan, error) { return s.resolveCustomer(ctx, c.Customer, c.AccountID) },
		apply: func(a *account.Account, fresh map[string]bool, _ *store.Tx) error {
			if fresh[key] {
				c.Apply(a)
			}
			return nil
		},
	}, now)
	if err != nil {
		return StripeResult{}, err
	}
	res := StripeResult{Status: StatusApplied, Account: out.account, Events: len(out.events)}
	if len(out.applied) == 0 {
		res.Status = StatusDuplicate
	}
	return res, nil
}

// resolveCustomer decides which account a Stripe customer's event lands on. named is the
// account the customer (or a group trait) names, "" when the event does not say.
func (s *Service) resolveCustomer(ctx context.Context, customer, named string) (plan, error) {
	cur, err := s.Store.Link(ctx, stripeLink(customer))
	if err != nil {
		return plan{}, transient("link lookup", err)
	}
	link := store.Link{Key: stripeLink(customer), Expect: cur}
	switch {
	case named == "" && cur != "":
		return plan{target: cur}, nil
	case named == "":
		// First sight of a customer no account claims: it lives under its own id for now.
		link.Account = customer
		return plan{target: customer, links: []store.Link{link}}, nil
	case cur == named:
		return plan{target: named}, nil
	case cur == "" || cur == customer:
		link.Account = named
		return plan{target: named, absorb: cur, links: []store.Link{link}}, nil
	}
	s.logger().Warn("stripe customer moves to another account", "customer", customer, "from", cur, "to", named)
	link.Account = named
	return plan{target: named, links: []store.Link{link}}, nil
}
