package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlstore"
)

// Config opens a SQLite database.
type Config struct {
	// Path of the database file; its directory is created (0700) if missing.
	Path string
	// BusyTimeout is how long a writer waits for the lock. Default 5s.
	BusyTimeout time.Duration
	// AuditKey is the audit chain key (store.AuditKeySize bytes), derived
	// from the KEK. Without it the store can read the audit log but not
	// append to it.
	AuditKey []byte
}

// maxConns bounds the connection pool.
const maxConns = 8

// Open opens (creating and migrating if needed) the database at cfg.Path.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (store.Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: no database path")
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: creating the database directory: %w", err)
	}
	// The file holds password hashes and sealed keys: create it private.
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", cfg.Path, err)
	}
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		logger.Warn("the database file is readable by other users; chmod 600 it", "path", cfg.Path, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	}
	f.Close()

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: a committed use of a TOTP step, bypass code or replay entry, and
	// an appended audit event, survive a power cut. NORMAL could roll them
	// back, and a replay would then succeed.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: cfg.Path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// Keep the connections open: each new one parses the whole schema
	// again, which cost a third of a busy node's CPU. Writers queue on
	// SQLite's lock anyway; a few connections serve concurrent readers.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	d := dialect()
	d.WriteQueue = cfg.BusyTimeout
	s := sqlstore.New(db, d, cfg.AuditKey, logger)
	if err := pingWhileBusy(ctx, s, cfg.BusyTimeout); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", cfg.Path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: could not switch to WAL mode (got %q): %v", cfg.Path, mode, err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// pingWhileBusy opens the first connection, retrying while the database is
// busy: switching a new file to WAL mode needs an exclusive lock, and SQLite
// does not wait on the busy handler for it, so processes opening the same
// new file at once can see SQLITE_BUSY.
func pingWhileBusy(ctx context.Context, s *sqlstore.DB, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := s.Ping(ctx)
		var e *msqlite.Error
		if err == nil || !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:         "sqlite",
		Blob:         "BLOB",
		WithoutRowID: " WITHOUT ROWID",
		// Writers also take turns in order (Dialect.WriteQueue, set from
		// busy_timeout in Open).
		AuditRowsPerInsert: 16,
		// SQLite's default collation (BINARY) already orders by bytes.
		IsUnique: func(err error) bool {
			var e *msqlite.Error
			if !errors.As(err, &e) {
				return false
			}
			return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		},
	}
}
