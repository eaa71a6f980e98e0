package account

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Usage is product usage in bounded windows: a fixed ring of daily buckets, a capped set of
// users with the last day each was active, and the named features and milestones configured in
// the scorecard.
type Usage struct {
	FirstSeenAt time.Time `json:"first_seen_at,omitzero"`
	LastSeenAt  time.Time `json:"last_seen_at,omitzero"`
	// Days holds event counts per UTC day for the last WindowDays days, ascending.
	Days DayCounts `json:"days,omitempty"`
	// Users maps each user seen (by a hash of its id) to the last day it was active.
	Users UserSet `json:"users"`
	// Features are key features by scorecard name.
	Features map[string]Feature `json:"features,omitempty"`
	// Milestones are onboarding milestones reached, by scorecard name.
	Milestones Moments `json:"milestones,omitempty"`
	// Members is the number of users on the account according to seat events
	// (added minus removed); SeatEvents says whether any such event arrived.
	Members    int  `json:"members,omitempty"`
	SeatEvents bool `json:"seat_events,omitempty"`
	Invites    int  `json:"invites,omitempty"`
	// SeatsPurchased comes from a group trait, for accounts whose seats Stripe does not carry.
	SeatsPurchased int64 `json:"seats_purchased,omitempty"`
}

// DayCount is the number of events on one UTC day (days since the Unix epoch).
type DayCount struct {
	Day    int32 `json:"d"`
	Events int   `json:"n"`
}

// Feature is the use of one key feature.
type Feature struct {
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Count int       `json:"count"`
}

// Bounds on usage data.
const (
	// WindowDays is how many daily buckets are kept: this 30-day period and the prior one.
	WindowDays = 60
	// MaxUsers caps the distinct-user set; beyond it the least recently active are dropped,
	// which leaves 7- and 30-day counts exact while fewer users than this are active.
	MaxUsers    = 2000
	MaxFeatures = 50
)

// Day returns the UTC day number of t.
func Day(t time.Time) int32 { return int32(t.UTC().Unix() / 86400) }

// Record counts one activity at t by user (may be empty). It updates first/last seen, the
// daily bucket and the user's last active day. Activity older than the window still moves
// first-seen but no counters.
func (u *Usage) Record(user string, t time.Time, countEvent bool) {
	t = t.UTC()
	if u.FirstSeenAt.IsZero() || t.Before(u.FirstSeenAt) {
		u.FirstSeenAt = t
	}
	if countEvent && t.After(u.LastSeenAt) {
		u.LastSeenAt = t
	}
	d := Day(t)
	if user != "" {
		u.Users.Touch(user, d)
	}
	if !countEvent {
		return
	}
	u.Days = countDay(u.Days, d, 1)
}

// countDay adds n to day d of an ascending ring of daily counts covering WindowDays days up to
// the newest day seen; a day older than that window is not counted.
func countDay(days []DayCount, d int32, n int) []DayCount {
	newest := d
	if k := len(days); k > 0 && days[k-1].Day > newest {
		newest = days[k-1].Day
	}
	if d <= newest-WindowDays {
		return days
	}
	i := sort.Search(len(days), func(i int) bool { return days[i].Day >= d })
	if i < len(days) && days[i].Day == d {
		days[i].Events += n
	} else {
		days = slices.Insert(days, i, DayCount{Day: d, Events: n})
	}
	cut := 0
	for cut < len(days) && days[cut].Day <= newest-WindowDays {
		cut++
	}
	return days[cut:]
}

// sumDays sums the counts of days in [from, to).
func sumDays(days []DayCount, from, to int32) int {
	n := 0
	for _, d := range days {
		if d.Day >= from && d.Day < to {
			n += d.Events
		}
	}
	return n
}

// EventsBetween sums events on days in [from, to).
func (u *Usage) EventsBetween(from, to int32) int { return sumDays(u.Days, from, to) }

// DaysActive counts days with events in the n days ending on today (inclusive).
func (u *Usage) DaysActive(today int32, n int) int {
	c := 0
	for _, d := range u.Days {
		if d.Day > today-int32(n) && d.Day <= today && d.Events > 0 {
			c++
		}
	}
	return c
}

// UseFeature records one use of a key feature at t, ignoring new names beyond MaxFeatures.
func (u *Usage) UseFeature(name string, t time.Time) {
	t = t.UTC()
	if u.Features == nil {
		u.Features = map[string]Feature{}
	}
	f, ok := u.Features[name]
	if !ok && len(u.Features) >= MaxFeatures {
		return
	}
	if f.First.IsZero() || t.Before(f.First) {
		f.First = t
	}
	if t.After(f.Last) {
		f.Last = t
	}
	f.Count++
	u.Features[name] = f
}

// Reach records an onboarding milestone, keeping the earliest time it was reached.
func (u *Usage) Reach(name string, t time.Time) {
	if u.Milestones == nil {
		u.Milestones = Moments{}
	}
	if old, ok := u.Milestones[name]; ok && !t.Before(old) {
		return
	}
	if _, ok := u.Milestones[name]; !ok && len(u.Milestones) >= MaxFeatures {
		return
	}
	u.Milestones[name] = t.UTC()
}

// SeatChange applies a seat event: +1 for a user added, -1 for one removed, never below zero.
func (u *Usage) SeatChange(delta int) {
	u.SeatEvents = true
	u.Members += delta
	if u.Members < 0 {
		u.Members = 0
	}
}

// HasData reports whether any product message ever reached the account.
func (u *Usage) HasData() bool { return !u.FirstSeenAt.IsZero() }

func (u Usage) clone() Usage {
	u.Days = append([]DayCount(nil), u.Days...)
	u.Users = u.Users.clone()
	u.Features = cloneMap(u.Features)
	u.Milestones = cloneMap(u.Milestones)
	return u
}

func (u *Usage) merge(src *Usage) {
	if !src.FirstSeenAt.IsZero() && (u.FirstSeenAt.IsZero() || src.FirstSeenAt.Before(u.FirstSeenAt)) {
		u.FirstSeenAt = src.FirstSeenAt
	}
	if src.LastSeenAt.After(u.LastSeenAt) {
		u.LastSeenAt = src.LastSeenAt
	}
	for _, d := range src.Days {
		u.Days = countDay(u.Days, d.Day, d.Events)
	}
	for h, d := range src.Users.m {
		u.Users.touchHash(h, d)
	}
	for name, f := range src.Features {
		g, ok := u.Features[name]
		if !ok {
			if u.Features == nil {
				u.Features = map[string]Feature{}
			}
			u.Features[name] = f
			continue
		}
		if f.First.Before(g.First) {
			g.First = f.First
		}
		if f.Last.After(g.Last) {
			g.Last = f.Last
		}
		g.Count += f.Count
		u.Features[name] = g
	}
	for name, t := range src.Milestones {
		u.Reach(name, t)
	}
	if src.SeatEvents {
		u.SeatEvents = true
		u.Members += src.Members
	}
	u.Invites += src.Invites
	if u.SeatsPurchased == 0 {
		u.SeatsPurchased = src.SeatsPurchased
	}
}

// UserSet is a bounded set of users, each with the last day it was active. Users are kept by
// a 22-bit fingerprint of a hash of their id, so no identifier is stored and the set encodes
// in about 2.3 bytes a user (every account write is billed by size, and 2,000 users must fit
// the 8 KB account). Among n users about n²/2²³ pairs share a fingerprint and count as one:
// 0.5 pairs expected among 2,000 users (an active-user count off by one at most, usually
// exact), 0.0001 among 25.
type UserSet struct {
	m map[uint32]int32
}

// userBits is the width of a user fingerprint; userDays how many days of activity the
// encoding keeps (the 30-day window and a day of slack): older activity counts in no window.
const (
	userBits = 22
	userDays = 31
	// userBitsV1 is the fingerprint width of the format with version byte 1.
	userBitsV1 = 24
)

// hashUser is the user's fingerprint: the first userBits bits of SHA-256 of its id.
func hashUser(id string) uint32 {
	s := sha256.Sum256([]byte(id))
	return (uint32(s[0])<<16 | uint32(s[1])<<8 | uint32(s[2])) >> (24 - userBits)
}

// Touch records that user id was active on day.
func (s *UserSet) Touch(id string, day int32) { s.touchHash(hashUser(id), day) }

// Alias folds the activity recorded under id from (an anonymous id) into id to (the user it
// turned out to be), so one person who browsed anonymously and then signed in counts once.
func (s *UserSet) Alias(from, to string) {
	h := hashUser(from)
	day, ok := s.m[h]
	if !ok || h == hashUser(to) {
		return
	}
	delete(s.m, h)
	s.touchHash(hashUser(to), day)
}

func (s *UserSet) touchHash(h uint32, day int32) {
	if s.m == nil {
		s.m = map[uint32]int32{}
	}
	if old, ok := s.m[h]; ok {
		if day > old {
			s.m[h] = day
		}
		return
	}
	s.m[h] = day
	if len(s.m) > MaxUsers {
		var victim uint32
		oldest := int32(1<<31 - 1)
		for k, d := range s.m {
			if d < oldest || (d == oldest && k < victim) {
				victim, oldest = k, d
			}
		}
		delete(s.m, victim)
	}
}

// ActiveSince counts users whose last active day is within the n days ending on today.
func (s UserSet) ActiveSince(today int32, n int) int {
	c := 0
	for _, d := range s.m {
		if d > today-int32(n) {
			c++
		}
	}
	return c
}

// Len is the number of users known.
func (s UserSet) Len() int { return len(s.m) }

func (s UserSet) clone() UserSet { return UserSet{m: cloneMap(s.m)} }

// MarshalJSON encodes the set as base64 of: a version byte (2), the newest day (uvarint), then
// for each of the userDays days back from it the number of users last active that day
// (uvarint) and, when not zero, a Rice parameter byte; then one bit stream holding, day by
// day, the sorted fingerprints as Rice-coded gaps. Activity older than userDays before the
// newest day is left out: no window counts it.
func (s UserSet) MarshalJSON() ([]byte, error) {
	var newest int32
	for _, d := range s.m {
		newest = max(newest, d)
	}
	groups := make([][]uint32, userDays)
	for h, d := range s.m {
		if o := newest - d; o >= 0 && o < userDays {
			groups[o] = append(groups[o], h)
		}
	}
	buf := []byte{2}
	buf = binary.AppendUvarint(buf, uint64(max(newest, 0)))
	var w bitWriter
	for _, g := range groups {
		buf = binary.AppendUvarint(buf, uint64(len(g)))
		if len(g) == 0 {
			continue
		}
		slices.Sort(g)
		k := riceParam(len(g), userBits)
		buf = append(buf, k)
		prev := uint32(0)
		for i, h := range g {
			gap := h - prev
			if i > 0 {
				gap-- // distinct and sorted: gaps after the first are at least 1
			}
			w.rice(gap, k)
			prev = h
		}
	}
	buf = append(buf, w.bytes()...)
	return json.Marshal(base64.StdEncoding.EncodeToString(buf))
}

// UnmarshalJSON decodes what MarshalJSON wrote, and the two earlier formats: version 1 (the
// same layout with 24-bit fingerprints, cut to 22 bits on reading) and 12-byte (64-bit hash,
// day) records. A fingerprint cut to 22 bits is the one hashUser gives the same user now.
func (s *UserSet) UnmarshalJSON(b []byte) error {
	var enc string
	if err := json.Unmarshal(b, &enc); err != nil {
		return err
	}
	buf, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return fmt.Errorf("account: bad user set encoding")
	}
	if len(buf) > 0 && buf[0] == 2 {
		return s.decode(buf[1:], userBits)
	}
	if len(buf) > 0 && buf[0] == 1 {
		return s.decode(buf[1:], userBitsV1)
	}
	if len(buf)%12 != 0 {
		return fmt.Errorf("account: bad user set encoding")
	}
	s.m = make(map[uint32]int32, len(buf)/12)
	for i := 0; i < len(buf); i += 12 {
		s.touchHash(uint32(binary.BigEndian.Uint64(buf[i:])>>(64-userBits)), int32(binary.BigEndian.Uint32(buf[i+8:])))
	}
	return nil
}

// decode reads the day-grouped Rice-coded layout of fingerprints bits wide.
func (s *UserSet) decode(buf []byte, bits uint8) error {
	bad := fmt.Errorf("account: bad user set encoding")
	newest, n := binary.Uvarint(buf)
	if n <= 0 || newest > 1<<31-1 {
		return bad
	}
	buf = buf[n:]
	counts := make([]int, userDays)
	params := make([]uint8, userDays)
	total := 0
	for o := range counts {
		c, n := binary.Uvarint(buf)
		if n <= 0 || c > MaxUsers || total+int(c) > MaxUsers {
			return bad
		}
		buf = buf[n:]
		counts[o], total = int(c), total+int(c)
		if c > 0 {
			if len(buf) == 0 || buf[0] > bits {
				return bad
			}
			params[o], buf = buf[0], buf[1:]
		}
	}
	r := bitReader{buf: buf}
	s.m = make(map[uint32]int32, total)
	for o, c := range counts {
		prev := uint32(0)
		for i := 0; i < c; i++ {
			gap, ok := r.rice(params[o], bits)
			if !ok {
				return bad
			}
			h := prev + gap
			if i > 0 {
				h++
			}
			if h >= 1<<bits {
				return bad
			}
			s.touchHash(h>>(bits-userBits), int32(newest)-int32(o))
			prev = h
		}
	}
	return nil
}

// riceParam is the Rice parameter for n sorted values spread over the fingerprint space:
// about log2 of the mean gap.
func riceParam(n int, bits uint8) uint8 {
	k := uint8(0)
	for mean := (1 << bits) / (n + 1); mean > 1; mean >>= 1 {
		k++
	}
	return k
}

// bitWriter appends bits, most significant first.
type bitWriter struct {
	out  []byte
	cur  byte
	used uint8
}

func (w *bitWriter) bit(b uint32) {
	w.cur = w.cur<<1 | byte(b&1)
	if w.used++; w.used == 8 {
		w.out, w.cur, w.used = append(w.out, w.cur), 0, 0
	}
}

// rice writes v as v>>k ones, a zero, then the low k bits of v.
func (w *bitWriter) rice(v uint32, k uint8) {
	for q := v >> k; q > 0; q-- {
		w.bit(1)
	}
	w.bit(0)
	for i := int(k) - 1; i >= 0; i-- {
		w.bit(v >> uint(i))
	}
}

func (w *bitWriter) bytes() []byte {
	if w.used == 0 {
		return w.out
	}
	return append(w.out, w.cur<<(8-w.used))
}

type bitReader struct {
	buf []byte
	pos int // in bits
}

func (r *bitReader) bit() (uint32, bool) {
	if r.pos >= 8*len(r.buf) {
		return 0, false
	}
	b := r.buf[r.pos/8] >> (7 - uint(r.pos%8)) & 1
	r.pos++
	return uint32(b), true
}

func (r *bitReader) rice(k, bits uint8) (uint32, bool) {
	var q uint32
	for {
		b, ok := r.bit()
		if !ok || q > 1<<bits {
			return 0, false
		}
		if b == 0 {
			break
		}
		q++
	}
	v := q
	for i := uint8(0); i < k; i++ {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		v = v<<1 | b
	}
	return v, true
}
