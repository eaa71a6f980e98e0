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
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/churnsignal/churnsignal/shared/billing"
)

// StripeTolerance is how far a Stripe-Signature timestamp may be from now.
const StripeTolerance = 5 * time.Minute

// readBody reads at most MaxBody bytes, inflating gzip with the same cap.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, err
		}
		return nil, fail(http.StatusBadRequest, "could not read body")
	}
	if !strings.EqualFold(strings.TrimSpace(r.Header.Get("Content-Encoding")), "gzip") {
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
	var e stripe.Event
	if err := json.Unmarshal(body, &e); err != nil {
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
	res, err := a.Service.Product(r.Context(), raws, a.Now())
	if err != nil {
		reply(w, r, err)
		return
	}
	note(r, slog.Int("applied", res.Applied), slog.Int("duplicate", res.Duplicate), slog.Int("held", res.Held),
		slog.Int("rejected", res.Rejected), slog.Int("ignored", res.Ignored))
	code := http.StatusOK
	if !res.Valid() {
		code = http.StatusBadRequest
	}
	writeJSON(w, code, res)
}

// productAuth accepts, in constant time: a bearer token, Basic auth with the secret as user
// name (how the Segment and RudderStack libraries send a write key), or Segment's X-Signature
// (hex HMAC-SHA1 of the raw body). Segment signs only the first element of a batched array,
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
	return fail(http.StatusUnauthorized, "missing credentials: send a bearer token, basic auth or X-Signature")
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
