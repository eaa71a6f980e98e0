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
	// Outbox returns up to limit unpublished messages, in commit order.
	Outbox(ctx context.Context, limit int) ([]Message, error)
	// Ack removes published messages from the outbox.
	Ack(ctx context.Context, ids ...string) error
	// List returns accounts in a band (all bands when empty), most at risk first.
	List(ctx context.Context, q Query) (Page, error)
	// Scan pages through every account, for recompute.
	Scan(ctx context.Context, cursor string, limit int) ([]*account.Account, string, error)
}

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
	Accounts []*account.Account
	Next     string
}

// Size counts the items a Tx writes.
func (tx *Tx) Size() int {
	return len(tx.Accounts) + len(tx.Markers) + len(tx.Links) + len(tx.Outbox) + len(tx.Release)
}
