package dynamo

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
)

// TestOutboxPendingRequestsUnprocessedKeysAgainLikeEveryBatchedRead proves OutboxPending goes
// through the store's one BatchGetItem loop: keys handed back unprocessed are asked for again
// (still consistent), and keys that stay unprocessed past WithBatchRetries are a transient
// error, never "already published" (which would skip publishing them).
func TestOutboxPendingRequestsUnprocessedKeysAgainLikeEveryBatchedRead(t *testing.T) {
	db := client(t)
	table := freshTable(t, db)
	seed := New(db, table)
	var msgs []store.Message
	for i := 0; i < 60; i++ {
		msgs = append(msgs, store.Message{ID: fmt.Sprintf("evt_%02d", i), Body: []byte(`{}`)})
	}
	mustCommit(t, seed, store.Tx{Accounts: []store.Put{{Account: account.New("acme", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))}}, Outbox: msgs})
	var keys []OutboxKey
	for _, item := range outboxItems(t, db, table) {
		keys = append(keys, OutboxKey{PK: getS(item, attrPK), SK: getS(item, attrSK)})
	}
	for i := 0; i < 90; i++ { // 150 keys: two requests, 100 and 50; the last 90 name no item
		keys = append(keys, OutboxKey{PK: "O#acme", SK: fmt.Sprintf("%012d#%03d", 900, i)})
	}

	var calls, handedBack atomic.Int32
	f := &fake{API: db}
	f.batchGet = func(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
		n := calls.Add(1)
		req := in.RequestItems[table]
		if !aws.ToBool(req.ConsistentRead) {
			t.Error("an outbox pending read is not consistent: a delete just made might not show")
		}
		if n == 1 || n == 3 { // the first request of each chunk answers 10 keys only
			part := req
			part.Keys = req.Keys[:10]
			out, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: part}})
			if err != nil {
				return nil, err
			}
			rest := req
			rest.Keys = req.Keys[10:]
			handedBack.Add(int32(len(rest.Keys)))
			out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: rest}
			return out, nil
		}
		return db.BatchGetItem(ctx, in, opts...)
	}
	s := New(f, table, WithBatchRetries(2, time.Millisecond))
	pending, err := s.OutboxPending(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != len(msgs) || handedBack.Load() == 0 {
		t.Fatalf("%d keys pending, want the %d stored items (%d keys came back unprocessed)", len(pending), len(msgs), handedBack.Load())
	}
	for _, k := range keys[:len(msgs)] {
		if !pending[k] {
			t.Errorf("%v is not pending after its key came back unprocessed: the publisher would skip it", k)
		}
	}

	calls.Store(0)
	f.batchGet = func(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
		calls.Add(1)
		return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems}, nil
	}
	if got, err := s.OutboxPending(ctx, keys[:1]); fault.KindOf(err) != fault.Transient {
		t.Errorf("OutboxPending with keys never processed = %v, %v; want a transient error", got, err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("%d requests with keys never processed, want 3 (the first and WithBatchRetries' 2)", got)
	}
}
