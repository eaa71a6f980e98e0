package publish

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

func newOutbox(t *testing.T, ids ...string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var tx store.Tx
	for _, id := range ids {
		tx.Outbox = append(tx.Outbox, store.Message{ID: id, Body: []byte(`{"id":"` + id + `"}`)})
	}
	if err := st.Commit(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestDrainPublishesInOrderAsJSONLines(t *testing.T) {
	st := newOutbox(t, "evt_1", "evt_2", "evt_3")
	var out bytes.Buffer
	d := &Drainer{Outbox: st, Publisher: NewLines(&out)}
	n, err := d.Drain(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("drained %d, %v", n, err)
	}
	if out.String() != "{\"id\":\"evt_1\"}\n{\"id\":\"evt_2\"}\n{\"id\":\"evt_3\"}\n" {
		t.Fatalf("output %q", out.String())
	}
	if rest, _ := st.Outbox(context.Background(), 10); len(rest) != 0 {
		t.Fatalf("published messages left in the outbox: %+v", rest)
	}
}

func TestAFailedPublishIsRetriedNotLost(t *testing.T) {
	st := newOutbox(t, "evt_1", "evt_2", "evt_3")
	var got []string
	failing := true
	p := PublisherFunc(func(_ context.Context, m store.Message) error {
		if m.ID == "evt_2" && failing {
			return errors.New("sns throttled")
		}
		got = append(got, m.ID)
		return nil
	})
	d := &Drainer{Outbox: st, Publisher: p}
	if n, err := d.Drain(context.Background()); err == nil || n != 1 {
		t.Fatalf("first drain: %d, %v; want 1 and the error", n, err)
	}
	failing = false
	if n, err := d.Drain(context.Background()); err != nil || n != 2 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	if strings.Join(got, ",") != "evt_1,evt_2,evt_3" {
		t.Fatalf("published %v, want each once in order", got)
	}
}

func TestRunDrainsOnWakeAndOnceMoreAtShutdown(t *testing.T) {
	st := newOutbox(t)
	var out bytes.Buffer
	lines := NewLines(&out)
	d := &Drainer{Outbox: st, Publisher: lines}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, time.Hour); close(done) }()
	st.Commit(context.Background(), store.Tx{Outbox: []store.Message{{ID: "evt_w", Body: []byte(`{}`)}}})
	d.Wake()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines.mu.Lock()
		n := out.Len()
		lines.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a woken drainer did not publish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	st.Commit(context.Background(), store.Tx{Outbox: []store.Message{{ID: "evt_late", Body: []byte(`{"late":true}`)}}})
	cancel()
	<-done
	if !strings.Contains(out.String(), `{"late":true}`) {
		t.Fatalf("committed before shutdown but not published: %q", out.String())
	}
}
