package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
)

// outboxPrefix starts the partition key of every outbox item (see outboxItem).
const outboxPrefix = "O#"

// OutboxKey is the key of one outbox item, as a DynamoDB stream record carries it.
type OutboxKey struct {
	PK, SK string
}

// OutboxStreamKey returns the key of the item a stream record's Keys name, and whether that
// item is an outbox item; the publisher skips records of every other item type.
func OutboxStreamKey(keys map[string]events.DynamoDBAttributeValue) (OutboxKey, bool) {
	pk, sk := streamString(keys, attrPK), streamString(keys, attrSK)
	if !strings.HasPrefix(pk, outboxPrefix) || sk == "" {
		return OutboxKey{}, false
	}
	return OutboxKey{PK: pk, SK: sk}, true
}

// OutboxMessage decodes the NEW_IMAGE of an outbox item from a DynamoDB stream record into the
// message Commit wrote: its event id, body and attributes. An image that is not an outbox item,
// or lacks its event id, is an error (fault.Permanent: it will never decode).
func OutboxMessage(image map[string]events.DynamoDBAttributeValue) (store.Message, error) {
	if _, ok := OutboxStreamKey(image); !ok {
		return store.Message{}, fault.New("decode outbox item", fault.Permanent, "the image is not an outbox item (pk "+streamString(image, attrPK)+")")
	}
	m := store.Message{ID: streamString(image, "id")}
	if m.ID == "" {
		return store.Message{}, fault.New("decode outbox item", fault.Permanent, "the item has no event id")
	}
	if v, ok := image[attrBody]; ok && v.DataType() == events.DataTypeBinary {
		m.Body = v.Binary()
	}
	if v, ok := image["attrs"]; ok && v.DataType() == events.DataTypeMap {
		for k, a := range v.Map() {
			if a.DataType() != events.DataTypeString {
				continue
			}
			if m.Attributes == nil {
				m.Attributes = map[string]string{}
			}
			m.Attributes[k] = a.String()
		}
	}
	return m, nil
}

// streamString is the string attribute name of a stream image, or "" when it is absent or not
// a string.
func streamString(image map[string]events.DynamoDBAttributeValue, name string) string {
	if v, ok := image[name]; ok && v.DataType() == events.DataTypeString {
		return v.String()
	}
	return ""
}

// DeleteOutbox removes published outbox items, one DeleteItem each (an unconditional delete:
// deleting an item twice, as a redelivered stream record does, is harmless). It tries every
// key and returns the failures joined; an item left behind is removed by its TTL and was
// published already, so the caller only logs the error.
func (s *Store) DeleteOutbox(ctx context.Context, keys []OutboxKey) error {
	var errs []error
	for _, k := range keys {
		if !strings.HasPrefix(k.PK, outboxPrefix) {
			errs = append(errs, fault.New("delete outbox item", fault.Invalid, fmt.Sprintf("%q is not an outbox key", k.PK)))
			continue
		}
		_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key(k.PK, k.SK)})
		if err != nil {
			errs = append(errs, classify(fmt.Sprintf("delete outbox item %s/%s", k.PK, k.SK), err))
		}
	}
	return errors.Join(errs...)
}

// OutboxPending reports which of keys still name an outbox item: an item the publisher
// deleted was published, so a redelivered stream record of it need not be published again.
// Reads are strongly consistent (a delete just made must show), 100 keys a BatchGetItem,
// UnprocessedKeys requested again as for every batched read of the store.
func (s *Store) OutboxPending(ctx context.Context, keys []OutboxKey) (map[OutboxKey]bool, error) {
	pending := make(map[OutboxKey]bool, len(keys))
	seen := map[OutboxKey]bool{}
	var uniq []OutboxKey
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	req := make([]map[string]types.AttributeValue, len(uniq))
	for i, k := range uniq {
		req[i] = key(k.PK, k.SK)
	}
	err := s.batchRead(ctx, "outbox pending", req, true, "pk, sk", func(item map[string]types.AttributeValue) {
		pending[OutboxKey{PK: getS(item, attrPK), SK: getS(item, attrSK)}] = true
	})
	if err != nil {
		return nil, err
	}
	return pending, nil
}
