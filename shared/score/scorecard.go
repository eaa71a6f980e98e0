// Package score turns an account into a health score: a declarative scorecard (JSON, with an
// embedded default) of weighted measures, bands with hysteresis, hard rules and segments, and a
// pure engine that explains every point it gives or takes.
package score

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
)

//go:embed default.json
var defaultScorecard []byte

// Scorecard is the declarative definition of the health score.
type Scorecard struct {
	// Version is carried on every score and event so consumers know which rules produced it.
	Version  string    `json:"version"`
	Bands    Bands     `json:"bands"`
	Drop     Drop      `json:"drop"`
	Segments []Segment `json:"segments"`
	Measures []Spec    `json:"measures"`
	// NeverGood lists conditions that cap the band at NORMAL however high the score:
	// past_due, unpaid, cancelling, payment_action_required, uncollectible, open_payment_failure.
	NeverGood []string `json:"never_good"`
	// BadWhen lists conditions that put the account in BAD whatever its score, so that a
	// dunning or cancelling customer raises churn risk at once (same condition names).
	BadWhen []string `json:"bad_when"`
	// NewAccountDays is how long after its first product activity an account is too new to
	// judge on feature adoption and onboarding.
	NewAccountDays int `json:"new_account_days"`
	// InactiveDays is the silence after which the "inactive" rule condition holds.
	InactiveDays int `json:"inactive_days"`
	// MinCoverage is the share (0–1) of the measures' weight that must have data for an
	// account to be GOOD; optional, DefaultMinCoverage when absent.
	MinCoverage *float64 `json:"min_coverage,omitempty"`
	// Events names the product events each signal is read from.
	Events Events `json:"events"`
}

// DefaultMinCoverage is the coverage below which an account cannot be GOOD when the scorecard
// does not say.
const DefaultMinCoverage = 0.5

// minCoverage is the scorecard's MinCoverage or the default.
func (sc *Scorecard) minCoverage() float64 {
	if sc.MinCoverage == nil {
		return DefaultMinCoverage
	}
	return *sc.MinCoverage
}

// Bands are the score thresholds of the three bands. An account enters GOOD at GoodEnter and
// leaves it below GoodExit; it enters BAD below BadEnter and leaves it at BadExit or above.
type Bands struct {
	GoodEnter int `json:"good_enter"`
	GoodExit  int `json:"good_exit"`
	BadEnter  int `json:"bad_enter"`
	BadExit   int `json:"bad_exit"`
}

// Drop configures health.dropped: a fall of at least Points within Days.
type Drop struct {
	Points int `json:"points"`
	Days   int `json:"days"`
}

// Segment names the accounts whose MRR (minor units) is at least MinMRR.
type Segment struct {
	Name   string `json:"name"`
	MinMRR int64  `json:"min_mrr"`
}

// Spec is one measure: a built-in name, its weight and, for measures on a scale, the value
// that scores 100 (Good) and the value that scores 0 (Bad); in between is linear.
type Spec struct {
	Name   string   `json:"name"`
	Weight int      `json:"weight"`
	Good   *float64 `json:"good,omitempty"`
	Bad    *float64 `json:"bad,omitempty"`
}

// Events names the Segment track events that feed each usage and voice signal.
type Events struct {
	KeyFeatures    []string `json:"key_features"`
	Onboarding     []string `json:"onboarding"`
	SeatAdded      []string `json:"seat_added"`
	SeatRemoved    []string `json:"seat_removed"`
	Invite         []string `json:"invite"`
	TicketOpened   []string `json:"ticket_opened"`
	TicketResolved []string `json:"ticket_resolved"`
	NPS            []string `json:"nps"`
	// NPSProperty is the track property holding the 0–10 answer.
	NPSProperty string `json:"nps_property"`
}

// measure kinds, which are also the kinds of the risk events they cause.
const (
	KindEngagement  = "engagement"
	KindInvoluntary = "involuntary"
	KindVoluntary   = "voluntary"
)

// builtin lists the measures the engine knows, their kind and default scale.
var builtin = map[string]struct {
	kind      string
	good, bad float64
}{
	"login_recency":          {KindEngagement, 3, 21},
	"active_users":           {KindEngagement, 0.7, 0.1},
	"feature_adoption":       {KindEngagement, 0.75, 0},
	"onboarding":             {KindEngagement, 1, 0},
	"usage_trend":            {KindEngagement, 0.9, 0.4},
	"billing_status":         {KindInvoluntary, 0, 0},
	"failed_payments":        {KindInvoluntary, 0, 3},
	"scheduled_cancellation": {KindVoluntary, 0, 0},
	"mrr_contraction":        {KindVoluntary, 0, 0.5},
	"disputes":               {KindVoluntary, 0, 2},
	"support_load":           {KindEngagement, 1, 6},
	"nps":                    {KindEngagement, 9, 0},
}

var conditions = []string{"past_due", "unpaid", "cancelling", "payment_action_required", "uncollectible", "open_payment_failure", "incomplete", "inactive"}

// Default returns the embedded scorecard.
func Default() *Scorecard {
	sc, err := Parse(defaultScorecard)
	if err != nil {
		panic("score: embedded default scorecard is invalid: " + err.Error())
	}
	return sc
}

// Load reads a scorecard file.
func Load(path string) (*Scorecard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("score: read scorecard: %w", err)
	}
	sc, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("score: %s: %w", path, err)
	}
	return sc, nil
}

// Parse decodes and validates a scorecard; unknown fields are errors, so a typo is not ignored.
func Parse(b []byte) (*Scorecard, error) {
	var sc Scorecard
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("invalid scorecard: %w", err)
	}
	if err := sc.validate(); err != nil {
		return nil, err
	}
	sort.SliceStable(sc.Segments, func(i, j int) bool { return sc.Segments[i].MinMRR > sc.Segments[j].MinMRR })
	return &sc, nil
}

func (sc *Scorecard) validate() error {
	if sc.Version == "" {
		return fmt.Errorf("invalid scorecard: version is required")
	}
	b := sc.Bands
	if !(0 <= b.BadEnter && b.BadEnter <= b.BadExit && b.BadExit <= b.GoodExit && b.GoodExit <= b.GoodEnter && b.GoodEnter <= 100) {
		return fmt.Errorf("invalid scorecard: bands must satisfy 0 <= bad_enter <= bad_exit <= good_exit <= good_enter <= 100")
	}
	if sc.Drop.Points <= 0 || sc.Drop.Days <= 0 {
		return fmt.Errorf("invalid scorecard: drop.points and drop.days must be positive")
	}
	if len(sc.Measures) == 0 {
		return fmt.Errorf("invalid scorecard: no measures")
	}
	seen := map[string]bool{}
	for _, m := range sc.Measures {
		if _, ok := builtin[m.Name]; !ok {
			return fmt.Errorf("invalid scorecard: unknown measure %q", m.Name)
		}
		if seen[m.Name] {
			return fmt.Errorf("invalid scorecard: measure %q listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.Weight < 0 {
			return fmt.Errorf("invalid scorecard: measure %q has a negative weight", m.Name)
		}
		if m.Good != nil && m.Bad != nil && *m.Good == *m.Bad {
			return fmt.Errorf("invalid scorecard: measure %q has good == bad", m.Name)
		}
	}
	for _, c := range append(append([]string(nil), sc.NeverGood...), sc.BadWhen...) {
		if !slices.Contains(conditions, c) {
			return fmt.Errorf("invalid scorecard: unknown rule condition %q (known: %v)", c, conditions)
		}
	}
	if c := sc.MinCoverage; c != nil && (*c < 0 || *c > 1) {
		return fmt.Errorf("invalid scorecard: min_coverage must be between 0 and 1")
	}
	if sc.NewAccountDays < 0 || sc.InactiveDays < 0 {
		return fmt.Errorf("invalid scorecard: new_account_days and inactive_days must not be negative")
	}
	if len(sc.Segments) == 0 {
		return fmt.Errorf("invalid scorecard: no segments")
	}
	return nil
}

// scale returns the measure's good and bad values, from the scorecard or the built-in default.
func (s Spec) scale() (good, bad float64) {
	d := builtin[s.Name]
	good, bad = d.good, d.bad
	if s.Good != nil {
		good = *s.Good
	}
	if s.Bad != nil {
		bad = *s.Bad
	}
	return good, bad
}

// SegmentFor returns the segment of an account with the given MRR.
func (sc *Scorecard) SegmentFor(mrr int64) string {
	for _, s := range sc.Segments {
		if mrr >= s.MinMRR {
			return s.Name
		}
	}
	return sc.Segments[len(sc.Segments)-1].Name
}

// MeasureKind is the kind of a built-in measure: involuntary, voluntary or engagement.
func MeasureKind(name string) string { return builtin[name].kind }
