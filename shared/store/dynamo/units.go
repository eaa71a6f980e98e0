package dynamo

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/store"
)

// Units are the write units (on demand: write request units) one write is billed, split
// between the table and its indexes, so a cost estimate follows the layout instead of
// constants.
type Units struct {
	// Table is the table's units: each item one per started KB (a delete: at least one), each
	// item of a transaction twice, a one-item commit (a plain conditional write) once.
	Table int
	// Indexes is the index writes the commit causes (not doubled by a transaction): the risk
	// row of each listed account (assumed rewritten: its summary carries the update time),
	// the shard row of each account created, the outbox index entry of each outbox item.
	Indexes int
}

// Total is Table plus Indexes.
func (u Units) Total() int { return u.Table + u.Indexes }

// kb is the units of writing an item of n bytes: one per started KB.
func kb(n int) int { return max(1, (n+1023)/1024) }

// CommitUnits returns what Commit(tx) is billed, in write units, from the items Commit would
// write at now (the same encoding: accountItem, outboxItem, the marker, link, history and
// receipt items, each item once as distinct makes it). A delete (a released held message, an
// unlinked key) counts one unit: its item's size is not known without reading it.
func CommitUnits(tx store.Tx, now time.Time) (Units, error) {
	t, _, err := distinct(tx)
	if err != nil {
		return Units{}, err
	}
	var u Units
	items := 0
	for _, p := range t.Accounts {
		item, err := accountItem(p)
		if err != nil {
			return Units{}, err
		}
		u.Table += kb(itemSize(item))
		if _, listed := item[attrListPK]; listed {
			u.Indexes += kb(indexEntrySize(item, attrListPK, attrListSK, attrSummary))
		}
		if p.Expect == 0 {
			u.Indexes++ // the shard row, written once at the account's creation
		}
		items++
	}
	for _, m := range t.Markers {
		item := key(markerKey(m.Key))
		item[attrExpires] = num(m.Expires.Unix())
		u.Table += kb(itemSize(item))
		items++
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
		u.Table += kb(itemSize(item))
		items++
	}
	for i := range t.Outbox {
		item := outboxItem(t, i, now)
		u.Table += kb(itemSize(item))
		u.Indexes += kb(indexEntrySize(item, attrOutboxShard, attrOutboxAt))
		items++
	}
	u.Table += len(t.Release) + len(t.Unlink)
	items += len(t.Release) + len(t.Unlink)
	for _, p := range t.History {
		item := key(historyKey(p.Account, p.Day))
		item["day"] = num(int64(p.Day))
		item["score"] = num(int64(p.Score))
		item["band"] = str(p.Band)
		item[attrExpires] = num(p.Expires.Unix())
		u.Table += kb(itemSize(item))
		items++
	}
	for _, r := range t.Receipts {
		u.Table += kb(itemSize(receiptItem(r)))
		items++
	}
	if items > 1 {
		u.Table *= 2
	}
	return u, nil
}

// PublishedUnits returns what the publisher's deletes of tx's outbox items cost once they are
// published: each item's size (a delete is billed by the item it removes) and its outbox
// index entry.
func PublishedUnits(tx store.Tx, now time.Time) Units {
	var u Units
	for i := range tx.Outbox {
		item := outboxItem(tx, i, now)
		u.Table += kb(itemSize(item))
		u.Indexes += kb(indexEntrySize(item, attrOutboxShard, attrOutboxAt))
	}
	return u
}

// indexEntrySize is the size of an item's entry in an index: the table's keys, the index's
// keys and projected attributes named in attrs, plus the 100 bytes of overhead DynamoDB adds
// to every index entry.
func indexEntrySize(item map[string]types.AttributeValue, attrs ...string) int {
	entry := map[string]types.AttributeValue{attrPK: item[attrPK], attrSK: item[attrSK]}
	for _, a := range attrs {
		if v, ok := item[a]; ok {
			entry[a] = v
		}
	}
	return itemSize(entry) + 100
}

// AccountBytes is the size DynamoDB measures of the item Commit writes for p (what storage
// and write units are billed by).
func AccountBytes(p store.Put) (int, error) {
	item, err := accountItem(p)
	if err != nil {
		return 0, err
	}
	return itemSize(item), nil
}

// ReceiptBytes is the size DynamoDB measures of the item Commit writes for r.
func ReceiptBytes(r store.Receipt) int { return itemSize(receiptItem(r)) }

// MarkerBytes is the size DynamoDB measures of the item Commit writes for m.
func MarkerBytes(m store.Marker) int {
	item := key(markerKey(m.Key))
	item[attrExpires] = num(m.Expires.Unix())
	return itemSize(item)
}
