package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/billing"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/ingest"
)

// StripeTolerance is how far a Stripe-Signature timestamp may be from now.
const StripeTolerance = 5 * time.Minute

// readBody reads at most MaxBody bytes, inflating gzip with the same cap. Any other
// Content-Encoding than gzip or identity is a 415 naming it.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity", "gzip", "x-gzip":
	default:
		return nil, fail(http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Encoding %q: send gzip or identity", clipForLog(enc)))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, err
		}
		return nil, fail(http.StatusBadRequest, "could not read body")
	}
	if enc != "gzip" && enc != "x-gzip" {
		return body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fail(http.StatusBadRequest, "malformed gzip body")
	}
	inflated, err := io.ReadAll(io.LimitReader(zr, MaxBody+1))
	if err != nil {
		return nil, fail(http.StatusBadRequest, "malformed gzip body")
	}
	if len(inflated) > MaxBody {
		return nil, &http.MaxBytesError{Limit: MaxBody}
	}
	return inflated, nil
}

// stripe handles POST /webhooks/stripe.
func (a *api) stripe(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		reply(w, r, err)
		return
	}
	// The Lambda adapter splits a comma-separated header into several values: join them back.
	header := strings.Join(r.Header.Values("Stripe-Signature"), ",")
	if err := a.verifyStripe(body, header); err != nil {
		reply(w, r, err)
		return
	}
	e, err := decodeEvent(body)
	if err != nil {
		reply(w, r, fail(http.StatusBadRequest, "malformed event JSON"))
		return
	}
	if e.ID == "" || e.Type == "" {
		reply(w, r, fail(http.StatusBadRequest, "event has no id or type"))
		return
	}
	note(r, slog.String("event_id", e.ID), slog.String("event_type", string(e.Type)))
	if e.APIVersion != "" && e.APIVersion != stripe.APIVersion {
		a.Log.Error("configuration error: Stripe webhook endpoint API version differs from the one this build reads; "+
			"set the endpoint's api_version to "+stripe.APIVersion+" (the event is applied best-effort)",
			"event_id", e.ID, "event_api_version", e.APIVersion, "expected_api_version", stripe.APIVersion)
	}
	c, err := billing.Map(e)
	var mismatch *billing.MismatchError
	if errors.As(err, &mismatch) {
		// Valid JSON that will never fit: acknowledge (a 4xx would be retried for days), store nothing.
		note(r, slog.String("outcome", ingest.StatusIgnored), slog.String("reason", err.Error()))
		writeJSON(w, http.StatusOK, ingest.StripeResult{Status: ingest.StatusIgnored})
		return
	}
	if err != nil {
		reply(w, r, fail(http.StatusBadRequest, err.Error()))
		return
	}
	res, err := a.Service.Stripe(r.Context(), c, a.Now())
	if err != nil {
		reply(w, r, err)
		return
	}
	note(r, slog.String("account", res.Account), slog.String("outcome", res.Status), slog.Int("events", res.Events))
	writeJSON(w, http.StatusOK, res)
}

// decodeEvent reads the envelope fields Map uses. Unlike stripe.Event it tolerates shapes of
// older API versions (a "request" that is a bare string), which are applied best-effort.
func decodeEvent(body []byte) (stripe.Event, error) {
	var env struct {
		ID         string            `json:"id"`
		Type       stripe.EventType  `json:"type"`
		Created    int64             `json:"created"`
		APIVersion string            `json:"api_version"`
		Data       *stripe.EventData `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return stripe.Event{}, err
	}
	return stripe.Event{ID: env.ID, Type: env.Type, Created: env.Created, APIVersion: env.APIVersion, Data: env.Data}, nil
}

// verifyStripe checks the signature over the exact bytes received against every configured
// secret, and that the signed timestamp is within StripeTolerance of now, either way.
func (a *api) verifyStripe(body []byte, header string) error {
	if header == "" {
		return fail(http.StatusBadRequest, "missing Stripe-Signature header")
	}
	t, ok := signedAt(header)
	if !ok {
		return fail(http.StatusBadRequest, "malformed Stripe-Signature header")
	}
	if d := a.Now().Sub(t); d > StripeTolerance || d < -StripeTolerance {
		return fail(http.StatusBadRequest, "Stripe-Signature timestamp outside the 5-minute tolerance")
	}
	for _, secret := range a.StripeSecrets {
		err := webhook.ValidatePayloadIgnoringTolerance(body, header, secret)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNotSigned):
			return fail(http.StatusBadRequest, "malformed Stripe-Signature header")
		}
	}
	return fail(http.StatusBadRequest, "no valid Stripe signature")
}

// signedAt returns the t= timestamp of a Stripe-Signature header.
func signedAt(header string) (time.Time, bool) {
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && k == "t" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(n, 0), true
		}
	}
	return time.Time{}, false
}

// product handles POST /webhooks/product and the library routes under it.
func (a *api) product(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		reply(w, r, err)
		return
	}
	if err := a.productAuth(r, body); err != nil {
		reply(w, r, err)
		return
	}
	if typ := r.PathValue("type"); typ != "" {
		if body, err = withType(body, typ); err != nil {
			reply(w, r, err)
			return
		}
	}
	raws, err := splitMessages(body)
	if err != nil {
		reply(w, r, err)
		return
	}
	if a.Queue != nil {
		a.enqueue(w, r, raws)
		return
	}
	res, err := a.Service.Product(r.Context(), raws, a.Now())
	if err != nil {
		reply(w, r, err)
		return
	}
	note(r, slog.Int("applied", res.Applied), slog.Int("duplicate", res.Duplicate), slog.Int("held", res.Held),
		slog.Int("rejected", res.Rejected), slog.Int("ignored", res.Ignored))
	note(r, productLog(res)...)
	code := http.StatusOK
	if !res.Valid() {
		code = http.StatusBadRequest
	}
	writeJSON(w, code, res)
}

// maxLoggedAccounts and maxLoggedReasons bound what one product request log line lists.
const (
	maxLoggedAccounts = 20
	maxLoggedReasons  = 5
)

// productLog returns the request log fields of a product request: the accounts it wrote to
// and the first distinct reasons messages were rejected or ignored for (ids, never payloads).
func productLog(res ingest.ProductResult) []slog.Attr {
	var attrs []slog.Attr
	if n := len(res.Accounts); n > 0 {
		accts := res.Accounts[:min(n, maxLoggedAccounts)]
		attrs = append(attrs, slog.Any("accounts", accts))
		if n > maxLoggedAccounts {
			attrs = append(attrs, slog.Int("accounts_not_listed", n-maxLoggedAccounts))
		}
	}
	var reasons []string
	seen := map[string]bool{}
	for _, e := range res.Errors {
		if e.Warning || seen[e.Error] {
			continue
		}
		seen[e.Error] = true
		if len(reasons) < maxLoggedReasons {
			reasons = append(reasons, clipForLog(e.Error))
		}
	}
	if len(reasons) > 0 {
		attrs = append(attrs, slog.Any("reasons", reasons))
	}
	return attrs
}

// clipForLog bounds a sender-controlled string before it reaches a log line or an answer.
func clipForLog(s string) string { return account.Clip(s, 200) }

// productAuth accepts, in constant time: a bearer token, Basic auth with the secret as user
// name (how the Segment and RudderStack libraries send a write key), Segment's X-Signature
// (hex HMAC-SHA1 of the raw body), or a "writeKey" in a JSON object body (Segment's HTTP API
// allows it in place of Basic auth). Segment signs only the first element of a batched array,
// so an array body needs a token.
func (a *api) productAuth(r *http.Request, body []byte) error {
	if tok, ok := bearerToken(r); ok {
		if secretEqual(tok, a.ProductSecret) {
			return nil
		}
		return fail(http.StatusUnauthorized, "wrong bearer token")
	}
	if h := r.Header.Get("Authorization"); len(h) > 6 && strings.EqualFold(h[:6], "basic ") {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
		user, _, _ := strings.Cut(string(raw), ":")
		if err == nil && secretEqual(user, a.ProductSecret) {
			return nil
		}
		return fail(http.StatusUnauthorized, "wrong basic credentials")
	}
	if sig := r.Header.Get("X-Signature"); sig != "" {
		if first := bytes.TrimSpace(body); len(first) > 0 && first[0] == '[' {
			return fail(http.StatusUnauthorized, "X-Signature does not cover a batched array; send a bearer token")
		}
		mac := hmac.New(sha1.New, []byte(a.ProductSecret))
		mac.Write(body)
		want := mac.Sum(nil)
		got, err := hex.DecodeString(strings.TrimSpace(sig))
		if err == nil && a.ProductSecret != "" && hmac.Equal(got, want) {
			return nil
		}
		return fail(http.StatusUnauthorized, "bad X-Signature")
	}
	if key, ok := bodyWriteKey(body); ok {
		if secretEqual(key, a.ProductSecret) {
			return nil
		}
		return fail(http.StatusUnauthorized, "wrong writeKey")
	}
	return fail(http.StatusUnauthorized, "missing credentials: send a bearer token, basic auth, X-Signature or a writeKey in the body")
}

// bodyWriteKey returns the top-level "writeKey" of a JSON object body, if it has one.
func bodyWriteKey(body []byte) (string, bool) {
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' {
		return "", false
	}
	var probe struct {
		WriteKey *string `json:"writeKey"`
	}
	if json.Unmarshal(body, &probe) != nil || probe.WriteKey == nil {
		return "", false
	}
	return *probe.WriteKey, true
}

// withType sets "type" on a single message posted to /v1/{type} when it does not say.
func withType(body []byte, typ string) ([]byte, error) {
	switch typ {
	case "track", "identify", "group", "page", "screen", "alias":
	default:
		return nil, fail(http.StatusNotFound, "unknown route /v1/"+typ)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fail(http.StatusBadRequest, "malformed JSON")
	}
	if _, ok := m["type"]; !ok {
		m["type"], _ = json.Marshal(typ)
	}
	return json.Marshal(m)
}

// enqueue answers a product request on AWS: the messages are validated and queued, 202.
func (a *api) enqueue(w http.ResponseWriter, r *http.Request, raws []json.RawMessage) {
	envs, res := ingest.Accept(raws, a.Now())
	for _, e := range envs {
		if err := a.Queue.Enqueue(r.Context(), e); err != nil {
			reply(w, r, fault.Dependency("enqueue", err))
			return
		}
	}
	note(r, slog.Int("accepted", res.Accepted), slog.Int("rejected", res.Rejected), slog.Int("ignored", res.Ignored),
		slog.Int("envelopes", len(envs)))
	code := http.StatusAccepted
	if res.Accepted+res.Ignored == 0 {
		code = http.StatusBadRequest
	}
	writeJSON(w, code, res)
}
