// Package httpapi holds the net/http handlers and routing shared by the Lambda functions
// (through aws-lambda-go-api-proxy) and the local server: body limits, signature and token
// checks, and the one place where error kinds become status codes.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/store"
)

// MaxBody is the largest request body accepted, before and after gzip decompression.
const MaxBody = 1 << 20

// Config wires the handlers.
type Config struct {
	Service *ingest.Service
	Store   store.Store
	// StripeSecrets are the endpoint signing secrets (whsec_…); more than one during rotation.
	StripeSecrets []string
	// ProductSecret authenticates /webhooks/product (bearer, basic user, or X-Signature key).
	ProductSecret string
	// APIToken authenticates the read and job routes locally (IAM guards them on AWS).
	APIToken string
	// IAMAuth says API Gateway's IAM authorizer guards the read routes (on AWS): the bearer
	// check is off, since Authorization then carries the caller's SigV4 signature.
	IAMAuth bool
	// Queue, when set, makes the product webhook validate and enqueue messages (answering
	// 202) instead of applying them (200): on AWS a consumer applies them in batches.
	Queue Queue
	// Jobs enables POST /jobs/recompute (local only).
	Jobs bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
}

// Queue takes the envelopes of accepted product messages (SQS on AWS).
type Queue interface {
	Enqueue(ctx context.Context, e ingest.Envelope) error
}

type api struct {
	Config
}

// New returns the router for cfg.
func New(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &api{Config: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /webhooks/stripe", a.stripe)
	mux.HandleFunc("POST /webhooks/product", a.product)
	// The Segment and RudderStack server libraries post to {host}/v1/batch. Segment's resolves
	// that path against the host (dropping any path the host has), RudderStack's appends it:
	// serve both so either library works with nothing but its host changed.
	for _, prefix := range []string{"/webhooks/product", ""} {
		mux.HandleFunc("POST "+prefix+"/v1/batch", a.product)
		mux.HandleFunc("POST "+prefix+"/v1/{type}", a.product)
	}
	mux.HandleFunc("GET /accounts/{id}", a.bearer(a.account))
	mux.HandleFunc("GET /accounts", a.bearer(a.list))
	if cfg.Jobs {
		mux.HandleFunc("POST /jobs/recompute", a.bearer(a.recompute))
	}
	return a.logged(mux)
}

// Status codes by error kind: the only place they are chosen.
func status(err error) int {
	var mb *http.MaxBytesError
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge
	}
	switch fault.KindOf(err) {
	case fault.Invalid:
		return http.StatusBadRequest
	case fault.Unauthorized:
		return http.StatusUnauthorized
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Permanent:
		// The write can never succeed (over DynamoDB's limits): retrying would not help.
		return http.StatusUnprocessableEntity
	case fault.Transient, fault.Conflict:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// httpError is an error whose status the handler knows.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func fail(code int, msg string) error { return &httpError{code: code, msg: msg} }

// reply writes err as {"error": "..."} with its status and notes it for the request log.
// Internal errors are not shown to the caller.
func reply(w http.ResponseWriter, r *http.Request, err error) {
	code := status(err)
	msg := err.Error()
	switch code {
	case http.StatusRequestEntityTooLarge:
		msg = "request body over 1 MiB"
	case http.StatusInternalServerError:
		msg = "internal error"
	case http.StatusServiceUnavailable:
		msg = "temporarily unavailable; retry"
	case http.StatusUnprocessableEntity:
		msg = "the change cannot be stored (over the store's size limits); it will not succeed on retry"
	}
	note(r, slog.String("outcome", "error"), slog.String("err", err.Error()))
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="churnsignal"`)
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// secretEqual compares in constant time, whatever the lengths.
func secretEqual(got, want string) bool {
	g, x := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], x[:]) == 1 && want != ""
}

// bearerToken returns the token of an "Authorization: Bearer …" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

func (a *api) bearer(next http.HandlerFunc) http.HandlerFunc {
	if a.IAMAuth {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := bearerToken(r); !ok || !secretEqual(tok, a.APIToken) {
			reply(w, r, fail(http.StatusUnauthorized, "missing or wrong bearer token"))
			return
		}
		next(w, r)
	}
}

// request logging: one JSON line per request, fields added by handlers through note.

type logKey struct{}

type entry struct{ attrs []slog.Attr }

func note(r *http.Request, attrs ...slog.Attr) {
	if e, ok := r.Context().Value(logKey{}).(*entry); ok {
		e.attrs = append(e.attrs, attrs...)
	}
}

type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (a *api) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		e := &entry{}
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), logKey{}, e)))
		attrs := append([]slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.code),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		}, e.attrs...)
		level := slog.LevelInfo
		if rec.code >= 500 {
			level = slog.LevelError
		} else if rec.code >= 400 {
			level = slog.LevelWarn
		}
		a.Log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}
