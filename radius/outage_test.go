package radius_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	bradius "github.com/bridge-idp/bridge/radius"
	"github.com/bridge-idp/bridge/store"
)

var errCut = &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}

// cutAfterStart is push state that stops answering once the login's
// first read of its challenge (the start of its wait) has been answered:
// the store goes away while the login waits for the phone.
type cutAfterStart struct {
	store.PushState
	down atomic.Bool
}

func (s *cutAfterStart) GetChallenge(ctx context.Context, id string) (store.Challenge, error) {
	if s.down.Swap(true) {
		return store.Challenge{}, errCut
	}
	return s.PushState.GetChallenge(ctx, id)
}

func (s *cutAfterStart) CloseChallenge(ctx context.Context, id string, how store.ChallengeClose, now time.Time) (store.Challenge, error) {
	if s.down.Load() {
		return store.Challenge{}, errCut
	}
	return s.PushState.CloseChallenge(ctx, id, how, now)
}

func (s *cutAfterStart) PendingChallenges(ctx context.Context, user string, now time.Time) ([]store.Challenge, error) {
	if s.down.Load() {
		return nil, errCut
	}
	return s.PushState.PendingChallenges(ctx, user, now)
}

// TestFailmodeInFlight: a held login whose push was sent, when the store
// goes away while it waits for the phone, ends with the client's failmode
// (counted), well before the hold timeout and without blaming the phone:
// secure rejects with "unavailable", safe accepts on the first factor.
func TestFailmodeInFlight(t *testing.T) {
	for _, tc := range []struct {
		mode string
		code radius.Code
	}{
		{"secure", radius.CodeAccessReject},
		{"safe", radius.CodeAccessAccept},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			state := &cutAfterStart{PushState: memstate.New()}
			lazy := &lazyPush{}
			e := newEnv(t, func(c *bradius.Config, d *bradius.Deps) {
				for _, cl := range c.Clients {
					cl.HoldTimeout = time.Minute // the wait must end long before this
				}
				d.Push = lazy
			})
			eng, err := pushauth.New(pushauth.Config{BaseURL: e.base, MaxPerHour: 1000, MaxPerIPMinute: 1000},
				pushauth.Deps{Store: e.st, State: state, Keys: e.keys, ActivationKey: e.sealer.DeriveKey(pushauth.ActivationKeyLabel), Logger: discard()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(eng.Close)
			lazy.Store(eng)
			e.enroll("alice")
			addr := holdAddr
			if tc.mode == "safe" {
				addr = safeAddr
			}
			n := e.nas(addr, secret)
			r := n.exchange(n.accessRequest("alice", password), 30*time.Second)
			if r == nil || r.Code != tc.code {
				t.Fatalf("store gone during the wait, failmode %s: %v, want %v", tc.mode, r, tc.code)
			}
			if tc.mode == "secure" && replyMessage(r) == "No answer from your phone in time. Sign in again." {
				t.Fatal("the reject blames the phone for the store's outage")
			}
			client := "vpn-hold"
			if tc.mode == "safe" {
				client = "legacy-safe"
			}
			if got := e.counter("bridge_radius_second_factor_unavailable_total", "client", client, "failmode", tc.mode); got != 1 {
				t.Fatalf("failmode %s counted %v times, want 1", tc.mode, got)
			}
			evs := e.audited("login", "alice")
			if len(evs) != 1 || !strings.Contains(evs[0].Reason, "second factor unavailable") {
				t.Fatalf("audit: %+v", evs)
			}
		})
	}
}

// lazyPush is a push engine given after the front end was built.
type lazyPush struct {
	atomic.Pointer[pushauth.Engine]
}

func (l *lazyPush) Start(ctx context.Context, r pushauth.Request) (pushauth.Handle, error) {
	return l.Load().Start(ctx, r)
}
func (l *lazyPush) Wait(ctx context.Context, id string) (pushauth.Outcome, error) {
	return l.Load().Wait(ctx, id)
}
func (l *lazyPush) Cancel(ctx context.Context, id, r string) error {
	return l.Load().Cancel(ctx, id, r)
}
func (l *lazyPush) Resolve(ctx context.Context, id, r string) error {
	return l.Load().Resolve(ctx, id, r)
}
func (l *lazyPush) Delivered(ctx context.Context, id string) error {
	return l.Load().Delivered(ctx, id)
}

// failingAudit is an audit log that can keep nothing (store down, spool
// full).
type failingAudit struct{}

func (failingAudit) Append(context.Context, store.AuditEvent) (store.AuditEvent, error) {
	return store.AuditEvent{}, store.ErrSpoolFull
}

// TestAcceptNeedsADurableAuditEvent: an accept whose audit event cannot be
// made durable becomes a reject (fail secure); a reject still goes out.
func TestAcceptNeedsADurableAuditEvent(t *testing.T) {
	e := newEnv(t, func(_ *bradius.Config, d *bradius.Deps) { d.Push, d.Audit = failingPush{}, failingAudit{} })
	safe := e.nas(safeAddr, secret)
	if r := safe.exchange(safe.accessRequest("alice", password), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("accept without a durable audit event: %v, want reject", r)
	}
	if r := safe.exchange(safe.accessRequest("alice", "wrong"), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("reject without a durable audit event: %v, want it sent anyway", r)
	}
}
