package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/awstest"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

// outboxTable creates a table on moto, commits one account with msgs in its outbox and returns
// the store, the client and the stream records Lambda would deliver for the commit's items:
// the account's INSERT first, then each outbox item's, sequence numbers rising.
func outboxTable(t *testing.T, msgs ...store.Message) (*dynamo.Store, *dynamodb.Client, string, []events.DynamoDBEventRecord) {
	t.Helper()
	cfg := awstest.Config(t)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(cfg)
	table := awstest.Name("churnsignal-stream")
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}) })
	st := dynamo.New(db, table)
	a := account.New("acme", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if err := st.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: a}}, Outbox: msgs}); err != nil {
		t.Fatal(err)
	}
	acct, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "A#acme"}, "sk": &types.AttributeValueMemberS{Value: "A"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Sequence numbers of growing length: 9 < 10 as numbers although "10" < "9" as strings.
	records := []events.DynamoDBEventRecord{awstest.StreamRecord(t, "INSERT", "8", acct.Item)}
	for i, item := range outbox(t, db, table) {
		records = append(records, awstest.StreamRecord(t, "INSERT", fmt.Sprint(9+i), item))
	}
	return st, db, table, records
}

// outbox returns the table's outbox items in key order.
func outbox(t *testing.T, db *dynamodb.Client, table string) []map[string]types.AttributeValue {
	t.Helper()
	out, err := db.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "O#acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

func TestStreamRecordsOfNewOutboxItemsArePublishedWithTheirAttributesAndTheItemsDeleted(t *testing.T) {
	cfg := awstest.Config(t)
	raised := event("evt_raised", "churn_risk.raised", "involuntary", "BAD", "high-touch")
	dropped := event("evt_dropped", "health.dropped", "engagement", "NORMAL", "tech-touch")
	st, db, table, records := outboxTable(t, raised, dropped)
	topic, queue := subscribedQueue(t, cfg, `{"kind":["involuntary","engagement"]}`)
	s := &Stream{Publisher: NewSNS(sns.NewFromConfig(cfg), topic), Outbox: st}

	resp, err := s.Handle(context.Background(), events.DynamoDBEvent{Records: records})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v, %v; want every record done", resp, err)
	}
	got := drain(t, cfg, queue)
	slices.SortFunc(got, func(a, b received) int { return strings.Compare(a.Body, b.Body) })
	want := []received{{Body: string(raised.Body), Attributes: raised.Attributes}, {Body: string(dropped.Body), Attributes: dropped.Attributes}}
	slices.SortFunc(want, func(a, b received) int { return strings.Compare(a.Body, b.Body) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the subscribed queue received %+v, want %+v", got, want)
	}
	if left := outbox(t, db, table); len(left) != 0 {
		t.Errorf("%d outbox items left after publishing", len(left))
	}
}

func TestAnSNSFailureLeavesTheOutboxItemForALaterPublishThatHappensOnce(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	m := event("evt_later", "churn_risk.raised", "involuntary", "BAD", "x")
	st, db, table, records := outboxTable(t, m)
	topic, queue := subscribedQueue(t, cfg, `{"band":["BAD"]}`)
	sn := sns.NewFromConfig(cfg)
	s := &Stream{Publisher: NewSNS(sn, topic), Outbox: st}
	if _, err := sn.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(topic)}); err != nil {
		t.Fatal(err)
	}

	resp, _ := s.Handle(ctx, events.DynamoDBEvent{Records: records})
	want := []events.DynamoDBBatchItemFailure{{ItemIdentifier: records[1].Change.SequenceNumber}}
	if !reflect.DeepEqual(resp.BatchItemFailures, want) {
		t.Fatalf("with the topic gone Handle reported %+v, want %+v (the outbox record, by sequence number)", resp.BatchItemFailures, want)
	}
	if left := outbox(t, db, table); len(left) != 1 {
		t.Fatalf("%d outbox items left, want the unpublished one kept", len(left))
	}

	// The topic returns; Lambda delivers the batch again from the reported record.
	name := topic[strings.LastIndex(topic, ":")+1:]
	if _, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	sq := sqs.NewFromConfig(cfg)
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queue), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"),
		Endpoint:   aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	resp, _ = s.Handle(ctx, events.DynamoDBEvent{Records: records[1:]})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("after the topic returned Handle reported %+v", resp.BatchItemFailures)
	}
	if got := drain(t, cfg, queue); len(got) != 1 || got[0].Body != string(m.Body) || got[0].Attributes["band"] != "BAD" {
		t.Errorf("the subscribed queue received %+v, want the event once with its attributes", got)
	}
	if left := outbox(t, db, table); len(left) != 0 {
		t.Errorf("%d outbox items left after publishing", len(left))
	}

	// Delivered once more (a later record of the batch failed): the item is gone, so nothing is
	// published twice.
	if resp, _ = s.Handle(ctx, events.DynamoDBEvent{Records: records}); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery reported %+v", resp.BatchItemFailures)
	}
	if got := drain(t, cfg, queue); len(got) != 0 {
		t.Errorf("a redelivered record published %d messages again", len(got))
	}
}

var quiet = slog.New(slog.NewJSONHandler(io.Discard, nil))

// fakeBatch fails the ids in fail (transiently) and in refuse (for good, as SNS refuses a
// message over its size limit); fakeDeleter records what it deletes.
type fakeBatch struct{ fail, refuse []string }

func (f fakeBatch) PublishBatch(_ context.Context, msgs []store.Message) ([]string, error) {
	var failed []string
	var errs []error
	for _, m := range msgs {
		switch {
		case slices.Contains(f.fail, m.ID):
			failed = append(failed, m.ID)
			errs = append(errs, errors.New("throttled"))
		case slices.Contains(f.refuse, m.ID):
			failed = append(failed, m.ID)
			errs = append(errs, &RefusedError{ID: m.ID, Err: errors.New("message too long")})
		}
	}
	return failed, errors.Join(errs...)
}

type fakeDeleter struct {
	deleted []string
	err     error
	gone    []string // sort keys of items deleted before
	down    bool     // OutboxPending fails
}

func (f *fakeDeleter) OutboxPending(_ context.Context, keys []dynamo.OutboxKey) (map[dynamo.OutboxKey]bool, error) {
	if f.down {
		return nil, errors.New("throttled")
	}
	out := map[dynamo.OutboxKey]bool{}
	for _, k := range keys {
		if !slices.Contains(f.gone, k.SK) {
			out[k] = true
		}
	}
	return out, nil
}

func (f *fakeDeleter) DeleteOutbox(_ context.Context, keys []dynamo.OutboxKey) error {
	for _, k := range keys {
		f.deleted = append(f.deleted, k.SK)
	}
	return f.err
}

// outboxRecord is the stream record of an outbox item whose sort key and event id are id.
func outboxRecord(t *testing.T, eventName, seq, id string) events.DynamoDBEventRecord {
	return awstest.StreamRecord(t, eventName, seq, map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "O#acme"}, "sk": &types.AttributeValueMemberS{Value: id},
		"id": &types.AttributeValueMemberS{Value: id}, "body": &types.AttributeValueMemberB{Value: []byte(`{"id":"` + id + `"}`)}})
}

func TestStreamReportsTheLowestFailedSequenceNumberAndDeletesOnlyWhatWasPublished(t *testing.T) {
	records := []events.DynamoDBEventRecord{
		outboxRecord(t, "INSERT", "98", "a"),
		outboxRecord(t, "INSERT", "99", "b"),
		outboxRecord(t, "INSERT", "100", "c"),
		outboxRecord(t, "INSERT", "101", "d"),
	}
	tests := []struct {
		name        string
		fail        []string
		refuse      []string
		outbox      fakeDeleter
		wantFailure string
		wantDeleted []string
	}{
		{"everything published: nothing reported, every item deleted", nil, nil, fakeDeleter{}, "", []string{"a", "b", "c", "d"}},
		{"two failures: the lower sequence number (99, not 100) is reported", []string{"c", "b"}, nil, fakeDeleter{}, "99", []string{"a", "d"}},
		{"a failure past the shorter numbers: 100 is above 99", []string{"c"}, nil, fakeDeleter{}, "100", []string{"a", "b", "d"}},
		{"a failed delete is not a failed record (TTL removes the item)", nil, nil, fakeDeleter{err: errors.New("throttled")}, "", []string{"a", "b", "c", "d"}},
		{"records whose items are gone were published before and are not sent again", nil, nil, fakeDeleter{gone: []string{"a", "d"}}, "", []string{"b", "c"}},
		{"when the pending check fails every record is published", nil, nil, fakeDeleter{down: true, gone: []string{"a"}}, "", []string{"a", "b", "c", "d"}},
		{"a message SNS refuses for good is dropped, not retried ahead of the others", nil, []string{"b"}, fakeDeleter{}, "", []string{"a", "b", "c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			del := &tt.outbox
			s := &Stream{Publisher: fakeBatch{fail: tt.fail, refuse: tt.refuse}, Outbox: del, Log: quiet}
			resp, err := s.Handle(context.Background(), events.DynamoDBEvent{Records: records})
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if len(resp.BatchItemFailures) > 1 {
				t.Fatalf("reported %+v, want at most the lowest failed record", resp.BatchItemFailures)
			} else if len(resp.BatchItemFailures) == 1 {
				got = resp.BatchItemFailures[0].ItemIdentifier
			}
			if got != tt.wantFailure {
				t.Errorf("reported %q, want %q", got, tt.wantFailure)
			}
			if !slices.Equal(del.deleted, tt.wantDeleted) {
				t.Errorf("deleted %v, want %v", del.deleted, tt.wantDeleted)
			}
		})
	}
}

func TestStreamSkipsRecordsThatAreNotNewOutboxItems(t *testing.T) {
	account := awstest.StreamRecord(t, "INSERT", "1", map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "A#acme"}, "sk": &types.AttributeValueMemberS{Value: "A"}})
	tests := []struct {
		name   string
		record events.DynamoDBEventRecord
	}{
		{"an account insert", account},
		{"an outbox item modified", outboxRecord(t, "MODIFY", "2", "m")},
		{"an outbox item removed by TTL", outboxRecord(t, "REMOVE", "3", "r")},
		{"an outbox item without an event id", awstest.StreamRecord(t, "INSERT", "4", map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "O#acme"}, "sk": &types.AttributeValueMemberS{Value: "x"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			published := 0
			del := &fakeDeleter{}
			s := &Stream{Publisher: batchFunc(func(msgs []store.Message) { published += len(msgs) }), Outbox: del, Log: quiet}
			resp, err := s.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{tt.record}})
			if err != nil || len(resp.BatchItemFailures) != 0 || published != 0 || len(del.deleted) != 0 {
				t.Errorf("published %d, deleted %v, reported %+v, %v; want the record skipped", published, del.deleted, resp.BatchItemFailures, err)
			}
		})
	}
}

type batchFunc func([]store.Message)

func (f batchFunc) PublishBatch(_ context.Context, msgs []store.Message) ([]string, error) {
	f(msgs)
	return nil, nil
}
