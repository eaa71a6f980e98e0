package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/risk"
)

func TestRecomputeAtAnotherTimeIsADryRun(t *testing.T) {
	h := newHarness(t)
	h.sendCustomer("acme")
	before := h.account("acme")
	published := len(h.events())
	later := sampleNow.AddDate(0, 0, 60)

	res := h.job("/jobs/recompute?at=" + later.Format(time.RFC3339))
	if res["dry_run"] != true || res["changed"] != 1.0 || res["truncated"] != false {
		t.Fatalf("simulation %v, want a dry run where acme changes, not truncated", res)
	}
	accounts, _ := res["accounts"].([]any)
	if len(accounts) != 1 || path(accounts[0], "id") != "acme" || path(accounts[0], "band") != "BAD" ||
		path(accounts[0], "previous_band") != "GOOD" || !strings.Contains(fmt.Sprint(path(accounts[0], "events")), risk.TypeRaised) {
		t.Fatalf("simulated accounts %v, want acme going from GOOD to BAD, raising churn risk", accounts)
	}
	after := h.account("acme")
	if path(after, "health", "score") != path(before, "health", "score") || path(after, "health", "band") != "GOOD" ||
		fmt.Sprint(path(after, "health", "history")) != fmt.Sprint(path(before, "health", "history")) {
		t.Fatalf("the simulation was stored: health %v, was %v", path(after, "health"), path(before, "health"))
	}
	if got := h.events()[published:]; len(got) != 0 {
		t.Fatalf("the simulation published %d events: %+v", len(got), got)
	}
	// A plain recompute afterwards has nothing to undo: no clear dated before a raise.
	if res := h.job("/jobs/recompute"); res["changed"] != 0.0 || res["events"] != 0.0 || res["dry_run"] != nil {
		t.Fatalf("recompute after the simulation %v, want nothing to change", res)
	}
	if got := h.events()[published:]; len(got) != 0 {
		t.Fatalf("recompute after the simulation published %+v", got)
	}
}

func TestRecomputeJobValidatesItsParameters(t *testing.T) {
	h := newHarness(t)
	h.sendCustomer("acme")
	for _, tt := range []struct {
		name  string
		query string
		code  int
	}{
		{"a whole run", "", 200},
		{"a dry run now", "?dry_run=true", 200},
		{"one shard of four with a budget", "?shard=3&shards=4&budget=30s", 200},
		{"a bad at", "?at=tomorrow", 400},
		{"a shard outside shards", "?shard=4&shards=4", 400},
		{"no shards", "?shards=0", 400},
		{"a bad budget", "?budget=forever", 400},
		{"a garbage cursor", "?cursor=garbage", 400},
		{"at without a dry run", "?at=2027-01-01T00:00:00Z&dry_run=false", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/jobs/recompute"+tt.query, nil)
			req.Header.Set("Authorization", "Bearer "+apiToken)
			if code, m := h.do(req); code != tt.code {
				t.Fatalf("%d %v, want %d", code, m, tt.code)
			}
		})
	}
}

func TestRecomputeJobFansOutOverShards(t *testing.T) {
	h := newHarness(t)
	for _, c := range []string{"acme", "globex", "initech", "umbrella"} {
		h.sendCustomer(c)
	}
	scored := 0.0
	for shard := 0; shard < 3; shard++ {
		res := h.job(fmt.Sprintf("/jobs/recompute?dry_run=true&shard=%d&shards=3", shard))
		scored += res["scored"].(float64)
	}
	if all := h.job("/jobs/recompute?dry_run=true"); scored != all["scored"] || scored < 4 {
		t.Fatalf("three shards scored %v accounts, a whole run %v", scored, all["scored"])
	}
}

func TestAccountListPutsTheMostAtRiskFirst(t *testing.T) {
	h := newHarness(t)
	for _, c := range []string{"acme", "globex", "initech", "umbrella", "hooli", "soylent", "vandelay"} {
		h.sendCustomer(c)
	}
	// Two weeks on, the samples span all three bands: four BAD (one churned), two NORMAL, one GOOD.
	h.recompute(sampleNow.AddDate(0, 0, 14))
	rank := map[string]int{"BAD": 0, "NORMAL": 1, "GOOD": 2}
	var rows []any
	cursor := ""
	for pages := 0; pages < 20; pages++ {
		code, m := h.get("/accounts?limit=2&include_churned=true&cursor=" + url.QueryEscape(cursor))
		if code != 200 {
			t.Fatalf("page %d: %d %v", pages, code, m)
		}
		page, _ := m["accounts"].([]any)
		rows = append(rows, page...)
		if cursor, _ = m["next_cursor"].(string); cursor == "" {
			break
		}
	}
	bands := map[string]bool{}
	for i, r := range rows {
		bands[path(r, "band").(string)] = true
		if i == 0 {
			continue
		}
		pb, b := rank[path(rows[i-1], "band").(string)], rank[path(r, "band").(string)]
		if pb > b || (pb == b && path(rows[i-1], "score").(float64) > path(r, "score").(float64)) {
			t.Fatalf("row %d (%v %v) comes after (%v %v): want BAD, NORMAL, GOOD, each lowest score first",
				i, path(r, "band"), path(r, "score"), path(rows[i-1], "band"), path(rows[i-1], "score"))
		}
	}
	if len(rows) != 7 || len(bands) < 3 {
		t.Fatalf("%d rows over bands %v, want 7 accounts in all three bands", len(rows), bands)
	}
	for _, r := range rows {
		if path(r, "band") != "GOOD" && path(r, "top_reason", "detail") == nil {
			t.Errorf("%v has no top reason: %v", path(r, "id"), r)
		}
		if path(r, "top_reason") != nil && path(r, "top_reason", "measure") == nil {
			t.Errorf("%v's top reason has no measure: %v", path(r, "id"), r)
		}
	}
	// The first five of a list without a band are at risk, not the alphabetically first band.
	_, m := h.get("/accounts?limit=5")
	for _, r := range m["accounts"].([]any) {
		if path(r, "band") == "GOOD" {
			t.Fatalf("a GOOD account among the five most at risk: %v", m["accounts"])
		}
	}
}

func TestAccountListRefusesACursorItDidNotReturn(t *testing.T) {
	h := newHarness(t)
	for _, c := range []string{"acme", "globex", "initech", "umbrella"} {
		h.sendCustomer(c)
	}
	_, first := h.get("/accounts?band=BAD&limit=1")
	next, _ := first["next_cursor"].(string)
	if next == "" {
		t.Fatalf("first BAD page has no next cursor: %v", first)
	}
	for _, tt := range []struct{ name, query string }{
		{"garbage", "cursor=garbage"},
		{"a key that looks like the index", "cursor=" + url.QueryEscape("BAD\x00050\x00acme")},
		{"a BAD cursor for the GOOD list", "band=GOOD&cursor=" + next},
		{"a truncated cursor", "band=BAD&cursor=" + next[:len(next)-2]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, m := h.get("/accounts?" + tt.query); code != 400 {
				t.Fatalf("%d %v, want 400", code, m)
			}
		})
	}
	if code, m := h.get("/accounts?band=BAD&limit=1&cursor=" + next); code != 200 || len(m["accounts"].([]any)) != 1 {
		t.Fatalf("the real cursor: %d %v", code, m)
	}
}
