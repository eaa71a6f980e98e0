// Package function holds what the Lambda functions under functions/ share beyond their wiring:
// the environment each reads (the contract with template.yaml), validated at start and naming
// whatever is missing; their logger; and the handlers built from clients, so tests drive the
// exact handler a function runs with real event shapes.
package function

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/httpapi"
	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/queue"
	"github.com/churnsignal/churnsignal/shared/recompute"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
)

// Names of the six functions, as directories under functions/ and in template.yaml.
const (
	StripeWebhook    = "stripe-webhook"
	ProductWebhook   = "product-webhook"
	ProductAggregate = "product-aggregate"
	API              = "api"
	Publisher        = "publisher"
	Recompute        = "recompute"
)

// Var is one environment variable a function reads.
type Var struct {
	Name     string
	Optional bool
}

// Variables lists, per function, every environment variable it reads besides the optional
// LOG_LEVEL that all of them read. Variables ending in _PARAM name a secret's SSM parameter or
// Secrets Manager secret (shared/secret resolves them at start).
var Variables = map[string][]Var{
	StripeWebhook:    {{Name: "TABLE_NAME"}, {Name: "STRIPE_WEBHOOK_SECRET_PARAM"}, {Name: "STRIPE_API_KEY_PARAM", Optional: true}},
	ProductWebhook:   {{Name: "PRODUCT_WEBHOOK_SECRET_PARAM"}, {Name: "PRODUCT_QUEUE_URL"}},
	ProductAggregate: {{Name: "TABLE_NAME"}},
	API:              {{Name: "TABLE_NAME"}},
	Publisher:        {{Name: "TABLE_NAME"}, {Name: "TOPIC_ARN"}},
	Recompute:        {{Name: "TABLE_NAME"}, {Name: "RECOMPUTE_QUEUE_URL"}, {Name: "RECOMPUTE_SHARDS", Optional: true}, {Name: "RECOMPUTE_BUDGET_SECONDS", Optional: true}},
}

// LogLevelVar is the optional variable every function reads for its log level.
const LogLevelVar = "LOG_LEVEL"

// Env is a function's validated environment.
type Env struct {
	// Function is the function's name.
	Function string
	// Table is TABLE_NAME; ProductQueueURL PRODUCT_QUEUE_URL; TopicARN TOPIC_ARN;
	// RecomputeQueueURL RECOMPUTE_QUEUE_URL.
	Table, ProductQueueURL, TopicARN, RecomputeQueueURL string
	// RecomputeShards is RECOMPUTE_SHARDS (recompute.DefaultShards when unset); it divides 256.
	RecomputeShards int
	// RecomputeBudget is RECOMPUTE_BUDGET_SECONDS (recompute.DefaultBudget when unset).
	RecomputeBudget time.Duration
	// LogLevel is LOG_LEVEL (info when unset).
	LogLevel slog.Level
	// ChargeLookup says STRIPE_API_KEY_PARAM is set: disputes are resolved through the charge.
	ChargeLookup bool
}

// Load reads and validates the environment of the named function through getenv (os.Getenv
// in main). Its error names every required variable that is unset and every value that does
// not parse; secrets (the _PARAM variables) are only checked for presence here and resolved
// by shared/secret.
func Load(function string, getenv func(string) string) (Env, error) {
	vars, ok := Variables[function]
	if !ok {
		return Env{}, fault.New("config", fault.Invalid, "unknown function "+function)
	}
	env := Env{Function: function, RecomputeShards: recompute.DefaultShards, RecomputeBudget: recompute.DefaultBudget}
	var missing []string
	var errs []error
	for _, v := range vars {
		val := strings.TrimSpace(getenv(v.Name))
		if val == "" {
			if !v.Optional {
				missing = append(missing, v.Name)
			}
			continue
		}
		switch v.Name {
		case "TABLE_NAME":
			env.Table = val
		case "PRODUCT_QUEUE_URL":
			env.ProductQueueURL = val
		case "TOPIC_ARN":
			env.TopicARN = val
		case "RECOMPUTE_QUEUE_URL":
			env.RecomputeQueueURL = val
		case "STRIPE_API_KEY_PARAM":
			env.ChargeLookup = true
		case "RECOMPUTE_SHARDS":
			n, err := strconv.Atoi(val)
			if err == nil {
				err = recompute.ValidShards(n)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("RECOMPUTE_SHARDS=%q: a number that divides 256 (16 by default)", val))
			}
			env.RecomputeShards = n
		case "RECOMPUTE_BUDGET_SECONDS":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 900 {
				errs = append(errs, fmt.Errorf("RECOMPUTE_BUDGET_SECONDS=%q: whole seconds from 1 to 900 (600 by default)", val))
			}
			env.RecomputeBudget = time.Duration(n) * time.Second
		}
	}
	if lv := strings.TrimSpace(getenv(LogLevelVar)); lv != "" {
		if err := env.LogLevel.UnmarshalText([]byte(lv)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: one of debug, info, warn, error", lv))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		errs = append([]error{fmt.Errorf("%s: required, not set", strings.Join(missing, ", "))}, errs...)
	}
	if len(errs) > 0 {
		return env, fault.E("config of "+function, fault.Invalid, errors.Join(errs...))
	}
	return env, nil
}

// Logger returns the function's logger: slog JSON on stderr at env's level, every line
// naming the function and, inside an invocation, its Lambda request id.
func Logger(env Env) *slog.Logger {
	return NewLogger(os.Stderr, env)
}

// NewLogger is Logger writing to w.
func NewLogger(w io.Writer, env Env) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: env.LogLevel})
	return slog.New(requestID{h}).With("function", env.Function)
}

// requestID adds the Lambda request id of the record's context, when there is one.
type requestID struct{ slog.Handler }

func (h requestID) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String("request_id", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestID) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestID{h.Handler.WithAttrs(attrs)}
}

func (h requestID) WithGroup(name string) slog.Handler { return requestID{h.Handler.WithGroup(name)} }

// Init is the start of every function's main: it reads and checks the environment of
// function, builds its logger and loads the AWS configuration (AWS_ENDPOINT_URL points it at
// moto_server in tests), exiting with the reason when any of it fails.
func Init(ctx context.Context, function string) (Env, *slog.Logger, aws.Config) {
	env, err := Load(function, os.Getenv)
	log := Logger(env)
	if err != nil {
		Exit(log, err)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		Exit(log, err)
	}
	return env, log, cfg
}

// Exit logs why the function cannot start and exits with status 1, which Lambda reports as an
// init error; main calls it, never a handler.
func Exit(log *slog.Logger, err error) {
	log.Error("init failed", "err", err.Error())
	os.Exit(1)
}

// StripeSecrets splits the Stripe webhook secret's value at commas: during a rotation the
// parameter holds the old and the new signing secret.
func StripeSecrets(value string) []string {
	var out []string
	for _, s := range strings.Split(value, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// HTTPHandler is an API Gateway HTTP API (payload v2) handler.
type HTTPHandler func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// HTTP serves h behind API Gateway's HTTP API through aws-lambda-go-api-proxy, which hands h
// the exact raw body (base64 bodies decoded). A request the adapter cannot convert is answered
// 400 rather than failing the invocation, so every request gets a status.
func HTTP(h http.Handler, log *slog.Logger) HTTPHandler {
	adapter := httpadapter.NewV2(h)
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		resp, err := adapter.ProxyWithContext(ctx, req)
		if err != nil {
			log.Error("request", "path", req.RawPath, "status", http.StatusBadRequest, "err", err.Error())
			body, _ := json.Marshal(map[string]string{"error": "the request could not be read"})
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusBadRequest,
				Headers: map[string]string{"Content-Type": "application/json"}, Body: string(body)}, nil
		}
		return resp, nil
	}
}

// Service returns the ingest service on st with the default scorecard.
func Service(st store.Store, charges ingest.ChargeLookup, log *slog.Logger) *ingest.Service {
	svc := &ingest.Service{Store: st, Scorecard: score.Default(), Log: log}
	if charges != nil {
		svc.Charges = charges
	}
	return svc
}

// StripeHandler is the stripe-webhook function's handler: POST /webhooks/stripe verified
// against secrets (several during a rotation) and applied to st.
func StripeHandler(st store.Store, secrets []string, charges ingest.ChargeLookup, log *slog.Logger) HTTPHandler {
	svc := Service(st, charges, log)
	return HTTP(httpapi.New(httpapi.Config{Service: svc, Store: st, StripeSecrets: secrets, Log: log}), log)
}

// ProductHandler is the product-webhook function's handler: product messages authenticated
// with secret, validated and enqueued on q (202).
func ProductHandler(q httpapi.Queue, secret string, log *slog.Logger) HTTPHandler {
	return HTTP(httpapi.New(httpapi.Config{Queue: q, ProductSecret: secret, Log: log}), log)
}

// APIHandler is the api function's handler: the read routes on st, with the bearer check off
// because API Gateway's IAM authorizer guards them.
func APIHandler(st store.Store, log *slog.Logger) HTTPHandler {
	return HTTP(httpapi.New(httpapi.Config{Service: Service(st, nil, log), Store: st, IAMAuth: true, Log: log}), log)
}

// AggregateHandler is the product-aggregate function's handler: an SQS batch of envelopes
// applied with each account written once, failures reported per queue message.
func AggregateHandler(svc *ingest.Service, log *slog.Logger) func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		return queue.Consume(ctx, svc, ev, log), nil
	}
}
