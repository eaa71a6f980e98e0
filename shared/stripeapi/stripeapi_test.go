package stripeapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// skipped makes the missing-emulator skip announce itself once, so it shows without -v.
var skipped sync.Once

// startStripeMock runs stripe-mock (a real Stripe API emulator) on a free port. CI installs it
// and sets CHURNSIGNAL_REQUIRE_EMULATORS=1 so this test cannot be skipped there.
func startStripeMock(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		if os.Getenv("CHURNSIGNAL_REQUIRE_EMULATORS") != "" {
			t.Fatal("stripe-mock is not on PATH")
		}
		skipped.Do(func() {
			// The terminal when there is one: `go test ./...` hides a passing package's stderr.
			var w io.Writer = os.Stderr
			if f, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
				defer f.Close()
				w = f
			}
			fmt.Fprintln(w, "churnsignal: SKIP stripe-mock is not on PATH: stripeapi tests skipped (go install github.com/stripe/stripe-mock@v0.203.0)")
		})
		t.Skip("stripe-mock is not on PATH (go install github.com/stripe/stripe-mock@v0.203.0)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-http-port", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(base + "/v1/charges/ch_1"); err == nil {
			resp.Body.Close()
			return base
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("stripe-mock did not start")
	return ""
}

func TestChargeCustomerAgainstStripeMock(t *testing.T) {
	base := startStripeMock(t)
	c := New("sk_test_123", base)
	cus, err := c.ChargeCustomer(context.Background(), "ch_3OGlobex000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if len(cus) < 5 || cus[:4] != "cus_" {
		t.Fatalf("customer %q, want a cus_ id", cus)
	}
}

func TestChargeCustomerReportsAnUnreachableAPI(t *testing.T) {
	c := New("sk_test_123", "http://127.0.0.1:1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.ChargeCustomer(ctx, "ch_1"); err == nil {
		t.Fatal("no error from an unreachable API")
	}
}
