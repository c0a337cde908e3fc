package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// Issue 12, "Exactly one push per attempt, across nodes": two nodes on one
// PostgreSQL database behind FreeRADIUS, as operators run them.

const (
	decisionsPrefix = `bridge_radius_decisions_total{client="vpn",result=`
	requestsPrefix  = `bridge_radius_requests_total{code="Access-Request"`
)

// decided is the node's count of decisions of one result (accept,
// reject, challenge).
func decided(t *testing.T, n *liveBridge, result string) float64 {
	return metric(t, n, decisionsPrefix+fmt.Sprintf("%q}", result))
}

// TestChallengeAcrossNodesLoadBalance: challenge mode behind a
// load-balance pool. The first round (password) gets an Access-Challenge
// from one node; the user approves and presses Enter (an empty
// User-Password with the State), and that second round may reach the other
// node: it must complete the login there too (today every crossing round
// is rejected "This sign-in has expired": the session lives in the first
// node's memory).
func TestChallengeAcrossNodesLoadBalance(t *testing.T) {
	c := newCluster(t, nil)
	// number_matching off: the prompt is "approve, then press Enter", as
	// ocserv users see it, and the phone can approve without the number.
	c.startNodes(2, "      wait: challenge\n      number_matching: false")
	fr := startFreeRADIUS(t, "load-balance", 10, c.nodes...)
	state := c.user("alice")

	// FreeRADIUS breaks load-balance ties at random: enough logins that
	// some second rounds cross nodes (all of them must succeed either way).
	// Up to 20 logins, until 3 second rounds crossed: the chance that
	// none does is about one in a million.
	const logins = 20
	crossed, i := 0, 0
	for ; i < logins && crossed < 3; i++ {
		phone := c.nodes[0].answer(state, "--auto-approve")
		ch := [2]float64{decided(t, c.nodes[0], "challenge"), decided(t, c.nodes[1], "challenge")}
		out := fr.send(c.nodes[0], login("alice", password))
		st := radiusStateRE.FindStringSubmatch(out)
		if radclientCode(out) != "Access-Challenge" || st == nil {
			t.Fatalf("login %d, first round:\n%s", i, out)
		}
		first := 0
		if decided(t, c.nodes[1], "challenge") > ch[1] {
			first = 1
		}
		if err := <-phone; err != nil {
			t.Fatalf("login %d, phone: %v", i, err)
		}
		rq := [2]float64{metric(t, c.nodes[0], requestsPrefix), metric(t, c.nodes[1], requestsPrefix)}
		out = fr.send(c.nodes[0], login("alice", "", "State = "+st[1]))
		second := 0
		if metric(t, c.nodes[1], requestsPrefix) > rq[1] {
			second = 1
		}
		if first != second {
			crossed++
		}
		if radclientCode(out) != "Access-Accept" {
			t.Errorf("login %d: first round on node %d, Enter on node %d: %s, want Access-Accept\n%s", i, first, second, radclientCode(out), out)
		}
	}
	t.Logf("%d of %d second rounds reached the other node", crossed, i)
	if crossed == 0 {
		t.Fatalf("no second round of %d reached the other node: the pool did not balance, and the test proves nothing across nodes", i)
	}
}

// failoverCluster is two nodes in hold mode behind a FreeRADIUS fail-over
// pool whose primary is node 1; the phones talk to node 0 (the base_url),
// which stays up when node 1 is killed.
func failoverCluster(t *testing.T) (*cluster, *freeRADIUS) {
	t.Helper()
	c := newCluster(t, nil)
	// hold_timeout 8s, FreeRADIUS's response window 10s: above it, as the
	// docs ask of a NAS in hold mode, and short enough that FreeRADIUS
	// notices the dead node within the test.
	c.startNodes(2, "      wait: hold\n      hold_timeout: 8s")
	return c, startFreeRADIUS(t, "fail-over", 10, c.nodes[1], c.nodes[0])
}

// holdOnPrimary sends a login through FreeRADIUS, in the background, and
// waits until node 1 (the primary) holds it; done gets radclient's output.
func holdOnPrimary(t *testing.T, c *cluster, fr *freeRADIUS, user string) <-chan string {
	t.Helper()
	before := metric(t, c.nodes[1], requestsPrefix)
	done := make(chan string, 1)
	go func() {
		out, _ := c.nodes[0].radclient(fr.port, "auth", radiusSecret, login(user, password), "-t", "12")
		done <- out
	}()
	if !eventually(10*time.Second, func() bool { return metric(t, c.nodes[1], requestsPrefix) > before }) {
		t.Fatal("the login did not reach node 1, the fail-over pool's primary")
	}
	if !eventually(10*time.Second, func() bool { return pushesSent(t, c.nodes[0], user) == 1 }) {
		t.Fatal("node 1 did not start a push for the held login")
	}
	return done
}

// killPrimary kills node 1 with SIGKILL, waits for the login it held to
// end without an Access-Accept at the NAS (FreeRADIUS does not resend it
// to node 0), and for FreeRADIUS to stop sending new requests to node 1.
func killPrimary(t *testing.T, c *cluster, fr *freeRADIUS, held <-chan string) {
	t.Helper()
	c.kill(c.nodes[1])
	if out := <-held; radclientCode(out) == "Access-Accept" {
		t.Fatalf("the login held by the killed node was accepted:\n%s", out)
	}
	port := fmt.Sprintf("port %d", c.nodes[1].auth)
	if !eventually(30*time.Second, func() bool {
		for _, l := range strings.Split(fr.log(), "\n") {
			if strings.Contains(l, port) && (strings.Contains(l, "zombie") || strings.Contains(l, "dead")) {
				return true
			}
		}
		return false
	}) {
		t.Fatal("FreeRADIUS did not mark the killed node zombie or dead")
	}
}

// TestFailoverNodeKilled: a node killed with SIGKILL while it holds a
// request, behind a fail-over pool.
func TestFailoverNodeKilled(t *testing.T) {
	// The user signs in again before approving: the new request, on the
	// node that is left, joins the still-pending push (one push in all).
	t.Run("next sign-in joins the pending push", func(t *testing.T) {
		c, fr := failoverCluster(t)
		state := c.user("alice")
		held := holdOnPrimary(t, c, fr, "alice")
		killPrimary(t, c, fr, held)

		before := metric(t, c.nodes[0], requestsPrefix)
		again := make(chan string, 1)
		go func() { again <- fr.send(c.nodes[0], login("alice", password), "-t", "12") }()
		if !eventually(10*time.Second, func() bool { return metric(t, c.nodes[0], requestsPrefix) > before }) {
			t.Fatal("the next sign-in did not reach node 0")
		}
		// The phone is looked at only now: it sees what is pending.
		time.Sleep(time.Second)
		ph := runPhone(t, c.nodes[0].phone, state, "--auto-approve")
		if out := <-again; radclientCode(out) != "Access-Accept" {
			t.Fatalf("the next sign-in:\n%s", out)
		}
		if p := ph.pushes(); len(p) != 1 {
			t.Errorf("the phone was shown %d pushes, want 1: %v", len(p), p)
		}
		if n := pushesSent(t, c.nodes[0], "alice"); n != 1 {
			t.Errorf("%d pushes sent (audit), want 1: the next sign-in should have joined the pending one", n)
		}
	})

	// The user approves just after the node died: the approval is
	// recorded, nothing answers the NAS. The same user's next request
	// from the same station, within the challenge's lifetime, gets that
	// approval (no second push), once: the request after it is a new
	// attempt with a new push.
	t.Run("approval no node delivered is delivered once", func(t *testing.T) {
		c, fr := failoverCluster(t)
		state := c.user("alice")
		ph := runPhone(t, c.nodes[0].phone, state, "--auto-approve", "--answer-after", "3s")
		held := holdOnPrimary(t, c, fr, "alice")
		if !eventually(10*time.Second, func() bool { return len(ph.pushes()) == 1 }) {
			t.Fatal("the phone was not shown the push")
		}
		c.kill(c.nodes[1]) // within the 3s the user takes
		if !eventually(15*time.Second, func() bool { return ph.answered() == 1 }) {
			t.Fatal("the approval after the node died was not recorded")
		}
		killPrimary(t, c, fr, held)

		out := fr.send(c.nodes[0], login("alice", password), "-t", "12")
		if radclientCode(out) != "Access-Accept" {
			t.Errorf("the next sign-in after the undelivered approval: %s, want Access-Accept\n%s", radclientCode(out), out)
		}
		if p := ph.pushes(); len(p) != 1 {
			t.Errorf("the next sign-in was sent a push of its own (%d pushes at the phone, want 1): the undelivered approval should have answered it", len(p))
		}
		// One approval, one Accept: the next login is a new attempt.
		out = fr.send(c.nodes[0], login("alice", password), "-t", "12")
		if radclientCode(out) != "Access-Accept" {
			t.Errorf("the third sign-in: %s, want Access-Accept after its own push\n%s", radclientCode(out), out)
		}
		if p := ph.pushes(); len(p) != 2 {
			t.Errorf("the third sign-in: %d pushes at the phone in all, want 2 (the approval is consumed by one Accept)", len(p))
		}
	})
}

// wrongCode is a six-digit code that is not the user's TOTP code now nor in
// the windows next to it.
func wrongCode(t *testing.T, secret string) string {
	t.Helper()
	bad := map[string]bool{}
	for _, d := range []time.Duration{-60 * time.Second, -30 * time.Second, 0, 30 * time.Second, 60 * time.Second} {
		code, err := totp.GenerateCode(secret, time.Now().Add(d))
		if err != nil {
			t.Fatal(err)
		}
		bad[code] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", (i*7919+123456)%1000000); !bad[c] {
			return c
		}
	}
}

// TestLimitsAcrossNodes: every limit holds across nodes, not per node.
func TestLimitsAcrossNodes(t *testing.T) {
	c := newCluster(t, nil)
	c.startNodes(2, "      wait: hold\n      hold_timeout: 5s")
	totpSecret := func(user string) string {
		c.nodes[0].user(user)
		var tok struct{ Secret string }
		if err := json.Unmarshal([]byte(c.cli("", "users", "totp", "enroll", user, "--json")), &tok); err != nil {
			t.Fatal(err)
		}
		return tok.Secret
	}
	send := func(n *liveBridge, in string) string {
		out, _ := n.radclient(n.auth, "auth", radiusSecret, in, "-t", "10")
		return out
	}

	// Wrong one-time codes: 5 per user per 15 minutes (radius/state.go),
	// in total. Three go to node 0, two to node 1; then the right code on
	// node 1, which has seen only two, is refused.
	t.Run("wrong one-time codes", func(t *testing.T) {
		secret := totpSecret("bob")
		wrong := wrongCode(t, secret)
		for i := range 5 {
			if out := send(c.nodes[i%2], login("bob", password+","+wrong)); radclientCode(out) != "Access-Reject" {
				t.Fatalf("wrong code %d:\n%s", i+1, out)
			}
		}
		code, _ := totp.GenerateCode(secret, time.Now())
		out := send(c.nodes[1], login("bob", password+","+code))
		if radclientCode(out) != "Access-Reject" || !strings.Contains(out, "Too many") {
			t.Fatalf("after 5 wrong codes across two nodes (3 on node 0, 2 on node 1) the right code on node 1 got %s, want Access-Reject (too many):\n%s", radclientCode(out), out)
		}
	})

	// Failed first factors: limited per user like the web sign-in
	// (web.failures_per_user, default 10), shared by the nodes. Ten wrong
	// passwords, five per node; then the right password with the right
	// code is refused (a lockout does not say whether the password was
	// right, and asks nothing of the second factor).
	t.Run("wrong passwords", func(t *testing.T) {
		const failures = 10
		secret := totpSecret("carol")
		for i := range failures {
			if out := send(c.nodes[i%2], login("carol", "wrong password,push")); radclientCode(out) != "Access-Reject" {
				t.Fatalf("wrong password %d:\n%s", i+1, out)
			}
		}
		code, _ := totp.GenerateCode(secret, time.Now())
		out := send(c.nodes[1], login("carol", password+","+code))
		if radclientCode(out) != "Access-Reject" {
			t.Fatalf("after %d wrong passwords across two nodes (%d each) the right password and code got %s, want Access-Reject:\n%s", failures, failures/2, radclientCode(out), out)
		}
	})
}

// serveOnce runs `bridge serve` with cfg until it exits or starts
// listening (then it is stopped); it returns whether it started and what
// it printed.
func serveOnce(t *testing.T, bin, cfg string) (started bool, output string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case <-exited:
			return false, out.String()
		case <-deadline:
			t.Fatalf("bridge serve neither started nor exited in 60 s:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
			if strings.Count(out.String(), "msg=listening") >= 2 {
				return true, out.String()
			}
		}
	}
}

// TestOneBaseURLPerCluster: the bridge has one identity for all its nodes
// (phones refuse challenges from an issuer they did not enroll with).
func TestOneBaseURLPerCluster(t *testing.T) {
	// A second node with another base_url on the same database refuses
	// to start, saying why.
	t.Run("different base_url refused at start", func(t *testing.T) {
		c := newCluster(t, nil)
		c.startNodes(1, "      wait: hold")
		n := c.newNode()
		other := fmt.Sprintf("http://127.0.0.1:%d", n.public)
		if err := os.WriteFile(n.cfg, []byte(c.nodeConfig(n, other, "      wait: hold")), 0o600); err != nil {
			t.Fatal(err)
		}
		started, out := serveOnce(t, n.bin, n.cfg)
		if started {
			t.Fatalf("a node with base_url %s started on the database of %s:\n%s", other, c.baseURL, out)
		}
		if !strings.Contains(out, "base_url") || !strings.Contains(out, c.baseURL) {
			t.Fatalf("the refusal does not name base_url and the database's one (%s):\n%s", c.baseURL, out)
		}
	})

	// On PostgreSQL (several nodes), a base_url left to its default
	// (derived from listen, so different per node) is a config error.
	t.Run("no base_url with postgres", func(t *testing.T) {
		c := newCluster(t, nil)
		n := c.newNode()
		// Not in dev mode: this is how production nodes run.
		text := strings.Replace(c.nodeConfig(n, "", "      wait: hold"), "dev_mode: true\n", "", 1)
		if err := os.WriteFile(n.cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(n.bin, "config", "check", "--config", n.cfg).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "base_url") {
			t.Fatalf("config check with postgres and no base_url: %v\n%s", err, out)
		}
		started, sout := serveOnce(t, n.bin, n.cfg)
		if started || !strings.Contains(sout, "base_url") {
			t.Fatalf("serve with postgres and no base_url: started %v\n%s", started, sout)
		}
	})
}
