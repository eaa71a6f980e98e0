package function

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/publish"
	"github.com/churnsignal/churnsignal/shared/recompute"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

// invoke runs handler as the Lambda runtime does: the event as JSON in, the response as JSON
// out.
func invoke(t *testing.T, handler any, event string) string {
	t.Helper()
	out, err := lambda.NewHandler(handler).Invoke(context.Background(), []byte(event))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return string(out)
}

func boltStore(t *testing.T) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestEachHandlerTakesItsEventAndAnswersAsTheLambdaRuntimeSerializesThem(t *testing.T) {
	st := boltStore(t)
	body := sample(t, "stripe", "040-acme-customer.created.json")
	now := time.Now()
	sig := fmt.Sprintf("t=%d,v1=%x", now.Unix(), webhook.ComputeSignature(now, body, "whsec_x"))
	apigw := fmt.Sprintf(`{"version":"2.0","routeKey":"POST /webhooks/stripe","rawPath":"/webhooks/stripe","rawQueryString":"",
"headers":{"content-type":"application/json","stripe-signature":%q,"user-agent":"Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
"requestContext":{"accountId":"123456789012","apiId":"abc123","domainName":"abc123.execute-api.us-east-1.amazonaws.com",
"http":{"method":"POST","path":"/webhooks/stripe","protocol":"HTTP/1.1","sourceIp":"3.18.12.63","userAgent":"Stripe/1.0"},
"requestId":"JKJaXmPLvHcESHA=","routeKey":"POST /webhooks/stripe","stage":"$default","time":"20/Nov/2026:12:00:00 +0000","timeEpoch":1795176000000},
"body":%q,"isBase64Encoded":true}`, sig, base64.StdEncoding.EncodeToString(body))

	envs, _ := ingest.Accept([]json.RawMessage{json.RawMessage(`{"type":"track","messageId":"m1","userId":"u1","event":"Signed In","timestamp":"2026-11-20T11:00:00Z","context":{"groupId":"acme"}}`)}, now)
	env, _ := json.Marshal(envs[0])
	sqsEvent := fmt.Sprintf(`{"Records":[{"messageId":"059f36b4-87a3-44ab-83d2-661975830a7d","receiptHandle":"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a","body":%q,
"attributes":{"ApproximateReceiveCount":"1","SentTimestamp":"1795176000000","SenderId":"AIDAIENQZJOLO23YVJ4VO","ApproximateFirstReceiveTimestamp":"1795176000001"},
"messageAttributes":{},"md5OfBody":"e4e68fb7bd0e697a0ae8f1bb342846b3","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:product","awsRegion":"us-east-1"},
{"messageId":"poison","receiptHandle":"x","body":"not json","attributes":{},"messageAttributes":{},"md5OfBody":"","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:product","awsRegion":"us-east-1"}]}`, env)

	stream := `{"Records":[{"eventID":"1","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1",
"dynamodb":{"ApproximateCreationDateTime":1795176000,"Keys":{"pk":{"S":"O#acme"},"sk":{"S":"000000000002#000"}},
"NewImage":{"pk":{"S":"O#acme"},"sk":{"S":"000000000002#000"},"id":{"S":"evt_1"},"body":{"B":"eyJpZCI6ImV2dF8xIn0="},
"attrs":{"M":{"type":{"S":"churn_risk.raised"},"band":{"S":"BAD"}}},"expires":{"N":"1797768000"}},
"SequenceNumber":"111100000000000000001","SizeBytes":120,"StreamViewType":"NEW_IMAGE"},
"eventSourceARN":"arn:aws:dynamodb:us-east-1:123456789012:table/churnsignal/stream/2026-11-20T00:00:00.000"}]}`

	var published []store.Message
	pub := &publish.Stream{Publisher: publishFunc(func(msgs []store.Message) []string {
		published = append(published, msgs...)
		return []string{msgs[0].ID}
	}), Outbox: allPending{}, Log: quiet}

	var sent int
	fan := &recompute.Fanout{SQS: sqsBatchFunc(func(in *sqs.SendMessageBatchInput) { sent += len(in.Entries) }), QueueURL: "q", Shards: 16, Log: quiet}
	scheduled := `{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events",
"account":"123456789012","time":"2026-11-20T06:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/recompute"],"detail":{}}`

	tests := []struct {
		name    string
		handler any
		event   string
		want    []string // substrings of the JSON response
	}{
		{"stripe-webhook: an API Gateway v2 request", StripeHandler(st, []string{"whsec_x"}, nil, quiet), apigw, []string{`"statusCode":200`, `applied`}},
		{"product-aggregate: an SQS batch, the poison record reported", AggregateHandler(Service(st, nil, quiet), quiet), sqsEvent, []string{`{"batchItemFailures":[{"itemIdentifier":"poison"}]}`}},
		{"publisher: a stream batch, the failed record reported by sequence number", pub.Handle, stream, []string{`{"batchItemFailures":[{"itemIdentifier":"111100000000000000001"}]}`}},
		{"recompute: the schedule", fan.Invoke, scheduled, []string{"null"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := invoke(t, tt.handler, tt.event)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("response %.300s does not hold %s", got, w)
				}
			}
		})
	}
	if len(published) != 1 || published[0].ID != "evt_1" || string(published[0].Body) != `{"id":"evt_1"}` || published[0].Attributes["band"] != "BAD" {
		t.Errorf("published %+v, want evt_1 with its body and attributes", published)
	}
	if sent != 16 {
		t.Errorf("the schedule enqueued %d jobs, want 16", sent)
	}
	if a, err := st.Get(context.Background(), "acme"); err != nil || a.Usage.LastSeenAt.IsZero() {
		t.Errorf("acme after the SQS batch: %v", err)
	}
}

type publishFunc func([]store.Message) []string

func (f publishFunc) PublishBatch(_ context.Context, msgs []store.Message) ([]string, error) {
	failed := f(msgs)
	if len(failed) > 0 {
		return failed, fmt.Errorf("refused")
	}
	return nil, nil
}

type allPending struct{}

func (allPending) OutboxPending(_ context.Context, keys []dynamo.OutboxKey) (map[dynamo.OutboxKey]bool, error) {
	out := map[dynamo.OutboxKey]bool{}
	for _, k := range keys {
		out[k] = true
	}
	return out, nil
}

func (allPending) DeleteOutbox(context.Context, []dynamo.OutboxKey) error { return nil }

type sqsBatchFunc func(*sqs.SendMessageBatchInput)

func (f sqsBatchFunc) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f(in)
	return &sqs.SendMessageBatchOutput{}, nil
}
