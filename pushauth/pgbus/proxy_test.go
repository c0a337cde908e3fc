package pgbus

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/tcpproxy"
	"github.com/bridge-idp/bridge/server"
)

// startProxy puts a TCP proxy the test cuts and restores between the bus
// and PostgreSQL: the database going away for the bus alone, without
// stopping the server other tests share.
func startProxy(t *testing.T, target string) *tcpproxy.Proxy {
	t.Helper()
	p, err := tcpproxy.Listen(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// via returns dsn (a postgres:// URL) pointed at the proxy.
func via(t *testing.T, p *tcpproxy.Proxy, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(dsn, "postgres") {
		t.Fatalf("the test DSN must be a postgres:// URL")
	}
	u.Host = p.Addr()
	return u.String()
}

// targetOf returns the host:port a postgres:// DSN names.
func targetOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(host, port)
}

// eventually fails the test unless cond holds before the deadline,
// checking every few milliseconds (a deadline for a test that hangs, not
// a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not before the deadline", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readyz serves Ready as a node does, and returns a GET of its /readyz.
func readyz(t *testing.T, b *Bus) func() int {
	t.Helper()
	srv, err := server.New(server.Config{Public: server.ListenerConfig{Listen: "127.0.0.1:0", AllowPlainHTTP: true}}, server.Deps{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddReadyCheck("push wake-up channel", b.Ready); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	pub, _ := srv.Addrs()
	return func() int {
		resp, err := http.Get("http://" + pub.String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

// TestReadyWhileTheDatabaseIsAway cuts the bus of one node off from
// PostgreSQL: /readyz is 503 while cut (also after failed reconnection
// attempts), 200 again once it is back; the bus wakes every waiter on
// reconnecting, and publishes reach the other node in both directions.
func TestReadyWhileTheDatabaseIsAway(t *testing.T) {
	dsn := requireDSN(t)
	proxy := startProxy(t, targetOf(t, dsn))
	logs := logWatch{msgs: make(chan string, 1000)}
	a, err := Open(context.Background(), via(t, proxy, dsn), slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b := node(t, dsn, nil)
	ctx := context.Background()
	status := readyz(t, a)
	if code := status(); code != http.StatusOK {
		t.Fatalf("/readyz after Open: %d", code)
	}
	tp, back := topic(t), topic(t)
	w, cancel := a.Subscribe(tp)
	defer cancel()
	wb, cancelB := b.Subscribe(back)
	defer cancelB()

	// A publish before the cut leaves a pooled connection that the cut
	// breaks: the publish after recovery must not fail on it.
	if err := a.Publish(ctx, back); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wb, "a publish before the cut")

	proxy.Cut()
	eventually(t, "/readyz 503 while cut", func() bool { return status() == http.StatusServiceUnavailable })
	for failed := 0; failed < 2; {
		select {
		case m := <-logs.msgs:
			if strings.Contains(m, "reconnecting failed") {
				failed++
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no failed reconnection reported while cut")
		}
	}
	if err := a.Ready(ctx); err == nil || !strings.Contains(err.Error(), "not listening") {
		t.Fatalf("ready while cut, after failed reconnections: %v", err)
	}
	if code := status(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while cut, after failed reconnections: %d", code)
	}
	if woken(w) {
		t.Fatal("a waiter was woken while the bus was away")
	}

	proxy.Restore()
	eventually(t, "/readyz 200 after the database is back", func() bool { return status() == http.StatusOK })
	waitWake(t, w, "every waiter woken on reconnecting")

	if err := b.Publish(ctx, tp); err != nil {
		t.Fatal(err)
	}
	waitWake(t, w, "a publish on the other node after recovery")
	if err := a.Publish(ctx, back); err != nil {
		t.Fatalf("publishing after recovery: %v", err)
	}
	waitWake(t, wb, "a publish from the recovered node")
}

// TestReadyAfterClose: a closed bus listens no more.
func TestReadyAfterClose(t *testing.T) {
	dsn := requireDSN(t)
	b, err := Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(context.Background()); err != nil {
		t.Fatalf("not ready after Open: %v", err)
	}
	b.Close()
	if err := b.Ready(context.Background()); err == nil {
		t.Fatal("ready after Close")
	}
}

// TestBackoffIsShort: after the database returns, the bus is back within
// a second (the ceiling was 10 s, and the node looked ready while its
// cross-node wake-ups were still away).
func TestBackoffIsShort(t *testing.T) {
	for attempt := range 100 {
		if d := backoff(attempt); d <= 0 || d > time.Second {
			t.Fatalf("backoff(%d) = %s, want within (0, 1s]", attempt, d)
		}
	}
	if d := backoff(0); d > minBackoff {
		t.Fatalf("first retry after %s, want at most %s", d, minBackoff)
	}
}
