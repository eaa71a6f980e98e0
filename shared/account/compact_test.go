package account

import (
	"encoding/json"
	"reflect"
	"testing"
)

// baselineAccount is an account as the version before compact encodings wrote it (JSON arrays
// of day objects, RFC 3339 feature and milestone times, 35 history points, 24-bit user set).
const baselineAccount = `{"id":"acme","billing":{"failures":[{"invoice":"in_1","at":"2026-11-20T12:00:00Z","recovered":true}],"failure_days":[{"d":20777,"n":1}],"paid":[{"invoice":"in_1","at":"2026-11-20T12:00:00.000000001Z"}],"last_paid_at":"2026-11-20T12:00:00.000000001Z","recovered_days":[{"d":20777,"n":1}]},"usage":{"first_seen_at":"2026-11-17T12:00:00Z","last_seen_at":"2026-11-20T12:00:00Z","days":[{"d":20774,"n":1},{"d":20777,"n":1}],"users":"AamiAQEXAAABFwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACvYBoDbG4A=","features":{"Report Created":{"first":"2026-11-20T12:00:00Z","last":"2026-11-20T12:00:00Z","count":1}},"milestones":{"Signed Up":"2026-11-20T12:00:00Z"}},"voice":{"ticket_days":[{"d":20777,"n":1}],"open_tickets":["T1"],"tickets_seen":true},"health":{"score":0,"raw_score":0,"band":"","coverage":0,"history":[{"d":20743,"s":66,"b":"NORMAL"},{"d":20744,"s":65,"b":"NORMAL"},{"d":20745,"s":64,"b":"NORMAL"},{"d":20746,"s":63,"b":"NORMAL"},{"d":20747,"s":62,"b":"NORMAL"},{"d":20748,"s":61,"b":"NORMAL"},{"d":20749,"s":60,"b":"NORMAL"},{"d":20750,"s":66,"b":"NORMAL"},{"d":20751,"s":65,"b":"NORMAL"},{"d":20752,"s":64,"b":"NORMAL"},{"d":20753,"s":63,"b":"NORMAL"},{"d":20754,"s":62,"b":"NORMAL"},{"d":20755,"s":61,"b":"NORMAL"},{"d":20756,"s":60,"b":"NORMAL"},{"d":20757,"s":66,"b":"NORMAL"},{"d":20758,"s":65,"b":"NORMAL"},{"d":20759,"s":64,"b":"NORMAL"},{"d":20760,"s":63,"b":"NORMAL"},{"d":20761,"s":62,"b":"NORMAL"},{"d":20762,"s":61,"b":"NORMAL"},{"d":20763,"s":60,"b":"NORMAL"},{"d":20764,"s":66,"b":"NORMAL"},{"d":20765,"s":65,"b":"NORMAL"},{"d":20766,"s":64,"b":"NORMAL"},{"d":20767,"s":63,"b":"NORMAL"},{"d":20768,"s":62,"b":"NORMAL"},{"d":20769,"s":61,"b":"NORMAL"},{"d":20770,"s":60,"b":"NORMAL"},{"d":20771,"s":66,"b":"NORMAL"},{"d":20772,"s":65,"b":"NORMAL"},{"d":20773,"s":64,"b":"NORMAL"},{"d":20774,"s":63,"b":"NORMAL"},{"d":20775,"s":62,"b":"NORMAL"},{"d":20776,"s":61,"b":"NORMAL"},{"d":20777,"s":60,"b":"NORMAL"}]},"risk":{},"created_at":"2026-11-20T12:00:00Z","updated_at":"0001-01-01T00:00:00Z","version":0}`

// baselineUsers is a user set of that version (format 1, 24-bit fingerprints): alice and carol
// active on day 20000, bob on day 19990.
const baselineUsers = `"AaCcAQIWAAAAAAAAAAAAARcAAAAAAAAAAAAAAAAAAAAAAAAAAFewDIE7SgNsbg=="`

func TestAnAccountStoredBeforeCompactEncodingsStillReads(t *testing.T) {
	var a Account
	if err := json.Unmarshal([]byte(baselineAccount), &a); err != nil {
		t.Fatalf("the stored account does not decode: %v", err)
	}
	check := func(t *testing.T, a *Account, events int) {
		t.Helper()
		today := Day(t0)
		tests := []struct {
			name      string
			got, want any
		}{
			{"events in 7 days", a.Usage.EventsBetween(today-6, today+1), events},
			{"active users today", a.Usage.Users.ActiveSince(today, 1), 1},
			{"active users in 7 days", a.Usage.Users.ActiveSince(today, 7), 2},
			{"feature uses", a.Usage.Features["Report Created"].Count, 1},
			{"feature last used", a.Usage.Features["Report Created"].Last, t0},
			{"milestone reached", a.Usage.Milestones["Signed Up"], t0},
			{"tickets in 30 days", a.Voice.TicketsSince(t0.AddDate(0, 0, -30)), 1},
			{"failed payments and unpaid ones", fmtPair(a.Billing.FailuresSince(t0.AddDate(0, 0, -30))), "1/0"},
			{"newest history point", a.Health.History[len(a.Health.History)-1], Point{Day: today, Score: 60, Band: BandNormal}},
		}
		for _, tt := range tests {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		}
	}
	check(t, &a, 2)
	if len(a.Health.History) != 35 {
		t.Errorf("%d history points read, want the 35 stored", len(a.Health.History))
	}
	a.Usage.Record("alice", t0, true) // the same user, hashed now, is the one read back
	if n := a.Usage.Users.Len(); n != 2 {
		t.Errorf("after alice is active again the set holds %d users, want 2", n)
	}
	a.Health.Record(Day(t0), 60, BandNormal)
	if len(a.Health.History) > MaxHistory {
		t.Errorf("the next score keeps %d history points on the account, want at most %d", len(a.Health.History), MaxHistory)
	}
	b, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	var back Account
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("the rewritten account does not decode: %v", err)
	}
	check(t, &back, 3)
	if len(b) >= len(baselineAccount) {
		t.Errorf("rewritten, the account is %d bytes, not smaller than the %d it was", len(b), len(baselineAccount))
	}
}

func fmtPair(a, b int) string { return string(rune('0'+a)) + "/" + string(rune('0'+b)) }

func TestAUserSetOfTheEarlier24BitFormatStillReads(t *testing.T) {
	var s UserSet
	if err := json.Unmarshal([]byte(baselineUsers), &s); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || s.ActiveSince(20000, 1) != 2 || s.ActiveSince(20000, 11) != 3 {
		t.Fatalf("read %d users, %d active on day 20000, want 3 and 2", s.Len(), s.ActiveSince(20000, 1))
	}
	s.Touch("bob", 20000)
	if s.Len() != 3 || s.ActiveSince(20000, 1) != 3 {
		t.Errorf("bob active again: %d users, %d active today; want bob recognized (3 and 3)", s.Len(), s.ActiveSince(20000, 1))
	}
}

func TestCompactListsRoundTripAndRefuseGarbage(t *testing.T) {
	days := DayCounts{{Day: 20000, Events: 3}, {Day: 20001, Events: 0}, {Day: 20030, Events: 1 << 20}}
	b, err := json.Marshal(days)
	if err != nil {
		t.Fatal(err)
	}
	var back DayCounts
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, days) {
		t.Fatalf("day counts %s read back as %v, %v; want %v", b, back, err, days)
	}
	pts := Points{{Day: 20000, Score: 90, Band: BandGood}, {Day: 20002, Score: 49, Band: BandBad}, {Day: 20003, Score: 100, Band: BandNormal}}
	b, _ = json.Marshal(pts)
	var pback Points
	if err := json.Unmarshal(b, &pback); err != nil || !reflect.DeepEqual(pback, pts) {
		t.Fatalf("points %s read back as %v, %v; want %v", b, pback, err, pts)
	}
	for _, garbage := range []string{`"!!"`, `"/w"`, `"AQ"`} {
		if json.Unmarshal([]byte(garbage), &back) == nil && len(back) > 0 {
			t.Errorf("garbage %s read as day counts %v", garbage, back)
		}
		if json.Unmarshal([]byte(garbage), &pback) == nil && len(pback) > 0 {
			t.Errorf("garbage %s read as points %v", garbage, pback)
		}
	}
}
