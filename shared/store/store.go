// Package store defines where accounts, dedupe markers, links, held messages and the outbox
// live. The interface follows DynamoDB's model so every implementation can honour it: reads by
// key or index, and one atomic Commit of at most MaxTxItems conditional writes with no reads
// inside it. Implementations: store/bolt (embedded) and store/dynamo (AWS).
package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
)

// Limits of one Commit: DynamoDB's TransactWriteItems allows 100 items and 4 MB, and an item
// is at most 400 KB. Every adapter enforces them, so a write that passes locally passes on AWS.
const (
	MaxTxItems   = 100
	MaxTxBytes   = 4 << 20
	MaxItemBytes = 400 << 10
)

// Errors a Store returns; callers test them with errors.Is, and fault.KindOf gives their kind.
var (
	// ErrNotFound means no item has the key.
	ErrNotFound error = &fault.Error{Op: "store", Kind: fault.NotFound, Err: errors.New("not found")}
	// ErrConflict means a Commit condition failed: an account changed since it was read, a
	// dedupe marker exists already, or a link points elsewhere. Nothing was written; re-read
	// and try again. The error is a *ConflictError saying which condition failed.
	ErrConflict error = &fault.Error{Op: "store", Kind: fault.Conflict, Err: errors.New("conflict")}
	// ErrTooLarge means a Tx is over MaxTxItems items or MaxTxBytes, or one of its items over
	// MaxItemBytes. It is permanent: the same write will never succeed.
	ErrTooLarge error = &fault.Error{Op: "store", Kind: fault.Permanent, Err: errors.New("transaction over DynamoDB's limits")}
)

// What a conflict was about.
const (
	OnAccount = "account" // the account's version is not the one read (or it exists already)
	OnMarker  = "marker"  // the delivery was applied already: a live dedupe marker exists
	OnLink    = "link"    // the link points somewhere other than expected
)

// ConflictError is the ErrConflict of one failed condition: On (OnAccount, OnMarker, OnLink)
// and the item's Key.
type ConflictError struct {
	On  string
	Key string
}

func (e *ConflictError) Error() string { return fmt.Sprintf("store: conflict on %s %q", e.On, e.Key) }

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Kind classifies the error for fault.KindOf.
func (e *ConflictError) Kind() fault.Kind { return fault.Conflict }

// TooLarge returns ErrTooLarge with the limit that was exceeded.
func TooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrTooLarge, fmt.Sprintf(format, args...))
}

// Store is the persistence the pipeline needs. Reads marked "strongly consistent" must see
// every Commit that returned before they started (on DynamoDB: ConsistentRead); the
// exactly-once and hold/release arguments depend on them.
type Store interface {
	// Get returns the stored account, or ErrNotFound. Strongly consistent.
	Get(ctx context.Context, id string) (*account.Account, error)
	// Seen returns which of the dedupe keys have an unexpired marker. Strongly consistent.
	Seen(ctx context.Context, keys []string) (map[string]bool, error)
	// Received returns the unexpired receipts among keys; keys without one are absent from the
	// map. Strongly consistent: read after the account, it shows every receipt of the version
	// read (see Receipt).
	Received(ctx context.Context, keys []ReceiptKey) (map[ReceiptKey]Receipt, error)
	// Links returns where each link key (a Stripe customer, a user) points; keys without a
	// link are absent from the map. Strongly consistent.
	Links(ctx context.Context, keys []string) (map[string]Target, error)
	// Commit writes tx atomically. When a condition fails it writes nothing and returns a
	// *ConflictError (errors.Is ErrConflict); a Tx over the limits gets ErrTooLarge.
	Commit(ctx context.Context, tx Tx) error
	// Hold keeps a product message whose account is not known yet; holding the same message
	// again replaces it.
	Hold(ctx context.Context, h Held) error
	// Held lists the unexpired messages held for user, oldest first. Strongly consistent: a
	// message held before a link committed must be seen by the release that follows it.
	Held(ctx context.Context, user string) ([]Held, error)
	// HeldCount counts the unexpired messages held for user without reading their bodies, so
	// the per-user cap costs a count, not a read of every body. Strongly consistent.
	HeldCount(ctx context.Context, user string) (int, error)
	// List returns the summaries of accounts in a band (all bands when empty), most at risk
	// first: BAD, then NORMAL, then GOOD, each by score ascending. A cursor that List did not
	// return for the same query is ErrInvalidCursor.
	List(ctx context.Context, q Query) (Page, error)
	// Scan pages through shard (0 ≤ shard < shards) of the accounts, for recompute: every
	// account belongs to exactly one shard for a given shards (shards ≤ 1 is the whole key
	// space). It returns "" as the next cursor on the last page; a cursor it did not return
	// for the same shard is ErrInvalidCursor.
	Scan(ctx context.Context, shard, shards int, cursor string, limit int) ([]*account.Account, string, error)
	// History returns the unexpired daily points of account id on days in [from, to), oldest
	// first. Not strongly consistent: it only feeds the account view.
	History(ctx context.Context, id string, from, to int32) ([]Point, error)
}

// Target is where a link points and who set it.
type Target struct {
	Account string `json:"account"`
	// Source says what set the link: SourceStripe (the customer's metadata.account_id, which
	// is authoritative), SourceGroup (a product group trait), or "" (a placeholder, or a user's
	// membership).
	Source string `json:"source,omitempty"`
	// At orders the claim that set the link by when its fact happened (the Stripe event's
	// created, the group message's timestamp: unix seconds ×4, plus a rank breaking Stripe's
	// same-second ties), so an older claim delivered late does not move a customer that a
	// newer one placed.
	At int64 `json:"at,omitempty"`
	// Pending marks a user's membership whose held messages may not all be released yet: the
	// next request that reads it finishes the release, so none is stranded.
	Pending bool `json:"pending,omitempty"`
}

// Link sources.
const (
	SourceStripe = "stripe"
	SourceGroup  = "group"
)

// The outbox is not part of Store: each publisher reads it its own way (a goroutine draining
// bbolt locally, DynamoDB Streams on AWS) through an interface it declares. Consumers get the
// messages of one account in commit order; there is no global order.

// Tx is one atomic write.
type Tx struct {
	// Accounts are written with Version = Expect+1, on condition the stored version is Expect
	// (Expect 0: the account must not exist).
	Accounts []Put
	// Markers must not exist yet; each is written with its expiry.
	Markers []Marker
	// Links point a key (a Stripe customer, a user) at an account.
	Links []Link
	// Outbox messages are appended, to be published after the commit.
	Outbox []Message
	// Release deletes held messages that this transaction applies (or forgets).
	Release []Held
	// Unlink deletes link keys (a user forgotten by a Segment delete).
	Unlink []string
	// History puts daily health points, one item per account and day: a later point of the
	// same day replaces the earlier one, unconditionally.
	History []Point
	// Receipts replace product-message receipts, unconditionally. Each must name an account the
	// Tx also puts: that account's version condition is what makes a receipt's read-then-write
	// exact, so a Commit with a receipt of any other account is refused (fault.Internal).
	Receipts []Receipt
}

// ReceiptSpan is the width of one receipt's bucket of message timestamps. Every commit that
// applies a message of a bucket rewrites the bucket's whole receipt, and a write is billed by
// the size of the item, so a bucket should be about as wide as the time one batch of messages
// spans: an hour-wide receipt of an account sending 10 messages a second would be ~280 KB
// rewritten every few seconds, a minute-wide one ~5 KB.
const ReceiptSpan = time.Minute

// ReceiptKey names one receipt: the product messages applied to Account whose own timestamps
// fall in bucket Bucket (unix time divided by ReceiptSpan).
type ReceiptKey struct {
	Account string
	Bucket  int64
}

// BucketOf is the receipt bucket of a message timestamp.
func BucketOf(t time.Time) int64 { return t.Unix() / int64(ReceiptSpan/time.Second) }

// Receipt packs the dedupe marks of the product messages of one account and bucket into one
// item: ReceiptIDs of their message ids, sorted ascending, and one expiry (the latest any of
// them needs). One item per account and minute instead of one marker per message is what
// makes a busy account's batch cost less than a write unit per message. It is read and
// rewritten whole inside a commit of the account (Tx.Receipts), never on its own.
type Receipt struct {
	ReceiptKey
	IDs     []uint64
	Expires time.Time
}

// Has reports whether the receipt records id.
func (r Receipt) Has(id uint64) bool {
	_, ok := slices.BinarySearch(r.IDs, id)
	return ok
}

// ReceiptID is the receipt mark of a product message id: the first 8 bytes of its SHA-256,
// so a sender cannot make two of its ids collide by choice, and 8 bytes a message is what a
// receipt stores.
func ReceiptID(messageID string) uint64 {
	h := sha256.Sum256([]byte(messageID))
	return binary.BigEndian.Uint64(h[:8])
}

// MaxReceiptIDs bounds one receipt (8 bytes an id: 256 KB, well inside DynamoDB's 400 KB item
// limit). A writer that finds a bucket full marks further messages of it with a Marker each.
const MaxReceiptIDs = 32 << 10

// receiptOwners checks that every receipt of tx belongs to an account tx puts.
func (tx *Tx) receiptOwners() error {
	for _, r := range tx.Receipts {
		if !slices.ContainsFunc(tx.Accounts, func(p Put) bool { return p.Account.ID == r.Account }) {
			return fault.E("store: commit", fault.Internal, fmt.Errorf("receipt of account %q without a put of that account", r.Account))
		}
		if len(r.IDs) > MaxReceiptIDs {
			return TooLarge("receipt %s/%d holds %d ids, at most %d", r.Account, r.Bucket, len(r.IDs), MaxReceiptIDs)
		}
	}
	return nil
}

// Check refuses a Tx that no store could commit: over MaxTxItems items, or with a receipt
// that is not guarded by a put of its account. Adapters call it first.
func (tx *Tx) Check() error {
	if n := tx.Size(); n > MaxTxItems {
		return TooLarge("%d items, at most %d", n, MaxTxItems)
	}
	return tx.receiptOwners()
}

// Put is an account write conditioned on the version read.
type Put struct {
	Account *account.Account
	Expect  int64
	// Summary is what List shows of the account, indexed with it so a list never reads whole
	// accounts. The writer fills it (NewSummary plus the top reason); a zero Summary makes the
	// store index NewSummary(Account).
	Summary Summary
}

// Link points Key at Account (recording its Source), on condition the stored target account is
// Expect ("" = no link yet), or unconditionally when Force.
type Link struct {
	Key     string
	Account string
	Source  string
	At      int64
	Pending bool
	Expect  string
	Force   bool
}

// Marker records that a delivery (a Stripe event id, a product messageId) was applied.
type Marker struct {
	Key     string
	Expires time.Time
}

// Message is an outbox entry: a published event's id, body and attributes.
type Message struct {
	ID         string            `json:"id"`
	Body       []byte            `json:"body"`
	Attributes map[string]string `json:"attributes"`
}

// HistoryTTL is how long a daily health point is kept (DynamoDB TTL; bolt's Purge).
const HistoryTTL = 400 * 24 * time.Hour

// Point is an account's health at the end of one UTC day, stored as its own item so the
// account item keeps only the few recent days that drop detection needs.
type Point struct {
	Account string    `json:"account"`
	Day     int32     `json:"day"`
	Score   int       `json:"score"`
	Band    string    `json:"band"`
	Expires time.Time `json:"expires"`
}

// Held is a product message waiting for its user's account to become known.
type Held struct {
	User      string    `json:"user"`
	MessageID string    `json:"message_id"`
	Body      []byte    `json:"body"`
	At        time.Time `json:"at"`
	Expires   time.Time `json:"expires"`
}

// Query selects accounts for a list. Churned accounts are left out unless IncludeChurned.
type Query struct {
	Band           string
	Segment        string
	IncludeChurned bool
	Limit          int
	Cursor         string
}

// Page is one page of a List; Next is "" on the last page.
type Page struct {
	Summaries []Summary
	Next      string
}

// ErrInvalidCursor means a List or Scan cursor is not one the store returned for that query:
// garbage, truncated, or from another query or shard. The caller's input is wrong; retrying
// does not help.
var ErrInvalidCursor error = &fault.Error{Op: "store", Kind: fault.Invalid, Err: errors.New("invalid cursor")}

// Summary is one row of an account list: what a CS manager scans to pick whom to call. It is
// small and self-contained so an index can carry it (a DynamoDB GSI with an INCLUDE
// projection, bbolt's index value) without reading the account.
type Summary struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Segment string `json:"segment,omitempty"`
	Score   int    `json:"score"`
	Band    string `json:"band"`
	Churned bool   `json:"churned,omitempty"`
	// MRR is in minor units of Currency.
	MRR      int64  `json:"mrr,omitempty"`
	Currency string `json:"currency,omitempty"`
	// TopReason is the words of the reason that costs the most points, and TopMeasure its
	// measure; the writer supplies both, since the stored account need not keep words.
	TopReason  string    `json:"top_reason,omitempty"`
	TopMeasure string    `json:"top_measure,omitempty"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

// NewSummary fills a Summary with everything an account says by itself; the top reason is left
// to the writer.
func NewSummary(a *account.Account) Summary {
	mrr, cur := a.Billing.MRRAt(a.Health.UpdatedAt)
	return Summary{ID: a.ID, Name: a.Name, Segment: a.Health.Segment, Score: a.Health.Score, Band: a.Health.Band,
		Churned: a.Churned(), MRR: mrr, Currency: cur, UpdatedAt: a.Health.UpdatedAt}
}

// Size counts the items a Tx writes.
func (tx *Tx) Size() int {
	return len(tx.Accounts) + len(tx.Markers) + len(tx.Links) + len(tx.Outbox) + len(tx.Release) + len(tx.Unlink) + len(tx.History) + len(tx.Receipts)
}

// Bytes estimates what a Tx writes, in bytes: each account encoded, each key, each outbox body.
// An adapter's own encoding differs by a few bytes an item; the limits leave room for that.
func (tx *Tx) Bytes() int {
	n := tx.OtherBytes()
	for _, p := range tx.Accounts {
		n += AccountBytes(p.Account)
	}
	return n
}

// OtherBytes is Bytes without the accounts, for an adapter that encodes them itself.
func (tx *Tx) OtherBytes() int {
	n := 0
	for _, m := range tx.Markers {
		n += len(m.Key) + 16
	}
	for _, l := range tx.Links {
		n += len(l.Key) + len(l.Account) + len(l.Source) + 8
	}
	for _, m := range tx.Outbox {
		n += len(m.ID) + len(m.Body) + 64
	}
	for _, h := range tx.Release {
		n += len(h.User) + len(h.MessageID) + 8
	}
	for _, k := range tx.Unlink {
		n += len(k)
	}
	for _, p := range tx.History {
		n += len(p.Account) + len(p.Band) + 32
	}
	for _, r := range tx.Receipts {
		n += len(r.Account) + 8*len(r.IDs) + 32
	}
	return n
}

// AccountBytes is the encoded size of an account item.
func AccountBytes(a *account.Account) int {
	b, err := json.Marshal(a)
	if err != nil {
		return MaxItemBytes + 1
	}
	return len(b)
}
