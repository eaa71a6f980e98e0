package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/risk"
	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/usage"
)

func splitMessages(body []byte) ([]json.RawMessage, error) {
	raws, err := usage.Split(body)
	if err != nil {
		return nil, fail(http.StatusBadRequest, err.Error())
	}
	if len(raws) == 0 {
		return nil, fail(http.StatusBadRequest, "no messages in body")
	}
	return raws, nil
}

// View is the account as GET /accounts/{id} shows it.
type View struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	Email            string `json:"email,omitempty"`
	StripeCustomerID string `json:"stripe_customer_id"`
	// StripeCustomerIDs are all the account's Stripe customers, the first linked first.
	StripeCustomerIDs []string          `json:"stripe_customer_ids"`
	Segment           string            `json:"segment"`
	Churned           bool              `json:"churned"`
	Traits            map[string]string `json:"traits,omitempty"`
	Billing           BillingView       `json:"billing"`
	Usage             UsageView         `json:"usage"`
	Voice             VoiceView         `json:"voice"`
	Health            HealthView        `json:"health"`
	Risk              RiskView          `json:"risk"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

// BillingView is the billing part of a View, as of the time of the request.
type BillingView struct {
	Status string `json:"status"`
	// MRR is the headline MRR: the largest per-currency amount, never a sum across currencies.
	MRR risk.Money `json:"mrr"`
	// MRRByCurrency holds every currency's MRR in minor units.
	MRRByCurrency     map[string]int64   `json:"mrr_by_currency"`
	CancelAtPeriodEnd bool               `json:"cancel_at_period_end"`
	CancelAt          *time.Time         `json:"cancel_at"`
	FailedPayments30d int                `json:"failed_payments_30d"`
	UnpaidFailures30d int                `json:"unpaid_failures_30d"`
	LastPaidAt        *time.Time         `json:"last_paid_at"`
	Subscriptions     []SubscriptionView `json:"subscriptions"`
}

// SubscriptionView is one Stripe subscription as of the time of the request: its MRR after
// the discount in force, the discount beside the items (whose MRR is before it).
type SubscriptionView struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Currency string `json:"currency,omitempty"`
	// MRR is the monthly amount now, after the discount while it is in force.
	MRR int64 `json:"mrr"`
	// MRRBeforeDiscount is the sum the items give, before any discount.
	MRRBeforeDiscount int64          `json:"mrr_before_discount"`
	Discount          *DiscountView  `json:"discount,omitempty"`
	MRRNote           string         `json:"mrr_note,omitempty"`
	Seats             int64          `json:"seats,omitempty"`
	Items             []account.Item `json:"items"`
	CancelAtPeriodEnd bool           `json:"cancel_at_period_end,omitempty"`
	CancelAt          *time.Time     `json:"cancel_at,omitempty"`
	CanceledAt        *time.Time     `json:"canceled_at,omitempty"`
	CancelReason      string         `json:"cancel_reason,omitempty"`
	CancelFeedback    string         `json:"cancel_feedback,omitempty"`
	CancelComment     string         `json:"cancel_comment,omitempty"`
	TrialEnd          *time.Time     `json:"trial_end,omitempty"`
	CurrentPeriodEnd  *time.Time     `json:"current_period_end,omitempty"`
	EndedAt           *time.Time     `json:"ended_at,omitempty"`
	TrialEnding       bool           `json:"trial_ending,omitempty"`
	// At is the time of the Stripe event whose snapshot this is.
	At time.Time `json:"at"`
}

// DiscountView is a subscription's discount and whether it is in force now.
type DiscountView struct {
	Coupon     string     `json:"coupon,omitempty"`
	PercentOff float64    `json:"percent_off,omitempty"`
	AmountOff  int64      `json:"amount_off,omitempty"`
	Start      *time.Time `json:"start"`
	End        *time.Time `json:"end"`
	InForce    bool       `json:"in_force"`
	// MRR is the subscription's MRR while the discount is in force.
	MRR int64 `json:"mrr"`
}

// UsageView is the usage part of a View, with windows ending at the time of the request.
type UsageView struct {
	LastSeenAt     *time.Time           `json:"last_seen_at"`
	ActiveUsers7d  int                  `json:"active_users_7d"`
	ActiveUsers30d int                  `json:"active_users_30d"`
	DaysActive14d  int                  `json:"days_active_14d"`
	Events30d      int                  `json:"events_30d"`
	EventsPrior30d int                  `json:"events_prior_30d"`
	SeatsPurchased int64                `json:"seats_purchased"`
	SeatsUsed      int                  `json:"seats_used"`
	Invites        int                  `json:"invites"`
	KeyFeatures    map[string]time.Time `json:"key_features_last_used"`
	Onboarding     map[string]time.Time `json:"onboarding_milestones"`
}

// VoiceView is the voice-of-customer part of a View.
type VoiceView struct {
	Tickets30d  int                   `json:"tickets_30d"`
	OpenTickets int                   `json:"open_tickets"`
	NPS         []account.NPSResponse `json:"nps"`
}

// HealthView is the score with its explanation (built when read) and history.
type HealthView struct {
	Score int `json:"score"`
	// RawScore is the weighted score before a hard rule capped it into its band.
	RawScore int    `json:"raw_score"`
	Band     string `json:"band"`
	// Coverage is the share of the scorecard's weight whose measures had data.
	Coverage float64 `json:"coverage"`
	// CappedBy names what set the band over the raw score ("rule:past_due", "coverage",
	// "churned"); absent when the band follows the score.
	CappedBy         string            `json:"capped_by,omitempty"`
	Measures         []account.Measure `json:"measures"`
	Reasons          []account.Reason  `json:"reasons"`
	UpdatedAt        time.Time         `json:"updated_at"`
	ScorecardVersion string            `json:"scorecard_version"`
	History          []HistoryPoint    `json:"history"`
}

// HistoryPoint is the score at the end of one day.
type HistoryPoint struct {
	Date  string `json:"date"`
	Score int    `json:"score"`
	Band  string `json:"band"`
}

// RiskView is the churn-risk episode state.
type RiskView struct {
	AtRisk    bool       `json:"at_risk"`
	Kind      string     `json:"kind,omitempty"`
	Since     *time.Time `json:"since"`
	ChurnedAt *time.Time `json:"churned_at"`
}

func ptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// NewView renders account a as of now, explaining its stored health with scorecard sc.
func NewView(a *account.Account, sc *score.Scorecard, now time.Time) View {
	today := account.Day(now)
	mrr, cur := a.Billing.MRRAt(now)
	all, open := a.Billing.FailuresSince(now.AddDate(0, 0, -30))
	ex := score.Explain(a, sc)
	v := View{
		ID: a.ID, Name: a.Name, Email: a.Email, StripeCustomerID: a.StripeCustomerID, StripeCustomerIDs: a.Customers(), Segment: a.Health.Segment,
		Churned: a.Churned(), Traits: a.Traits, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		Billing: BillingView{Status: a.Billing.Status(), MRR: risk.Money{Amount: mrr, Currency: cur},
			MRRByCurrency:     a.Billing.MRRByCurrency(now),
			FailedPayments30d: all, UnpaidFailures30d: open, LastPaidAt: ptr(a.Billing.LastPaidAt),
			Subscriptions: []SubscriptionView{}},
		Usage: UsageView{
			LastSeenAt:    ptr(a.Usage.LastSeenAt),
			ActiveUsers7d: a.Usage.Users.ActiveSince(today, 7), ActiveUsers30d: a.Usage.Users.ActiveSince(today, 30),
			DaysActive14d: a.Usage.DaysActive(today, 14),
			Events30d:     a.Usage.EventsBetween(today-29, today+1), EventsPrior30d: a.Usage.EventsBetween(today-59, today-29),
			SeatsPurchased: a.Billing.Seats(), KeyFeatures: map[string]time.Time{}, Onboarding: map[string]time.Time{},
		},
		Voice: VoiceView{Tickets30d: a.Voice.TicketsSince(now.AddDate(0, 0, -30)), OpenTickets: len(a.Voice.OpenTickets), NPS: a.Voice.NPS},
		Health: HealthView{Score: a.Health.Score, RawScore: a.Health.RawScore, Band: a.Health.Band, Coverage: a.Health.Coverage,
			CappedBy: a.Health.CappedBy, Measures: ex.Measures, Reasons: ex.Reasons,
			UpdatedAt: a.Health.UpdatedAt, ScorecardVersion: a.Health.ScorecardVersion, History: []HistoryPoint{}},
		Risk: RiskView{AtRisk: a.Risk.Open, Kind: a.Risk.Kind, Since: ptr(a.Risk.Since), ChurnedAt: ptr(a.Risk.ChurnedAt)},
	}
	if !a.Risk.Open {
		v.Risk.Since = nil
	}
	if s, ok := a.Billing.CancelScheduled(); ok {
		v.Billing.CancelAtPeriodEnd = s.CancelAtPeriodEnd
		v.Billing.CancelAt = ptr(s.CancelAt)
		if v.Billing.CancelAt == nil {
			v.Billing.CancelAt = ptr(s.CurrentPeriodEnd)
		}
	}
	for _, s := range a.Billing.Subscriptions {
		v.Billing.Subscriptions = append(v.Billing.Subscriptions, subscriptionView(s, now))
	}
	sort.Slice(v.Billing.Subscriptions, func(i, j int) bool { return v.Billing.Subscriptions[i].ID < v.Billing.Subscriptions[j].ID })
	if v.Usage.SeatsPurchased == 0 {
		v.Usage.SeatsPurchased = a.Usage.SeatsPurchased
	}
	v.Usage.Invites = a.Usage.Invites
	v.Usage.SeatsUsed = v.Usage.ActiveUsers30d
	if a.Usage.SeatEvents {
		v.Usage.SeatsUsed = a.Usage.Members
	}
	for n, f := range a.Usage.Features {
		v.Usage.KeyFeatures[n] = f.Last
	}
	for n, t := range a.Usage.Milestones {
		v.Usage.Onboarding[n] = t
	}
	if v.Voice.NPS == nil {
		v.Voice.NPS = []account.NPSResponse{}
	}
	if v.Health.Measures == nil {
		v.Health.Measures = []account.Measure{}
	}
	if v.Health.Reasons == nil {
		v.Health.Reasons = []account.Reason{}
	}
	v.Health.History = historyView(a.Health.History, nil, today)
	return v
}

// HistoryDays is how many days of daily points the account view shows, today included.
const HistoryDays = 35

// historyView merges the stored daily points with the account's own recent window (which an
// account written before history items existed holds whole), one point a day over the last
// HistoryDays days, oldest first; the account's point wins a day both have.
func historyView(recent account.Points, stored []store.Point, today int32) []HistoryPoint {
	byDay := map[int32]account.Point{}
	for _, p := range stored {
		byDay[p.Day] = account.Point{Day: p.Day, Score: p.Score, Band: p.Band}
	}
	for _, p := range recent {
		byDay[p.Day] = p
	}
	days := make([]int32, 0, len(byDay))
	for d := range byDay {
		if d > today-HistoryDays && d <= today {
			days = append(days, d)
		}
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	out := []HistoryPoint{}
	for _, d := range days {
		p := byDay[d]
		out = append(out, HistoryPoint{Date: time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02"), Score: p.Score, Band: p.Band})
	}
	return out
}

func subscriptionView(s account.Subscription, now time.Time) SubscriptionView {
	v := SubscriptionView{ID: s.ID, Status: s.Status, Currency: s.Currency, MRR: s.MRRAt(now), MRRBeforeDiscount: s.MRR,
		MRRNote: s.MRRNote, Seats: s.Seats, Items: append([]account.Item{}, s.Items...),
		CancelAtPeriodEnd: s.CancelAtPeriodEnd, CancelAt: ptr(s.CancelAt), CanceledAt: ptr(s.CanceledAt),
		CancelReason: s.CancelReason, CancelFeedback: s.CancelFeedback, CancelComment: s.CancelComment,
		TrialEnd: ptr(s.TrialEnd), CurrentPeriodEnd: ptr(s.CurrentPeriodEnd), EndedAt: ptr(s.EndedAt),
		TrialEnding: s.TrialEnding, At: time.Unix(s.At, 0).UTC()}
	if d := s.Discount; d != nil {
		v.Discount = &DiscountView{Coupon: d.Coupon, PercentOff: d.PercentOff, AmountOff: d.AmountOff,
			Start: ptr(d.Start), End: ptr(d.End), InForce: d.InForce(now), MRR: d.MRR}
	}
	return v
}

// account handles GET /accounts/{id}; a Stripe customer id finds its account too.
func (a *api) account(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	note(r, slog.String("account", id))
	acct, err := a.find(r, id)
	if err != nil {
		reply(w, r, err)
		return
	}
	now := a.Now()
	v := NewView(acct, a.scorecard(), now)
	today := account.Day(now)
	stored, err := a.Store.History(r.Context(), acct.ID, today-HistoryDays+1, today+1)
	if err != nil {
		reply(w, r, fault.Dependency("load history", err))
		return
	}
	v.Health.History = historyView(acct.Health.History, stored, today)
	writeJSON(w, http.StatusOK, v)
}

// find loads account id, following merges. A Stripe customer id answers the account its link
// points to, which is where the customer's next billing event lands.
func (a *api) find(r *http.Request, id string) (*account.Account, error) {
	ctx := r.Context()
	if strings.HasPrefix(id, "cus_") {
		links, err := a.Store.Links(ctx, []string{"stripe:" + id})
		if err != nil {
			return nil, fault.Dependency("link lookup", err)
		}
		if t, ok := links["stripe:"+id]; ok && t.Account != "" {
			id = t.Account
		}
	}
	for hop := 0; hop < 3; hop++ {
		acct, err := a.Store.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fail(http.StatusNotFound, "no account "+strconv.Quote(id))
		}
		if err != nil {
			return nil, fault.Dependency("load account", err)
		}
		if acct.MergedInto == "" {
			return acct, nil
		}
		id = acct.MergedInto
	}
	return nil, fail(http.StatusNotFound, "no account "+strconv.Quote(id))
}

// Summary is one row of GET /accounts.
type Summary struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Segment   string     `json:"segment"`
	Score     int        `json:"score"`
	Band      string     `json:"band"`
	Churned   bool       `json:"churned"`
	MRR       risk.Money `json:"mrr"`
	TopReason *TopReason `json:"top_reason"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// TopReason is the reason that costs an account the most points, as a list shows it; the
// account view has every reason with its kind and impact.
type TopReason struct {
	Measure string `json:"measure"`
	Detail  string `json:"detail"`
}

// list handles GET /accounts?band=&segment=&limit=&cursor=&include_churned=: most at risk
// first (BAD, NORMAL, GOOD, each lowest score first), from the store's summaries.
func (a *api) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := store.Query{Band: q.Get("band"), Segment: q.Get("segment"), Cursor: q.Get("cursor"), Limit: 50}
	switch query.Band {
	case "", account.BandGood, account.BandNormal, account.BandBad:
	default:
		reply(w, r, fail(http.StatusBadRequest, "band must be GOOD, NORMAL or BAD"))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			reply(w, r, fail(http.StatusBadRequest, "limit must be 1–500"))
			return
		}
		query.Limit = n
	}
	if c := q.Get("include_churned"); c != "" {
		b, err := strconv.ParseBool(c)
		if err != nil {
			reply(w, r, fail(http.StatusBadRequest, "include_churned must be true or false"))
			return
		}
		query.IncludeChurned = b
	}
	page, err := a.Store.List(r.Context(), query)
	if errors.Is(err, store.ErrInvalidCursor) {
		reply(w, r, fail(http.StatusBadRequest, "cursor is not one returned for this query"))
		return
	}
	if err != nil {
		reply(w, r, fault.Dependency("list accounts", err))
		return
	}
	out := struct {
		Accounts   []Summary `json:"accounts"`
		NextCursor string    `json:"next_cursor,omitempty"`
	}{Accounts: []Summary{}, NextCursor: page.Next}
	for _, sum := range page.Summaries {
		s := Summary{ID: sum.ID, Name: sum.Name, Segment: sum.Segment, Score: sum.Score, Band: sum.Band,
			Churned: sum.Churned, MRR: risk.Money{Amount: sum.MRR, Currency: sum.Currency}, UpdatedAt: sum.UpdatedAt}
		if sum.TopReason != "" {
			s.TopReason = &TopReason{Measure: sum.TopMeasure, Detail: sum.TopReason}
		}
		out.Accounts = append(out.Accounts, s)
	}
	writeJSON(w, http.StatusOK, out)
}

// recompute handles POST /jobs/recompute?at=&dry_run=&shard=&shards=&cursor=&budget=. With
// at (RFC 3339) it is a simulation: nothing is written or published, and the answer lists
// what would change. shard/shards select part of the accounts, cursor resumes an earlier run
// and budget (a Go duration, "30s") bounds how long this call runs.
func (a *api) recompute(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := ingest.RecomputeRequest{At: a.Now(), Cursor: q.Get("cursor"), Shards: 1}
	if s := q.Get("at"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			reply(w, r, fail(http.StatusBadRequest, "at must be an RFC 3339 time"))
			return
		}
		req.At, req.DryRun = t, true
	}
	if s := q.Get("dry_run"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil || (!b && req.DryRun) {
			reply(w, r, fail(http.StatusBadRequest, "dry_run must be true or false, and true with at"))
			return
		}
		req.DryRun = req.DryRun || b
	}
	if s := q.Get("shards"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			reply(w, r, fail(http.StatusBadRequest, "shards must be 1–10000"))
			return
		}
		req.Shards = n
	}
	if s := q.Get("shard"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n >= req.Shards {
			reply(w, r, fail(http.StatusBadRequest, "shard must be 0 to shards-1"))
			return
		}
		req.Shard = n
	}
	if s := q.Get("budget"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			reply(w, r, fail(http.StatusBadRequest, `budget must be a positive duration such as "30s"`))
			return
		}
		req.Budget = d
	}
	res, err := a.Service.Recompute(r.Context(), req)
	if errors.Is(err, store.ErrInvalidCursor) {
		reply(w, r, fail(http.StatusBadRequest, "cursor is not one returned for this shard"))
		return
	}
	if err != nil {
		reply(w, r, err)
		return
	}
	note(r, slog.Int("scored", res.Scored), slog.Int("changed", res.Changed), slog.Int("events", res.Events),
		slog.Bool("dry_run", res.DryRun), slog.Int("failed", res.FailedCount))
	writeJSON(w, http.StatusOK, res)
}

// scorecard is the scorecard that explains stored health: the service's, else the default.
func (a *api) scorecard() *score.Scorecard {
	if a.Service != nil && a.Service.Scorecard != nil {
		return a.Service.Scorecard
	}
	return score.Default()
}
