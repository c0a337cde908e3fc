// Package testenv decides what a test does when a real service it needs
// (PostgreSQL, slapd, radclient, Chromium) is not there: on a developer's
// machine it skips with a message saying how to enable it; in CI, where
// BRIDGE_TEST_REQUIRE names the service, it fails, so that CI can never
// pass by skipping.
package testenv
