// Package store defines where accounts, dedupe markers, links, held messages and the outbox
// live. The interface follows DynamoDB's model so every implementation can honour it: reads by
// key or index, and one atomic Commit of at most MaxTxItems conditional writes with no reads
// inside it. Implementations: store/bolt (embedded) and store/dynamo (AWS).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
)

// MaxTxItems is the most items one Commit may write (DynamoDB's TransactWriteItems limit).
const MaxTxItems = 100

// Errors a Store returns; callers test them with errors.Is.
var (
	// ErrNotFound means no item has the key.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a Commit condition failed: an account changed since it was read, or a
	// dedupe marker exists already. Nothing was written; re-read and try again.
	ErrConflict = errors.New("store: conflict")
	// ErrTooLarge means a Tx holds more than MaxTxItems items.
	ErrTooLarge = errors.New("store: transaction over 100 items")
)

// Store is the persistence the pipeline needs.
type Store interface {
	// Get returns the stored account, or ErrNotFound.
	Get(ctx context.Context, id string) (*account.Account, error)
	// Seen returns which of the dedupe keys have an unexpired marker.
	Seen(ctx context.Context, keys []string) (map[string]bool, error)
	// Link returns the account a link key (a Stripe customer, a user) points to, or "".
	Link(ctx context.Context, key string) (string, error)
	// Commit writes tx atomically, or nothing and ErrConflict when a condition fails.
	Commit(ctx context.Context, tx Tx) error
	// Hold keeps a product message whose account is not known yet; holding the same message
	// again replaces it.
	Hold(ctx context.Context, h Held) error
	// Held lists the unexpired messages held for user, oldest first.
	Held(ctx context.Context, user string) ([]Held, error)
	// List returns the summaries of accounts in a band (all bands when empty), most at risk
	// first: BAD, then NORMAL, then GOOD, each by score ascending. A cursor that List did not
	// return for the same query is ErrInvalidCursor.
	List(ctx context.Context, q Query) (Page, error)
	// Scan pages through shard (0 ≤ shard < shards) of the accounts, for recompute: every
	// account belongs to exactly one shard for a given shards (shards ≤ 1 is the whole key
	// space). It returns "" as the next cursor on the last page; a cursor it did not return
	// for the same shard is ErrInvalidCursor.
	Scan(ctx context.Context, shard, shards int, cursor string, limit int) ([]*account.Account, string, error)
}

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
	// Release deletes held messages that this transaction applies.
	Release []Held
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

// Link points Key at Account, on condition the stored target is Expect ("" = no link yet),
// or unconditionally when Force.
type Link struct {
	Key     string
	Account string
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
var ErrInvalidCursor = errors.New("store: invalid cursor")

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
	mrr, cur := a.Billing.MRR()
	return Summary{ID: a.ID, Name: a.Name, Segment: a.Health.Segment, Score: a.Health.Score, Band: a.Health.Band,
		Churned: a.Churned(), MRR: mrr, Currency: cur, UpdatedAt: a.Health.UpdatedAt}
}

// Size counts the items a Tx writes.
func (tx *Tx) Size() int {
	return len(tx.Accounts) + len(tx.Markers) + len(tx.Links) + len(tx.Outbox) + len(tx.Release)
}
