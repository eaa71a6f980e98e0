package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

// counting counts the store calls the product path makes, and fails commits to one account.
type counting struct {
	store.Store
	mu            sync.Mutex
	commits, seen int
	linkOnly      int // commits that write links only (a membership's pending mark cleared)
	failAccount   string
	failWith      map[string]error // account → the error its commits fail with
}

func (c *counting) Commit(ctx context.Context, tx store.Tx) error {
	c.mu.Lock()
	if len(tx.Accounts) == 0 {
		c.linkOnly++
	} else {
		c.commits++
	}
	c.mu.Unlock()
	for _, p := range tx.Accounts {
		if p.Account.ID == c.failAccount {
			return errors.New("i/o timeout")
		}
		if err := c.failWith[p.Account.ID]; err != nil {
			return err
		}
	}
	return c.Store.Commit(ctx, tx)
}

func (c *counting) Seen(ctx context.Context, keys []string) (map[string]bool, error) {
	c.mu.Lock()
	c.seen++
	c.mu.Unlock()
	return c.Store.Seen(ctx, keys)
}

func (c *counting) Received(ctx context.Context, keys []store.ReceiptKey) (map[store.ReceiptKey]store.Receipt, error) {
	c.mu.Lock()
	c.seen++
	c.mu.Unlock()
	return c.Store.Received(ctx, keys)
}

func batch(acct string, from, n int) []json.RawMessage {
	var out []json.RawMessage
	for i := from; i < from+n; i++ {
		out = append(out, json.RawMessage(fmt.Sprintf(`{"type":"track","messageId":"%s-%d","userId":"u%d","event":"Signed In","timestamp":%q,"context":{"groupId":%q}}`,
			acct, i, i%5, now.Add(-time.Duration(n-i)*time.Minute).Format(time.RFC3339), acct)))
	}
	return out
}

func TestOneRequestWritesEachAccountOnceAndReadsDedupeOnce(t *testing.T) {
	tests := []struct {
		name     string
		messages int
		batch    func(acct string, from, n int) []json.RawMessage
		commits  int
	}{
		{"a small batch is one commit", 10, batch, 1},
		{"60 messages of one account are one commit (was 2 chunks of 30)", 60, batch, 1},
		{"100 messages of 100 minutes need two commits: 100 receipts and the account exceed 100 items (was 4)", 100, batch, 2},
		{"500 messages of one minute are one commit: one receipt", 500, sameMinute, 1},
		{"600 messages of one minute are two commits: at most 500 a commit", 600, sameMinute, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, st := newService(t)
			c := &counting{Store: st}
			svc.Store = c
			res, err := svc.Product(context.Background(), tt.batch("acme", 0, tt.messages), now)
			if err != nil || res.Applied != tt.messages {
				t.Fatalf("applied %d, %v", res.Applied, err)
			}
			if c.commits != tt.commits {
				t.Errorf("%d account commits, want %d", c.commits, tt.commits)
			}
			if c.linkOnly > 1 {
				t.Errorf("%d link-only commits, want at most 1 (the new members' pending marks, cleared together)", c.linkOnly)
			}
			// One look before resolving accounts (a duplicate must not teach a membership),
			// then the receipts of each commit, read after its account.
			if c.seen != 1+tt.commits {
				t.Errorf("%d dedupe reads, want %d", c.seen, 1+tt.commits)
			}
		})
	}
}

func TestAFailingAccountIsReportedPerMessageAndDoesNotStopTheOthers(t *testing.T) {
	svc, st := newService(t)
	c := &counting{Store: st, failAccount: "globex"}
	svc.Store = c
	msgs := append(batch("acme", 0, 3), batch("globex", 0, 2)...)
	msgs = append(msgs, batch("initech", 0, 1)...)
	res, err := svc.Product(context.Background(), msgs, now)
	if err == nil {
		t.Fatal("no error for the account that failed")
	}
	if !slices.Equal(res.Failed, []int{3, 4}) {
		t.Errorf("Failed = %v, want [3 4] (globex's messages)", res.Failed)
	}
	if res.Applied != 4 || !slices.Equal(res.Accounts, []string{"acme", "initech"}) {
		t.Errorf("applied %d to %v, want 4 to acme and initech", res.Applied, res.Accounts)
	}
	// The retry of the whole request applies only what failed.
	c.failAccount = ""
	res, err = svc.Product(context.Background(), msgs, now)
	if err != nil || res.Applied != 2 || res.Duplicate != 4 {
		t.Errorf("retry: applied %d duplicate %d, %v; want 2 and 4", res.Applied, res.Duplicate, err)
	}
}

func TestAReplayBeyondTheDedupeHorizonNeverCountsTwice(t *testing.T) {
	svc, st, setClock := clockedService(t)
	at := now.Add(-time.Hour)
	msg := func(id, event string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"type":"track","messageId":%q,"userId":"admin","event":%q,"timestamp":%q,"context":{"groupId":"acme"}}`,
			id, event, at.Format(time.RFC3339)))
	}
	batch := []json.RawMessage{msg("r-1", "Account Added User"), msg("r-2", "Invite Sent"), msg("r-3", "Report Created"), msg("r-4", "Ticket Created")}
	counters := func() (members, invites, events, tickets int) {
		a, err := st.Get(context.Background(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		today := account.Day(at)
		return a.Usage.Members, a.Usage.Invites, a.Usage.EventsBetween(today-59, today+1), a.Voice.TicketsSince(at.AddDate(0, 0, -1))
	}
	for _, replay := range []struct {
		name  string
		after time.Duration
	}{
		{"first delivery", 0},
		{"a Segment Replay 40 days later (markers used to expire after 30)", 40 * 24 * time.Hour},
		{"a re-run import 70 days later, beyond every marker", 70 * 24 * time.Hour},
		{"and once more", 71 * 24 * time.Hour},
	} {
		clock := setClock(now.Add(replay.after))
		if _, err := svc.Product(context.Background(), batch, clock); err != nil {
			t.Fatalf("%s: %v", replay.name, err)
		}
		if m, i, e, tk := counters(); m != 1 || i != 1 || e != 4 || tk != 1 {
			t.Errorf("after %s: members %d invites %d events %d tickets %d, want 1 1 4 1", replay.name, m, i, e, tk)
		}
	}
}

func TestARequestWithATransientFailureAsksForARetryWhateverElseFailed(t *testing.T) {
	for _, order := range [][2]string{{"big", "flaky"}, {"flaky", "big"}} {
		svc, st := newService(t)
		svc.Store = &counting{Store: st, failWith: map[string]error{"big": store.TooLarge("account big is 500000 bytes"), "flaky": errors.New("i/o timeout")}}
		msgs := append(batch(order[0], 0, 1), batch(order[1], 0, 1)...)
		_, err := svc.Product(context.Background(), msgs, now)
		if fault.KindOf(err) != fault.Transient {
			t.Errorf("accounts in order %v: error %v of kind %v, want transient so the sender retries", order, err, fault.KindOf(err))
		}
	}
}

// clockedService is a Service over a bolt store whose clock the test sets; setClock returns
// the time it set.
func clockedService(t *testing.T) (*Service, *bolt.Store, func(time.Time) time.Time) {
	t.Helper()
	clock := now
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Service{Store: st, Scorecard: score.Default()}, st, func(t time.Time) time.Time { clock = t; return t }
}

func TestAQueueBatchWritesEachAccountOnceAndReportsFailuresPerQueueMessage(t *testing.T) {
	svc, st := newService(t)
	c := &counting{Store: st, failAccount: "globex"}
	svc.Store = c
	envs := []Envelope{
		{Received: now.Add(-2 * time.Minute), Messages: batch("acme", 0, 3)},
		{Received: now.Add(-time.Minute), Messages: batch("acme", 3, 3)},
		{Received: now, Messages: append(batch("initech", 0, 1), batch("globex", 0, 1)...)},
	}
	res, failed, err := svc.Queued(context.Background(), envs)
	if err == nil || !slices.Equal(failed, []int{2}) {
		t.Fatalf("failed envelopes %v, %v; want [2] (globex's) and an error", failed, err)
	}
	if res.Applied != 7 || c.commits != 3 {
		t.Errorf("applied %d in %d account commits, want 7 in 3 (acme once for both of its envelopes, initech, globex tried)", res.Applied, c.commits)
	}
	// The queue redelivers everything (a consumer crash): nothing counts twice.
	c.failAccount = ""
	res, failed, err = svc.Queued(context.Background(), envs)
	if err != nil || len(failed) != 0 || res.Applied != 1 || res.Duplicate != 7 {
		t.Errorf("redelivery: applied %d duplicate %d failed %v, %v; want 1, 7, none", res.Applied, res.Duplicate, failed, err)
	}
}

func TestAQueueBatchThatFailsBeforeApplyingAnythingRetriesEveryEnvelope(t *testing.T) {
	svc, st := newService(t)
	svc.Store = &failingSeen{Store: st}
	envs := []Envelope{
		{Received: now, Messages: batch("acme", 0, 1)},
		{Received: now, Messages: []json.RawMessage{json.RawMessage(`{"type":"delete","userId":"gone"}`)}},
	}
	_, failed, err := svc.Queued(context.Background(), envs)
	if err == nil || !slices.Equal(failed, []int{0, 1}) {
		t.Errorf("failed envelopes %v, %v; want both (the delete was never attempted)", failed, err)
	}
}

// failingSeen fails the dedupe lookups, as a throttled read would.
type failingSeen struct{ store.Store }

func (failingSeen) Seen(context.Context, []string) (map[string]bool, error) {
	return nil, errors.New("throttled")
}

func (failingSeen) Received(context.Context, []store.ReceiptKey) (map[store.ReceiptKey]store.Receipt, error) {
	return nil, errors.New("throttled")
}

func TestAcceptedEnvelopesStayUnderSQSsLimitWhateverTheirCharacters(t *testing.T) {
	pad := strings.Repeat("<&>", 20000) // 60 KB that json.Marshal would turn into 360 KB
	var raws []json.RawMessage
	for i := 0; i < 8; i++ {
		raws = append(raws, json.RawMessage(fmt.Sprintf(`{"type":"track","messageId":"e-%d","userId":"u","event":"E","properties":{"pad":%q},"context":{"groupId":"acme"}}`, i, pad)))
	}
	huge := json.RawMessage(`{"type":"track","messageId":"huge","userId":"u","event":"E","properties":{"pad":"` + strings.Repeat("x", 300<<10) + `"},"context":{"groupId":"acme"}}`)
	envs, res := Accept(append(raws, huge), now)
	if res.Accepted != 8 || res.Rejected != 1 {
		t.Fatalf("accepted %d rejected %d, want 8 and the 300 KB message rejected", res.Accepted, res.Rejected)
	}
	for i, e := range envs {
		body, err := e.Encode()
		if err != nil || len(body) > 256<<10 {
			t.Errorf("envelope %d encodes to %d bytes (%v), over SQS's 256 KiB", i, len(body), err)
		}
	}
}
