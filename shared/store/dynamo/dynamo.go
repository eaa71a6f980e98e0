// Package dynamo implements store.Store on one DynamoDB table (aws-sdk-go-v2), for the AWS
// deployment. The layout is single-table: every item has a string partition key pk and sort
// key sk; docs/DYNAMO.md describes each item type, the two indexes and what a write costs.
// A Commit is one TransactWriteItems; reads the store contract calls strongly consistent are
// ConsistentRead; expiry is judged by the store's clock, so an item DynamoDB's TTL has not
// deleted yet is absent already.
package dynamo

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
)

// API is the part of the DynamoDB client the store calls; *dynamodb.Client implements it, and
// a test can wrap one to inject failures.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Names of the attributes and indexes; docs/DYNAMO.md is the reference, and the SAM template
// must declare the same.
const (
	attrPK      = "pk"      // partition key of every item
	attrSK      = "sk"      // sort key of every item
	attrExpires = "expires" // TTL: unix seconds
	attrVersion = "v"       // account version (optimistic concurrency)
	attrBody    = "body"    // account JSON, held message body, outbox message body
	attrShard   = "sh"      // scan index partition key: "acct#000".."acct#255"
	attrListPK  = "lp"      // risk index partition key: "L#<band>"
	attrListSK  = "ls"      // risk index sort key: "<score, 3 digits>#<id>"
	attrSummary = "sum"     // store.Summary JSON, the risk index's only projected attribute
	attrIDs     = "ids"     // a receipt's message-id marks, 8 bytes each, sorted

	// RiskIndex is the sparse GSI that lists accounts most at risk first.
	RiskIndex = "risk"
	// ShardIndex is the KEYS_ONLY GSI recompute enumerates accounts through.
	ShardIndex = "shard"
	// ScanShards is the number of fixed shard keys accounts are spread over in ShardIndex;
	// Scan's shards should be at most this (and ideally divide it).
	ScanShards = 256

	// OutboxTTL is how long an outbox item nobody deleted (its publication kept failing past
	// the stream's 24 hours) stays before DynamoDB's TTL removes it.
	OutboxTTL = 30 * 24 * time.Hour
)

// Store is a store.Store on one DynamoDB table.
type Store struct {
	db    API
	table string
	now   func() time.Time
	// retries bounds the BatchGetItem rounds that re-request UnprocessedKeys; backoff is the
	// first pause between them, doubled each round.
	retries int
	backoff time.Duration
}

var _ store.Store = (*Store)(nil)

// Option configures New.
type Option func(*Store)

// WithClock makes the store judge expiry (markers, held messages, history) by now instead of
// the wall clock, as bolt.WithClock does.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithBatchRetries sets how many times UnprocessedKeys of a BatchGetItem are requested again
// (default 8) and the first pause between rounds (default 20 ms, doubling).
func WithBatchRetries(n int, backoff time.Duration) Option {
	return func(s *Store) { s.retries, s.backoff = n, backoff }
}

// New returns a store on table through db (a *dynamodb.Client from config.LoadDefaultConfig,
// which honours AWS_ENDPOINT_URL). The table must exist with the layout CreateTable makes.
func New(db API, table string, opts ...Option) *Store {
	s := &Store{db: db, table: table, now: time.Now, retries: 8, backoff: 20 * time.Millisecond}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Keys of each item type.
func accountKey(id string) (string, string)  { return "A#" + id, "A" }
func markerKey(k string) (string, string)    { return "M#" + k, "M" }
func linkKey(k string) (string, string)      { return "L#" + k, "L" }
func heldKey(u, msg string) (string, string) { return "H#" + u, "H#" + msg }
func historyKey(id string, day int32) (string, string) {
	return "A#" + id, fmt.Sprintf("D#%010d", uint32(day)^1<<31)
}

// receiptKey shares the account's partition; the bucket is offset so that buckets sort
// numerically, as history days do.
func receiptKey(k store.ReceiptKey) (string, string) {
	return "A#" + k.Account, fmt.Sprintf("R#%020d", uint64(k.Bucket)^1<<63)
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func bin(b []byte) types.AttributeValue   { return &types.AttributeValueMemberB{Value: b} }
func boolean(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func getB(item map[string]types.AttributeValue, name string) []byte {
	if v, ok := item[name].(*types.AttributeValueMemberB); ok {
		return v.Value
	}
	return nil
}

// live reports whether an item's TTL is still ahead of now; an item without one never expires.
func live(item map[string]types.AttributeValue, now time.Time) bool {
	if _, ok := item[attrExpires]; !ok {
		return true
	}
	return getN(item, attrExpires) > now.Unix()
}

// shardOf is the fixed scan shard of an account id: FNV-1a of the id modulo ScanShards.
func shardOf(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % ScanShards)
}

func shardKey(n int) string { return fmt.Sprintf("acct#%03d", n) }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*account.Account, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(accountKey(id)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, classify("dynamo: get account "+id, err)
	}
	if out.Item == nil {
		return nil, store.ErrNotFound
	}
	return decodeAccount(out.Item)
}

func decodeAccount(item map[string]types.AttributeValue) (*account.Account, error) {
	var a account.Account
	if err := json.Unmarshal(getB(item, attrBody), &a); err != nil {
		return nil, fault.E("dynamo: decode account "+getS(item, attrPK), fault.Internal, err)
	}
	return &a, nil
}

// Seen implements store.Store: one strongly consistent BatchGetItem per 100 keys.
func (s *Store) Seen(ctx context.Context, keys []string) (map[string]bool, error) {
	items, err := s.batchGet(ctx, "seen", keys, markerKey, true)
	if err != nil {
		return nil, err
	}
	now := s.now()
	seen := map[string]bool{}
	for k, item := range items {
		if live(item, now) {
			seen[k] = true
		}
	}
	return seen, nil
}

// Received implements store.Store: one strongly consistent BatchGetItem per 100 keys.
func (s *Store) Received(ctx context.Context, keys []store.ReceiptKey) (map[store.ReceiptKey]store.Receipt, error) {
	byName := make(map[string]store.ReceiptKey, len(keys))
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		name := k.Account + "\x00" + strconv.FormatInt(k.Bucket, 10)
		byName[name] = k
		names = append(names, name)
	}
	items, err := s.batchGet(ctx, "received", names, func(name string) (string, string) { return receiptKey(byName[name]) }, true)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make(map[store.ReceiptKey]store.Receipt, len(items))
	for name, item := range items {
		if !live(item, now) {
			continue
		}
		r := store.Receipt{ReceiptKey: byName[name], Expires: time.Unix(getN(item, attrExpires), 0).UTC()}
		ids := getB(item, attrIDs)
		r.IDs = make([]uint64, 0, len(ids)/8)
		for i := 0; i+8 <= len(ids); i += 8 {
			r.IDs = append(r.IDs, binary.BigEndian.Uint64(ids[i:]))
		}
		out[r.ReceiptKey] = r
	}
	return out, nil
}

// receiptItem is a receipt as stored: its ids packed 8 bytes each in one binary attribute.
func receiptItem(r store.Receipt) map[string]types.AttributeValue {
	ids := make([]byte, 0, 8*len(r.IDs))
	for _, id := range r.IDs {
		ids = binary.BigEndian.AppendUint64(ids, id)
	}
	item := key(receiptKey(r.ReceiptKey))
	item[attrIDs] = bin(ids)
	item[attrExpires] = num(r.Expires.Unix())
	return item
}

// Links implements store.Store: one strongly consistent BatchGetItem per 100 keys.
func (s *Store) Links(ctx context.Context, keys []string) (map[string]store.Target, error) {
	items, err := s.batchGet(ctx, "links", keys, linkKey, true)
	if err != nil {
		return nil, err
	}
	out := make(map[string]store.Target, len(items))
	for k, item := range items {
		t := store.Target{Account: getS(item, "acct"), Source: getS(item, "src"), At: getN(item, "at")}
		if b, ok := item["pending"].(*types.AttributeValueMemberBOOL); ok {
			t.Pending = b.Value
		}
		out[k] = t
	}
	return out, nil
}

// batchGet reads the items of keys (made into table keys by keyOf) through batchRead and
// returns the items found by the key that asked for them.
func (s *Store) batchGet(ctx context.Context, op string, keys []string, keyOf func(string) (string, string), consistent bool) (map[string]map[string]types.AttributeValue, error) {
	byKey := map[string]string{} // pk NUL sk → the key that asked for it
	var uniq []string
	for _, k := range keys {
		pk, sk := keyOf(k)
		if _, dup := byKey[pk+"\x00"+sk]; !dup {
			byKey[pk+"\x00"+sk] = k
			uniq = append(uniq, k)
		}
	}
	found := make(map[string]map[string]types.AttributeValue, len(uniq))
	req := make([]map[string]types.AttributeValue, len(uniq))
	for i, k := range uniq {
		req[i] = key(keyOf(k))
	}
	err := s.batchRead(ctx, op, req, consistent, "", func(item map[string]types.AttributeValue) {
		found[byKey[getS(item, attrPK)+"\x00"+getS(item, attrSK)]] = item
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// what names the item of a transaction a cancellation reason is about.
type what struct{ on, key string }

// Commit implements store.Store as one TransactWriteItems.
func (s *Store) Commit(ctx context.Context, t store.Tx) error {
	if err := t.Check(); err != nil {
		return err
	}
	if t.Size() == 0 {
		return nil
	}
	t, guard, err := distinct(t)
	if err != nil {
		return err
	}
	now := s.now()
	var items []types.TransactWriteItem
	var whats []what
	total := 0
	add := func(it types.TransactWriteItem, w what, item map[string]types.AttributeValue) error {
		if item != nil {
			n := itemSize(item)
			if n > store.MaxItemBytes {
				return store.TooLarge("%s %s is %d bytes, at most %d", w.on, w.key, n, store.MaxItemBytes)
			}
			total += n
		}
		items = append(items, it)
		whats = append(whats, w)
		return nil
	}
	for _, p := range t.Accounts {
		item, err := accountItem(p)
		if err != nil {
			return err
		}
		put := &types.Put{TableName: &s.table, Item: item, ExpressionAttributeNames: map[string]string{"#pk": attrPK}}
		if p.Expect == 0 {
			put.ConditionExpression = aws.String("attribute_not_exists(#pk)")
		} else {
			put.ConditionExpression = aws.String("#v = :v")
			put.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
			put.ExpressionAttributeValues = map[string]types.AttributeValue{":v": num(p.Expect)}
		}
		if err := add(types.TransactWriteItem{Put: put}, what{store.OnAccount, p.Account.ID}, item); err != nil {
			return err
		}
	}
	for _, m := range t.Markers {
		item := key(markerKey(m.Key))
		item[attrExpires] = num(m.Expires.Unix())
		put := &types.Put{TableName: &s.table, Item: item,
			ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #e <= :now"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#e": attrExpires},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.Unix())}}
		if err := add(types.TransactWriteItem{Put: put}, what{store.OnMarker, m.Key}, item); err != nil {
			return err
		}
	}
	for _, l := range t.Links {
		item := key(linkKey(l.Key))
		item["acct"] = str(l.Account)
		if l.Source != "" {
			item["src"] = str(l.Source)
		}
		if l.At != 0 {
			item["at"] = num(l.At)
		}
		if l.Pending {
			item["pending"] = boolean(true)
		}
		put := &types.Put{TableName: &s.table, Item: item}
		put.ConditionExpression, put.ExpressionAttributeNames, put.ExpressionAttributeValues = linkCondition(l)
		if err := add(types.TransactWriteItem{Put: put}, what{store.OnLink, l.Key}, item); err != nil {
			return err
		}
	}
	for i, m := range t.Outbox {
		item := outboxItem(t, i, now)
		if err := add(types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item}}, what{"outbox", m.ID}, item); err != nil {
			return err
		}
	}
	for _, h := range t.Release {
		d := &types.Delete{TableName: &s.table, Key: key(heldKey(h.User, h.MessageID))}
		if err := add(types.TransactWriteItem{Delete: d}, what{"held", h.User + "/" + h.MessageID}, nil); err != nil {
			return err
		}
		total += len(h.User) + len(h.MessageID) + 8
	}
	for _, k := range t.Unlink {
		d := &types.Delete{TableName: &s.table, Key: key(linkKey(k))}
		if l, ok := guard[k]; ok {
			d.ConditionExpression, d.ExpressionAttributeNames, d.ExpressionAttributeValues = linkCondition(l)
		}
		if err := add(types.TransactWriteItem{Delete: d}, what{store.OnLink, k}, nil); err != nil {
			return err
		}
		total += len(k) + 8
	}
	for _, p := range t.History {
		item := key(historyKey(p.Account, p.Day))
		item["day"] = num(int64(p.Day))
		item["score"] = num(int64(p.Score))
		item["band"] = str(p.Band)
		item[attrExpires] = num(p.Expires.Unix())
		if err := add(types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item}}, what{"history", fmt.Sprintf("%s/%d", p.Account, p.Day)}, item); err != nil {
			return err
		}
	}
	for _, r := range t.Receipts {
		item := receiptItem(r)
		if err := add(types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item}}, what{"receipt", fmt.Sprintf("%s/%d", r.Account, r.Bucket)}, item); err != nil {
			return err
		}
	}
	if total > store.MaxTxBytes {
		return store.TooLarge("%d bytes, at most %d", total, store.MaxTxBytes)
	}
	if len(items) == 1 {
		return s.single(ctx, items[0], whats[0])
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		return cancelled(tce, whats)
	}
	return classify("dynamo: commit", err)
}

// linkCondition is the compare-and-set condition of l: none when forced, "no link yet" when
// it expects none, else "the link points at Expect".
func linkCondition(l store.Link) (*string, map[string]string, map[string]types.AttributeValue) {
	switch {
	case l.Force:
		return nil, nil, nil
	case l.Expect == "":
		return aws.String("attribute_not_exists(#pk)"), map[string]string{"#pk": attrPK}, nil
	default:
		return aws.String("#a = :a"), map[string]string{"#a": "acct"}, map[string]types.AttributeValue{":a": str(l.Expect)}
	}
}

// distinct returns t with every item named once, since a transaction may not touch an item
// twice, keeping what bolt does with the same Tx (every condition checked against the stored
// state, then the writes in order): a repeated marker is written once with the later expiry,
// a repeated history point, held message or unlink once (the last), a repeated link once
// with the values of the last and the one condition all its copies share. A link that is also
// unlinked ends deleted: its put is dropped and its condition returned in guard for the
// delete. Copies whose conditions cannot all hold (one account expected at two versions, one
// link at two targets) are the conflict bolt would report.
func distinct(t store.Tx) (store.Tx, map[string]store.Link, error) {
	out := t
	seenAcct := map[string]int{}
	out.Accounts = nil
	for _, p := range t.Accounts {
		if i, ok := seenAcct[p.Account.ID]; ok {
			if out.Accounts[i].Expect != p.Expect {
				return t, nil, &store.ConflictError{On: store.OnAccount, Key: p.Account.ID}
			}
			out.Accounts[i] = p
			continue
		}
		seenAcct[p.Account.ID] = len(out.Accounts)
		out.Accounts = append(out.Accounts, p)
	}
	seenMarker := map[string]int{}
	out.Markers = nil
	for _, m := range t.Markers {
		if i, ok := seenMarker[m.Key]; ok {
			if m.Expires.After(out.Markers[i].Expires) {
				out.Markers[i] = m
			}
			continue
		}
		seenMarker[m.Key] = len(out.Markers)
		out.Markers = append(out.Markers, m)
	}
	unlinked := map[string]bool{}
	out.Unlink = nil
	for _, k := range t.Unlink {
		if !unlinked[k] {
			unlinked[k] = true
			out.Unlink = append(out.Unlink, k)
		}
	}
	var guard map[string]store.Link
	seenLink := map[string]int{}
	out.Links = nil
	for _, l := range t.Links {
		i, ok := seenLink[l.Key]
		if !ok {
			seenLink[l.Key] = len(out.Links)
			out.Links = append(out.Links, l)
			continue
		}
		prev := out.Links[i]
		switch {
		case l.Force:
			l.Force, l.Expect = prev.Force, prev.Expect
		case !prev.Force && prev.Expect != l.Expect:
			return t, nil, &store.ConflictError{On: store.OnLink, Key: l.Key}
		}
		out.Links[i] = l
	}
	if len(unlinked) > 0 {
		kept := out.Links[:0:0]
		for _, l := range out.Links {
			if !unlinked[l.Key] {
				kept = append(kept, l)
				continue
			}
			if !l.Force {
				if guard == nil {
					guard = map[string]store.Link{}
				}
				guard[l.Key] = l
			}
		}
		out.Links = kept
	}
	type heldID struct{ user, msg string }
	seenHeld := map[heldID]bool{}
	out.Release = nil
	for _, h := range t.Release {
		if k := (heldID{h.User, h.MessageID}); !seenHeld[k] {
			seenHeld[k] = true
			out.Release = append(out.Release, h)
		}
	}
	type day struct {
		acct string
		day  int32
	}
	seenDay := map[day]int{}
	out.History = nil
	for _, p := range t.History {
		if i, ok := seenDay[day{p.Account, p.Day}]; ok {
			out.History[i] = p
			continue
		}
		seenDay[day{p.Account, p.Day}] = len(out.History)
		out.History = append(out.History, p)
	}
	seenReceipt := map[store.ReceiptKey]int{}
	out.Receipts = nil
	for _, r := range t.Receipts {
		if i, ok := seenReceipt[r.ReceiptKey]; ok {
			out.Receipts[i] = r
			continue
		}
		seenReceipt[r.ReceiptKey] = len(out.Receipts)
		out.Receipts = append(out.Receipts, r)
	}
	return out, guard, nil
}

// single writes a one-item Tx as a plain conditional PutItem or DeleteItem, which costs half
// the write units of a transaction and is just as atomic.
func (s *Store) single(ctx context.Context, it types.TransactWriteItem, w what) error {
	var err error
	if p := it.Put; p != nil {
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
			ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues})
	} else {
		d := it.Delete
		_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: d.TableName, Key: d.Key, ConditionExpression: d.ConditionExpression,
			ExpressionAttributeNames: d.ExpressionAttributeNames, ExpressionAttributeValues: d.ExpressionAttributeValues})
	}
	var ccf *types.ConditionalCheckFailedException
	var tc *types.TransactionConflictException
	if errors.As(err, &ccf) || errors.As(err, &tc) {
		// A plain write that met a transaction on its item conflicts like a transaction
		// would: the caller re-reads and tries again at once.
		return &store.ConflictError{On: w.on, Key: w.key}
	}
	return classify("dynamo: commit", err)
}

// cancelled maps a transaction's cancellation reasons, which come in item order, to the error
// of the first item that says why: a failed condition or a concurrent transaction on the item
// is a *store.ConflictError naming it; throttling is transient; a validation error is
// permanent.
func cancelled(tce *types.TransactionCanceledException, whats []what) error {
	for i, r := range tce.CancellationReasons {
		code := aws.ToString(r.Code)
		if i >= len(whats) {
			break
		}
		switch code {
		case "", "None":
			continue
		case "ConditionalCheckFailed", "TransactionConflict":
			return &store.ConflictError{On: whats[i].on, Key: whats[i].key}
		case "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			return fault.E("dynamo: commit", fault.Transient, fmt.Errorf("%s on %s %q: %w", code, whats[i].on, whats[i].key, tce))
		case "ValidationError", "ItemCollectionSizeLimitExceeded":
			return fault.E("dynamo: commit", fault.Permanent, fmt.Errorf("%s on %s %q: %w", code, whats[i].on, whats[i].key, tce))
		}
	}
	return fault.E("dynamo: commit", fault.Transient, tce)
}

// accountItem is the item of an account put: its JSON (with the new version), the version as a
// number for the condition, its scan shard, and — when it is listed — the risk index's keys and
// the summary that index projects.
func accountItem(p store.Put) (map[string]types.AttributeValue, error) {
	a := *p.Account
	a.Version = p.Expect + 1
	body, err := json.Marshal(&a)
	if err != nil {
		return nil, fault.E("dynamo: encode account "+a.ID, fault.Internal, err)
	}
	item := key(accountKey(a.ID))
	item[attrVersion] = num(a.Version)
	item[attrBody] = bin(body)
	item[attrShard] = str(shardKey(shardOf(a.ID)))
	if a.Health.Band != "" && a.MergedInto == "" {
		sum := p.Summary
		if sum.ID != a.ID {
			sum = store.NewSummary(&a)
		}
		sb, err := json.Marshal(sum)
		if err != nil {
			return nil, fault.E("dynamo: encode summary "+a.ID, fault.Internal, err)
		}
		item[attrListPK] = str("L#" + a.Health.Band)
		item[attrListSK] = str(listSK(a.Health.Score, a.ID))
		item[attrSummary] = str(string(sb))
	}
	return item, nil
}

// listSK orders one band's accounts by score ascending, then id.
func listSK(score int, id string) string { return fmt.Sprintf("%03d#%s", score, id) }

// outboxItem is the i-th outbox message of t. Its partition is the first account of the
// transaction ("O#<account>") and its sort key that account's new version and the message's
// place in the transaction, so one account's messages sort (and stream) in commit order; a
// transaction without an account keys each message by its own id.
func outboxItem(t store.Tx, i int, now time.Time) map[string]types.AttributeValue {
	m := t.Outbox[i]
	var item map[string]types.AttributeValue
	if len(t.Accounts) > 0 {
		p := t.Accounts[0]
		item = key("O#"+p.Account.ID, fmt.Sprintf("%012d#%03d", p.Expect+1, i))
	} else {
		item = key("O#!"+m.ID, "0")
	}
	item["id"] = str(m.ID)
	if len(m.Body) > 0 { // an empty binary is legal on DynamoDB but breaks moto_server
		item[attrBody] = bin(m.Body)
	}
	if len(m.Attributes) > 0 {
		attrs := make(map[string]types.AttributeValue, len(m.Attributes))
		for k, v := range m.Attributes {
			attrs[k] = str(v)
		}
		item["attrs"] = &types.AttributeValueMemberM{Value: attrs}
	}
	item[attrExpires] = num(now.Add(OutboxTTL).Unix())
	indexOutbox(item, now) // the sweep's index (sweep.go)
	return item
}

// itemSize is DynamoDB's size of an item: each attribute's name plus its value (strings and
// binaries by length, numbers by digits, maps and lists with their 3-byte overhead and 1 byte
// per element), the size the 400 KB limit and write units are measured in.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return (len(strings.TrimLeft(v.Value, "-0"))+1)/2 + 1
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += len(k) + valueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += valueSize(e) + 1
		}
		return n
	}
	return 0
}

// Hold implements store.Store with one PutItem (holding the same message again replaces it).
func (s *Store) Hold(ctx context.Context, h store.Held) error {
	item := key(heldKey(h.User, h.MessageID))
	if len(h.Body) > 0 {
		item[attrBody] = bin(h.Body)
	}
	item["at"] = num(h.At.UnixNano())
	item[attrExpires] = num(h.Expires.Unix())
	if n := itemSize(item); n > store.MaxItemBytes {
		return store.TooLarge("held message %s is %d bytes, at most %d", h.MessageID, n, store.MaxItemBytes)
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item})
	return classify("dynamo: hold", err)
}

// Held implements store.Store: a strongly consistent Query of the user's partition.
func (s *Store) Held(ctx context.Context, user string) ([]store.Held, error) {
	pk, _ := heldKey(user, "")
	now := s.now()
	var out []store.Held
	err := s.query(ctx, "held", &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
		ConsistentRead:            aws.Bool(true),
	}, func(item map[string]types.AttributeValue) bool {
		if live(item, now) {
			out = append(out, store.Held{User: user, MessageID: strings.TrimPrefix(getS(item, attrSK), "H#"), Body: getB(item, attrBody),
				At: time.Unix(0, getN(item, "at")).UTC(), Expires: time.Unix(getN(item, attrExpires), 0).UTC()})
		}
		return true
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, err
}

// HeldCount implements store.Store: a strongly consistent Query that counts the user's
// unexpired items (Select COUNT with a filter on the TTL), returning no body.
func (s *Store) HeldCount(ctx context.Context, user string) (int, error) {
	pk, _ := heldKey(user, "")
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("#pk = :pk"),
		FilterExpression:          aws.String("#e > :now"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#e": attrExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk), ":now": num(s.now().Unix())},
		ConsistentRead:            aws.Bool(true),
		Select:                    types.SelectCount,
	}
	n := 0
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return 0, classify("dynamo: held count", err)
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// query runs in on the table page after page, handing each item to f until f returns false.
func (s *Store) query(ctx context.Context, op string, in *dynamodb.QueryInput, f func(map[string]types.AttributeValue) bool) error {
	in.TableName = &s.table
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return classify("dynamo: "+op, err)
		}
		for _, item := range out.Items {
			if !f(item) {
				return nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// History implements store.Store: a Query of the account's partition over the day range.
func (s *Store) History(ctx context.Context, id string, from, to int32) ([]store.Point, error) {
	if from >= to {
		return nil, nil
	}
	pk, lo := historyKey(id, from)
	_, hi := historyKey(id, to-1)
	now := s.now()
	var out []store.Point
	err := s.query(ctx, "history", &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk), ":lo": str(lo), ":hi": str(hi)},
	}, func(item map[string]types.AttributeValue) bool {
		if live(item, now) {
			out = append(out, store.Point{Account: id, Day: int32(getN(item, "day")), Score: int(getN(item, "score")),
				Band: getS(item, "band"), Expires: time.Unix(getN(item, attrExpires), 0).UTC()})
		}
		return true
	})
	return out, err
}

// listBands are the risk index's partitions in the order a list of every band walks them.
var listBands = []string{account.BandBad, account.BandNormal, account.BandGood}

// List implements store.Store: a Query of the risk index, one partition per band (BAD, then
// NORMAL, then GOOD when no band is asked for), filtering segment and churned from the
// projected summaries. The cursor's position is the band and the index sort key of the last
// summary returned.
func (s *Store) List(ctx context.Context, q store.Query) (store.Page, error) {
	page := store.Page{Summaries: []store.Summary{}}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	bands := listBands
	if q.Band != "" {
		bands = []string{q.Band}
	}
	scope := fmt.Sprintf("list\x00%s\x00%s\x00%t", q.Band, q.Segment, q.IncludeChurned)
	var afterBand, afterSK string
	if q.Cursor != "" {
		pos, err := store.DecodeCursor(scope, q.Cursor)
		if err != nil {
			return page, err
		}
		b, sk, ok := strings.Cut(string(pos), "\x00")
		if !ok || !strings.Contains(sk, "#") || indexOf(bands, b) < 0 {
			return page, store.ErrInvalidCursor
		}
		afterBand, afterSK = b, sk
		bands = bands[indexOf(bands, b):]
	}
	var last string
	for _, band := range bands {
		in := &dynamodb.QueryInput{
			IndexName:                 aws.String(RiskIndex),
			KeyConditionExpression:    aws.String("#lp = :lp"),
			ExpressionAttributeNames:  map[string]string{"#lp": attrListPK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":lp": str("L#" + band)},
			Limit:                     aws.Int32(int32(min(limit+1, 1000))),
		}
		if band == afterBand {
			_, id, _ := strings.Cut(afterSK, "#")
			pk, sk := accountKey(id)
			in.ExclusiveStartKey = map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk), attrListPK: str("L#" + band), attrListSK: str(afterSK)}
		}
		var err error
		full := false
		qerr := s.query(ctx, "list", in, func(item map[string]types.AttributeValue) bool {
			var sum store.Summary
			if err = json.Unmarshal([]byte(getS(item, attrSummary)), &sum); err != nil {
				err = fault.E("dynamo: decode summary "+getS(item, attrPK), fault.Internal, err)
				return false
			}
			if (q.Segment != "" && sum.Segment != q.Segment) || (!q.IncludeChurned && sum.Churned) {
				return true
			}
			if len(page.Summaries) == limit {
				page.Next = store.EncodeCursor(scope, []byte(last))
				full = true
				return false
			}
			page.Summaries = append(page.Summaries, sum)
			last = band + "\x00" + getS(item, attrListSK)
			return true
		})
		if qerr != nil {
			return page, qerr
		}
		if err != nil {
			return page, err
		}
		if full {
			break
		}
	}
	return page, nil
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// Scan implements store.Store through the KEYS_ONLY shard index: shard of shards covers the
// fixed shard keys n (0 ≤ n < ScanShards) with n % shards == shard, walked in order, each by
// account key; the accounts of a page are then read with BatchGetItem. The cursor's position
// is the fixed shard and the account key of the last account returned.
func (s *Store) Scan(ctx context.Context, shard, shards int, cursor string, limit int) ([]*account.Account, string, error) {
	if shards < 1 {
		shards = 1
	}
	if shard < 0 || shard >= shards {
		return nil, "", fault.New("dynamo: scan", fault.Invalid, fmt.Sprintf("shard %d of %d: no such shard", shard, shards))
	}
	if limit <= 0 {
		limit = 100
	}
	scope := fmt.Sprintf("scan\x00%d\x00%d", shard, shards)
	first, afterPK := shard, ""
	if cursor != "" {
		pos, err := store.DecodeCursor(scope, cursor)
		if err != nil {
			return nil, "", err
		}
		n, pk, ok := strings.Cut(string(pos), "\x00")
		fixed, perr := strconv.Atoi(n)
		if !ok || perr != nil || fixed < 0 || fixed >= ScanShards || fixed%shards != shard || !strings.HasPrefix(pk, "A#") {
			return nil, "", store.ErrInvalidCursor
		}
		first, afterPK = fixed, pk
	}
	type ref struct {
		fixed int
		pk    string
	}
	var refs []ref // up to limit+1: the extra one says whether there is a next page
	for n := first; n < ScanShards && len(refs) <= limit; n += shards {
		in := &dynamodb.QueryInput{
			IndexName:                 aws.String(ShardIndex),
			KeyConditionExpression:    aws.String("#sh = :sh"),
			ExpressionAttributeNames:  map[string]string{"#sh": attrShard},
			ExpressionAttributeValues: map[string]types.AttributeValue{":sh": str(shardKey(n))},
			Limit:                     aws.Int32(int32(min(limit+1, 1000))),
		}
		if n == first && afterPK != "" {
			in.ExclusiveStartKey = map[string]types.AttributeValue{attrPK: str(afterPK), attrSK: str("A"), attrShard: str(shardKey(n))}
		}
		err := s.query(ctx, "scan", in, func(item map[string]types.AttributeValue) bool {
			refs = append(refs, ref{n, getS(item, attrPK)})
			return len(refs) <= limit
		})
		if err != nil {
			return nil, "", err
		}
	}
	next := ""
	if len(refs) > limit {
		refs = refs[:limit]
		last := refs[limit-1]
		next = store.EncodeCursor(scope, []byte(strconv.Itoa(last.fixed)+"\x00"+last.pk))
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = strings.TrimPrefix(r.pk, "A#")
	}
	items, err := s.batchGet(ctx, "scan", ids, accountKey, false)
	if err != nil {
		return nil, "", err
	}
	out := make([]*account.Account, 0, len(ids))
	for _, id := range ids {
		item, ok := items[id]
		if !ok {
			continue // deleted between the index read and the batch read
		}
		a, err := decodeAccount(item)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	return out, next, nil
}
