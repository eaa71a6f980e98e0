package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

func TestStripeBadInputIsRejectedAndChangesNothing(t *testing.T) {
	body := sample(t, "stripe", "acme-customer.created.json")
	big := append(bytes.Repeat([]byte(" "), MaxBody), body...)
	tests := []struct {
		name   string
		body   []byte
		header func(h *harness) map[string]string
		code   int
		reason string
	}{
		{"missing signature header", body, func(h *harness) map[string]string { return nil }, 400, "missing Stripe-Signature"},
		{"signature made with another secret", body, func(h *harness) map[string]string {
			return map[string]string{"Stripe-Signature": sign(body, h.clock(), "whsec_other")}
		}, 400, "no valid Stripe signature"},
		{"signature over other bytes", body, func(h *harness) map[string]string {
			return map[string]string{"Stripe-Signature": sign(append([]byte(" "), body...), h.clock(), stripeSecret)}
		}, 400, "no valid Stripe signature"},
		{"timestamp six minutes old", body, func(h *harness) map[string]string {
			return map[string]string{"Stripe-Signature": sign(body, h.clock().Add(-6*time.Minute), stripeSecret)}
		}, 400, "tolerance"},
		{"timestamp six minutes ahead", body, func(h *harness) map[string]string {
			return map[string]string{"Stripe-Signature": sign(body, h.clock().Add(6*time.Minute), stripeSecret)}
		}, 400, "tolerance"},
		{"garbage header", body, func(h *harness) map[string]string { return map[string]string{"Stripe-Signature": "nonsense"} }, 400, "malformed Stripe-Signature"},
		{"signed malformed JSON", []byte(`{"id": "evt_1", "type":`), func(h *harness) map[string]string {
			return map[string]string{"Stripe-Signature": sign([]byte(`{"id": "evt_1", "type":`), h.clock(), stripeSecret)}
		}, 400, "malformed event JSON"},
		{"signed event whose object is malformed", []byte(`{"id":"evt_2","object":"event","type":"invoice.paid","created":1,"data":{"object":{"id":5}}}`), func(h *harness) map[string]string {
			b := []byte(`{"id":"evt_2","object":"event","type":"invoice.paid","created":1,"data":{"object":{"id":5}}}`)
			return map[string]string{"Stripe-Signature": sign(b, h.clock(), stripeSecret)}
		}, 400, "malformed data.object"},
		{"body over 1 MiB", big, func(h *harness) map[string]string {
			return map[string]string{"Stripe-Signature": sign(big, h.clock(), stripeSecret)}
		}, 413, "over 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			code, m := h.post("/webhooks/stripe", tt.body, tt.header(h))
			if code != tt.code || !strings.Contains(fmt.Sprint(m["error"]), tt.reason) {
				t.Fatalf("got %d %v, want %d with %q", code, m, tt.code, tt.reason)
			}
			h.nothingStored()
			if strings.Contains(h.logs.String(), stripeSecret) || strings.Contains(h.logs.String(), "billing@acme.example") {
				t.Error("the log shows the secret or the payload")
			}
		})
	}
}

func TestStripeSignatureRotationAndSplitHeaders(t *testing.T) {
	body := sample(t, "stripe", "acme-customer.created.json")
	h := newHarness(t)
	now := h.clock()
	good := fmt.Sprintf("%x", webhook.ComputeSignature(now, body, stripeSecret))
	// Stripe sends one v1 per active secret while a secret is rolled.
	header := fmt.Sprintf("t=%d,v1=%s,v1=%s", now.Unix(), strings.Repeat("0", 64), good)
	if code, m := h.post("/webhooks/stripe", body, map[string]string{"Stripe-Signature": header}); code != 200 || m["status"] != "applied" {
		t.Fatalf("two v1 values: %d %v", code, m)
	}
	// The Lambda adapter hands the header over split at commas.
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhooks/stripe", bytes.NewReader(body))
	req.Header.Add("Stripe-Signature", fmt.Sprintf("t=%d", now.Unix()))
	req.Header.Add("Stripe-Signature", "v1="+good)
	if code, m := h.do(req); code != 200 || m["status"] != "duplicate" {
		t.Fatalf("split header: %d %v", code, m)
	}
}

func TestStripeUnknownTypeIsAcknowledgedAndIgnored(t *testing.T) {
	h := newHarness(t)
	code, m := h.stripe(sample(t, "stripe", "payment_intent.created.json"))
	if code != 200 || m["status"] != "ignored" {
		t.Fatalf("%d %v", code, m)
	}
	h.nothingStored()
}

func TestStripeDuplicateDeliveryChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.sendCustomer("globex")
	before := h.account("globex")
	nEvents := len(h.events())
	for _, f := range samples(t) {
		if strings.Contains(f, "/stripe/") && strings.Contains(f, "globex") {
			code, m := h.send(f)
			if code != 200 || (m["status"] != "duplicate" && m["status"] != "ignored") {
				t.Fatalf("redelivery of %s: %d %v", f, code, m)
			}
		}
	}
	after := h.account("globex")
	if fmt.Sprint(path(before, "billing")) != fmt.Sprint(path(after, "billing")) || path(after, "updated_at") != path(before, "updated_at") {
		t.Errorf("redelivery changed the account:\n%v\n%v", path(before, "billing"), path(after, "billing"))
	}
	if got := len(h.events()); got != nEvents {
		t.Errorf("redelivery published %d more events", got-nEvents)
	}
	if got := path(after, "billing", "failed_payments_30d"); got != 2.0 {
		t.Errorf("failed payments %v, want 2 (each event counted once)", got)
	}
}

func TestStripeOutOfOrderEndsInTheSameState(t *testing.T) {
	var files []string
	for _, f := range samples(t) {
		if strings.Contains(f, "/stripe/") && (strings.Contains(f, "initech") || strings.Contains(f, "hooli") || strings.Contains(f, "vandelay")) {
			files = append(files, f)
		}
	}
	inOrder, reversed := newHarness(t), newHarness(t)
	for i := range files {
		inOrder.send(files[i])
		reversed.send(files[len(files)-1-i])
	}
	for _, id := range []string{"initech", "hooli", "vandelay"} {
		a, b := inOrder.account(id), reversed.account(id)
		for _, field := range []string{"status", "mrr", "cancel_at_period_end", "failed_payments_30d", "unpaid_failures_30d"} {
			if fmt.Sprint(path(a, "billing", field)) != fmt.Sprint(path(b, "billing", field)) {
				t.Errorf("%s billing.%s: in order %v, reversed %v", id, field, path(a, "billing", field), path(b, "billing", field))
			}
		}
		if a["stripe_customer_id"] != b["stripe_customer_id"] || a["name"] != b["name"] {
			t.Errorf("%s identity differs: %v/%v vs %v/%v", id, a["name"], a["stripe_customer_id"], b["name"], b["stripe_customer_id"])
		}
	}
	if got := path(reversed.account("vandelay"), "billing", "status"); got != "canceled" {
		t.Errorf("vandelay resurrected by a late snapshot: %v", got)
	}
}

func TestConcurrentDeliveriesOfOneEventApplyOnce(t *testing.T) {
	h := newHarness(t)
	h.stripe(sample(t, "stripe", "globex-customer.created.json"))
	body := sample(t, "stripe", "110-globex-invoice.payment_failed.json")
	var mu sync.Mutex
	statuses := map[string]int{}
	parallel(t, 50, func(int) error {
		code, m := h.stripe(body)
		mu.Lock()
		statuses[fmt.Sprintf("%d %v", code, m["status"])]++
		mu.Unlock()
		return nil
	})
	if statuses["200 applied"] != 1 || statuses["200 duplicate"] != 49 {
		t.Fatalf("statuses %v, want 1 applied and 49 duplicate", statuses)
	}
	if got := path(h.account("globex"), "billing", "failed_payments_30d"); got != 1.0 {
		t.Fatalf("failed payments %v, want 1", got)
	}
}

func TestHundredsOfDistinctFailuresInParallelAreEachCounted(t *testing.T) {
	h := newHarness(t)
	h.stripe(sample(t, "stripe", "globex-customer.created.json"))
	base := string(sample(t, "stripe", "110-globex-invoice.payment_failed.json"))
	const n = 150
	parallel(t, n, func(i int) error {
		body := strings.Replace(base, `"id": "evt_1`, fmt.Sprintf(`"id": "evt_%04d`, i), 1)
		if code, m := h.stripe([]byte(body)); code != 200 || m["status"] != "applied" {
			return fmt.Errorf("event %d: %d %v", i, code, m)
		}
		return nil
	})
	if got := path(h.account("globex"), "billing", "failed_payments_30d"); got != float64(n) {
		t.Fatalf("failed_payments_30d = %v, want %d", got, n)
	}
}

func track(id, user, acct string, at time.Time, event string) string {
	return fmt.Sprintf(`{"type":"track","messageId":%q,"userId":%q,"event":%q,"timestamp":%q,"context":{"groupId":%q},"properties":{}}`,
		id, user, event, at.Format(time.RFC3339Nano), acct)
}

func TestHundredsOfParallelProductMessagesOnOneAccountCountOnce(t *testing.T) {
	h := newHarness(t)
	const n = 300
	parallel(t, 2*n, func(j int) error { // every message is delivered twice
		i := j % n
		body := track(fmt.Sprintf("m-%d", i), fmt.Sprintf("u%d", i%40), "hotco", sampleNow.Add(-time.Duration(i)*time.Minute), "Report Created")
		if code, m := h.product([]byte(body)); code != 200 {
			return fmt.Errorf("message %d: %d %v", i, code, m)
		}
		return nil
	})
	a := h.account("hotco")
	if got := path(a, "usage", "events_30d"); got != float64(n) {
		t.Fatalf("events_30d = %v, want %d", got, n)
	}
	if got := path(a, "usage", "active_users_30d"); got != 40.0 {
		t.Fatalf("active_users_30d = %v, want 40", got)
	}
}

func TestProductAuth(t *testing.T) {
	single := []byte(track("m1", "u1", "acme", sampleNow, "Signed In"))
	array := []byte("[" + string(single) + "]")
	sig := func(b []byte, key string) string {
		m := hmac.New(sha1.New, []byte(key))
		m.Write(b)
		return hex.EncodeToString(m.Sum(nil))
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	tests := []struct {
		name    string
		body    []byte
		headers map[string]string
		code    int
	}{
		{"bearer secret", single, map[string]string{"Authorization": "Bearer " + productSecret}, 200},
		{"wrong bearer", single, map[string]string{"Authorization": "Bearer nope"}, 401},
		{"basic with the secret as user name", single, map[string]string{"Authorization": basic(productSecret, "")}, 200},
		{"basic with a wrong user", single, map[string]string{"Authorization": basic("nope", "")}, 401},
		{"segment X-Signature over the raw body", single, map[string]string{"X-Signature": sig(single, productSecret)}, 200},
		{"X-Signature with another key", single, map[string]string{"X-Signature": sig(single, "other")}, 401},
		{"X-Signature on a batched array", array, map[string]string{"X-Signature": sig(array, productSecret)}, 401},
		{"bearer on a batched array", array, map[string]string{"Authorization": "Bearer " + productSecret}, 200},
		{"no credentials", single, nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			code, m := h.post("/webhooks/product", tt.body, tt.headers)
			if code != tt.code {
				t.Fatalf("got %d %v, want %d", code, m, tt.code)
			}
			if code == 401 {
				h.nothingStored()
				if m["error"] == "" {
					t.Error("no reason given")
				}
			}
		})
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestProductBodies(t *testing.T) {
	m1 := track("m1", "u1", "acme", sampleNow, "Signed In")
	m2 := track("m2", "u2", "acme", sampleNow, "Report Created")
	bad := `{"type":"track","messageId":"m3","userId":"u3"}`
	bomb := gz(bytes.Repeat([]byte(" "), 3*MaxBody))
	auth := map[string]string{"Authorization": "Bearer " + productSecret}
	tests := []struct {
		name     string
		body     []byte
		gzip     bool
		code     int
		applied  float64
		rejected float64
	}{
		{"one message", []byte(m1), false, 200, 1, 0},
		{"a bare array (Segment webhook batching)", []byte("[" + m1 + "," + m2 + "]"), false, 200, 2, 0},
		{"the libraries' batch envelope", []byte(`{"batch":[` + m1 + "," + m2 + `],"sentAt":"2026-11-20T12:00:00Z"}`), false, 200, 2, 0},
		{"a gzip batch", gz([]byte(`{"batch":[` + m1 + `]}`)), true, 200, 1, 0},
		{"valid and invalid together", []byte("[" + m1 + "," + bad + "]"), false, 200, 1, 1},
		{"nothing valid", []byte("[" + bad + "]"), false, 400, 0, 1},
		{"only an alias: acknowledged, not an error", []byte(`{"type":"alias","messageId":"a1","userId":"u1","previousId":"anon"}`), false, 200, 0, 0},
		{"malformed JSON", []byte(`{"batch":[`), false, 400, 0, 0},
		{"an empty batch", []byte(`{"batch":[]}`), false, 400, 0, 0},
		{"a gzip body inflating past the cap", bomb, true, 413, 0, 0},
		{"a body over 1 MiB", append([]byte(m1), bytes.Repeat([]byte(" "), MaxBody)...), false, 413, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			headers := map[string]string{"Authorization": auth["Authorization"]}
			if tt.gzip {
				headers["Content-Encoding"] = "gzip"
			}
			code, m := h.post("/webhooks/product", tt.body, headers)
			if code != tt.code {
				t.Fatalf("got %d %v, want %d", code, m, tt.code)
			}
			if code == 200 && (m["applied"] != tt.applied || m["rejected"] != tt.rejected) {
				t.Fatalf("counts %v, want applied %v rejected %v", m, tt.applied, tt.rejected)
			}
			if code != 200 {
				h.nothingStored()
			}
		})
	}
}

func TestMessageIDCountsOnceWhateverTheShape(t *testing.T) {
	h := newHarness(t)
	m1 := track("same-id", "u1", "acme", sampleNow, "Signed In")
	m2 := track("other-id", "u1", "acme", sampleNow, "Signed In")
	shapes := []string{`{"batch":[` + m1 + `]}`, m1, "[" + m1 + "," + m2 + "]", "[" + m1 + "," + m1 + "]"}
	want := [][2]float64{{1, 0}, {0, 1}, {1, 1}, {0, 2}}
	for i, body := range shapes {
		_, m := h.product([]byte(body))
		if m["applied"] != want[i][0] || m["duplicate"] != want[i][1] {
			t.Fatalf("delivery %d: %v, want applied %v duplicate %v", i, m, want[i][0], want[i][1])
		}
	}
	if got := path(h.account("acme"), "usage", "events_30d"); got != 2.0 {
		t.Fatalf("events_30d = %v, want 2", got)
	}
}

func TestSegmentLibraryRoutes(t *testing.T) {
	h := newHarness(t)
	m := track("lib-1", "u1", "acme", sampleNow, "Signed In")
	auth := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(productSecret+":"))}
	if code, r := h.post("/webhooks/product/v1/batch", []byte(`{"batch":[`+m+`]}`), auth); code != 200 || r["applied"] != 1.0 {
		t.Fatalf("/v1/batch: %d %v", code, r)
	}
	single := `{"messageId":"lib-2","userId":"u1","event":"Signed In","context":{"groupId":"acme"}}`
	if code, r := h.post("/webhooks/product/v1/track", []byte(single), auth); code != 200 || r["applied"] != 1.0 {
		t.Fatalf("/v1/track: %d %v", code, r)
	}
}

func TestFutureTimestampsAreClampedAndOldOnesKept(t *testing.T) {
	h := newHarness(t)
	h.product([]byte(track("future", "u1", "acme", sampleNow.Add(48*time.Hour), "Signed In")))
	a := h.account("acme")
	if got := path(a, "usage", "last_seen_at"); got != sampleNow.Format(time.RFC3339) {
		t.Fatalf("last_seen_at = %v, want receipt time %s", got, sampleNow.Format(time.RFC3339))
	}
	code, m := h.product([]byte(track("backfill", "u2", "acme", sampleNow.AddDate(0, 0, -40), "Signed In")))
	if code != 200 || m["applied"] != 1.0 {
		t.Fatalf("backfill: %d %v", code, m)
	}
	if got := path(h.account("acme"), "usage", "events_30d"); got != 1.0 {
		t.Fatalf("a 40-day-old message counted in the last 30 days: %v", got)
	}
}

func TestStripeAPIVersionMismatchIsAppliedAndLoggedAsConfigurationError(t *testing.T) {
	h := newHarness(t)
	body := bytes.Replace(sample(t, "stripe", "acme-customer.created.json"), []byte(`"2023-10-16"`), []byte(`"2024-06-20"`), 1)
	code, m := h.stripe(body)
	if code != 200 || m["status"] != "applied" {
		t.Fatalf("%d %v", code, m)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "configuration error") || !strings.Contains(logs, "2024-06-20") || !strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatalf("no configuration error in the log:\n%s", logs)
	}
}

// failingStore fails every commit, as a store outage would.
type failingStore struct{ *bolt.Store }

func (failingStore) Commit(context.Context, store.Tx) error { return errors.New("connection reset") }

func TestStoreOutageAnswers503SoTheSenderRetries(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fs := failingStore{st}
	srv := httptest.NewServer(New(Config{Service: &ingest.Service{Store: fs, Scorecard: score.Default()}, Store: fs,
		StripeSecrets: []string{stripeSecret}, ProductSecret: productSecret, APIToken: apiToken, Now: func() time.Time { return sampleNow },
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}))
	defer srv.Close()
	body := sample(t, "stripe", "acme-customer.created.json")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/stripe", bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", sign(body, sampleNow, stripeSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/webhooks/product", strings.NewReader(track("m1", "u1", "acme", sampleNow, "x")))
	req.Header.Set("Authorization", "Bearer "+productSecret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("product status %d, want 503", resp.StatusCode)
	}
}
