package pushauth_test

import (
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// stationLogin is a login from one NAS station, as the RADIUS front end
// makes it, arriving at arrived.
func stationLogin(arrived time.Time) pushauth.Request {
	r := login("alice")
	r.Station = "nas-1|cs|198.51.100.7"
	r.Arrived = arrived
	r.TakeUndelivered = true
	return r
}

// TestJoinByArrival: whether a login belongs to a pending attempt is decided
// by when it arrived. A login that arrived while the push was pending, but
// whose first factor finished after the phone answered, gets that answer
// (no second push); one that arrives after the answer is a new attempt.
func TestJoinByArrival(t *testing.T) {
	for _, decision := range []string{protocol.Approve, protocol.Deny} {
		t.Run(decision, func(t *testing.T) {
			e := newEnv(t)
			dev := e.enroll("alice", authenticator.EnrollOptions{})
			arrived := e.clock.Now()
			first := e.start(stationLogin(arrived))
			e.clock.Add(time.Second)
			if _, err := dev.Answer(e.ctx, e.fetch(dev, first.ID), decision, first.Number); err != nil {
				t.Fatal(err)
			}
			if o := e.wait(first.ID); o.Approved() != (decision == protocol.Approve) {
				t.Fatalf("first login: %+v", o)
			}
			e.clock.Add(time.Second)
			// Arrived with the first, its first factor done only now.
			late := e.start(stationLogin(arrived))
			if !late.Joined || late.ID != first.ID {
				t.Fatalf("a login that arrived while the push was pending: %+v, want it joined to %s", late, first.ID)
			}
			if o := e.wait(late.ID); o.Approved() != (decision == protocol.Approve) {
				t.Fatalf("the joined login's outcome: %+v", o)
			}
			if decision == protocol.Deny {
				return // a new attempt now meets the back-off (TestDenyAndBackoff)
			}
			// Arrived after the answer, which a login was given: a new attempt.
			next, err := e.eng.Start(e.ctx, stationLogin(e.clock.Now()))
			if err != nil {
				t.Fatal(err)
			}
			if next.Joined || next.ID == first.ID {
				t.Fatalf("a login that arrived after the answer rode on it: %+v", next)
			}
		})
	}
}

// TestUndeliveredApproval: the node holding the login died, so the approval
// reached nobody. The same station's next login within the challenge's
// lifetime gets it, once; the one after that is a new push. Another
// station never does.
func TestUndeliveredApproval(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(stationLogin(e.clock.Now()))
	e.clock.Add(time.Second)
	if _, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}
	// Nobody waits for h: its node is gone.
	e.clock.Add(6 * time.Second)
	other := stationLogin(e.clock.Now())
	other.Station = "nas-1|cs|203.0.113.9"
	if o, err := e.eng.Start(e.ctx, other); err == nil && o.ID == h.ID {
		t.Fatalf("another station took the approval: %+v", o)
	}
	// The other station's login superseded nothing (h is closed); h's
	// approval is still undelivered.
	took := e.start(stationLogin(e.clock.Now()))
	if !took.Joined || took.ID != h.ID {
		t.Fatalf("the next login from the station: %+v, want the undelivered approval of %s", took, h.ID)
	}
	if o := e.wait(took.ID); !o.Approved() {
		t.Fatalf("outcome: %+v", o)
	}
	again, err := e.eng.Start(e.ctx, stationLogin(e.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if again.Joined && again.ID == h.ID {
		t.Fatal("the approval was taken twice")
	}
	if !e.audited("push.start", store.ResultSuccess, "took the approval that no login received") {
		t.Fatal("taking the undelivered approval is not audited")
	}
}

// TestUndeliveredApprovalExpires: past the challenge's lifetime an
// undelivered approval lets nobody in.
func TestUndeliveredApprovalExpires(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(stationLogin(e.clock.Now()))
	if _, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(pushauth.DefaultChallengeTTL + time.Second)
	next := e.start(stationLogin(e.clock.Now()))
	if next.Joined || next.ID == h.ID {
		t.Fatalf("an approval past its challenge's lifetime was taken: %+v", next)
	}
}

// TestDeliveredApprovalNotTaken: an approval whose login was given it (Wait
// returned it, or the front end handed it to a challenge session) is
// never taken by a later login, however late.
func TestDeliveredApprovalNotTaken(t *testing.T) {
	for _, how := range []string{"wait", "session"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			dev := e.enroll("alice", authenticator.EnrollOptions{})
			h := e.start(stationLogin(e.clock.Now()))
			if how == "session" {
				if err := e.eng.Delivered(e.ctx, h.ID); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Approve, h.Number); err != nil {
				t.Fatal(err)
			}
			if how == "wait" {
				if o := e.wait(h.ID); !o.Approved() {
					t.Fatalf("outcome: %+v", o)
				}
			}
			e.clock.Add(10 * time.Second)
			if o := e.start(stationLogin(e.clock.Now())); o.Joined || o.ID == h.ID {
				t.Fatalf("a later login took an approval its own login had: %+v", o)
			}
		})
	}
}

// TestUndeliveredApprovalNotTakenEarly: within a few seconds of the answer
// the approval is still its own login's (which may be about to see it),
// and a front end that does not ask for undelivered approvals (the web
// sign-in) never takes one: both are new attempts.
func TestUndeliveredApprovalNotTakenEarly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		take  bool
	}{
		{"within the grace", 2 * time.Second, true},
		{"not asked for", 30 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			dev := e.enroll("alice", authenticator.EnrollOptions{})
			h := e.start(stationLogin(e.clock.Now()))
			if _, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Approve, h.Number); err != nil {
				t.Fatal(err)
			}
			e.clock.Add(tc.after)
			r := stationLogin(e.clock.Now())
			r.TakeUndelivered = tc.take
			if o := e.start(r); o.Joined || o.ID == h.ID {
				t.Fatalf("the approval was taken: %+v", o)
			}
		})
	}
}
