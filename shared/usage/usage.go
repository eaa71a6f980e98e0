// Package usage maps Segment-spec messages (track, identify, group, page, screen) to account
// changes: activity, distinct users, key features, seats, onboarding milestones, support
// tickets and NPS. Event names come from the scorecard, with the B2B SaaS spec as default.
package usage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/score"
)

// Message is one Segment-spec message, with the fields this product reads.
type Message struct {
	Type        string         `json:"type"`
	MessageID   ID             `json:"messageId"`
	UserID      ID             `json:"userId"`
	AnonymousID ID             `json:"anonymousId"`
	GroupID     ID             `json:"groupId"`
	Event       string         `json:"event"`
	Name        string         `json:"name"`
	Properties  map[string]any `json:"properties"`
	Traits      map[string]any `json:"traits"`
	Context     struct {
		GroupID ID             `json:"groupId"`
		Traits  map[string]any `json:"traits"`
	} `json:"context"`
	Timestamp Time `json:"timestamp"`
	// OriginalTimestamp and SentAt are the device's clock; used when timestamp is absent.
	OriginalTimestamp Time `json:"originalTimestamp"`
	SentAt            Time `json:"sentAt"`
	// At is the time the message is applied at: its timestamp, clamped to receipt time.
	At time.Time `json:"-"`
	// Received is set when At is the receipt time (no time of its own, or one in the future):
	// a replay of the message then looks new, so only its dedupe marker can tell.
	Received bool `json:"-"`
	// Warnings say what Parse had to repair (an unreadable timestamp); the message still counts.
	Warnings []string `json:"-"`
}

// ID is an identifier the sender may encode as a JSON string or number.
type ID string

// UnmarshalJSON accepts a string, a number or null.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*id = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id must be a string or number")
	}
	*id = ID(n.String())
	return nil
}

// Time is an ISO-8601 timestamp as the Segment libraries write it.
type Time struct {
	time.Time
	// Bad holds a value that is not a readable timestamp (zero Time then); Parse falls back
	// and warns instead of rejecting the message.
	Bad string
}

// UnmarshalJSON accepts RFC 3339 with or without fractional seconds or zone, or null. Any
// other value leaves the time zero and is kept in Bad.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if string(b) == "null" {
		return nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Bad = account.Clip(string(b), 64)
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	t.Bad = account.Clip(s, 64)
	return nil
}

// Errors a message can be rejected with.
var (
	ErrNoMessageID = errors.New("messageId is required")
	ErrNoUser      = errors.New("userId or anonymousId is required")
	ErrNoEvent     = errors.New("track needs an event name")
	ErrNoGroup     = errors.New("group needs a groupId")
	ErrNoType      = errors.New("type is required")
	ErrLongID      = errors.New("messageId, userId, anonymousId, groupId and the account id of traits (company.id, accountId) must be at most 256 bytes")
)

// maxID bounds identifiers, which become store keys, in bytes. Names and trait values are
// cut to account.MaxString bytes.
const maxID = 256

// UnsupportedError reports a message type that is acknowledged but not applied (alias, or
// a type the spec does not define).
type UnsupportedError struct{ Type string }

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("message type %q is not applied", e.Type)
}

// Split returns the messages of a body: one object, a bare JSON array (Segment Webhooks
// batching) or {"batch":[…]} (the Segment and RudderStack libraries, Segment's HTTP API). A
// batch-level "context" applies to every message of the batch, for the fields the message
// does not set itself.
func Split(body []byte) ([]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errors.New("empty body")
	}
	switch body[0] {
	case '[':
		var msgs []json.RawMessage
		if err := json.Unmarshal(body, &msgs); err != nil {
			return nil, fmt.Errorf("malformed JSON array: %w", err)
		}
		return msgs, nil
	case '{':
		var probe struct {
			Batch   *[]json.RawMessage `json:"batch"`
			Context json.RawMessage    `json:"context"`
		}
		if err := json.Unmarshal(body, &probe); err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		if probe.Batch != nil {
			return withContext(*probe.Batch, readContext(probe.Context)), nil
		}
		return []json.RawMessage{body}, nil
	}
	return nil, errors.New("malformed JSON: body must be an object or an array")
}

// readContext keeps, of a batch-level context, only what a message's own context is read
// for (groupId, and the traits company.id and accountId): copied into every message of a
// batch, a whole context (a long userAgent, a library block) would multiply a body's size by
// its message count.
func readContext(raw json.RawMessage) json.RawMessage {
	var c struct {
		GroupID json.RawMessage `json:"groupId,omitempty"`
		Traits  struct {
			Company *struct {
				ID json.RawMessage `json:"id,omitempty"`
			} `json:"company,omitempty"`
			AccountID json.RawMessage `json:"accountId,omitempty"`
		} `json:"traits"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &c) != nil {
		return nil
	}
	out := map[string]any{}
	if len(c.GroupID) > 0 {
		out["groupId"] = c.GroupID
	}
	traits := map[string]any{}
	if c.Traits.Company != nil && len(c.Traits.Company.ID) > 0 {
		traits["company"] = map[string]any{"id": c.Traits.Company.ID}
	}
	if len(c.Traits.AccountID) > 0 {
		traits["accountId"] = c.Traits.AccountID
	}
	if len(traits) > 0 {
		out["traits"] = traits
	}
	if len(out) == 0 {
		return nil
	}
	b, _ := json.Marshal(out)
	return b
}

// withContext merges a batch-level context into each message's context, the message's own
// fields winning. A message that is not an object is left as it is (Parse rejects it).
func withContext(msgs []json.RawMessage, ctx json.RawMessage) []json.RawMessage {
	var shared map[string]json.RawMessage
	if len(ctx) == 0 || json.Unmarshal(ctx, &shared) != nil || len(shared) == 0 {
		return msgs
	}
	out := make([]json.RawMessage, len(msgs))
	for i, raw := range msgs {
		out[i] = raw
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m == nil {
			continue
		}
		merged, ok := mergeObjects(m["context"], shared)
		if !ok {
			continue
		}
		m["context"] = merged
		if b, err := json.Marshal(m); err == nil {
			out[i] = b
		}
	}
	return out
}

// mergeObjects returns own with every field of shared it lacks, recursively for objects both
// have; false when own is present but not an object.
func mergeObjects(own json.RawMessage, shared map[string]json.RawMessage) (json.RawMessage, bool) {
	m := map[string]json.RawMessage{}
	if len(own) > 0 && string(own) != "null" {
		if err := json.Unmarshal(own, &m); err != nil || m == nil {
			return own, false
		}
	}
	for k, v := range shared {
		cur, ok := m[k]
		if !ok {
			m[k] = v
			continue
		}
		var sub map[string]json.RawMessage
		if json.Unmarshal(v, &sub) == nil && sub != nil {
			if merged, ok := mergeObjects(cur, sub); ok {
				m[k] = merged
			}
		}
	}
	b, err := json.Marshal(m)
	return b, err == nil
}

// transportFields differ between deliveries of the same message (set when sent or received),
// so they are left out of a derived messageId.
var transportFields = []string{"sentAt", "receivedAt", "requestIP", "writeKey"}

// derivedID returns a messageId for a message that has none (optional in Segment's HTTP API):
// a hash of its content without transport fields, so an identical retry counts once.
func derivedID(raw json.RawMessage) ID {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return ""
	}
	for _, k := range transportFields {
		delete(m, k)
	}
	b, err := json.Marshal(m) // map keys sorted: the same content gives the same bytes
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return ID("derived-" + hex.EncodeToString(sum[:16]))
}

// Parse decodes and validates one message. now is the receipt time: a timestamp after it is
// clamped to it, and a missing or unreadable one is derived from originalTimestamp corrected
// by the device's clock skew (now - sentAt), else takes now; an unreadable one adds a
// warning. Old timestamps are kept (backfills). A message without messageId gets one derived
// from its content.
func Parse(raw json.RawMessage, now time.Time) (Message, error) {
	var m Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("malformed message: %w", err)
	}
	m.Type = strings.ToLower(m.Type)
	switch {
	case m.Type == "":
		return m, ErrNoType
	case len(m.MessageID) > maxID || len(m.UserID) > maxID || len(m.AnonymousID) > maxID || len(m.GroupID) > maxID ||
		len(m.Context.GroupID) > maxID || len(m.Account()) > maxID:
		return m, ErrLongID
	}
	if m.MessageID == "" {
		if m.MessageID = derivedID(raw); m.MessageID == "" {
			return m, ErrNoMessageID
		}
	}
	switch m.Type {
	case "track", "identify", "page", "screen":
		if m.UserID == "" && m.AnonymousID == "" {
			return m, ErrNoUser
		}
		if m.Type == "track" && m.Event == "" {
			return m, ErrNoEvent
		}
	case "group":
		if m.GroupID == "" {
			return m, ErrNoGroup
		}
	default:
		return m, &UnsupportedError{Type: m.Type}
	}
	if m.Timestamp.Bad != "" {
		m.Warnings = append(m.Warnings, fmt.Sprintf("timestamp %q is not ISO-8601; used originalTimestamp, else receipt time", m.Timestamp.Bad))
	}
	for name, t := range map[string]Time{"originalTimestamp": m.OriginalTimestamp, "sentAt": m.SentAt} {
		if t.Bad != "" {
			m.Warnings = append(m.Warnings, fmt.Sprintf("%s %q is not ISO-8601; ignored", name, t.Bad))
		}
	}
	slices.Sort(m.Warnings)
	m.At = m.Timestamp.Time
	if m.At.IsZero() && !m.OriginalTimestamp.IsZero() {
		// Segment's clock-skew correction: the device's clock is off by sentAt - receipt.
		m.At = m.OriginalTimestamp.Time
		if !m.SentAt.IsZero() {
			m.At = m.At.Add(now.Sub(m.SentAt.Time))
		}
	}
	if m.At.IsZero() || m.At.After(now) {
		m.At, m.Received = now.UTC(), true
	}
	return m, nil
}

// User is the key of the message's user: userId, else "anon:"+anonymousId, else "".
func (m *Message) User() string {
	if m.UserID != "" {
		return string(m.UserID)
	}
	if m.AnonymousID != "" {
		return "anon:" + string(m.AnonymousID)
	}
	return ""
}

// Account returns the account the message names itself, in order: the groupId of a group
// call, context.groupId, then the traits company.id or accountId. "" means the account must
// come from the user's membership.
func (m *Message) Account() string {
	if m.Type == "group" && m.GroupID != "" {
		return string(m.GroupID)
	}
	if m.Context.GroupID != "" {
		return string(m.Context.GroupID)
	}
	for _, traits := range []map[string]any{m.Traits, m.Context.Traits} {
		if company, ok := traits["company"].(map[string]any); ok {
			if id := str(company["id"]); id != "" {
				return id
			}
		}
		if id := str(traits["accountId"]); id != "" {
			return id
		}
	}
	return ""
}

// StripeCustomer returns a Stripe customer id named by a group trait, for linking.
func (m *Message) StripeCustomer() string {
	if m.Type != "group" {
		return ""
	}
	for _, k := range []string{"stripe_customer_id", "stripeCustomerId"} {
		if id := str(m.Traits[k]); strings.HasPrefix(id, "cus_") {
			return id
		}
	}
	return ""
}

// Apply changes account a for message m, reading event names from ev.
func Apply(a *account.Account, m *Message, ev score.Events) {
	if m.UserID != "" && m.AnonymousID != "" {
		a.Usage.Users.Alias("anon:"+string(m.AnonymousID), string(m.UserID))
	}
	switch m.Type {
	case "identify":
		a.Usage.Record(m.User(), m.At, false)
		return
	case "group":
		if m.User() != "" {
			a.Usage.Record(m.User(), m.At, false)
		}
		applyTraits(a, m.Traits)
		return
	case "page", "screen":
		a.Usage.Record(m.User(), m.At, true)
		return
	}
	a.Usage.Record(m.User(), m.At, true)
	name := m.Event
	if slices.Contains(ev.KeyFeatures, name) {
		a.Usage.UseFeature(name, m.At)
	}
	if slices.Contains(ev.Onboarding, name) {
		a.Usage.Reach(name, m.At)
	}
	switch {
	case slices.Contains(ev.SeatAdded, name):
		a.Usage.SeatChange(+1)
	case slices.Contains(ev.SeatRemoved, name):
		a.Usage.SeatChange(-1)
	case slices.Contains(ev.TicketOpened, name):
		a.Voice.TicketOpened(ticketID(m.Properties), m.At)
	case slices.Contains(ev.TicketResolved, name):
		a.Voice.TicketResolved(ticketID(m.Properties))
	case slices.Contains(ev.NPS, name):
		prop := ev.NPSProperty
		if prop == "" {
			prop = "score"
		}
		if s, ok := number(m.Properties[prop]); ok && s >= 0 && s <= 10 {
			a.Voice.AddNPS(int(math.Round(s)), m.At)
		}
	}
	if slices.Contains(ev.Invite, name) {
		a.Usage.Invites++
	}
}

// applyTraits keeps the group's name, purchased seats and a few scalar traits.
func applyTraits(a *account.Account, traits map[string]any) {
	if n := str(traits["name"]); n != "" {
		a.SetName(n, account.NameFromGroup)
	}
	for _, k := range []string{"seats", "seats_purchased", "licenses"} {
		if n, ok := number(traits[k]); ok && n > 0 {
			a.Usage.SeatsPurchased = int64(n)
			break
		}
	}
	for _, k := range []string{"plan", "industry", "employees", "website"} {
		if v := str(traits[k]); v != "" {
			a.SetTrait(k, v)
		}
	}
}

func ticketID(p map[string]any) string {
	for _, k := range []string{"ticket_id", "ticketId", "id"} {
		if v := str(p[k]); v != "" {
			return v
		}
	}
	return ""
}

// str renders a string or number trait; other kinds give "".
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	return ""
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}
