package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/publish"
)

// sampleNow is the moment the samples in events/ were written relative to; the demo shifts
// every timestamp by (now - sampleNow) so that "three days ago" in a sample is three days ago.
var sampleNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

type demoConfig struct {
	base    string
	dir     string
	cfg     config
	drainer *publish.Drainer
	events  *captured
	out     io.Writer
}

// captured collects published JSON lines for the demo's report.
type captured struct {
	mu    sync.Mutex
	lines [][]byte
}

func (c *captured) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, append([]byte(nil), bytes.TrimSpace(p)...))
	return len(p), nil
}

// runDemo sends every sample, in file-name order, through the real routes (Stripe ones signed
// with the configured secret), recomputes, and prints accounts and risk events.
func runDemo(ctx context.Context, d demoConfig) error {
	var files []string
	for _, sub := range []string{"stripe", "product"} {
		matches, err := filepath.Glob(filepath.Join(d.dir, sub, "*.json"))
		if err != nil {
			return err
		}
		files = append(files, matches...)
	}
	if len(files) == 0 {
		return fmt.Errorf("demo: no samples under %s (run from the repository root or pass -events)", d.dir)
	}
	sort.Slice(files, func(i, j int) bool { return filepath.Base(files[i]) < filepath.Base(files[j]) })
	now := time.Now().UTC()
	shift := now.Sub(sampleNow)
	fmt.Fprintf(d.out, "Sending %d sample deliveries to %s …\n", len(files), d.base)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		body, err := shiftTimes(raw, shift)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/webhooks/product", bytes.NewReader(body))
		if strings.Contains(filepath.ToSlash(f), "/stripe/") {
			req, _ = http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/webhooks/stripe", bytes.NewReader(body))
			sig := webhook.ComputeSignature(now, body, d.cfg.stripeSecrets[0])
			req.Header.Set("Stripe-Signature", fmt.Sprintf("t=%d,v1=%x", now.Unix(), sig))
		} else {
			req.Header.Set("Authorization", "Bearer "+d.cfg.productSecret)
		}
		req.Header.Set("Content-Type", "application/json")
		status, answer, err := do(req)
		if err != nil {
			return err
		}
		fmt.Fprintf(d.out, "  %-55s %d %s\n", filepath.Base(f), status, strings.TrimSpace(string(answer)))
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/jobs/recompute", nil)
	req.Header.Set("Authorization", "Bearer "+d.cfg.apiToken)
	if status, answer, err := do(req); err != nil || status != http.StatusOK {
		return fmt.Errorf("recompute: %d %s %v", status, answer, err)
	}
	if _, err := d.drainer.Drain(ctx); err != nil {
		return err
	}

	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/accounts?limit=500&include_churned=true", nil)
	req.Header.Set("Authorization", "Bearer "+d.cfg.apiToken)
	status, answer, err := do(req)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("list accounts: %d %s %v", status, answer, err)
	}
	var list struct {
		Accounts []struct {
			ID, Name, Segment, Band string
			Score                   int
			Churned                 bool
			MRR                     struct {
				Amount   int64
				Currency string
			}
			TopReason *struct{ Detail string } `json:"top_reason"`
		}
	}
	if err := json.Unmarshal(answer, &list); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "\nAccounts, most at risk first:")
	tw := tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tNAME\tSEGMENT\tMRR\tSCORE\tBAND\tTOP REASON")
	for _, a := range list.Accounts {
		reason := ""
		if a.TopReason != nil {
			reason = a.TopReason.Detail
		}
		band := a.Band
		if a.Churned {
			band += " (churned)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.ID, a.Name, a.Segment, account.FormatMoney(a.MRR.Amount, a.MRR.Currency),
			a.Score, band, reason)
	}
	tw.Flush()

	fmt.Fprintln(d.out, "\nRisk events published (JSON lines; these go to SNS on AWS):")
	tw = tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tKIND\tACCOUNT\tSCORE\tBAND\tWHY")
	d.events.mu.Lock()
	defer d.events.mu.Unlock()
	for _, line := range d.events.lines {
		var e struct {
			Type, Kind string
			Account    struct{ ID string }
			Health     struct {
				Score int
				Band  string
			}
			Reasons []struct{ Detail string }
		}
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		why := ""
		if len(e.Reasons) > 0 {
			why = e.Reasons[0].Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", e.Type, e.Kind, e.Account.ID, e.Health.Score, e.Health.Band, why)
	}
	tw.Flush()
	fmt.Fprintf(d.out, "\nOne event in full:\n")
	if len(d.events.lines) > 0 {
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, d.events.lines[0], "", "  ")
		fmt.Fprintln(d.out, pretty.String())
	}
	return nil
}

func do(req *http.Request) (int, []byte, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// stripeTimes are the Stripe fields holding unix seconds that the demo shifts.
var stripeTimes = map[string]bool{
	"created": true, "current_period_start": true, "current_period_end": true, "cancel_at": true, "canceled_at": true,
	"ended_at": true, "trial_start": true, "trial_end": true, "next_payment_attempt": true, "start_date": true,
	"billing_cycle_anchor": true, "period_start": true, "period_end": true, "start": true, "end": true,
	"effective_at": true, "finalized_at": true, "paid_at": true, "webhooks_delivered_at": true, "due_by": true,
}

// isoTimes are the Segment fields holding ISO-8601 times that the demo shifts.
var isoTimes = map[string]bool{"timestamp": true, "sentAt": true, "originalTimestamp": true, "receivedAt": true}

// shiftTimes moves every known time field of a sample by d.
func shiftTimes(raw []byte, d time.Duration) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(walk(v, "", d))
}

func walk(v any, key string, d time.Duration) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = walk(e, k, d)
		}
	case []any:
		for i, e := range x {
			x[i] = walk(e, key, d)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil && stripeTimes[key] && n > 1_000_000_000 {
			return json.Number(fmt.Sprint(n + int64(d/time.Second)))
		}
	case string:
		if isoTimes[key] {
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return t.Add(d).UTC().Format("2006-01-02T15:04:05.000Z")
			}
		}
	}
	return v
}
