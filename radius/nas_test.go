package radius_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/bridge-idp/bridge/internal/testenv"
	bradius "github.com/bridge-idp/bridge/radius"
)

// emptyPassword replaces User-Password with a zero-length attribute, as
// radcli (ocserv) sends when the user answers a challenge's prompt with
// Enter.
func emptyPassword(p *radius.Packet) { p.Set(rfc2865.UserPassword_Type, radius.Attribute{}) }

func TestChallengeAnsweredWithEmptyUserPassword(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	n := e.nas(challengeAddr, secret)
	resp, number := startChallenge(t, n, "alice")
	state := rfc2865.State_Get(resp)
	e.answer(phone, "approve", number)
	final := n.exchange(n.accessRequest("alice", "", withState(state), emptyPassword), wait)
	if final == nil || final.Code != radius.CodeAccessAccept {
		t.Fatalf("Enter (a zero-length User-Password) after approval: got %v %q, want Access-Accept; audit %+v",
			final, replyMessage(final), e.audited("login", "alice"))
	}
}

func TestEmptyUserPasswordWithoutStateRejected(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice")
	n := e.nas(challengeAddr, secret)
	resp := n.exchange(n.accessRequest("alice", "", emptyPassword), wait)
	if resp == nil || resp.Code != radius.CodeAccessReject {
		t.Fatalf("got %v, want Access-Reject", resp)
	}
	evs := e.audited("login", "alice")
	if len(evs) != 1 || !strings.Contains(evs[0].Reason, "empty User-Password") {
		t.Fatalf("audit: %+v, want one reject saying the User-Password is empty", evs)
	}
	if s, _ := e.pushesStarted("alice"); s != 0 {
		t.Errorf("an empty password started %d pushes", s)
	}
}

// A packet from an address of no client is dropped and logged with the
// address and port, once per address a minute.
func TestUnknownClientLogged(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	e := newEnv(t, func(_ *bradius.Config, d *bradius.Deps) { d.Now = clock.Now })
	n := e.nas(unknownAddr, secret)
	port := n.conn.LocalAddr().(*net.UDPAddr).Port
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(l, "unknown client") {
				out = append(out, l)
			}
		}
		return out
	}
	for i := range 3 {
		n.send(n.encode(n.accessRequest("alice", password), true))
		if r := n.recvRaw(300 * time.Millisecond); r != nil {
			t.Fatalf("packet %d from an unknown source was answered", i+1)
		}
	}
	if got := e.counter("bridge_radius_dropped_total", "reason", "unknown_client"); got != 3 {
		t.Errorf("dropped = %v, want 3", got)
	}
	ls := lines()
	if len(ls) != 1 {
		t.Fatalf("%d log lines for 3 packets within a minute, want 1:\n%s", len(ls), e.logs.String())
	}
	for _, want := range []string{"level=WARN", "addr=127.0.0.99", fmt.Sprintf("port=%d", port), "socket=auth"} {
		if !strings.Contains(ls[0], want) {
			t.Errorf("the line lacks %s: %s", want, ls[0])
		}
	}
	clock.Add(time.Minute)
	n.send(n.encode(n.accessRequest("alice", password), true))
	n.recvRaw(300 * time.Millisecond)
	if ls := lines(); len(ls) != 2 {
		t.Fatalf("a minute later: %d lines, want 2:\n%s", len(ls), e.logs.String())
	}
}

// The Class of an Access-Accept, per client: the default, off, or a
// template; and when it is on, an Accounting-Request carrying it is tied to
// the login in the audit log.
func TestClassPerClient(t *testing.T) {
	for _, tc := range []struct {
		name, class string
		want        func(chal string) string // "" for no Class
	}{
		{"default", "", func(c string) string { return "bridge:" + c }},
		{"off", bradius.ClassOff, func(string) string { return "" }},
		{"template", "vpn/{user}/{id}", func(c string) string { return "vpn/alice/" + c }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *bradius.Config, _ *bradius.Deps) { c.Clients[0].Class = tc.class })
			phone := e.enroll("alice")
			n := e.nas(holdAddr, secret)
			approved := e.answerAsync(phone, "approve", "")
			resp := n.exchange(n.accessRequest("alice", password), wait)
			if resp == nil || resp.Code != radius.CodeAccessAccept {
				t.Fatalf("got %v, want Access-Accept", resp)
			}
			c := <-approved
			want := tc.want(c.ID)
			var classes []string
			for _, a := range resp.Attributes {
				if a.Type == rfc2865.Class_Type {
					classes = append(classes, string(a.Attribute))
				}
			}
			switch {
			case want == "" && len(classes) != 0:
				t.Fatalf("Class %q sent with class: off", classes)
			case want != "" && (len(classes) != 1 || classes[0] != want):
				t.Fatalf("Class %q, want %q", classes, want)
			}
			login := e.audited("login", "alice")
			if len(login) != 1 || login[0].Details["class"] != want {
				t.Fatalf("the login's audit event has class %q, want %q: %+v", login[0].Details["class"], want, login)
			}
			if want == "" {
				return
			}
			// The NAS sends the Class back in accounting: the record
			// names the same Class as the login.
			a := e.nasTo(holdAddr, secret, e.srv.AcctAddr())
			p := radius.New(radius.CodeAccountingRequest, a.secret)
			rfc2865.UserName_SetString(p, "alice")
			rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
			rfc2865.Class_Set(p, []byte(classes[0]))
			b := a.encode(p, false)
			a.send(b)
			if r := a.recv(b, wait); r == nil {
				t.Fatal("accounting not answered")
			}
			acct := e.audited("radius.accounting", "alice")
			if len(acct) != 1 || acct[0].Details["class"] != login[0].Details["class"] {
				t.Fatalf("accounting %+v not tied to the login (class %q)", acct, want)
			}
		})
	}
}

// A login completed by a one-time code has no push challenge: {id} is a
// random id, different for every login.
func TestClassWithoutPush(t *testing.T) {
	e := newEnv(t, func(c *bradius.Config, _ *bradius.Deps) { c.Clients[0].Class = "otp:{id}" })
	code := e.totpCode("bob")
	n := e.nas(holdAddr, secret)
	resp := n.exchange(n.accessRequest("bob", password+","+code(time.Now())), wait)
	if resp == nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("got %v, want Access-Accept", resp)
	}
	class := string(rfc2865.Class_Get(resp))
	if !strings.HasPrefix(class, "otp:") || len(class) < len("otp:")+16 {
		t.Fatalf("Class %q, want otp: and a random id", class)
	}
	if l := e.audited("login", "bob"); len(l) != 1 || l[0].Details["class"] != class {
		t.Fatalf("audit: %+v, want class %q", l, class)
	}
}
