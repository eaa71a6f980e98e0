package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

func TestAGroupTraitCannotStealACustomerStripeLinkedElsewhere(t *testing.T) {
	h := newHarness(t)
	h.sendCustomer("acme") // cus_P8AcmeCorp00001 has metadata.account_id = acme
	steal := `{"type":"group","messageId":"steal-1","userId":"mallory","groupId":"rival","timestamp":"2026-11-20T11:00:00Z",
		"traits":{"name":"Rival Inc","stripe_customer_id":"cus_P8AcmeCorp00001"}}`
	code, m := h.product([]byte(steal))
	if code != 200 || m["applied"] != 1.0 {
		t.Fatalf("group call: %d %v (the message itself must still apply)", code, m)
	}
	errs, _ := m["errors"].([]any)
	if len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "metadata.account_id") {
		t.Fatalf("errors %v, want the refused claim reported", m["errors"])
	}
	if id := h.account("cus_P8AcmeCorp00001")["id"]; id != "acme" {
		t.Errorf("GET /accounts/cus_… answers %v, want acme", id)
	}
	if got := path(h.account("rival"), "billing", "status"); got != "" {
		t.Errorf("rival got Stripe billing: status %v", got)
	}
	// The next billing event for the customer lands where reading by cus_… said.
	paid := sample(t, "stripe", "060-acme-invoice.paid.json")
	paid = []byte(strings.Replace(string(paid), `"id": "evt_`, `"id": "evt_after_steal_`, 1))
	if code, m := h.stripe(paid); code != 200 || m["account"] != "acme" || m["status"] != "applied" {
		t.Fatalf("billing event after the refused claim: %d %v, want it on acme", code, m)
	}
}

func TestAGroupTraitMayClaimACustomerOnlyAGroupClaimed(t *testing.T) {
	h := newHarness(t)
	group := func(id, acct string) string {
		return fmt.Sprintf(`{"type":"group","messageId":%q,"userId":"u-%s","groupId":%q,"timestamp":"2026-11-20T11:00:00Z","traits":{"stripe_customer_id":"cus_Shared0001"}}`, id, acct, acct)
	}
	for _, tt := range []struct{ msg, want string }{{group("g1", "first"), "first"}, {group("g2", "second"), "second"}} {
		code, m := h.product([]byte(tt.msg))
		if errs, _ := m["errors"].([]any); code != 200 || len(errs) != 0 {
			t.Fatalf("claim: %d %v", code, m)
		}
		if id := h.account("cus_Shared0001")["id"]; id != tt.want {
			t.Errorf("after claim by %s, GET /accounts/cus_… = %v", tt.want, id)
		}
	}
}

func TestADeleteMessageForgetsTheUser(t *testing.T) {
	h := newHarness(t)
	held := `{"type":"track","messageId":"d-1","userId":"ghost","event":"Signed In","timestamp":"2026-11-20T10:00:00Z"}`
	if _, m := h.product([]byte(held)); m["held"] != 1.0 {
		t.Fatalf("held: %v", m)
	}
	member := `{"type":"identify","messageId":"d-2","userId":"member","timestamp":"2026-11-20T10:00:00Z","traits":{"company":{"id":"acme"}}}`
	if _, m := h.product([]byte(member)); m["applied"] != 1.0 {
		t.Fatalf("member: %v", m)
	}
	del := `[{"type":"delete","userId":"ghost","timestamp":"2026-11-20T10:30:00Z"},{"type":"delete","userId":"member"},{"type":"delete","userId":"nobody"},{"type":"delete"}]`
	code, m := h.product([]byte(del))
	if code != 200 || m["deleted"] != 3.0 || m["rejected"] != 1.0 {
		t.Fatalf("delete: %d %v, want deleted 3 (a user never seen has nothing to remove) and the one naming nobody rejected", code, m)
	}
	if errs := m["errors"].([]any); len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "delete needs a userId") {
		t.Errorf("errors %v, want the delete without a user explained", errs)
	}
	ctx := context.Background()
	if hs, _ := h.st.Held(ctx, "ghost"); len(hs) != 0 {
		t.Errorf("held messages of a deleted user remain: %d", len(hs))
	}
	if l, _ := h.st.Links(ctx, []string{"user:member"}); len(l) != 0 {
		t.Errorf("membership of a deleted user remains: %v", l)
	}
	// The forgotten member's next message no longer resolves through the old membership.
	next := `{"type":"track","messageId":"d-3","userId":"member","event":"Signed In","timestamp":"2026-11-20T11:00:00Z"}`
	if _, m := h.product([]byte(next)); m["held"] != 1.0 {
		t.Errorf("a forgotten user's message: %v, want held", m)
	}
}

func TestHeldMessagesBeyondTheCapAreTheNewestAndReportedAtTheirIndexes(t *testing.T) {
	h := newHarness(t)
	var msgs []string
	for i := 0; i < ingest.MaxHeldPerUser+3; i++ {
		at := sampleNow.Add(-time.Hour).Add(time.Duration(i) * time.Second)
		msgs = append(msgs, fmt.Sprintf(`{"type":"track","messageId":"cap-%03d","userId":"lurker","event":"Signed In","timestamp":%q}`, i, at.Format(time.RFC3339)))
	}
	code, m := h.product([]byte("[" + strings.Join(msgs, ",") + "]"))
	if code != 200 || m["held"] != float64(ingest.MaxHeldPerUser) || m["rejected"] != 3.0 {
		t.Fatalf("%d held %v rejected %v", code, m["held"], m["rejected"])
	}
	for k, e := range m["errors"].([]any) {
		want := float64(ingest.MaxHeldPerUser + k)
		if idx := path(e, "index"); idx != want {
			t.Errorf("error %d at index %v, want %v (the newest messages are the ones refused)", k, idx, want)
		}
	}
	hs, _ := h.st.Held(context.Background(), "lurker")
	if len(hs) != ingest.MaxHeldPerUser || hs[0].MessageID != "cap-000" {
		t.Errorf("held %d, first %s; want the oldest %d kept", len(hs), hs[0].MessageID, ingest.MaxHeldPerUser)
	}
}

// flakyRelease fails the first commit that releases held messages, as a store timeout would.
type flakyRelease struct {
	*bolt.Store
	failed bool
}

func (f *flakyRelease) Commit(ctx context.Context, tx store.Tx) error {
	if len(tx.Release) > 0 && !f.failed {
		f.failed = true
		return errors.New("i/o timeout")
	}
	return f.Store.Commit(ctx, tx)
}

func TestHeldMessagesAreNeverStrandedByAFailedRelease(t *testing.T) {
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return sampleNow }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fs := &flakyRelease{Store: st}
	srv := httptest.NewServer(New(Config{Service: &ingest.Service{Store: fs, Scorecard: score.Default()}, Store: fs,
		ProductSecret: productSecret, APIToken: apiToken, Now: func() time.Time { return sampleNow },
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}))
	defer srv.Close()
	h := &harness{t: t, srv: srv, st: st}
	orphan := `{"type":"track","messageId":"s-1","userId":"early","event":"Report Created","timestamp":"2026-11-20T09:00:00Z"}`
	if _, m := h.product([]byte(orphan)); m["held"] != 1.0 {
		t.Fatalf("orphan: %v", m)
	}
	link := []byte(`{"type":"identify","messageId":"s-2","userId":"early","timestamp":"2026-11-20T10:00:00Z","traits":{"company":{"id":"acme"}}}`)
	if code, _ := h.product(link); code != http.StatusServiceUnavailable {
		t.Fatalf("a failed release answered %d, want 503 so the sender retries", code)
	}
	// The sender gives up; the user's next message, days later, finishes the release.
	later := []byte(`{"type":"track","messageId":"s-3","userId":"early","event":"Signed In","timestamp":"2026-11-20T11:00:00Z"}`)
	if code, m := h.product(later); code != 200 || m["applied"] != 1.0 {
		t.Fatalf("next message: %d %v", code, m)
	}
	if got := path(h.account("acme"), "usage", "key_features_last_used", "Report Created"); got == nil {
		t.Fatal("the held message was stranded: never applied after the failed release")
	}
	if hs, _ := st.Held(context.Background(), "early"); len(hs) != 0 {
		t.Errorf("%d messages still held", len(hs))
	}
}

// brokenStore fails the calls it is told to, the way an unreachable or refusing store does.
type brokenStore struct {
	*bolt.Store
	get, links, commit error
}

func (b brokenStore) Get(ctx context.Context, id string) (*account.Account, error) {
	if b.get != nil {
		return nil, b.get
	}
	return b.Store.Get(ctx, id)
}

func (b brokenStore) Links(ctx context.Context, keys []string) (map[string]store.Target, error) {
	if b.links != nil {
		return nil, b.links
	}
	return b.Store.Links(ctx, keys)
}

func (b brokenStore) Commit(ctx context.Context, tx store.Tx) error {
	if b.commit != nil {
		return b.commit
	}
	return b.Store.Commit(ctx, tx)
}

func TestStoreFailuresMapToTheStatusTheSenderNeeds(t *testing.T) {
	down := errors.New("dial tcp: connection refused")
	tests := []struct {
		name   string
		broken brokenStore
		req    func(h *harness) int
		want   int
	}{
		{"an unreachable store on a read is 503, not 500", brokenStore{get: down},
			func(h *harness) int { c, _ := h.get("/accounts/acme"); return c }, http.StatusServiceUnavailable},
		{"a failed link lookup is 503, not a 404", brokenStore{links: down},
			func(h *harness) int { c, _ := h.get("/accounts/cus_P8AcmeCorp00001"); return c }, http.StatusServiceUnavailable},
		{"an unknown id is still a 404", brokenStore{},
			func(h *harness) int { c, _ := h.get("/accounts/cus_Nobody"); return c }, http.StatusNotFound},
		{"a write over the store's limits is permanent (422), not retried as 503", brokenStore{commit: store.TooLarge("account acme is 500000 bytes")},
			func(h *harness) int {
				c, _ := h.stripe(sample(t, "stripe", "040-acme-customer.created.json"))
				return c
			}, http.StatusUnprocessableEntity},
		{"a store timeout on a write is 503", brokenStore{commit: down},
			func(h *harness) int {
				c, _ := h.stripe(sample(t, "stripe", "040-acme-customer.created.json"))
				return c
			}, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return sampleNow }))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			tt.broken.Store = st
			srv := httptest.NewServer(New(Config{Service: &ingest.Service{Store: tt.broken, Scorecard: score.Default()}, Store: tt.broken,
				StripeSecrets: []string{stripeSecret}, ProductSecret: productSecret, APIToken: apiToken,
				Now: func() time.Time { return sampleNow }, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}))
			defer srv.Close()
			h := &harness{t: t, srv: srv, st: st, now: sampleNow}
			if got := tt.req(h); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAWriteKeyNeverRestsInAHeldMessage(t *testing.T) {
	h := newHarness(t)
	body := `{"writeKey":"` + productSecret + `","type":"track","messageId":"wk-1","userId":"wk-user","event":"Signed In","timestamp":"2026-11-20T10:00:00Z"}`
	code, m := h.post("/webhooks/product", []byte(body), nil)
	if code != 200 || m["held"] != 1.0 {
		t.Fatalf("%d %v, want held", code, m)
	}
	hs, _ := h.st.Held(context.Background(), "wk-user")
	if len(hs) != 1 || strings.Contains(string(hs[0].Body), productSecret) {
		t.Fatalf("held body %s carries the product secret", hs[0].Body)
	}
}
