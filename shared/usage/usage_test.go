package usage

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/score"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func TestSplitAcceptsEveryShape(t *testing.T) {
	tests := []struct {
		name string
		body string
		n    int
		bad  bool
	}{
		{"one message", `{"type":"track"}`, 1, false},
		{"a bare array", ` [{"type":"track"},{"type":"identify"}]`, 2, false},
		{"a batch envelope", `{"batch":[{"type":"track"}],"sentAt":"2026-11-20T00:00:00Z","writeKey":"k"}`, 1, false},
		{"an empty batch", `{"batch":[]}`, 0, false},
		{"truncated JSON", `{"batch":[`, 0, true},
		{"a string", `"track"`, 0, true},
		{"nothing", ``, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := Split([]byte(tt.body))
			if (err != nil) != tt.bad || len(msgs) != tt.n {
				t.Fatalf("Split = %d, %v; want %d, error %v", len(msgs), err, tt.n, tt.bad)
			}
		})
	}
}

func TestParseValidatesMessages(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"a complete track", `{"type":"track","messageId":"m","userId":"u","event":"Signed In"}`, nil},
		{"a numeric userId", `{"type":"track","messageId":"m","userId":42,"event":"Signed In"}`, nil},
		{"an anonymous page", `{"type":"page","messageId":"m","anonymousId":"a"}`, nil},
		{"a group with its id", `{"type":"group","messageId":"m","groupId":"acme"}`, nil},
		{"no type", `{"messageId":"m","userId":"u"}`, ErrNoType},
		{"no messageId (Segment assigns one; so do we)", `{"type":"track","userId":"u","event":"x"}`, nil},
		{"an account id from traits over 256 bytes", `{"type":"identify","messageId":"m","userId":"u","traits":{"company":{"id":"` + strings.Repeat("c", 257) + `"}}}`, ErrLongID},
		{"an accountId trait over 256 bytes", `{"type":"track","messageId":"m","userId":"u","event":"x","context":{"traits":{"accountId":"` + strings.Repeat("c", 257) + `"}}}`, ErrLongID},
		{"no user", `{"type":"track","messageId":"m","event":"x"}`, ErrNoUser},
		{"a track without event", `{"type":"track","messageId":"m","userId":"u"}`, ErrNoEvent},
		{"a group without groupId", `{"type":"group","messageId":"m","userId":"u"}`, ErrNoGroup},
		{"an overlong messageId", `{"type":"track","messageId":"` + strings.Repeat("m", 300) + `","userId":"u","event":"x"}`, ErrLongID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(json.RawMessage(tt.msg), now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	var unsupported *UnsupportedError
	if _, err := Parse(json.RawMessage(`{"type":"alias","messageId":"m","userId":"u"}`), now); !errors.As(err, &unsupported) {
		t.Errorf("alias: %v, want UnsupportedError", err)
	}
}

func TestTimestamps(t *testing.T) {
	for _, tt := range []struct {
		ts   string
		want time.Time
	}{
		{`"2026-11-19T10:00:00.123Z"`, time.Date(2026, 11, 19, 10, 0, 0, 123e6, time.UTC)},
		{`"2026-11-19T10:00:00+02:00"`, time.Date(2026, 11, 19, 8, 0, 0, 0, time.UTC)},
		{`"2027-01-01T00:00:00Z"`, now}, // the future is clamped to receipt
		{`null`, now},                   // missing takes receipt time
		{`"2025-01-01T00:00:00Z"`, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, // backfills are kept
	} {
		m, err := Parse(json.RawMessage(`{"type":"track","messageId":"m","userId":"u","event":"x","timestamp":`+tt.ts+`}`), now)
		if err != nil || !m.At.Equal(tt.want) {
			t.Errorf("timestamp %s: At %v, %v; want %v", tt.ts, m.At, err, tt.want)
		}
	}
	// A device whose clock runs 2 hours fast: sentAt says 14:00 when the server says 12:00.
	m, err := Parse(json.RawMessage(`{"type":"track","messageId":"m","userId":"u","event":"x",
		"originalTimestamp":"2026-11-20T13:30:00Z","sentAt":"2026-11-20T14:00:00Z"}`), now)
	if want := now.Add(-30 * time.Minute); err != nil || !m.At.Equal(want) {
		t.Errorf("skew-corrected At = %v, %v; want %v", m.At, err, want)
	}
}

func FuzzParseNeverPanics(f *testing.F) {
	f.Add([]byte(`{"batch":[{"type":"track","messageId":"m","userId":"u","event":"x"}]}`))
	f.Add([]byte(`[{"type":"group","messageId":"m","groupId":1,"traits":{"company":{"id":[1]}}}]`))
	f.Add([]byte(`{"type":"identify","messageId":"m","userId":"u","timestamp":"2026-13-45"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		raws, err := Split(body)
		if err != nil {
			return
		}
		for _, raw := range raws {
			m, err := Parse(raw, now)
			if err != nil {
				continue
			}
			if m.At.After(now) {
				t.Fatalf("At %v after receipt", m.At)
			}
			m.Account()
			m.StripeCustomer()
			Apply(account.New("a", now), &m, score.Default().Events)
		}
	})
}

func TestAccountResolutionOrder(t *testing.T) {
	tests := []struct {
		name, msg, want string
	}{
		{"groupId of a group call", `{"type":"group","groupId":"g","context":{"groupId":"c"},"traits":{"accountId":"t"}}`, "g"},
		{"context.groupId before traits", `{"type":"track","context":{"groupId":"c","traits":{"accountId":"t"}}}`, "c"},
		{"company.id trait", `{"type":"identify","traits":{"company":{"id":"co"},"accountId":"t"}}`, "co"},
		{"accountId trait", `{"type":"identify","traits":{"accountId":"t"}}`, "t"},
		{"context traits of a track", `{"type":"track","context":{"traits":{"company":{"id":9}}}}`, "9"},
		{"nothing named", `{"type":"track","userId":"u"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			if err := json.Unmarshal([]byte(tt.msg), &m); err != nil {
				t.Fatal(err)
			}
			if got := m.Account(); got != tt.want {
				t.Fatalf("Account() = %q, want %q", got, tt.want)
			}
		})
	}
}

func apply(t *testing.T, a *account.Account, msgs ...string) {
	t.Helper()
	for _, s := range msgs {
		m, err := Parse(json.RawMessage(s), now)
		if err != nil {
			t.Fatal(err)
		}
		Apply(a, &m, score.Default().Events)
	}
}

func TestApplySignals(t *testing.T) {
	a := account.New("acme", now)
	apply(t, a,
		`{"type":"group","messageId":"1","userId":"u1","groupId":"acme","traits":{"name":"Acme","seats":12,"plan":"pro"}}`,
		`{"type":"track","messageId":"2","userId":"u1","event":"Report Created","timestamp":"2026-11-19T10:00:00Z"}`,
		`{"type":"track","messageId":"3","userId":"u2","event":"Account Added User","timestamp":"2026-11-19T10:00:00Z"}`,
		`{"type":"track","messageId":"4","userId":"u2","event":"Account Added User","timestamp":"2026-11-19T10:00:00Z"}`,
		`{"type":"track","messageId":"5","userId":"u2","event":"Account Removed User","timestamp":"2026-11-19T10:00:00Z"}`,
		`{"type":"track","messageId":"6","userId":"u3","event":"Ticket Created","properties":{"ticket_id":"T1"},"timestamp":"2026-11-18T10:00:00Z"}`,
		`{"type":"track","messageId":"7","userId":"u3","event":"Ticket Created","properties":{"ticket_id":"T2"},"timestamp":"2026-11-18T11:00:00Z"}`,
		`{"type":"track","messageId":"8","userId":"u3","event":"Ticket Resolved","properties":{"ticket_id":"T1"},"timestamp":"2026-11-19T11:00:00Z"}`,
		`{"type":"track","messageId":"9","userId":"u3","event":"NPS Survey Submitted","properties":{"score":"6"},"timestamp":"2026-11-19T12:00:00Z"}`,
		`{"type":"identify","messageId":"10","userId":"u4","timestamp":"2026-11-19T12:00:00Z"}`,
		`{"type":"page","messageId":"11","anonymousId":"x","timestamp":"2026-10-01T12:00:00Z"}`,
	)
	today := account.Day(now)
	checks := []struct {
		name      string
		got, want any
	}{
		{"name from group traits", a.Name, "Acme"},
		{"seats from group traits", a.Usage.SeatsPurchased, int64(12)},
		{"plan trait", a.Traits["plan"], "pro"},
		{"key feature recorded", a.Usage.Features["Report Created"].Count, 1},
		{"onboarding milestone", a.Usage.Milestones["Report Created"].IsZero(), false},
		{"members: two added, one removed", a.Usage.Members, 1},
		{"tickets opened", a.Voice.TicketsSince(now.AddDate(0, 0, -30)), 2},
		{"open tickets", a.Voice.OpenTickets, []string{"T2"}},
		{"NPS from a string property", a.Voice.NPS[0].Score, 6},
		{"identify counts the user, not an event", a.Usage.Users.ActiveSince(today, 7), 4},
		{"events in 30 days (tracks; identify/group do not count)", a.Usage.EventsBetween(today-29, today+1), 8},
		{"an old page counts in the prior window", a.Usage.EventsBetween(today-59, today-29), 1},
		{"last seen is the newest activity", a.Usage.LastSeenAt, time.Date(2026, 11, 19, 12, 0, 0, 0, time.UTC)},
	}
	for _, c := range checks {
		if got, want := toJSON(c.got), toJSON(c.want); got != want {
			t.Errorf("%s: %s, want %s", c.name, got, want)
		}
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAMessageWithoutMessageIDGetsOneFromItsContent(t *testing.T) {
	base := `{"type":"track","userId":"u","event":"Signed In","timestamp":"2026-11-19T10:00:00Z"`
	id := func(t *testing.T, msg string) ID {
		t.Helper()
		m, err := Parse(json.RawMessage(msg), now)
		if err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		if m.MessageID == "" {
			t.Fatalf("%s: no messageId", msg)
		}
		return m.MessageID
	}
	first := id(t, base+`}`)
	tests := []struct {
		name string
		msg  string
		same bool
	}{
		{"the identical retry", base + `}`, true},
		{"the same fields in another order", `{"event":"Signed In","timestamp":"2026-11-19T10:00:00Z","userId":"u","type":"track"}`, true},
		{"a retry sent later (only sentAt differs)", base + `,"sentAt":"2026-11-19T10:05:00Z"}`, true},
		{"another event", `{"type":"track","userId":"u","event":"Signed Out","timestamp":"2026-11-19T10:00:00Z"}`, false},
		{"another time", `{"type":"track","userId":"u","event":"Signed In","timestamp":"2026-11-19T10:00:01Z"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := id(t, tt.msg); (got == first) != tt.same {
				t.Fatalf("messageId %q vs %q; want same = %v", got, first, tt.same)
			}
		})
	}
}

func TestAnUnreadableTimestampFallsBackWithAWarning(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want time.Time
	}{
		{"a month without its zero, no originalTimestamp: receipt time", `"timestamp":"2015-2-02T00:30:08.276Z"`, now},
		{"a word: originalTimestamp instead", `"timestamp":"yesterday","originalTimestamp":"2026-11-19T10:00:00Z"`, time.Date(2026, 11, 19, 10, 0, 0, 0, time.UTC)},
		{"a number: receipt time", `"timestamp":1700000000`, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(json.RawMessage(`{"type":"track","messageId":"m","userId":"u","event":"x",`+tt.msg+`}`), now)
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !m.At.Equal(tt.want) {
				t.Errorf("At = %v, want %v", m.At, tt.want)
			}
			if len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "timestamp") {
				t.Errorf("warnings %q, want one about the timestamp", m.Warnings)
			}
		})
	}
}

func TestBatchContextAppliesToEveryMessage(t *testing.T) {
	body := `{"batch":[
		{"type":"track","messageId":"m1","userId":"u","event":"x"},
		{"type":"track","messageId":"m2","userId":"u","event":"x","context":{"groupId":"own","traits":{"plan":"pro"}}}
	],"context":{"groupId":"acme","traits":{"accountId":"ignored-when-groupId","plan":"free"},"device":{"type":"phone"}}}`
	raws, err := Split([]byte(body))
	if err != nil || len(raws) != 2 {
		t.Fatalf("Split = %d, %v", len(raws), err)
	}
	var got []string
	for _, raw := range raws {
		m, err := Parse(raw, now)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Account())
	}
	if want := []string{"acme", "own"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("account/plan per message = %v, want %v (the message's own context wins)", got, want)
	}
}

func TestStoredStringsAreBoundedInBytes(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes, two per rune
	a := account.New("acme", now)
	m, err := Parse(json.RawMessage(`{"type":"group","messageId":"m","groupId":"acme","traits":{"name":"`+long+`","plan":"`+long+`"}}`), now)
	if err != nil {
		t.Fatal(err)
	}
	Apply(a, &m, score.Default().Events)
	tm, err := Parse(json.RawMessage(`{"type":"track","messageId":"t","userId":"u","groupId":"acme","event":"Ticket Created","properties":{"ticket_id":"`+long+`"}}`), now)
	if err != nil {
		t.Fatal(err)
	}
	Apply(a, &tm, score.Default().Events)
	tests := []struct {
		name  string
		value string
		max   int
	}{
		{"the name", a.Name, account.MaxString},
		{"a trait value", a.Traits["plan"], account.MaxString},
		{"a ticket id", strings.Join(a.Voice.OpenTickets, ""), account.MaxTicketID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.value) == 0 || len(tt.value) > tt.max || !utf8.ValidString(tt.value) {
				t.Fatalf("%d bytes (valid UTF-8: %v), want 1..%d bytes of valid UTF-8", len(tt.value), utf8.ValidString(tt.value), tt.max)
			}
		})
	}
}

func TestABatchContextIsNotCopiedWhole(t *testing.T) {
	// A real library's context (a long userAgent) shared by 3,000 messages: accepted, and
	// only what names the account is copied into each message.
	msg := `{"type":"track","messageId":"m","userId":"u","event":"E"}`
	ctx := `{"groupId":"acme","userAgent":"` + strings.Repeat("M", 10<<10) + `","library":{"name":"analytics-python"}}`
	body := `{"context":` + ctx + `,"batch":[` + strings.Repeat(msg+",", 2999) + msg + `]}`
	raws, err := Split([]byte(body))
	if err != nil || len(raws) != 3000 {
		t.Fatalf("Split: %d messages, %v", len(raws), err)
	}
	total := 0
	for _, r := range raws {
		total += len(r)
	}
	if total > 2*len(body) {
		t.Errorf("the messages hold %d bytes for a %d-byte body: the context was copied whole", total, len(body))
	}
	if m, err := Parse(raws[0], now); err != nil || m.Account() != "acme" {
		t.Errorf("account %q, %v; want acme from the batch context", m.Account(), err)
	}
}
