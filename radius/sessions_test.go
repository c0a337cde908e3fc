package radius

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
)

func testStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db"), AuditKey: storetest.AuditKey()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestSessionsAcrossNodes: a challenge session made on one node is found,
// counted and ended on another; of two nodes ending it at once, one does;
// the store holds a hash of the State, not the State.
func TestSessionsAcrossNodes(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	a, b := newSessions(st), newSessions(st)
	now := time.Now()
	in := &session{id: "state-1", client: "vpn", typed: "alice", user: "alice", kind: FactorPush, challenge: "ch-1", number: "42",
		ident: directory.Identity{Username: "alice", Groups: []string{"staff"}, Directory: "local"}, expires: now.Add(time.Minute)}
	if err := a.put(ctx, in, now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetGrant(ctx, store.GrantRADIUSState, "state-1", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the store keeps the State itself: %v", err)
	}
	got, unlock, err := b.take(ctx, "state-1", now)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if got.client != "vpn" || got.user != "alice" || got.challenge != "ch-1" || got.number != "42" || got.kind != FactorPush ||
		len(got.ident.Groups) != 1 || got.ident.Groups[0] != "staff" || !got.expires.Equal(in.expires.Truncate(time.Microsecond)) {
		t.Fatalf("the other node reads %+v, want %+v", got, in)
	}
	for i, n := range []*sessions{a, b} {
		if c, err := n.countAttempt(ctx, got, now); err != nil || c != i+1 {
			t.Fatalf("wrong code %d counted as %d, %v", i+1, c, err)
		}
	}

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []*sessions{a, b} {
		wg.Go(func() { errs[i] = n.end(ctx, got, now) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || !(errors.Is(errs[0], errSessionUsed) || errors.Is(errs[1], errSessionUsed)) {
		t.Fatalf("two nodes ending the session: %v, %v; want exactly one to end it", errs[0], errs[1])
	}
	if _, _, err := a.take(ctx, "state-1", now); !errors.Is(err, errSessionUsed) {
		t.Fatalf("an ended session: %v, want errSessionUsed", err)
	}
	if _, _, err := a.take(ctx, "unknown", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unknown State: %v", err)
	}
	if err := a.put(ctx, &session{id: "state-2", user: "bob", expires: now.Add(time.Second)}, now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.take(ctx, "state-2", now.Add(2*time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired State: %v", err)
	}
}
