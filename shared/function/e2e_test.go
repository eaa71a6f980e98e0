package function

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
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
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/churnsignal/churnsignal/shared/awstest"
	"github.com/churnsignal/churnsignal/shared/publish"
)

// streamOf stands in for the table's stream filtered as the template filters it: the INSERT
// records of the outbox items written since the last call, in key order, with rising
// sequence numbers.
type streamOf struct {
	db    *dynamodb.Client
	table string
	seen  map[string]bool
	seq   int
}

func (s *streamOf) next(t *testing.T) events.DynamoDBEvent {
	t.Helper()
	out, err := s.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		FilterExpression:          aws.String("begins_with(pk, :o)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: "O#"}}})
	if err != nil {
		t.Fatal(err)
	}
	key := func(item map[string]types.AttributeValue) string {
		return item["pk"].(*types.AttributeValueMemberS).Value + "/" + item["sk"].(*types.AttributeValueMemberS).Value
	}
	sort.Slice(out.Items, func(i, j int) bool { return key(out.Items[i]) < key(out.Items[j]) })
	var ev events.DynamoDBEvent
	for _, item := range out.Items {
		if s.seen[key(item)] {
			continue
		}
		s.seen[key(item)] = true
		s.seq++
		ev.Records = append(ev.Records, awstest.StreamRecord(t, "INSERT", fmt.Sprint(1000+s.seq), item))
	}
	return ev
}

func TestSignedStripeEventsReachASubscriberFilteringOnBandAndKindOnceEach(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	st, tableName := namedTable(t)
	db := dynamodb.NewFromConfig(cfg)

	// The topic and a dunning queue subscribed with a filter policy on band and kind.
	sn, sq := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	name := awstest.Name("churnsignal-e2e")
	topic, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sn.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: topic.TopicArn})
		sq.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl})
	})
	qa, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(qa.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{"RawMessageDelivery": "true",
			"FilterPolicy": `{"band":["BAD"],"kind":["involuntary"]}`}}); err != nil {
		t.Fatal(err)
	}

	stripe := StripeHandler(st, []string{"whsec_e2e"}, nil, quiet)
	send := func(file string) string {
		body := sample(t, "stripe", file)
		now := time.Now()
		sig := fmt.Sprintf("t=%d,v1=%x", now.Unix(), webhook.ComputeSignature(now, body, "whsec_e2e"))
		resp, err := stripe(ctx, v2Request("POST", "/webhooks/stripe", map[string]string{"stripe-signature": sig}, body))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s, %v", file, resp.StatusCode, resp.Body, err)
		}
		return resp.Body
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "stripe", "*-globex-*.json"))
	for _, f := range files {
		send(filepath.Base(f))
	}

	stream := &streamOf{db: db, table: tableName, seen: map[string]bool{}}
	pub := &publish.Stream{Publisher: publish.NewSNS(sn, aws.ToString(topic.TopicArn)), Outbox: st, Log: quiet}
	ev := stream.next(t)
	if len(ev.Records) == 0 {
		t.Fatal("globex's events wrote no outbox item")
	}
	if resp, _ := pub.Handle(ctx, ev); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("publisher reported %+v", resp.BatchItemFailures)
	}
	got := receiveAll(t, sq, aws.ToString(q.QueueUrl))
	raised := 0
	ids := map[string]int{}
	for _, m := range got {
		if m.attrs["band"] != "BAD" || m.attrs["kind"] != "involuntary" {
			t.Errorf("the filter let through attributes %v", m.attrs)
		}
		var e struct {
			ID, Type string
			Account  struct{ ID string }
		}
		json.Unmarshal([]byte(m.body), &e)
		ids[e.ID]++
		if e.Type == "churn_risk.raised" && e.Account.ID == "globex" {
			raised++
		}
	}
	if raised != 1 {
		t.Errorf("the dunning queue received %d churn_risk.raised for globex, want 1 (messages: %d)", raised, len(got))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
	}

	// Stripe redelivers every event: each is a duplicate, nothing new is written or published.
	for _, f := range files {
		// (a dispute is ignored both times: without STRIPE_API_KEY_PARAM its charge is not looked up)
		if body := send(filepath.Base(f)); !strings.Contains(body, `"duplicate"`) && !strings.Contains(body, `"ignored"`) {
			t.Errorf("%s redelivered: %s, want duplicate", filepath.Base(f), body)
		}
	}
	if ev := stream.next(t); len(ev.Records) != 0 {
		t.Errorf("redelivered events wrote %d outbox items", len(ev.Records))
	}
	// And the stream delivers the same records again: nothing is published twice.
	stream.seen = map[string]bool{}
	pub.Handle(ctx, stream.next(t))
	if again := receiveAll(t, sq, aws.ToString(q.QueueUrl)); len(again) != 0 {
		t.Errorf("a redelivered stream batch published %d messages again", len(again))
	}
}

type message struct {
	body  string
	attrs map[string]string
}

func receiveAll(t *testing.T, sq *sqs.Client, url string) []message {
	t.Helper()
	var out []message
	for {
		r, err := sq.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			msg := message{body: aws.ToString(m.Body), attrs: map[string]string{}}
			for k, v := range m.MessageAttributes {
				msg.attrs[k] = aws.ToString(v.StringValue)
			}
			out = append(out, msg)
			sq.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
}
