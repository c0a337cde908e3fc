package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// DSNEnv names the database the PostgreSQL tests use.
const DSNEnv = "BRIDGE_TEST_POSTGRES_DSN"

// DSN returns the test server's DSN, or skips the test without one.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		testenv.Unavailable(t, "postgres", "set "+DSNEnv+"=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	return dsn
}

// FreshSchema makes an empty schema and returns a DSN whose search_path is
// that schema; it is dropped at the end of the test.
func FreshSchema(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
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
