package dynamo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/store"
)

// faulty answers the first n requests of one DynamoDB operation with an error response, as
// DynamoDB does under throttling or an internal error, and passes everything else to moto.
type faulty struct {
	next      http.RoundTripper
	operation string // X-Amz-Target suffix, e.g. "TransactWriteItems"
	status    int
	body      string
	mu        sync.Mutex
	left      int
	injected  int
}

func (f *faulty) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	hit := strings.HasSuffix(r.Header.Get("X-Amz-Target"), "."+f.operation) && f.left > 0
	if hit {
		f.left--
		f.injected++
	}
	f.mu.Unlock()
	if !hit {
		return f.next.RoundTrip(r)
	}
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: f.status, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body: io.NopCloser(bytes.NewBufferString(f.body)), Request: r}, nil
}

func TestThrottlingAndInternalErrorsFromDynamoDBAreRetriedByTheSDK(t *testing.T) {
	tests := []struct {
		name, operation string
		status          int
		body            string
	}{
		{"a throttled transaction", "TransactWriteItems", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}`},
		{"a provisioned-throughput error on a consistent read", "BatchGetItem", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"exceeded"}`},
		{"an internal server error", "TransactWriteItems", 500, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := client(t)
			table := freshTable(t, base)
			f := &faulty{operation: tt.operation, status: tt.status, body: tt.body, left: 2}
			f.next = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.MaxConnsPerHost = 1 }).GetTransport()
			db := dynamodb.New(base.Options(), func(o *dynamodb.Options) {
				o.HTTPClient = &http.Client{Transport: f}
				o.RetryMaxAttempts = 5
			})
			s := New(db, table)
			ctx := context.Background()
			a := account.New("acme", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
			tx := store.Tx{Accounts: []store.Put{{Account: a}}, Markers: []store.Marker{{Key: "msg:1", Expires: time.Now().Add(time.Hour)}}}
			if err := s.Commit(ctx, tx); err != nil {
				t.Fatalf("commit through %d injected failures: %v", f.injected, err)
			}
			if seen, err := s.Seen(ctx, []string{"msg:1", "msg:2"}); err != nil || !seen["msg:1"] {
				t.Fatalf("Seen after the commit: %v, %v", seen, err)
			}
			if f.injected != 2 {
				t.Errorf("%d failures injected, want 2 (the SDK retried through both)", f.injected)
			}
			if got, err := s.Get(ctx, "acme"); err != nil || got.Version != 1 {
				t.Errorf("account after the retried commit: %+v, %v; want version 1, written once", got, err)
			}
		})
	}
}

// conflictingPut answers every PutItem as DynamoDB does when a transaction holds the item.
type conflictingPut struct{ API }

func (conflictingPut) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
}

func TestAOneItemWriteMeetingATransactionIsAConflictToRetry(t *testing.T) {
	db := client(t)
	s := New(conflictingPut{API: db}, freshTable(t, db))
	a := account.New("acme", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	err := s.Commit(context.Background(), store.Tx{Accounts: []store.Put{{Account: a}}}) // one item: a plain PutItem
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.On != store.OnAccount || ce.Key != "acme" {
		t.Errorf("Commit = %v, want a conflict on account acme (ingest re-reads and retries at once)", err)
	}
}
