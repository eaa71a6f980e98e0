// Package bolt implements store.Store on bbolt, an embedded single-file database, for the
// local server. It keeps to the store contract (conditional commits, reads by key or index)
// rather than leaning on bbolt's serializable transactions, so it behaves as DynamoDB does.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
)

var (
	bAccounts = []byte("accounts")
	bMarkers  = []byte("markers")
	bLinks    = []byte("links")
	bOutbox   = []byte("outbox")
	bHeld     = []byte("held")
	bByBand   = []byte("by_band")
)

// Store is a store.Store in one bbolt file.
type Store struct {
	db *bbolt.DB
	// now is the clock expiry is judged by (dedupe markers, held messages), as DynamoDB's TTL
	// would: an item past its expiry counts as absent even before it is deleted.
	now func() time.Time
}

// Option configures Open.
type Option func(*Store)

// WithClock makes the store judge expiry by now instead of the wall clock, so a simulation or a
// test with a fixed clock sees the same markers and held messages as production would.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file churnsignal.db in dir.
func Open(dir string, opts ...Option) (*Store, error) {
	db, err := bbolt.Open(filepath.Join(dir, "churnsignal.db"), 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", dir, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bAccounts, bMarkers, bLinks, bOutbox, bHeld, bByBand} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: init: %w", err)
	}
	s := &Store{db: db, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Close closes the database file.
func (s *Store) Close() error { return s.db.Close() }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*account.Account, error) {
	var a *account.Account
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		a, err = getAccount(tx, id)
		return err
	})
	return a, err
}

func getAccount(tx *bbolt.Tx, id string) (*account.Account, error) {
	v := tx.Bucket(bAccounts).Get([]byte(id))
	if v == nil {
		return nil, store.ErrNotFound
	}
	var a account.Account
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("bolt: decode account %s: %w", id, err)
	}
	return &a, nil
}

// Seen implements store.Store.
func (s *Store) Seen(ctx context.Context, keys []string) (map[string]bool, error) {
	seen := map[string]bool{}
	now := s.now()
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMarkers)
		for _, k := range keys {
			if live(b.Get([]byte(k)), now) {
				seen[k] = true
			}
		}
		return nil
	})
	return seen, err
}

// live reports whether a stored expiry is still in the future.
func live(v []byte, now time.Time) bool {
	return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.Unix()
}

// Links implements store.Store.
func (s *Store) Links(ctx context.Context, keys []string) (map[string]store.Target, error) {
	out := make(map[string]store.Target, len(keys))
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bLinks)
		for _, k := range keys {
			if v := b.Get([]byte(k)); v != nil {
				out[k] = decodeTarget(v)
			}
		}
		return nil
	})
	return out, err
}

// decodeTarget reads a link value: JSON, or (as written before links had a source) the bare
// account id.
func decodeTarget(v []byte) store.Target {
	var t store.Target
	if len(v) > 0 && v[0] == '{' && json.Unmarshal(v, &t) == nil {
		return t
	}
	return store.Target{Account: string(v)}
}

// Commit implements store.Store: every condition is checked, then everything is written, in
// one bbolt transaction.
func (s *Store) Commit(ctx context.Context, t store.Tx) error {
	if n := t.Size(); n > store.MaxTxItems {
		return store.TooLarge("%d items, at most %d", n, store.MaxTxItems)
	}
	encoded := make([][]byte, len(t.Accounts))
	total := t.Bytes()
	for i, p := range t.Accounts {
		a := *p.Account
		a.Version = p.Expect + 1
		v, err := json.Marshal(&a)
		if err != nil {
			return fault.E("encode account "+a.ID, fault.Internal, err)
		}
		if len(v) > store.MaxItemBytes {
			return store.TooLarge("account %s is %d bytes, at most %d", a.ID, len(v), store.MaxItemBytes)
		}
		encoded[i] = v
	}
	if total > store.MaxTxBytes {
		return store.TooLarge("%d bytes, at most %d", total, store.MaxTxBytes)
	}
	now := s.now()
	return s.db.Update(func(tx *bbolt.Tx) error {
		accounts, markers, links := tx.Bucket(bAccounts), tx.Bucket(bMarkers), tx.Bucket(bLinks)
		olds := make([]*account.Account, len(t.Accounts))
		for i, p := range t.Accounts {
			old, err := getAccount(tx, p.Account.ID)
			switch {
			case err == store.ErrNotFound:
				if p.Expect != 0 {
					return &store.ConflictError{On: store.OnAccount, Key: p.Account.ID}
				}
			case err != nil:
				return err
			case old.Version != p.Expect:
				return &store.ConflictError{On: store.OnAccount, Key: p.Account.ID}
			}
			olds[i] = old
		}
		for _, m := range t.Markers {
			if live(markers.Get([]byte(m.Key)), now) {
				return &store.ConflictError{On: store.OnMarker, Key: m.Key}
			}
		}
		for _, l := range t.Links {
			if !l.Force && decodeTarget(links.Get([]byte(l.Key))).Account != l.Expect {
				return &store.ConflictError{On: store.OnLink, Key: l.Key}
			}
		}
		for i, p := range t.Accounts {
			if err := accounts.Put([]byte(p.Account.ID), encoded[i]); err != nil {
				return err
			}
			a := *p.Account
			a.Version = p.Expect + 1
			if err := reindex(tx, olds[i], &a); err != nil {
				return err
			}
		}
		for _, m := range t.Markers {
			if err := markers.Put([]byte(m.Key), binary.BigEndian.AppendUint64(nil, uint64(m.Expires.Unix()))); err != nil {
				return err
			}
		}
		for _, l := range t.Links {
			v, err := json.Marshal(store.Target{Account: l.Account, Source: l.Source})
			if err != nil {
				return err
			}
			if err := links.Put([]byte(l.Key), v); err != nil {
				return err
			}
		}
		for _, k := range t.Unlink {
			if err := links.Delete([]byte(k)); err != nil {
				return err
			}
		}
		ob := tx.Bucket(bOutbox)
		for _, m := range t.Outbox {
			seq, _ := ob.NextSequence()
			v, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if err := ob.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
				return err
			}
		}
		for _, h := range t.Release {
			if err := tx.Bucket(bHeld).Delete(heldKey(h.User, h.MessageID)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Purge deletes dedupe markers and held messages that expired before now, which DynamoDB's TTL
// does by itself; the local server calls it periodically. It returns how many it deleted.
func (s *Store) Purge(now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bMarkers).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if !live(v, now) {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		c = tx.Bucket(bHeld).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var h store.Held
			if err := json.Unmarshal(v, &h); err != nil || !h.Expires.After(now) {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// indexKey orders accounts within a band by score, then id: most at risk first.
func indexKey(a *account.Account) []byte {
	return []byte(fmt.Sprintf("%s\x00%03d\x00%s", a.Health.Band, a.Health.Score, a.ID))
}

func reindex(tx *bbolt.Tx, old, a *account.Account) error {
	b := tx.Bucket(bByBand)
	if old != nil && old.Health.Band != "" {
		if err := b.Delete(indexKey(old)); err != nil {
			return err
		}
	}
	if a.Health.Band == "" || a.MergedInto != "" {
		return nil
	}
	return b.Put(indexKey(a), nil)
}

func heldKey(user, msgID string) []byte { return []byte(user + "\x00" + msgID) }

// Hold implements store.Store.
func (s *Store) Hold(ctx context.Context, h store.Held) error {
	v, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bHeld).Put(heldKey(h.User, h.MessageID), v) })
}

// Held implements store.Store.
func (s *Store) Held(ctx context.Context, user string) ([]store.Held, error) {
	var out []store.Held
	now := s.now()
	prefix := []byte(user + "\x00")
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bHeld).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var h store.Held
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			if h.Expires.After(now) {
				out = append(out, h)
			}
		}
		return nil
	})
	sortHeld(out)
	return out, err
}

// HeldCount implements store.Store: it reads each held item's expiry, not its body.
func (s *Store) HeldCount(ctx context.Context, user string) (int, error) {
	n := 0
	now := s.now()
	prefix := []byte(user + "\x00")
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bHeld).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var h struct {
				Expires time.Time `json:"expires"`
			}
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			if h.Expires.After(now) {
				n++
			}
		}
		return nil
	})
	return n, err
}

func sortHeld(hs []store.Held) {
	sort.SliceStable(hs, func(i, j int) bool { return hs[i].At.Before(hs[j].At) })
}

// Outbox implements store.Store.
func (s *Store) Outbox(ctx context.Context, limit int) ([]store.Message, error) {
	var out []store.Message
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var m store.Message
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// Ack implements store.Store.
func (s *Store) Ack(ctx context.Context, ids ...string) error {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bOutbox)
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(want) > 0; k, v = c.Next() {
			var m store.Message
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			if want[m.ID] {
				delete(want, m.ID)
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// List implements store.Store: it walks the band index in score order.
func (s *Store) List(ctx context.Context, q store.Query) (store.Page, error) {
	var page store.Page
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	prefix := []byte{}
	if q.Band != "" {
		prefix = []byte(q.Band + "\x00")
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bByBand).Cursor()
		k, _ := c.Seek(prefix)
		if q.Cursor != "" {
			k, _ = c.Seek([]byte(q.Cursor))
			if k != nil && string(k) == q.Cursor {
				k, _ = c.Next()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			parts := bytes.SplitN(k, []byte{0}, 3)
			a, err := getAccount(tx, string(parts[2]))
			if err != nil {
				return err
			}
			if (q.Segment != "" && a.Health.Segment != q.Segment) || (!q.IncludeChurned && a.Churned()) {
				continue
			}
			if len(page.Accounts) == limit {
				page.Next = string(indexKey(page.Accounts[limit-1]))
				return nil
			}
			page.Accounts = append(page.Accounts, a)
		}
		return nil
	})
	return page, err
}

// Scan implements store.Store.
func (s *Store) Scan(ctx context.Context, cursor string, limit int) ([]*account.Account, string, error) {
	var out []*account.Account
	next := ""
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bAccounts).Cursor()
		k, v := c.First()
		if cursor != "" {
			k, v = c.Seek([]byte(cursor))
			if k != nil && string(k) == cursor {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			var a account.Account
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, &a)
		}
		return nil
	})
	return out, next, err
}
