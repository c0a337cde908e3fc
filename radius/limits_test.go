package radius_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/bridge-idp/bridge/directory"
	bradius "github.com/bridge-idp/bridge/radius"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/postgres/pgtest"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
)

// countingDir counts the first factors the directory is asked to check.
type countingDir struct {
	directory.Directory
	n atomic.Int64
}

func (d *countingDir) Authenticate(ctx context.Context, user, pw string) (directory.Identity, error) {
	d.n.Add(1)
	return d.Directory.Authenticate(ctx, user, pw)
}

// withCounting makes every client's directory count its calls.
func withCounting(d *countingDir) envOption {
	return func(c *bradius.Config, _ *bradius.Deps) {
		for _, cl := range c.Clients {
			if d.Directory == nil {
				d.Directory = cl.Directory
			}
			if cl.Directory.Name() == d.Directory.Name() {
				cl.Directory = d
			}
		}
	}
}

func withCalling(id string) reqOpt {
	return func(p *radius.Packet) { rfc2865.CallingStationID_SetString(p, id) }
}

// lockedOut reports whether r is the first-factor lockout's answer.
func lockedOut(r *radius.Packet) bool {
	return r != nil && r.Code == radius.CodeAccessReject && strings.Contains(rfc2865.ReplyMessage_GetString(r), "Too many failed sign-ins")
}

// TestFirstFactorLockoutPerUser (defect 9): wrong passwords were not
// limited at all. Ten wrong passwords for a user name, from different
// addresses, lock it: the eleventh login is refused with the same answer
// whether the password is right or not, and the directory is not asked.
// Unknown user names count the same (no enumeration).
func TestFirstFactorLockoutPerUser(t *testing.T) {
	dir := &countingDir{}
	e := newEnv(t, withCounting(dir))
	n := e.nas(holdAddr, secret)
	for _, user := range []string{"alice", "nobody"} {
		for i := range bradius.DefaultFailuresPerUser {
			r := n.exchange(n.accessRequest(user, "wrong", withCalling(fmt.Sprintf("198.51.100.%d", i+1))), wait)
			if r == nil || r.Code != radius.CodeAccessReject || lockedOut(r) {
				t.Fatalf("%s: wrong password %d: %v, want a plain reject", user, i+1, r)
			}
		}
		asked := dir.n.Load()
		for _, pw := range []string{password, "wrong"} {
			r := n.exchange(n.accessRequest(user, pw, withCalling("198.51.100.200")), wait)
			if !lockedOut(r) {
				t.Fatalf("%s: login after %d wrong passwords (password %q): %v, want the lockout reject", user, bradius.DefaultFailuresPerUser, pw, r)
			}
		}
		if got := dir.n.Load(); got != asked {
			t.Fatalf("%s: the directory was asked %d times while the user was locked", user, got-asked)
		}
	}
	// Another user is not affected.
	if r := n.exchange(n.accessRequest("bob", "wrong", withCalling("198.51.100.201")), wait); r == nil || lockedOut(r) {
		t.Fatalf("another user: %v, want a plain reject", r)
	}
	evs := e.audited("login", "alice")
	if len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Reason, "too many failed first factors for this user name") ||
		evs[len(evs)-1].Result != store.ResultDenied {
		t.Fatalf("the lockout is not in the audit log: %+v", evs[len(evs)-1])
	}
	if got := e.counter("bridge_radius_first_factor_lockouts_total", "limit", "user"); got != 4 {
		t.Errorf("lockouts metric = %v, want 4", got)
	}
}

// TestFirstFactorLockoutPerAddress: the end user's address behind a NAS
// (Calling-Station-Id) is limited on its own, so one attacker behind a NAS
// does not lock the other users of that NAS; logins whose
// Calling-Station-Id is no address count against the client as a whole.
func TestFirstFactorLockoutPerAddress(t *testing.T) {
	e := newEnv(t, func(c *bradius.Config, _ *bradius.Deps) {
		for _, cl := range c.Clients {
			cl.FailuresPerIP, cl.FailuresPerClient = 3, 2
		}
	})
	n := e.nas(holdAddr, secret)
	for i := range 3 {
		if r := n.exchange(n.accessRequest(fmt.Sprint("user", i), "wrong", withCalling("2001:db8:1:2::7")), wait); lockedOut(r) {
			t.Fatalf("wrong password %d from the address: locked already", i+1)
		}
	}
	// The same /64: locked, for any user.
	if r := n.exchange(n.accessRequest("alice", password, withCalling("2001:db8:1:2::99")), wait); !lockedOut(r) {
		t.Fatalf("login from the address's /64 after 3 failures: %v, want the lockout reject", r)
	}
	// Another address behind the same NAS is not.
	if r := n.exchange(n.accessRequest("alice", "wrong", withCalling("2001:db8:1:3::7")), wait); r == nil || lockedOut(r) {
		t.Fatalf("another address: %v, want a plain reject", r)
	}
	// MAC addresses: counted per client.
	for i := range 2 {
		if r := n.exchange(n.accessRequest(fmt.Sprint("mac", i), "wrong", withCalling(fmt.Sprintf("00-11-22-33-44-%02d", i))), wait); lockedOut(r) {
			t.Fatalf("wrong password %d without an address: locked already", i+1)
		}
	}
	if r := n.exchange(n.accessRequest("bob", password, withCalling("00-11-22-33-44-99")), wait); !lockedOut(r) {
		t.Fatalf("login without an address after the client's failures: %v, want the lockout reject", r)
	}
	evs := e.audited("login", "bob")
	if len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Reason, "for this client") {
		t.Fatalf("lockout reason: %+v", evs)
	}
}

// TestFirstFactorRightPasswordRefunded: a right password gives its attempt
// back, as on the web sign-in.
func TestFirstFactorRightPasswordRefunded(t *testing.T) {
	e := newEnv(t)
	n := e.nas(otpAddr, secret) // a right password ends in an Access-Challenge for the code
	for i := range bradius.DefaultFailuresPerUser - 1 {
		if r := n.exchange(n.accessRequest("carol", "wrong", withCalling(fmt.Sprintf("198.51.100.%d", i+1))), wait); lockedOut(r) {
			t.Fatalf("wrong password %d: locked already", i+1)
		}
	}
	for range 3 {
		if r := n.exchange(n.accessRequest("carol", password), wait); r == nil || r.Code != radius.CodeAccessChallenge {
			t.Fatalf("right password: %v, want an Access-Challenge", r)
		}
	}
	if r := n.exchange(n.accessRequest("carol", "wrong", withCalling("198.51.100.50")), wait); lockedOut(r) {
		t.Fatal("the last wrong password before the limit was locked: right passwords were counted")
	}
	if r := n.exchange(n.accessRequest("carol", password), wait); !lockedOut(r) {
		t.Fatalf("after %d failures: %v, want locked", bradius.DefaultFailuresPerUser, r)
	}
}

// TestFirstFactorLimitsSharedByNodes: two RADIUS servers on one
// PostgreSQL store count one user's wrong passwords together.
func TestFirstFactorLimitsSharedByNodes(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	var nodes []*env
	for range 2 {
		st, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, MaxConns: 4, AuditKey: storetest.AuditKey()}, discard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		l := store.NewLimits(st, nil, discard())
		t.Cleanup(l.Close)
		nodes = append(nodes, newEnv(t, func(_ *bradius.Config, d *bradius.Deps) { d.Limits = l }))
	}
	for i := range bradius.DefaultFailuresPerUser {
		n := nodes[i%2].nas(holdAddr, secret)
		if r := n.exchange(n.accessRequest("dave", "wrong", withCalling(fmt.Sprintf("198.51.100.%d", i+1))), wait); lockedOut(r) {
			t.Fatalf("wrong password %d: locked already", i+1)
		}
	}
	for i, e := range nodes {
		n := e.nas(holdAddr, secret)
		if r := n.exchange(n.accessRequest("dave", password), wait); !lockedOut(r) {
			t.Fatalf("node %d after %d wrong passwords on two nodes: %v, want locked", i, bradius.DefaultFailuresPerUser, r)
		}
	}
}

// TestMessageAuthenticatorAutoRemembered: once an auto client has sent a
// Message-Authenticator, it stays required after a restart and on a node
// that never saw it.
func TestMessageAuthenticatorAutoRemembered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "limits.db")
	limitsOn := func() *store.Limits {
		st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, AuditKey: storetest.AuditKey()}, discard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		l := store.NewLimits(st, nil, discard())
		t.Cleanup(l.Close)
		return l
	}
	shared := limitsOn()
	first := newEnv(t, func(_ *bradius.Config, d *bradius.Deps) { d.Limits = shared })
	other := newEnv(t, func(_ *bradius.Config, d *bradius.Deps) { d.Limits = limitsOn() })
	noMA := func(e *env) bool {
		n := e.nas(autoAddr, secret)
		b := n.encode(n.accessRequest("alice", "wrong", withCalling("198.51.100.9")), false)
		n.send(b)
		return n.recv(b, 2*time.Second) != nil
	}
	if !noMA(other) {
		t.Fatal("auto, before any Message-Authenticator: dropped")
	}
	n := first.nas(autoAddr, secret)
	if r := n.exchange(n.accessRequest("alice", "wrong", withCalling("198.51.100.9")), wait); r == nil {
		t.Fatal("with a Message-Authenticator: no answer")
	}
	if noMA(other) {
		t.Fatal("another node answered a request without Message-Authenticator after the client had sent one to the first")
	}
	restarted := newEnv(t, func(_ *bradius.Config, d *bradius.Deps) { d.Limits = limitsOn() })
	if noMA(restarted) {
		t.Fatal("after a restart, a request without Message-Authenticator was answered")
	}
}

// TestPasswordlessNotLockedOut: a passwordless directory has no password
// to guess, so unknown names past every first-factor limit are not locked
// out (the push limits bound what they cost the phones), and no counter
// is written for them.
func TestPasswordlessNotLockedOut(t *testing.T) {
	e := newEnv(t)
	n := e.nas(pushOnlyAddr, secret)
	for i := range bradius.DefaultFailuresPerUser + 2 {
		r := n.exchange(n.accessRequest("nobody", "", withCalling("198.51.100.9")), wait)
		if r == nil || r.Code != radius.CodeAccessReject || lockedOut(r) {
			t.Fatalf("unknown user %d on a passwordless client: %v, want a plain reject", i+1, r)
		}
	}
}

// gateDir holds every password check until the gate opens, counting them.
type gateDir struct {
	directory.Directory
	gate chan struct{}
	n    atomic.Int64
}

func (d *gateDir) Authenticate(ctx context.Context, user, pw string) (directory.Identity, error) {
	d.n.Add(1)
	<-d.gate
	return d.Directory.Authenticate(ctx, user, pw)
}

// TestFirstFactorStormCountsOnce: a NAS's burst of new Identifiers for one
// attempt (same station, user and password), in flight together, is one
// first-factor check: counted once against the limits (twenty of them used
// to lock the user out on their own, right password or not) and hashed
// once.
func TestFirstFactorStormCountsOnce(t *testing.T) {
	dir := &gateDir{gate: make(chan struct{})}
	e := newEnv(t, func(c *bradius.Config, _ *bradius.Deps) {
		for _, cl := range c.Clients {
			if cl.Name == "vpn-hold" {
				dir.Directory, cl.Directory = cl.Directory, dir
			}
		}
	})
	var open sync.Once
	release := func() { open.Do(func() { close(dir.gate) }) }
	t.Cleanup(release) // a failing test must not leave requests held
	const storm = 20
	answers := make(chan *radius.Packet, storm)
	for range storm {
		n := e.nas(holdAddr, secret)
		p := n.accessRequest("alice", "wrong")
		go func() { answers <- n.exchange(p, 10*time.Second) }()
	}
	inFlight := func() float64 {
		mfs, err := e.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "bridge_radius_requests_in_progress" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return 0
	}
	for deadline := time.Now().Add(10 * time.Second); inFlight() < storm; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %v of %d requests in flight", inFlight(), storm)
		}
	}
	release()
	for range storm {
		if r := <-answers; r == nil || r.Code != radius.CodeAccessReject || lockedOut(r) {
			t.Fatalf("a request of the storm: %v, want a plain reject", r)
		}
	}
	if got := dir.n.Load(); got != 1 {
		t.Fatalf("the storm's password was checked %d times, want once", got)
	}
	// The storm was one failure: nine more wrong ones (other stations)
	// are still plain rejects, the next is over the limit.
	n := e.nas(holdAddr, secret)
	for i := range bradius.DefaultFailuresPerUser - 1 {
		if r := n.exchange(n.accessRequest("alice", "wrong", withCalling(fmt.Sprintf("203.0.113.%d", i+1))), wait); r == nil || lockedOut(r) {
			t.Fatalf("wrong password %d after the storm: %v, want a plain reject", i+2, r)
		}
	}
	if r := n.exchange(n.accessRequest("alice", password, withCalling("203.0.113.99")), wait); !lockedOut(r) {
		t.Fatalf("after the storm and nine more: %v, want the lockout", r)
	}
}
