package main

import (
	"math"
	"testing"
)

// tiny is a workload small enough to price by hand: one account, 20 product messages a day
// (600 a month, 30 requests of 20), 2 Stripe events a month, every price 1.
func tiny() (Workload, Profile, Prices) {
	w := Workload{Name: "tiny", Accounts: 1, ProductPerAccountDay: 20, StripePerAccountMonth: 2}
	p := Profile{
		SegmentBatch: 20, MessageBytes: 100, QueueBatch: 10, Window: 5,
		ProductCommit: func(n int) (float64, float64) { return float64(n + 2), float64(n + 1) },
		StripeWrite:   4, RaisedWrite: 10, StripeRead: 3, RaisedShare: 0.5, EventsRaised: 1, EventBytes: 1000,
		PublishWrite: 3, AccountWrite: 2, AccountRead: 0.5, AccountBytes: 900, MarkerBytes: 100, MarkerDays: 60,
		ReceiptBytes: func(ids int) int { return 100 * ids },
		MemoryMB:     map[string]float64{"product-webhook": 1024, "product-aggregate": 1024, "stripe-webhook": 1024, "publisher": 1024, "recompute": 1024},
		Ms:           map[string]float64{"product-webhook": 1000, "product-aggregate": 1000, "stripe-webhook": 1000, "publisher": 1000},
		LogLineBytes: 1000, LogLines: 1,
	}
	one := Prices{1, 1, 1, 1, 1, 1, 1, 1, 1}
	return w, p, one
}

func TestTheBillOfATinyWorkloadIsWhatAHandCalculationGives(t *testing.T) {
	w, p, pr := tiny()
	b := Estimate(w, p, pr)
	line := func(service, item string) float64 {
		for _, l := range b.Lines {
			if l.Service == service && l.Item == item {
				return l.Dollars
			}
		}
		t.Fatalf("no line %s / %s", service, item)
		return 0
	}
	tests := []struct {
		name       string
		got, want  float64
		whyHandled string
	}{
		{"30 product requests", line("API Gateway HTTP API", "product requests"), 30, "600 messages / 20 a request, each under 512 KB"},
		{"product-webhook: 30 invocations of 1 GB for 1 s", line("Lambda", "product-webhook"), 60, "30 × (1 request + 1 GB-s)"},
		{"SQS: a send, a receive and a delete a request", line("SQS", "send, receive, delete (64 KB chunks), idle polls"), 90, "a 2 KB queue message, one a receive at this rate"},
		{"one invocation a queue message, 20 messages of the one account: 30 commits of 20", line("DynamoDB", "product writes"), 660, "30 × (20 + 2)"},
		{"reads of those commits", line("DynamoDB", "product reads"), 630, "30 × (20 + 1)"},
		{"product-aggregate: 30 invocations", line("Lambda", "product-aggregate"), 60, "30 × (1 + 1 GB-s)"},
		{"Stripe writes: half publish", line("DynamoDB", "Stripe writes"), 14, "2 × (0.5 × 4 + 0.5 × 10)"},
		{"one event published", line("SNS", "publishes"), 1, "2 events × half × 1, under 64 KB"},
		{"the publisher's check and delete of that event", line("DynamoDB", "publisher: pending check, delete"), 4, "1 read + 3 write units"},
		{"receipt storage: 20 a day (under one a minute: a receipt each) kept 60 days, 200 B each with overhead", line("DynamoDB", "product receipt storage"), 20 * 60 * 200 / 1e9, ""},
		{"per million product messages", b.PerMillion("product"), (30 + 60 + 90 + 660 + 630 + 60 + 20*60*200/1e9 + 60*1000/1e9) / 600 * 1e6, "the product lines / 600"},
		{"per million Stripe events", b.PerMillion("stripe"), (2 + 4 + 14 + 6 + 2 + 4 + 0 + 1 + 2*200/1e9 + 3*1000/1e9) / 2 * 1e6, "the Stripe lines / 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if math.Abs(tt.got-tt.want) > 1e-9*math.Max(1, tt.want) {
				t.Errorf("got %.9g, want %.9g (%s)", tt.got, tt.want, tt.whyHandled)
			}
		})
	}
}

func TestMessagesPerCommitFollowTheBatchingWindowAndTheAccountsTheySpreadOver(t *testing.T) {
	_, p, pr := tiny()
	tests := []struct {
		name     string
		accounts float64
		window   float64
		batch    int
		wantN    float64
	}{
		// 10 accounts × 5,000 a day = 0.579 messages a second: 173.6 in 300 s, 17.4 an account.
		{"a long window over few accounts packs many messages a commit", 10, 300, 100, 17.36},
		// 100,000 accounts: 289 requests a second fill the batch of 100 (2,000 messages) at
		// once; 2,000 messages over 100,000 accounts touch 1,980 of them.
		{"a full batch over many accounts leaves about one message a commit", 100000, 5, 100, 2000 / 1980.13},
		// A batch of 10,000 requests of 20 × 100 B would be 20 MB: Lambda's 6 MB payload lets
		// 3,145 through (62,900 messages over 100,000 accounts touch 46,688).
		{"Lambda's 6 MB payload caps a batch, whatever its size setting", 100000, 300, 10000, 62900 / 46687.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Workload{Accounts: tt.accounts, ProductPerAccountDay: 5000}
			p.Window, p.QueueBatch = tt.window, tt.batch
			b := Estimate(w, p, pr)
			if math.Abs(b.MessagesPerCommit-tt.wantN)/tt.wantN > 0.01 {
				t.Errorf("%.2f messages a commit, want about %.2f", b.MessagesPerCommit, tt.wantN)
			}
		})
	}
}
