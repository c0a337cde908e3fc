package radius_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"net/netip"

	"github.com/bridge-idp/bridge/pushauth"
	bradius "github.com/bridge-idp/bridge/radius"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/storetest"
)

const wait = 10 * time.Second

func TestHoldApproved(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	n := e.nas(holdAddr, secret)
	approved := e.answerAsync(phone, "approve", "")
	resp := n.exchange(n.accessRequest("Alice", password), wait)
	if resp == nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("got %v, want Access-Accept", resp)
	}
	c := <-approved
	if c.Claims.AppID != "vpn-hold" {
		t.Errorf("the phone was shown application %q, want the client's name", c.Claims.AppID)
	}
	// Reply attributes: Class for accounting, Session-Timeout, the
	// client's Filter-Id, and the vendor attribute of a group alice is in
	// (the directory says VPN-Admins, the config vpn-admins).
	if got := string(rfc2865.Class_Get(resp)); got != "bridge:"+c.ID {
		t.Errorf("Class = %q, want bridge:%s", got, c.ID)
	}
	if got := rfc2865.SessionTimeout_Get(resp); got != 8*3600 {
		t.Errorf("Session-Timeout = %d", got)
	}
	if got := rfc2865.FilterID_GetString(resp); got != "staff" {
		t.Errorf("Filter-Id = %q", got)
	}
	vsa, ok := resp.Lookup(rfc2865.VendorSpecific_Type)
	if !ok {
		t.Fatal("no Vendor-Specific attribute for the vpn-admins group")
	}
	vendor, value, err := radius.VendorSpecific(vsa)
	if err != nil || vendor != 12356 || value[0] != 1 || string(value[2:]) != "vpn-admins" {
		t.Errorf("Vendor-Specific = vendor %d %q (%v), want Fortinet-Group-Name vpn-admins", vendor, value, err)
	}
	evs := e.audited("login", "alice")
	if len(evs) != 1 || evs[0].Result != store.ResultSuccess {
		t.Fatalf("audit: %+v", evs)
	}
	d := evs[0].Details
	if d["nas_identifier"] != "test-nas" || evs[0].ClientIP != "198.51.100.7" || d["client"] != "vpn-hold" || d["factor"] != "push" || d["challenge"] != c.ID {
		t.Errorf("audit event lacks the NAS, client IP or factor: %+v", evs[0])
	}
}

func TestHoldWithoutGroupGetsNoGroupAttributes(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("bob")
	n := e.nas(holdAddr, secret)
	e.answerAsync(phone, "approve", "")
	resp := n.exchange(n.accessRequest("bob", password), wait)
	if resp == nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("got %v, want Access-Accept", resp)
	}
	if _, ok := resp.Lookup(rfc2865.VendorSpecific_Type); ok {
		t.Error("bob is not in vpn-admins but got its vendor attribute")
	}
	if rfc2865.FilterID_GetString(resp) != "staff" {
		t.Error("the client's own attributes are missing")
	}
}

func TestHoldDenied(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	n := e.nas(holdAddr, secret)
	e.answerAsync(phone, "deny", "")
	resp := n.exchange(n.accessRequest("alice", password), wait)
	if resp == nil || resp.Code != radius.CodeAccessReject {
		t.Fatalf("got %v, want Access-Reject", resp)
	}
	if !strings.Contains(replyMessage(resp), "denied") {
		t.Errorf("Reply-Message = %q", replyMessage(resp))
	}
	if _, ok := resp.Lookup(rfc2865.Class_Type); ok {
		t.Error("a reject carries a Class")
	}
	evs := e.audited("login", "alice")
	if len(evs) != 1 || evs[0].Result != store.ResultDenied {
		t.Fatalf("audit: %+v", evs)
	}
}

func TestHoldTimeoutRejectsAndCancels(t *testing.T) {
	e := newEnv(t, func(c *bradius.Config, _ *bradius.Deps) { c.Clients[0].HoldTimeout = 500 * time.Millisecond })
	phone := e.enroll("alice")
	n := e.nas(holdAddr, secret)
	resp := n.exchange(n.accessRequest("alice", password), wait)
	if resp == nil || resp.Code != radius.CodeAccessReject {
		t.Fatalf("got %v, want Access-Reject", resp)
	}
	if !strings.Contains(replyMessage(resp), "No answer") {
		t.Errorf("Reply-Message = %q", replyMessage(resp))
	}
	// The challenge is closed: the phone cannot approve it any more.
	cs, err := phone.Pending(e.ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.State == "pending" {
			t.Fatalf("challenge %s still pending after the hold timeout", c.ID)
		}
	}
	evs := e.audited("login", "alice")
	if len(evs) != 1 || !strings.Contains(evs[0].Reason, "hold_timeout") {
		t.Fatalf("audit: %+v", evs)
	}
}

func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice")
	n := e.nas(holdAddr, secret)
	wrong := n.exchange(n.accessRequest("alice", "not the password"), wait)
	unknown := n.exchange(n.accessRequest("mallory", password), wait)
	for _, r := range []*radius.Packet{wrong, unknown} {
		if r == nil || r.Code != radius.CodeAccessReject {
			t.Fatalf("got %v, want Access-Reject", r)
		}
		if len(r.Attributes) != 1 { // the Message-Authenticator only
			t.Errorf("reject carries %d attributes; a wrong password and an unknown user must look the same", len(r.Attributes))
		}
	}
	if s, _ := e.pushesStarted("alice"); s != 0 {
		t.Errorf("a wrong password sent %d pushes", s)
	}
}

func TestNoDevice(t *testing.T) {
	e := newEnv(t)
	n := e.nas(holdAddr, secret)
	resp := n.exchange(n.accessRequest("carol", password), wait)
	if resp == nil || resp.Code != radius.CodeAccessReject || !strings.Contains(replyMessage(resp), "No phone") {
		t.Fatalf("got %v (%q), want a reject saying no phone is enrolled", resp, replyMessage(resp))
	}
}

// A NAS resends the same Access-Request while the user decides: exactly one
// push, every copy absorbed, and after the answer the same answer again.
func TestRetransmissionsStartOnePush(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	n := e.nas(holdAddr, secret)
	req := n.encode(n.accessRequest("alice", password), true)
	for range 5 {
		n.send(req)
		time.Sleep(50 * time.Millisecond)
	}
	if r := n.recvRaw(200 * time.Millisecond); r != nil {
		t.Fatal("a copy was answered while the push was pending")
	}
	e.answer(phone, "approve", "")
	first := n.recvRaw(wait)
	if first == nil {
		t.Fatal("no answer")
	}
	if err := checkResponse(first, req, n.secret); err != nil || first[0] != byte(radius.CodeAccessAccept) {
		t.Fatalf("answer code %d: %v", first[0], err)
	}
	if r := n.recvRaw(300 * time.Millisecond); r != nil {
		t.Fatal("the absorbed copies were answered too")
	}
	// A copy after the answer gets the same bytes again, without a new
	// decision.
	n.send(req)
	again := n.recvRaw(wait)
	if !bytes.Equal(first, again) {
		t.Fatal("a retransmission after the answer did not get the cached answer")
	}
	if started, joined := e.pushesStarted("alice"); started != 1 || joined != 0 {
		t.Fatalf("%d pushes started, %d joined; want exactly one push", started, joined)
	}
	if got := len(e.audited("login", "alice")); got != 1 {
		t.Fatalf("%d decisions audited, want 1", got)
	}
	if got := e.counter("bridge_radius_retransmits_total", "action", "absorbed"); got != 4 {
		t.Errorf("absorbed = %v, want 4", got)
	}
	if got := e.counter("bridge_radius_retransmits_total", "action", "resent"); got != 1 {
		t.Errorf("resent = %v, want 1", got)
	}
}

// A new request (new identifier) for the same login while one is pending
// joins it: one push, both answered. The first request's hold timeout does
// not cancel the challenge under the second.
func TestNewRequestJoinsPendingPush(t *testing.T) {
	e := newEnv(t, func(c *bradius.Config, _ *bradius.Deps) { c.Clients[0].HoldTimeout = 1500 * time.Millisecond })
	phone := e.enroll("alice")
	n1, n2 := e.nas(holdAddr, secret), e.nas(holdAddr, secret)
	r1 := n1.encode(n1.accessRequest("alice", password), true)
	n1.send(r1)
	time.Sleep(700 * time.Millisecond)
	r2 := n2.encode(n2.accessRequest("alice", password), true)
	n2.send(r2)
	// The first request times out; the second is still held.
	if got := n1.recv(r1, wait); got == nil || got.Code != radius.CodeAccessReject {
		t.Fatalf("first request: %v, want a reject at its hold timeout", got)
	}
	e.answer(phone, "approve", "")
	if got := n2.recv(r2, wait); got == nil || got.Code != radius.CodeAccessAccept {
		t.Fatalf("second request: %v, want Access-Accept", got)
	}
	if started, joined := e.pushesStarted("alice"); started != 1 || joined != 1 {
		t.Fatalf("%d pushes started, %d joined; want one push that the second request joined", started, joined)
	}
}

var numberRE = regexp.MustCompile(`Type (\d+) on your phone`)

// startChallenge sends user's password from n to a number-matching
// challenge client and returns its Access-Challenge and the number shown.
func startChallenge(t *testing.T, n *nas, user string) (*radius.Packet, string) {
	t.Helper()
	resp := n.exchange(n.accessRequest(user, password), wait)
	if resp == nil || resp.Code != radius.CodeAccessChallenge {
		t.Fatalf("got %v, want Access-Challenge", resp)
	}
	m := numberRE.FindStringSubmatch(replyMessage(resp))
	if m == nil {
		t.Fatalf("Reply-Message %q shows no number", replyMessage(resp))
	}
	return resp, m[1]
}

func TestChallengeWithNumberMatching(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	n := e.nas(challengeAddr, secret)
	resp, number := startChallenge(t, n, "alice")
	state := rfc2865.State_Get(resp)
	if len(state) < 16 {
		t.Fatalf("State %q is too short to be unguessable", state)
	}
	if rfc2869.Prompt_Get(resp) != rfc2869.Prompt_Value_Echo {
		t.Error("no Prompt")
	}
	// Pressing Enter before approving: asked again, same State.
	again := n.exchange(n.accessRequest("alice", "", withState(state)), wait)
	if again == nil || again.Code != radius.CodeAccessChallenge || !bytes.Equal(rfc2865.State_Get(again), state) || !strings.Contains(replyMessage(again), number) {
		t.Fatalf("before approval: got %v %q, want the same challenge again with the number", again, replyMessage(again))
	}
	e.answer(phone, "approve", number)
	final := n.exchange(n.accessRequest("alice", "", withState(state)), wait)
	if final == nil || final.Code != radius.CodeAccessAccept {
		t.Fatalf("after approval: got %v, want Access-Accept", final)
	}
	// The State is single use.
	replay := n.exchange(n.accessRequest("alice", "", withState(state)), wait)
	if replay == nil || replay.Code != radius.CodeAccessReject {
		t.Fatalf("reused State: got %v, want Access-Reject", replay)
	}
}

func TestChallengeWrongNumberDenies(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	n := e.nas(challengeAddr, secret)
	resp, number := startChallenge(t, n, "alice")
	wrong := "00"
	if number == wrong {
		wrong = "11"
	}
	e.answer(phone, "approve", wrong)
	final := n.exchange(n.accessRequest("alice", "", withState(rfc2865.State_Get(resp))), wait)
	if final == nil || final.Code != radius.CodeAccessReject {
		t.Fatalf("got %v, want Access-Reject after a wrong number", final)
	}
}

func TestChallengeStateIsBoundToUserAndClient(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice")
	n := e.nas(challengeAddr, secret)
	resp := n.exchange(n.accessRequest("alice", password), wait)
	state := rfc2865.State_Get(resp)
	if got := n.exchange(n.accessRequest("bob", "", withState(state)), wait); got == nil || got.Code != radius.CodeAccessReject {
		t.Fatalf("State reused for another user: %v, want reject", got)
	}
	forged := n.exchange(n.accessRequest("alice", "", withState([]byte("guessed-state-value-1234"))), wait)
	if forged == nil || forged.Code != radius.CodeAccessReject {
		t.Fatalf("unknown State: %v, want reject", forged)
	}
}

func TestTOTPSuffix(t *testing.T) {
	e := newEnv(t)
	code := e.totpCode("alice")
	n := e.nas(holdAddr, secret)
	now := time.Now()
	resp := n.exchange(n.accessRequest("alice", password+","+code(now)), wait)
	if resp == nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("got %v, want Access-Accept with a TOTP suffix", resp)
	}
	// The same code again is a replay.
	if r := n.exchange(n.accessRequest("alice", password+","+code(now)), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("replayed code: %v, want reject", r)
	}
	if r := n.exchange(n.accessRequest("alice", password+",000000"), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("wrong code: %v, want reject", r)
	}
	// A code with a wrong password does not get in.
	if r := n.exchange(n.accessRequest("alice", "wrong,"+code(now.Add(30*time.Second))), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("wrong password with a right code: %v, want reject", r)
	}
	if s, _ := e.pushesStarted("alice"); s != 0 {
		t.Errorf("a code login sent %d pushes", s)
	}
	evs := e.audited("login", "alice")
	if len(evs) != 4 || evs[0].Details["factor"] != "totp" {
		t.Fatalf("audit: %+v", evs)
	}
}

func TestPushSuffix(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	n := e.nas(holdAddr, secret)
	e.answerAsync(phone, "approve", "")
	if r := n.exchange(n.accessRequest("alice", password+",push"), wait); r == nil || r.Code != radius.CodeAccessAccept {
		t.Fatalf(",push: %v, want accept", r)
	}
	if s, _ := e.pushesStarted("alice"); s != 1 {
		t.Fatalf("%d pushes for a ,push login, want 1", s)
	}
}

func TestBypassCodeSuffix(t *testing.T) {
	e := newEnv(t)
	code, _, err := e.bypass.Issue(e.ctx, "bob", time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	n := e.nas(holdAddr, secret)
	if r := n.exchange(n.accessRequest("bob", password+","+code), wait); r == nil || r.Code != radius.CodeAccessAccept {
		t.Fatalf("bypass code: %v, want accept", r)
	}
	if r := n.exchange(n.accessRequest("bob", password+","+code), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("bypass code reused: %v, want reject", r)
	}
}

func TestWrongCodesAreLimited(t *testing.T) {
	e := newEnv(t)
	code := e.totpCode("alice")
	n := e.nas(holdAddr, secret)
	for i := range 5 {
		if r := n.exchange(n.accessRequest("alice", password+","+strings.Repeat(string(rune('1'+i)), 6)), wait); r == nil || r.Code != radius.CodeAccessReject {
			t.Fatalf("wrong code %d: %v", i, r)
		}
	}
	r := n.exchange(n.accessRequest("alice", password+","+code(time.Now())), wait)
	if r == nil || r.Code != radius.CodeAccessReject || !strings.Contains(replyMessage(r), "Too many") {
		t.Fatalf("after 5 wrong codes a right one was %v %q; want a reject for too many attempts", r, replyMessage(r))
	}
}

func TestOTPPromptInChallengeMode(t *testing.T) {
	e := newEnv(t)
	code := e.totpCode("alice")
	n := e.nas(otpAddr, secret)
	resp := n.exchange(n.accessRequest("alice", password), wait)
	if resp == nil || resp.Code != radius.CodeAccessChallenge || !strings.Contains(replyMessage(resp), "one-time code") {
		t.Fatalf("got %v %q, want a challenge asking for a code", resp, replyMessage(resp))
	}
	state := rfc2865.State_Get(resp)
	bad := n.exchange(n.accessRequest("alice", "123456", withState(state)), wait)
	if bad == nil || bad.Code != radius.CodeAccessChallenge || !strings.Contains(replyMessage(bad), "did not work") {
		t.Fatalf("wrong code: %v %q, want another try", bad, replyMessage(bad))
	}
	ok := n.exchange(n.accessRequest("alice", code(time.Now()), withState(state)), wait)
	if ok == nil || ok.Code != radius.CodeAccessAccept {
		t.Fatalf("right code: %v, want accept", ok)
	}
	if s, _ := e.pushesStarted("alice"); s != 0 {
		t.Errorf("an otp-only client sent %d pushes", s)
	}
}

func TestCodeInsteadOfPushInChallengeMode(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice")
	code := e.totpCode("alice")
	n := e.nas(challengeAddr, secret)
	resp := n.exchange(n.accessRequest("alice", password), wait)
	if resp == nil || resp.Code != radius.CodeAccessChallenge {
		t.Fatalf("got %v", resp)
	}
	ok := n.exchange(n.accessRequest("alice", code(time.Now()), withState(rfc2865.State_Get(resp))), wait)
	if ok == nil || ok.Code != radius.CodeAccessAccept {
		t.Fatalf("code instead of push: %v, want accept", ok)
	}
	evs, _ := e.st.ListAudit(e.ctx, 0, 1000)
	cancelled := false
	for _, ev := range evs {
		cancelled = cancelled || ev.Action == "push.cancelled"
	}
	if !cancelled {
		t.Error("the push was left pending after the user typed a code")
	}
}

func TestMessageAuthenticatorAlways(t *testing.T) {
	e := newEnv(t)
	n := e.nas(holdAddr, secret)
	b := n.encode(n.accessRequest("alice", "wrong"), false)
	n.send(b)
	if r := n.recvRaw(500 * time.Millisecond); r != nil {
		t.Fatal("an Access-Request without Message-Authenticator was answered under always")
	}
	if got := e.counter("bridge_radius_dropped_total", "reason", "missing_message_authenticator"); got != 1 {
		t.Errorf("dropped count = %v", got)
	}
	if !strings.Contains(e.logs.String(), "without Message-Authenticator") {
		t.Error("the drop was not logged")
	}
}

func TestMessageAuthenticatorAuto(t *testing.T) {
	e := newEnv(t)
	n := e.nas(autoAddr, secret)
	// Before the client has sent one, requests without it are answered.
	b := n.encode(n.accessRequest("alice", "wrong"), false)
	n.send(b)
	if r := n.recv(b, wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("auto, before any Message-Authenticator: %v, want an answer", r)
	}
	if r := n.exchange(n.accessRequest("alice", "wrong"), wait); r == nil {
		t.Fatal("auto, with a Message-Authenticator: no answer")
	}
	// From then on it is required.
	b = n.encode(n.accessRequest("alice", "wrong"), false)
	n.send(b)
	if r := n.recvRaw(500 * time.Millisecond); r != nil {
		t.Fatal("auto: a request without Message-Authenticator was answered after the client had sent one")
	}
}

func TestMessageAuthenticatorNever(t *testing.T) {
	e := newEnv(t)
	n := e.nas(neverAddr, secret)
	b := n.encode(n.accessRequest("alice", "wrong"), false)
	n.send(b)
	if r := n.recv(b, wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("never: %v, want an answer", r)
	}
	// Proxy-State without Message-Authenticator passes under never...
	b = n.encode(n.accessRequest("alice", "wrong", withAttr(rfc2865.ProxyState_Type, []byte("proxy-1"))), false)
	n.send(b)
	r := n.recv(b, wait)
	if r == nil {
		t.Fatal("never: Proxy-State request dropped")
	}
	if got := rfc2865.ProxyState_Get(r); string(got) != "proxy-1" {
		t.Errorf("Proxy-State not copied into the response: %q", got)
	}
	// ...but a Message-Authenticator that is sent is still checked.
	b = n.encode(n.accessRequest("alice", "wrong"), true)
	b[len(b)-1] ^= 0xff // corrupt the packet after signing
	n.send(b)
	if r := n.recvRaw(500 * time.Millisecond); r != nil {
		t.Fatal("never: a wrong Message-Authenticator was answered")
	}
	if !strings.Contains(e.logs.String(), "level=WARN msg=\"RADIUS client does not require Message-Authenticator") {
		t.Error("no warning at start for a client set to never")
	}
}

func TestProxyStateWithoutMessageAuthenticatorDropped(t *testing.T) {
	e := newEnv(t)
	n := e.nas(autoAddr, secret) // auto, and no Message-Authenticator seen yet
	b := n.encode(n.accessRequest("alice", "wrong", withAttr(rfc2865.ProxyState_Type, []byte("x"))), false)
	n.send(b)
	if r := n.recvRaw(500 * time.Millisecond); r != nil {
		t.Fatal("Proxy-State without Message-Authenticator was answered")
	}
	if got := e.counter("bridge_radius_dropped_total", "reason", "missing_message_authenticator"); got != 1 {
		t.Errorf("dropped = %v", got)
	}
}

// A wrong shared secret is proven by the Message-Authenticator: the packet
// is dropped and logged, never answered as a wrong password.
func TestWrongSecretDropped(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice")
	n := e.nas(holdAddr, otherSecret)
	b := n.encode(n.accessRequest("alice", password), true)
	n.send(b)
	if r := n.recvRaw(500 * time.Millisecond); r != nil {
		t.Fatal("a request with the wrong secret was answered")
	}
	if got := e.counter("bridge_radius_dropped_total", "reason", "bad_authenticator"); got != 1 {
		t.Errorf("dropped = %v", got)
	}
	if !strings.Contains(e.logs.String(), "wrong shared secret") {
		t.Error("not logged as a wrong secret")
	}
	if got := len(e.audited("login", "alice")); got != 0 {
		t.Errorf("%d login decisions audited for a packet with the wrong secret", got)
	}
}

func TestStatusServer(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		dst  netip.AddrPort
		want radius.Code
	}{{e.srv.AuthAddr(), radius.CodeAccessAccept}, {e.srv.AcctAddr(), radius.CodeAccountingResponse}} {
		n := e.nasTo(holdAddr, secret, tc.dst)
		p := radius.New(radius.CodeStatusServer, n.secret)
		if r := n.exchange(p, wait); r == nil || r.Code != tc.want {
			t.Fatalf("Status-Server to %v: %v, want %v", tc.dst, r, tc.want)
		}
		// RFC 5997: without a Message-Authenticator it is dropped.
		b := n.encode(radius.New(radius.CodeStatusServer, n.secret), false)
		n.send(b)
		if r := n.recvRaw(300 * time.Millisecond); r != nil {
			t.Fatal("Status-Server without Message-Authenticator was answered")
		}
	}
	if got := len(e.audited("login", "")); got != 0 {
		t.Errorf("health checks were audited as logins: %d", got)
	}
}

func TestAccounting(t *testing.T) {
	e := newEnv(t)
	n := e.nasTo(holdAddr, secret, e.srv.AcctAddr())
	p := radius.New(radius.CodeAccountingRequest, n.secret)
	rfc2865.UserName_SetString(p, "alice")
	rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
	rfc2866.AcctSessionID_SetString(p, "sess-42")
	rfc2865.Class_Set(p, []byte("bridge:abc"))
	rfc2865.CallingStationID_SetString(p, "198.51.100.7")
	b := n.encode(p, false)
	n.send(b)
	r := n.recv(b, wait)
	if r == nil || r.Code != radius.CodeAccountingResponse {
		t.Fatalf("got %v, want Accounting-Response", r)
	}
	// The retransmission is answered again but recorded once.
	n.send(b)
	if r := n.recv(b, wait); r == nil {
		t.Fatal("retransmitted accounting not answered")
	}
	evs := e.audited("radius.accounting", "alice")
	if len(evs) != 1 {
		t.Fatalf("%d accounting events, want 1", len(evs))
	}
	if d := evs[0].Details; d["status"] != "Start" || d["session_id"] != "sess-42" || d["class"] != "bridge:abc" || evs[0].ClientIP != "198.51.100.7" {
		t.Errorf("accounting event: %+v", evs[0])
	}
	// A wrong secret fails the request authenticator: dropped.
	bad := e.nasTo(holdAddr, otherSecret, e.srv.AcctAddr())
	q := radius.New(radius.CodeAccountingRequest, bad.secret)
	rfc2866.AcctStatusType_Set(q, rfc2866.AcctStatusType_Value_Stop)
	bad.send(bad.encode(q, false))
	if r := bad.recvRaw(300 * time.Millisecond); r != nil {
		t.Fatal("accounting with the wrong secret was answered")
	}
}

func TestCHAPRefused(t *testing.T) {
	e := newEnv(t)
	n := e.nas(holdAddr, secret)
	p := radius.New(radius.CodeAccessRequest, n.secret)
	rfc2865.UserName_SetString(p, "alice")
	p.Add(rfc2865.CHAPPassword_Type, make([]byte, 17))
	r := n.exchange(p, wait)
	if r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("CHAP: %v, want reject", r)
	}
	if evs := e.audited("login", "alice"); len(evs) != 1 || !strings.Contains(evs[0].Reason, "CHAP") {
		t.Fatalf("audit: %+v", evs)
	}
}

// failingPush is a push engine whose backing store is down.
type failingPush struct{}

var errStoreDown = errors.New("store: connection refused")

func (failingPush) Start(context.Context, pushauth.Request) (pushauth.Handle, error) {
	return pushauth.Handle{}, errStoreDown
}
func (failingPush) Wait(context.Context, string) (pushauth.Outcome, error) {
	return pushauth.Outcome{}, errStoreDown
}
func (failingPush) Cancel(context.Context, string, string) error  { return errStoreDown }
func (failingPush) Resolve(context.Context, string, string) error { return errStoreDown }
func (failingPush) Delivered(context.Context, string) error       { return errStoreDown }

func TestFailmode(t *testing.T) {
	e := newEnv(t, func(_ *bradius.Config, d *bradius.Deps) { d.Push = failingPush{} })
	secure, safe := e.nas(holdAddr, secret), e.nas(safeAddr, secret)
	if r := secure.exchange(secure.accessRequest("alice", password), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("failmode secure: %v, want reject", r)
	}
	if r := safe.exchange(safe.accessRequest("alice", password), wait); r == nil || r.Code != radius.CodeAccessAccept {
		t.Fatalf("failmode safe: %v, want accept on the first factor", r)
	}
	// Failing open never skips the first factor.
	if r := safe.exchange(safe.accessRequest("alice", "wrong"), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("failmode safe with a wrong password: %v, want reject", r)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "FAILING OPEN") || !strings.Contains(logs, "RADIUS client fails open") {
		t.Error("failing open was not logged loudly")
	}
	evs := e.audited("login", "alice")
	if len(evs) != 3 || evs[1].Details["factor"] != "failmode" || !strings.Contains(evs[1].Reason, "failmode safe") {
		t.Fatalf("audit: %+v", evs)
	}
}

// A passwordless client: the password is not checked, the phone is the
// only factor, and an unknown user is rejected without a push.
func TestPasswordlessClient(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("dave")
	n := e.nas(pushOnlyAddr, secret)
	e.answerAsync(phone, "approve", "")
	if r := n.exchange(n.accessRequest("dave", "anything"), wait); r == nil || r.Code != radius.CodeAccessAccept {
		t.Fatalf("passwordless login: %v, want accept after approval", r)
	}
	if r := n.exchange(n.accessRequest("nobody", "anything"), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("unknown user: %v, want reject", r)
	}
	e.answerAsync(phone, "deny", "")
	if r := n.exchange(n.accessRequest("dave", "anything"), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("denied: %v, want reject", r)
	}
}

// Wrong codes sent at once cannot outrun the limiter: each attempt is
// counted before its code is checked.
func TestParallelCodeGuessesAreLimited(t *testing.T) {
	e := newEnv(t)
	e.totpCode("alice")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			n := e.nas(holdAddr, secret)
			n.exchange(n.accessRequest("alice", fmt.Sprintf("%s,%06d", password, 100000+i)), wait)
		})
	}
	wg.Wait()
	checked := 0
	for _, ev := range e.audited("login", "alice") {
		if strings.Contains(ev.Reason, "invalid code") {
			checked++
		}
	}
	if checked > 5 {
		t.Fatalf("%d of 20 parallel wrong codes were checked; the limit is 5", checked)
	}
}

// Two logins of one user through the same NAS from different stations
// (Calling-Station-Id a MAC, so no client address): the second supersedes
// the first instead of joining it, so the approval the user gives lets in
// one login only.
func TestLoginFromAnotherStationDoesNotRideTheApproval(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	victim, attacker := e.nas(holdAddr, secret), e.nas(holdAddr, secret)
	station := func(mac string) reqOpt {
		return func(p *radius.Packet) { rfc2865.CallingStationID_SetString(p, mac) }
	}
	rv := victim.encode(victim.accessRequest("alice", password, station("AA-BB-CC-00-00-01")), true)
	victim.send(rv)
	time.Sleep(300 * time.Millisecond)
	ra := attacker.encode(attacker.accessRequest("alice", password, station("DE-AD-BE-EF-00-02")), true)
	attacker.send(ra)
	if r := victim.recv(rv, wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("first login: %v, want a reject once superseded", r)
	}
	e.answer(phone, "approve", "")
	if r := attacker.recv(ra, wait); r == nil || r.Code != radius.CodeAccessAccept {
		t.Fatalf("second login: %v", r)
	}
	if started, joined := e.pushesStarted("alice"); started != 2 || joined != 0 {
		t.Fatalf("%d pushes, %d joined; want two pushes and no join", started, joined)
	}
}

// An answer that would not fit in a RADIUS packet is a reject, audited as
// one, and a retransmission gets the same answer, not a second push.
func TestOversizedAnswerIsARejectNotASecondPush(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice")
	n := e.nas(holdAddr, secret)
	// Proxy-State up to the largest request (4096 bytes with the
	// Message-Authenticator encode adds): the answer copies it all and
	// has attributes of its own.
	big := func(p *radius.Packet) {
		for {
			b, _ := p.MarshalBinary()
			left := radius.MaxPacketLength - 18 - len(b) - 2
			if left <= 0 {
				return
			}
			p.Add(rfc2865.ProxyState_Type, bytes.Repeat([]byte{'p'}, min(left, 253)))
		}
	}
	req := n.encode(n.accessRequest("alice", password, big), true)
	n.send(req)
	e.answer(phone, "approve", "")
	r := n.recv(req, wait)
	if r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("got %v, want Access-Reject", r)
	}
	n.send(req)
	if again := n.recv(req, wait); again == nil || again.Code != radius.CodeAccessReject {
		t.Fatalf("retransmission: %v", again)
	}
	if started, _ := e.pushesStarted("alice"); started != 1 {
		t.Fatalf("%d pushes, want 1", started)
	}
	evs := e.audited("login", "alice")
	if len(evs) != 1 || evs[0].Result == store.ResultSuccess || !strings.Contains(evs[0].Reason, "over RADIUS") {
		t.Fatalf("audit: %+v", evs)
	}
}

// A Status-Server (which always carries a Message-Authenticator) does not
// make an auto client require one on its Access-Requests.
func TestStatusServerDoesNotArmAuto(t *testing.T) {
	e := newEnv(t)
	n := e.nas(autoAddr, secret)
	if r := n.exchange(radius.New(radius.CodeStatusServer, n.secret), wait); r == nil {
		t.Fatal("Status-Server not answered")
	}
	b := n.encode(n.accessRequest("alice", "wrong"), false)
	n.send(b)
	if r := n.recv(b, wait); r == nil {
		t.Fatal("after a Status-Server, an auto client's Access-Request without Message-Authenticator was dropped")
	}
}

func TestFailmodeCounted(t *testing.T) {
	e := newEnv(t, func(_ *bradius.Config, d *bradius.Deps) { d.Push = failingPush{} })
	for _, addr := range []netip.Addr{holdAddr, safeAddr} {
		n := e.nas(addr, secret)
		n.exchange(n.accessRequest("alice", password), wait)
	}
	for _, mode := range []string{"secure", "safe"} {
		if got := e.counter("bridge_radius_second_factor_unavailable_total", "failmode", mode); got != 1 {
			t.Errorf("failmode %s counted %v times, want 1", mode, got)
		}
	}
}

// A right password that leads to an Access-Challenge is on record even if
// the login goes no further.
func TestChallengeAudited(t *testing.T) {
	e := newEnv(t)
	e.totpCode("alice")
	n := e.nas(otpAddr, secret)
	if r := n.exchange(n.accessRequest("alice", password), wait); r == nil || r.Code != radius.CodeAccessChallenge {
		t.Fatalf("got %v", r)
	}
	evs := e.audited("login.challenge", "alice")
	if len(evs) != 1 || evs[0].Result != store.ResultSuccess || evs[0].Details["factor"] != "otp" {
		t.Fatalf("audit: %+v", evs)
	}
}

// What a NAS sends goes into the hash-chained audit log cleaned: invalid
// UTF-8 and control characters must not break the chain or the log.
func TestHostileAttributesKeepTheAuditChain(t *testing.T) {
	e := newEnv(t)
	n := e.nas(holdAddr, secret)
	r := n.exchange(n.accessRequest("alice", "wrong", func(p *radius.Packet) {
		p.Set(rfc2865.NASIdentifier_Type, []byte("nas\xff\xfe\x00\nforged=1"))
		p.Set(rfc2865.CallingStationID_Type, []byte("\x1b[31mred"))
	}), wait)
	if r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("got %v", r)
	}
	if r := n.exchange(n.accessRequest("al\x00ice", "wrong"), wait); r == nil || r.Code != radius.CodeAccessReject {
		t.Fatalf("User-Name with NUL: %v", r)
	}
	rep, err := store.VerifyChain(e.ctx, e.st, storetest.AuditKey(), 0)
	if err != nil || !rep.OK() {
		t.Fatalf("audit chain after hostile attributes: %+v, %v", rep, err)
	}
	evs := e.audited("login", "alice")
	if len(evs) != 2 || strings.ContainsAny(evs[0].Details["nas_identifier"], "\x00\n") || !utf8.ValidString(evs[0].Details["nas_identifier"]) ||
		!strings.Contains(evs[1].Reason, "control characters") {
		t.Fatalf("audit: %+v", evs)
	}
}
