package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "bridge.db")
		return func(ctx context.Context) (store.Store, error) {
			return sqlite.Open(ctx, sqlite.Config{Path: path, AuditKey: storetest.AuditKey()}, discard())
		}
	})
}

func TestFileIsPrivateAndWAL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub", "dir")
	path := filepath.Join(dir, "bridge.db")
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, AuditKey: storetest.AuditKey()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no WAL file next to the database: %v", err)
	}
}

func TestUnwritableLocation(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A path under a regular file cannot be created.
	if _, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(blocker, "bridge.db")}, discard()); err == nil {
		t.Fatal("opened a database under a regular file")
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) storetest.Opener {
		path := filepath.Join(b.TempDir(), "bridge.db")
		return func(ctx context.Context) (store.Store, error) {
			return sqlite.Open(ctx, sqlite.Config{Path: path, AuditKey: storetest.AuditKey()}, discard())
		}
	})
}

// TestWritersTakeTurns: writers of one process queue in order instead of
// polling SQLite's lock, so under a steady write load none waits past the
// busy timeout. (Polling is unfair: with a short timeout some writers
// lost every poll and failed with SQLITE_BUSY.)
func TestWritersTakeTurns(t *testing.T) {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db"),
		AuditKey: storetest.AuditKey(), BusyTimeout: 500 * time.Millisecond}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var (
		wg          sync.WaitGroup
		writes, bad atomic.Int64
		first       atomic.Value
	)
	stop := time.Now().Add(2 * time.Second)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				_, err := s.AppendAudit(context.Background(), store.AuditEvent{Time: time.Now(), Action: "test.write",
					Subject: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					bad.Add(1)
					first.CompareAndSwap(nil, err)
					continue
				}
				writes.Add(1)
			}
		})
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d of %d writes failed; first: %v", bad.Load(), bad.Load()+writes.Load(), first.Load())
	}
}

func BenchmarkCounters(b *testing.B) {
	storetest.BenchCounters(b, func(b *testing.B) storetest.Opener {
		path := filepath.Join(b.TempDir(), "bridge.db")
		return func(ctx context.Context) (store.Store, error) {
			return sqlite.Open(ctx, sqlite.Config{Path: path, AuditKey: storetest.AuditKey()}, discard())
		}
	})
}

// A user's audit history is read through its index, not by scanning the
// whole log (which grows with every login of every user).
func TestAuditBySubjectUsesIndex(t *testing.T) {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db"), AuditKey: storetest.AuditKey()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := s.(interface{ SQL() *sql.DB }).SQL()
	rows, err := db.Query("EXPLAIN QUERY PLAN SELECT seq FROM audit_events WHERE subject = ? AND seq < ? ORDER BY seq DESC LIMIT 20", "alice", 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "audit_events_by_subject") || strings.Contains(joined, "TEMP B-TREE") {
		t.Errorf("query plan %q: want a search of audit_events_by_subject without a sort", joined)
	}
}
