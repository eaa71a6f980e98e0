// Command cost prices a month of churnsignal on AWS for two workloads (1,000 and 100,000
// accounts, 5,000 product events per account per day, 10 Stripe events per account per
// month): per service, per million Stripe events and per million product messages. Write
// units come from the store's own encoding (dynamo.CommitUnits of the commits
// shared/scenario builds as ingest does), memory sizes and batching from template.yaml; the
// durations and log sizes are stated assumptions (flags). docs/COST.md explains each line.
//
//	go run ./infra/cost [-users 100] [-window 0] [-batch 0] [-template template.yaml]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/scenario"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

// PricesAsOf names the list prices below and where their dates come from (docs/COST.md).
const PricesAsOf = "us-east-1 list prices: DynamoDB on-demand as reduced on 2024-11-01 (still listed 2025-07-21); Lambda arm64 as listed in 2024; API Gateway, SQS, SNS and CloudWatch Logs as stated in docs/COST.md, to be checked"

// listPrices are the us-east-1 list prices the bill uses (first pricing tier, no free tier).
var listPrices = Prices{
	WriteUnit:      0.625 / 1e6,
	ReadUnit:       0.125 / 1e6,
	StorageGBMonth: 0.25,
	LambdaGBSecond: 0.0000133334,
	LambdaRequest:  0.20 / 1e6,
	HTTPRequest:    1.00 / 1e6,
	SQSRequest:     0.40 / 1e6,
	SNSPublish:     0.50 / 1e6,
	LogsGB:         0.50,
}

// workloads are issue 7's two scenarios.
var workloads = []Workload{
	{Name: "(i) 1,000 accounts", Accounts: 1000, ProductPerAccountDay: 5000, StripePerAccountMonth: 10},
	{Name: "(ii) 100,000 accounts", Accounts: 100000, ProductPerAccountDay: 5000, StripePerAccountMonth: 10},
}

func main() {
	users := flag.Int("users", 100, "users active daily in each account (sizes the account item)")
	window := flag.Float64("window", -1, "ProductBatchingWindowSeconds (default: the template's)")
	batch := flag.Int("batch", 0, "ProductBatchSize (default: the template's)")
	tpl := flag.String("template", "", "template.yaml (default: the module's)")
	flag.Parse()
	if err := run(os.Stdout, *users, *window, *batch, *tpl); err != nil {
		fmt.Fprintln(os.Stderr, "cost:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, users int, window float64, batch int, tplPath string) error {
	if tplPath == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		tplPath = filepath.Join(root, "template.yaml")
	}
	tpl, err := readTemplate(tplPath)
	if err != nil {
		return err
	}
	p, err := profile(users, tpl)
	if err != nil {
		return err
	}
	if window >= 0 {
		p.Window = window
	}
	if batch > 0 {
		p.QueueBatch = batch
	}
	fmt.Fprintf(w, "churnsignal on AWS, a month of 30 days. %s.\n", PricesAsOf)
	fmt.Fprintf(w, "Inputs: account item %d B (%d users active daily); a Stripe event %.0f WCU (%.0f when it publishes, %.0f%% do); a product commit of 1 / 20 / 100 messages: %s; %d messages a request, %d B each; ProductBatchSize %d, window %.0f s.\n\n",
		p.AccountBytes, users, p.StripeWrite, p.RaisedWrite, p.RaisedShare*100, commitLine(p), p.SegmentBatch, p.MessageBytes, p.QueueBatch, p.Window)
	for _, wl := range workloads {
		printBill(w, Estimate(wl, p, listPrices))
	}
	return nil
}

// commitLine shows the write units per message of product commits of a few sizes.
func commitLine(p Profile) string {
	var parts []string
	for _, n := range []int{1, 20, 100} {
		wcu, _ := p.ProductCommit(n)
		parts = append(parts, fmt.Sprintf("%.2f", wcu/float64(n)))
	}
	return strings.Join(parts, " / ") + " WCU a message"
}

func printBill(w io.Writer, b Bill) {
	fmt.Fprintf(w, "%s: %.0f M product messages, %.2f M Stripe events a month; %.1f queue messages an aggregate invocation, %.2f messages an account commit\n",
		b.Workload.Name, b.ProductMessages/1e6, b.StripeEvts/1e6, b.QueuePerInvocation, b.MessagesPerCommit)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "service\tmonthly USD\tshare\t")
	total := b.Total("")
	for _, l := range b.ByService() {
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f%%\t\n", l.Service, l.Dollars, 100*l.Dollars/total)
	}
	fmt.Fprintf(tw, "total\t%.2f\t\t\n", total)
	tw.Flush()
	fmt.Fprintf(w, "per million product messages: $%.2f (target $0.50); per million Stripe events: $%.2f\n", b.PerMillion("product"), b.PerMillion("stripe"))
	fmt.Fprintln(w, "  product per million, by line:")
	for _, l := range b.Lines {
		if l.For == "product" && l.Dollars > 0 {
			fmt.Fprintf(w, "    %-22s %-50s $%.3f\n", l.Service, l.Item, l.Dollars/b.ProductMessages*1e6)
		}
	}
	fmt.Fprintln(w)
}

// profile measures what the code writes for the scenario's account and reads the template.
func profile(users int, tpl template) (Profile, error) {
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	acct := scenario.ActiveAccount(users, 1, t0)
	product := scenario.ProductCommit(acct, 1, t0)
	accountBytes, err := dynamo.AccountBytes(product.Accounts[0])
	if err != nil {
		return Profile{}, err
	}
	kb4 := func(n int) float64 { return math.Max(1, math.Ceil(float64(n)/4096)) }
	p := Profile{
		SegmentBatch: 20,  // Segment-style batches (issue 7)
		MessageBytes: 600, // a track call with context and properties, as Segment sends it
		QueueBatch:   tpl.param("ProductBatchSize"),
		Window:       float64(tpl.param("ProductBatchingWindowSeconds")),
		ProductCommit: func(n int) (float64, float64) {
			u, err := dynamo.CommitUnits(scenario.ProductCommit(acct, n, t0), t0)
			if err != nil {
				panic(err) // the scenario's commit is valid by construction
			}
			// Reads: the account (consistent GetItem), the minute's receipt twice (the
			// request's first look and the commit's, consistent, 1 unit under 4 KB) and one
			// membership a message (consistent BatchGetItem, 1 unit an item under 4 KB).
			return float64(u.Total()), kb4(accountBytes) + 2 + float64(n)
		},
		StripeRead:   kb4(accountBytes) + 2, // the account, the marker, the customer's link
		RaisedShare:  0.05,                  // a Stripe event that moves a band (stated)
		AccountRead:  kb4(accountBytes) / 2, // recompute's eventually consistent BatchGetItem
		ChangedShare: 0.05,                  // accounts a daily recompute writes (stated)
		AccountBytes: accountBytes,
		MarkerBytes:  dynamo.MarkerBytes(store.Marker{Key: "stripe:evt_1OAcme0000000000000000001", Expires: t0.Add(30 * 24 * time.Hour)}),
		MarkerDays:   61, // usage.Horizon: a product message's mark outlives its message by 61 days
		ReceiptBytes: func(ids int) int {
			return dynamo.ReceiptBytes(scenario.ProductCommit(acct, ids, t0).Receipts[0])
		},
		MemoryMB:          tpl.memory,
		Ms:                map[string]float64{"stripe-webhook": 40, "product-webhook": 15, "product-aggregate": 30, "publisher": 40},
		AggregateCommitMs: 15, // GetItem + BatchGetItem + TransactWriteItems, in sequence
		RecomputeAcctMs:   0.2,
		LogLineBytes:      350, // one slog JSON line; Lambda's JSON platform.start/report lines are of the size
		LogLines:          3,
		AccessLogBytes:    300,
		IdleReceives:      5 * secondsPerMonth / 20, // 5 pollers long-polling 20 s when the queue is empty
		SweepsPerMonth:    30 * 24,
	}
	plain, err := dynamo.CommitUnits(mustStripe(acct, false, t0), t0)
	if err != nil {
		return p, err
	}
	raisedTx := mustStripe(acct, true, t0)
	raised, err := dynamo.CommitUnits(raisedTx, t0)
	if err != nil {
		return p, err
	}
	p.StripeWrite, p.RaisedWrite = float64(plain.Total()), float64(raised.Total())
	p.EventsRaised = float64(len(raisedTx.Outbox))
	for _, m := range raisedTx.Outbox {
		p.EventBytes = max(p.EventBytes, len(m.Body))
	}
	pub := dynamo.PublishedUnits(raisedTx, t0)
	p.PublishWrite = float64(pub.Total()) / math.Max(1, p.EventsRaised)
	acctOnly, err := dynamo.CommitUnits(scenario.ProductCommit(acct, 0, t0), t0)
	if err != nil {
		return p, err
	}
	p.AccountWrite = float64(acctOnly.Total())
	return p, nil
}

// mustStripe is scenario.StripeCommit on a copy of a.
func mustStripe(a *account.Account, raised bool, t0 time.Time) store.Tx {
	tx, err := scenario.StripeCommit(a.Clone(), raised, t0)
	if err != nil {
		panic(err)
	}
	return tx
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory; pass -template")
		}
		dir = parent
	}
}

// template is what the calculator reads of template.yaml: each function's memory (by its
// CodeUri directory) and the parameters' defaults.
type template struct {
	memory   map[string]float64
	defaults map[string]string
}

func (t template) param(name string) int {
	n, _ := strconv.Atoi(t.defaults[name])
	return n
}

var (
	resourceLine = regexp.MustCompile(`^  ([A-Za-z0-9]+):\s*$`)
	fieldLine    = regexp.MustCompile(`^\s+(CodeUri|MemorySize|Default):\s*"?([^"#\s]+)"?`)
)

// readTemplate scans template.yaml line by line: a top-level section, a two-space-indented
// name opens a resource or parameter, and its CodeUri, MemorySize and Default are read; the
// Globals' MemorySize applies to functions without one.
func readTemplate(path string) (template, error) {
	f, err := os.Open(path)
	if err != nil {
		return template{}, err
	}
	defer f.Close()
	t := template{memory: map[string]float64{}, defaults: map[string]string{}}
	section, name := "", ""
	global := 0.0
	type fn struct {
		uri string
		mem float64
	}
	fns := map[string]*fn{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 0 && line[0] != ' ' && line[0] != '#' {
			section, name = strings.TrimSuffix(strings.TrimSpace(line), ":"), ""
			continue
		}
		if m := resourceLine.FindStringSubmatch(line); m != nil {
			name = m[1]
			continue
		}
		m := fieldLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch {
		case section == "Parameters" && m[1] == "Default" && name != "":
			t.defaults[name] = m[2]
		case section == "Globals" && m[1] == "MemorySize":
			global, _ = strconv.ParseFloat(m[2], 64)
		case section == "Resources" && name != "":
			if fns[name] == nil {
				fns[name] = &fn{}
			}
			if m[1] == "CodeUri" {
				fns[name].uri = m[2]
			} else if m[1] == "MemorySize" {
				fns[name].mem, _ = strconv.ParseFloat(m[2], 64)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return t, err
	}
	for _, f := range fns {
		if dir, ok := strings.CutPrefix(f.uri, "functions/"); ok {
			t.memory[dir] = f.mem
			if f.mem == 0 {
				t.memory[dir] = global
			}
		}
	}
	if len(t.memory) == 0 || t.defaults["ProductBatchSize"] == "" {
		return t, fmt.Errorf("%s: no functions or no ProductBatchSize default found", path)
	}
	return t, nil
}
