package risk

import (
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/score"
)

func TestTheDaysPointIsReportedOnlyWhenItChanged(t *testing.T) {
	sc := score.Default()
	a := account.New("acme", t0.AddDate(0, -1, 0))
	paying(a, account.StatusActive, t0.AddDate(0, 0, -10))
	a.Usage.Record("u1", t0, true)
	Rescore(a, sc, t0, t0)
	tests := []struct {
		name   string
		change func(a *account.Account)
		at     time.Time
		want   bool
	}{
		{"rescoring the same day with nothing new", func(*account.Account) {}, t0.Add(time.Minute), false},
		{"the subscription goes past due the same day", func(a *account.Account) { paying(a, account.StatusPastDue, t0) }, t0.Add(time.Hour), true},
		{"the next day, score unchanged", func(*account.Account) {}, t0.Add(24 * time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change(a)
			old := a.Health
			Rescore(a, sc, tt.at, tt.at)
			p, ok := DayPoint(old, a.Health, tt.at)
			if ok != tt.want {
				t.Fatalf("DayPoint reported %v (%+v), want %v", ok, p, tt.want)
			}
			if ok && (p.Day != account.Day(tt.at) || p.Score != a.Health.Score || p.Band != a.Health.Band) {
				t.Errorf("DayPoint = %+v, want today's score %d %s", p, a.Health.Score, a.Health.Band)
			}
		})
	}
}
