package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/store"
)

// recording keeps every Tx committed through it.
type recording struct {
	store.Store
	mu  sync.Mutex
	txs []store.Tx
}

func (r *recording) Commit(ctx context.Context, tx store.Tx) error {
	err := r.Store.Commit(ctx, tx)
	if err == nil {
		r.mu.Lock()
		r.txs = append(r.txs, tx)
		r.mu.Unlock()
	}
	return err
}

func (r *recording) written() (markers, receipts, ids int) {
	for _, tx := range r.txs {
		markers += len(tx.Markers)
		receipts += len(tx.Receipts)
		for _, rc := range tx.Receipts {
			ids += len(rc.IDs)
		}
	}
	return
}

// sameMinute is n track messages of acct, all stamped within one minute.
func sameMinute(acct string, from, n int) []json.RawMessage {
	var out []json.RawMessage
	at := now.Truncate(time.Minute).Add(-10 * time.Minute)
	for i := from; i < from+n; i++ {
		out = append(out, json.RawMessage(fmt.Sprintf(`{"type":"track","messageId":"%s-%d","userId":"u%d","event":"Signed In","timestamp":%q,"context":{"groupId":%q}}`,
			acct, i, i%5, at.Add(time.Duration(i%60)*time.Second).Format(time.RFC3339), acct)))
	}
	return out
}

func TestProductMessagesOfOneMinuteShareOneReceipt(t *testing.T) {
	tests := []struct {
		name     string
		messages []json.RawMessage
		// what the first delivery writes
		markers, receipts int
	}{
		{"60 messages of one minute: one receipt, no marker", sameMinute("acme", 0, 60), 0, 1},
		{"messages of 3 minutes: a receipt each", batch("acme", 0, 3), 0, 3},
		{"a message without a time of its own keeps a marker: a replay would get another receipt time",
			[]json.RawMessage{json.RawMessage(`{"type":"track","messageId":"timeless","userId":"u1","event":"Signed In","context":{"groupId":"acme"}}`)}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, st := newService(t)
			rec := &recording{Store: st}
			svc.Store = rec
			res, err := svc.Product(context.Background(), tt.messages, now)
			if err != nil || res.Applied != len(tt.messages) {
				t.Fatalf("applied %d of %d, %v", res.Applied, len(tt.messages), err)
			}
			markers, receipts, ids := rec.written()
			if markers != tt.markers || receipts != tt.receipts || ids != len(tt.messages)-tt.markers {
				t.Errorf("wrote %d markers and %d receipts holding %d ids; want %d, %d and %d", markers, receipts, ids, tt.markers, tt.receipts, len(tt.messages)-tt.markers)
			}
			// Redelivered, later and in another order: every message is a duplicate.
			rev := append([]json.RawMessage(nil), tt.messages...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			res, err = svc.Product(context.Background(), rev, now.Add(2*time.Hour))
			if err != nil || res.Applied != 0 || res.Duplicate != len(tt.messages) {
				t.Errorf("redelivery applied %d, duplicate %d, %v; want 0 and %d", res.Applied, res.Duplicate, err, len(tt.messages))
			}
		})
	}
}

func TestMessagesAddedToAMinuteAlreadyReceivedKeepTheEarlierOnes(t *testing.T) {
	svc, st := newService(t)
	msgs := sameMinute("acme", 0, 20)
	for _, part := range [][]json.RawMessage{msgs[:8], msgs[5:14], msgs[12:]} { // overlapping deliveries
		if _, err := svc.Product(context.Background(), part, now); err != nil {
			t.Fatal(err)
		}
	}
	a, err := st.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if n := a.Usage.EventsBetween(-1<<31+1, 1<<31-1); n != 20 {
		t.Errorf("the account counts %d events, want each of the 20 once", n)
	}
	res, _ := svc.Product(context.Background(), msgs, now)
	if res.Duplicate != 20 {
		t.Errorf("all 20 again: %d duplicates, want 20", res.Duplicate)
	}
}

func TestAFullReceiptSpillsIntoMarkersAndStillDedupes(t *testing.T) {
	defer func(n int) { receiptCap = n }(receiptCap)
	receiptCap = 4
	svc, st := newService(t)
	rec := &recording{Store: st}
	svc.Store = rec
	msgs := sameMinute("acme", 0, 7)
	if res, err := svc.Product(context.Background(), msgs[:3], now); err != nil || res.Applied != 3 {
		t.Fatalf("applied %d, %v", res.Applied, err)
	}
	if res, err := svc.Product(context.Background(), msgs[3:], now); err != nil || res.Applied != 4 {
		t.Fatalf("applied %d, %v", res.Applied, err)
	}
	markers, _, ids := rec.written()
	if ids != 3+4 || markers != 3 { // second commit: the receipt rewritten with 4 ids, 3 markers
		t.Errorf("%d ids in receipts written and %d markers; want 7 (3, then 4) and 3", ids, markers)
	}
	got, _ := st.Received(context.Background(), []store.ReceiptKey{{Account: "acme", Bucket: store.BucketOf(now.Truncate(time.Minute).Add(-10 * time.Minute))}})
	for _, r := range got {
		if len(r.IDs) != 4 {
			t.Errorf("the full receipt holds %d ids, want the cap, 4", len(r.IDs))
		}
	}
	res, err := svc.Product(context.Background(), msgs, now.Add(time.Hour))
	if err != nil || res.Duplicate != 7 || res.Applied != 0 {
		t.Errorf("redelivery of all 7: applied %d duplicate %d, %v; want 0 and 7", res.Applied, res.Duplicate, err)
	}
}

// TestServicesWithoutASharedLockCountEachMessageOnce runs independent services, as separate
// Lambda instances would be (each with its own in-process lock), on one store and one account,
// all delivering overlapping parts of the same messages at once.
func TestServicesWithoutASharedLockCountEachMessageOnce(t *testing.T) {
	_, st := newService(t)
	msgs := sameMinute("acme", 0, 40)
	const instances = 6
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for i := 0; i < instances; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			svc, _ := newService(t)
			svc.Store = st
			for start := i % 4; start < len(msgs); start += 7 {
				res, err := svc.Product(context.Background(), msgs[start:min(start+9, len(msgs))], now)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				applied += res.Applied
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	a, err := st.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	n := a.Usage.EventsBetween(-1<<31+1, 1<<31-1)
	if applied != len(msgs) || n != len(msgs) {
		t.Errorf("applied %d, the account counts %d events; want each of the %d messages once", applied, n, len(msgs))
	}
}

func TestMessagesSpillingOverAFullReceiptAreCommittedInSmallerParts(t *testing.T) {
	defer func(n int) { receiptCap = n }(receiptCap)
	receiptCap = 4
	svc, st := newService(t)
	rec := &recording{Store: st}
	svc.Store = rec
	msgs := sameMinute("acme", 0, 150) // one receipt of 4, then 146 markers: more than one transaction takes
	res, err := svc.Product(context.Background(), msgs, now)
	if err != nil || res.Applied != 150 || len(res.Failed) != 0 {
		t.Fatalf("applied %d, failed %v, %v; want all 150", res.Applied, res.Failed, err)
	}
	for i, tx := range rec.txs {
		if tx.Size() > store.MaxTxItems {
			t.Errorf("commit %d wrote %d items", i, tx.Size())
		}
	}
	if len(rec.txs) < 2 {
		t.Errorf("%d commits, want the spill split into several", len(rec.txs))
	}
	res, err = svc.Product(context.Background(), msgs, now)
	if err != nil || res.Duplicate != 150 {
		t.Errorf("redelivery: %d duplicates, %v; want 150", res.Duplicate, err)
	}
}
