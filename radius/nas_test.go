package radius_test

import (
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// emptyPassword replaces User-Password with a zero-length attribute, as
// radcli (ocserv) sends when the user answers a challenge's prompt with
// Enter.
func emptyPassword(p *radius.Packet) { p.Set(rfc2865.UserPassword_Type, radius.Attribute{}) }

func TestChallengeAnsweredWithEmptyUserPassword(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	n := e.nas(challengeAddr, secret)
	resp := n.exchange(n.accessRequest("alice", password), wait)
	if resp == nil || resp.Code != radius.CodeAccessChallenge {
		t.Fatalf("got %v, want Access-Challenge", resp)
	}
	m := numberRE.FindStringSubmatch(replyMessage(resp))
	if m == nil {
		t.Fatalf("Reply-Message %q shows no number", replyMessage(resp))
	}
	state := rfc2865.State_Get(resp)
	e.answer(phone, "approve", m[1])
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
