//go:build linux

package radius

import (
	"net"
	"testing"
	"time"
)

// TestArrivalStamps: the kernel stamps a datagram when it arrives, so a
// request read late (the bridge busy) still counts from its arrival.
func TestArrivalStamps(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !stampArrivals(srv) {
		t.Fatal("SO_TIMESTAMPNS refused")
	}
	cli, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// The kernel turns its receive stamps on a moment after the first
	// socket asks (a deferred static key); until then it stamps at the
	// read. So: datagrams until one carries its arrival (a bound, not a
	// timing assertion).
	buf, oob := make([]byte, 64), make([]byte, oobSize)
	stamped := false
	for try := 0; try < 50 && !stamped; try++ {
		sent := time.Now()
		if _, err := cli.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the datagram waits in the buffer, as under load
		_, oobn, _, _, err := srv.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		read := time.Now()
		at := arrivalStamp(oob[:oobn])
		if at.IsZero() {
			t.Fatal("no arrival stamp in the control message")
		}
		if at.Before(sent.Add(-time.Second)) || at.After(read) {
			t.Fatalf("arrival stamp %s outside the send (%s) and the read (%s)", at, sent, read)
		}
		stamped = at.Before(read.Add(-50 * time.Millisecond))
	}
	if !stamped {
		t.Fatal("no datagram carried the time it arrived, only the time it was read")
	}
	if got := arrivalStamp(nil); !got.IsZero() {
		t.Fatalf("no control message gave %s", got)
	}
}
