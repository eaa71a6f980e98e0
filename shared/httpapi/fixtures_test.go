package httpapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// externalFixtures returns the payloads copied from public repositories (see SOURCES.md in
// that folder), or skips the test when the folder is absent. CHURNSIGNAL_FIXTURES overrides
// the default location, ../shared/fixtures/external from the repository root.
func externalFixtures(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CHURNSIGNAL_FIXTURES")
	if dir == "" {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "..", "shared", "fixtures", "external")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("external fixtures not found at %s (set CHURNSIGNAL_FIXTURES)", dir)
	}
	return dir
}

// fixtureFiles lists the JSON fixtures whose name satisfies keep, sorted.
func fixtureFiles(t *testing.T, keep func(name string) bool) []string {
	t.Helper()
	dir := externalFixtures(t)
	all, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range all {
		if keep(filepath.Base(f)) {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatalf("no fixtures in %s", dir)
	}
	return out
}

func isProductFixture(name string) bool {
	for _, p := range []string{"segment-docs__", "analytics-go__", "rudder-server__"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func TestEveryRealSegmentAndRudderStackBodyIsAccepted(t *testing.T) {
	for _, f := range fixtureFiles(t, isProductFixture) {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t)
			code, m := h.product(body)
			if code >= 400 {
				t.Fatalf("answered %d %v", code, m)
			}
			if m["rejected"] != 0.0 {
				t.Errorf("rejected %v messages: %v", m["rejected"], m["errors"])
			}
			// A retry of the very same body changes nothing, even without messageIds.
			code, again := h.product(body)
			if code >= 400 || again["applied"] != 0.0 {
				t.Errorf("the retry answered %d %v; want nothing applied twice", code, again)
			}
		})
	}
}

// eventTypeOfObject names the event a bare Stripe object fixture is wrapped into.
var eventTypeOfObject = map[string]string{
	"charge":                "charge.refunded",
	"customer":              "customer.updated",
	"deleted_customer":      "customer.deleted",
	"discount":              "customer.discount.created",
	"dispute":               "charge.dispute.created",
	"invoice":               "invoice.paid",
	"subscription":          "customer.subscription.updated",
	"subscription_schedule": "subscription_schedule.updated",
	"price":                 "price.updated",
}

// stripeFixtureEvent returns the fixture as a full event: files holding only data (names
// containing data-only) or only an object (names containing object.) are wrapped into an
// event of the type their name says.
func stripeFixtureEvent(t *testing.T, name string, raw []byte) []byte {
	t.Helper()
	base := strings.TrimSuffix(name, ".json")
	_, rest, _ := strings.Cut(base, "__")
	var data json.RawMessage
	var typ string
	switch {
	case strings.Contains(rest, "data-only"):
		typ, data = strings.TrimSuffix(rest, "__data-only"), raw
	case strings.HasPrefix(rest, "object."):
		obj, _, _ := strings.Cut(strings.TrimPrefix(rest, "object."), ".")
		typ = eventTypeOfObject[obj]
		if typ == "" {
			t.Fatalf("no event type for object %q", obj)
		}
		data, _ = json.Marshal(map[string]json.RawMessage{"object": raw})
	default:
		return raw
	}
	ev, _ := json.Marshal(map[string]any{
		"id": "evt_fixture_" + strings.NewReplacer(".", "_", "-", "_").Replace(base), "object": "event",
		"api_version": "2023-10-16", "created": sampleNow.Unix(), "type": typ, "data": data,
	})
	return ev
}

func TestEveryRealStripeEventIsAcceptedBestEffort(t *testing.T) {
	files := fixtureFiles(t, func(n string) bool { return !isProductFixture(n) && strings.HasSuffix(n, ".json") })
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t)
			code, m := h.stripe(stripeFixtureEvent(t, name, raw))
			if code != 200 {
				t.Fatalf("answered %d %v", code, m)
			}
			switch m["status"] {
			case "applied", "ignored", "stale", "duplicate":
			default:
				t.Errorf("status %v", m["status"])
			}
		})
	}
}
