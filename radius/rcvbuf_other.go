//go:build !unix

package radius

import "net"

// setReadBuffer asks for a receive buffer of n bytes; this platform cannot
// say what it got.
func setReadBuffer(conn *net.UDPConn, n int) int {
	_ = conn.SetReadBuffer(n)
	return 0
}
