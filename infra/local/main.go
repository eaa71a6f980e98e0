// Command local runs churnsignal as one process: the same net/http handlers as the Lambda
// functions, an embedded bbolt store, and risk events written as JSON lines.
//
//	go run ./infra/local -demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/churnsignal/churnsignal/shared/httpapi"
	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/publish"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
	"github.com/churnsignal/churnsignal/shared/stripeapi"
)

// Development defaults, used only when the environment does not set a secret.
const (
	devStripeSecret  = "whsec_dev_churnsignal_local_only"
	devProductSecret = "dev-product-secret-local-only"
	devAPIToken      = "dev-api-token-local-only"
)

type config struct {
	addr, data, eventsOut, scorecard, eventsDir string
	demo                                        bool
	stripeSecrets                               []string
	productSecret, apiToken, stripeKey          string
	stripeAPIBase                               string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "churnsignal:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends (or, with -demo, until the demo is done), then shuts down
// gracefully: in-flight requests finish and committed events are published. ready, when not
// nil, is called with the listening address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "listen address (with -demo and no -addr: a free port)")
	fs.StringVar(&cfg.data, "data", "./.churnsignal", "data directory (created if missing)")
	fs.StringVar(&cfg.eventsOut, "events-out", "", "file to append risk events to as JSON lines (default stdout)")
	fs.StringVar(&cfg.scorecard, "scorecard", "", "scorecard JSON file (default: the embedded scorecard)")
	fs.BoolVar(&cfg.demo, "demo", false, "send the samples in -events through the HTTP routes, print accounts and events, exit")
	fs.StringVar(&cfg.eventsDir, "events", "events", "sample payload directory used by -demo")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dataSet, addrSet := false, false
	fs.Visit(func(f *flag.Flag) {
		dataSet = dataSet || f.Name == "data"
		addrSet = addrSet || f.Name == "addr"
	})
	if cfg.demo && !addrSet {
		// The demo talks only to itself: any free port will do, so a busy 8080 is no obstacle.
		cfg.addr = "127.0.0.1:0"
	}

	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	cfg.stripeSecrets = splitList(envOr(logger, "STRIPE_WEBHOOK_SECRET", devStripeSecret))
	cfg.productSecret = envOr(logger, "PRODUCT_WEBHOOK_SECRET", devProductSecret)
	cfg.apiToken = envOr(logger, "API_TOKEN", devAPIToken)
	cfg.stripeKey = os.Getenv("STRIPE_API_KEY")
	cfg.stripeAPIBase = os.Getenv("STRIPE_API_BASE")

	sc := score.Default()
	if cfg.scorecard != "" {
		var err error
		if sc, err = score.Load(cfg.scorecard); err != nil {
			return err
		}
	}
	if cfg.demo && !dataSet {
		dir, err := os.MkdirTemp("", "churnsignal-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.data = dir
	}
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st, err := bolt.Open(cfg.data)
	if err != nil {
		return err
	}
	defer st.Close()

	var events io.Writer = stdout
	if cfg.eventsOut != "" {
		f, err := os.OpenFile(cfg.eventsOut, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("events-out: %w", err)
		}
		defer f.Close()
		events = f
	}
	var demoEvents *captured
	if cfg.demo {
		demoEvents = &captured{}
		events = demoEvents
	}

	drainer := &publish.Drainer{Outbox: st, Publisher: publish.NewLines(events), Log: logger}
	svc := &ingest.Service{Store: st, Scorecard: sc, Log: logger, Committed: drainer.Wake}
	if cfg.stripeKey != "" {
		svc.Charges = stripeapi.New(cfg.stripeKey, cfg.stripeAPIBase)
	}
	handler := httpapi.New(httpapi.Config{
		Service: svc, Store: st, StripeSecrets: cfg.stripeSecrets, ProductSecret: cfg.productSecret,
		APIToken: cfg.apiToken, Jobs: true, Log: logger,
	})

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	drainCtx, stopDrain := context.WithCancel(context.Background())
	drained := make(chan struct{})
	go func() { drainer.Run(drainCtx, time.Second); close(drained) }()
	go purge(drainCtx, st, logger)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("churnsignal listening", "addr", ln.Addr().String(), "data", cfg.data, "scorecard", sc.Version)
	if ready != nil {
		ready(ln.Addr().String())
	}

	if cfg.demo {
		err = runDemo(ctx, demoConfig{base: "http://" + ln.Addr().String(), dir: cfg.eventsDir, cfg: cfg, drainer: drainer,
			events: demoEvents, out: stdout})
	} else {
		select {
		case <-ctx.Done():
		case err = <-serveErr:
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdown); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		logger.Error("shutdown", "err", serr)
	}
	stopDrain()
	<-drained
	logger.Info("churnsignal stopped")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// purge deletes expired dedupe markers and held messages now and then every hour, so the data
// file stays bounded (DynamoDB's TTL does this on AWS).
func purge(ctx context.Context, st *bolt.Store, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := st.Purge(time.Now()); err != nil {
			logger.Error("purge expired entries", "err", err)
		} else if n > 0 {
			logger.Info("purged expired entries", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// envOr reads a secret from the environment, falling back loudly to a development default.
func envOr(logger *slog.Logger, name, dev string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	logger.Warn("!!! DEVELOPMENT DEFAULT IN USE: "+name+" is not set; never expose this server !!!", "variable", name)
	return dev
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
