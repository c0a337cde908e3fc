package main

import (
	"crypto/hmac"
	"crypto/md5"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// Defect 2 of issue 12 and its multi-node form: one login attempt is one
// push, however many packets the NAS (or a proxy in front of several
// nodes) sends for it. The storm is what a NAS that retries and a user who
// clicks "connect" again send: the same Access-Request bytes ten times,
// and ten new Identifiers for the same user from the same station
// (Calling-Station-Id, NAS-Port, NAS). Pushes are counted at the phone.

const stormCopies, stormIdentifiers = 10, 10

// stormRequest is the storm's login as radclient input: same user, same
// station.
func stormRequest(user string) string {
	return login(user, password, "NAS-Port = 7")
}

// signedRequest encodes one Access-Request of the storm's station, with a
// Message-Authenticator, as bytes a test can send again unchanged.
func signedRequest(t *testing.T, user string) []byte {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, []byte(radiusSecret))
	p.Identifier = 200
	rfc2865.UserName_SetString(p, user)
	rfc2865.UserPassword_SetString(p, password)
	rfc2865.NASIdentifier_SetString(p, "test-vpn")
	rfc2865.CallingStationID_SetString(p, "203.0.113.9")
	rfc2865.NASPort_Set(p, 7)
	p.Set(rfc2869.MessageAuthenticator_Type, make([]byte, 16))
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	off := -1
	for i := 20; i+2 <= len(b) && b[i+1] >= 2; i += int(b[i+1]) {
		if b[i] == byte(rfc2869.MessageAuthenticator_Type) {
			off = i + 2
		}
	}
	if off < 0 {
		t.Fatal("no Message-Authenticator in the encoded request")
	}
	mac := hmac.New(md5.New, []byte(radiusSecret))
	mac.Write(b)
	copy(b[off:], mac.Sum(nil))
	return b
}

// sendCopies sends the same bytes n times at once from one socket (a NAS
// retransmitting) and collects the codes of the answers: the first within
// wait, the others within a second of the one before.
func sendCopies(t *testing.T, port int, pkt []byte, n int, wait time.Duration) []string {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Error(err)
		return nil
	}
	defer conn.Close()
	for range n {
		if _, err := conn.Write(pkt); err != nil {
			t.Error(err)
			return nil
		}
	}
	var codes []string
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	for {
		k, err := conn.Read(buf)
		if err != nil {
			return codes
		}
		resp, err := radius.Parse(buf[:k], []byte(radiusSecret))
		if err != nil {
			codes = append(codes, "unparsable: "+err.Error())
			continue
		}
		codes = append(codes, resp.Code.String())
		if len(codes) == n {
			return codes
		}
		// The copies still in flight are answered at once after the
		// first (or dropped as duplicates).
		conn.SetReadDeadline(time.Now().Add(time.Second))
	}
}

// storm sends the storm to port and returns every answer: radclient's for
// the new Identifiers, and the answers to the copies of one packet.
// via runs radclient (any live bridge's helper).
func storm(t *testing.T, via *liveBridge, port int, user string, hold time.Duration) (codes []string, radclientOut string) {
	t.Helper()
	entries := strings.Repeat(stormRequest(user)+"\n", stormIdentifiers)
	var wg sync.WaitGroup
	var copies []string
	pkt := signedRequest(t, user)
	wg.Go(func() { copies = sendCopies(t, port, pkt, stormCopies, hold+5*time.Second) })
	wg.Go(func() {
		radclientOut, _ = via.radclient(port, "auth", radiusSecret, entries, "-p", fmt.Sprint(stormIdentifiers))
	})
	wg.Wait()
	codes = append(radclientCodes(radclientOut), copies...)
	if len(copies) == 0 {
		t.Errorf("none of the %d copies of one packet was answered", stormCopies)
	}
	return codes, radclientOut
}

// checkStorm checks one storm's outcome and then a new attempt: exactly
// one push at the phone for the storm, every answer an Access-Accept,
// every new Identifier answered; a request sent after the answer is a new
// attempt with a push of its own.
func checkStorm(t *testing.T, b *liveBridge, port int, user string, ph *phone, codes []string, out string) {
	t.Helper()
	got := 0
	for _, c := range codes {
		if c != "Access-Accept" {
			t.Errorf("an answer of the storm is %s, want Access-Accept", c)
		} else {
			got++
		}
	}
	if n := len(radclientCodes(out)); n != stormIdentifiers {
		t.Errorf("%d of the %d new Identifiers were answered:\n%s", n, stormIdentifiers, out)
	}
	// What the phone shows after the storm ended: every push any request
	// started has been shown by then (a held request is answered only
	// once its push is); a moment more for the phone's output.
	time.Sleep(time.Second)
	if p := ph.pushes(); len(p) != 1 {
		t.Errorf("the phone was shown %d pushes for one login attempt (%d packets, %d answered), want 1: %v", len(p), stormCopies+stormIdentifiers, got, p)
	}
	if n := pushesSent(t, b, user); n != 1 {
		t.Errorf("the audit log has %d push.start events that sent a push, want 1", n)
	}
	if t.Failed() {
		var trail strings.Builder
		for _, e := range auditEvents(t, b, user) {
			fmt.Fprintf(&trail, "  %s %s %s challenge=%s\n", e.Action, e.Result, e.Reason, e.Details["challenge"])
		}
		t.Logf("the user's audit trail:\n%s", trail.String())
	}

	// A new attempt after the answer: its own push, never the earlier
	// approval.
	before := len(ph.pushes())
	again, _ := b.radclient(port, "auth", radiusSecret, stormRequest(user))
	if radclientCode(again) != "Access-Accept" {
		t.Errorf("the attempt after the storm:\n%s", again)
	}
	time.Sleep(time.Second)
	if n := len(ph.pushes()) - before; n != 1 {
		t.Errorf("the attempt after the storm was shown %d times at the phone, want 1 (a new push)", n)
	}
}

// phoneKinds are the phones the storms run against: one that answers as
// soon as it sees the push, and one whose user takes a few seconds.
var phoneKinds = []struct {
	name string
	args []string
}{
	{"fast phone", []string{"--auto-approve"}},
	{"slow phone", []string{"--auto-approve", "--answer-after", "3s"}},
}

// TestStormOneNodeHold: the storm against one node in hold mode (issue
// 12, defect 2: today a phone that answers at once was sent several
// pushes, 9 in the issue).
func TestStormOneNodeHold(t *testing.T) {
	const hold = 20 * time.Second
	b := startRadiusBridge(t, fmt.Sprintf("      wait: hold\n      hold_timeout: %s", hold))
	for i, kind := range phoneKinds {
		t.Run(kind.name, func(t *testing.T) {
			user := fmt.Sprintf("storm%d", i)
			b.user(user)
			ph := runPhone(t, b.phone, b.enroll(user), kind.args...)
			codes, out := storm(t, b, b.auth, user, hold)
			checkStorm(t, b, b.auth, user, ph, codes, out)
		})
	}
}

// TestStormTwoNodesLoadBalance: the same storm through FreeRADIUS with a
// load-balance pool over two nodes on one database: the packets spread
// over both nodes, and still one push.
func TestStormTwoNodesLoadBalance(t *testing.T) {
	const hold = 20 * time.Second
	c := newCluster(t, nil)
	c.startNodes(2, fmt.Sprintf("      wait: hold\n      hold_timeout: %s", hold))
	fr := startFreeRADIUS(t, "load-balance", int(hold/time.Second)+5, c.nodes...)
	for i, kind := range phoneKinds {
		t.Run(kind.name, func(t *testing.T) {
			user := fmt.Sprintf("storm%d", i)
			ph := runPhone(t, c.nodes[0].phone, c.user(user), kind.args...)
			before := [2]float64{metric(t, c.nodes[0], "bridge_radius_decisions_total"), metric(t, c.nodes[1], "bridge_radius_decisions_total")}
			codes, out := storm(t, c.nodes[0], fr.port, user, hold)
			for i, n := range c.nodes {
				if d := metric(t, n, "bridge_radius_decisions_total") - before[i]; d == 0 {
					t.Errorf("node %d decided none of the storm: the pool did not spread it, and the test proves nothing across nodes", i)
				}
			}
			checkStorm(t, c.nodes[0], fr.port, user, ph, codes, out)
		})
	}
}
