package risk

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
)

// schemaProps returns the required and allowed property names of a schema object.
func schemaProps(t *testing.T, obj map[string]any) (required, allowed []string) {
	for _, r := range obj["required"].([]any) {
		required = append(required, r.(string))
	}
	for k := range obj["properties"].(map[string]any) {
		allowed = append(allowed, k)
	}
	sort.Strings(allowed)
	return required, allowed
}

func TestEventsMatchThePublishedSchema(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "schema", "risk-event.v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	prev := 80
	e := Event{ID: eventID("acme", 1), Type: TypeRaised, Kind: "voluntary", OccurredAt: time.Now(),
		Account: AccountRef{ID: "acme", Name: "Acme", StripeCustomerID: "cus_1", Segment: "low-touch", MRR: Money{Amount: 100, Currency: "usd"}},
		Health:  HealthChange{Score: 40, Band: "BAD", PreviousScore: &prev, PreviousBand: "NORMAL"},
		Reasons: []account.Reason{{Measure: "nps", Kind: "engagement", Detail: "x", Impact: -3}},
		Changes: []Change{{Measure: "nps", Previous: 5, Current: 2, Delta: -3}}, ScorecardVersion: "v", SchemaVersion: SchemaVersion,
		MRRLost: &Money{Amount: 1, Currency: "usd"}}
	raw, _ := json.Marshal(e)
	var got map[string]any
	json.Unmarshal(raw, &got)
	check := func(name string, obj map[string]any, val map[string]any) {
		required, allowed := schemaProps(t, obj)
		for _, r := range required {
			if _, ok := val[r]; !ok {
				t.Errorf("%s: required %q missing from the event", name, r)
			}
		}
		for k := range val {
			if i := sort.SearchStrings(allowed, k); i == len(allowed) || allowed[i] != k {
				t.Errorf("%s: event field %q is not in the schema", name, k)
			}
		}
	}
	props := schema["properties"].(map[string]any)
	check("event", schema, got)
	check("account", props["account"].(map[string]any), got["account"].(map[string]any))
	check("health", props["health"].(map[string]any), got["health"].(map[string]any))
	check("reason", props["reasons"].(map[string]any)["items"].(map[string]any), got["reasons"].([]any)[0].(map[string]any))
	check("change", props["changes"].(map[string]any)["items"].(map[string]any), got["changes"].([]any)[0].(map[string]any))
}
