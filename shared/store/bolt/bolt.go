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
	"hash/fnv"
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
	bByRisk   = []byte("by_risk")
	// bHistory holds daily health points keyed account id, NUL, big-endian day.
	bHistory = []byte("history")
	// bReceipts holds product-message receipts keyed account id, NUL, big-endian bucket; the
	// value is the big-endian unix expiry, then the sorted 8-byte ids.
	bReceipts = []byte("receipts")
	// bByBandV0 is the list index of earlier versions, replaced by bByRisk.
	bByBandV0 = []byte("by_band")
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
		for _, b := range [][]byte{bAccounts, bMarkers, bLinks, bOutbox, bHeld, bHistory, bReceipts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return ensureIndex(tx)
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
		return nil, fault.E("bolt: decode account "+id, fault.Internal, err)
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

// Received implements store.Store.
func (s *Store) Received(ctx context.Context, keys []store.ReceiptKey) (map[store.ReceiptKey]store.Receipt, error) {
	out := map[store.ReceiptKey]store.Receipt{}
	now := s.now()
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bReceipts)
		for _, k := range keys {
			v := b.Get(receiptKey(k))
			if len(v) < 8 || !live(v[:8], now) {
				continue
			}
			r := store.Receipt{ReceiptKey: k, Expires: time.Unix(int64(binary.BigEndian.Uint64(v)), 0).UTC()}
			for i := 8; i+8 <= len(v); i += 8 {
				r.IDs = append(r.IDs, binary.BigEndian.Uint64(v[i:]))
			}
			out[k] = r
		}
		return nil
	})
	return out, err
}

func receiptKey(k store.ReceiptKey) []byte {
	return binary.BigEndian.AppendUint64([]byte(k.Account+"\x00"), uint64(k.Bucket))
}

func receiptValue(r store.Receipt) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+8*len(r.IDs)), uint64(r.Expires.Unix()))
	for _, id := range r.IDs {
		v = binary.BigEndian.AppendUint64(v, id)
	}
	return v
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
	if err := t.Check(); err != nil {
		return err
	}
	encoded := make([][]byte, len(t.Accounts))
	total := t.OtherBytes()
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
		total += len(v)
	}
	for _, m := range t.Outbox {
		if len(m.Body) > store.MaxItemBytes {
			return store.TooLarge("outbox message %s is %d bytes, at most %d", m.ID, len(m.Body), store.MaxItemBytes)
		}
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
			if err := reindex(tx, olds[i], &a, p.Summary); err != nil {
				return err
			}
		}
		for _, m := range t.Markers {
			if err := markers.Put([]byte(m.Key), binary.BigEndian.AppendUint64(nil, uint64(m.Expires.Unix()))); err != nil {
				return err
			}
		}
		for _, l := range t.Links {
			v, err := json.Marshal(store.Target{Account: l.Account, Source: l.Source, At: l.At, Pending: l.Pending})
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
		for _, p := range t.History {
			v, err := json.Marshal(p)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bHistory).Put(historyKey(p.Account, p.Day), v); err != nil {
				return err
			}
		}
		for _, r := range t.Receipts {
			if err := tx.Bucket(bReceipts).Put(receiptKey(r.ReceiptKey), receiptValue(r)); err != nil {
				return err
			}
		}
		return nil
	})
}

// historyKey orders an account's daily points by day: the id, NUL, then the day big-endian
// (offset so that negative days sort first).
func historyKey(id string, day int32) []byte {
	return binary.BigEndian.AppendUint32([]byte(id+"\x00"), uint32(day)^1<<31)
}

// History implements store.Store: the account's unexpired points on days in [from, to).
func (s *Store) History(ctx context.Context, id string, from, to int32) ([]store.Point, error) {
	var out []store.Point
	now := s.now()
	end := historyKey(id, to)
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bHistory).Cursor()
		for k, v := c.Seek(historyKey(id, from)); k != nil && from < to && bytes.Compare(k, end) < 0; k, v = c.Next() {
			var p store.Point
			if err := json.Unmarshal(v, &p); err != nil {
				return fault.E("bolt: decode history "+string(k), fault.Internal, err)
			}
			if p.Expires.After(now) {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

// Purge deletes dedupe markers and receipts, held messages and daily history points that expired before now, which DynamoDB's TTL
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
		c = tx.Bucket(bReceipts).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) < 8 || !live(v[:8], now) {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		c = tx.Bucket(bHistory).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var p struct {
				Expires time.Time `json:"expires"`
			}
			if err := json.Unmarshal(v, &p); err != nil || !p.Expires.After(now) {
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

// indexKey orders accounts most at risk first: by band (BAD, NORMAL, GOOD), then score
// ascending, then id. The band's rank comes first so one walk of the index serves a list of
// every band; its name follows so a list of one band is a prefix.
func indexKey(a *account.Account) []byte {
	return []byte(fmt.Sprintf("%s\x00%03d\x00%s", bandPrefix(a.Health.Band), a.Health.Score, a.ID))
}

// bandPrefix is the start of the index keys of band: its rank, then its name.
func bandPrefix(band string) string {
	rank := "9"
	switch band {
	case account.BandBad:
		rank = "0"
	case account.BandNormal:
		rank = "1"
	case account.BandGood:
		rank = "2"
	}
	return rank + band
}

// reindex moves a's entry in the list index; the entry's value is the summary List returns,
// so a list never decodes accounts.
func reindex(tx *bbolt.Tx, old, a *account.Account, sum store.Summary) error {
	b := tx.Bucket(bByRisk)
	if old != nil && old.Health.Band != "" {
		if err := b.Delete(indexKey(old)); err != nil {
			return err
		}
	}
	if a.Health.Band == "" || a.MergedInto != "" {
		return nil
	}
	if sum.ID != a.ID {
		sum = store.NewSummary(a)
	}
	v, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	return b.Put(indexKey(a), v)
}

// ensureIndex builds the list index from the accounts when it does not exist yet (a data file
// from a version that indexed by band name only), then drops the old index.
func ensureIndex(tx *bbolt.Tx) error {
	if tx.Bucket(bByRisk) != nil {
		return nil
	}
	if _, err := tx.CreateBucket(bByRisk); err != nil {
		return err
	}
	if tx.Bucket(bByBandV0) != nil {
		if err := tx.DeleteBucket(bByBandV0); err != nil {
			return err
		}
	}
	return tx.Bucket(bAccounts).ForEach(func(k, v []byte) error {
		var a account.Account
		if err := json.Unmarshal(v, &a); err != nil {
			return fault.E("bolt: decode account "+string(k), fault.Internal, err)
		}
		// The words of the top reason are not stored; the next write of the account adds them.
		return reindex(tx, nil, &a, store.NewSummary(&a))
	})
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

// Outbox returns up to limit unpublished messages in commit order (globally, which keeps the
// per-account order publishers promise). It is not part of store.Store: the local drainer
// reads it through publish.Outbox.
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

// Ack removes published messages from the outbox.
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

// List implements store.Store: it walks the risk index, whose values are the summaries, so it
// reads no account.
func (s *Store) List(ctx context.Context, q store.Query) (store.Page, error) {
	page := store.Page{Summaries: []store.Summary{}}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	var prefix []byte
	if q.Band != "" {
		prefix = []byte(bandPrefix(q.Band) + "\x00")
	}
	scope := fmt.Sprintf("list\x00%s\x00%s\x00%t", q.Band, q.Segment, q.IncludeChurned)
	var after []byte
	if q.Cursor != "" {
		var err error
		if after, err = store.DecodeCursor(scope, q.Cursor); err != nil || !bytes.HasPrefix(after, prefix) {
			return page, store.ErrInvalidCursor
		}
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bByRisk).Cursor()
		k, v := c.Seek(prefix)
		if after != nil {
			if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		var last []byte
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var sum store.Summary
			if err := json.Unmarshal(v, &sum); err != nil {
				return fault.E("bolt: decode index entry "+string(k), fault.Internal, err)
			}
			if (q.Segment != "" && sum.Segment != q.Segment) || (!q.IncludeChurned && sum.Churned) {
				continue
			}
			if len(page.Summaries) == limit {
				page.Next = store.EncodeCursor(scope, last)
				return nil
			}
			page.Summaries = append(page.Summaries, sum)
			last = append(last[:0], k...)
		}
		return nil
	})
	return page, err
}

// Scan implements store.Store. A shard is the accounts whose id hashes (FNV-1a) to it modulo
// shards; each shard walks the key space and decodes only its own accounts.
func (s *Store) Scan(ctx context.Context, shard, shards int, cursor string, limit int) ([]*account.Account, string, error) {
	if shards < 1 {
		shards = 1
	}
	if shard < 0 || shard >= shards {
		return nil, "", fmt.Errorf("bolt: scan shard %d of %d: no such shard", shard, shards)
	}
	if limit <= 0 {
		limit = 100
	}
	scope := fmt.Sprintf("scan\x00%d\x00%d", shard, shards)
	var after []byte
	if cursor != "" {
		var err error
		if after, err = store.DecodeCursor(scope, cursor); err != nil {
			return nil, "", err
		}
	}
	var out []*account.Account
	next := ""
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bAccounts).Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if shardOf(k, shards) != shard {
				continue
			}
			if len(out) == limit {
				next = store.EncodeCursor(scope, []byte(out[len(out)-1].ID))
				return nil
			}
			var a account.Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fault.E("bolt: decode account "+string(k), fault.Internal, err)
			}
			out = append(out, &a)
		}
		return nil
	})
	return out, next, err
}

// shardOf is the shard of an account id: FNV-1a of the id modulo shards, stable across runs
// and processes.
func shardOf(id []byte, shards int) int {
	h := fnv.New32a()
	h.Write(id)
	return int(h.Sum32() % uint32(shards))
}
