package scenario

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/risk"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/usage"
)

// ProductCommit is the commit of n product messages of account a, all of one minute, from
// one queue batch, built as ingest builds it: the account (version-conditioned) and the
// minute's receipt holding the n messages' ids (store.ReceiptID of Segment-style ids, kept
// until their timestamp leaves usage.Horizon). It is the one place the cost figures take a
// product write from.
func ProductCommit(a *account.Account, n int, t0 time.Time) store.Tx {
	r := store.Receipt{ReceiptKey: store.ReceiptKey{Account: a.ID, Bucket: store.BucketOf(t0)}, Expires: usage.MarkerExpiry(t0, t0, 24*time.Hour)}
	for i := 0; i < n; i++ {
		r.IDs = append(r.IDs, store.ReceiptID(fmt.Sprintf("ajs-next-%d-7f3c9a5e-1b2d-4e6f-8a9b-%012d", t0.UnixMilli(), i)))
	}
	slices.Sort(r.IDs)
	return store.Tx{Accounts: []store.Put{{Account: a, Expect: stored(a)}}, Receipts: []store.Receipt{r}}
}

// StripeCommit is the commit of one Stripe event on account a, built as ingest builds it: the
// account and the event's marker ("stripe:evt_…", 30 days). With raised, the event is a
// subscription going past_due and the commit carries the events rescoring publishes (a
// churn_risk.raised among them), each encoded as ingest encodes it for the outbox. a is
// changed when raised.
func StripeCommit(a *account.Account, raised bool, t0 time.Time) (store.Tx, error) {
	tx := store.Tx{Accounts: []store.Put{{Account: a, Expect: stored(a)}},
		Markers: []store.Marker{{Key: "stripe:evt_1OAcme0000000000000000001", Expires: t0.Add(30 * 24 * time.Hour)}}}
	if !raised {
		return tx, nil
	}
	for _, s := range a.Billing.Subscriptions {
		s.Status, s.At = "past_due", t0.Unix()
		a.Billing.ApplySubscription(s)
	}
	for _, e := range risk.Rescore(a, score.Default(), t0, t0) {
		body, err := json.Marshal(e)
		if err != nil {
			return tx, err
		}
		tx.Outbox = append(tx.Outbox, store.Message{ID: e.ID, Body: body, Attributes: e.Attributes()})
	}
	return tx, nil
}

// stored is the version a commit of a expects: a is a stored account (ActiveAccount's, never
// written, counts as stored at version 1), so the commit is an update, not a creation.
func stored(a *account.Account) int64 { return max(a.Version, 1) }
