package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/tcpproxy"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/storetest"
)

// throughProxy returns dsn with its host replaced by a proxy the test can
// cut, and the proxy.
func throughProxy(t *testing.T, dsn string) (string, *tcpproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tcpproxy.Listen(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	u.Host = p.Addr()
	return u.String(), p
}

// TestAuditSpoolAcrossACut: PostgreSQL cut off mid-flow (through a proxy;
// the server itself keeps running). Events appended during the cut are
// kept in the node's spool and appended in order once the connection is
// back, and the chain verifies.
func TestAuditSpoolAcrossACut(t *testing.T) {
	dsn, proxy := throughProxy(t, freshSchema(t))
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Config{DSN: dsn, MaxConns: 4, AuditKey: storetest.AuditKey()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sp, err := store.OpenAuditSpool(filepath.Join(t.TempDir(), "audit.spool"), 0, discard())
	if err != nil {
		t.Fatal(err)
	}
	b := store.NewAuditBatcherWith(st, discard(), store.AuditBatcherOptions{Spool: sp, Retry: 50 * time.Millisecond, StoreTimeout: 5 * time.Second})
	defer b.Close()
	ev := func(i int) store.AuditEvent {
		return store.AuditEvent{Time: time.Unix(int64(2000+i), 0), Actor: "test", Action: "cut", Subject: fmt.Sprint(i), Channel: "test", Result: store.ResultSuccess}
	}
	if _, err := b.Append(ctx, ev(0)); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	for i := 1; i <= 3; i++ {
		if _, err := b.Append(ctx, ev(i)); err != nil {
			t.Fatalf("append while PostgreSQL is cut off: %v", err)
		}
	}
	if b.Spooled() != 3 {
		t.Fatalf("%d events spooled during the cut, want 3", b.Spooled())
	}
	proxy.Restore()
	for deadline := time.Now().Add(time.Minute); b.Spooled() > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the spool still holds %d events after the restore", b.Spooled())
		}
	}
	if _, err := b.Append(ctx, ev(4)); err != nil {
		t.Fatal(err)
	}
	got, err := st.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d events in PostgreSQL, want 5", len(got))
	}
	for i, e := range got {
		if e.Subject != fmt.Sprint(i) {
			t.Fatalf("event %d is %q: out of order", i, e.Subject)
		}
	}
	rep, err := store.VerifyChain(ctx, st, storetest.AuditKey(), 0)
	if err != nil || !rep.OK() {
		t.Fatalf("chain: %+v, %v", rep, err)
	}
}
