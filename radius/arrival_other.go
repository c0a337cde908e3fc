//go:build !linux

package radius

import (
	"net"
	"time"
)

// oobSize: no arrival stamps on this platform.
var oobSize = 0

// stampArrivals: this platform's datagrams carry no arrival stamp; the
// time a request is read stands for its arrival.
func stampArrivals(*net.UDPConn) bool { return false }

func arrivalStamp([]byte) time.Time { return time.Time{} }
