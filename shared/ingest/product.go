package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/usage"
)

// chunk bounds the messages of one commit: each brings a marker and up to two links, and a
// commit holds at most store.MaxTxItems items.
const chunk = 30

// ProductResult counts what happened to the messages of one request.
type ProductResult struct {
	Applied   int            `json:"applied"`
	Duplicate int            `json:"duplicate"`
	Held      int            `json:"held"`
	Rejected  int            `json:"rejected"`
	Ignored   int            `json:"ignored"`
	Errors    []MessageError `json:"errors"`
}

// MessageError reports one message that was rejected or ignored.
type MessageError struct {
	Index     int    `json:"index"`
	MessageID string `json:"messageId,omitempty"`
	Error     string `json:"error"`
}

// Valid reports whether any message was accepted (applied, duplicate, held or ignored).
func (r ProductResult) Valid() bool { return r.Applied+r.Duplicate+r.Held+r.Ignored > 0 }

type parsed struct {
	msg  usage.Message
	raw  json.RawMessage
	key  string
	acct string
}

// Product applies a batch of Segment-spec messages received at now. Each messageId counts
// once whatever the shape of the batch it arrives in; a message whose account cannot be
// resolved yet is held until its user's account becomes known.
func (s *Service) Product(ctx context.Context, raws []json.RawMessage, now time.Time) (ProductResult, error) {
	res := ProductResult{Errors: []MessageError{}}
	var msgs []*parsed
	inBatch := map[string]bool{}
	for i, raw := range raws {
		m, err := usage.Parse(raw, now)
		var unsupported *usage.UnsupportedError
		switch {
		case errors.As(err, &unsupported):
			res.Ignored++
			res.Errors = append(res.Errors, MessageError{Index: i, MessageID: string(m.MessageID), Error: err.Error()})
			continue
		case err != nil:
			res.Rejected++
			res.Errors = append(res.Errors, MessageError{Index: i, MessageID: string(m.MessageID), Error: err.Error()})
			continue
		}
		key := "msg:" + string(m.MessageID)
		if inBatch[key] {
			res.Duplicate++
			continue
		}
		inBatch[key] = true
		msgs = append(msgs, &parsed{msg: m, raw: raw, key: key})
	}
	if len(msgs) == 0 {
		return res, nil
	}
	keys := make([]string, len(msgs))
	for i, p := range msgs {
		keys[i] = p.key
	}
	seen, err := s.Store.Seen(ctx, keys)
	if err != nil {
		return res, transient("dedupe lookup", err)
	}

	// Resolve accounts in message order, learning memberships as we go.
	members := map[string]string{} // user key → account, as known now
	stored := map[string]string{}  // user key → account, as stored before this batch
	lookup := func(user string) (string, error) {
		if acct, ok := members[user]; ok {
			return acct, nil
		}
		acct, err := s.Store.Link(ctx, userLink(user))
		if err != nil {
			return "", transient("membership lookup", err)
		}
		members[user], stored[user] = acct, acct
		return acct, nil
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].msg.At.Before(msgs[j].msg.At) })
	var held []*parsed
	byAccount := map[string][]*parsed{}
	var order []string
	for _, p := range msgs {
		if seen[p.key] {
			res.Duplicate++
			continue
		}
		users := userKeys(&p.msg)
		p.acct = p.msg.Account()
		for _, u := range users {
			if p.acct != "" {
				break
			}
			acct, err := lookup(u)
			if err != nil {
				return res, err
			}
			p.acct = acct
		}
		if p.acct == "" {
			held = append(held, p)
			continue
		}
		for _, u := range users {
			if _, err := lookup(u); err != nil {
				return res, err
			}
			members[u] = p.acct
		}
		if _, ok := byAccount[p.acct]; !ok {
			order = append(order, p.acct)
		}
		byAccount[p.acct] = append(byAccount[p.acct], p)
	}

	for _, acct := range order {
		parts := split(byAccount[acct])
		for i, part := range parts {
			n, dup, err := s.applyMessages(ctx, acct, part, members, stored, now, i < len(parts)-1)
			res.Applied += n
			res.Duplicate += dup
			if err != nil {
				return res, err
			}
		}
	}
	for u, acct := range members {
		if acct != "" && acct != stored[u] {
			if err := s.releaseHeld(ctx, u, acct, now); err != nil {
				return res, err
			}
		}
	}
	for _, p := range held {
		ok, err := s.hold(ctx, p, now)
		if err != nil {
			return res, err
		}
		if !ok {
			res.Rejected++
			res.Errors = append(res.Errors, MessageError{MessageID: string(p.msg.MessageID), Error: "too many messages held for this user; identify the user's account first"})
			continue
		}
		res.Held++
	}
	return res, nil
}

// userKeys are the membership keys of a message's user: its userId and its anonymousId.
func userKeys(m *usage.Message) []string {
	var out []string
	if m.UserID != "" {
		out = append(out, string(m.UserID))
	}
	if m.AnonymousID != "" {
		out = append(out, "anon:"+string(m.AnonymousID))
	}
	return out
}

// split cuts one account's messages into commits of at most chunk messages, starting a new
// one at every group call that links a Stripe customer, so each commit links at most one.
func split(ps []*parsed) [][]*parsed {
	var out [][]*parsed
	var cur []*parsed
	for _, p := range ps {
		if len(cur) == chunk || (len(cur) > 0 && p.msg.StripeCustomer() != "") {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, p)
	}
	return append(out, cur)
}

// applyMessages commits one chunk of messages to account acct.
func (s *Service) applyMessages(ctx context.Context, acct string, ps []*parsed, members, stored map[string]string, now time.Time, deferScore bool) (applied, duplicate int, err error) {
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = p.key
	}
	out, err := s.run(ctx, write{
		keys:       keys,
		deferScore: deferScore,
		occurred:   newestAt(ps),
		resolve: func(ctx context.Context) (plan, error) {
			p := plan{target: acct}
			if cus := ps[0].msg.StripeCustomer(); cus != "" {
				var err error
				if p, err = s.resolveCustomer(ctx, cus, acct); err != nil {
					return p, err
				}
			}
			linked := map[string]bool{}
			for _, m := range ps {
				for _, u := range userKeys(&m.msg) {
					if members[u] == acct && stored[u] != acct && !linked[u] {
						linked[u] = true
						p.links = append(p.links, store.Link{Key: userLink(u), Account: acct, Force: true})
					}
				}
			}
			return p, nil
		},
		apply: func(a *account.Account, fresh map[string]bool, _ *store.Tx) error {
			for _, p := range ps {
				if fresh[p.key] {
					usage.Apply(a, &p.msg, s.Scorecard.Events)
				}
			}
			return nil
		},
	}, now)
	if err != nil {
		return 0, 0, err
	}
	return len(out.applied), len(out.duplicate), nil
}

// hold keeps a message whose account is unknown; false when the user's queue is full.
func (s *Service) hold(ctx context.Context, p *parsed, now time.Time) (bool, error) {
	user := userKeys(&p.msg)[0]
	existing, err := s.Store.Held(ctx, user)
	if err != nil {
		return false, transient("held lookup", err)
	}
	if len(existing) >= MaxHeldPerUser {
		return false, nil
	}
	h := store.Held{User: user, MessageID: string(p.msg.MessageID), Body: p.raw, At: now.UTC(), Expires: now.Add(HeldTTL)}
	if err := s.Store.Hold(ctx, h); err != nil {
		return false, transient("hold", err)
	}
	// The user's account may have become known while we held: release what waits.
	acct, err := s.Store.Link(ctx, userLink(user))
	if err != nil {
		return false, transient("membership lookup", err)
	}
	if acct != "" {
		return true, s.releaseHeld(ctx, user, acct, now)
	}
	return true, nil
}

// releaseHeld applies every message held for user to account acct and deletes it, until
// none is left (a concurrent request may hold more while we release). now is the time of the
// request that made the account known.
func (s *Service) releaseHeld(ctx context.Context, user, acct string, now time.Time) error {
	for round := 0; round < 100; round++ {
		hs, err := s.Store.Held(ctx, user)
		if err != nil {
			return transient("held lookup", err)
		}
		if len(hs) == 0 {
			return nil
		}
		if len(hs) > chunk {
			hs = hs[:chunk]
		}
		keys := make([]string, len(hs))
		msgs := make([]usage.Message, len(hs))
		for i, h := range hs {
			keys[i] = "msg:" + h.MessageID
			m, err := usage.Parse(h.Body, h.At)
			if err != nil {
				return &Error{Op: "release held", Kind: KindInternal, Err: fmt.Errorf("held message %s: %w", h.MessageID, err)}
			}
			msgs[i] = m
		}
		_, err = s.run(ctx, write{
			keys:    keys,
			always:  true,
			resolve: func(context.Context) (plan, error) { return plan{target: acct}, nil },
			apply: func(a *account.Account, fresh map[string]bool, tx *store.Tx) error {
				for i := range msgs {
					if fresh[keys[i]] {
						usage.Apply(a, &msgs[i], s.Scorecard.Events)
					}
				}
				tx.Release = hs
				return nil
			},
		}, now)
		if err != nil {
			return err
		}
		s.logger().Info("released held messages", "account", acct, "count", len(hs))
	}
	return nil
}

// newestAt is the time of the newest message of a commit: when its facts happened.
func newestAt(ps []*parsed) (t time.Time) {
	for _, p := range ps {
		if p.msg.At.After(t) {
			t = p.msg.At
		}
	}
	return t
}
