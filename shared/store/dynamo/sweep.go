package dynamo

import (
	"context"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/store"
)

// The sparse outbox index: only outbox items carry its keys, so it holds exactly the items not
// yet published (and deleted), ordered by write time, for the sweep that publishes what the
// stream could not (the stream keeps records 24 hours; an outbox item lives 30 days).
const (
	attrOutboxShard = "ob"  // outbox index partition key: "ob#0".."ob#3"
	attrOutboxAt    = "obt" // outbox index sort key: when the item was written, unix seconds

	// OutboxIndex is the sparse KEYS_ONLY GSI over outbox items by write time.
	OutboxIndex = "outbox"
	// OutboxShards is the number of fixed partition keys of OutboxIndex: a few, so a burst of
	// outbox writes (a recompute moving many bands) spreads over index partitions, and few, so
	// a sweep costs OutboxShards queries when there is nothing to do.
	OutboxShards = 4
)

// outboxIndexAttributes are the key attributes OutboxIndex adds to TableInput.
func outboxIndexAttributes() []types.AttributeDefinition {
	return []types.AttributeDefinition{
		{AttributeName: aws.String(attrOutboxShard), AttributeType: types.ScalarAttributeTypeS},
		{AttributeName: aws.String(attrOutboxAt), AttributeType: types.ScalarAttributeTypeN},
	}
}

// outboxIndex is OutboxIndex's definition. KEYS_ONLY: an index entry is about 60 bytes, so an
// outbox item costs one more write unit when written and one when deleted, where projecting its
// body (about 1.5 KB) would cost two each; the sweep reads the few items it finds from the
// table instead, consistently, which also drops items the stream publisher deleted meanwhile.
func outboxIndex() types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(OutboxIndex),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrOutboxShard), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrOutboxAt), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
	}
}

// indexOutbox adds OutboxIndex's keys to an outbox item written at now: the shard of its
// partition key (so one account's items share a shard) and the write time.
func indexOutbox(item map[string]types.AttributeValue, now time.Time) {
	h := fnv.New32a()
	h.Write([]byte(getS(item, attrPK)))
	item[attrOutboxShard] = str(outboxShardKey(int(h.Sum32() % OutboxShards)))
	item[attrOutboxAt] = num(now.Unix())
}

func outboxShardKey(n int) string { return "ob#" + strconv.Itoa(n) }

// OutboxItem is an unpublished outbox item read back from the table.
type OutboxItem struct {
	Key     OutboxKey
	Message store.Message
	// Written is when the commit wrote it (the store's clock, to the second).
	Written time.Time
}

// StaleOutbox walks the outbox items written at or before before, shard by shard, each
// oldest first, and hands them to page a page at a time (at most 100; items of one account
// in commit order), until page returns false. The index is eventually consistent; each
// page's items are then read from the table with a consistent BatchGetItem, so an item the
// stream publisher deleted meanwhile is not handed out (it may still be, if deleted after that
// read: at-least-once). An item without an event id is skipped (it never decodes; its TTL
// removes it).
func (s *Store) StaleOutbox(ctx context.Context, before time.Time, page func([]OutboxItem) bool) error {
	for n := 0; n < OutboxShards; n++ {
		in := &dynamodb.QueryInput{
			TableName:                 &s.table,
			IndexName:                 aws.String(OutboxIndex),
			KeyConditionExpression:    aws.String("#ob = :ob AND #t <= :t"),
			ExpressionAttributeNames:  map[string]string{"#ob": attrOutboxShard, "#t": attrOutboxAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":ob": str(outboxShardKey(n)), ":t": num(before.Unix())},
			Limit:                     aws.Int32(100),
		}
		for {
			out, err := s.db.Query(ctx, in)
			if err != nil {
				return classify("dynamo: stale outbox", err)
			}
			if len(out.Items) > 0 {
				items, err := s.outboxItems(ctx, out.Items)
				if err != nil {
					return err
				}
				if len(items) > 0 && !page(items) {
					return nil
				}
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	return nil
}

// outboxItems reads the outbox items that index entries name, consistently, and orders them
// by write time, then key (an account's items sort by version and place in the commit).
func (s *Store) outboxItems(ctx context.Context, entries []map[string]types.AttributeValue) ([]OutboxItem, error) {
	keys := make([]map[string]types.AttributeValue, len(entries))
	for i, e := range entries {
		keys[i] = key(getS(e, attrPK), getS(e, attrSK))
	}
	var out []OutboxItem
	err := s.batchRead(ctx, "stale outbox", keys, true, "", func(item map[string]types.AttributeValue) {
		m := store.Message{ID: getS(item, "id"), Body: getB(item, attrBody)}
		if m.ID == "" {
			return
		}
		if attrs, ok := item["attrs"].(*types.AttributeValueMemberM); ok {
			m.Attributes = make(map[string]string, len(attrs.Value))
			for k, v := range attrs.Value {
				if v, ok := v.(*types.AttributeValueMemberS); ok {
					m.Attributes[k] = v.Value
				}
			}
		}
		out = append(out, OutboxItem{Key: OutboxKey{PK: getS(item, attrPK), SK: getS(item, attrSK)}, Message: m,
			Written: time.Unix(getN(item, attrOutboxAt), 0).UTC()})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Written.Equal(b.Written) {
			return a.Written.Before(b.Written)
		}
		if a.Key.PK != b.Key.PK {
			return a.Key.PK < b.Key.PK
		}
		return a.Key.SK < b.Key.SK
	})
	return out, nil
}
