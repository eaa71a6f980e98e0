// Package stripeapi calls the Stripe API for what webhooks do not carry: the customer of a
// disputed charge. It is used only when STRIPE_API_KEY is set.
package stripeapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/churnsignal/churnsignal/shared/ingest"
)

// Client looks charges up with a secret or restricted API key.
type Client struct {
	api *client.API
}

var _ ingest.ChargeLookup = (*Client)(nil)

// New returns a Client for key; base overrides the API URL (stripe-mock in tests), "" for
// Stripe's own.
func New(key, base string) *Client {
	var backends *stripe.Backends
	if base != "" {
		cfg := &stripe.BackendConfig{URL: stripe.String(base), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelError}}
		backends = &stripe.Backends{API: stripe.GetBackendWithConfig(stripe.APIBackend, cfg)}
	}
	return &Client{api: client.New(key, backends)}
}

// ChargeCustomer returns the customer id of a charge, or ingest.ErrChargeNotFound.
func (c *Client) ChargeCustomer(ctx context.Context, chargeID string) (string, error) {
	p := &stripe.ChargeParams{}
	p.Context = ctx
	p.AddExpand("customer") // an id either way; stripe-mock fills it only when expanded
	ch, err := c.api.Charges.Get(chargeID, p)
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
		return "", ingest.ErrChargeNotFound
	}
	if err != nil {
		return "", err
	}
	if ch.Customer == nil {
		return "", nil
	}
	return ch.Customer.ID, nil
}
