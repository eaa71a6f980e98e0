package dynamo

import (
	"strings"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/scenario"
	"github.com/churnsignal/churnsignal/shared/store"
)

func TestCommitUnitsPriceTheItemsACommitWrites(t *testing.T) {
	exp := t0.Add(30 * 24 * time.Hour)
	small := account.New("acme", t0) // no band: not listed
	listed := acct("acme", 40, account.BandBad)
	body := strings.Repeat("x", 1500) // with its keys and attributes the item passes 1 KB
	tests := []struct {
		name string
		tx   store.Tx
		want Units
	}{
		{"one marker alone is a plain put: one unit", store.Tx{Markers: []store.Marker{{Key: "stripe:evt_1", Expires: exp}}}, Units{Table: 1}},
		{"a new account and its marker: two items twice, and the account's shard row",
			store.Tx{Accounts: []store.Put{{Account: small}}, Markers: []store.Marker{{Key: "msg:1", Expires: exp}}}, Units{Table: 4, Indexes: 1}},
		{"a listed account rewrites its risk row; an existing one has its shard row already",
			store.Tx{Accounts: []store.Put{{Account: listed, Expect: 3}}, Markers: []store.Marker{{Key: "msg:1", Expires: exp}, {Key: "msg:2", Expires: exp}}}, Units{Table: 6, Indexes: 1}},
		{"a marker named twice is written once",
			store.Tx{Accounts: []store.Put{{Account: listed, Expect: 3}}, Markers: []store.Marker{{Key: "msg:1", Expires: exp}, {Key: "msg:1", Expires: exp.Add(time.Hour)}}}, Units{Table: 4, Indexes: 1}},
		{"an outbox item over 1 KB is two units, twice, plus its outbox index entry",
			store.Tx{Accounts: []store.Put{{Account: listed, Expect: 3}}, Outbox: []store.Message{{ID: "evt", Body: []byte(body)}}}, Units{Table: 6, Indexes: 2}},
		{"a released held message and an unlink count a unit each",
			store.Tx{Release: []store.Held{{User: "u", MessageID: "m"}}, Unlink: []string{"user:u"}}, Units{Table: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CommitUnits(tt.tx, t0)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("CommitUnits = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAProductBatchOfTheScenarioCostsWhatDynamoMDReports(t *testing.T) {
	// docs/DYNAMO.md: a product message in a commit of 60 messages of one minute of the
	// 25-user account costs 0.10 table units (account 2 units, the minute's receipt 1, both
	// twice: 6 units for 60 messages).
	a := scenario.ActiveAccount(25, 1, t0)
	u, err := CommitUnits(scenario.ProductCommit(a, 60, t0), t0)
	if err != nil {
		t.Fatal(err)
	}
	if u.Table != 6 {
		t.Errorf("a product commit of 60 messages costs %d table units, docs/DYNAMO.md says 6 (0.10 a message)", u.Table)
	}
	if u.Indexes != 1 {
		t.Errorf("the commit writes %d index units, want 1 (the account's risk row)", u.Indexes)
	}
	tx, err := scenario.StripeCommit(scenario.ActiveAccount(25, 1, t0), true, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tx.Outbox) == 0 {
		t.Fatal("a subscription going past_due published nothing")
	}
	if pub := PublishedUnits(tx, t0); pub.Table < 1 || pub.Indexes != len(tx.Outbox) {
		t.Errorf("deleting %d published items costs %+v, want at least a unit each and one index unit each", len(tx.Outbox), pub)
	}
}
