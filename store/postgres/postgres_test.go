package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for the admin connection

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/storetest"
)

// DSNEnv names the database the PostgreSQL tests use. Each test gets its
// own schema in it, dropped at the end.
const DSNEnv = "BRIDGE_TEST_POSTGRES_DSN"

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// freshSchema makes an empty schema and returns a DSN whose search_path
// points at it.
func freshSchema(t testing.TB) string {
	t.Helper()
	dsn := requireDSN(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "bridge_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("creating schema (is PostgreSQL running at %s?): %v", dsn, err)
	}
	t.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(dsn, "postgres") {
		t.Fatalf("%s must be a postgres:// URL", DSNEnv)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// requireDSN returns the test database's DSN, or skips (fails in CI) without one.
func requireDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		testenv.Unavailable(t, "postgres", "set "+DSNEnv+"=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	return dsn
}

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
