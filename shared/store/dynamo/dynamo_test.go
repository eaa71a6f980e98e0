package dynamo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/churnsignal/churnsignal/shared/account"
	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
	"github.com/churnsignal/churnsignal/shared/store/bolt"
	"github.com/churnsignal/churnsignal/shared/store/storetest"
)

// skipped makes the missing-emulator skip announce itself once, so it shows without -v.
var skipped sync.Once

var tables atomic.Int64

// client returns a DynamoDB client for moto_server at AWS_ENDPOINT_URL (infra/moto/start.sh;
// .ci/run starts it). Without one the tests skip, unless CHURNSIGNAL_REQUIRE_EMULATORS=1.
func client(t *testing.T) *dynamodb.Client {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		const why = "AWS_ENDPOINT_URL is not set: start moto_server with infra/moto/start.sh"
		if os.Getenv("CHURNSIGNAL_REQUIRE_EMULATORS") == "1" {
			t.Fatal(why)
		}
		skipped.Do(func() {
			var w io.Writer = os.Stderr
			if f, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
				defer f.Close()
				w = f
			}
			fmt.Fprintln(w, "churnsignal: SKIP "+why+": store/dynamo tests skipped")
		})
		t.Skip(why)
	}
	// moto_server is not thread-safe: a transaction rolls back by restoring a copy of the table,
	// which can undo another request's write or fail copying it (a 500). One connection makes
	// it serve one request at a time, so the suite tests this adapter, not moto's races.
	serial := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.MaxConnsPerHost = 1 })
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(envOr("AWS_REGION", "us-east-1")), config.WithHTTPClient(serial),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: envOr("AWS_ACCESS_KEY_ID", "test"), SecretAccessKey: envOr("AWS_SECRET_ACCESS_KEY", "test")}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// freshTable creates a table of its own for t on moto and deletes it afterwards.
func freshTable(t *testing.T, db *dynamodb.Client) string {
	t.Helper()
	name := fmt.Sprintf("churnsignal-test-%d-%d", time.Now().UnixNano(), tables.Add(1))
	ctx := context.Background()
	if err := CreateTable(ctx, db, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}) })
	return name
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db := client(t)
		return New(db, freshTable(t, db))
	})
}

var ctx = context.Background()

func acct(id string, score int, band string) *account.Account {
	a := account.New(id, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	a.Health.Score, a.Health.Band = score, band
	return a
}

func TestEveryCancellationReasonNamesTheItemThatFailed(t *testing.T) {
	db := client(t)
	s := New(db, freshTable(t, db))
	exp := time.Now().Add(time.Hour)
	if err := s.Commit(ctx, store.Tx{
		Accounts: []store.Put{{Account: acct("acme", 50, account.BandNormal)}},
		Markers:  []store.Marker{{Key: "stripe:evt_1", Expires: exp}},
		Links:    []store.Link{{Key: "stripe:cus_1", Account: "acme"}},
	}); err != nil {
		t.Fatal(err)
	}
	fresh := func() *account.Account { a, _ := s.Get(ctx, "acme"); return a }
	tests := []struct {
		name    string
		tx      store.Tx
		on, key string
	}{
		{"a new account that exists already", store.Tx{Markers: []store.Marker{{Key: "msg:a", Expires: exp}},
			Accounts: []store.Put{{Account: acct("acme", 10, account.BandBad)}}}, store.OnAccount, "acme"},
		{"a stale version", store.Tx{Accounts: []store.Put{{Account: fresh(), Expect: 7}}}, store.OnAccount, "acme"},
		{"a live marker", store.Tx{Accounts: []store.Put{{Account: fresh(), Expect: 1}},
			Markers: []store.Marker{{Key: "msg:new", Expires: exp}, {Key: "stripe:evt_1", Expires: exp}}}, store.OnMarker, "stripe:evt_1"},
		{"a link that exists when none was expected", store.Tx{Links: []store.Link{{Key: "user:u1", Account: "acme"}, {Key: "stripe:cus_1", Account: "globex"}}},
			store.OnLink, "stripe:cus_1"},
		{"a link that points elsewhere", store.Tx{Links: []store.Link{{Key: "stripe:cus_1", Account: "globex", Expect: "initech"}}}, store.OnLink, "stripe:cus_1"},
		{"a link expected where there is none", store.Tx{Links: []store.Link{{Key: "user:nobody", Account: "globex", Expect: "acme"}}}, store.OnLink, "user:nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Commit(ctx, tt.tx)
			var ce *store.ConflictError
			if !errors.As(err, &ce) || fault.KindOf(err) != fault.Conflict {
				t.Fatalf("Commit = %v, want a *store.ConflictError", err)
			}
			if ce.On != tt.on || ce.Key != tt.key {
				t.Errorf("conflict on %s %q, want on %s %q", ce.On, ce.Key, tt.on, tt.key)
			}
		})
	}
}

// fake wraps a real client and lets a test replace single calls.
type fake struct {
	API
	batchGet func(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	transact func(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	get      func(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

func (f *fake) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	if f.batchGet != nil {
		return f.batchGet(ctx, in, opts...)
	}
	return f.API.BatchGetItem(ctx, in, opts...)
}

func (f *fake) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if f.transact != nil {
		return f.transact(ctx, in, opts...)
	}
	return f.API.TransactWriteItems(ctx, in, opts...)
}

func (f *fake) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.get != nil {
		return f.get(ctx, in, opts...)
	}
	return f.API.GetItem(ctx, in, opts...)
}

func TestUnprocessedKeysAreRequestedAgain(t *testing.T) {
	db := client(t)
	table := freshTable(t, db)
	exp := time.Now().Add(time.Hour)
	var markers []store.Marker
	var keys []string
	for i := 0; i < 150; i++ { // two BatchGetItem requests: 100 and 50 keys
		k := fmt.Sprintf("msg:%03d", i)
		keys = append(keys, k)
		if i%3 == 0 {
			markers = append(markers, store.Marker{Key: k, Expires: exp})
		}
	}
	seed := New(db, table)
	for i := 0; i < len(markers); i += 50 {
		if err := seed.Commit(ctx, store.Tx{Markers: markers[i:min(i+50, len(markers))]}); err != nil {
			t.Fatal(err)
		}
	}
	var calls, held atomic.Int32
	// The first request of each chunk answers only its first 10 keys and hands the rest back
	// as unprocessed, as DynamoDB does over 16 MB or under throttling.
	f := &fake{API: db}
	f.batchGet = func(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
		n := calls.Add(1)
		req := in.RequestItems[table]
		if n == 1 || n == 3 {
			part := req
			part.Keys = req.Keys[:10]
			out, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: part}})
			if err != nil {
				return nil, err
			}
			rest := req
			rest.Keys = req.Keys[10:]
			held.Add(int32(len(rest.Keys)))
			out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: rest}
			return out, nil
		}
		if !aws.ToBool(req.ConsistentRead) {
			t.Error("a retried request lost ConsistentRead")
		}
		return db.BatchGetItem(ctx, in, opts...)
	}
	s := New(f, table, WithBatchRetries(3, time.Millisecond))
	seen, err := s.Seen(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(markers) || held.Load() == 0 {
		t.Fatalf("Seen found %d of %d markers (%d keys handed back unprocessed)", len(seen), len(markers), held.Load())
	}
	for _, m := range markers {
		if !seen[m.Key] {
			t.Errorf("%s not seen after its key came back unprocessed", m.Key)
		}
	}

	// Keys that stay unprocessed past the retries are a transient failure, not an absence.
	f.batchGet = func(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
		return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems}, nil
	}
	if got, err := s.Links(ctx, []string{"stripe:cus_1"}); fault.KindOf(err) != fault.Transient {
		t.Errorf("Links with keys never processed = %v, %v; want a transient error", got, err)
	}
}

func TestThrottlingIsTransientAndValidationPermanent(t *testing.T) {
	db := client(t)
	table := freshTable(t, db)
	throttled := func(code string) error {
		return &smithy.GenericAPIError{Code: code, Message: "slow down"}
	}
	reasons := func(codes ...string) error {
		var rs []types.CancellationReason
		for _, c := range codes {
			rs = append(rs, types.CancellationReason{Code: aws.String(c)})
		}
		return &types.TransactionCanceledException{Message: aws.String("cancelled"), CancellationReasons: rs}
	}
	tx := store.Tx{Accounts: []store.Put{{Account: acct("acme", 50, account.BandNormal)}},
		Markers: []store.Marker{{Key: "msg:1", Expires: time.Now().Add(time.Hour)}}}
	tests := []struct {
		name string
		err  error
		want fault.Kind
	}{
		{"a ThrottlingException", throttled("ThrottlingException"), fault.Transient},
		{"ProvisionedThroughputExceeded", &types.ProvisionedThroughputExceededException{Message: aws.String("over")}, fault.Transient},
		{"a transaction cancelled by throttling", reasons("None", "ThrottlingError"), fault.Transient},
		{"a transaction cancelled over provisioned throughput", reasons("ProvisionedThroughputExceeded", "None"), fault.Transient},
		{"a transaction in conflict with another", reasons("None", "TransactionConflict"), fault.Conflict},
		{"a validation error", throttled("ValidationException"), fault.Permanent},
		{"an item DynamoDB finds too large", &smithy.GenericAPIError{Code: "ValidationException", Message: "Item size has exceeded the maximum allowed size"}, fault.Permanent},
		{"a transaction cancelled by validation", reasons("ValidationError", "None"), fault.Permanent},
		{"a timeout", context.DeadlineExceeded, fault.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{API: db, transact: func(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
				return nil, tt.err
			}, get: func(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
				return nil, tt.err
			}}
			s := New(f, table)
			err := s.Commit(ctx, tx)
			if got := fault.KindOf(err); got != tt.want {
				t.Errorf("Commit failing with %v: kind %v (%v), want %v", tt.err, got, err, tt.want)
			}
			if strings.Contains(tt.err.Error(), "maximum allowed size") && !errors.Is(err, store.ErrTooLarge) {
				t.Errorf("Commit refused for size: %v, want store.ErrTooLarge", err)
			}
			if tt.want == fault.Conflict {
				var ce *store.ConflictError
				if !errors.As(err, &ce) || ce.On != store.OnMarker || ce.Key != "msg:1" {
					t.Errorf("TransactionConflict on the second item = %v, want a conflict on marker msg:1", err)
				}
				return
			}
			var tce *types.TransactionCanceledException
			if errors.As(tt.err, &tce) {
				return // only a transaction is cancelled
			}
			if _, err := s.Get(ctx, "acme"); fault.KindOf(err) != tt.want {
				t.Errorf("Get failing with %v: kind %v, want %v", tt.err, fault.KindOf(err), tt.want)
			}
		})
	}
}

// TestItemsPastTheirExpiryAreAbsentBeforeTTLDeletesThem writes items that expire by the
// store's clock but that DynamoDB's TTL (days late, and never on moto) has not deleted.
func TestItemsPastTheirExpiryAreAbsentBeforeTTLDeletesThem(t *testing.T) {
	db := client(t)
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(db, freshTable(t, db), WithClock(func() time.Time { return clock }))
	past, future := clock.Add(-time.Hour), clock.Add(time.Hour)
	// By the wall clock (2026) all of these are live; by the store's clock half are expired.
	mustCommit(t, s, store.Tx{Markers: []store.Marker{{Key: "msg:old", Expires: past}, {Key: "msg:new", Expires: future}},
		History: []store.Point{{Account: "acme", Day: 100, Score: 10, Band: account.BandBad, Expires: past},
			{Account: "acme", Day: 101, Score: 20, Band: account.BandBad, Expires: future}}})
	for _, h := range []store.Held{{User: "u", MessageID: "old", Body: []byte(`{}`), At: past, Expires: past},
		{User: "u", MessageID: "new", Body: []byte(`{}`), At: past, Expires: future}} {
		if err := s.Hold(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if seen, err := s.Seen(ctx, []string{"msg:old", "msg:new"}); err != nil || seen["msg:old"] || !seen["msg:new"] {
		t.Errorf("Seen = %v, %v; want only msg:new", seen, err)
	}
	if hs, err := s.Held(ctx, "u"); err != nil || len(hs) != 1 || hs[0].MessageID != "new" {
		t.Errorf("Held = %+v, %v; want only new", hs, err)
	}
	if n, err := s.HeldCount(ctx, "u"); err != nil || n != 1 {
		t.Errorf("HeldCount = %d, %v; want 1", n, err)
	}
	if ps, err := s.History(ctx, "acme", 0, 200); err != nil || len(ps) != 1 || ps[0].Day != 101 {
		t.Errorf("History = %+v, %v; want day 101 only", ps, err)
	}
	// An expired marker does not block the delivery it recorded from being applied again.
	if err := s.Commit(ctx, store.Tx{Markers: []store.Marker{{Key: "msg:old", Expires: future}}}); err != nil {
		t.Errorf("re-marking a marker expired by the store's clock: %v", err)
	}
	if err := s.Commit(ctx, store.Tx{Markers: []store.Marker{{Key: "msg:new", Expires: future}}}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("re-marking a live marker: %v, want a conflict", err)
	}
}

func mustCommit(t *testing.T, s *Store, tx store.Tx) {
	t.Helper()
	if err := s.Commit(ctx, tx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// TestOutboxItemsOfAnAccountSortInCommitOrder checks the layout the publisher relies on: an
// account's outbox items share its partition and sort by version, then place in the commit,
// and a failed commit leaves none.
func TestOutboxItemsOfAnAccountSortInCommitOrder(t *testing.T) {
	db := client(t)
	table := freshTable(t, db)
	s := New(db, table)
	a := acct("acme", 50, account.BandNormal)
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: a}}, Outbox: []store.Message{{ID: "e1"}, {ID: "e2", Attributes: map[string]string{"type": "churn_risk.raised"}}}})
	a, _ = s.Get(ctx, "acme")
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: a, Expect: a.Version}}, Outbox: []store.Message{{ID: "e3", Body: []byte(`{"n":3}`)}}})
	if err := s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: a, Expect: a.Version}}, Outbox: []store.Message{{ID: "lost"}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale commit: %v", err)
	}
	out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: &table, KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str("O#acme")}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, item := range out.Items {
		ids = append(ids, getS(item, "id"))
		if _, ok := item[attrExpires]; !ok {
			t.Errorf("outbox item %s has no TTL", getS(item, "id"))
		}
	}
	if strings.Join(ids, " ") != "e1 e2 e3" {
		t.Errorf("outbox items of acme = %v, want e1 e2 e3 (commit order, nothing from the failed commit)", ids)
	}
	if m, ok := out.Items[1]["attrs"].(*types.AttributeValueMemberM); !ok || getS(m.Value, "type") != "churn_risk.raised" {
		t.Errorf("outbox attributes lost: %v", out.Items[1]["attrs"])
	}
}

// counting counts the write calls that reach the client.
type counting struct {
	API
	puts, transactions atomic.Int32
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.puts.Add(1)
	return c.API.PutItem(ctx, in, opts...)
}

func (c *counting) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.transactions.Add(1)
	return c.API.TransactWriteItems(ctx, in, opts...)
}

func TestASingleItemCommitIsAPlainConditionalPutAtHalfTheCost(t *testing.T) {
	db := client(t)
	c := &counting{API: db}
	s := New(c, freshTable(t, db))
	exp := time.Now().Add(time.Hour)
	mustCommit(t, s, store.Tx{Markers: []store.Marker{{Key: "msg:1", Expires: exp}}})
	err := s.Commit(ctx, store.Tx{Markers: []store.Marker{{Key: "msg:1", Expires: exp}}})
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.On != store.OnMarker || ce.Key != "msg:1" {
		t.Errorf("marking a live marker again with a plain put: %v, want a conflict on marker msg:1", err)
	}
	mustCommit(t, s, store.Tx{Accounts: []store.Put{{Account: acct("acme", 50, account.BandNormal)}}})
	if err := s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: acct("acme", 50, account.BandNormal), Expect: 3}}}); !errors.As(err, &ce) || ce.On != store.OnAccount {
		t.Errorf("a stale single put: %v, want a conflict on the account", err)
	}
	if c.puts.Load() != 4 || c.transactions.Load() != 0 {
		t.Errorf("4 one-item commits made %d PutItem and %d TransactWriteItems calls, want 4 and 0", c.puts.Load(), c.transactions.Load())
	}
	mustCommit(t, s, store.Tx{Markers: []store.Marker{{Key: "msg:2", Expires: exp}, {Key: "msg:3", Expires: exp}}})
	if c.transactions.Load() != 1 {
		t.Errorf("a two-item commit made %d transactions, want 1", c.transactions.Load())
	}
}

// TestATransactionNamingAnItemTwiceCommitsAsBoltDoes runs the same commits on bolt and on
// DynamoDB, which refuses a transaction that touches one item twice: the adapter must write
// such a Tx once per item, with the outcome bolt gives.
func TestATransactionNamingAnItemTwiceCommitsAsBoltDoes(t *testing.T) {
	db := client(t)
	exp := time.Now().Add(time.Hour)
	later := exp.Add(time.Hour)
	tests := []struct {
		name string
		tx   store.Tx
	}{
		{"the same marker twice", store.Tx{Markers: []store.Marker{{Key: "msg:1", Expires: exp}, {Key: "msg:1", Expires: later}}}},
		{"the same day's point twice", store.Tx{History: []store.Point{{Account: "acme", Day: 10, Score: 50, Band: account.BandNormal, Expires: exp},
			{Account: "acme", Day: 10, Score: 20, Band: account.BandBad, Expires: exp}}}},
		{"a link that is also unlinked", store.Tx{Links: []store.Link{{Key: "user:u1", Account: "acme"}}, Unlink: []string{"user:u1", "user:u0"}}},
		{"a link unlinked whose condition fails", store.Tx{Links: []store.Link{{Key: "user:u0", Account: "globex"}}, Unlink: []string{"user:u0"}}},
		{"a held message released twice", store.Tx{Release: []store.Held{{User: "u", MessageID: "m1"}, {User: "u", MessageID: "m1"}},
			Markers: []store.Marker{{Key: "msg:1", Expires: exp}}}},
		{"one link forced and expected", store.Tx{Links: []store.Link{{Key: "user:u0", Account: "globex", Force: true}, {Key: "user:u0", Account: "initech", Expect: "acme"}}}},
		{"one link expected at two targets", store.Tx{Links: []store.Link{{Key: "user:u0", Account: "globex", Expect: "acme"}, {Key: "user:u0", Account: "initech", Expect: "globex"}}}},
		{"one account at two versions", store.Tx{Accounts: []store.Put{{Account: acct("acme", 50, account.BandNormal), Expect: 1}, {Account: acct("acme", 40, account.BandBad)}}}},
		{"the same receipt twice", store.Tx{Accounts: []store.Put{{Account: acct("acme", 50, account.BandNormal), Expect: 1}},
			Receipts: []store.Receipt{{ReceiptKey: store.ReceiptKey{Account: "acme", Bucket: 7}, IDs: []uint64{1}, Expires: exp},
				{ReceiptKey: store.ReceiptKey{Account: "acme", Bucket: 7}, IDs: []uint64{1, 2}, Expires: later}}}},
	}
	observe := func(s store.Store, err error) string {
		seen, _ := s.Seen(ctx, []string{"msg:1"})
		links, _ := s.Links(ctx, []string{"user:u0", "user:u1"})
		hist, _ := s.History(ctx, "acme", 0, 100)
		held, _ := s.Held(ctx, "u")
		a, _ := s.Get(ctx, "acme")
		rk := store.ReceiptKey{Account: "acme", Bucket: 7}
		recs, _ := s.Received(ctx, []store.ReceiptKey{rk})
		var days []string
		for _, p := range hist {
			days = append(days, fmt.Sprintf("%d:%d:%s", p.Day, p.Score, p.Band))
		}
		return fmt.Sprintf("conflict %v, seen %v, links %v, history %v, held %d, account v%d score %d, receipt %v until %d",
			errors.Is(err, store.ErrConflict), seen, links, days, len(held), a.Version, a.Health.Score, recs[rk].IDs, recs[rk].Expires.Unix())
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bolt.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			d := New(db, freshTable(t, db))
			var got [2]string
			for i, s := range []store.Store{b, d} {
				if err := s.Commit(ctx, store.Tx{Accounts: []store.Put{{Account: acct("acme", 60, account.BandNormal)}},
					Links: []store.Link{{Key: "user:u0", Account: "acme"}}}); err != nil {
					t.Fatal(err)
				}
				if err := s.Hold(ctx, store.Held{User: "u", MessageID: "m1", Body: []byte(`{}`), At: time.Now(), Expires: exp}); err != nil {
					t.Fatal(err)
				}
				err := s.Commit(ctx, tt.tx)
				if err != nil && !errors.Is(err, store.ErrConflict) {
					t.Fatalf("store %d: %v", i, err)
				}
				got[i] = observe(s, err)
			}
			if got[0] != got[1] {
				t.Errorf("bolt:   %s\ndynamo: %s", got[0], got[1])
			}
		})
	}
}
