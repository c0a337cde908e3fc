package pushauth_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/pgbus"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/postgres/pgtest"
	"github.com/bridge-idp/bridge/store/storetest"
)

// TestTwoNodes: two bridge nodes share a PostgreSQL store, with the
// challenges in it and wake-ups over LISTEN/NOTIFY, behind one public URL.
// A login waits on node B; the device long-polls and answers on node A;
// B's waiter wakes at once, with no polling loop.
func TestTwoNodes(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := postgres.Open(ctx, postgres.Config{DSN: dsn, MaxConns: 8, AuditKey: storetest.AuditKey()}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bus := func() envOption {
		b, err := pgbus.Open(ctx, dsn, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return func(_ *pushauth.Config, d *pushauth.Deps) { d.Bus = b }
	}
	a := newNode(t, st, st, nil, bus())
	b := newNode(t, st, st, a.clock, bus(), func(c *pushauth.Config, _ *pushauth.Deps) { c.BaseURL = a.base })

	dev := a.enroll("alice", authenticator.EnrollOptions{})
	polled := make(chan []authenticator.Challenge, 1)
	go func() {
		cs, err := dev.Pending(ctx, 25*time.Second)
		if err != nil {
			t.Error(err)
		}
		polled <- cs
	}()
	h := b.start(login("alice")) // on node B: wakes the long-poll on node A
	var cs []authenticator.Challenge
	select {
	case cs = <-polled:
	case <-time.After(20 * time.Second):
		t.Fatal("a challenge started on node B did not wake the long-poll on node A")
	}
	if len(cs) != 1 || cs[0].ID != h.ID {
		t.Fatalf("pending on node A: %v", cs)
	}
	waited := make(chan pushauth.Outcome, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		o, err := b.eng.Wait(wctx, h.ID)
		if err != nil {
			t.Error(err)
		}
		waited <- o
	}()
	if _, err := dev.Answer(ctx, cs[0], protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-waited:
		if !o.Approved() || o.DeviceID != dev.ID() {
			t.Fatalf("outcome on node B: %+v", o)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the answer on node A did not wake the waiter on node B")
	}
	// A second login for the same user on node A joins B's pending
	// challenge only while it is pending; now it is closed, so it is new.
	if h2 := a.start(login("alice")); h2.Joined || h2.ID == h.ID {
		t.Fatalf("login after the approval joined the closed challenge: %+v", h2)
	}
}
