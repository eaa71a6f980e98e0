package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestUnsupportedContentEncodingIs415NamingIt(t *testing.T) {
	m1 := track("m1", "u1", "acme", sampleNow, "Signed In")
	tests := []struct {
		name     string
		path     string
		encoding string
		code     int
	}{
		{"brotli to the product route", "/webhooks/product", "br", 415},
		{"deflate to the product route", "/webhooks/product", "deflate", 415},
		{"zstd to the Stripe route", "/webhooks/stripe", "zstd", 415},
		{"identity is plain", "/webhooks/product", "identity", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			code, m := h.post(tt.path, []byte(m1), map[string]string{"Authorization": "Bearer " + productSecret, "Content-Encoding": tt.encoding})
			if code != tt.code {
				t.Fatalf("got %d %v, want %d", code, m, tt.code)
			}
			if code == 415 && !strings.Contains(fmt.Sprint(m["error"]), `"`+tt.encoding+`"`) {
				t.Errorf("error %q does not name %q", m["error"], tt.encoding)
			}
		})
	}
}

func TestAWriteKeyInTheBodyAuthenticatesLikeBasicAuth(t *testing.T) {
	m1 := track("m1", "u1", "acme", sampleNow, "Signed In")
	tests := []struct {
		name string
		body string
		code int
	}{
		{"the right writeKey", `{"batch":[` + m1 + `],"writeKey":"` + productSecret + `"}`, 200},
		{"a wrong writeKey", `{"batch":[` + m1 + `],"writeKey":"guess"}`, 401},
		{"an empty writeKey", `{"batch":[` + m1 + `],"writeKey":""}`, 401},
		{"no credentials at all", `{"batch":[` + m1 + `]}`, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			code, m := h.post("/webhooks/product", []byte(tt.body), nil)
			if code != tt.code {
				t.Fatalf("got %d %v, want %d", code, m, tt.code)
			}
			if strings.Contains(h.logs.String(), productSecret) {
				t.Error("the log shows the write key")
			}
		})
	}
}

func TestBatchContextNamesTheAccountOfEveryMessage(t *testing.T) {
	h := newHarness(t)
	body := `{"batch":[
		{"type":"track","messageId":"b1","userId":"u1","event":"Signed In","timestamp":"2026-11-20T11:00:00Z"},
		{"type":"track","messageId":"b2","userId":"u2","event":"Signed In","timestamp":"2026-11-20T11:00:00Z"}
	],"context":{"groupId":"acme"}}`
	code, m := h.product([]byte(body))
	if code != 200 || m["applied"] != 2.0 || m["held"] != 0.0 {
		t.Fatalf("%d %v; want both applied to acme, none held", code, m)
	}
	if got := path(h.account("acme"), "usage", "active_users_7d"); got != 2.0 {
		t.Errorf("acme active users %v, want 2", got)
	}
}

func TestAnUnreadableTimestampIsAWarningNotARejection(t *testing.T) {
	h := newHarness(t)
	body := `{"type":"track","messageId":"w1","userId":"u1","event":"Signed In","timestamp":"2015-2-02T00:30:08.276Z","context":{"groupId":"acme"}}`
	code, m := h.product([]byte(body))
	if code != 200 || m["applied"] != 1.0 || m["rejected"] != 0.0 {
		t.Fatalf("%d %v; want applied 1, rejected 0", code, m)
	}
	errs, _ := m["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("errors %v, want one warning", m["errors"])
	}
	e := errs[0].(map[string]any)
	if e["warning"] != true || e["index"] != 0.0 || !strings.Contains(fmt.Sprint(e["error"]), "2015-2-02") {
		t.Errorf("entry %v, want a warning for index 0 naming the timestamp", e)
	}
	if got := path(h.account("acme"), "usage", "last_seen_at"); got != sampleNow.Format("2006-01-02T15:04:05Z") {
		t.Errorf("last seen %v, want the receipt time %v", got, sampleNow)
	}
}

func TestAStripeObjectOfTheWrongKindIsIgnoredAndStoresNothing(t *testing.T) {
	var sub map[string]any
	if err := json.Unmarshal(sample(t, "stripe", "acme-customer.subscription.created.json"), &sub); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, typ string }{
		{"a subscription inside customer.created", "customer.created"},
		{"a subscription inside invoice.paid", "invoice.paid"},
		{"a subscription inside charge.refunded", "charge.refunded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ev, _ := json.Marshal(map[string]any{"id": "evt_mismatch", "object": "event", "type": tt.typ,
				"created": sampleNow.Unix(), "data": sub["data"]})
			code, m := h.stripe(ev)
			if code != 200 || m["status"] != "ignored" {
				t.Fatalf("%d %v; want 200 ignored", code, m)
			}
			h.nothingStored()
			if !strings.Contains(h.logs.String(), `carries a \"subscription\" object`) {
				t.Errorf("the log does not give the reason:\n%s", h.logs.String())
			}
		})
	}
}

func TestAStaleSnapshotIsAnsweredStaleAndADuplicateNamesItsAccount(t *testing.T) {
	tests := []struct {
		name          string
		newer, older  string
		account, want string
	}{
		{"an older subscription snapshot", "globex-customer.subscription.updated.json", "globex-customer.subscription.created.json", "cus_P8Globex00000001", "stale"},
		{"an older customer snapshot", "vandelay-customer.updated.json", "vandelay-customer.created.json", "vandelay", "stale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if code, m := h.stripe(sample(t, "stripe", tt.newer)); code != 200 || m["status"] != "applied" {
				t.Fatalf("newer: %d %v", code, m)
			}
			code, m := h.stripe(sample(t, "stripe", tt.older))
			if code != 200 || m["status"] != tt.want || m["account"] != tt.account {
				t.Fatalf("older: %d %v; want %s on %s", code, m, tt.want, tt.account)
			}
			if !strings.Contains(h.logs.String(), `"outcome":"stale"`) {
				t.Error("the request log does not say stale")
			}
			code, m = h.stripe(sample(t, "stripe", tt.older))
			if code != 200 || m["status"] != "duplicate" || m["account"] != tt.account {
				t.Fatalf("redelivery of the older: %d %v; want duplicate on %s", code, m, tt.account)
			}
		})
	}
}

func TestProductLogLinesNameAccountsAndAFewReasons(t *testing.T) {
	h := newHarness(t)
	msgs := []string{track("a1", "u1", "acme", sampleNow, "Signed In"), track("a2", "u2", "globex", sampleNow, "Signed In")}
	for i := 0; i < 8; i++ { // eight distinct rejection reasons would be too many for one line
		msgs = append(msgs, fmt.Sprintf(`{"type":"track","messageId":"r%d","userId":"%s","event":"x"}`, i, strings.Repeat("u", 257+i)))
		msgs = append(msgs, fmt.Sprintf(`{"type":"track","messageId":"n%d","userId":"u"}`, i))
		msgs = append(msgs, fmt.Sprintf(`{"type":"group","messageId":"g%d","userId":"u%d"}`, i, i))
		msgs = append(msgs, fmt.Sprintf(`{"messageId":"t%d","userId":"u%d"}`, i, i))
		msgs = append(msgs, fmt.Sprintf(`{"type":"track","messageId":"p%d"}`, i))
		msgs = append(msgs, fmt.Sprintf(`{"type":"track","messageId":"q%d","userId":[1]}`, i))
	}
	if code, m := h.product([]byte("[" + strings.Join(msgs, ",") + "]")); code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	var line struct {
		Accounts []string `json:"accounts"`
		Reasons  []string `json:"reasons"`
	}
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, "/webhooks/product") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if strings.Join(line.Accounts, ",") != "acme,globex" {
		t.Errorf("accounts %v, want acme and globex", line.Accounts)
	}
	if len(line.Reasons) != 5 {
		t.Errorf("reasons %q, want the first 5 distinct", line.Reasons)
	}
}

func TestAMessageTooBigToHoldIsRejectedWithAClearError(t *testing.T) {
	big := strings.Repeat("x", 40<<10)
	tests := []struct {
		name     string
		note     string
		held     float64
		rejected float64
	}{
		{"a 40 KB message for an unknown user", big, 0, 1},
		{"a small message for an unknown user", "small", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.setNow(time.Now()) // the store expires held messages by the wall clock
			body := fmt.Sprintf(`{"type":"track","messageId":"h1","userId":"stranger","event":"Signed In","properties":{"note":%q}}`, tt.note)
			code, m := h.product([]byte(body))
			if m["held"] != tt.held || m["rejected"] != tt.rejected {
				t.Fatalf("%d %v; want held %v rejected %v", code, m, tt.held, tt.rejected)
			}
			if tt.rejected > 0 && !strings.Contains(fmt.Sprint(m["errors"]), "bytes") {
				t.Errorf("errors %v do not say the message is too big", m["errors"])
			}
			held, err := h.st.Held(context.Background(), "stranger")
			if err != nil || len(held) != int(tt.held) {
				t.Errorf("store holds %d messages (%v), want %v", len(held), err, tt.held)
			}
		})
	}
}

func TestHugeStringsDoNotMakeHugeAccounts(t *testing.T) {
	huge := strings.Repeat("ü", 225<<10) // 450 KB
	tests := []struct {
		name string
		body string
		code int
	}{
		{"a 450 KB group name", `{"type":"group","messageId":"g1","groupId":"acme","traits":{"name":"` + huge + `","plan":"` + huge + `"}}`, 200},
		{"a 450 KB ticket id", `{"type":"track","messageId":"t1","userId":"u","event":"Ticket Created","context":{"groupId":"acme"},"properties":{"ticket_id":"` + huge + `"}}`, 200},
		{"a 450 KB account id in traits", `{"type":"identify","messageId":"i1","userId":"u","traits":{"company":{"id":"` + huge + `"}}}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			code, m := h.product([]byte(tt.body))
			if code != tt.code {
				t.Fatalf("%d %v, want %d", code, m, tt.code)
			}
			as, _, err := h.st.Scan(context.Background(), 0, 1, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range as {
				b, _ := json.Marshal(a)
				if len(b) > 16<<10 {
					t.Errorf("account %.20s… encodes to %d bytes", a.ID, len(b))
				}
				if !utf8.Valid(b) || bytes.Contains(b, []byte(`\ufffd`)) {
					t.Errorf("account %.20s… holds a cut UTF-8 sequence", a.ID)
				}
			}
		})
	}
}
