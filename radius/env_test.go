package radius_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/directory/none"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/otp"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	bradius "github.com/bridge-idp/bridge/radius"
	"github.com/bridge-idp/bridge/radius/dict"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
)

// The password of every test user.
const password = "correct horse battery"

// env is a bridge node with a RADIUS front end on loopback: a SQLite store,
// local users, the push engine serving the device API over real HTTP, TOTP
// and bypass codes, and one RADIUS client per loopback address so that each
// test client's packets come from the address of the client it plays.
type env struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	sealer *keys.Sealer
	keys   *keys.Manager
	eng    *pushauth.Engine
	base   string
	totp   *otp.TOTP
	bypass *otp.Bypass
	dir    directory.Directory
	srv    *bradius.Server
	reg    *prometheus.Registry
	logs   *syncBuffer
}

// syncBuffer collects the server's log for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Secrets of the test clients: 16 random-looking bytes or more.
const (
	secret      = "n8Lq2xV7fP0sKc4wYb9e"
	otherSecret = "T3mZ5rQ8yH1uJ6aD0vXg"
)

// client addresses: each test plays the NAS at one of them.
var (
	holdAddr      = netip.MustParseAddr("127.0.0.2")
	challengeAddr = netip.MustParseAddr("127.0.0.3")
	autoAddr      = netip.MustParseAddr("127.0.0.4")
	neverAddr     = netip.MustParseAddr("127.0.0.5")
	otpAddr       = netip.MustParseAddr("127.0.0.6")
	safeAddr      = netip.MustParseAddr("127.0.0.7")
	pushOnlyAddr  = netip.MustParseAddr("127.0.0.8")
	unknownAddr   = netip.MustParseAddr("127.0.0.99")
)

type envOption func(*bradius.Config, *bradius.Deps)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, ctx: ctx, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db"), AuditKey: storetest.AuditKey()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	kek := make([]byte, 32)
	copy(kek, "radius test key-encryption key!!")
	if e.sealer, err = keys.NewSealer(kek); err != nil {
		t.Fatal(err)
	}
	e.keys, err = keys.Open(ctx, st, e.sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposePush, Algorithm: keys.AlgEdDSA}}}, discard())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	e.base = "http://" + hs.Listener.Addr().String()
	audit := store.NewAuditBatcher(st, discard())
	e.eng, err = pushauth.New(pushauth.Config{BaseURL: e.base, MaxPerHour: 1000, MaxPerIPMinute: 1000, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond},
		pushauth.Deps{Store: st, State: memstate.New(), Keys: e.keys, ActivationKey: e.sealer.DeriveKey(pushauth.ActivationKeyLabel), Audit: audit, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = e.eng.Handler(nil)
	hs.Start()
	t.Cleanup(func() { hs.Close(); e.eng.Close(); audit.Close() })

	if e.totp, err = otp.NewTOTP(st, e.sealer, otp.DefaultTOTPConfig("Bridge"), time.Now); err != nil {
		t.Fatal(err)
	}
	if e.bypass, err = otp.NewBypass(st, e.sealer, otp.BypassConfig{}, time.Now); err != nil {
		t.Fatal(err)
	}
	argon := local.Argon2{Time: 1, MemoryKiB: 19456, Threads: 1}
	if e.dir, err = local.Open("local", st, argon, discard()); err != nil {
		t.Fatal(err)
	}
	hash, err := local.HashPassword(argon, password)
	if err != nil {
		t.Fatal(err)
	}
	var users []store.User
	for _, u := range []struct {
		name   string
		groups []string
	}{{"alice", []string{"staff", "VPN-Admins"}}, {"bob", []string{"staff"}}, {"carol", nil}, {"dave", nil}, {"erin", nil}} {
		users = append(users, store.User{Name: u.name, Groups: u.groups, Status: store.UserActive, PasswordHash: hash})
	}
	if err := st.CreateUsers(ctx, users...); err != nil {
		t.Fatal(err)
	}

	fortinet, err := dict.Parse("Fortinet-Group-Name", "vpn-admins")
	if err != nil {
		t.Fatal(err)
	}
	filter, err := dict.Parse("Filter-Id", "staff")
	if err != nil {
		t.Fatal(err)
	}
	client := func(name string, addr netip.Addr, mod func(*bradius.Client)) *bradius.Client {
		c := &bradius.Client{
			Name: name, Prefix: netip.PrefixFrom(addr, 32), Secret: []byte(secret), Directory: e.dir,
			MessageAuthenticator: bradius.MAAlways, Wait: bradius.Hold, HoldTimeout: 5 * time.Second,
			SecondFactor: bradius.FactorPush, PasswordSuffix: true, Failmode: bradius.FailSecure,
			SessionTimeout: 8 * time.Hour, Attributes: []dict.Value{filter},
			Groups: []bradius.GroupReply{{Group: "vpn-admins", Attributes: []dict.Value{fortinet}}},
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	cfg := bradius.Config{
		Listen: "127.0.0.1:0", AccountingListen: "127.0.0.1:0", AnswerCache: time.Second,
		Clients: []*bradius.Client{
			client("vpn-hold", holdAddr, nil),
			client("vpn-challenge", challengeAddr, func(c *bradius.Client) { c.Wait, c.NumberMatching = bradius.Challenge, true }),
			client("wifi-auto", autoAddr, func(c *bradius.Client) { c.MessageAuthenticator = bradius.MAAuto }),
			client("ocserv", neverAddr, func(c *bradius.Client) { c.MessageAuthenticator = bradius.MANever }),
			client("ssh-otp", otpAddr, func(c *bradius.Client) { c.Wait, c.SecondFactor = bradius.Challenge, bradius.FactorOTP }),
			client("legacy-safe", safeAddr, func(c *bradius.Client) { c.Failmode = bradius.FailSafe }),
			client("push-only", pushOnlyAddr, func(c *bradius.Client) { c.Directory = e.noneDir() }),
		},
	}
	deps := bradius.Deps{Push: e.eng, TOTP: e.totp, Bypass: e.bypass, Audit: audit, Sessions: st, Metrics: e.reg,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	if e.srv, err = bradius.New(cfg, deps); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.srv.Serve(sctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return e
}

// enroll enrolls a reference authenticator (long-poll only) for user.
func (e *env) enroll(user string) *authenticator.Device {
	e.t.Helper()
	return e.enrollWith(user, nil)
}

// enrollWith enrolls one that reports posture ("hardware_key": true for a
// key the device keeps in hardware).
func (e *env) enrollWith(user string, posture map[string]bool) *authenticator.Device {
	e.t.Helper()
	act, _, err := pushauth.Activator{Store: e.st, Keys: e.keys, HMACKey: e.sealer.DeriveKey(pushauth.ActivationKeyLabel), BaseURL: e.base}.Create(e.ctx, user, "test", "")
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := authenticator.Enroll(e.ctx, act.String(), authenticator.EnrollOptions{Name: user + "'s phone", Posture: posture})
	if err != nil {
		e.t.Fatalf("enroll: %v", err)
	}
	return d
}

// answer waits (long-poll) for the device's next pending challenge and
// answers it with decision and number; it returns the challenge.
func (e *env) answer(d *authenticator.Device, decision, number string) authenticator.Challenge {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	for {
		cs, err := d.Pending(ctx, 5*time.Second)
		if err != nil {
			e.t.Fatalf("pending: %v", err)
		}
		for _, c := range cs {
			if c.State != "pending" {
				continue
			}
			if _, err := d.Answer(ctx, c, decision, number); err != nil {
				e.t.Fatalf("answer: %v", err)
			}
			return c
		}
	}
}

// answerAsync answers the next challenge in the background; the returned
// channel gets the challenge when it is answered.
func (e *env) answerAsync(d *authenticator.Device, decision, number string) <-chan authenticator.Challenge {
	ch := make(chan authenticator.Challenge, 1)
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			cs, err := d.Pending(ctx, 5*time.Second)
			if err != nil {
				continue
			}
			for _, c := range cs {
				if c.State == "pending" {
					if _, err := d.Answer(ctx, c, decision, number); err == nil {
						ch <- c
						return
					}
				}
			}
		}
		close(ch)
	}()
	return ch
}

// totpCode enrolls a TOTP token for user and returns a function giving the
// code of a time.
func (e *env) totpCode(user string) func(time.Time) string {
	e.t.Helper()
	en, err := e.totp.Enroll(e.ctx, user)
	if err != nil {
		e.t.Fatal(err)
	}
	return func(at time.Time) string {
		c, err := totp.GenerateCode(en.Secret, at)
		if err != nil {
			e.t.Fatal(err)
		}
		return c
	}
}

// challenges counts the push challenges started for user (push.start
// events that were not joins).
func (e *env) pushesStarted(user string) (started, joined int) {
	e.t.Helper()
	evs, err := e.st.ListAudit(e.ctx, 0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Action == "push.start" && ev.Subject == user && ev.Result == store.ResultSuccess {
			if strings.Contains(ev.Reason, "joined") {
				joined++
			} else {
				started++
			}
		}
	}
	return
}

// audited returns the RADIUS login events for user.
func (e *env) audited(action, user string) []store.AuditEvent {
	e.t.Helper()
	evs, err := e.st.ListAudit(e.ctx, 0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.AuditEvent
	for _, ev := range evs {
		if ev.Action == action && ev.Subject == user && ev.Channel == "radius" {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) counter(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				ok := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						ok = true
					}
				}
				if !ok {
					continue metric
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// nas is a test RADIUS client bound to one loopback address.
type nas struct {
	t      *testing.T
	conn   *net.UDPConn
	secret []byte
	dst    netip.AddrPort
}

func (e *env) nas(from netip.Addr, secret string) *nas {
	return e.nasTo(from, secret, e.srv.AuthAddr())
}

func (e *env) nasTo(from netip.Addr, secret string, dst netip.AddrPort) *nas {
	e.t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)))
	if err != nil {
		// Linux routes all of 127.0.0.0/8 to lo; other systems may not.
		e.t.Skipf("cannot send from %s (this test plays several NAS clients from loopback addresses 127.0.0.2-99): %v", from, err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return &nas{t: e.t, conn: conn, secret: []byte(secret), dst: dst}
}

// request builds an Access-Request; withMA adds a Message-Authenticator.
type reqOpt func(*radius.Packet)

func withState(s []byte) reqOpt { return func(p *radius.Packet) { rfc2865.State_Set(p, s) } }
func withAttr(t radius.Type, v []byte) reqOpt {
	return func(p *radius.Packet) { p.Add(t, v) }
}

func (n *nas) accessRequest(user, pw string, opts ...reqOpt) *radius.Packet {
	n.t.Helper()
	p := radius.New(radius.CodeAccessRequest, n.secret)
	rfc2865.UserName_SetString(p, user)
	enc, err := radius.NewUserPassword([]byte(pw), n.secret, p.Authenticator[:])
	if err != nil {
		n.t.Fatal(err)
	}
	p.Set(rfc2865.UserPassword_Type, enc)
	rfc2865.NASIdentifier_SetString(p, "test-nas")
	rfc2865.CallingStationID_SetString(p, "198.51.100.7")
	for _, o := range opts {
		o(p)
	}
	return p
}

// encode encodes p; with ma, a Message-Authenticator is added and signed
// as RFC 3579 says (for Access-Request and Status-Server, over the packet
// as sent; for Accounting-Request, with the authenticator zeroed, then the
// request authenticator computed).
func (n *nas) encode(p *radius.Packet, ma bool) []byte {
	n.t.Helper()
	if ma {
		p.Set(rfc2869.MessageAuthenticator_Type, make([]byte, 16))
	}
	if p.Code == radius.CodeAccountingRequest {
		p.Authenticator = [16]byte{}
	}
	b, err := p.MarshalBinary()
	if err != nil {
		n.t.Fatal(err)
	}
	if ma {
		off := maOffset(b)
		mac := hmac.New(md5.New, n.secret)
		mac.Write(b)
		copy(b[off:], mac.Sum(nil))
	}
	if p.Code == radius.CodeAccountingRequest {
		h := md5.New()
		h.Write(b)
		h.Write(n.secret)
		copy(b[4:20], h.Sum(nil))
	}
	return b
}

func maOffset(b []byte) int {
	for i := 20; i+2 <= len(b); i += int(b[i+1]) {
		if b[i] == byte(rfc2869.MessageAuthenticator_Type) {
			return i + 2
		}
		if b[i+1] < 2 {
			break
		}
	}
	return -1
}

func (n *nas) send(b []byte) {
	n.t.Helper()
	if _, err := n.conn.WriteToUDPAddrPort(b, n.dst); err != nil {
		n.t.Fatal(err)
	}
}

// recv reads one response to req within d, checking its response
// authenticator and that a Message-Authenticator comes first and verifies.
// It returns nil on timeout.
func (n *nas) recv(req []byte, d time.Duration) *radius.Packet {
	n.t.Helper()
	raw := n.recvRaw(d)
	if raw == nil {
		return nil
	}
	if err := checkResponse(raw, req, n.secret); err != nil {
		n.t.Fatal(err)
	}
	p, err := radius.Parse(raw, n.secret)
	if err != nil {
		n.t.Fatal(err)
	}
	return p
}

func (n *nas) recvRaw(d time.Duration) []byte {
	n.t.Helper()
	buf := make([]byte, 4096)
	n.conn.SetReadDeadline(time.Now().Add(d))
	m, err := n.conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err != nil {
		n.t.Fatal(err)
	}
	return buf[:m]
}

// checkResponse verifies a response the way a NAS must: the identifier
// matches, the response authenticator is MD5 over it with the request's
// authenticator, and the Message-Authenticator is the first attribute and
// is the HMAC-MD5 of the packet with the request authenticator in place.
func checkResponse(raw, req, secret []byte) error {
	if raw[1] != req[1] {
		return fmt.Errorf("response identifier %d, request %d", raw[1], req[1])
	}
	if !radius.IsAuthenticResponse(raw, req, secret) {
		return errors.New("response authenticator does not verify")
	}
	if len(raw) < 38 || raw[20] != byte(rfc2869.MessageAuthenticator_Type) || raw[21] != 18 {
		return errors.New("the first attribute of the response is not a Message-Authenticator")
	}
	c := append([]byte(nil), raw...)
	copy(c[4:20], req[4:20])
	if raw[0] == byte(radius.CodeAccountingResponse) && req[0] == byte(radius.CodeAccountingRequest) {
		// As FreeRADIUS signs and checks it: with the authenticator zeroed.
		copy(c[4:20], make([]byte, 16))
	}
	for i := 22; i < 38; i++ {
		c[i] = 0
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(c)
	if !hmac.Equal(mac.Sum(nil), raw[22:38]) {
		return errors.New("response Message-Authenticator does not verify")
	}
	if int(binary.BigEndian.Uint16(raw[2:4])) != len(raw) {
		return errors.New("response length field is wrong")
	}
	return nil
}

// exchange sends p (with a Message-Authenticator) and waits up to d for
// the answer; nil means none came.
func (n *nas) exchange(p *radius.Packet, d time.Duration) *radius.Packet {
	n.t.Helper()
	b := n.encode(p, true)
	n.send(b)
	return n.recv(b, d)
}

func replyMessage(p *radius.Packet) string { return rfc2865.ReplyMessage_GetString(p) }

// noneDir is a passwordless directory over the local users.
func (e *env) noneDir() directory.Directory {
	e.t.Helper()
	d, err := none.Open("push-only", e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}
