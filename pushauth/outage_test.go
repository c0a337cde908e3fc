package pushauth_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

var errCut = &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}

// cutState is push state whose store the test can take away: with down
// every call fails as on a cut connection; with closesDown only closing a
// challenge does (reads still answer).
type cutState struct {
	store.PushState
	down, closesDown atomic.Bool
}

func (s *cutState) GetChallenge(ctx context.Context, id string) (store.Challenge, error) {
	if s.down.Load() {
		return store.Challenge{}, errCut
	}
	return s.PushState.GetChallenge(ctx, id)
}

func (s *cutState) PendingChallenges(ctx context.Context, user string, now time.Time) ([]store.Challenge, error) {
	if s.down.Load() {
		return nil, errCut
	}
	return s.PushState.PendingChallenges(ctx, user, now)
}

func (s *cutState) CloseChallenge(ctx context.Context, id string, how store.ChallengeClose, now time.Time) (store.Challenge, error) {
	if s.down.Load() || s.closesDown.Load() {
		return store.Challenge{}, errCut
	}
	return s.PushState.CloseChallenge(ctx, id, how, now)
}

func newCutEnv(t *testing.T) (*env, *cutState) {
	t.Helper()
	cs := &cutState{PushState: memstate.New()}
	return newNode(t, sqliteStore(t), cs, nil), cs
}

// TestWaitEndsWhenTheStoreGoesAway: a login waiting for the phone when
// the store stops answering ends within seconds with ErrUnavailable (the
// front end's failmode), not at its deadline as if the phone had not
// answered.
func TestWaitEndsWhenTheStoreGoesAway(t *testing.T) {
	e, cs := newCutEnv(t)
	e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.eng.Wait(ctx, h.ID)
		done <- err
	}()
	cs.down.Store(true)
	err := <-done
	if !errors.Is(err, pushauth.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with the store gone: %v, want ErrUnavailable (not the deadline)", err)
	}
}

// TestWaitDeadlineWithStoreDown: a wait whose deadline comes while its
// last read of the challenge failed ends with ErrUnavailable too.
func TestWaitDeadlineWithStoreDown(t *testing.T) {
	e, cs := newCutEnv(t)
	e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	cs.down.Store(true)
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := e.eng.Wait(ctx, h.ID); !errors.Is(err, pushauth.ErrUnavailable) {
		t.Fatalf("wait ending with the store down: %v, want ErrUnavailable", err)
	}
}

// TestCancelWhileStoreDownIsRetried: a cancel the store did not take is
// queued and done once the store answers again; the phone that answers
// right after the store returns is refused (the login ended), never
// approved.
func TestCancelWhileStoreDownIsRetried(t *testing.T) {
	e, cs := newCutEnv(t)
	phone := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(phone, h.ID)
	cs.down.Store(true)
	if err := e.eng.Cancel(e.ctx, h.ID, "no answer within the RADIUS hold timeout"); err != nil {
		t.Fatalf("cancel with the store down: %v (want it queued)", err)
	}
	cs.down.Store(false)
	_, err := phone.Answer(e.ctx, c, protocol.Approve, h.Number)
	serverErr(t, err, 409, protocol.ErrAlreadyAnswered)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		got, err := e.state.GetChallenge(e.ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == store.ChallengeCancelled {
			break
		}
		if got.State != store.ChallengePending || time.Now().After(deadline) {
			t.Fatalf("challenge is %s, want cancelled by the retried close", got.State)
		}
	}
}

// TestQueuedCancelHidesTheChallenge: while a cancel waits for the store,
// this node does not list the challenge to the phone and refuses an
// answer to it.
func TestQueuedCancelHidesTheChallenge(t *testing.T) {
	e, cs := newCutEnv(t)
	phone := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(phone, h.ID)
	cs.closesDown.Store(true)
	if err := e.eng.Cancel(e.ctx, h.ID, "no answer within the RADIUS hold timeout"); err != nil {
		t.Fatalf("cancel with the store down: %v (want it queued)", err)
	}
	pending, err := phone.Pending(e.ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pending {
		if p.ID == h.ID {
			t.Fatal("a challenge whose login ended is listed as pending")
		}
	}
	_, err = phone.Answer(e.ctx, c, protocol.Approve, h.Number)
	serverErr(t, err, 409, protocol.ErrAlreadyAnswered)
}
