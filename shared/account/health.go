package account

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Bands a health score falls in.
const (
	BandGood   = "GOOD"
	BandNormal = "NORMAL"
	BandBad    = "BAD"
)

// Health is an account's current score, stored compactly: the numbers only. The words that
// explain it (measure details, reasons) are rebuilt from the stored signals when read
// (score.Explain), so they cost nothing on every write.
type Health struct {
	// Score is the score shown: RawScore capped into the band a hard rule set, so that score
	// and band always agree.
	Score int `json:"score"`
	// RawScore is the weighted score of the measures before any cap.
	RawScore int    `json:"raw_score"`
	Band     string `json:"band"`
	// Coverage is the share (0–1) of the scorecard's weight whose measures had data.
	Coverage float64 `json:"coverage"`
	// CappedBy names what set the band over the raw score: "churned", "coverage" or
	// "rule:<condition>"; empty when the band follows the score.
	CappedBy         string    `json:"capped_by,omitempty"`
	Segment          string    `json:"segment,omitempty"`
	ScorecardVersion string    `json:"scorecard_version,omitempty"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
	// Measures are the per-measure scores (0–100) in the order of the scorecard version,
	// NoData for a measure without data.
	Measures []int8 `json:"measures,omitempty"`
	// History is the recent window of daily points (the last score of each UTC day), oldest
	// first, at most MaxHistory days: what health.dropped compares against. The full daily
	// history is stored as separate items (store.Point) with a TTL.
	History Points `json:"history,omitempty"`
}

// NoData marks a measure without data in Health.Measures.
const NoData int8 = -1

// UnmarshalJSON reads a stored health, including the first release's form, whose measures
// were objects with their words ({"name":…,"score":…,"detail":…}): their scores are kept, the
// words dropped (they are rebuilt when read).
func (h *Health) UnmarshalJSON(b []byte) error {
	type plain Health
	var v struct {
		plain
		Measures json.RawMessage `json:"measures,omitempty"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*h = Health(v.plain)
	h.Measures = nil
	if len(v.Measures) == 0 || string(v.Measures) == "null" {
		return nil
	}
	if err := json.Unmarshal(v.Measures, &h.Measures); err == nil {
		return nil
	}
	var old []struct {
		Score *int `json:"score"`
	}
	if err := json.Unmarshal(v.Measures, &old); err != nil {
		return fmt.Errorf("account: health measures: %w", err)
	}
	for _, m := range old {
		s := NoData
		if m.Score != nil {
			s = int8(max(0, min(100, *m.Score)))
		}
		h.Measures = append(h.Measures, s)
	}
	return nil
}

// Measure is one measure's result, as explained when read. Score is nil when the account has no data for it; such a
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

// MaxHistory is how many days of daily points the account keeps (today and the 7 before):
// enough for a scorecard's drop.days up to 7.
const MaxHistory = 8

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
	newest := h.History[len(h.History)-1].Day
	cut := 0
	for cut < len(h.History) && h.History[cut].Day <= newest-MaxHistory {
		cut++
	}
	h.History = h.History[cut:]
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
	h.Measures = append([]int8(nil), h.Measures...)
	h.History = append(Points(nil), h.History...)
	return h
}
