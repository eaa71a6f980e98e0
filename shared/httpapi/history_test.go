package httpapi

import (
	"context"
	"testing"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/store"
)

func TestTheAccountViewShowsAMonthOfDailyHistoryFromTheStore(t *testing.T) {
	h := newHarness(t)
	h.sendCustomer("acme")
	for d := 1; d <= 40; d++ {
		h.recompute(sampleNow.AddDate(0, 0, d))
	}
	hist, _ := path(h.account("acme"), "health", "history").([]any)
	if len(hist) <= account.MaxHistory {
		t.Fatalf("the view shows %d days of history, want the stored days beyond the account's own %d", len(hist), account.MaxHistory)
	}
	if len(hist) > HistoryDays {
		t.Fatalf("the view shows %d days of history, want at most %d", len(hist), HistoryDays)
	}
	first, last := path(hist[0], "date"), path(hist[len(hist)-1], "date")
	if want := sampleNow.AddDate(0, 0, 40-HistoryDays+1).Format("2006-01-02"); first.(string) < want {
		t.Errorf("history starts on %v, want nothing before %s", first, want)
	}
	if last.(string) > sampleNow.AddDate(0, 0, 40).Format("2006-01-02") {
		t.Errorf("history ends on %v, after today", last)
	}
	a, err := h.st.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(a.Health.History); n > account.MaxHistory {
		t.Errorf("the account item keeps %d daily points, want at most %d", n, account.MaxHistory)
	}
}

func TestAnAccountWrittenBeforeHistoryItemsStillShowsItsMonth(t *testing.T) {
	h := newHarness(t)
	a := account.New("legacy", sampleNow.AddDate(0, -2, 0))
	// As the previous version stored it: 35 daily points inside the account, no history items.
	for d := 34; d >= 0; d-- {
		a.Health.History = append(a.Health.History, account.Point{Day: account.Day(sampleNow) - int32(d), Score: 60 + d%5, Band: account.BandNormal})
	}
	a.Health.Score, a.Health.Band = 60, account.BandNormal
	if err := h.st.Commit(context.Background(), store.Tx{Accounts: []store.Put{{Account: a}}}); err != nil {
		t.Fatal(err)
	}
	hist, _ := path(h.account("legacy"), "health", "history").([]any)
	if len(hist) != HistoryDays {
		t.Fatalf("the view shows %d days of history, want the %d the account holds", len(hist), HistoryDays)
	}
}
