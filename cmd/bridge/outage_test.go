package main

import (
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/tcpproxy"
)

// TestDatabaseCut: the database goes away from both nodes mid-flow (cut
// through a proxy between the nodes and PostgreSQL; the shared server
// keeps running) and comes back. Issue 12: readiness turns 503 and back;
// nothing is lost (every decision taken during the outage is in the audit
// log after recovery, chain intact); failmode applies to a login in
// flight (held on the phone when the database went), not "no answer from
// your phone"; a login that ended is never shown as pending afterwards.
func TestDatabaseCut(t *testing.T) {
	for _, tc := range []struct {
		failmode string
		want     string // the held login's answer
		message  string // what its Reply-Message must say, if anything
	}{
		// safe: accepted on the first factor alone, as the operator chose.
		{"safe", "Access-Accept", ""},
		// secure: rejected, saying the second factor is unavailable (not
		// blaming the phone).
		{"secure", "Access-Reject", "unavailable"},
	} {
		t.Run("failmode "+tc.failmode, func(t *testing.T) {
			var proxy *tcpproxy.Proxy
			c := newCluster(t, func(dsn string) string {
				u, err := url.Parse(dsn)
				if err != nil {
					t.Fatal(err)
				}
				if proxy, err = tcpproxy.Listen(u.Host); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { proxy.Close() })
				return withHost(t, dsn, proxy.Addr())
			})
			c.startNodes(2, "      wait: hold\n      hold_timeout: 10s\n      failmode: "+tc.failmode)
			state := c.user("alice")
			for i, n := range c.nodes {
				if code := ready(n); code != 200 {
					t.Fatalf("node %d /readyz = %d before the cut", i, code)
				}
			}

			// A login held on node 1, its push on the phone, unanswered.
			shown := runPhone(t, c.nodes[0].phone, state, "--auto-approve", "--answer-after", "1h")
			held := make(chan string, 1)
			go func() {
				out, _ := c.nodes[1].radclient(c.nodes[1].auth, "auth", radiusSecret, login("alice", password), "-t", "30")
				held <- out
			}()
			if !eventually(10*time.Second, func() bool { return len(shown.pushes()) == 1 }) {
				t.Fatal("the held login's push did not reach the phone")
			}
			challenge := shown.pushes()[0]

			proxy.Cut()
			for i, n := range c.nodes {
				if !eventually(20*time.Second, func() bool { return ready(n) == 503 }) {
					t.Errorf("node %d /readyz = %d with the database cut, want 503", i, ready(n))
				}
			}
			// A new login during the outage: its first factor cannot be
			// checked, so it is rejected, and that decision too must
			// reach the audit log.
			if out, _ := c.nodes[0].radclient(c.nodes[0].auth, "auth", radiusSecret, login("alice", password), "-t", "20"); radclientCode(out) != "Access-Reject" {
				t.Errorf("a new login during the outage: %s, want Access-Reject\n%s", radclientCode(out), out)
			}
			out := <-held
			if got := radclientCode(out); got != tc.want {
				t.Errorf("the login held when the database went: %s, want %s (failmode %s)\n%s", got, tc.want, tc.failmode, out)
			}
			if tc.message != "" && !strings.Contains(out, tc.message) {
				t.Errorf("the held login's reject does not say the second factor is %s:\n%s", tc.message, out)
			}
			if strings.Contains(out, "No answer from your phone") {
				t.Errorf("the held login's answer blames the phone for the database:\n%s", out)
			}

			proxy.Restore()
			for i, n := range c.nodes {
				if !eventually(30*time.Second, func() bool { return ready(n) == 200 }) {
					t.Errorf("node %d /readyz = %d after the database came back, want 200", i, ready(n))
				}
			}

			// Both decisions of the outage are in the audit log (appended
			// when the store returned), the held one as failmode's.
			var logins []auditEvent
			if !eventually(15*time.Second, func() bool {
				logins = logins[:0]
				for _, e := range auditEvents(t, c.nodes[0], "alice") {
					if e.Action == "login" {
						logins = append(logins, e)
					}
				}
				return len(logins) >= 2
			}) {
				t.Errorf("%d login decisions of the outage in the audit log after recovery, want 2: %+v", len(logins), logins)
			}
			failmode := false
			for _, e := range logins {
				failmode = failmode || strings.Contains(e.Reason, "second factor unavailable")
			}
			if len(logins) > 0 && !failmode {
				t.Errorf("no audit event records the held login as decided by failmode: %+v", logins)
			}
			if out, err := exec.Command(c.nodes[0].bin, "audit", "verify", "--config", c.nodes[0].cfg).CombinedOutput(); err != nil {
				t.Errorf("bridge audit verify after the outage: %v\n%s", err, out)
			}

			// The held login ended during the outage: its push is never
			// shown as pending again.
			shown.stop()
			again := runPhone(t, c.nodes[0].phone, state, "--auto-approve")
			time.Sleep(3 * time.Second)
			for _, id := range again.pushes() {
				if id == challenge {
					t.Errorf("after recovery the phone was shown, as pending, the push %s of a login that ended during the outage", id)
				}
			}
		})
	}
}
