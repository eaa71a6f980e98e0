package function

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

var quiet = slog.New(slog.NewJSONHandler(io.Discard, nil))

// env returns a getenv reading vars.
func env(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

func TestLoadNamesEveryMissingVariableAndEveryBadValue(t *testing.T) {
	tests := []struct {
		name     string
		function string
		vars     map[string]string
		wantErr  []string // substrings the error must hold; none: no error
	}{
		{"stripe-webhook with its table and secret", StripeWebhook, map[string]string{"TABLE_NAME": "t", "STRIPE_WEBHOOK_SECRET_PARAM": "/cs/whsec"}, nil},
		{"stripe-webhook with nothing set names both required variables", StripeWebhook, nil, []string{"STRIPE_WEBHOOK_SECRET_PARAM, TABLE_NAME: required"}},
		{"product-webhook without its queue", ProductWebhook, map[string]string{"PRODUCT_WEBHOOK_SECRET_PARAM": "/cs/p"}, []string{"PRODUCT_QUEUE_URL: required"}},
		{"publisher without its topic", Publisher, map[string]string{"TABLE_NAME": "t"}, []string{"TOPIC_ARN: required"}},
		{"recompute with defaults", Recompute, map[string]string{"TABLE_NAME": "t", "RECOMPUTE_QUEUE_URL": "q"}, nil},
		{"recompute with a shard count that does not divide 256", Recompute, map[string]string{"TABLE_NAME": "t", "RECOMPUTE_QUEUE_URL": "q", "RECOMPUTE_SHARDS": "10"}, []string{`RECOMPUTE_SHARDS="10"`}},
		{"recompute with a budget past Lambda's 15 minutes", Recompute, map[string]string{"TABLE_NAME": "t", "RECOMPUTE_QUEUE_URL": "q", "RECOMPUTE_BUDGET_SECONDS": "1200"}, []string{`RECOMPUTE_BUDGET_SECONDS="1200"`}},
		{"a missing variable and a bad log level, both named", API, map[string]string{"LOG_LEVEL": "loud"}, []string{"TABLE_NAME: required", `LOG_LEVEL="loud"`}},
		{"an unknown function", "cron", nil, []string{"unknown function cron"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.function, env(tt.vars))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("Load: %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want an error naming %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLoadReadsTheRecomputeSettingsAndTheLogLevel(t *testing.T) {
	e, err := Load(Recompute, env(map[string]string{"TABLE_NAME": "t", "RECOMPUTE_QUEUE_URL": "q",
		"RECOMPUTE_SHARDS": "64", "RECOMPUTE_BUDGET_SECONDS": "300", "LOG_LEVEL": "debug"}))
	if err != nil {
		t.Fatal(err)
	}
	if e.RecomputeShards != 64 || e.RecomputeBudget != 300*time.Second || e.LogLevel != slog.LevelDebug || e.RecomputeQueueURL != "q" {
		t.Errorf("Load = %+v", e)
	}
	d, _ := Load(Recompute, env(map[string]string{"TABLE_NAME": "t", "RECOMPUTE_QUEUE_URL": "q"}))
	if d.RecomputeShards != 16 || d.RecomputeBudget != 600*time.Second || d.LogLevel != slog.LevelInfo {
		t.Errorf("defaults: %+v, want 16 shards, 600 s, info", d)
	}
}

func TestEveryFunctionReadsLogLevelAndOnlyTheContractsVariables(t *testing.T) {
	want := map[string][]string{
		StripeWebhook:    {"STRIPE_API_KEY_PARAM", "STRIPE_WEBHOOK_SECRET_PARAM", "TABLE_NAME"},
		ProductWebhook:   {"PRODUCT_QUEUE_URL", "PRODUCT_WEBHOOK_SECRET_PARAM"},
		ProductAggregate: {"TABLE_NAME"},
		API:              {"TABLE_NAME"},
		Publisher:        {"TABLE_NAME", "TOPIC_ARN"},
		Recompute:        {"RECOMPUTE_BUDGET_SECONDS", "RECOMPUTE_QUEUE_URL", "RECOMPUTE_SHARDS", "TABLE_NAME"},
	}
	if len(Variables) != len(want) {
		t.Errorf("%d functions, want %d", len(Variables), len(want))
	}
	for fn, names := range want {
		var got []string
		for _, v := range Variables[fn] {
			got = append(got, v.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, names) {
			t.Errorf("%s reads %v, the contract says %v", fn, got, names)
		}
	}
}

func TestStripeSecretsSplitsARotationAtCommas(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  []string
	}{
		{"whsec_one", []string{"whsec_one"}},
		{"whsec_old, whsec_new\n", []string{"whsec_old", "whsec_new"}},
		{"whsec_old,,", []string{"whsec_old"}},
	} {
		if got := StripeSecrets(tt.value); !slices.Equal(got, tt.want) {
			t.Errorf("StripeSecrets(%q) = %q, want %q", tt.value, got, tt.want)
		}
	}
}

func TestARequestTheAdapterCannotReadIsAnswered400(t *testing.T) {
	h := HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }), quiet)
	req := v2Request("POST", "/webhooks/stripe", nil, nil)
	req.Body, req.IsBase64Encoded = "%%% not base64 %%%", true
	resp, err := h(context.Background(), req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("got %d, %v; want a 400 answer, not a failed invocation", resp.StatusCode, err)
	}
}

func TestALogLineInsideAnInvocationCarriesTheRequestIDAndNoPayload(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, Env{Function: StripeWebhook, LogLevel: slog.LevelInfo})
	h := HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "request", "status", 200)
		w.WriteHeader(http.StatusOK)
	}), log)
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "c6af9ac6-7b61-11e6-9a41-93e812345678"})
	req := v2Request("POST", "/webhooks/stripe", nil, []byte(`{"secret":"payload"}`))
	if _, err := h(ctx, req); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q is not one JSON line: %v", buf.String(), err)
	}
	if line["request_id"] != "c6af9ac6-7b61-11e6-9a41-93e812345678" || line["function"] != StripeWebhook {
		t.Errorf("log line %v, want the request id and the function", line)
	}
	if strings.Contains(buf.String(), "payload") {
		t.Errorf("log line %q holds the payload", buf.String())
	}
	log.Debug("hidden")
	if strings.Contains(buf.String(), "hidden") {
		t.Error("a debug line was written at level info")
	}
}
