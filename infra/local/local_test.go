package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// server is one run of the local server in this process.
type server struct {
	base   string
	stderr *syncBuffer
	stop   func() error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	s := &server{stderr: &syncBuffer{}}
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard, s.stderr, func(a string) { addr <- a })
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v\n%s", err, s.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start in 10s")
	}
	stopped := false
	s.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *server) call(t *testing.T, method, path string, body []byte, headers map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func (s *server) stripe(t *testing.T, secret string, body []byte) (int, map[string]any) {
	now := time.Now()
	sig := fmt.Sprintf("t=%d,v1=%x", now.Unix(), webhook.ComputeSignature(now, body, secret))
	return s.call(t, http.MethodPost, "/webhooks/stripe", body, map[string]string{"Stripe-Signature": sig})
}

// freshSample reads a Stripe sample and moves its event time to now.
func freshSample(t *testing.T, name string) []byte {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join("..", "..", "events", "stripe", "*"+name))
	if len(m) != 1 {
		t.Fatalf("sample %s", name)
	}
	raw, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := shiftTimes(raw, time.Since(sampleNow))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRestartKeepsEverything(t *testing.T) {
	t.Setenv("STRIPE_WEBHOOK_SECRET", "whsec_restart")
	t.Setenv("API_TOKEN", "tok")
	t.Setenv("PRODUCT_WEBHOOK_SECRET", "prod")
	data := t.TempDir()
	events := filepath.Join(t.TempDir(), "events.jsonl")
	s := start(t, "-data", data, "-events-out", events)
	for _, name := range []string{"globex-customer.created.json", "globex-customer.subscription.created.json",
		"110-globex-invoice.payment_failed.json", "120-globex-customer.subscription.updated.json"} {
		if code, m := s.stripe(t, "whsec_restart", freshSample(t, name)); code != 200 || m["status"] != "applied" {
			t.Fatalf("%s: %d %v", name, code, m)
		}
	}
	auth := map[string]string{"Authorization": "Bearer tok"}
	_, before := s.call(t, http.MethodGet, "/accounts/globex", nil, auth)
	if err := s.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	lines, _ := os.ReadFile(events)
	if !strings.Contains(string(lines), `"type":"churn_risk.raised"`) {
		t.Fatalf("events file after shutdown: %q", lines)
	}

	s = start(t, "-data", data, "-events-out", events)
	code, after := s.call(t, http.MethodGet, "/accounts/globex", nil, auth)
	if code != 200 || fmt.Sprint(after["billing"]) != fmt.Sprint(before["billing"]) || fmt.Sprint(after["health"]) != fmt.Sprint(before["health"]) {
		t.Fatalf("after restart %d:\n%v\nbefore:\n%v", code, after, before)
	}
	// Deduplication survives the restart too.
	if _, m := s.stripe(t, "whsec_restart", freshSample(t, "110-globex-invoice.payment_failed.json")); m["status"] != "duplicate" {
		t.Fatalf("redelivery after restart: %v", m)
	}
}

func TestDevelopmentDefaultsAreLoud(t *testing.T) {
	for _, v := range []string{"STRIPE_WEBHOOK_SECRET", "PRODUCT_WEBHOOK_SECRET", "API_TOKEN"} {
		t.Setenv(v, "")
	}
	s := start(t, "-data", t.TempDir())
	if code, _ := s.call(t, http.MethodGet, "/accounts", nil, map[string]string{"Authorization": "Bearer " + devAPIToken}); code != 200 {
		t.Fatalf("dev API token refused: %d", code)
	}
	logs := s.stderr.String()
	for _, v := range []string{"STRIPE_WEBHOOK_SECRET", "PRODUCT_WEBHOOK_SECRET", "API_TOKEN"} {
		if !strings.Contains(logs, "DEVELOPMENT DEFAULT IN USE: "+v) {
			t.Errorf("no warning for %s", v)
		}
	}
	if strings.Contains(logs, devAPIToken) || strings.Contains(logs, devStripeSecret) {
		t.Error("a secret appears in the log")
	}
}

func TestBadFlagsFailToStart(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"version":"x","unknown":1}`), 0o600)
	for name, args := range map[string][]string{
		"missing scorecard": {"-scorecard", "/nonexistent/scorecard.json"},
		"invalid scorecard": {"-scorecard", bad},
		"unknown flag":      {"-nope"},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), append(args, "-data", t.TempDir(), "-addr", "127.0.0.1:0"), io.Discard, io.Discard, nil)
			if err == nil {
				t.Fatal("started anyway")
			}
		})
	}
}

func TestScorecardFlagChangesScoring(t *testing.T) {
	t.Setenv("API_TOKEN", "tok")
	t.Setenv("STRIPE_WEBHOOK_SECRET", "whsec_sc")
	raw, err := os.ReadFile(filepath.Join("..", "..", "shared", "score", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	// A scorecard whose high-touch segment starts above acme's 2,750.00 MRR.
	custom := strings.Replace(strings.Replace(string(raw), `"default-2026-11"`, `"strict-1"`, 1), `"min_mrr": 250000`, `"min_mrr": 300000`, 1)
	file := filepath.Join(t.TempDir(), "strict.json")
	os.WriteFile(file, []byte(custom), 0o600)
	s := start(t, "-data", t.TempDir(), "-scorecard", file)
	for _, name := range []string{"acme-customer.created.json", "acme-customer.subscription.created.json"} {
		if code, m := s.stripe(t, "whsec_sc", freshSample(t, name)); code != 200 {
			t.Fatalf("%s: %d %v", name, code, m)
		}
	}
	_, a := s.call(t, http.MethodGet, "/accounts/acme", nil, map[string]string{"Authorization": "Bearer tok"})
	h := a["health"].(map[string]any)
	if h["scorecard_version"] != "strict-1" || a["segment"] != "low-touch" {
		t.Fatalf("segment %v, health %v; want low-touch by scorecard strict-1", a["segment"], h)
	}
}

// TestRealClientLibraries points @segment/analytics-node and @rudderstack/rudder-sdk-node at
// the server, unchanged, and checks every event landed once. CI installs the libraries (npm
// install in infra/clients) and sets CHURNSIGNAL_REQUIRE_CLIENTS=1 so this cannot be skipped there.
func TestRealClientLibraries(t *testing.T) {
	node, err := exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join("..", "clients", "node_modules")); err != nil || statErr != nil {
		if os.Getenv("CHURNSIGNAL_REQUIRE_CLIENTS") != "" {
			t.Fatal("node or infra/clients/node_modules missing (run npm install in infra/clients)")
		}
		skipLoudly(t, &skipped, console(), "node or infra/clients/node_modules missing: TestRealClientLibraries skipped (install Node.js, then run npm install in infra/clients)")
	}
	t.Setenv("PRODUCT_WEBHOOK_SECRET", "write-key-123")
	t.Setenv("API_TOKEN", "tok")
	s := start(t, "-data", t.TempDir())
	out, err := libraries(node, s.base).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	auth := map[string]string{"Authorization": "Bearer tok"}
	for id, want := range map[string]float64{"segment-co": 25, "rudder-co": 25} {
		code, a := s.call(t, http.MethodGet, "/accounts/"+id, nil, auth)
		if code != 200 {
			t.Fatalf("%s: %d %v\n%s", id, code, a, s.stderr.String())
		}
		if got := a["usage"].(map[string]any)["events_30d"]; got != want {
			t.Errorf("%s events_30d = %v, want %v", id, got, want)
		}
	}
	// Running the libraries again sends new messageIds: they count, once each.
	if out, err := libraries(node, s.base).CombinedOutput(); err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	_, a := s.call(t, http.MethodGet, "/accounts/rudder-co", nil, auth)
	if got := a["usage"].(map[string]any)["events_30d"]; got != 50.0 {
		t.Errorf("rudder-co events_30d after a second run = %v, want 50", got)
	}
	if strings.Contains(s.stderr.String(), "write-key-123") {
		t.Error("the write key appears in the log")
	}
}

// libraries runs infra/clients/libraries.mjs against base: 25 tracks through each library.
func libraries(node, base string) *exec.Cmd {
	c := exec.Command(node, "libraries.mjs", base, "write-key-123", "25")
	c.Dir = filepath.Join("..", "clients")
	return c
}

func TestDemoRunsWhenPort8080IsTaken(t *testing.T) {
	// Hold 8080 if it is free; if something else holds it, the point is made all the same.
	if ln, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		t.Cleanup(func() { ln.Close() })
	}
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"without -addr the demo picks a free port", nil, true},
		{"an -addr given is honoured, even when taken", []string{"-addr", "127.0.0.1:8080"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut syncBuffer
			args := append([]string{"-demo", "-events", filepath.Join("..", "..", "events")}, tt.args...)
			err := run(context.Background(), args, &out, &errOut, nil)
			if (err == nil) != tt.ok {
				t.Fatalf("run %v: %v\n%s", args, err, errOut.String())
			}
			if tt.ok && !strings.Contains(out.String(), "ACCOUNT") {
				t.Errorf("the demo printed no account table:\n%s", out.String())
			}
		})
	}
}

// skipped makes a missing-tool skip announce itself once per package run.
var skipped sync.Once

// skipLoudly skips t and, the first time in this package run, writes msg as one line to
// announce (the terminal, see console), so the skip shows without -v.
func skipLoudly(t *testing.T, once *sync.Once, announce io.Writer, msg string) {
	t.Helper()
	once.Do(func() { fmt.Fprintln(announce, "churnsignal: SKIP", msg) })
	t.Skip(msg)
}

// console is where a skip is announced: the terminal when there is one, because `go test
// ./...` hides the output (stderr included) of a package that passes; else stderr.
func console() io.Writer {
	if f, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		return f
	}
	return os.Stderr
}

func TestASkipForAMissingToolIsAnnouncedOnce(t *testing.T) {
	var w bytes.Buffer
	var once sync.Once
	for i := 0; i < 2; i++ {
		t.Run("skipping", func(t *testing.T) { skipLoudly(t, &once, &w, "stripe-mock is not on PATH") })
	}
	if got := strings.Count(w.String(), "\n"); got != 1 || !strings.Contains(w.String(), "SKIP stripe-mock is not on PATH") {
		t.Fatalf("announced %q, want one line naming what to install", w.String())
	}
}
