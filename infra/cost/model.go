package main

import (
	"math"
	"sort"
)

// secondsPerMonth is the month the bill is for: 30 days.
const secondsPerMonth = 30 * 24 * 3600

// maxPayload is Lambda's limit on a synchronous invocation's payload, which bounds an SQS
// batch whatever its size setting.
const maxPayload = 6 << 20

// Prices are list prices in USD, each per one unit of what it names.
type Prices struct {
	WriteUnit      float64 // DynamoDB on-demand write request unit
	ReadUnit       float64 // DynamoDB on-demand read request unit
	StorageGBMonth float64 // DynamoDB standard table storage
	LambdaGBSecond float64 // Lambda arm64 duration
	LambdaRequest  float64 // Lambda invocation
	HTTPRequest    float64 // API Gateway HTTP API request, metered per 512 KB
	SQSRequest     float64 // SQS standard request, metered per 64 KB chunk
	SNSPublish     float64 // SNS publish, metered per 64 KB chunk; deliveries to SQS are free
	LogsGB         float64 // CloudWatch Logs ingestion (standard class)
}

// Workload is who sends what.
type Workload struct {
	Name                  string
	Accounts              float64
	ProductPerAccountDay  float64
	StripePerAccountMonth float64
}

// Profile is what one piece of work costs in units, taken from the code and the template
// (main.go fills it), and the stated assumptions where nothing can be measured here.
type Profile struct {
	SegmentBatch int     // product messages per webhook request (Segment-style batches)
	MessageBytes int     // one product message as queued
	QueueBatch   int     // ProductBatchSize: queue messages per product-aggregate invocation
	Window       float64 // ProductBatchingWindowSeconds
	// ProductCommit is the write and read units of one commit of n messages of one account.
	ProductCommit func(n int) (write, read float64)
	StripeWrite   float64 // one Stripe event that publishes nothing
	RaisedWrite   float64 // one Stripe event that publishes (outbox items included)
	StripeRead    float64 // the reads of one Stripe event
	RaisedShare   float64 // share of Stripe events that publish
	EventsRaised  float64 // events one such Stripe event publishes
	EventBytes    int     // one published event body
	PublishWrite  float64 // the publisher's deletes of one published event
	AccountWrite  float64 // a recompute write of one account (a plain put)
	AccountRead   float64 // a recompute read of one account (eventually consistent)
	ChangedShare  float64 // share of accounts a daily recompute writes
	AccountBytes  int
	MarkerBytes   int               // a Stripe event's marker
	MarkerDays    float64           // how long a product message's mark lives
	ReceiptBytes  func(ids int) int // a product receipt holding ids message marks
	// MemoryMB and Ms are each function's memory (the template's) and time per invocation
	// (stated); AggregateCommitMs is product-aggregate's time per account commit on top.
	MemoryMB          map[string]float64
	Ms                map[string]float64
	AggregateCommitMs float64
	RecomputeAcctMs   float64
	LogLineBytes      float64 // one log line: the function's own, or a platform line
	LogLines          float64 // lines per invocation (the function's and Lambda's START/REPORT)
	AccessLogBytes    float64 // one HTTP API access log line
	IdleReceives      float64 // empty long-poll receives the SQS event source makes a month
	SweepsPerMonth    float64
}

// Line is one item of the bill.
type Line struct {
	Service string
	Item    string
	For     string // "product", "stripe" or "shared": whose per-million figure it counts in
	Dollars float64
}

// Bill is a month of a workload.
type Bill struct {
	Workload                    Workload
	Lines                       []Line
	ProductMessages, StripeEvts float64
	// Derived figures worth printing: queue messages per aggregate invocation, messages per
	// account commit.
	QueuePerInvocation, MessagesPerCommit float64
}

// Total sums the lines (all, or those for one path).
func (b Bill) Total(path string) float64 {
	t := 0.0
	for _, l := range b.Lines {
		if path == "" || l.For == path {
			t += l.Dollars
		}
	}
	return t
}

// PerMillion is the cost of a million product messages or Stripe events, all-in: the lines
// for that path.
func (b Bill) PerMillion(path string) float64 {
	n := b.ProductMessages
	if path == "stripe" {
		n = b.StripeEvts
	}
	if n == 0 {
		return 0
	}
	return b.Total(path) / n * 1e6
}

// ByService sums the lines per service, largest first.
func (b Bill) ByService() []Line {
	sum := map[string]float64{}
	for _, l := range b.Lines {
		sum[l.Service] += l.Dollars
	}
	var out []Line
	for s, d := range sum {
		out = append(out, Line{Service: s, Dollars: d})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Dollars > out[j].Dollars || (out[i].Dollars == out[j].Dollars && out[i].Service < out[j].Service)
	})
	return out
}

// chunks is how many metering units of size unit a payload of n bytes is.
func chunks(n, unit float64) float64 { return math.Max(1, math.Ceil(n/unit)) }

// Estimate prices a month of w.
func Estimate(w Workload, p Profile, pr Prices) Bill {
	b := Bill{Workload: w}
	add := func(service, item, path string, dollars float64) {
		b.Lines = append(b.Lines, Line{service, item, path, dollars})
	}
	lambda := func(fn string, invocations, ms float64) float64 {
		return invocations * (pr.LambdaRequest + p.MemoryMB[fn]/1024*ms/1000*pr.LambdaGBSecond)
	}
	logs := func(lines float64) float64 { return lines * p.LogLineBytes / 1e9 * pr.LogsGB }

	A := w.Accounts
	P := A * w.ProductPerAccountDay * 30
	S := A * w.StripePerAccountMonth
	b.ProductMessages, b.StripeEvts = P, S

	// Product: HTTP request → product-webhook → one queue message a request → product-aggregate.
	requests := P / float64(p.SegmentBatch)
	body := float64(p.SegmentBatch * p.MessageBytes)
	add("API Gateway HTTP API", "product requests", "product", requests*chunks(body, 512<<10)*pr.HTTPRequest)
	add("Lambda", "product-webhook", "product", lambda("product-webhook", requests, p.Ms["product-webhook"]))
	perCall := math.Min(10, math.Max(1, requests/secondsPerMonth*p.Window))
	sqs := requests*chunks(body, 64<<10) + // SendMessage
		requests/perCall*chunks(perCall*body, 64<<10) + // ReceiveMessage, up to 10 a call
		requests/perCall + // DeleteMessageBatch
		p.IdleReceives
	add("SQS", "send, receive, delete (64 KB chunks), idle polls", "product", sqs*pr.SQSRequest)

	// An invocation takes what arrives in the window, up to the batch size and Lambda's 6 MB
	// invocation payload.
	q := math.Min(math.Min(float64(p.QueueBatch), math.Floor(maxPayload/body)), math.Max(1, requests/secondsPerMonth*p.Window))
	invocations := requests / q
	m := q * float64(p.SegmentBatch)
	touched := math.Max(1, A*(1-math.Exp(-m/A))) // accounts with a message in one invocation
	n := m / touched
	commits := invocations * touched
	write, read := p.ProductCommit(max(1, int(math.Round(n))))
	b.QueuePerInvocation, b.MessagesPerCommit = q, n
	add("Lambda", "product-aggregate", "product", lambda("product-aggregate", invocations, p.Ms["product-aggregate"]+touched*p.AggregateCommitMs))
	add("DynamoDB", "product writes", "product", commits*write*pr.WriteUnit)
	add("DynamoDB", "product reads", "product", commits*read*pr.ReadUnit)
	// Marks are packed per account and minute: a receipt of k ids (k an account's messages a
	// minute) plus DynamoDB's 100 bytes an item, shared by its k messages.
	k := max(1, int(math.Round(w.ProductPerAccountDay/1440)))
	marks := P / 30 * p.MarkerDays * float64(p.ReceiptBytes(k)+100) / float64(k)
	add("DynamoDB", "product receipt storage", "product", marks/1e9*pr.StorageGBMonth)
	add("CloudWatch Logs", "product", "product", logs((requests+invocations)*p.LogLines)+requests*p.AccessLogBytes/1e9*pr.LogsGB)

	// Stripe: HTTP request → stripe-webhook → commit; events → stream → publisher → SNS.
	add("API Gateway HTTP API", "Stripe requests", "stripe", S*pr.HTTPRequest)
	add("Lambda", "stripe-webhook", "stripe", lambda("stripe-webhook", S, p.Ms["stripe-webhook"]))
	add("DynamoDB", "Stripe writes", "stripe", S*((1-p.RaisedShare)*p.StripeWrite+p.RaisedShare*p.RaisedWrite)*pr.WriteUnit)
	add("DynamoDB", "Stripe reads", "stripe", S*p.StripeRead*pr.ReadUnit)
	events := S * p.RaisedShare * p.EventsRaised
	add("Lambda", "publisher (a stream batch per event)", "stripe", lambda("publisher", events, p.Ms["publisher"]))
	add("DynamoDB", "publisher: pending check, delete", "stripe", events*(pr.ReadUnit+p.PublishWrite*pr.WriteUnit))
	add("DynamoDB Streams", "read by the Lambda trigger (free)", "stripe", 0)
	add("SNS", "publishes", "stripe", events*chunks(float64(p.EventBytes), 64<<10)*pr.SNSPublish)
	add("DynamoDB", "Stripe marker storage", "stripe", S*float64(p.MarkerBytes+100)/1e9*pr.StorageGBMonth)
	add("CloudWatch Logs", "Stripe and publisher", "stripe", logs((S+events)*p.LogLines)+S*p.AccessLogBytes/1e9*pr.LogsGB)

	// Shared: the daily recompute, the hourly outbox sweep, the accounts' storage.
	days := 30.0
	add("DynamoDB", "recompute reads and writes", "shared", A*days*(p.AccountRead*pr.ReadUnit+p.ChangedShare*p.AccountWrite*pr.WriteUnit))
	add("Lambda", "recompute", "shared", lambda("recompute", 16*days, A/16*p.RecomputeAcctMs))
	add("Lambda", "publisher outbox sweep", "shared", lambda("publisher", p.SweepsPerMonth, p.Ms["publisher"]))
	add("DynamoDB", "sweep queries", "shared", p.SweepsPerMonth*4*0.5*pr.ReadUnit)
	add("DynamoDB", "account storage", "shared", A*float64(p.AccountBytes+100)/1e9*pr.StorageGBMonth)
	return b
}
