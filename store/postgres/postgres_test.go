package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for the admin connection

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/postgres/pgtest"
	"github.com/bridge-idp/bridge/store/storetest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func freshSchema(t testing.TB) string { return pgtest.FreshSchema(t) }

func requireDSN(t testing.TB) string { return pgtest.DSN(t) }

func TestConformance(t *testing.T) {
	requireDSN(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dsn := freshSchema(t)
		return func(ctx context.Context) (store.Store, error) {
			return postgres.Open(ctx, postgres.Config{DSN: dsn, MaxConns: 8, AuditKey: storetest.AuditKey()}, discard())
		}
	})
}

func TestBadDSNHidesPassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), postgres.Config{DSN: "postgres://u:s3cret@127.0.0.1:notaport/db"}, discard())
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad DSN: err = %v (must fail without quoting the password)", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	// Port 1 on loopback: nothing listens, so the connection is refused.
	_, err := postgres.Open(context.Background(), postgres.Config{DSN: "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=2"}, discard())
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("unreachable server: err = %v", err)
	}
}

func BenchmarkStore(b *testing.B) {
	requireDSN(b)
	storetest.Bench(b, func(b *testing.B) storetest.Opener {
		dsn := freshSchema(b)
		return func(ctx context.Context) (store.Store, error) {
			return postgres.Open(ctx, postgres.Config{DSN: dsn, MaxConns: 8, AuditKey: storetest.AuditKey()}, discard())
		}
	})
}

func BenchmarkCounters(b *testing.B) {
	requireDSN(b)
	storetest.BenchCounters(b, func(b *testing.B) storetest.Opener {
		dsn := freshSchema(b)
		return func(ctx context.Context) (store.Store, error) {
			return postgres.Open(ctx, postgres.Config{DSN: dsn, MaxConns: 8, AuditKey: storetest.AuditKey()}, discard())
		}
	})
}
