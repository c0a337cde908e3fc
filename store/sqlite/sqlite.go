// Package sqlite is the embedded storage backend: one database file, WAL
// mode, created and migrated on first start, no cgo (modernc.org/sqlite).
// It suits a single bridge node; several nodes share PostgreSQL instead.
//
// Writers take the database's write lock at BEGIN (BEGIN IMMEDIATE) and
// wait up to BusyTimeout for it, so every read-modify-write in sqlstore is
// serialised and no update is lost.
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
}

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
	f.Close()

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: cfg.Path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s := sqlstore.New(db, dialect(), logger)
	if err := s.Ping(ctx); err != nil {
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

func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name: "sqlite",
		Blob: "BLOB",
		IsUnique: func(err error) bool {
			var e *msqlite.Error
			if !errors.As(err, &e) {
				return false
			}
			return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		},
	}
}
