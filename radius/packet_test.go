package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
)

var testSecret = []byte("n8Lq2xV7fP0sKc4wYb9e")

// signedRequest is an Access-Request with a valid Message-Authenticator.
func signedRequest(t testing.TB, user, pw string, extra ...*radius.AVP) []byte {
	p := radius.New(radius.CodeAccessRequest, testSecret)
	rfc2865.UserName_SetString(p, user)
	enc, _ := radius.NewUserPassword([]byte(pw), testSecret, p.Authenticator[:])
	p.Set(rfc2865.UserPassword_Type, enc)
	p.Attributes = append(p.Attributes, extra...)
	p.Set(rfc2869.MessageAuthenticator_Type, make([]byte, 16))
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	w, err := scan(b)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(md5.New, testSecret)
	mac.Write(b)
	copy(b[w.maOffset:], mac.Sum(nil))
	return b
}

func TestScan(t *testing.T) {
	good := signedRequest(t, "alice", "pw")
	w, err := scan(good)
	if err != nil || w.code != radius.CodeAccessRequest || w.maOffset == 0 || w.length != len(good) {
		t.Fatalf("scan = %+v, %v", w, err)
	}
	if !verifyMA(good, w.maOffset, testSecret, false) {
		t.Fatal("a Message-Authenticator made by HMAC-MD5 over the packet does not verify")
	}
	if verifyMA(good, w.maOffset, []byte("another secret of 16+ bytes"), false) {
		t.Fatal("verifies with the wrong secret")
	}
	padded := append(append([]byte(nil), good...), 0, 0, 0)
	if w, err := scan(padded); err != nil || w.length != len(good) {
		t.Errorf("octets past the length field are padding (RFC 2865 §3): %+v %v", w, err)
	}
	// appendRaw adds attribute bytes to good and fixes the length.
	appendRaw := func(attr ...byte) []byte {
		b := append(append([]byte(nil), good...), attr...)
		b[2], b[3] = byte(len(b)>>8), byte(len(b))
		return b
	}
	twice := appendRaw(append([]byte{80, 18}, make([]byte, 16)...)...)
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"short":             {good[:19], errShort},
		"length over data":  {good[:len(good)-1], errLength},
		"length under 20":   {append([]byte{1, 1, 0, 19}, good[4:]...), errLength},
		"attribute length0": {append(append([]byte(nil), good[:20]...), 1, 0), errLength},
		"MA twice":          {twice, errMATwice},
	} {
		b := tc.b
		if name == "attribute length0" {
			b[2], b[3] = 0, 22
		}
		if _, err := scan(b); !errors.Is(err, tc.want) && !(tc.want == errLength && errors.Is(err, errAttribute)) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	if _, err := scan(appendRaw(append([]byte{80, 17}, make([]byte, 15)...)...)); !errors.Is(err, errMALength) {
		t.Error("a 15-byte Message-Authenticator was accepted")
	}
}

func TestEncodeResponse(t *testing.T) {
	req := signedRequest(t, "alice", "pw")
	p, err := radius.Parse(req, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	resp := p.Response(radius.CodeAccessAccept)
	rfc2865.ReplyMessage_SetString(resp, "hello")
	resp.Set(rfc2869.MessageAuthenticator_Type, bytes.Repeat([]byte{7}, 16)) // replaced, not kept
	out, err := encodeResponse(resp, p, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !radius.IsAuthenticResponse(out, req, testSecret) {
		t.Fatal("response authenticator does not verify")
	}
	w, err := scan(out)
	if err != nil || w.maOffset != 22 {
		t.Fatalf("Message-Authenticator is not first: %+v %v", w, err)
	}
	// RFC 3579 §3.2: HMAC-MD5 over the response with the request
	// authenticator in place and the Message-Authenticator zeroed.
	c := append([]byte(nil), out...)
	copy(c[4:20], req[4:20])
	copy(c[22:38], make([]byte, 16))
	mac := hmac.New(md5.New, testSecret)
	mac.Write(c)
	if !bytes.Equal(mac.Sum(nil), out[22:38]) {
		t.Fatal("Message-Authenticator does not verify")
	}
	q, _ := radius.Parse(out, testSecret)
	if got := len(q.Attributes); got != 2 {
		t.Errorf("%d attributes, want the Message-Authenticator and the Reply-Message", got)
	}
}

func TestSplitSuffix(t *testing.T) {
	for _, tc := range []struct{ in, pw, factor, code string }{
		{"secret", "secret", "", ""},
		{"secret,push", "secret", "push", ""},
		{"secret,PUSH", "secret", "push", ""},
		{"secret,123456", "secret", "code", "123456"},
		{"sec,ret,12345678", "sec,ret", "code", "12345678"},
		{"secret,12345", "secret,12345", "", ""}, // too short for a code
		{"secret,abc", "secret,abc", "", ""},
		{",push", "", "push", ""},
		{"secret,123456789012345678901", "secret,123456789012345678901", "", ""}, // too long
	} {
		pw, f, c := splitSuffix(tc.in)
		if pw != tc.pw || f != tc.factor || c != tc.code {
			t.Errorf("splitSuffix(%q) = %q %q %q, want %q %q %q", tc.in, pw, f, c, tc.pw, tc.factor, tc.code)
		}
	}
}

func TestAnswerCache(t *testing.T) {
	c := newAnswerCache()
	k := reqKey{src: netip.MustParseAddrPort("192.0.2.1:1645"), id: 7}
	if st, _ := c.begin(k); st != reqNew {
		t.Fatal("first sight is not new")
	}
	// A pending request survives any number of rotations.
	for range 5 {
		c.rotate()
		if st, _ := c.begin(k); st != reqPending {
			t.Fatal("a pending request was forgotten at rotation: a retransmission would start a second push")
		}
	}
	c.finish(k, []byte("answer"))
	if st, a := c.begin(k); st != reqAnswered || string(a) != "answer" {
		t.Fatal("the answer is not kept")
	}
	c.rotate()
	if st, _ := c.begin(k); st != reqAnswered {
		t.Fatal("an answer is dropped after one rotation; it must live between one and two")
	}
	c.rotate()
	if st, _ := c.begin(k); st != reqNew {
		t.Fatal("an answer outlived two rotations")
	}
	// A different authenticator, identifier, source or socket is another
	// request.
	k2 := k
	k2.auth[0] = 1
	k3 := k
	k3.acct = true
	for _, o := range []reqKey{k2, k3} {
		if st, _ := c.begin(o); st != reqNew {
			t.Fatalf("%+v taken for a retransmission", o)
		}
	}
	c.finish(k2, nil)
	if st, _ := c.begin(k2); st != reqNew {
		t.Fatal("a dropped request was remembered")
	}
}

func TestClientTable(t *testing.T) {
	d := rejectAll{}
	mk := func(name, prefix string) *Client {
		return &Client{Name: name, Prefix: netip.MustParsePrefix(prefix), Secret: testSecret, Directory: d,
			MessageAuthenticator: MAAlways, Wait: Hold, HoldTimeout: time.Second, SecondFactor: FactorPush, Failmode: FailSecure}
	}
	tab, err := newClientTable([]*Client{mk("wide", "10.0.0.0/8"), mk("narrow", "10.1.2.0/24"), mk("v6", "2001:db8::/32")})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"10.1.2.3": "narrow", "10.9.9.9": "wide", "::ffff:10.1.2.3": "narrow", "2001:db8::1": "v6", "192.0.2.1": ""} {
		c := tab.lookup(netip.MustParseAddr(addr))
		got := ""
		if c != nil {
			got = c.Name
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", addr, got, want)
		}
	}
	if _, err := newClientTable([]*Client{mk("a", "10.0.0.0/8"), mk("b", "10.0.0.0/8")}); err == nil {
		t.Error("two clients with the same prefix were accepted")
	}
	bad := mk("hold-nm", "10.0.0.1/32")
	bad.NumberMatching = true
	if _, err := newClientTable([]*Client{bad}); err == nil {
		t.Error("number matching with hold was accepted")
	}
}

// rejectAll is a directory that knows nobody.
type rejectAll struct{}

func (rejectAll) Name() string { return "nobody" }
func (rejectAll) Authenticate(ctx context.Context, user, pw string) (directory.Identity, error) {
	if _, err := directory.CheckLogin(ctx, user, pw); err != nil {
		return directory.Identity{}, err
	}
	return directory.Identity{}, directory.ErrInvalidCredentials
}
func (rejectAll) Lookup(context.Context, string) (directory.Identity, error) {
	return directory.Identity{}, directory.ErrInvalidCredentials
}

type nopPush struct{}

func (nopPush) Start(context.Context, pushauth.Request) (pushauth.Handle, error) {
	return pushauth.Handle{}, pushauth.ErrNoDevice
}
func (nopPush) Wait(context.Context, string) (pushauth.Outcome, error) {
	return pushauth.Outcome{}, errors.New("no")
}
func (nopPush) Cancel(context.Context, string, string) error  { return nil }
func (nopPush) Resolve(context.Context, string, string) error { return nil }
func (nopPush) Delivered(context.Context, string) error       { return nil }

type nopAudit struct{}

func (nopAudit) Append(_ context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	return e, nil
}

// FuzzPacket feeds datagrams through the decoding path: scan, the
// Message-Authenticator check (with a valid one written in when the input
// has room for it, so that the fuzzer reaches the handler), layeh's parser,
// which must accept whatever scan accepted, and the Access-Request and
// Accounting-Request handlers, whose answers must encode.
func FuzzPacket(f *testing.F) {
	f.Add(signedRequest(f, "alice", "pw"), true)
	f.Add(signedRequest(f, "alice", "pw,123456"), true)
	f.Add(signedRequest(f, "alice", "", &radius.AVP{Type: rfc2865.State_Type, Attribute: []byte("state")}), true)
	f.Add(signedRequest(f, "alice", "", &radius.AVP{Type: rfc2865.CHAPPassword_Type, Attribute: make([]byte, 17)}), false)
	f.Add(signedRequest(f, "", "pw", &radius.AVP{Type: rfc2865.ProxyState_Type, Attribute: []byte("p")}), false)
	f.Add([]byte{12, 1, 0, 38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 80, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true)
	f.Add([]byte{1, 1, 0, 20}, false)
	f.Add([]byte{4, 9, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40, 6, 0, 0, 0, 1, 44, 4, 's', '1'}, true)
	st := testStore(f)
	limits := store.NewLimits(store.NewMemCounters(), nil, nil)
	f.Cleanup(limits.Close)
	s := &Server{
		deps: Deps{Push: nopPush{}, Audit: nopAudit{}, Sessions: st}, now: time.Now, log: discardLogger(),
		sessions: newSessions(st), holds: newHolds(), limits: limits, codes: codeLimits{limits}, warned: newLogLimiter(time.Second), metrics: newMetrics(nil),
	}
	f.Fuzz(func(t *testing.T, b []byte, sign bool) {
		c := &Client{Name: "fuzz", Secret: testSecret, Directory: rejectAll{}, MessageAuthenticator: MAAlways,
			Wait: Challenge, SecondFactor: FactorPush, PasswordSuffix: true, Failmode: FailSecure}
		w, err := scan(b)
		if err != nil {
			return
		}
		b = b[:w.length]
		if w.code == radius.CodeAccountingRequest && sign {
			// Sign as a NAS would: Message-Authenticator over the zeroed
			// authenticator, then the request authenticator.
			copy(b[4:20], make([]byte, 16))
			if w.maOffset != 0 {
				ma := messageAuthenticator(b, w.maOffset, testSecret, true)
				copy(b[w.maOffset:], ma[:])
			}
			h := md5.New()
			h.Write(b)
			h.Write(testSecret)
			copy(b[4:20], h.Sum(nil))
		} else if sign && w.maOffset != 0 {
			ma := messageAuthenticator(b, w.maOffset, testSecret, false)
			copy(b[w.maOffset:], ma[:])
		}
		if _, err := s.authentic(c, b, w); err != nil {
			return
		}
		p, err := radius.Parse(b, testSecret)
		if err != nil {
			t.Fatalf("scan accepted what layeh rejects: %v", err)
		}
		src := netip.MustParseAddrPort("127.0.0.1:1812")
		var resp *radius.Packet
		switch p.Code {
		case radius.CodeAccessRequest:
			resp = s.access(context.Background(), c, p, src, time.Now())
		case radius.CodeAccountingRequest:
			resp = s.accounting(context.Background(), c, p, src)
		}
		if resp == nil {
			return
		}
		if _, err := encodeResponse(resp, p, testSecret); err != nil {
			t.Fatalf("the answer does not encode: %v", err)
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestCodeLimiterReserves(t *testing.T) {
	clock := time.Now()
	limits := store.NewLimits(store.NewMemCounters(), func() time.Time { return clock }, nil)
	defer limits.Close()
	l := codeLimits{limits}
	ctx := context.Background()
	reserve := func(user string) bool {
		t.Helper()
		ok, err := l.reserve(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i := range maxCodeFailures {
		if !reserve("alice") {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if reserve("ALICE") {
		t.Fatal("an attempt beyond the limit was allowed (names compared without case)")
	}
	if err := l.refund(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if !reserve("alice") {
		t.Fatal("a refunded attempt was not given back")
	}
	clock = clock.Add(codeWindow)
	if !reserve("alice") {
		t.Fatal("the window did not end")
	}
	if err := l.reset(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for i := range maxCodeFailures {
		if !reserve("alice") {
			t.Fatalf("after a reset, attempt %d refused", i+1)
		}
	}
}
