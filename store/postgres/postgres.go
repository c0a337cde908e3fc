package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlstore"
)

// Config opens a PostgreSQL database.
type Config struct {
	// DSN is a libpq connection string or postgres:// URL.
	DSN string
	// MaxConns bounds the connection pool. Default 10.
	MaxConns int
	// AuditKey is the audit chain key (store.AuditKeySize bytes), derived
	// from the KEK. Without it the store can read the audit log but not
	// append to it.
	AuditKey []byte
}

// migrationLockID is the advisory lock key taken while migrating
// (arbitrary, constant: "bridge" in ASCII).
const migrationLockID = 0x627269646765

// Open connects, checks the server answers, and migrates the schema.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (store.Store, error) {
	pc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's message may quote the DSN, password included: keep it out.
		return nil, errors.New("postgres: the DSN does not parse (see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING)")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10
	}
	db := stdlib.OpenDB(*pc)
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	s := sqlstore.New(db, dialect(), cfg.AuditKey, logger)
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connecting to %s:%d/%s: %w", pc.Host, pc.Port, pc.Database, err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:          "postgres",
		Blob:          "BYTEA",
		Collate:       ` COLLATE "C"`,
		ForUpdate:     " FOR UPDATE",
		MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockID),
		IsUnique: func(err error) bool {
			var e *pgconn.PgError
			return errors.As(err, &e) && e.Code == "23505"
		},
	}
}
