//go:build linux

package radius

import (
	"encoding/binary"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// oobSize is room for the control message that carries a datagram's
// arrival stamp.
var oobSize = unix.CmsgSpace(16)

// stampArrivals asks the kernel to stamp every datagram with the time it
// arrived (SO_TIMESTAMPNS): when the bridge is busy, a request can wait in
// the socket's buffer, and which attempt it belongs to is decided by when
// it arrived, not by when it was read.
func stampArrivals(conn *net.UDPConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return false
	}
	return true
}

// arrivalStamp returns the kernel's arrival stamp in oob, or the zero time.
func arrivalStamp(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPNS {
			continue
		}
		switch len(m.Data) {
		case 16: // struct timespec of 64-bit platforms
			return time.Unix(int64(binary.NativeEndian.Uint64(m.Data)), int64(binary.NativeEndian.Uint64(m.Data[8:])))
		case 8:
			return time.Unix(int64(int32(binary.NativeEndian.Uint32(m.Data))), int64(int32(binary.NativeEndian.Uint32(m.Data[4:]))))
		}
	}
	return time.Time{}
}
