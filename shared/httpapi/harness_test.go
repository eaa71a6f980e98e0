package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/publish"
	"github.com/churnsignal/churnsignal/shared/risk"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

const (
	stripeSecret  = "whsec_test_secret"
	productSecret = "product-secret"
	apiToken      = "api-token"
)

// sampleNow is the time the samples in events/ were written relative to.
var sampleNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// harness is the real router over a real bbolt store, with a settable clock.
type harness struct {
	t       *testing.T
	srv     *httptest.Server
	st      *bolt.Store
	drainer *publish.Drainer
	out     *bytes.Buffer
	logs    *bytes.Buffer
	mu      sync.Mutex
	now     time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, out: &bytes.Buffer{}, logs: &bytes.Buffer{}, now: sampleNow}
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: h.logs}, nil))
	h.drainer = &publish.Drainer{Outbox: st, Publisher: publish.NewLines(h.out)}
	svc := &ingest.Service{Store: st, Scorecard: score.Default(), Log: logger}
	h.srv = httptest.NewServer(New(Config{
		Service: svc, Store: st, StripeSecrets: []string{stripeSecret}, ProductSecret: productSecret,
		APIToken: apiToken, Jobs: true, Log: logger, Now: h.clock,
	}))
	t.Cleanup(func() { h.srv.Close(); st.Close() })
	return h
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) setNow(t time.Time) {
	h.mu.Lock()
	h.now = t
	h.mu.Unlock()
}

// post sends body to path with headers and returns the status and decoded JSON answer.
func (h *harness) post(path string, body []byte, headers map[string]string) (int, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) (int, map[string]any) {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		h.t.Fatalf("%s %s: non-JSON answer %d %q", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func (h *harness) get(path string) (int, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	return h.do(req)
}

func sign(body []byte, at time.Time, secret string) string {
	return fmt.Sprintf("t=%d,v1=%x", at.Unix(), webhook.ComputeSignature(at, body, secret))
}

// stripe sends a correctly signed Stripe event.
func (h *harness) stripe(body []byte) (int, map[string]any) {
	h.t.Helper()
	return h.post("/webhooks/stripe", body, map[string]string{"Stripe-Signature": sign(body, h.clock(), stripeSecret)})
}

// product sends a product body with the bearer secret.
func (h *harness) product(body []byte) (int, map[string]any) {
	h.t.Helper()
	return h.post("/webhooks/product", body, map[string]string{"Authorization": "Bearer " + productSecret})
}

// recompute moves the clock to at and runs the recompute job.
func (h *harness) recompute(at time.Time) map[string]any {
	h.t.Helper()
	h.setNow(at)
	return h.job("/jobs/recompute")
}

// job posts to a job route and returns its answer, failing the test unless it is a 200.
func (h *harness) job(path string) map[string]any {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	code, m := h.do(req)
	if code != 200 {
		h.t.Fatalf("POST %s: %d %v", path, code, m)
	}
	return m
}

// events drains the outbox and returns every event published so far.
func (h *harness) events() []risk.Event {
	h.t.Helper()
	if _, err := h.drainer.Drain(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	var out []risk.Event
	for _, line := range strings.Split(strings.TrimSpace(h.out.String()), "\n") {
		if line == "" {
			continue
		}
		var e risk.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			h.t.Fatalf("bad event line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// nothingStored asserts the store holds no account, marker-bearing write or outbox message.
func (h *harness) nothingStored() {
	h.t.Helper()
	ctx := context.Background()
	as, _, err := h.st.Scan(ctx, 0, 1, "", 10)
	if err != nil || len(as) != 0 {
		h.t.Errorf("accounts stored: %d (%v)", len(as), err)
	}
	if out, _ := h.st.Outbox(ctx, 10); len(out) != 0 {
		h.t.Errorf("outbox holds %d messages", len(out))
	}
}

func sample(t *testing.T, kind, name string) []byte {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join("..", "..", "events", kind, "*"+name))
	if len(matches) != 1 {
		t.Fatalf("sample %s/%s: %d matches", kind, name, len(matches))
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// samples returns every sample file, in file-name order across stripe/ and product/.
func samples(t *testing.T) []string {
	var files []string
	for _, sub := range []string{"stripe", "product"} {
		m, _ := filepath.Glob(filepath.Join("..", "..", "events", sub, "*.json"))
		files = append(files, m...)
	}
	sort.Slice(files, func(i, j int) bool { return filepath.Base(files[i]) < filepath.Base(files[j]) })
	return files
}

// send delivers one sample file through its route.
func (h *harness) send(file string) (int, map[string]any) {
	h.t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		h.t.Fatal(err)
	}
	if strings.Contains(filepath.ToSlash(file), "/stripe/") {
		return h.stripe(b)
	}
	return h.product(b)
}

// parallel runs f(0) … f(n-1) at once and fails the test with every error they return.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := f(i); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// sendCustomer delivers, in order, every sample whose file name names customer.
func (h *harness) sendCustomer(customer string) {
	h.t.Helper()
	for _, f := range samples(h.t) {
		if strings.Contains(filepath.Base(f), "-"+customer+"-") {
			if code, m := h.send(f); code != 200 {
				h.t.Fatalf("%s: %d %v", f, code, m)
			}
		}
	}
}

func (h *harness) account(id string) map[string]any {
	h.t.Helper()
	code, m := h.get("/accounts/" + id)
	if code != 200 {
		h.t.Fatalf("GET /accounts/%s: %d %v", id, code, m)
	}
	return m
}

// path digs into decoded JSON: path(m, "billing", "mrr", "amount").
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
