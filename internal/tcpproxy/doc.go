// Package tcpproxy is a TCP proxy for tests that a test can cut: it
// forwards connections from a loopback port to a target (PostgreSQL, a
// RADIUS server over TCP) until Cut, which closes every connection and
// refuses new ones, and Restore, which accepts again. Tests use it to take
// a shared server away from the code under test without stopping the
// server itself.
//
// Data flow: Listen opens the loopback port; each accepted connection is
// dialled through to the target and copied both ways by two goroutines;
// Cut closes both ends of every open pair and makes new connections close
// at once (the client sees its connection reset, as when a network link
// or a server goes away); Close stops everything.
package tcpproxy
