package pgbus

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store/postgres/pgtest"
)

func requireDSN(t *testing.T) string { return pgtest.DSN(t) }

// node opens a bus, as one bridge node would, and closes it at the end.
func node(t *testing.T, dsn string, logger *slog.Logger) *Bus {
	t.Helper()
	b, err := Open(context.Background(), dsn, logger)
	if err != nil {
		t.Fatalf("opening the bus: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("closing the bus: %v", err)
		}
	})
	return b
}

// topic is a topic no other test (or test binary sharing the database)
// publishes.
func topic(t *testing.T) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "test:" + t.Name() + ":" + hex.EncodeToString(b)
}

// waitWake fails the test unless c receives within the deadline.
func waitWake(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	select {
	case <-c:
	case <-ctx.Done():
		t.Fatalf("%s: no wake-up before the deadline", what)
	}
}

// woken reports whether a wake-up is waiting on c, taking it.
func woken(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func admin(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPublishReachesTheOtherNode(t *testing.T) {
	dsn := requireDSN(t)
	a, b := node(t, dsn, nil), node(t, dsn, nil)
	tp := topic(t)
	wa, cancelA := a.Subscribe(tp)
	defer cancelA()
	wb, cancelB := b.Subscribe(tp)
	defer cancelB()

	if err := b.Publish(context.Background(), tp); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wa, "subscriber on the other node")
	waitWake(t, wb, "subscriber on the publishing node")

	if err := a.Publish(context.Background(), tp); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wb, "subscriber on the other node (reverse direction)")
	waitWake(t, wa, "subscriber on the publishing node (reverse direction)")
}

// TestOwnNotificationSkipped: a node's listener ignores what the node
// published (its subscribers were woken directly). PostgreSQL delivers
// notifications in commit order, so once a later notification from the
// other node has arrived, the echo would have too.
func TestOwnNotificationSkipped(t *testing.T) {
	dsn := requireDSN(t)
	a, b := node(t, dsn, nil), node(t, dsn, nil)
	tp, later := topic(t), topic(t)
	w, cancel := a.Subscribe(tp)
	defer cancel()
	wl, cancelL := a.Subscribe(later)
	defer cancelL()

	if err := a.Publish(context.Background(), tp); err != nil {
		t.Fatal(err)
	}
	if !woken(w) {
		t.Fatal("Publish did not wake the node's own subscriber directly")
	}
	if err := b.Publish(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wl, "later notification from the other node")
	if woken(w) {
		t.Fatal("the node's own notification came back through its listener")
	}
}

// TestCancelStopsDelivery: after cancel, notifications for the topic no
// longer reach the subscription. A second topic published afterwards by
// the same node is delivered after the first (commit order), so once it
// has arrived the cancelled subscription would have been woken already.
func TestCancelStopsDelivery(t *testing.T) {
	dsn := requireDSN(t)
	a, b := node(t, dsn, nil), node(t, dsn, nil)
	tp, later := topic(t), topic(t)
	gone, cancelGone := a.Subscribe(tp)
	kept, cancelKept := a.Subscribe(later)
	defer cancelKept()
	cancelGone()

	for _, p := range []string{tp, later} {
		if err := b.Publish(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	waitWake(t, kept, "subscription still active")
	if woken(gone) {
		t.Fatal("a cancelled subscription was woken")
	}
}

// TestReconnectWakesAll kills the listening connection's backend: the bus
// reconnects, wakes every subscriber (notifications may have been lost
// meanwhile), and later notifications arrive again.
func TestReconnectWakesAll(t *testing.T) {
	dsn := requireDSN(t)
	a, b := node(t, dsn, nil), node(t, dsn, nil)
	tp := topic(t)
	w, cancel := a.Subscribe(tp)
	defer cancel()

	old := a.pid.Load()
	if old == 0 {
		t.Fatal("no listening connection after Open")
	}
	var killed bool
	if err := admin(t, dsn).QueryRow("SELECT pg_terminate_backend($1)", int64(old)).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminating the listener's backend %d: %v, %v", old, killed, err)
	}
	waitWake(t, w, "wake-up after reconnecting")
	if now := a.pid.Load(); now == 0 || now == old {
		t.Fatalf("listener backend after reconnecting: %d (was %d)", now, old)
	}
	if woken(w) {
		t.Fatal("woken twice with nothing published")
	}
	if err := b.Publish(context.Background(), tp); err != nil {
		t.Fatal(err)
	}
	waitWake(t, w, "notification after reconnecting")
}

func TestTopicLimits(t *testing.T) {
	dsn := requireDSN(t)
	a, b := node(t, dsn, nil), node(t, dsn, nil)
	longest := topic(t)
	longest += strings.Repeat("x", MaxTopicLen-len(longest))
	w, cancel := a.Subscribe(longest)
	defer cancel()
	if err := b.Publish(context.Background(), longest); err != nil {
		t.Fatalf("publishing a topic of MaxTopicLen bytes: %v", err)
	}
	waitWake(t, w, "topic of MaxTopicLen bytes")
	for name, bad := range map[string]string{
		"too long": longest + "x",
		"empty":    "",
		"NUL":      "a\x00b",
		"not UTF8": "a\xffb",
	} {
		if err := b.Publish(context.Background(), bad); err == nil {
			t.Errorf("%s topic accepted", name)
		}
	}
}

// ourGoroutines counts goroutines this package started; blockedOnly
// leaves out those running: after Close there must be no blocked one (one
// that has just closed done and is returning is running, not blocked).
func ourGoroutines(blockedOnly bool) (n int, stacks string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		running := strings.Contains(header, "[running]") || strings.Contains(header, "[runnable]")
		if strings.Contains(g, "created by github.com/bridge-idp/bridge/pushauth/pgbus.") && !(blockedOnly && running) {
			n++
			stacks += g + "\n\n"
		}
	}
	return n, stacks
}

func TestCloseStopsEverything(t *testing.T) {
	dsn := requireDSN(t)
	b, err := Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, _ := ourGoroutines(false); n == 0 {
		t.Fatal("no listener goroutine found while open: the leak check below would prove nothing")
	}
	tp := topic(t)
	w, cancel := b.Subscribe(tp)
	defer cancel()
	if err := b.Publish(context.Background(), tp); err != nil {
		t.Fatal(err)
	}
	waitWake(t, w, "local publish")
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if n, stacks := ourGoroutines(true); n != 0 {
		t.Fatalf("%d goroutines left after Close:\n%s", n, stacks)
	}
	if err := b.Publish(context.Background(), tp); err == nil {
		t.Fatal("publish after Close succeeded")
	}
}

// logWatch is a slog handler that passes each record's message to a channel.
type logWatch struct{ msgs chan string }

func (h logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h logWatch) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h logWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logWatch) WithGroup(string) slog.Handler      { return h }

// TestCloseWhileReconnecting: a bus whose database refuses it (its role
// may no longer log in) keeps retrying with back-off; Close still ends it.
func TestCloseWhileReconnecting(t *testing.T) {
	dsn := requireDSN(t)
	db := admin(t, dsn)
	b := make([]byte, 6)
	rand.Read(b)
	role := "bridge_pgbus_test_" + hex.EncodeToString(b)
	if _, err := db.Exec("CREATE ROLE " + role + " LOGIN"); err != nil {
		t.Fatalf("creating a role: %v", err)
	}
	t.Cleanup(func() {
		db.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
		db.Exec("DROP ROLE " + role)
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)

	logs := logWatch{msgs: make(chan string, 100)}
	bus, err := Open(context.Background(), u.String(), slog.New(logs))
	if err != nil {
		t.Fatalf("opening as %s: %v", role, err)
	}
	defer bus.Close()
	pid := bus.pid.Load()
	if _, err := db.Exec("ALTER ROLE " + role + " NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("SELECT pg_terminate_backend($1)", int64(pid)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for failed := false; !failed; {
		select {
		case m := <-logs.msgs:
			failed = strings.Contains(m, "reconnecting failed")
		case <-ctx.Done():
			t.Fatal("the bus did not report a failed reconnection")
		}
	}
	if err := bus.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n, stacks := ourGoroutines(true); n != 0 {
		t.Fatalf("%d goroutines left after Close:\n%s", n, stacks)
	}
}

func TestOpenErrorsHidePassword(t *testing.T) {
	_, err := Open(context.Background(), "postgres://u:s3cret@127.0.0.1:notaport/db", nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad DSN: err = %v (must fail without quoting the password)", err)
	}
	_, err = Open(context.Background(), "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=2", nil)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("unreachable server: err = %v", err)
	}
}

// TestQuietConnectionIsPinged: with a short health interval the listener
// times out waiting, pings, and keeps the same connection, which still
// delivers afterwards.
func TestQuietConnectionIsPinged(t *testing.T) {
	dsn := requireDSN(t)
	logs := logWatch{msgs: make(chan string, 100)}
	a, err := open(context.Background(), dsn, slog.New(logs), 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := node(t, dsn, nil)
	tp := topic(t)
	w, cancel := a.Subscribe(tp)
	defer cancel()
	pid := a.pid.Load()

	ctx, cancelWait := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancelWait()
	for pings := 0; pings < 3; {
		select {
		case m := <-logs.msgs:
			switch {
			case strings.Contains(m, "answered a ping"):
				pings++
			case strings.Contains(m, "lost the listening connection"):
				t.Fatalf("a quiet connection was dropped: %s", m)
			}
		case <-ctx.Done():
			t.Fatalf("only %d health checks before the deadline", pings)
		}
	}
	if now := a.pid.Load(); now != pid {
		t.Fatalf("the listening connection changed from backend %d to %d", pid, now)
	}
	if woken(w) {
		t.Fatal("health checks woke a subscriber")
	}
	if err := b.Publish(context.Background(), tp); err != nil {
		t.Fatal(err)
	}
	waitWake(t, w, "notification after health checks")
}
