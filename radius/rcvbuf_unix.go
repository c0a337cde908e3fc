//go:build unix

package radius

import (
	"net"
	"runtime"
	"syscall"
)

// setReadBuffer asks for a receive buffer of n bytes and returns what the
// kernel gave (0 if it cannot tell). Linux caps the request at
// net.core.rmem_max and reports twice the usable size.
func setReadBuffer(conn *net.UDPConn, n int) int {
	_ = conn.SetReadBuffer(n)
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	got := 0
	_ = raw.Control(func(fd uintptr) {
		got, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	if err != nil {
		return 0
	}
	if runtime.GOOS == "linux" {
		got /= 2
	}
	return got
}
