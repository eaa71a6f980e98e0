package risk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
)

// conform reports where value v breaks schema s: the subset of JSON Schema the event schema
// uses (type, enum, const, pattern, required, properties, additionalProperties, items,
// minimum, maximum).
func conform(path string, s map[string]any, v any) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
			bad("is %s, want %v", jsonType(v), types)
			return errs
		}
	}
	if e, ok := s["enum"].([]any); ok && !slices.Contains(e, v) {
		bad("%v not in %v", v, e)
	}
	if c, ok := s["const"]; ok && c != v {
		bad("%v, want %v", v, c)
	}
	if p, ok := s["pattern"].(string); ok {
		if str, _ := v.(string); !regexp.MustCompile(p).MatchString(str) {
			bad("%q does not match %s", str, p)
		}
	}
	if n, ok := v.(float64); ok {
		if m, ok := s["minimum"].(float64); ok && n < m {
			bad("%v below %v", n, m)
		}
		if m, ok := s["maximum"].(float64); ok && n > m {
			bad("%v above %v", n, m)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := obj[r]; !ok {
				bad("required %q missing", r)
			}
		}
		for k, x := range obj {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, conform(path+"."+k, ps, x)...)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				errs = append(errs, conform(path+"."+k, ap, x)...)
			} else if s["additionalProperties"] == false {
				bad("field %q is not in the schema", k)
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, conform(fmt.Sprintf("%s[%d]", path, i), items, x)...)
			}
		}
	}
	return errs
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

func asList(v any) []string {
	var out []string
	xs, _ := v.([]any)
	for _, x := range xs {
		out = append(out, x.(string))
	}
	return out
}

func loadSchema(t *testing.T) map[string]any {
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "schema", "risk-event.v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	return schema
}

func TestEventsMatchThePublishedSchema(t *testing.T) {
	schema := loadSchema(t)
	prev := 80
	retry := time.Now().Add(72 * time.Hour)
	end := time.Now().AddDate(0, 0, 10)
	full := Event{ID: eventID("acme", 1), Type: TypeRaised, Kind: "voluntary", OccurredAt: time.Now(),
		Account: AccountRef{ID: "acme", Name: "Acme", StripeCustomerID: "cus_1", StripeCustomerIDs: []string{"cus_1", "cus_2"}, Segment: "low-touch", MRR: Money{Amount: 100, Currency: "usd"},
			MRRByCurrency: map[string]int64{"usd": 100, "eur": 50}},
		Health:  HealthChange{Score: 40, Band: "BAD", PreviousScore: &prev, PreviousBand: "NORMAL"},
		Reasons: []account.Reason{{Measure: "nps", Kind: "engagement", Detail: "x", Impact: -3}},
		Changes: []Change{{Measure: "nps", Previous: 5, Current: 2, Delta: -3}}, ScorecardVersion: "v", SchemaVersion: SchemaVersion,
		MRRLost: &Money{Amount: 1, Currency: "usd"},
		Billing: &BillingFacts{InvoiceID: "in_1", AmountDue: 100, Currency: "usd", AttemptCount: 1, NextPaymentAttempt: &retry,
			HostedInvoiceURL: "https://invoice.stripe.com/i/x", Email: "a@b.example"},
		Cancellation: &Cancellation{CancelAt: &end, Reason: "cancellation_requested", Feedback: "too_expensive", Comment: "x"}}
	noRetry := full
	noRetry.Billing = &BillingFacts{InvoiceID: "in_1", AmountDue: 100, Currency: "usd", AttemptCount: 4}
	noRetry.Health.PreviousScore, noRetry.Health.PreviousBand = nil, ""
	merged := full
	merged.Type, merged.Billing, merged.Cancellation, merged.MRRLost = TypeMerged, nil, nil, nil
	merged.Merge = &Merge{From: "cus_1", Into: "acme", Episode: EpisodeContinued}
	for name, e := range map[string]Event{"every field set": full, "no retry left, first score": noRetry, "a merge": merged} {
		raw, _ := json.Marshal(e)
		var got any
		json.Unmarshal(raw, &got)
		for _, err := range conform("event", schema, got) {
			t.Errorf("%s: %s", name, err)
		}
	}
}

func TestTheSampleEventsMatchTheSchema(t *testing.T) {
	schema := loadSchema(t)
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "schema", "examples", "*.json"))
	if len(files) == 0 {
		t.Fatal("no sample events in events/schema/examples")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, err := range conform(filepath.Base(f), schema, got) {
			t.Error(err)
		}
		var e Event
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Errorf("%s does not decode as an Event: %v", f, err)
		}
	}
}
