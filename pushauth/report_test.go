package pushauth_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
)

// TestReportFraudOnce: a sign-in reported on the account page counts once
// per user, on whichever node the repeats land: no second back-off step,
// audit event or webhook call. Another sign-in is a report of its own.
func TestReportFraudOnce(t *testing.T) {
	hook := startWebhook(t)
	secret := []byte("webhook secret of 32 bytes......")
	withHook := func(c *pushauth.Config, _ *pushauth.Deps) {
		c.FraudWebhook = pushauth.Webhook{URL: hook.url, Secret: secret}
	}
	st := sqliteStore(t)
	a := newNode(t, st, st, nil, withHook)
	b := newNode(t, st, st, a.clock, withHook)
	signIn := func() string {
		t.Helper()
		ev, err := st.AppendAudit(a.ctx, store.AuditEvent{Time: a.clock.Now(), Actor: "user:alice", Action: "login", Subject: "alice",
			Channel: "oidc", ClientIP: "203.0.113.9", Result: store.ResultSuccess, Details: map[string]string{"application": "wiki"}})
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(ev.Seq, 10)
	}
	seq := signIn()
	if err := a.eng.ReportFraud(a.ctx, "alice", seq, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	before, err := st.GetPushLimit(a.ctx, "alice")
	if err != nil || before.Failures != 1 || !before.LockedUntil.After(a.clock.Now()) {
		t.Fatalf("after the report: %+v %v", before, err)
	}
	if r := hook.next(t, secret); r.User != "alice" || r.Application != "wiki" {
		t.Errorf("webhook report %+v", r)
	}

	// Repeats, some at once, on both nodes.
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		n := []*env{a, b}[i%2]
		wg.Go(func() { errs <- n.eng.ReportFraud(n.ctx, "alice", seq, "192.0.2.1") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, pushauth.ErrAlreadyReported) {
			t.Errorf("a repeated report: %v, want ErrAlreadyReported", err)
		}
	}
	after, _ := st.GetPushLimit(a.ctx, "alice")
	if after.Failures != before.Failures || !after.NextAt.Equal(before.NextAt) || !after.LockedUntil.Equal(before.LockedUntil) {
		t.Errorf("repeats changed the push limit: %+v, was %+v", after, before)
	}
	if n := countAudit(t, st, "push.fraud"); n != 1 {
		t.Errorf("%d push.fraud events, want 1", n)
	}

	// Bob's report of the same sequence number is not alice's.
	if err := a.eng.ReportFraud(a.ctx, "bob", seq, "192.0.2.1"); !errors.Is(err, pushauth.ErrNotReportable) {
		t.Errorf("bob reporting alice's sign-in: %v", err)
	}
	// Another sign-in of alice's is a report of its own.
	if err := b.eng.ReportFraud(b.ctx, "alice", signIn(), "192.0.2.1"); err != nil {
		t.Fatalf("reporting another sign-in: %v", err)
	}
	if l, _ := st.GetPushLimit(a.ctx, "alice"); l.Failures != before.Failures+1 {
		t.Errorf("after a second sign-in's report: %d failures, want %d", l.Failures, before.Failures+1)
	}
	hook.next(t, secret)
	a.eng.Close() // waits for the webhook calls in flight
	b.eng.Close()
	if n := len(hook.reqs); n != 0 {
		t.Errorf("%d more webhook calls: repeats called it", n)
	}
}

func countAudit(t *testing.T, st store.Store, action string) int {
	t.Helper()
	evs, err := st.ListAudit(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Action == action {
			n++
		}
	}
	return n
}
