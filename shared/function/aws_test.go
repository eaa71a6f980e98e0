package function

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/churnsignal/churnsignal/shared/awstest"
	"github.com/churnsignal/churnsignal/shared/queue"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

// v2Request is an API Gateway HTTP API (payload 2.0) request with a base64 body, as Lambda
// delivers a webhook's POST.
func v2Request(method, path string, headers map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + path, RawPath: path, Headers: headers,
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.1"},
		},
	}
}

// sample reads an event of the repository's events/ folder.
func sample(t *testing.T, kind, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", kind, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// table creates a table with the store's layout on moto and returns the store on it.
func table(t *testing.T) *dynamo.Store {
	t.Helper()
	st, _ := namedTable(t)
	return st
}

// namedTable is table, also returning the table's name.
func namedTable(t *testing.T) (*dynamo.Store, string) {
	t.Helper()
	cfg := awstest.Config(t)
	db := dynamodb.NewFromConfig(cfg)
	name := awstest.Name("churnsignal-fn")
	if err := dynamo.CreateTable(context.Background(), db, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}) })
	return dynamo.New(db, name), name
}

func TestAStripeEventWithABase64BodyAndARotatedSignatureIsAppliedToDynamoDB(t *testing.T) {
	st := table(t)
	h := StripeHandler(st, StripeSecrets("whsec_old_secret,whsec_new_secret"), nil, quiet)
	body := sample(t, "stripe", "040-acme-customer.created.json")
	now := time.Now()
	sig := func(secret string) string { return fmt.Sprintf("%x", webhook.ComputeSignature(now, body, secret)) }
	tests := []struct {
		name, signature string
		want            int
		status          string
	}{
		{"signed with the new secret, the old one's v1 first", fmt.Sprintf("t=%d,v1=%s,v1=%s", now.Unix(), sig("whsec_other"), sig("whsec_new_secret")), http.StatusOK, "applied"},
		{"the same event again is a duplicate", fmt.Sprintf("t=%d,v1=%s", now.Unix(), sig("whsec_old_secret")), http.StatusOK, "duplicate"},
		{"signed with neither secret", fmt.Sprintf("t=%d,v1=%s", now.Unix(), sig("whsec_other")), http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h(context.Background(), v2Request("POST", "/webhooks/stripe",
				map[string]string{"stripe-signature": tt.signature, "content-type": "application/json"}, body))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Body, tt.want)
			}
			if tt.status != "" && !strings.Contains(resp.Body, `"status":"`+tt.status+`"`) {
				t.Errorf("body %s, want status %q", resp.Body, tt.status)
			}
		})
	}
	a, err := st.Get(context.Background(), "acme")
	if err != nil || a.Name != "Acme Corp" {
		t.Errorf("the account in DynamoDB: %+v, %v; want acme named Acme Corp", a, err)
	}
}

// sqsEvent is the SQS event Lambda delivers for the messages on the queue (taken off it).
func sqsEvent(t *testing.T, client *sqs.Client, url string) events.SQSEvent {
	t.Helper()
	var ev events.SQSEvent
	for {
		r, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			break
		}
		for _, m := range r.Messages {
			raw, _ := json.Marshal(map[string]any{"messageId": aws.ToString(m.MessageId), "receiptHandle": aws.ToString(m.ReceiptHandle),
				"body": aws.ToString(m.Body), "attributes": map[string]string{"ApproximateReceiveCount": "1"}, "messageAttributes": map[string]any{},
				"md5OfBody": aws.ToString(m.MD5OfBody), "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:product",
				"awsRegion": "us-east-1"})
			var rec events.SQSMessage
			if err := json.Unmarshal(raw, &rec); err != nil {
				t.Fatal(err)
			}
			ev.Records = append(ev.Records, rec)
			client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
	return ev
}

func TestProductMessagesAreQueuedByTheWebhookAppliedByTheAggregatorAndReadThroughTheAPI(t *testing.T) {
	st := table(t)
	cfg := awstest.Config(t)
	ctx := context.Background()
	client := sqs.NewFromConfig(cfg)
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name("churnsignal-product"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })
	webhook := ProductHandler(queue.NewSQS(client, *q.QueueUrl), "product-secret", quiet)

	auth := map[string]string{"authorization": "Bearer product-secret", "content-type": "application/json"}
	for _, name := range []string{"010-acme-group.json", "030-acme-batch.json"} {
		resp, err := webhook(ctx, v2Request("POST", "/webhooks/product", auth, sample(t, "product", name)))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %s, %v; want 202", name, resp.StatusCode, resp.Body, err)
		}
	}
	if resp, _ := webhook(ctx, v2Request("POST", "/webhooks/product", map[string]string{"authorization": "Bearer wrong"},
		sample(t, "product", "010-acme-group.json"))); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d, want 401", resp.StatusCode)
	}

	ev := sqsEvent(t, client, *q.QueueUrl)
	if len(ev.Records) != 2 {
		t.Fatalf("%d queue messages, want one per accepted request", len(ev.Records))
	}
	ev.Records = append(ev.Records, events.SQSMessage{MessageId: "poison", Body: `{"not":"an envelope"}`, EventSource: "aws:sqs"})
	aggregate := AggregateHandler(Service(st, nil, quiet), quiet)
	resp, err := aggregate(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "poison" {
		t.Errorf("failures %+v, want only the poison record", resp.BatchItemFailures)
	}
	a, err := st.Get(ctx, "acme")
	if err != nil || a.Usage.LastSeenAt.IsZero() {
		t.Fatalf("acme after the batch: %+v, %v; want its product activity applied", a, err)
	}

	// Redelivered (a lost batch response): nothing is applied twice.
	before := a.Version
	ev.Records = ev.Records[:2]
	if resp, _ := aggregate(ctx, ev); len(resp.BatchItemFailures) != 0 {
		t.Errorf("redelivery failures %+v", resp.BatchItemFailures)
	}
	if again, _ := st.Get(ctx, "acme"); again.Version != before {
		t.Errorf("a redelivered batch wrote acme again (version %d → %d)", before, again.Version)
	}

	api := APIHandler(st, quiet)
	sigv4 := map[string]string{"authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261120/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"}
	read, err := api(ctx, v2Request("GET", "/accounts/acme", sigv4, nil))
	if err != nil || read.StatusCode != http.StatusOK || !strings.Contains(read.Body, `"id":"acme"`) {
		t.Errorf("GET /accounts/acme behind IAM: %d %.200s, %v; want the account", read.StatusCode, read.Body, err)
	}
}
