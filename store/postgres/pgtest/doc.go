// Package pgtest gives tests a PostgreSQL database of their own: the server
// named by BRIDGE_TEST_POSTGRES_DSN, with a fresh schema per test, dropped
// when the test ends. Without the variable the test is skipped (or fails,
// when BRIDGE_TEST_REQUIRE names postgres, as in CI).
package pgtest
