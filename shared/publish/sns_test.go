package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/churnsignal/churnsignal/shared/awstest"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
)

// subscribedQueue creates a topic and an SQS queue subscribed to it with raw message delivery
// and the filter policy, and returns the topic ARN and the queue URL.
func subscribedQueue(t *testing.T, cfg aws.Config, policy string) (string, string) {
	t.Helper()
	ctx := context.Background()
	sn, sq := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	name := awstest.Name("churnsignal-test")
	topic, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sn.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: topic.TopicArn,
		Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{
			"FilterPolicy":       policy,
			"RawMessageDelivery": "true",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sn.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: topic.TopicArn})
		sq.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl})
	})
	return aws.ToString(topic.TopicArn), aws.ToString(q.QueueUrl)
}

// received is one queue message as a subscriber sees it.
type received struct {
	Body       string
	Attributes map[string]string
}

// drain receives until the queue has been empty for one poll.
func drain(t *testing.T, cfg aws.Config, queue string) []received {
	t.Helper()
	sq := sqs.NewFromConfig(cfg)
	var out []received
	for {
		r, err := sq.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			got := received{Body: aws.ToString(m.Body), Attributes: map[string]string{}}
			for k, v := range m.MessageAttributes {
				if aws.ToString(v.DataType) != "String" {
					t.Errorf("attribute %s has data type %s, want String", k, aws.ToString(v.DataType))
				}
				got.Attributes[k] = aws.ToString(v.StringValue)
			}
			out = append(out, got)
			sq.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queue), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// event builds an outbox message the way ingest does: the body is the event JSON, the
// attributes are risk.Event.Attributes.
func event(id, typ, kind, band, segment string) store.Message {
	body, _ := json.Marshal(map[string]any{"id": id, "type": typ, "kind": kind, "health": map[string]any{"band": band}, "account": map[string]any{"segment": segment}, "note": "exact bytes: \u00e9 \"quoted\" <tag>"})
	return store.Message{ID: id, Body: body, Attributes: map[string]string{"type": typ, "kind": kind, "band": band, "segment": segment}}
}

func TestSNSDeliversOnlyTheEventsASubscriptionFiltersForWithTheirAttributesAndExactBody(t *testing.T) {
	cfg := awstest.Config(t)
	topic, queue := subscribedQueue(t, cfg, `{"kind":["involuntary"],"band":["BAD"]}`)
	p := NewSNS(sns.NewFromConfig(cfg), topic)

	// Twelve events so the batch takes two PublishBatch calls; the dunning subscription wants
	// involuntary risk in band BAD only.
	var batch []store.Message
	want := map[string]store.Message{}
	for i := range 12 {
		var m store.Message
		switch i % 4 {
		case 0:
			m = event(fmt.Sprintf("evt_inv_%d", i), "churn_risk.raised", "involuntary", "BAD", "high-touch")
			want[m.ID] = m
		case 1:
			m = event(fmt.Sprintf("evt_vol_%d", i), "churn_risk.raised", "voluntary", "BAD", "high-touch")
		case 2:
			m = event(fmt.Sprintf("evt_clr_%d", i), "churn_risk.cleared", "involuntary", "GOOD", "low-touch")
		case 3:
			m = event(fmt.Sprintf("evt_eng_%d", i), "health.dropped", "engagement", "NORMAL", "tech-touch")
		}
		batch = append(batch, m)
	}
	// An account without a segment: the empty attribute is left out rather than refused.
	noSegment := event("evt_inv_nosegment", "churn_risk.raised", "involuntary", "BAD", "")
	batch = append(batch, noSegment)
	want[noSegment.ID] = noSegment

	failed, err := p.PublishBatch(context.Background(), batch)
	if err != nil || len(failed) != 0 {
		t.Fatalf("PublishBatch failed %v: %v", failed, err)
	}
	single := event("evt_inv_single", "account.churned", "involuntary", "BAD", "tech-touch")
	want[single.ID] = single
	if err := p.Publish(context.Background(), single); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := p.Publish(context.Background(), event("evt_vol_single", "churn_risk.raised", "voluntary", "BAD", "tech-touch")); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	got := drain(t, cfg, queue)
	seen := map[string]bool{}
	for _, r := range got {
		var e struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(r.Body), &e); err != nil {
			t.Fatalf("received a body that is not the event: %q", r.Body)
		}
		m, ok := want[e.ID]
		if !ok {
			t.Errorf("the subscription received %s, which its filter policy excludes", e.ID)
			continue
		}
		if seen[e.ID] {
			t.Errorf("%s received twice", e.ID)
		}
		seen[e.ID] = true
		if r.Body != string(m.Body) {
			t.Errorf("%s body\n got %s\nwant %s", e.ID, r.Body, m.Body)
		}
		wantAttrs := map[string]string{}
		for k, v := range m.Attributes {
			if v != "" {
				wantAttrs[k] = v
			}
		}
		if fmt.Sprint(r.Attributes) != fmt.Sprint(wantAttrs) {
			t.Errorf("%s attributes %v, want %v", e.ID, r.Attributes, wantAttrs)
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s was not delivered to the matching subscription", id)
		}
	}
}

func TestSNSReportsExactlyTheEntryMotoRefusedInABatch(t *testing.T) {
	cfg := awstest.Config(t)
	topic, queue := subscribedQueue(t, cfg, `{"kind":["involuntary"]}`)
	// Allow a 1 MiB message on our side so that SNS itself refuses the entry (its default limit
	// is 256 KiB) and reports it in the batch's Failed list.
	p := NewSNS(sns.NewFromConfig(cfg), topic).WithMaxMessageBytes(1 << 20)
	huge := event("evt_huge", "churn_risk.raised", "involuntary", "BAD", "x")
	huge.Body = append(huge.Body[:len(huge.Body)-1:len(huge.Body)-1], []byte(`,"pad":"`+strings.Repeat("a", 300_000)+`"}`)...)
	batch := []store.Message{
		event("evt_before", "churn_risk.raised", "involuntary", "BAD", "x"),
		huge,
		event("evt_after", "churn_risk.raised", "involuntary", "BAD", "x"),
	}
	failed, err := p.PublishBatch(context.Background(), batch)
	if !slices.Equal(failed, []string{"evt_huge"}) {
		t.Fatalf("failed %v (%v), want exactly [evt_huge]", failed, err)
	}
	if k := firstKind(err); k != fault.Permanent {
		t.Errorf("a refused message should be a permanent failure: %v", err)
	}
	if !strings.Contains(err.Error(), "evt_huge") {
		t.Errorf("the error does not name the event: %v", err)
	}
	if r := Refused(err); !r["evt_huge"] || len(r) != 1 {
		t.Errorf("Refused = %v, want evt_huge alone (a stream consumer drops it instead of retrying)", r)
	}
	if n := len(drain(t, cfg, queue)); n != 2 {
		t.Errorf("%d messages delivered, want the 2 valid ones", n)
	}
}

func TestSNSTreatsAMissingTopicAsTransientAndPublishesOnceItIsBack(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	topic, queue := subscribedQueue(t, cfg, `{"kind":["involuntary"]}`)
	sn := sns.NewFromConfig(cfg)
	p := NewSNS(sn, topic)
	name := topic[strings.LastIndex(topic, ":")+1:]
	if _, err := sn.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(topic)}); err != nil {
		t.Fatal(err)
	}
	m := event("evt_gone", "churn_risk.raised", "involuntary", "BAD", "x")
	if err := p.Publish(ctx, m); !fault.Is(fault.Transient, err) {
		t.Fatalf("publishing to a deleted topic: %v, want a transient error so the outbox keeps it", err)
	}
	failed, err := p.PublishBatch(ctx, []store.Message{m})
	if !slices.Equal(failed, []string{"evt_gone"}) || err == nil {
		t.Fatalf("batch to a deleted topic failed %v, %v; want [evt_gone] and an error", failed, err)
	}
	if r := Refused(err); len(r) != 0 {
		t.Errorf("a missing topic refuses nothing for good: Refused = %v", r)
	}

	// The topic returns (same name, same ARN) with its subscription; the retry is delivered.
	again, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil || aws.ToString(again.TopicArn) != topic {
		t.Fatalf("recreate topic: %v, %v", again, err)
	}
	sq := sqs.NewFromConfig(cfg)
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queue), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: again.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	if failed, err := p.PublishBatch(ctx, []store.Message{m}); len(failed) != 0 || err != nil {
		t.Fatalf("retry after the topic returned: %v, %v", failed, err)
	}
	if got := drain(t, cfg, queue); len(got) != 1 || got[0].Body != string(m.Body) {
		t.Fatalf("after the topic returned the queue holds %+v, want the event once", got)
	}
}

// firstKind is the kind of the first failure PublishBatch reports.
func firstKind(err error) fault.Kind {
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		return fault.KindOf(j.Unwrap()[0])
	}
	return fault.KindOf(err)
}

// fakeSNS records PublishBatch calls and answers through its function.
type fakeSNS struct {
	calls  [][]snstypes.PublishBatchRequestEntry
	answer func(call int, entries []snstypes.PublishBatchRequestEntry) (*sns.PublishBatchOutput, error)
}

func (f *fakeSNS) Publish(ctx context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return &sns.PublishOutput{}, nil
}

func (f *fakeSNS) PublishBatch(ctx context.Context, in *sns.PublishBatchInput, _ ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	f.calls = append(f.calls, in.PublishBatchRequestEntries)
	if f.answer != nil {
		return f.answer(len(f.calls), in.PublishBatchRequestEntries)
	}
	return allPublished(in.PublishBatchRequestEntries), nil
}

func allPublished(entries []snstypes.PublishBatchRequestEntry) *sns.PublishBatchOutput {
	out := &sns.PublishBatchOutput{}
	for _, e := range entries {
		out.Successful = append(out.Successful, snstypes.PublishBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))})
	}
	return out
}

func ids(prefix string, n int) []store.Message {
	var out []store.Message
	for i := range n {
		out = append(out, event(fmt.Sprintf("%s%02d", prefix, i), "churn_risk.raised", "involuntary", "BAD", "x"))
	}
	return out
}

func TestSNSPublishBatchReportsWhichEventsWereNotPublished(t *testing.T) {
	throttled := &smithy.GenericAPIError{Code: "Throttled", Message: "Rate exceeded"}
	bigBody := func(id string, size int) store.Message {
		m := event(id, "churn_risk.raised", "involuntary", "BAD", "x")
		m.Body = []byte(`{"id":"` + id + `","pad":"` + strings.Repeat("p", size) + `"}`)
		return m
	}
	tests := []struct {
		name       string
		msgs       []store.Message
		answer     func(call int, entries []snstypes.PublishBatchRequestEntry) (*sns.PublishBatchOutput, error)
		wantFailed []string
		wantKind   fault.Kind
		wantCalls  []int // entries per call
	}{
		{
			name:      "twenty-five events go out in calls of ten, ten and five",
			msgs:      ids("evt_", 25),
			wantCalls: []int{10, 10, 5},
		},
		{
			name: "one entry SNS refuses is reported alone and the rest are published",
			msgs: ids("evt_", 5),
			answer: func(call int, entries []snstypes.PublishBatchRequestEntry) (*sns.PublishBatchOutput, error) {
				out := allPublished(append(slices.Clone(entries[:2]), entries[3:]...))
				out.Failed = []snstypes.BatchResultErrorEntry{{Id: entries[2].Id, Code: aws.String("InvalidParameter"), Message: aws.String("Invalid parameter: Message attribute value too long"), SenderFault: true}}
				return out, nil
			},
			wantFailed: []string{"evt_02"},
			wantKind:   fault.Permanent,
			wantCalls:  []int{5},
		},
		{
			name: "an entry SNS failed on its side is a transient failure",
			msgs: ids("evt_", 3),
			answer: func(call int, entries []snstypes.PublishBatchRequestEntry) (*sns.PublishBatchOutput, error) {
				out := allPublished(entries[1:])
				out.Failed = []snstypes.BatchResultErrorEntry{{Id: entries[0].Id, Code: aws.String("InternalError"), Message: aws.String("try again")}}
				return out, nil
			},
			wantFailed: []string{"evt_00"},
			wantKind:   fault.Transient,
			wantCalls:  []int{3},
		},
		{
			name: "a throttled call stops the batch: its events and the unsent rest are not published",
			msgs: ids("evt_", 25),
			answer: func(call int, entries []snstypes.PublishBatchRequestEntry) (*sns.PublishBatchOutput, error) {
				if call == 2 {
					return nil, throttled
				}
				return allPublished(entries), nil
			},
			wantFailed: func() []string {
				var s []string
				for i := 10; i < 25; i++ {
					s = append(s, fmt.Sprintf("evt_%02d", i))
				}
				return s
			}(),
			wantKind:  fault.Transient,
			wantCalls: []int{10, 10},
		},
		{
			name: "an entry SNS leaves out of its answer counts as not published",
			msgs: ids("evt_", 2),
			answer: func(call int, entries []snstypes.PublishBatchRequestEntry) (*sns.PublishBatchOutput, error) {
				return allPublished(entries[:1]), nil
			},
			wantFailed: []string{"evt_01"},
			wantKind:   fault.Transient,
			wantCalls:  []int{2},
		},
		{
			name:       "an event over the size limit fails permanently without being sent",
			msgs:       []store.Message{bigBody("evt_small", 10), bigBody("evt_huge", 300_000), bigBody("evt_small2", 10)},
			wantFailed: []string{"evt_huge"},
			wantKind:   fault.Permanent,
			wantCalls:  []int{2},
		},
		{
			name: "failures are reported in the order of the batch, whenever they were found",
			msgs: []store.Message{bigBody("evt_a", 10), bigBody("evt_huge", 300_000), bigBody("evt_b", 10)},
			answer: func(call int, entries []snstypes.PublishBatchRequestEntry) (*sns.PublishBatchOutput, error) {
				out := allPublished(entries[1:])
				out.Failed = []snstypes.BatchResultErrorEntry{{Id: entries[0].Id, Code: aws.String("InvalidParameter"), Message: aws.String("refused"), SenderFault: true}}
				return out, nil
			},
			wantFailed: []string{"evt_a", "evt_huge"},
			wantKind:   fault.Permanent,
			wantCalls:  []int{2},
		},
		{
			name:      "a call carries no more than 256 KiB in total",
			msgs:      []store.Message{bigBody("evt_a", 100_000), bigBody("evt_b", 100_000), bigBody("evt_c", 100_000), bigBody("evt_d", 10)},
			wantCalls: []int{2, 2},
		},
		{
			name:      "two outbox items with one id do not fail the call",
			msgs:      append(ids("evt_", 2), ids("evt_", 1)...),
			wantCalls: []int{3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSNS{answer: tt.answer}
			failed, err := NewSNS(f, "arn:aws:sns:us-east-1:123456789012:churn").PublishBatch(context.Background(), tt.msgs)
			if !slices.Equal(failed, tt.wantFailed) {
				t.Errorf("failed %v, want %v", failed, tt.wantFailed)
			}
			if (err != nil) != (len(tt.wantFailed) > 0) {
				t.Errorf("error %v with failed %v", err, failed)
			}
			if err != nil {
				if k := firstKind(err); k != tt.wantKind {
					t.Errorf("kind %v, want %v: %v", k, tt.wantKind, err)
				}
				for _, id := range tt.wantFailed[:1] {
					if !strings.Contains(err.Error(), id) {
						t.Errorf("the error does not name %s: %v", id, err)
					}
				}
			}
			var calls []int
			for _, c := range f.calls {
				calls = append(calls, len(c))
				for i, e := range c {
					if aws.ToString(e.Id) != strconv.Itoa(i) {
						t.Errorf("entry id %q", aws.ToString(e.Id))
					}
				}
			}
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("calls of %v entries, want %v", calls, tt.wantCalls)
			}
		})
	}
}
