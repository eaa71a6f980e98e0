package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/usage"
)

// MaxHeldBody bounds, in bytes, a message held until its user's account is known.
const MaxHeldBody = 32 << 10

// txReserve is the room a product commit keeps beside its messages' markers: the account, a
// folded placeholder and its tombstone, a Stripe link, outbox events.
const txReserve = 10

// ProductResult counts what happened to the messages of one request.
type ProductResult struct {
	Applied   int `json:"applied"`
	Duplicate int `json:"duplicate"`
	Held      int `json:"held"`
	Rejected  int `json:"rejected"`
	Ignored   int `json:"ignored"`
	// Deleted counts Segment delete messages carried out: the membership of the user each
	// names and the messages held for it are gone (a user never seen has nothing to remove).
	Deleted int            `json:"deleted"`
	Errors  []MessageError `json:"errors"`
	// Failed lists the indexes of messages that were not committed because a dependency failed;
	// the request's error says why. Every other message is final (applied, duplicate, held,
	// rejected or ignored), so a queue consumer retries only these.
	Failed []int `json:"-"`
	// unattributed is set when something failed that no single message stands for (releasing
	// held messages, marking a membership): a queue consumer then retries every message.
	unattributed bool
	// Accounts are the accounts the request wrote to, in first-touched order.
	Accounts []string `json:"-"`
}

// MessageError reports one message that was rejected or ignored, or a claim that was refused.
type MessageError struct {
	Index     int    `json:"index"`
	MessageID string `json:"messageId,omitempty"`
	Error     string `json:"error"`
	// Warning marks an entry about a message that was still accepted (e.g. an unreadable
	// timestamp replaced by receipt time); it does not count as rejected.
	Warning bool `json:"warning,omitempty"`
}

// Valid reports whether any message was accepted (applied, duplicate, held, ignored or deleted).
func (r ProductResult) Valid() bool {
	return r.Applied+r.Duplicate+r.Held+r.Ignored+r.Deleted > 0 || len(r.Failed) > 0
}

type parsed struct {
	index    int
	msg      usage.Message
	raw      json.RawMessage
	received time.Time
	key      string
	acct     string
}

// Incoming is a product message as received: its bytes and when it arrived (a queued message
// is applied later than it was received, and its receipt time is what counts).
type Incoming struct {
	Raw      json.RawMessage
	Received time.Time
}

// Envelope is what the product webhook enqueues on AWS: the accepted messages of one request
// and when they were received. One queue message carries one envelope.
type Envelope struct {
	Received time.Time         `json:"received"`
	Messages []json.RawMessage `json:"messages"`
}

// Queued applies the envelopes of one queue batch together: each account is written once for
// the whole batch. failed lists the indexes of envelopes holding a message that was not
// committed; every other envelope is done and may be deleted from the queue.
func (s *Service) Queued(ctx context.Context, envs []Envelope) (res ProductResult, failed []int, err error) {
	var ins []Incoming
	var owner []int // message index → envelope index
	for i, e := range envs {
		for _, raw := range e.Messages {
			ins = append(ins, Incoming{Raw: raw, Received: e.Received})
			owner = append(owner, i)
		}
	}
	res, err = s.product(ctx, ins)
	for _, idx := range res.Failed {
		failed = append(failed, owner[idx])
	}
	if err != nil && (len(res.Failed) == 0 || res.unattributed) { // a failure no message stands for: retry the whole batch
		for i := range envs {
			failed = append(failed, i)
		}
	}
	return res, uniqueInts(failed), err
}

// Product applies a batch of Segment-spec messages received at now. Each messageId counts
// once whatever the shape of the batch it arrives in; a message whose account cannot be
// resolved yet is held until its user's account becomes known. Dedupe markers and user links
// are read once for the whole request, and each account is written once (more only when its
// messages do not fit one transaction). A failing account does not stop the others: its
// messages are listed in Failed and the first error is returned.
func (s *Service) Product(ctx context.Context, raws []json.RawMessage, now time.Time) (ProductResult, error) {
	ins := make([]Incoming, len(raws))
	for i, raw := range raws {
		ins[i] = Incoming{Raw: raw, Received: now}
	}
	return s.product(ctx, ins)
}

// product applies messages received at their own times, scoring as of the latest.
func (s *Service) product(ctx context.Context, ins []Incoming) (ProductResult, error) {
	res := ProductResult{Errors: []MessageError{}}
	var now time.Time
	for _, in := range ins {
		if in.Received.After(now) {
			now = in.Received
		}
	}
	var msgs []*parsed
	type deletion struct {
		index int
		msg   usage.Message
	}
	var deletes []deletion
	inBatch := map[string]bool{}
	for i, in := range ins {
		raw := in.Raw
		m, del, v, notes := read(i, raw, in.Received)
		res.Errors = append(res.Errors, notes...)
		switch {
		case v == ignored:
			res.Ignored++
			continue
		case v == rejected:
			res.Rejected++
			continue
		case del:
			deletes = append(deletes, deletion{index: i, msg: m})
			continue
		}
		key := "msg:" + string(m.MessageID)
		if inBatch[key] {
			res.Duplicate++
			continue
		}
		inBatch[key] = true
		msgs = append(msgs, &parsed{index: i, msg: m, raw: raw, received: in.Received, key: key})
	}
	var firstErr error
	fail := func(err error, ps ...*parsed) {
		// The request's error is the most retryable one: a transient failure anywhere means
		// the sender must retry (what was applied is a duplicate then), even if another
		// account's write can never succeed.
		retryable := func(e error) bool { k := fault.KindOf(e); return k == fault.Transient || k == fault.Conflict }
		if firstErr == nil || (retryable(err) && !retryable(firstErr)) {
			firstErr = err
		}
		for _, p := range ps {
			res.Failed = append(res.Failed, p.index)
		}
		if len(ps) == 0 {
			res.unattributed = true // a release or a mark: no message of its own to retry
		}
	}
	if len(msgs) > 0 {
		if err := s.applyProduct(ctx, msgs, now, &res, fail); err != nil {
			fail(err, msgs...)
			for _, d := range deletes { // not attempted: they must come again too
				res.Failed = append(res.Failed, d.index)
			}
			res.Failed = uniqueInts(res.Failed)
			return res, err
		}
	}
	for _, d := range deletes {
		if err := s.forget(ctx, userKeys(&d.msg)); err != nil {
			fail(err)
			res.Failed = append(res.Failed, d.index)
			continue
		}
		res.Deleted++
	}
	res.Failed = uniqueInts(res.Failed)
	return res, firstErr
}

// applyProduct resolves, commits and holds msgs (none a duplicate within the request).
func (s *Service) applyProduct(ctx context.Context, msgs []*parsed, now time.Time, res *ProductResult, fail func(error, ...*parsed)) error {
	keys := make([]string, len(msgs))
	var users []string
	for i, p := range msgs {
		keys[i] = p.key
		for _, u := range userKeys(&p.msg) {
			users = append(users, userLink(u))
		}
	}
	links, err := s.Store.Links(ctx, users)
	if err != nil {
		return fault.Dependency("membership lookup", err)
	}
	stored := map[string]string{} // user → account, as stored before this request
	pending := map[string]bool{}  // users whose release an earlier request left unfinished
	for k, t := range links {
		u := strings.TrimPrefix(k, "user:")
		stored[u], pending[u] = t.Account, t.Pending
	}
	seen, err := s.seenBefore(ctx, msgs, keys, stored)
	if err != nil {
		return err
	}

	// Resolve accounts in message order, learning memberships as we go.
	members := map[string]string{}
	for u, a := range stored {
		members[u] = a
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].msg.At.Before(msgs[j].msg.At) })
	var held []*parsed
	byAccount := map[string][]*parsed{}
	var order []string
	for _, p := range msgs {
		users := userKeys(&p.msg)
		if seen[p.key] {
			res.Duplicate++
			continue
		}
		p.acct = p.msg.Account()
		for _, u := range users {
			if p.acct == "" {
				p.acct = members[u]
			}
		}
		if p.acct == "" {
			held = append(held, p)
			continue
		}
		for _, u := range users {
			members[u] = p.acct
		}
		if _, ok := byAccount[p.acct]; !ok {
			order = append(order, p.acct)
		}
		byAccount[p.acct] = append(byAccount[p.acct], p)
	}

	for _, acct := range order {
		parts := split(byAccount[acct], false)
		for i := 0; i < len(parts); i++ {
			part := parts[i]
			n, dup, refused, err := s.applyMessages(ctx, acct, part, members, stored, seen, now, i < len(parts)-1)
			if errors.Is(err, errReceiptsFull) && len(part) > 1 {
				// Full receipts spill into a marker a message: commit this part in smaller ones.
				parts = slices.Concat(parts[:i], split(part, true), parts[i+1:])
				i--
				continue
			}
			if err != nil {
				for _, rest := range parts[i:] {
					fail(err, rest...)
				}
				break
			}
			res.Applied += n
			res.Duplicate += dup
			if refused != "" {
				res.Errors = append(res.Errors, MessageError{Index: part[0].index, MessageID: string(part[0].msg.MessageID), Error: refused})
			}
			if i == 0 {
				res.Accounts = append(res.Accounts, acct)
			}
		}
	}
	// Release what waits for users whose account this request made known (their new link is
	// marked pending until the release is done), and for users whose link says an earlier
	// release did not finish; then clear the mark.
	person := map[string]string{} // an anonymous id → the userId this request tied it to
	for _, p := range msgs {
		if p.msg.UserID != "" && p.msg.AnonymousID != "" {
			person["anon:"+string(p.msg.AnonymousID)] = string(p.msg.UserID)
		}
	}
	releaseUsers := make([]string, 0, len(members))
	for u, acct := range members {
		if acct != "" && (acct != stored[u] || pending[u]) {
			releaseUsers = append(releaseUsers, u)
		}
	}
	sort.Strings(releaseUsers)
	var released []store.Link
	for _, u := range releaseUsers {
		marked, err := s.releaseHeld(ctx, u, person[u], members[u], now)
		if err != nil {
			fail(err)
			continue
		}
		released = append(released, marked...)
	}
	if err := s.clearPending(ctx, released); err != nil {
		fail(err)
	}
	s.holdAll(ctx, held, now, res, fail)
	return nil
}

// verdict is what becomes of a message as read.
type verdict int

const (
	accepted verdict = iota
	ignored          // a type that is not applied (alias): acknowledged
	rejected         // invalid: it never will be
)

// read classifies message i, received at received: a Segment delete (accepted when it names a
// user), a message to apply, one of a type not applied, or an invalid one. notes are the errors
// and warnings to report at its index. Product and Accept read messages the same way, so a
// sender hears the same answer whether its messages are applied now or queued.
func read(i int, raw json.RawMessage, received time.Time) (m usage.Message, del bool, v verdict, notes []MessageError) {
	if d, ok := deleteMessage(raw); ok {
		if d.UserID == "" && d.AnonymousID == "" {
			return d, true, rejected, []MessageError{{Index: i, MessageID: string(d.MessageID), Error: "delete needs a userId or anonymousId"}}
		}
		return d, true, accepted, nil
	}
	m, err := usage.Parse(raw, received)
	var unsupported *usage.UnsupportedError
	switch {
	case errors.As(err, &unsupported):
		return m, false, ignored, []MessageError{{Index: i, MessageID: string(m.MessageID), Error: err.Error()}}
	case err != nil:
		return m, false, rejected, []MessageError{{Index: i, MessageID: string(m.MessageID), Error: err.Error()}}
	}
	for _, w := range m.Warnings {
		notes = append(notes, MessageError{Index: i, MessageID: string(m.MessageID), Error: w, Warning: true})
	}
	return m, false, accepted, notes
}

// deleteMessage recognizes Segment's delete message, which asks to forget a user.
func deleteMessage(raw json.RawMessage) (usage.Message, bool) {
	var m usage.Message
	var probe struct {
		Type string `json:"type"`
	}
	if !bytes.Contains(raw, []byte(`elete"`)) || json.Unmarshal(raw, &probe) != nil || !strings.EqualFold(probe.Type, "delete") {
		return m, false
	}
	_ = json.Unmarshal(raw, &m) // a malformed delete names no user: rejected by the caller
	return m, true
}

// forget removes users' memberships and the messages held for them.
func (s *Service) forget(ctx context.Context, users []string) error {
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = userLink(u)
	}
	links, err := s.Store.Links(ctx, keys)
	if err != nil {
		return fault.Dependency("membership lookup", err)
	}
	for i, u := range users {
		hs, err := s.Store.Held(ctx, u)
		if err != nil {
			return fault.Dependency("held lookup", err)
		}
		_, linked := links[keys[i]]
		if !linked && len(hs) == 0 {
			continue
		}
		for len(hs) > 0 || linked {
			tx := store.Tx{}
			if linked {
				tx.Unlink, linked = []string{keys[i]}, false
			}
			k := min(len(hs), store.MaxTxItems-1)
			tx.Release, hs = hs[:k], hs[k:]
			if err := s.Store.Commit(ctx, tx); err != nil {
				return fault.Dependency("forget user", err)
			}
		}
		s.logger().Info("forgot a user on a Segment delete message")
	}
	return nil
}

// holdAll keeps messages whose account is unknown, per user up to MaxHeldPerUser: the oldest
// are kept and the newest beyond the cap rejected, each reported at its own index.
func (s *Service) holdAll(ctx context.Context, held []*parsed, now time.Time, res *ProductResult, fail func(error, ...*parsed)) {
	byUser := map[string][]*parsed{}
	var users []string
	for _, p := range held {
		u := userKeys(&p.msg)[0]
		if _, ok := byUser[u]; !ok {
			users = append(users, u)
		}
		byUser[u] = append(byUser[u], p) // already in time order
	}
	for _, u := range users {
		ps := byUser[u]
		n, err := s.Store.HeldCount(ctx, u)
		if err != nil {
			fail(fault.Dependency("held count", err), ps...)
			continue
		}
		room := max(MaxHeldPerUser-n, 0)
		for i, p := range ps {
			if len(p.raw) > MaxHeldBody {
				res.Rejected++
				res.Errors = append(res.Errors, MessageError{Index: p.index, MessageID: string(p.msg.MessageID),
					Error: fmt.Sprintf("message of %d bytes is over the %d bytes a message waiting for its user's account may have; identify the user's account first", len(p.raw), MaxHeldBody)})
				room++ // not held: it takes no room
				continue
			}
			if i >= room {
				res.Rejected++
				res.Errors = append(res.Errors, MessageError{Index: p.index, MessageID: string(p.msg.MessageID),
					Error: fmt.Sprintf("%d messages are already held for this user; identify the user's account first", MaxHeldPerUser)})
				continue
			}
			h := store.Held{User: u, MessageID: string(p.msg.MessageID), Body: withoutWriteKey(p.raw), At: p.received.UTC(), Expires: p.received.Add(HeldTTL)}
			if err := s.Store.Hold(ctx, h); err != nil {
				fail(fault.Dependency("hold", err), ps[i:min(len(ps), room)]...)
				break
			}
			res.Held++
		}
		// The user's account may have become known while we held: release what waits, marking
		// the link pending first so a failed release is finished by the user's next request.
		links, err := s.Store.Links(ctx, []string{userLink(u)})
		if err != nil {
			fail(fault.Dependency("membership lookup", err))
			continue
		}
		t := links[userLink(u)]
		if t.Account == "" {
			continue // whichever request links the user releases what waits
		}
		if !t.Pending {
			mark := store.Tx{Links: []store.Link{{Key: userLink(u), Account: t.Account, Pending: true, Expect: t.Account}}}
			if err := s.Store.Commit(ctx, mark); err != nil && !errors.Is(err, store.ErrConflict) {
				fail(fault.Dependency("mark pending release", err))
				continue
			}
		}
		marked, err := s.releaseHeld(ctx, u, "", t.Account, now)
		if err == nil {
			err = s.clearPending(ctx, marked)
		}
		if err != nil {
			fail(err)
		}
	}
}

// withoutWriteKey drops a top-level writeKey (Segment's HTTP API puts the secret in the body)
// from a message before it is stored, so the product secret never rests in the store.
func withoutWriteKey(raw json.RawMessage) json.RawMessage {
	if !bytes.Contains(raw, []byte(`"writeKey"`)) {
		return raw
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	delete(m, "writeKey")
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(m) != nil {
		return raw
	}
	return bytes.TrimRight(b.Bytes(), "\n")
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

// maxPerCommit bounds the messages of one commit, so a conflict retries a bounded amount.
const maxPerCommit = 500

// split cuts one account's messages into as few commits as fit a transaction, starting a new
// one at every group call that links a Stripe customer, so each commit links at most one. A
// commit writes a receipt per minute its messages fall in, a marker per message without a
// time of its own, and a membership link per new user; perMessage counts an item for every
// message instead, for the rare commit whose receipts are full and spill into markers.
func split(ps []*parsed, perMessage bool) [][]*parsed {
	var out [][]*parsed
	var cur []*parsed
	users := map[string]bool{}
	buckets := map[int64]bool{}
	marked := 0
	for _, p := range ps {
		keys := userKeys(&p.msg)
		n := 0 // items p adds
		for _, u := range keys {
			if !users[u] {
				n++
			}
		}
		m, packed := markOf(&p.msg)
		if perMessage || !packed || !buckets[m.bucket] {
			n++
		}
		items := len(users) + len(buckets) + marked
		if perMessage {
			items = len(users) + len(cur)
		}
		if len(cur) > 0 && (items+n > store.MaxTxItems-txReserve || len(cur) == maxPerCommit || p.msg.StripeCustomer() != "") {
			out = append(out, cur)
			cur, users, buckets, marked = nil, map[string]bool{}, map[int64]bool{}, 0
		}
		cur = append(cur, p)
		for _, u := range keys {
			users[u] = true
		}
		if packed {
			buckets[m.bucket] = true
		} else {
			marked++
		}
	}
	return append(out, cur)
}

// applyMessages commits one part of an account's messages. seen is the request's dedupe
// lookup, used on the first attempt; refused says why a Stripe customer claim was not linked.
func (s *Service) applyMessages(ctx context.Context, acct string, ps []*parsed, members, stored map[string]string, seen map[string]bool, now time.Time, deferScore bool) (applied, duplicate int, refused string, err error) {
	keys := make([]string, len(ps))
	expires := make(map[string]time.Time, len(ps))
	packed := make(map[string]mark, len(ps))
	for i, p := range ps {
		keys[i] = p.key
		expires[p.key] = p.msg.Expiry(p.received, MarkerTTL)
		if m, ok := markOf(&p.msg); ok {
			packed[p.key] = m
		}
	}
	out, err := s.run(ctx, write{
		keys:       keys,
		expires:    expires,
		packed:     packed,
		seen:       seen,
		deferScore: deferScore,
		occurred:   newestAt(ps),
		resolve: func(ctx context.Context) (plan, error) {
			p := plan{target: acct}
			if cus := ps[0].msg.StripeCustomer(); cus != "" {
				var err error
				if p, err = s.claim(ctx, cus, acct, store.SourceGroup, groupOrder(ps[0].msg.At)); err != nil {
					return p, err
				}
				refused = p.refused
			}
			linked := map[string]bool{}
			for _, m := range ps {
				for _, u := range userKeys(&m.msg) {
					if members[u] == acct && stored[u] != acct && !linked[u] {
						linked[u] = true
						p.links = append(p.links, store.Link{Key: userLink(u), Account: acct, Pending: true, Force: true})
					}
				}
			}
			return p, nil
		},
		apply: func(a *account.Account, fresh map[string]bool, _ *store.Tx) error {
			for _, p := range ps {
				if fresh[p.key] {
					s.applyMessage(a, &p.msg, now)
				}
			}
			return nil
		},
	}, now)
	if err != nil {
		return 0, 0, "", err
	}
	return len(out.applied), len(out.duplicate), refused, nil
}

// releaseHeld applies every message held for user to account acct and deletes it, until
// none is left (a concurrent request may hold more while we release). now is the time of the
// request that made the account known. It is safe to run again: a released message is gone,
// and one applied but not released is a duplicate. A released message that names another id
// of the same person (an identify carrying userId and anonymousId) makes that id a member of
// acct too, and releases what waits for it.
func (s *Service) releaseHeld(ctx context.Context, user, person, acct string, now time.Time) (marked []store.Link, err error) {
	queue, done := []alias{{key: user, person: person}}, map[string]bool{user: true}
	marked = []store.Link{{Key: userLink(user), Account: acct, Expect: acct}}
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		others, err := s.releaseUser(ctx, w.key, w.person, acct, now)
		if err != nil {
			return nil, err
		}
		for _, o := range others {
			if !done[o.key] && len(done) < MaxHeldPerUser {
				done[o.key] = true
				queue = append(queue, o)
				marked = append(marked, store.Link{Key: userLink(o.key), Account: acct, Expect: acct})
			}
		}
	}
	return marked, nil
}

// clearPending records that nothing waits any more for the links given (written unmarked, on
// condition they still point where they did: a conflict means the id moved meanwhile, and its
// new link says what is due).
func (s *Service) clearPending(ctx context.Context, links []store.Link) error {
	for len(links) > 0 {
		k := min(len(links), store.MaxTxItems)
		tx := store.Tx{Links: links[:k]}
		links = links[k:]
		if err := s.Store.Commit(ctx, tx); err != nil && !errors.Is(err, store.ErrConflict) {
			return fault.Dependency("release done", err)
		}
	}
	return nil
}

// alias is another id of a person named by a released message: key is its membership key,
// person the userId it belongs to.
type alias struct{ key, person string }

// releaseUser releases what waits for one user key and returns the other ids the released
// messages named, which it links to acct in the same commits. person, when set, is the userId
// the key turned out to belong to: its anonymous messages count as that user's.
func (s *Service) releaseUser(ctx context.Context, user, person, acct string, now time.Time) ([]alias, error) {
	var others []alias
	for round := 0; round < 100; round++ {
		hs, err := s.Store.Held(ctx, user)
		if err != nil {
			return others, fault.Dependency("held lookup", err)
		}
		if len(hs) == 0 {
			return others, nil
		}
		// Each released message costs a marker and a delete, and may link one more id.
		var keys []string
		var dropped []store.Held
		var msgs []usage.Message
		expires := map[string]time.Time{}
		packed := map[string]mark{}
		var links []store.Link
		for i, h := range hs {
			if 2*len(keys)+len(dropped)+len(links)+3 > store.MaxTxItems-txReserve {
				hs = hs[:i]
				break
			}
			m, err := usage.Parse(h.Body, h.At)
			if err != nil {
				// Cannot happen for a message Parse accepted when it was held; if it does (a
				// stored body damaged, a parser changed), drop it rather than block the user.
				s.logger().Error("dropping a held message that no longer parses", "message_id", h.MessageID, "err", err)
				dropped = append(dropped, h)
				continue
			}
			if m.UserID == "" && person != "" {
				m.UserID = usage.ID(person) // released as the person the anonymous id turned out to be
			}
			key := "msg:" + h.MessageID
			keys, msgs = append(keys, key), append(msgs, m)
			expires[key] = m.Expiry(now, MarkerTTL)
			if mk, ok := markOf(&m); ok {
				packed[key] = mk
			}
			for _, u := range userKeys(&m) {
				if u != user && u != person && !slices.ContainsFunc(others, func(a alias) bool { return a.key == u }) {
					others = append(others, alias{key: u, person: string(m.UserID)})
					links = append(links, store.Link{Key: userLink(u), Account: acct, Pending: true, Force: true})
				}
			}
		}
		_, err = s.run(ctx, write{
			keys:    keys,
			expires: expires,
			packed:  packed,
			always:  true,
			resolve: func(context.Context) (plan, error) { return plan{target: acct, links: links}, nil },
			apply: func(a *account.Account, fresh map[string]bool, tx *store.Tx) error {
				for i := range msgs {
					if fresh[keys[i]] {
						s.applyMessage(a, &msgs[i], now)
					}
				}
				tx.Release = hs
				return nil
			},
		}, now)
		if err != nil {
			return others, err
		}
		s.logger().Info("released held messages", "account", acct, "count", len(hs))
	}
	return others, nil
}

// markOf is how m's delivery is recorded: in the receipt of its timestamp's bucket, unless it
// carries no time of its own (a replay would get another receipt time, so another bucket):
// such a message keeps a marker of its own.
func markOf(m *usage.Message) (mark, bool) {
	if m.Received {
		return mark{}, false
	}
	return mark{bucket: store.BucketOf(m.At), id: store.ReceiptID(string(m.MessageID))}, true
}

// seenBefore looks up which of msgs (keys[i] is msgs[i]'s) were applied already, before their
// accounts are resolved, so a duplicate teaches no membership: markers for messages without a
// time of their own, receipts of the account each message names or its user is linked to for
// the rest. It is a first look; each commit checks again after reading its account.
func (s *Service) seenBefore(ctx context.Context, msgs []*parsed, keys []string, stored map[string]string) (map[string]bool, error) {
	var markerKeys []string
	var rkeys []store.ReceiptKey
	type where struct {
		rk store.ReceiptKey
		id uint64
	}
	tentative := map[string]where{}
	for i, p := range msgs {
		m, ok := markOf(&p.msg)
		if !ok {
			markerKeys = append(markerKeys, keys[i])
			continue
		}
		acct := p.msg.Account()
		for _, u := range userKeys(&p.msg) {
			if acct == "" {
				acct = stored[u]
			}
		}
		if acct == "" {
			continue
		}
		rk := store.ReceiptKey{Account: acct, Bucket: m.bucket}
		tentative[keys[i]] = where{rk, m.id}
		rkeys = append(rkeys, rk)
	}
	seen := map[string]bool{}
	if len(markerKeys) > 0 {
		var err error
		if seen, err = s.Store.Seen(ctx, markerKeys); err != nil {
			return nil, fault.Dependency("dedupe lookup", err)
		}
	}
	if len(rkeys) > 0 {
		recs, err := s.Store.Received(ctx, rkeys)
		if err != nil {
			return nil, fault.Dependency("dedupe lookup", err)
		}
		for k, w := range tentative {
			if r, ok := recs[w.rk]; ok && r.Has(w.id) {
				seen[k] = true
			}
		}
	}
	return seen, nil
}

// applyMessage applies m to a. A message from beyond usage.Horizon may have outlived its
// dedupe marker, so it changes only what applying it twice would not.
func (s *Service) applyMessage(a *account.Account, m *usage.Message, now time.Time) {
	if usage.Countable(m.At, now) {
		usage.Apply(a, m, s.Scorecard.Events)
		return
	}
	usage.Replayed(a, m, s.Scorecard.Events)
}

func uniqueInts(xs []int) []int {
	sort.Ints(xs)
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
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
