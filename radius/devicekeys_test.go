package radius_test

import (
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/bridge-idp/bridge/pushauth"
	bradius "github.com/bridge-idp/bridge/radius"
)

// strictClients makes vpn-hold and vpn-challenge (without number matching)
// clients with device_keys hardware.
func strictClients(c *bradius.Config, _ *bradius.Deps) {
	for _, cl := range c.Clients {
		switch cl.Name {
		case "vpn-hold":
			cl.DeviceKeys = pushauth.KeysHardware
		case "vpn-challenge":
			cl.DeviceKeys, cl.NumberMatching = pushauth.KeysHardware, false
		}
	}
}

// Under device_keys hardware one-time codes are no second factor: a TOTP
// or bypass code after the password is rejected with a message saying so,
// before it is checked (it still works on a client that takes codes), and
// a code typed at a push's Access-Challenge is refused while the push
// waits on for the phone, whose approval then gets in.
func TestCodesRefusedUnderDeviceKeys(t *testing.T) {
	e := newEnv(t, strictClients)
	phone := e.enrollWith("alice", map[string]bool{"hardware_key": true})
	code := e.totpCode("alice")
	hold, lax := e.nas(holdAddr, secret), e.nas(autoAddr, secret)
	now := time.Now()

	r := hold.exchange(hold.accessRequest("alice", password+","+code(now)), wait)
	if r == nil || r.Code != radius.CodeAccessReject || !strings.Contains(replyMessage(r), "does not take one-time codes") {
		t.Fatalf("TOTP suffix under hardware: %v %q, want a reject saying codes are not taken", r, replyMessage(r))
	}
	if r := lax.exchange(lax.accessRequest("alice", password+","+code(now)), wait); r == nil || r.Code != radius.CodeAccessAccept {
		t.Fatalf("the refused TOTP code on a client that takes codes: %v, want accept (it was not used up)", r)
	}
	bypass, _, err := e.bypass.Issue(e.ctx, "bob", time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	if r := hold.exchange(hold.accessRequest("bob", password+","+bypass), wait); r == nil || r.Code != radius.CodeAccessReject || !strings.Contains(replyMessage(r), "does not take one-time codes") {
		t.Fatalf("bypass suffix under hardware: %v %q, want reject", r, replyMessage(r))
	}
	if r := lax.exchange(lax.accessRequest("bob", password+","+bypass), wait); r == nil || r.Code != radius.CodeAccessAccept {
		t.Fatalf("the refused bypass code on a client that takes codes: %v, want accept", r)
	}
	if s, _ := e.pushesStarted("alice"); s != 0 {
		t.Errorf("a refused code sent %d pushes", s)
	}
	evs := e.audited("login", "alice")
	if len(evs) == 0 || !strings.Contains(evs[0].Reason, "one-time code refused") {
		t.Errorf("the refusal is not audited: %+v", evs)
	}

	// Challenge mode: the prompt does not offer a code; one typed is
	// refused and the push still waits.
	n := e.nas(challengeAddr, secret)
	resp := n.exchange(n.accessRequest("alice", password), wait)
	if resp == nil || resp.Code != radius.CodeAccessChallenge || strings.Contains(replyMessage(resp), "code") {
		t.Fatalf("challenge under hardware: %v %q, want a challenge that offers no code", resp, replyMessage(resp))
	}
	state := rfc2865.State_Get(resp)
	typed := n.exchange(n.accessRequest("alice", code(now.Add(30*time.Second)), withState(state)), wait)
	if typed == nil || typed.Code != radius.CodeAccessChallenge || !strings.Contains(replyMessage(typed), "does not take one-time codes") {
		t.Fatalf("a code at the challenge: %v %q, want the challenge again saying codes are not taken", typed, replyMessage(typed))
	}
	e.answer(phone, "approve", "")
	if final := n.exchange(n.accessRequest("alice", "", withState(state)), wait); final == nil || final.Code != radius.CodeAccessAccept {
		t.Fatalf("after the phone approved: %v, want accept", final)
	}
}
