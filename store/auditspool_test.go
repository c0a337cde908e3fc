package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/storetest"
)

// downLog is an audit log whose store can be taken away: while down, every
// append fails as a cut connection does. allow, if positive, is how many
// batches still pass before the store goes down by itself.
type downLog struct {
	store.AuditLog
	down    atomic.Bool
	invalid atomic.Bool // refuse every event as invalid instead
	allow   atomic.Int64
}

var errCut = &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}

func (d *downLog) fail() error {
	if d.invalid.Load() {
		return fmt.Errorf("%w: injected", store.ErrInvalid)
	}
	if d.allow.Load() > 0 && d.allow.Add(-1) == 0 {
		d.down.Store(true)
		return nil
	}
	if d.down.Load() {
		return errCut
	}
	return nil
}

func (d *downLog) AppendAuditBatch(ctx context.Context, es []store.AuditEvent) ([]store.AuditEvent, error) {
	if err := d.fail(); err != nil {
		return nil, err
	}
	return d.AuditLog.AppendAuditBatch(ctx, es)
}

func (d *downLog) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	if err := d.fail(); err != nil {
		return store.AuditEvent{}, err
	}
	return d.AuditLog.AppendAudit(ctx, e)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openSpool(t *testing.T, path string, max int64) *store.AuditSpool {
	t.Helper()
	sp, err := store.OpenAuditSpool(path, max, discard())
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func event(i int) store.AuditEvent {
	return store.AuditEvent{Time: time.Unix(int64(1000+i), 0), Actor: "test", Action: "spool", Subject: fmt.Sprint(i), Channel: "test", Result: store.ResultSuccess}
}

// waitFlushed waits until the batcher's spool is empty (or fails the test
// after a generous minute: a wait, not a timing assertion).
func waitFlushed(t *testing.T, b *store.AuditBatcher) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); b.Spooled() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the spool still holds %d events", b.Spooled())
		}
	}
}

// checkLog checks that the store holds the events 0..n-1 in order and
// that the chain verifies.
func checkLog(t *testing.T, st store.AuditLog, n int) {
	t.Helper()
	got, err := st.ListAudit(context.Background(), 0, 10*n+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d events in the store, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Subject != fmt.Sprint(i) || !e.Time.Equal(event(i).Time) {
			t.Fatalf("event %d is %q at %v: out of order or changed", i, e.Subject, e.Time)
		}
	}
	rep, err := store.VerifyChain(context.Background(), st, storetest.AuditKey(), 0)
	if err != nil || !rep.OK() {
		t.Fatalf("chain: %+v, %v", rep, err)
	}
}

// TestAuditSpoolKeepsEventsOfAnOutage: events appended while the store is
// cut are acknowledged from the spool, appended in order when it answers
// again, with the chain intact, and an event after the outage comes after
// them.
func TestAuditSpoolKeepsEventsOfAnOutage(t *testing.T) {
	st := openSQLite(t)
	log := &downLog{AuditLog: st}
	path := filepath.Join(t.TempDir(), "audit.spool")
	b := store.NewAuditBatcherWith(log, discard(), store.AuditBatcherOptions{Spool: openSpool(t, path, 0), Retry: 10 * time.Millisecond})
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Append(ctx, event(0)); err != nil {
		t.Fatal(err)
	}
	log.down.Store(true)
	for i := 1; i <= 5; i++ {
		e, err := b.Append(ctx, event(i))
		if err != nil {
			t.Fatalf("append during the outage: %v (the event is lost)", err)
		}
		if e.Seq != 0 {
			t.Fatalf("a spooled event came back with seq %d", e.Seq)
		}
	}
	if b.Spooled() != 5 {
		t.Fatalf("%d events spooled, want 5", b.Spooled())
	}
	log.down.Store(false)
	if _, err := b.Append(ctx, event(6)); err != nil {
		t.Fatal(err)
	}
	waitFlushed(t, b)
	checkLog(t, st, 7)
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("spool after the flush: %v, %v", fi, err)
	}
}

// TestAuditSpoolFlushesAtStart: a node restarted during an outage appends
// what its spool holds once the store answers, and a partly flushed spool
// resumes after the last batch the store took (nothing twice).
func TestAuditSpoolFlushesAtStart(t *testing.T) {
	st := openSQLite(t)
	log := &downLog{AuditLog: st}
	log.down.Store(true)
	path := filepath.Join(t.TempDir(), "audit.spool")
	const n = store.MaxAuditBatch + 44
	b := store.NewAuditBatcherWith(log, discard(), store.AuditBatcherOptions{Spool: openSpool(t, path, 0), Retry: time.Hour})
	for i := range n {
		if _, err := b.Append(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	// The store takes one batch, then goes away again.
	log.down.Store(false)
	log.allow.Store(1)
	b = store.NewAuditBatcherWith(log, discard(), store.AuditBatcherOptions{Spool: openSpool(t, path, 0), Retry: time.Hour})
	for deadline := time.Now().Add(time.Minute); b.Spooled() != n-store.MaxAuditBatch; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("spool holds %d events, want %d", b.Spooled(), n-store.MaxAuditBatch)
		}
	}
	b.Close()

	log.down.Store(false)
	sp := openSpool(t, path, 0)
	if sp.Len() != n-store.MaxAuditBatch {
		t.Fatalf("reopened spool holds %d events, want %d", sp.Len(), n-store.MaxAuditBatch)
	}
	b = store.NewAuditBatcherWith(log, discard(), store.AuditBatcherOptions{Spool: sp, Retry: 10 * time.Millisecond})
	defer b.Close()
	waitFlushed(t, b)
	checkLog(t, st, n)
}

// TestAuditSpoolDropsATornTail: a last record cut short or damaged (a
// crash in the middle of a write) is detected by its length or checksum
// and dropped; the records before it are kept and the spool takes new
// ones after them.
func TestAuditSpoolDropsATornTail(t *testing.T) {
	for name, damage := range map[string]func(b []byte) []byte{
		"cut short":      func(b []byte) []byte { return b[:len(b)-3] },
		"header only":    func(b []byte) []byte { return append(b, 0, 0, 0, 9) },
		"flipped byte":   func(b []byte) []byte { b[len(b)-2] ^= 0x40; return b },
		"huge length":    func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1) },
		"garbage record": func(b []byte) []byte { return append(b, []byte("garbage that is no record")...) },
	} {
		t.Run(name, func(t *testing.T) {
			st := openSQLite(t)
			log := &downLog{AuditLog: st}
			log.down.Store(true)
			path := filepath.Join(t.TempDir(), "audit.spool")
			b := store.NewAuditBatcherWith(log, discard(), store.AuditBatcherOptions{Spool: openSpool(t, path, 0), Retry: time.Hour})
			for i := range 3 {
				if _, err := b.Append(context.Background(), event(i)); err != nil {
					t.Fatal(err)
				}
			}
			b.Close()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			keep := 3
			if name == "cut short" || name == "flipped byte" {
				keep = 2 // the third record itself is damaged
			}
			if err := os.WriteFile(path, damage(raw), 0o600); err != nil {
				t.Fatal(err)
			}
			sp := openSpool(t, path, 0)
			if sp.Len() != keep {
				t.Fatalf("%d events after the damage, want %d", sp.Len(), keep)
			}
			log.down.Store(false)
			b = store.NewAuditBatcherWith(log, discard(), store.AuditBatcherOptions{Spool: sp, Retry: 10 * time.Millisecond})
			defer b.Close()
			waitFlushed(t, b)
			if _, err := b.Append(context.Background(), event(keep)); err != nil {
				t.Fatal(err)
			}
			checkLog(t, st, keep+1)
		})
	}
}

// TestAuditSpoolBounded: a full spool refuses the event, and Append says
// so: the caller must not act as if the event were durable.
func TestAuditSpoolBounded(t *testing.T) {
	st := openSQLite(t)
	log := &downLog{AuditLog: st}
	log.down.Store(true)
	b := store.NewAuditBatcherWith(log, discard(), store.AuditBatcherOptions{Spool: openSpool(t, filepath.Join(t.TempDir(), "s"), 1024), Retry: time.Hour})
	defer b.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = b.Append(context.Background(), event(i))
	}
	if !errors.Is(err, store.ErrSpoolFull) {
		t.Fatalf("append to a full spool: %v, want ErrSpoolFull", err)
	}
}

// TestAuditSpoolNotForRefusals: an event the store refuses (ErrInvalid) is
// the caller's error, not an outage: it is not spooled.
func TestAuditSpoolNotForRefusals(t *testing.T) {
	st := openSQLite(t)
	log := &downLog{AuditLog: st}
	log.invalid.Store(true)
	b := store.NewAuditBatcherWith(log, discard(), store.AuditBatcherOptions{Spool: openSpool(t, filepath.Join(t.TempDir(), "s"), 0), Retry: time.Hour})
	defer b.Close()
	if _, err := b.Append(context.Background(), event(0)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("append of a refused event: %v, want ErrInvalid", err)
	}
	if b.Spooled() != 0 {
		t.Fatalf("a refused event was spooled")
	}
}

// TestAuditBatcherWithoutSpoolFails: without a spool an outage is an
// error for the caller (the behaviour the spool replaces).
func TestAuditBatcherWithoutSpoolFails(t *testing.T) {
	st := openSQLite(t)
	log := &downLog{AuditLog: st}
	log.down.Store(true)
	b := store.NewAuditBatcher(log, discard())
	defer b.Close()
	if _, err := b.Append(context.Background(), event(0)); err == nil {
		t.Fatal("an append to a store that is down succeeded without a spool")
	}
}

// TestAuditSpoolMakesItsFolder: with PostgreSQL nothing else makes
// data_dir, so the spool makes the folder it lives in (mode 0700).
func TestAuditSpoolMakesItsFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "node-1")
	sp, err := store.OpenAuditSpool(filepath.Join(dir, "audit.spool"), 0, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the spool's folder: %v, %v; want it made with mode 0700", fi, err)
	}
}

type sqlStateError string

func (e sqlStateError) Error() string    { return "server error " + string(e) }
func (e sqlStateError) SQLState() string { return string(e) }

// TestUnavailableClassifies: only the store not answering is spooled; a
// statement the database refused for its content (PostgreSQL's 22021 for
// a NUL byte in text) would be refused again, and spooled it would hold
// every later event back.
func TestUnavailableClassifies(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("dial tcp 127.0.0.1:5432: %w", syscall.ECONNREFUSED), true},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("append: %w", sqlStateError("08006")), true},  // connection failure
		{fmt.Errorf("append: %w", sqlStateError("57P01")), true},  // admin shutdown
		{fmt.Errorf("append: %w", sqlStateError("40001")), true},  // serialization failure
		{fmt.Errorf("append: %w", sqlStateError("22021")), false}, // invalid byte sequence (NUL)
		{fmt.Errorf("append: %w", sqlStateError("23502")), false}, // not null violation
		{fmt.Errorf("append: %w", store.ErrInvalid), false},
	} {
		if got := store.Unavailable(tc.err); got != tc.want {
			t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestAuditSpoolIsOneNodes: a second process (or a second open) of the same
// spool path is refused, instead of two nodes writing over each other.
func TestAuditSpoolIsOneNodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.spool")
	sp, err := store.OpenAuditSpool(path, 0, discard())
	if err != nil {
		t.Fatal(err)
	}
	if again, err := store.OpenAuditSpool(path, 0, discard()); err == nil {
		again.Close()
		t.Fatal("the spool was opened twice")
	}
	sp.Close()
	again, err := store.OpenAuditSpool(path, 0, discard())
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}
