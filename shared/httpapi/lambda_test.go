package httpapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
)

// proxied is the router behind aws-lambda-go-api-proxy, as the Lambda functions run it.
func proxied(t *testing.T, iam bool) *httpadapter.HandlerAdapterV2 {
	t.Helper()
	st, err := bolt.Open(t.TempDir(), bolt.WithClock(func() time.Time { return sampleNow }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return httpadapter.NewV2(New(Config{Service: &ingest.Service{Store: st, Scorecard: score.Default()}, Store: st,
		StripeSecrets: []string{"whsec_old_secret", stripeSecret}, ProductSecret: productSecret, APIToken: apiToken, IAMAuth: iam,
		Now: func() time.Time { return sampleNow }, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}))
}

func v2Request(method, path string, headers map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + path, RawPath: path, Headers: headers,
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.1"},
		},
	}
}

func TestAStripeEventVerifiesThroughTheLambdaAdapter(t *testing.T) {
	body := sample(t, "stripe", "040-acme-customer.created.json")
	good := fmt.Sprintf("%x", webhook.ComputeSignature(sampleNow, body, stripeSecret))
	old := fmt.Sprintf("%x", webhook.ComputeSignature(sampleNow, body, "whsec_old_secret"))
	tests := []struct {
		name, signature string
		want            int
	}{
		// During a secret rotation Stripe sends two v1 values; API Gateway hands the header over
		// as one string and the adapter splits it at commas.
		{"two v1 signatures (rotation), the valid one second", fmt.Sprintf("t=%d,v1=%s,v1=%s", sampleNow.Unix(), "00"+good[2:], good), http.StatusOK},
		{"two v1 signatures, each from one of the configured secrets", fmt.Sprintf("t=%d,v1=%s,v1=%s", sampleNow.Unix(), old, good), http.StatusOK},
		{"a wrong signature", fmt.Sprintf("t=%d,v1=%s", sampleNow.Unix(), "00"+good[2:]), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := proxied(t, false).ProxyWithContext(context.Background(),
				v2Request("POST", "/webhooks/stripe", map[string]string{"stripe-signature": tt.signature, "content-type": "application/json"}, body))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, resp.Body, tt.want)
			}
		})
	}
}

func TestWithIAMAuthTheReadAPITakesNoBearerToken(t *testing.T) {
	sigv4 := map[string]string{"authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261120/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"}
	for _, tt := range []struct {
		name string
		iam  bool
		want int
	}{
		{"IAM guards the route on AWS: a SigV4-signed request reaches the handler", true, http.StatusNotFound},
		{"locally the bearer token is still required", false, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := proxied(t, tt.iam).ProxyWithContext(context.Background(), v2Request("GET", "/accounts/nobody", sigv4, nil))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, resp.Body, tt.want)
			}
		})
	}
}
