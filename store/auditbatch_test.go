package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
)

// countingLog counts the transactions written through it.
type countingLog struct {
	store.AuditLog
	batches atomic.Int64
	fail    atomic.Bool // fail batches of more than one event
}

func (c *countingLog) AppendAuditBatch(ctx context.Context, es []store.AuditEvent) ([]store.AuditEvent, error) {
	c.batches.Add(1)
	if c.fail.Load() && len(es) > 1 {
		return nil, errors.New("injected batch failure")
	}
	return c.AuditLog.AppendAuditBatch(ctx, es)
}

func (c *countingLog) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	c.batches.Add(1)
	return c.AuditLog.AppendAudit(ctx, e)
}

func openSQLite(t *testing.T) store.Store {
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "b.db"), AuditKey: storetest.AuditKey()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func appendConcurrently(t *testing.T, b *store.AuditBatcher, n int) []store.AuditEvent {
	t.Helper()
	out := make([]store.AuditEvent, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e, err := b.Append(context.Background(), store.AuditEvent{Time: time.Unix(int64(i), 0), Actor: "test", Action: "batch", Subject: "s", Channel: "test", Result: store.ResultSuccess})
			if err != nil {
				t.Error(err)
			}
			out[i] = e
		})
	}
	wg.Wait()
	return out
}

// TestAuditBatcherGroupsCommits: 200 concurrent appends land in fewer
// transactions than events, each caller gets its own sequence number back,
// and the chain verifies.
func TestAuditBatcherGroupsCommits(t *testing.T) {
	st := openSQLite(t)
	log := &countingLog{AuditLog: st}
	b := store.NewAuditBatcher(log, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer b.Close()
	const n = 200
	got := appendConcurrently(t, b, n)
	seen := map[int64]bool{}
	for _, e := range got {
		if e.Seq == 0 || seen[e.Seq] {
			t.Fatalf("sequence %d missing or handed out twice", e.Seq)
		}
		seen[e.Seq] = true
	}
	if c := log.batches.Load(); c >= n {
		t.Fatalf("%d transactions for %d concurrent events: no grouping", c, n)
	}
	rep, err := store.VerifyChain(context.Background(), st, storetest.AuditKey(), 0)
	if err != nil || !rep.OK() || rep.Events != n {
		t.Fatalf("chain after batched appends: %+v, %v", rep, err)
	}
}

// TestAuditBatcherIsolatesFailures: when a batch fails, every event is
// retried alone and still committed.
func TestAuditBatcherIsolatesFailures(t *testing.T) {
	st := openSQLite(t)
	log := &countingLog{AuditLog: st}
	log.fail.Store(true)
	b := store.NewAuditBatcher(log, slog.New(slog.NewTextHandler(io.Discard, nil)))
	got := appendConcurrently(t, b, 50)
	b.Close()
	for _, e := range got {
		if e.Seq == 0 {
			t.Fatal("an event of a failed batch was not appended alone")
		}
	}
	if _, err := b.Append(context.Background(), store.AuditEvent{}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}
