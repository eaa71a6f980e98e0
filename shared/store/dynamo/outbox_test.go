package dynamo

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/awstest"
	"github.com/churnsignal/churnsignal/shared/store"
)

// outboxItems returns the outbox items of the table, in key order.
func outboxItems(t *testing.T, db *dynamodb.Client, table string) []map[string]types.AttributeValue {
	t.Helper()
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		FilterExpression: aws.String("begins_with(pk, :o)"), ExpressionAttributeValues: map[string]types.AttributeValue{":o": str("O#")}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

func TestAStreamRecordOfAnOutboxItemDecodesToTheCommittedMessageAndIsPendingUntilDeleted(t *testing.T) {
	db := client(t)
	table := freshTable(t, db)
	s := New(db, table)
	messages := []store.Message{
		{ID: "evt_raised", Body: []byte(`{"id":"evt_raised","note":"exact bytes: é \"q\""}`),
			Attributes: map[string]string{"type": "churn_risk.raised", "kind": "involuntary", "band": "BAD", "segment": "high-touch"}},
		{ID: "evt_bare", Body: []byte(`{}`)},
	}
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: acct("acme", 40, "BAD")}}, Outbox: messages})

	items := outboxItems(t, db, table)
	if len(items) != len(messages) {
		t.Fatalf("%d outbox items, want %d", len(items), len(messages))
	}
	var keys []OutboxKey
	for i, item := range items {
		r := awstest.StreamRecord(t, "INSERT", "1000"+strings.Repeat("0", i), item)
		k, ok := OutboxStreamKey(r.Change.Keys)
		if !ok {
			t.Fatalf("record keys %v are not recognized as an outbox item", r.Change.Keys)
		}
		got, err := OutboxMessage(r.Change.NewImage)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, messages[i]) {
			t.Errorf("decoded %+v (body %s), want %+v (body %s)", got, got.Body, messages[i], messages[i].Body)
		}
		keys = append(keys, k)
	}
	if pending, err := s.OutboxPending(ctx, append(keys, OutboxKey{PK: "O#acme", SK: "999999999999#000"})); err != nil || len(pending) != len(keys) {
		t.Fatalf("before the delete %v are pending (%v), want the %d items only", pending, err, len(keys))
	}
	if err := s.DeleteOutbox(ctx, keys[:1]); err != nil {
		t.Fatal(err)
	}
	if pending, err := s.OutboxPending(ctx, keys); err != nil || pending[keys[0]] || !pending[keys[1]] {
		t.Fatalf("after deleting the first, pending %v (%v); want only the second", pending, err)
	}
	if err := s.DeleteOutbox(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if left := outboxItems(t, db, table); len(left) != 0 {
		t.Errorf("%d outbox items left after deleting them", len(left))
	}
	if err := s.DeleteOutbox(ctx, keys); err != nil {
		t.Errorf("deleting them again (a redelivered record): %v, want no error", err)
	}
}

func TestStreamRecordsOfOtherItemsAreNotOutboxItems(t *testing.T) {
	for _, tt := range []struct {
		name string
		item map[string]types.AttributeValue
	}{
		{"an account", map[string]types.AttributeValue{"pk": str("A#acme"), "sk": str("A"), "v": num(1)}},
		{"a dedupe marker", map[string]types.AttributeValue{"pk": str("M#stripe:evt_1"), "sk": str("M")}},
		{"a link", map[string]types.AttributeValue{"pk": str("L#stripe:cus_1"), "sk": str("L"), "acct": str("acme")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := awstest.StreamRecord(t, "INSERT", "1", tt.item)
			if _, ok := OutboxStreamKey(r.Change.Keys); ok {
				t.Error("recognized as an outbox item")
			}
			if _, err := OutboxMessage(r.Change.NewImage); err == nil {
				t.Error("decoded as an outbox message")
			}
		})
	}
}
