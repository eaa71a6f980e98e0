package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

// commitAt commits a new account id with msgs in its outbox through a store whose clock says
// at, and returns the stream records Lambda would deliver for the outbox items.
func commitAt(t *testing.T, db *dynamodb.Client, table, id string, at time.Time, msgs ...store.Message) []events.DynamoDBEventRecord {
	t.Helper()
	ctx := context.Background()
	st := dynamo.New(db, table, dynamo.WithClock(func() time.Time { return at }))
	if err := st.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: account.New(id, at)}}, Outbox: msgs}); err != nil {
		t.Fatal(err)
	}
	out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "O#" + id}}})
	if err != nil {
		t.Fatal(err)
	}
	var records []events.DynamoDBEventRecord
	for i, item := range out.Items {
		records = append(records, awstest.StreamRecord(t, "INSERT", fmt.Sprint(100+i), item))
	}
	return records
}

// outboxLeft returns the event ids of the outbox items still in the table.
func outboxLeft(t *testing.T, db *dynamodb.Client, table string) []string {
	t.Helper()
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		FilterExpression: aws.String("begins_with(pk, :o)"), ExpressionAttributeValues: map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: "O#"}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, item := range out.Items {
		ids = append(ids, item["id"].(*types.AttributeValueMemberS).Value)
	}
	slices.Sort(ids)
	return ids
}

// resubscribe recreates a deleted topic under its name and subscribes queue to it again.
func resubscribe(t *testing.T, cfg aws.Config, topic, queue string) {
	t.Helper()
	ctx := context.Background()
	sn := sns.NewFromConfig(cfg)
	name := topic[strings.LastIndex(topic, ":")+1:]
	if _, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	attrs, err := sqs.NewFromConfig(cfg).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queue),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"),
		Endpoint:   aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
}

func TestAnSNSOutageLongerThanTheStreamKeepsRecordsLosesNoEventTheSweepPublishesEachOnce(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(cfg)
	table := awstest.Name("churnsignal-sweep")
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}) })
	topic, queue := subscribedQueue(t, cfg, `{"band":["BAD","NORMAL"]}`)
	sn := sns.NewFromConfig(cfg)
	st := dynamo.New(db, table)
	now := time.Now()
	stream := &Stream{Publisher: NewSNS(sn, topic), Outbox: st, Log: quiet}
	sweep := &Sweep{Publisher: NewSNS(sn, topic), Outbox: st, Log: quiet}

	// Thirty hours ago three accounts moved; SNS was gone, so the stream publisher failed.
	old := now.Add(-30 * time.Hour)
	var oldEvents []store.Message
	var records []events.DynamoDBEventRecord
	for _, id := range []string{"acme", "globex", "initech"} {
		msgs := []store.Message{event("evt_"+id+"_raised", "churn_risk.raised", "involuntary", "BAD", "x"),
			event("evt_"+id+"_dropped", "health.dropped", "engagement", "NORMAL", "y")}
		oldEvents = append(oldEvents, msgs...)
		records = append(records, commitAt(t, db, table, id, old, msgs...)...)
	}
	if _, err := sn.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(topic)}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := stream.Handle(ctx, events.DynamoDBEvent{Records: records}); len(resp.BatchItemFailures) == 0 {
		t.Fatal("with the topic gone the stream batch reported no failure")
	}
	// A sweep during the outage publishes nothing and deletes nothing.
	if res, err := sweep.Run(ctx); err == nil || res.Published != 0 || fault.KindOf(err) != fault.Transient {
		t.Errorf("a sweep with the topic gone = %+v, %v; want a transient error and nothing published", res, err)
	}
	// The stream records expire (the batch is never delivered again); one account moves just
	// now, and the stream will deliver that one.
	fresh := event("evt_fresh", "churn_risk.raised", "involuntary", "BAD", "z")
	commitAt(t, db, table, "hooli", now.Add(-time.Minute), fresh)
	var want []string
	for _, m := range oldEvents {
		want = append(want, m.ID)
	}
	slices.Sort(want)
	if got := outboxLeft(t, db, table); len(got) != len(want)+1 {
		t.Fatalf("outbox before the sweep: %v, want the %d unpublished events and the fresh one", got, len(want))
	}

	resubscribe(t, cfg, topic, queue)
	res, err := sweep.Run(ctx)
	if err != nil || res.Published != len(oldEvents) || res.Found != len(oldEvents) {
		t.Fatalf("sweep after the topic returned = %+v, %v; want the %d stale events found and published", res, err, len(oldEvents))
	}
	var got []string
	for _, r := range drain(t, cfg, queue) {
		var body struct{ ID string }
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Fatal(err)
		}
		got = append(got, body.ID)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("subscribers received %v, want each stale event exactly once: %v", got, want)
	}
	if left := outboxLeft(t, db, table); !slices.Equal(left, []string{"evt_fresh"}) {
		t.Errorf("outbox after the sweep: %v, want only the fresh item, left to the stream", left)
	}

	// A second sweep finds nothing: what it published was deleted.
	if res, err := sweep.Run(ctx); err != nil || res.Found != 0 || res.Published != 0 {
		t.Errorf("a second sweep = %+v, %v; want nothing found", res, err)
	}
	if got := drain(t, cfg, queue); len(got) != 0 {
		t.Errorf("a second sweep published %d messages again", len(got))
	}
}

// pagedOutbox hands out pages of items and records deletes; the sweep's logic without a table.
type pagedOutbox struct {
	pages   [][]dynamo.OutboxItem
	before  time.Time
	deleted []string
	readErr error
}

func (p *pagedOutbox) StaleOutbox(_ context.Context, before time.Time, page func([]dynamo.OutboxItem) bool) error {
	p.before = before
	for _, items := range p.pages {
		if !page(items) {
			return nil
		}
	}
	return p.readErr
}

func (p *pagedOutbox) DeleteOutbox(_ context.Context, keys []dynamo.OutboxKey) error {
	for _, k := range keys {
		p.deleted = append(p.deleted, k.SK)
	}
	return nil
}

func items(ids ...string) []dynamo.OutboxItem {
	var out []dynamo.OutboxItem
	for _, id := range ids {
		out = append(out, dynamo.OutboxItem{Key: dynamo.OutboxKey{PK: "O#acme", SK: id}, Message: store.Message{ID: id}})
	}
	return out
}

func TestASweepDeletesOnlyWhatSNSTookAndStopsAtTheFirstFailingPage(t *testing.T) {
	tests := []struct {
		name         string
		pages        [][]dynamo.OutboxItem
		fail, refuse []string
		readErr      error
		want         SweepResult
		wantDeleted  []string
		wantErr      bool
	}{
		{"every page published and deleted", [][]dynamo.OutboxItem{items("a", "b"), items("c")}, nil, nil, nil,
			SweepResult{Found: 3, Published: 3}, []string{"a", "b", "c"}, false},
		{"a failure keeps the item and stops before the next page", [][]dynamo.OutboxItem{items("a", "b"), items("c")}, []string{"b"}, nil, nil,
			SweepResult{Found: 2, Published: 1, Failed: 1, Incomplete: true}, []string{"a"}, true},
		{"a message SNS refuses for good is dropped, and the sweep goes on", [][]dynamo.OutboxItem{items("a", "b"), items("c")}, nil, []string{"b"}, nil,
			SweepResult{Found: 3, Published: 2, Dropped: 1}, []string{"a", "b", "c"}, false},
		{"a failed read is an error after what was published", [][]dynamo.OutboxItem{items("a")}, nil, nil, errors.New("throttled"),
			SweepResult{Found: 1, Published: 1, Incomplete: true}, []string{"a"}, true},
		{"nothing stale, nothing done", nil, nil, nil, nil, SweepResult{}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
			ob := &pagedOutbox{pages: tt.pages, readErr: tt.readErr}
			s := &Sweep{Publisher: fakeBatch{fail: tt.fail, refuse: tt.refuse}, Outbox: ob, Now: func() time.Time { return now }, Log: quiet}
			res, err := s.Run(context.Background())
			if (err != nil) != tt.wantErr {
				t.Errorf("Run error = %v, want error %v", err, tt.wantErr)
			}
			if res != tt.want {
				t.Errorf("Run = %+v, want %+v", res, tt.want)
			}
			if !slices.Equal(ob.deleted, tt.wantDeleted) {
				t.Errorf("deleted %v, want %v", ob.deleted, tt.wantDeleted)
			}
			if want := now.Add(-DefaultGrace); !ob.before.Equal(want) {
				t.Errorf("swept items written before %v, want %v (the grace period leaves fresh items to the stream)", ob.before, want)
			}
		})
	}
}

func TestThePublisherDispatchesStreamBatchesAndScheduledEventsOnTheirShape(t *testing.T) {
	records := []events.DynamoDBEventRecord{outboxRecord(t, "INSERT", "98", "a"), outboxRecord(t, "INSERT", "99", "b")}
	batch, err := json.Marshal(events.DynamoDBEvent{Records: records})
	if err != nil {
		t.Fatal(err)
	}
	// The event an EventBridge rule (SAM's Schedule event) sends.
	scheduled := `{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events",` +
		`"account":"123456789012","time":"2026-12-02T12:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/sweep"],"detail":{}}`
	tests := []struct {
		name    string
		event   string
		want    string // the response as Lambda returns it, JSON
		wantErr bool
	}{
		{"a stream batch is answered as Stream.Handle answers it", string(batch), `{"batchItemFailures":[{"itemIdentifier":"99"}]}`, false},
		{"a scheduled event runs a sweep", scheduled, `{"found":1,"published":1,"dropped":0,"failed":0}`, false},
		{"anything else is refused", `{"Records2":[]}`, `null`, true},
		{"a body that is not an object is refused", `[1,2]`, `null`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{
				Stream: &Stream{Publisher: fakeBatch{fail: []string{"b"}}, Outbox: &fakeDeleter{}, Log: quiet},
				Sweep:  &Sweep{Publisher: fakeBatch{}, Outbox: &pagedOutbox{pages: [][]dynamo.OutboxItem{items("old")}}, Log: quiet},
			}
			resp, err := h.Invoke(context.Background(), json.RawMessage(tt.event))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Invoke error = %v, want error %v", err, tt.wantErr)
			}
			got, _ := json.Marshal(resp)
			var g, w any
			json.Unmarshal(got, &g)
			json.Unmarshal([]byte(tt.want), &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("Invoke answered %s, want %s", got, tt.want)
			}
		})
	}
}
