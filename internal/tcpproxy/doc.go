// Package tcpproxy is a TCP proxy for tests that a test controls: it
// forwards every connection accepted on a loopback port to one target
// address until the test cuts it. Cut closes every connection it carries
// and refuses new ones (they are accepted and closed at once, as a peer
// that went away would look to a client); Restore accepts and forwards
// again. Tests put it between bridge nodes and PostgreSQL to take the
// database away from them without stopping the shared server.
package tcpproxy
