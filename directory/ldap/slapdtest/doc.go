// Package slapdtest starts a throwaway OpenLDAP server (slapd) for tests:
// Start writes a slapd.conf and an mdb database into t.TempDir(), runs
// slapd in the foreground (-d 0) on free 127.0.0.1 ports, waits until it
// accepts connections, loads a base LDIF with ldapadd (people and groups,
// a service account, alice in two groupOfNames groups, and a user the
// disabled filter matches) and stops the process in t.Cleanup.
//
// Access is as on a real server: only the service account (and the rootdn)
// reads ou=people and ou=groups; a user reads their own entry; anonymous
// may only bind. A connection left bound as a user therefore fails the
// searches it makes next.
//
// The ppolicy overlay, when the installation has it, adds a user locked
// for good (pwdAccountLockedTime 000001010000Z: slapd refuses his binds)
// and one under a policy that locks her out for a few seconds after two
// wrong passwords. The memberof overlay, when present, maintains memberOf. With TLS,
// a CA and a server certificate for 127.0.0.1 are made in Go and slapd also
// listens on ldaps:// (and accepts StartTLS on ldap://).
//
// Without /usr/sbin/slapd the test is skipped ("apt-get install slapd
// ldap-utils"), unless BRIDGE_TEST_REQUIRE contains "slapd": then it fails.
package slapdtest
