package usage

import (
	"slices"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/score"
)

// Horizon is how long after its own timestamp a message can still change a counter. Dedupe
// markers of product messages live at least this long past the message's timestamp (see
// MarkerExpiry), so a redelivery inside the horizon is always recognized; one beyond it (a
// Segment Replay or a re-run import months later) may find its marker gone, and is applied
// by Replayed, which changes nothing twice. It is one day more than the longest window
// a count is kept for (account.WindowDays).
const Horizon = (account.WindowDays + 1) * 24 * time.Hour

// Countable reports whether a message with timestamp at, received at now, is inside the
// horizon: its dedupe marker is certain to outlive any redelivery that could count it again.
func Countable(at, now time.Time) bool { return now.Sub(at) < Horizon }

// MarkerExpiry is when the dedupe marker of a message with timestamp at, received at now,
// may expire: after the sender's retries (retry after now) and after the message has left
// the horizon.
func MarkerExpiry(at, now time.Time, retry time.Duration) time.Time {
	return later(now.Add(retry), at.Add(Horizon))
}

// TimelessHorizon is how long the marker of a message that carries no time of its own (no
// readable timestamp or originalTimestamp) lives: its time is the receipt's, so a late replay
// looks new and only the marker can tell; its counters are safe for this long.
const TimelessHorizon = 400 * 24 * time.Hour

// Expiry is when m's dedupe marker may expire, m received at now: MarkerExpiry, or for a
// message applied at its receipt time (no time of its own, or one in the future)
// TimelessHorizon after receipt.
func (m *Message) Expiry(now time.Time, retry time.Duration) time.Time {
	if m.Received {
		return now.Add(TimelessHorizon)
	}
	return MarkerExpiry(m.At, now, retry)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Replayed applies a message from beyond the horizon: only what applying it again would not
// change — first and last seen, the user's membership and last active day, when a key feature
// was first and last used, onboarding milestones, group traits, which tickets are open, an NPS
// answer not already recorded. Counters that never age (seats, invites, event and ticket
// counts) are left alone, so a replay never counts a message a second time.
func Replayed(a *account.Account, m *Message, ev score.Events) {
	u := &a.Usage
	if m.UserID != "" && m.AnonymousID != "" {
		u.Users.Alias("anon:"+string(m.AnonymousID), string(m.UserID))
	}
	activity := m.Type == "track" || m.Type == "page" || m.Type == "screen"
	u.Record(m.User(), m.At, false)
	if activity && m.At.After(u.LastSeenAt) {
		u.LastSeenAt = m.At.UTC()
	}
	switch m.Type {
	case "group":
		applyTraits(a, m.Traits)
		return
	case "track":
	default:
		return
	}
	name := m.Event
	if slices.Contains(ev.KeyFeatures, name) {
		if f, ok := u.Features[name]; ok {
			if m.At.Before(f.First) {
				f.First = m.At.UTC()
			}
			if m.At.After(f.Last) {
				f.Last = m.At.UTC()
			}
			u.Features[name] = f
		} else if len(u.Features) < account.MaxFeatures {
			if u.Features == nil {
				u.Features = map[string]account.Feature{}
			}
			u.Features[name] = account.Feature{First: m.At.UTC(), Last: m.At.UTC()}
		}
	}
	if slices.Contains(ev.Onboarding, name) {
		u.Reach(name, m.At)
	}
	switch {
	case slices.Contains(ev.TicketResolved, name):
		a.Voice.TicketResolved(ticketID(m.Properties))
	case slices.Contains(ev.NPS, name):
		prop := ev.NPSProperty
		if prop == "" {
			prop = "score"
		}
		s, ok := number(m.Properties[prop])
		if !ok || s < 0 || s > 10 {
			return
		}
		for _, r := range a.Voice.NPS {
			if r.At.Equal(m.At.UTC()) {
				return // recorded already
			}
		}
		a.Voice.AddNPS(int(s+0.5), m.At)
	}
}
