package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// Dialect is what differs between SQL databases.
type Dialect struct {
	// Name is shown in errors: "sqlite", "postgres".
	Name string
	// Blob is the column type for bytes: BLOB or BYTEA.
	Blob string
	// ForUpdate is appended to a SELECT that reads a row the transaction
	// will write (" FOR UPDATE" on PostgreSQL; SQLite locks the whole
	// database for a write transaction, so it needs nothing).
	ForUpdate string
	// MigrationLock is run first inside the migration transaction so that
	// nodes starting at once migrate one after the other (PostgreSQL:
	// an advisory transaction lock). Empty when the transaction itself
	// serialises (SQLite's BEGIN IMMEDIATE).
	MigrationLock string
	// WithoutRowID follows CREATE TABLE (...) for a table clustered on its
	// primary key (SQLite: " WITHOUT ROWID"; PostgreSQL has no such thing:
	// empty).
	WithoutRowID string
	// Collate follows a text column in ORDER BY so that both databases
	// order by bytes, whatever the server's locale (PostgreSQL: COLLATE "C").
	Collate string
	// IsUnique reports whether err is a unique or primary key violation.
	IsUnique func(error) bool
	// WriteQueue, if positive, makes this process's writes (transactions
	// and single write statements) take turns in arrival order, waiting at
	// most that long for their turn. For SQLite, which allows one writer
	// at a time: its busy handler sleeps and polls, which is not fair, so
	// under a steady write load one writer could lose every poll until
	// busy_timeout and fail (a login rejected for nothing). Other processes
	// on the same file still meet the busy handler.
	WriteQueue time.Duration
	// AuditRowsPerInsert bounds the rows of one audit INSERT; 0 means 200.
	// SQLite looks each $N parameter up by name with a linear search, so
	// one statement's cost grows with the square of its rows: it wants
	// small ones.
	AuditRowsPerInsert int
}

// DB implements store.Store on a *sql.DB.
type DB struct {
	db       *sql.DB
	writes   chan struct{} // the write queue (Dialect.WriteQueue); nil without one
	stmts    sync.Map      // query text → *sql.Stmt
	d        Dialect
	auditKey []byte
	logger   *slog.Logger
}

// interface guards
var _ store.Store = (*DB)(nil)

// New wraps an open database. auditKey is the audit chain key
// (store.AuditKeySize bytes); without it AppendAudit fails. Call Migrate
// before use.
func New(db *sql.DB, d Dialect, auditKey []byte, logger *slog.Logger) *DB {
	s := &DB{db: db, d: d, auditKey: bytes.Clone(auditKey), logger: logger}
	if d.WriteQueue > 0 {
		s.writes = make(chan struct{}, 1)
	}
	return s
}

// errWriteQueue is returned when a write waited longer than
// Dialect.WriteQueue for its turn.
var errWriteQueue = errors.New("timed out waiting for the other writers (the database is busy)")

// writeTurn waits for this write's turn in the write queue and returns the
// function that ends it. Channel senders are served in order, so writers
// go first come, first served.
func (s *DB) writeTurn(ctx context.Context) (func(), error) {
	if s.writes == nil {
		return func() {}, nil
	}
	select {
	case s.writes <- struct{}{}:
		return func() { <-s.writes }, nil
	default:
	}
	t := time.NewTimer(s.d.WriteQueue)
	defer t.Stop()
	select {
	case s.writes <- struct{}{}:
		return func() { <-s.writes }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, errWriteQueue
	}
}

// SQL returns the underlying database, for backend-specific extensions.
func (s *DB) SQL() *sql.DB { return s.db }

// Ping implements store.Store.
func (s *DB) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.d.Name, err)
	}
	var one int
	if err := s.queryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("%s: %w", s.d.Name, err)
	}
	return nil
}

// Close implements store.Store.
func (s *DB) Close() error {
	s.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// stmt returns query prepared once for the pool: database/sql keeps it
// prepared on each connection, so SQLite does not parse it again on every
// call (parsing was a sixth of a busy node's CPU). The queries are the
// package's constants, so the cache stays small.
func (s *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if v, ok := s.stmts.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow, query and exec run a prepared statement outside a transaction.
func (s *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return s.db.QueryRowContext(ctx, query, args...) // reports the error
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	done, err := s.writeTurn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.d.Name, err)
	}
	defer done()
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// tx runs fn in one transaction, committing if fn returns nil.
func (s *DB) tx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	done, err := s.writeTurn(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", s.d.Name, err)
	}
	defer done()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", s.d.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", s.d.Name, err)
	}
	return nil
}

// wrap turns a driver error into a store error: unique violations become
// store.ErrConflict, sql.ErrNoRows store.ErrNotFound.
func (s *DB) wrap(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	case s.d.IsUnique != nil && s.d.IsUnique(err):
		return fmt.Errorf("%s: %w", what, store.ErrConflict)
	default:
		return fmt.Errorf("%s: %s: %w", what, s.d.Name, err)
	}
}

// micro stores a time; the zero time is 0.
func micro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicro reads a time stored by micro, in UTC.
func fromMicro(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// execer is a *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// columns joins column names for a SELECT list.
func columns(cols ...string) string { return strings.Join(cols, ", ") }
