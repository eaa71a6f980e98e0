package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/churnsignal/churnsignal/shared/score"
	"github.com/churnsignal/churnsignal/shared/store"
)

func raws(ss ...string) []json.RawMessage {
	var out []json.RawMessage
	for _, s := range ss {
		out = append(out, json.RawMessage(s))
	}
	return out
}

// interfering runs another request at a chosen moment and fails Held reads on demand, as a
// concurrent request and a store timeout would.
type interfering struct {
	store.Store
	afterLinks, beforeHold func()
	failHeld               bool
}

func (s *interfering) Links(ctx context.Context, keys []string) (map[string]store.Target, error) {
	out, err := s.Store.Links(ctx, keys)
	if f := s.afterLinks; f != nil {
		s.afterLinks = nil
		f()
	}
	return out, err
}

func (s *interfering) Hold(ctx context.Context, h store.Held) error {
	if f := s.beforeHold; f != nil {
		s.beforeHold = nil
		f()
	}
	return s.Store.Hold(ctx, h)
}

func (s *interfering) Held(ctx context.Context, user string) ([]store.Held, error) {
	if s.failHeld {
		return nil, errors.New("i/o timeout")
	}
	return s.Store.Held(ctx, user)
}

func TestHeldMessagesAreNeverStrandedWhateverTheInterleaving(t *testing.T) {
	hold := `{"type":"track","messageId":"h1","userId":"bob","event":"Report Created","timestamp":"2026-11-20T09:00:00Z"}`
	link := `{"type":"group","messageId":"l1","userId":"bob","groupId":"acme","timestamp":"2026-11-20T09:01:00Z"}`
	later := `{"type":"track","messageId":"l2","userId":"bob","event":"Signed In","timestamp":"2026-11-20T09:02:00Z"}`
	tests := []struct {
		name string
		run  func(t *testing.T, plain *Service, st *interfering)
	}{
		{"a message is held while the linking request runs, and the linker's release fails", func(t *testing.T, plain *Service, st *interfering) {
			st.afterLinks = func() { // the holder runs between the linker's reads and its commit
				if r, err := plain.Product(context.Background(), raws(hold), now); err != nil || r.Held != 1 {
					t.Fatalf("holder: %+v %v", r, err)
				}
				st.failHeld = true
			}
			linker := &Service{Store: st, Scorecard: score.Default()}
			if _, err := linker.Product(context.Background(), raws(link), now); err == nil {
				t.Fatal("the linker's failed release went unreported")
			}
		}},
		{"the user is linked while a message is being held, and the holder's release fails", func(t *testing.T, plain *Service, st *interfering) {
			st.beforeHold = func() {
				if _, err := plain.Product(context.Background(), raws(link), now); err != nil {
					t.Fatal(err)
				}
				st.failHeld = true
			}
			holder := &Service{Store: st, Scorecard: score.Default()}
			if _, err := holder.Product(context.Background(), raws(hold), now); err == nil {
				t.Fatal("the holder's failed release went unreported")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, st := newService(t)
			is := &interfering{Store: st}
			tt.run(t, plain, is)
			is.failHeld = false
			// Nobody retries; the user simply goes on using the product.
			if _, err := plain.Product(context.Background(), raws(later), now); err != nil {
				t.Fatal(err)
			}
			if hs, _ := st.Held(context.Background(), "bob"); len(hs) != 0 {
				t.Errorf("%d held messages stranded", len(hs))
			}
			a, _ := st.Get(context.Background(), "acme")
			if _, ok := a.Usage.Features["Report Created"]; !ok {
				t.Error("the held message was never applied")
			}
		})
	}
}

func TestAKnownUserOnANewDeviceCountsOnce(t *testing.T) {
	svc, st := newService(t)
	for _, m := range []string{
		`{"type":"group","messageId":"g1","userId":"alice","groupId":"acme","timestamp":"2026-11-20T08:00:00Z"}`,
		`{"type":"page","messageId":"p1","anonymousId":"dev2","timestamp":"2026-11-20T09:00:00Z"}`, // held: nobody knows dev2
		`{"type":"identify","messageId":"i1","userId":"alice","anonymousId":"dev2","timestamp":"2026-11-20T09:05:00Z"}`,
	} {
		if _, err := svc.Product(context.Background(), raws(m), now); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := st.Get(context.Background(), "acme")
	if n := a.Usage.Users.Len(); n != 1 {
		t.Errorf("%d users, want 1 (alice on a new device)", n)
	}
	if a.Usage.EventsBetween(0, 1<<30) != 1 {
		t.Errorf("the anonymous page was not released")
	}
}

func TestAHeldMessageThatNoLongerParsesIsDroppedNotBlocking(t *testing.T) {
	svc, st := newService(t)
	ctx := context.Background()
	if err := st.Hold(ctx, store.Held{User: "dave", MessageID: "bad", Body: []byte(`{"type":"track","messageId":"bad"}`), At: now, Expires: now.Add(HeldTTL)}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{
		`{"type":"group","messageId":"d1","userId":"dave","groupId":"acme","timestamp":"2026-11-20T09:01:00Z"}`,
		`{"type":"track","messageId":"d2","userId":"dave","event":"Signed In","timestamp":"2026-11-20T09:02:00Z"}`,
	} {
		if _, err := svc.Product(ctx, raws(m), now); err != nil {
			t.Errorf("a request of the user failed: %v", err)
		}
	}
	if hs, _ := st.Held(ctx, "dave"); len(hs) != 0 {
		t.Errorf("%d held messages remain", len(hs))
	}
}

func TestAnAnonymousVisitorWhoNeverSignsUpLeavesNothingBehind(t *testing.T) {
	svc, st, setClock := clockedService(t)
	if _, err := svc.Product(context.Background(), raws(`{"type":"page","messageId":"v-1","anonymousId":"visitor","timestamp":"2026-11-20T09:00:00Z"}`), now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Purge(setClock(now.Add(HeldTTL + time.Hour))); err != nil {
		t.Fatal(err)
	}
	if l, _ := st.Links(context.Background(), []string{"user:anon:visitor"}); len(l) != 0 {
		t.Errorf("the visitor left a link item: %+v", l)
	}
	if n, _ := st.HeldCount(context.Background(), "anon:visitor"); n != 0 {
		t.Errorf("%d held messages left", n)
	}
}

func TestAMessageAppliedAtItsReceiptTimeKeepsItsMarkerForTheCountersLife(t *testing.T) {
	tests := []struct{ name, message string }{
		{"no time of its own", `{"type":"track","messageId":"tl-1","userId":"admin","event":"Account Added User","context":{"groupId":"acme"}}`},
		{"a timestamp in the future", `{"type":"track","messageId":"f-1","userId":"admin","event":"Account Added User","timestamp":"2099-01-01T00:00:00Z","context":{"groupId":"acme"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, st, setClock := clockedService(t)
			for _, after := range []time.Duration{0, 90 * 24 * time.Hour} { // a replay 90 days later looks new
				if _, err := svc.Product(context.Background(), raws(tt.message), setClock(now.Add(after))); err != nil {
					t.Fatal(err)
				}
			}
			if a, _ := st.Get(context.Background(), "acme"); a.Usage.Members != 1 {
				t.Errorf("members %d after a replay 90 days later, want 1", a.Usage.Members)
			}
		})
	}
}
