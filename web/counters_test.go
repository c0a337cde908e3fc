package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// secondNode is another node on e's store: its own Flow and web server,
// the same store, push engine and directories.
func (e *env) secondNode(t *testing.T) *env {
	t.Helper()
	n := &env{t: e.t, ctx: e.ctx, clock: e.clock, st: e.st, sealer: e.sealer, keys: e.keys, state: e.state, eng: e.eng,
		devURL: e.devURL, audit: e.audit, totp: e.totp, local: e.local, other: e.other, pwless: e.pwless, apps: e.apps}
	srv := httptest.NewUnstartedServer(nil)
	n.base = "http://" + srv.Listener.Addr().String()
	cfg := e.cfg
	cfg.BaseURL = n.base
	f, err := New(cfg, n.lookupApp, Deps{Store: e.st, Push: e.eng, Audit: e.audit, Now: e.clock.Now, Logger: discard(), ClientIP: e.flow.d.ClientIP})
	if err != nil {
		t.Fatal(err)
	}
	n.flow, n.cfg = f, cfg
	srv.Config.Handler = n.handler()
	srv.Start()
	n.srv = srv
	t.Cleanup(srv.Close)
	return n
}

// TestFailuresSharedByNodes: web.failures_per_user and failures_per_ip
// were counted in each node's memory, so N nodes let N times the guesses
// through. Two Flows on one store now count together.
func TestFailuresSharedByNodes(t *testing.T) {
	t.Run("per user", func(t *testing.T) {
		e := newEnv(t, withConfig(func(c *Config) { c.FailuresPerIP, c.FailuresPerUser = 100, 2 }))
		nodes := []*env{e, e.secondNode(t)}
		for i, n := range nodes {
			b := n.browser()
			b.ip = "203.0.113." + string(rune('1'+i))
			id, p := b.begin(appPortal)
			b.signIn(id, p, "bob", "wrong").want(http.StatusUnauthorized, "signin")
		}
		for i, n := range nodes {
			b := n.browser()
			b.ip = "203.0.113.9"
			id, p := b.begin(appPortal)
			checks := e.local.checks()
			b.signIn(id, p, "bob", password).want(http.StatusUnauthorized, "signin")
			if e.local.checks() != checks {
				t.Fatalf("node %d checked bob's password after 2 failures on two nodes (failures_per_user 2)", i)
			}
		}
	})
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, withConfig(func(c *Config) { c.FailuresPerIP, c.FailuresPerUser = 2, 100 }))
		nodes := []*env{e, e.secondNode(t)}
		for i, n := range nodes {
			b := n.browser()
			b.ip = "198.51.100.4"
			id, p := b.begin(appPortal)
			b.signIn(id, p, []string{"alice", "bob"}[i], "wrong").want(http.StatusUnauthorized, "signin")
		}
		b := nodes[1].browser()
		b.ip = "198.51.100.4"
		id, p := b.begin(appPortal)
		r := b.signIn(id, p, "carol", password)
		r.want(http.StatusTooManyRequests, "signin")
		if r.errorText() != en(t, "error_too_many") {
			t.Errorf("error %q", r.errorText())
		}
	})
}
