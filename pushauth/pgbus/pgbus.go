package pgbus

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/bridge-idp/bridge/pushauth"
)

// Channel is the PostgreSQL notification channel the bus uses.
const Channel = "bridge_push"

// nodeIDLen is the length of a node id in a payload (hex).
const nodeIDLen = 16

// MaxTopicLen is the longest topic, in bytes: a NOTIFY payload must be
// shorter than 8000 bytes, and it holds the node id, a colon and the topic.
const MaxTopicLen = 8000 - 1 - nodeIDLen - 1

const (
	// publishConns bounds the publishing pool.
	publishConns = 4
	// connectTimeout bounds one attempt to open the listening connection.
	connectTimeout = 10 * time.Second
	// healthEvery: a listening connection quiet for this long is pinged,
	// so one that died silently (a dropped NAT entry) is noticed.
	healthEvery = 30 * time.Second
	// Reconnection back-off after a failed attempt (the first attempt
	// after a drop is immediate). The ceiling is short: while the bus is
	// away, cross-node approvals wait for the engine's own polling, and the
	// node reports itself not ready; one connection attempt a second per
	// node is cheap for the database.
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Second
)

// Bus is a pushauth.Bus across nodes. It is safe for concurrent use.
type Bus struct {
	local  *pushauth.LocalBus
	node   string // this bus's id in payloads
	cfg    *pgx.ConnConfig
	pub    *sql.DB
	logger *slog.Logger
	health time.Duration // healthEvery, shorter in tests

	// pid is the listening connection's backend process id (0 while
	// reconnecting), for logs and tests.
	pid atomic.Uint32
	// down is why and since when the bus is not listening; nil while it is.
	down atomic.Pointer[outage]

	stop      context.CancelFunc
	done      chan struct{} // closed when the listener has stopped
	closeOnce sync.Once
	closeErr  error
}

// interface guards
var _ pushauth.Bus = (*Bus)(nil)

// Open connects the listening connection (so a publish on another node
// after Open returns reaches this one) and starts listening. Close stops it.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Bus, error) {
	return open(ctx, dsn, logger, healthEvery)
}

func open(ctx context.Context, dsn string, logger *slog.Logger, health time.Duration) (*Bus, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included: keep it out.
		return nil, errors.New("pgbus: the DSN does not parse (see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING)")
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "bridge push bus"
	}
	var id [nodeIDLen / 2]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("pgbus: node id: %w", err)
	}
	b := &Bus{
		local:  pushauth.NewLocalBus(),
		node:   hex.EncodeToString(id[:]),
		cfg:    cfg,
		logger: logger,
		health: health,
		done:   make(chan struct{}),
	}
	conn, err := b.listen(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgbus: listening on %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	b.pub = stdlib.OpenDB(*cfg.Copy())
	b.pub.SetMaxOpenConns(publishConns)
	b.pub.SetMaxIdleConns(publishConns)
	runCtx, stop := context.WithCancel(context.Background())
	b.stop = stop
	go b.run(runCtx, conn)
	return b, nil
}

// Subscribe implements pushauth.Bus.
func (b *Bus) Subscribe(topic string) (<-chan struct{}, func()) {
	return b.local.Subscribe(topic)
}

// Publish implements pushauth.Bus: it wakes this node's subscribers, then
// notifies the other nodes.
func (b *Bus) Publish(ctx context.Context, topic string) error {
	switch {
	case topic == "":
		return errors.New("pgbus: empty topic")
	case len(topic) > MaxTopicLen:
		return fmt.Errorf("pgbus: topic of %d bytes is longer than %d", len(topic), MaxTopicLen)
	case !utf8.ValidString(topic) || strings.IndexByte(topic, 0) >= 0:
		return errors.New("pgbus: topic is not valid UTF-8 text")
	}
	b.local.Publish(ctx, topic)
	if _, err := b.pub.ExecContext(ctx, "SELECT pg_notify('"+Channel+"', $1)", b.node+":"+topic); err != nil {
		return fmt.Errorf("pgbus: notifying other nodes of %.64q: %w", topic, err)
	}
	return nil
}

// WakeAll wakes every subscriber on this node.
func (b *Bus) WakeAll() { b.local.WakeAll() }

// outage is why the listening connection is down, and since when.
type outage struct {
	since time.Time
	err   error
}

// Ready reports whether the bus is listening for the other nodes'
// wake-ups: nil while it is, an error naming the cause and the time since
// it stopped while it reconnects (or after Close). For readiness checks.
func (b *Bus) Ready(context.Context) error {
	if o := b.down.Load(); o != nil {
		return fmt.Errorf("pgbus: not listening for other nodes' wake-ups since %s: %w",
			o.since.UTC().Format(time.RFC3339), o.err)
	}
	return nil
}

// Close stops listening, waits for the listener to end and closes the
// connections. Publish fails afterwards.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.stop()
		<-b.done
		b.closeErr = b.pub.Close()
	})
	return b.closeErr
}

// listen opens a connection and LISTENs on it.
func (b *Bus) listen(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, b.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("LISTEN: %w", err)
	}
	b.pid.Store(conn.PgConn().PID())
	b.down.Store(nil)
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx) // the connection is being dropped; nothing to do about an error
}

// run delivers notifications until ctx ends, reconnecting when the
// listening connection drops.
func (b *Bus) run(ctx context.Context, conn *pgx.Conn) {
	defer close(b.done)
	for {
		err := b.receive(ctx, conn)
		if ctx.Err() != nil {
			err = errors.New("closed")
		}
		b.down.Store(&outage{since: time.Now(), err: err})
		b.pid.Store(0)
		closeConn(conn)
		if ctx.Err() != nil {
			return
		}
		b.logger.WarnContext(ctx, "push bus: lost the listening connection; reconnecting", "err", err)
		if conn = b.reconnect(ctx); conn == nil {
			return
		}
		b.logger.InfoContext(ctx, "push bus: listening again")
		// Notifications sent while we were away are lost: everyone re-reads.
		b.local.WakeAll()
	}
}

// receive wakes local subscribers for each notification from another node
// until the connection fails or ctx ends.
func (b *Bus) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, b.health)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil || !pgconn.Timeout(err) {
				return err
			}
			pingCtx, cancel := context.WithTimeout(ctx, connectTimeout)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return fmt.Errorf("health check: %w", err)
			}
			b.logger.DebugContext(ctx, "push bus: the quiet listening connection answered a ping")
			continue
		}
		node, topic, ok := strings.Cut(n.Payload, ":")
		if !ok || len(node) != nodeIDLen {
			b.logger.DebugContext(ctx, "push bus: ignoring a notification not sent by a bridge", "payload_bytes", len(n.Payload))
			continue
		}
		if node == b.node {
			continue // Publish woke our subscribers already
		}
		b.local.Publish(ctx, topic)
	}
}

// reconnect opens a new listening connection, retrying with back-off; nil
// when ctx ends first.
func (b *Bus) reconnect(ctx context.Context) *pgx.Conn {
	for attempt := 0; ; attempt++ {
		conn, err := b.listen(ctx)
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		since := time.Now()
		if o := b.down.Load(); o != nil {
			since = o.since
		}
		b.down.Store(&outage{since: since, err: err})
		delay := backoff(attempt)
		b.logger.WarnContext(ctx, "push bus: reconnecting failed", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is the wait after the attempt-th failed reconnection (from 0):
// doubling from minBackoff up to maxBackoff, with jitter (a random half
// of it), so that nodes that lost the database together do not return in
// step.
func backoff(attempt int) time.Duration {
	wait := maxBackoff
	if attempt < 16 && minBackoff<<attempt < maxBackoff {
		wait = minBackoff << attempt
	}
	return wait/2 + mathrand.N(wait/2+1)
}
