package publish

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"

	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
)

// SNSClient is the part of the SNS API that SNS calls; *sns.Client satisfies it, and tests
// can pass a fake.
type SNSClient interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
	PublishBatch(ctx context.Context, in *sns.PublishBatchInput, opts ...func(*sns.Options)) (*sns.PublishBatchOutput, error)
}

// MaxBatchEntries is how many messages one SNS PublishBatch call takes.
const MaxBatchEntries = 10

// DefaultMaxMessageBytes is SNS's default limit on one message and on the sum of a batch's
// messages, each counted as its body plus its attributes' names, types and values.
const DefaultMaxMessageBytes = 256 * 1024

// SNS publishes outbox messages to one SNS topic, each message's Attributes as String message
// attributes (type, kind, band, segment) that subscription filter policies select on. The body
// is published unchanged, so a subscriber with raw message delivery receives the exact event.
type SNS struct {
	client   SNSClient
	topic    string
	maxBytes int
}

var (
	_ Publisher = (*SNS)(nil)
	_ SNSClient = (*sns.Client)(nil)
)

// NewSNS returns a publisher to the topic with ARN topicARN.
func NewSNS(client SNSClient, topicARN string) *SNS {
	return &SNS{client: client, topic: topicARN, maxBytes: DefaultMaxMessageBytes}
}

// WithMaxMessageBytes returns p for a topic whose MaximumMessageSize attribute was raised
// above SNS's default (up to 1 MiB).
func (p *SNS) WithMaxMessageBytes(n int) *SNS {
	q := *p
	q.maxBytes = n
	return &q
}

// Publish implements Publisher with one SNS Publish call. Errors are classified: a message SNS
// will never accept (too large, invalid) is fault.Permanent; anything else, including a topic
// that is missing for now, is fault.Transient, so the caller keeps the message and retries.
func (p *SNS) Publish(ctx context.Context, m store.Message) error {
	if n := messageBytes(m); n > p.maxBytes {
		return fault.New("publish: sns event "+m.ID, fault.Permanent, fmt.Sprintf("message is %d bytes, over the topic's limit of %d", n, p.maxBytes))
	}
	_, err := p.client.Publish(ctx, &sns.PublishInput{
		TopicArn:          aws.String(p.topic),
		Message:           aws.String(string(m.Body)),
		MessageAttributes: attributes(m),
	})
	if err != nil {
		return fault.E("publish: sns event "+m.ID, callKind(err), err)
	}
	return nil
}

// RefusedError is a message SNS will never accept (over its size limit, invalid): retrying it
// cannot help, so a stream consumer drops it (logged) rather than block the events after it.
type RefusedError struct {
	ID  string
	Err error
}

func (e *RefusedError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *RefusedError) Unwrap() error { return e.Err }

// Kind is always permanent.
func (e *RefusedError) Kind() fault.Kind { return fault.Permanent }

// Refused returns the ids of the messages err (from PublishBatch) says SNS will never accept.
func Refused(err error) map[string]bool {
	out := map[string]bool{}
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if r, ok := e.(*RefusedError); ok {
			out[r.ID] = true
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		walk(errors.Unwrap(e))
	}
	walk(err)
	return out
}

// PublishBatch publishes msgs with as few PublishBatch calls as SNS's limits allow (10 entries
// and the size limit per call) and returns the ids of the messages that were not published, in
// the order of msgs, with an error naming each of them and why (nil when all were published).
// A message that failed on its own does not stop the others; a call that failed as a whole
// (throttling, a missing topic, a cancelled ctx) stops the batch, and the messages not yet
// sent count as failed too, since a stream consumer resumes from the first failure anyway.
func (p *SNS) PublishBatch(ctx context.Context, msgs []store.Message) (failed []string, err error) {
	var errs []error
	bad := make([]bool, len(msgs))
	fail := func(at []int, e error) {
		for _, i := range at {
			bad[i] = true
		}
		errs = append(errs, e)
	}
	var chunk []int // positions in msgs
	chunkBytes := 0
	send := func() error {
		if len(chunk) == 0 {
			return nil
		}
		defer func() { chunk, chunkBytes = nil, 0 }()
		entries := make([]types.PublishBatchRequestEntry, len(chunk))
		for j, i := range chunk {
			// Entry ids are positions: event ids may hold characters SNS refuses in an
			// entry id, and two outbox items with one id must not fail the whole call.
			entries[j] = types.PublishBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(j)),
				Message:           aws.String(string(msgs[i].Body)),
				MessageAttributes: attributes(msgs[i]),
			}
		}
		out, err := p.client.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(p.topic), PublishBatchRequestEntries: entries})
		if err != nil {
			fail(chunk, fault.E(fmt.Sprintf("publish: sns batch of %d from event %s", len(chunk), msgs[chunk[0]].ID), callKind(err), err))
			return err
		}
		refused := map[int]types.BatchResultErrorEntry{}
		for _, f := range out.Failed {
			if j, err := strconv.Atoi(aws.ToString(f.Id)); err == nil {
				refused[j] = f
			}
		}
		published := map[int]bool{}
		for _, s := range out.Successful {
			if j, err := strconv.Atoi(aws.ToString(s.Id)); err == nil {
				published[j] = true
			}
		}
		for j, i := range chunk {
			if f, found := refused[j]; found {
				e := fault.New("publish: sns event "+msgs[i].ID, codeKind(aws.ToString(f.Code)), aws.ToString(f.Code)+": "+aws.ToString(f.Message))
				if fault.KindOf(e) == fault.Permanent {
					e = &RefusedError{ID: msgs[i].ID, Err: e}
				}
				fail([]int{i}, e)
			} else if !published[j] {
				// Neither listed as published nor as failed: it may not have been sent.
				fail([]int{i}, fault.New("publish: sns event "+msgs[i].ID, fault.Transient, "SNS reported no result for it"))
			}
		}
		return nil
	}
	stopped := false
	for i, m := range msgs {
		n := messageBytes(m)
		if n > p.maxBytes {
			fail([]int{i}, &RefusedError{ID: m.ID, Err: fault.New("publish: sns event "+m.ID, fault.Permanent,
				fmt.Sprintf("message is %d bytes, over the topic's limit of %d", n, p.maxBytes))})
			continue
		}
		if len(chunk) == MaxBatchEntries || chunkBytes+n > p.maxBytes {
			if send() != nil {
				var rest []int
				for k := i; k < len(msgs); k++ {
					rest = append(rest, k)
				}
				fail(rest, fmt.Errorf("publish: %d events not sent after the failed call", len(rest)))
				stopped = true
				break
			}
		}
		chunk = append(chunk, i)
		chunkBytes += n
	}
	if !stopped {
		send()
	}
	for i, b := range bad {
		if b {
			failed = append(failed, msgs[i].ID)
		}
	}
	if len(failed) == 0 {
		return nil, nil
	}
	return failed, errors.Join(errs...)
}

// attributes turns m's attributes into SNS String message attributes. Empty values are left
// out: SNS refuses an empty attribute value, and an absent attribute is what a filter policy
// on that attribute treats as "does not match".
func attributes(m store.Message) map[string]types.MessageAttributeValue {
	var out map[string]types.MessageAttributeValue
	for k, v := range m.Attributes {
		if k == "" || v == "" {
			continue
		}
		if out == nil {
			out = make(map[string]types.MessageAttributeValue, len(m.Attributes))
		}
		out[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return out
}

// messageBytes is m's size as SNS counts it against its limit: the body plus each attribute's
// name, data type and value.
func messageBytes(m store.Message) int {
	n := len(m.Body)
	for k, v := range m.Attributes {
		if k != "" && v != "" {
			n += len(k) + len("String") + len(v)
		}
	}
	return n
}

// permanentCodes are SNS error codes for a request that will fail the same way every time.
var permanentCodes = map[string]bool{
	"InvalidParameter":             true,
	"InvalidParameterValue":        true,
	"ParameterValueInvalid":        true,
	"ValidationError":              true,
	"BatchRequestTooLong":          true,
	"InvalidBatchEntryId":          true,
	"EmptyBatchRequest":            true,
	"TooManyEntriesInBatchRequest": true,
}

// codeKind classifies an SNS error code: permanent for a message SNS refuses, else transient.
func codeKind(code string) fault.Kind {
	if permanentCodes[code] {
		return fault.Permanent
	}
	return fault.Transient
}

// callKind classifies the error of a whole SNS call.
func callKind(err error) fault.Kind {
	var api smithy.APIError
	if errors.As(err, &api) {
		return codeKind(api.ErrorCode())
	}
	return fault.Transient
}
