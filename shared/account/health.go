package account

import (
	"sort"
	"time"
)

// Bands a health score falls in.
const (
	BandGood   = "GOOD"
	BandNormal = "NORMAL"
	BandBad    = "BAD"
)

// Health is an account's current score with its explanation.
type Health struct {
	Score   int    `json:"score"`
	Band    string `json:"band"`
	Segment string `json:"segment,omitempty"`
	// Measures are the per-measure results the score is made of, in scorecard order.
	Measures []Measure `json:"measures"`
	// Reasons are the measures that cost the most points, in plain words, worst first.
	Reasons          []Reason  `json:"reasons"`
	ScorecardVersion string    `json:"scorecard_version,omitempty"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
	// History is one point per UTC day (the last score of that day), oldest first, capped.
	History []Point `json:"history,omitempty"`
}

// Measure is one measure's result. Score is nil when the account has no data for it; such a
// measure carries no weight in the total.
type Measure struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Score  *int   `json:"score"`
	Weight int    `json:"weight"`
	// Contribution is how many of the 100 points this measure gives.
	Contribution float64 `json:"contribution"`
	Detail       string  `json:"detail"`
}

// Reason explains a loss of points: Impact is negative, in points out of 100.
type Reason struct {
	Measure string  `json:"measure"`
	Kind    string  `json:"kind"`
	Detail  string  `json:"detail"`
	Impact  float64 `json:"impact"`
}

// Point is the score at the end of one day.
type Point struct {
	Day   int32  `json:"d"`
	Score int    `json:"s"`
	Band  string `json:"b"`
}

// MaxHistory caps the daily score history kept on the account.
const MaxHistory = 35

// Scored reports whether the account was ever scored.
func (h *Health) Scored() bool { return h.Band != "" }

// Record sets the day's point for score and band.
func (h *Health) Record(day int32, score int, band string) {
	i := sort.Search(len(h.History), func(i int) bool { return h.History[i].Day >= day })
	p := Point{Day: day, Score: score, Band: band}
	if i < len(h.History) && h.History[i].Day == day {
		h.History[i] = p
	} else {
		h.History = append(h.History, Point{})
		copy(h.History[i+1:], h.History[i:])
		h.History[i] = p
	}
	if len(h.History) > MaxHistory {
		h.History = h.History[len(h.History)-MaxHistory:]
	}
}

// PeakSince returns the highest score recorded on a day in [from, to), and whether any was.
func (h *Health) PeakSince(from, to int32) (int, bool) {
	peak, ok := 0, false
	for _, p := range h.History {
		if p.Day >= from && p.Day < to && (!ok || p.Score > peak) {
			peak, ok = p.Score, true
		}
	}
	return peak, ok
}

func (h Health) clone() Health {
	h.Measures = append([]Measure(nil), h.Measures...)
	h.Reasons = append([]Reason(nil), h.Reasons...)
	h.History = append([]Point(nil), h.History...)
	return h
}
