package score

import (
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func activeSub(mrr int64) account.Subscription {
	return account.Subscription{ID: "sub_1", Status: account.StatusActive, Currency: "usd", MRR: mrr, Seats: 10, At: now.Add(-48 * time.Hour).Unix()}
}

// healthy is an account that uses the product daily and pays.
func healthy() *account.Account {
	a := account.New("acme", now.AddDate(0, -3, 0))
	a.Billing.ApplySubscription(activeSub(50000))
	sc := Default()
	for d := 0; d < 60; d++ {
		t := now.AddDate(0, 0, -d)
		for u := 0; u < 8; u++ {
			a.Usage.Record(string(rune('a'+u)), t, true)
		}
	}
	for _, f := range sc.Events.KeyFeatures {
		a.Usage.UseFeature(f, now.Add(-time.Hour))
	}
	for _, m := range sc.Events.Onboarding {
		a.Usage.Reach(m, now.AddDate(0, -2, 0))
	}
	return a
}

func TestBandHysteresis(t *testing.T) {
	b := Default().Bands
	tests := []struct {
		name  string
		prev  string
		score int
		want  string
	}{
		{"a new account at the good threshold is GOOD", "", b.GoodEnter, account.BandGood},
		{"a GOOD account dipping between exit and enter stays GOOD", account.BandGood, b.GoodExit, account.BandGood},
		{"a GOOD account below the exit threshold leaves GOOD", account.BandGood, b.GoodExit - 1, account.BandNormal},
		{"a NORMAL account between exit and enter does not become GOOD", account.BandNormal, b.GoodEnter - 1, account.BandNormal},
		{"a NORMAL account below bad_enter becomes BAD", account.BandNormal, b.BadEnter - 1, account.BandBad},
		{"a NORMAL account at bad_enter stays NORMAL", account.BandNormal, b.BadEnter, account.BandNormal},
		{"a BAD account recovering to just below bad_exit stays BAD", account.BandBad, b.BadExit - 1, account.BandBad},
		{"a BAD account reaching bad_exit leaves BAD", account.BandBad, b.BadExit, account.BandNormal},
		{"a BAD account jumping to good_enter becomes GOOD", account.BandBad, b.GoodEnter, account.BandGood},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := band(tt.prev, tt.score, b); got != tt.want {
				t.Errorf("band(%q, %d) = %s, want %s", tt.prev, tt.score, got, tt.want)
			}
		})
	}
}

func measure(ex Explanation, name string) account.Measure {
	for _, m := range ex.Measures {
		if m.Name == name {
			return m
		}
	}
	return account.Measure{}
}

func TestCompute(t *testing.T) {
	sc := Default()
	tests := []struct {
		name      string
		build     func() *account.Account
		at        time.Time
		wantBand  string
		minScore  int
		maxScore  int
		reason    string // substring expected in some reason
		noData    []string
		withScore []string
	}{
		{name: "a healthy paying account is GOOD", build: healthy, at: now, wantBand: account.BandGood, minScore: 90, maxScore: 100,
			noData: []string{"support_load", "nps"}, withScore: []string{"login_recency", "billing_status", "active_users"}},
		{name: "a healthy account silent for 30 days falls to BAD", build: healthy, at: now.AddDate(0, 0, 30), wantBand: account.BandBad, maxScore: 49, reason: "last active 30 days ago"},
		{name: "a past-due account with great usage is BAD", build: func() *account.Account {
			a := healthy()
			s := activeSub(50000)
			s.Status, s.At = account.StatusPastDue, now.Unix()
			a.Billing.ApplySubscription(s)
			a.Billing.PaymentFailed("in_1", now.Add(-time.Hour), false)
			return a
		}, at: now, wantBand: account.BandBad, minScore: 0, maxScore: 100, reason: "subscription is past_due; band set to BAD"},
		{name: "an unrecovered failed payment on an active subscription is never GOOD", build: func() *account.Account {
			a := healthy()
			a.Billing.PaymentFailed("in_1", now.Add(-time.Hour), false)
			return a
		}, at: now, wantBand: account.BandNormal, minScore: 0, maxScore: 100, reason: "band capped at NORMAL"},
		{name: "a cancelling account is BAD and says when it cancels", build: func() *account.Account {
			a := healthy()
			s := activeSub(50000)
			s.CancelAtPeriodEnd, s.CurrentPeriodEnd, s.At = true, now.AddDate(0, 0, 10), now.Unix()
			a.Billing.ApplySubscription(s)
			return a
		}, at: now, wantBand: account.BandBad, maxScore: 100, reason: "set to cancel on 2026-11-30"},
		{name: "a churned account is BAD", build: func() *account.Account {
			a := healthy()
			s := activeSub(50000)
			s.Status, s.At = account.StatusCanceled, now.Unix()
			a.Billing.ApplySubscription(s)
			return a
		}, at: now, wantBand: account.BandBad, maxScore: 100, reason: "churned"},
		{name: "an account with no data at all is neutral and says so", build: func() *account.Account { return account.New("x", now) },
			at: now, wantBand: account.BandNormal, minScore: 50, maxScore: 50, reason: "no billing or usage data"},
		{name: "a billing-only account scores on billing alone but lacks the data to be GOOD", build: func() *account.Account {
			a := account.New("x", now)
			a.Billing.ApplySubscription(activeSub(1000))
			return a
		}, at: now, wantBand: account.BandNormal, minScore: 74, maxScore: 74, reason: "not enough data",
			noData: []string{"login_recency", "active_users", "feature_adoption", "nps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.build()
			h := Compute(a, sc, tt.at)
			if h.Health.Band != tt.wantBand || h.Health.Score < tt.minScore || h.Health.Score > tt.maxScore {
				t.Fatalf("score %d band %s, want band %s in [%d,%d]; reasons %+v", h.Health.Score, h.Health.Band, tt.wantBand, tt.minScore, tt.maxScore, h.Reasons)
			}
			if tt.reason != "" {
				found := false
				for _, r := range h.Reasons {
					found = found || strings.Contains(r.Detail, tt.reason)
				}
				if !found {
					t.Errorf("no reason mentions %q: %+v", tt.reason, h.Reasons)
				}
			}
			for _, n := range tt.noData {
				if m := measure(h, n); m.Score != nil || m.Contribution != 0 {
					t.Errorf("measure %s should have no data, got %+v", n, m)
				}
			}
			for _, n := range tt.withScore {
				if m := measure(h, n); m.Score == nil {
					t.Errorf("measure %s should be scored: %+v", n, m)
				}
			}
			var sum float64
			scored := false
			for _, m := range h.Measures {
				sum += m.Contribution
				scored = scored || m.Score != nil
			}
			if d := sum - float64(h.Health.RawScore); scored && (d > 1 || d < -1) {
				t.Errorf("contributions add to %.2f, raw score is %d", sum, h.Health.RawScore)
			}
		})
	}
}

func TestComputeIsDeterministic(t *testing.T) {
	a := healthy()
	a.Usage.UseFeature("Report Created", now.AddDate(0, 0, -40))
	x, y := Compute(a, Default(), now.AddDate(0, 0, 5)), Compute(a.Clone(), Default(), now.AddDate(0, 0, 5))
	if x.Health.Score != y.Health.Score || len(x.Measures) != len(y.Measures) || len(x.Reasons) == 0 || x.Reasons[0] != y.Reasons[0] {
		t.Fatalf("same input scored differently: %+v vs %+v", x, y)
	}
}

func TestSegmentsByMRR(t *testing.T) {
	sc := Default()
	for _, tt := range []struct {
		mrr  int64
		want string
	}{{0, "tech-touch"}, {49999, "tech-touch"}, {50000, "low-touch"}, {250000, "high-touch"}} {
		if got := sc.SegmentFor(tt.mrr); got != tt.want {
			t.Errorf("SegmentFor(%d) = %s, want %s", tt.mrr, got, tt.want)
		}
	}
}

func TestParseRejectsBadScorecards(t *testing.T) {
	for name, body := range map[string]string{
		"unknown field":      `{"version":"x","bandz":{}}`,
		"no version":         `{"bands":{"good_enter":75,"good_exit":70,"bad_enter":45,"bad_exit":55}}`,
		"inverted bands":     `{"version":"x","bands":{"good_enter":40,"good_exit":70,"bad_enter":45,"bad_exit":55},"drop":{"points":1,"days":1},"segments":[{"name":"a"}],"measures":[{"name":"nps","weight":1}]}`,
		"unknown measure":    `{"version":"x","bands":{"good_enter":75,"good_exit":70,"bad_enter":45,"bad_exit":55},"drop":{"points":1,"days":1},"segments":[{"name":"a"}],"measures":[{"name":"vibes","weight":1}]}`,
		"unknown never_good": `{"version":"x","bands":{"good_enter":75,"good_exit":70,"bad_enter":45,"bad_exit":55},"drop":{"points":1,"days":1},"segments":[{"name":"a"}],"measures":[{"name":"nps","weight":1}],"never_good":["sad"]}`,
	} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func reasonWith(ex Explanation, text string) (account.Reason, bool) {
	for _, r := range ex.Reasons {
		if strings.Contains(r.Detail, text) {
			return r, true
		}
	}
	return account.Reason{}, false
}

func TestScoreAndBandAgreeWhenAHardRuleSetsTheBand(t *testing.T) {
	sc := Default()
	b := sc.Bands
	tests := []struct {
		name     string
		build    func() *account.Account
		band     string
		maxScore int
		cappedBy string
	}{
		{"a past_due account with great usage is BAD and scores below bad_enter", func() *account.Account {
			a := healthy()
			s := activeSub(50000)
			s.Status, s.At = account.StatusPastDue, now.Unix()
			a.Billing.ApplySubscription(s)
			return a
		}, account.BandBad, b.BadEnter - 1, "rule:past_due"},
		{"an account with an open payment failure is NORMAL and scores below good_enter", func() *account.Account {
			a := healthy()
			a.Billing.PaymentFailed("in_1", now.Add(-time.Hour), false)
			return a
		}, account.BandNormal, b.GoodEnter - 1, "rule:open_payment_failure"},
		{"a churned account scores below bad_enter", func() *account.Account {
			a := healthy()
			s := activeSub(50000)
			s.Status, s.At = account.StatusCanceled, now.Unix()
			a.Billing.ApplySubscription(s)
			return a
		}, account.BandBad, b.BadEnter - 1, "churned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := Compute(tt.build(), sc, now)
			h := ex.Health
			if h.Band != tt.band || h.Score > tt.maxScore || h.CappedBy != tt.cappedBy {
				t.Fatalf("score %d band %s capped by %q, want %s at most %d capped by %q", h.Score, h.Band, h.CappedBy, tt.band, tt.maxScore, tt.cappedBy)
			}
			if h.RawScore <= h.Score {
				t.Errorf("raw score %d not kept above the capped %d", h.RawScore, h.Score)
			}
			if len(ex.Reasons) == 0 || ex.Reasons[0].Measure != "rule:"+strings.TrimPrefix(tt.cappedBy, "rule:") {
				t.Errorf("first reason %+v does not name the rule that capped the score", ex.Reasons)
			}
		})
	}
}

func TestAnAccountWithoutEnoughDataCannotBeGood(t *testing.T) {
	sc := Default()
	tests := []struct {
		name  string
		build func() *account.Account
	}{
		{"one measure of twelve has data", func() *account.Account {
			a := account.New("x", now.AddDate(0, -1, 0))
			a.Voice.AddNPS(10, now.AddDate(0, 0, -1))
			return a
		}},
		{"a trial with one user and no key feature", func() *account.Account {
			a := account.New("x", now.AddDate(0, 0, -3))
			a.Billing.ApplySubscription(account.Subscription{ID: "sub_1", Status: account.StatusTrialing, Currency: "usd", Seats: 1,
				TrialEnd: now.AddDate(0, 0, 11), At: now.AddDate(0, 0, -3).Unix()})
			a.Usage.Record("u1", now.Add(-time.Hour), true)
			return a
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := Compute(tt.build(), sc, now)
			h := ex.Health
			if h.Band == account.BandGood || h.Coverage >= DefaultMinCoverage || h.CappedBy != "coverage" {
				t.Fatalf("score %d band %s coverage %.2f capped by %q; want not GOOD, coverage under %.2f", h.Score, h.Band, h.Coverage, h.CappedBy, DefaultMinCoverage)
			}
			if h.Score >= sc.Bands.GoodEnter {
				t.Errorf("score %d reads GOOD in a NORMAL band", h.Score)
			}
			if _, ok := reasonWith(ex, "not enough data"); !ok {
				t.Errorf("no reason says not enough data: %+v", ex.Reasons)
			}
		})
	}
}

func TestEveryScoreReportsItsCoverage(t *testing.T) {
	if h := Compute(healthy(), Default(), now).Health; h.Coverage < 0.85 || h.Coverage > 1 || h.CappedBy != "" || h.Band != account.BandGood {
		t.Fatalf("healthy account: coverage %.2f capped by %q band %s; want ≈0.9, uncapped, GOOD", h.Coverage, h.CappedBy, h.Band)
	}
	lenient := 0.0
	sc := Default()
	sc.MinCoverage = &lenient
	a := account.New("x", now)
	a.Billing.ApplySubscription(activeSub(1000))
	if h := Compute(a, sc, now).Health; h.Band != account.BandGood {
		t.Errorf("with min_coverage 0 a billing-only account is %s, want GOOD", h.Band)
	}
	if _, err := Parse([]byte(`{"version":"x","bands":{"good_enter":75,"good_exit":70,"bad_enter":45,"bad_exit":55},"drop":{"points":1,"days":1},"segments":[{"name":"a"}],"measures":[{"name":"nps","weight":1}],"min_coverage":1.5}`)); err == nil {
		t.Error("min_coverage 1.5 accepted")
	}
}

func TestAChurnedAccountReadsCleanly(t *testing.T) {
	sc := Default()
	build := func(reason, feedback, comment string) *account.Account {
		a := healthy()
		a.Billing = account.Billing{}
		a.Billing.ApplySubscription(account.Subscription{ID: "sub_1", Status: account.StatusActive, Currency: "usd", MRR: 29700, Seats: 10, At: now.AddDate(0, 0, -30).Unix()})
		a.Billing.ApplySubscription(account.Subscription{ID: "sub_1", Status: account.StatusCanceled, Currency: "usd", MRR: 29700, Seats: 10,
			CancelReason: reason, CancelFeedback: feedback, CancelComment: comment, At: now.Add(-time.Hour).Unix()})
		return a
	}
	t.Run("no reason is said twice and amounts carry their currency", func(t *testing.T) {
		ex := Compute(build("cancellation_requested", "", ""), sc, now)
		seen := map[string]bool{}
		for _, r := range ex.Reasons {
			if seen[r.Detail] || (seen["churned"] && strings.Contains(r.Detail, "subscription canceled")) {
				t.Errorf("reason said twice: %q in %+v", r.Detail, ex.Reasons)
			}
			seen[r.Detail] = true
			if strings.Contains(r.Detail, "has churned") {
				seen["churned"] = true
			}
		}
		if _, ok := reasonWith(ex, "297.00 to 0.00 USD"); !ok {
			t.Errorf("no reason reads \"297.00 to 0.00 USD\": %+v", ex.Reasons)
		}
	})
	for _, tt := range []struct{ reason, kind string }{
		{"cancellation_requested", KindVoluntary},
		{"payment_failed", KindInvoluntary},
		{"payment_disputed", KindInvoluntary},
	} {
		t.Run("a churn for "+tt.reason+" is "+tt.kind, func(t *testing.T) {
			ex := Compute(build(tt.reason, "", ""), sc, now)
			if r, ok := reasonWith(ex, "has churned"); !ok || r.Kind != tt.kind {
				t.Errorf("churn reason %+v, want kind %s", r, tt.kind)
			}
		})
	}
	t.Run("the customer's own feedback and comment are a reason", func(t *testing.T) {
		ex := Compute(build("cancellation_requested", "too_expensive", "We moved to a cheaper plan"), sc, now)
		r, ok := reasonWith(ex, "too expensive")
		if !ok || !strings.Contains(r.Detail, `"We moved to a cheaper plan"`) || r.Kind != KindVoluntary {
			t.Errorf("reasons %+v do not carry the customer's feedback and comment", ex.Reasons)
		}
	})
}

func TestAZeroDecimalContractionReadsInWholeYen(t *testing.T) {
	a := account.New("x", now.AddDate(0, -3, 0))
	a.Billing.ApplySubscription(account.Subscription{ID: "s", Status: account.StatusActive, Currency: "jpy", MRR: 5000, At: now.AddDate(0, 0, -40).Unix()})
	a.Billing.ApplySubscription(account.Subscription{ID: "s", Status: account.StatusActive, Currency: "jpy", MRR: 2000, At: now.AddDate(0, 0, -1).Unix()})
	ex := Compute(a, Default(), now)
	if _, ok := reasonWith(ex, "5000 to 2000 JPY"); !ok {
		t.Errorf("reasons %+v, want the drop as \"5000 to 2000 JPY\"", ex.Reasons)
	}
}

func TestExplainRebuildsTheWordsOfTheStoredScore(t *testing.T) {
	sc := Default()
	a := healthy()
	a.Billing.PaymentFailed("in_1", now.Add(-time.Hour), false)
	ex := Compute(a, sc, now)
	a.Health = ex.Health
	got := Explain(a, sc)
	if got.Health.Score != ex.Health.Score || len(got.Measures) != len(ex.Measures) || len(got.Reasons) != len(ex.Reasons) {
		t.Fatalf("explained %+v, computed %+v", got, ex)
	}
	for i := range ex.Reasons {
		if got.Reasons[i] != ex.Reasons[i] {
			t.Errorf("reason %d: %+v, want %+v", i, got.Reasons[i], ex.Reasons[i])
		}
	}
	for i, m := range ex.Measures {
		if got.Measures[i].Detail != m.Detail || got.Measures[i].Contribution != m.Contribution {
			t.Errorf("measure %s: %+v, want %+v", m.Name, got.Measures[i], m)
		}
	}
}
