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
	sent := time.Now()
	if _, err := cli.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the datagram waits in the buffer, as under load
	buf, oob := make([]byte, 64), make([]byte, oobSize)
	_, oobn, _, _, err := srv.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	read := time.Now()
	at := arrivalStamp(oob[:oobn])
	if at.IsZero() {
		t.Fatal("no arrival stamp in the control message")
	}
	// Ordering only, no durations: the stamp lies between the send and
	// the moment before the wait ended.
	if at.Before(sent.Add(-time.Second)) || !at.Before(read.Add(-100*time.Millisecond)) {
		t.Fatalf("arrival stamp %s: sent %s, read %s; want the stamp at the send, not at the read", at, sent, read)
	}
	if got := arrivalStamp(nil); !got.IsZero() {
		t.Fatalf("no control message gave %s", got)
	}
}
