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
	e.clock.Add(5 * time.Second)
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
