package radius

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
)

// Config is the RADIUS front end's settings.
type Config struct {
	// Listen is the UDP address for Access-Request and Status-Server.
	Listen string
	// AccountingListen is the UDP address for Accounting-Request; empty
	// means none.
	AccountingListen string
	// ReadBuffer is the socket receive buffer asked for, in bytes, so that
	// bursts are not dropped by the kernel. Default 4 MiB.
	ReadBuffer int
	// AnswerCache is how long an answer is kept to send again for a
	// retransmitted request. Default 30s.
	AnswerCache time.Duration
	// MaxPending bounds the requests being handled at once, held ones
	// included; beyond it requests are dropped (the NAS retries). Default
	// 10000.
	MaxPending int
	// Clients are the NAS devices allowed to send requests.
	Clients []*Client
}

// Pusher is the push engine as the RADIUS front end uses it.
type Pusher interface {
	Start(ctx context.Context, req pushauth.Request) (pushauth.Handle, error)
	Wait(ctx context.Context, id string) (pushauth.Outcome, error)
	Cancel(ctx context.Context, id, reason string) error
	Resolve(ctx context.Context, id, reason string) error
	// Delivered marks a challenge as having a login to go to (an
	// Access-Challenge session), so no other login takes its approval.
	Delivered(ctx context.Context, id string) error
}

// CodeVerifier checks a one-time code (otp.TOTP, otp.Bypass).
type CodeVerifier interface {
	Verify(ctx context.Context, user, code string) error
}

// Auditor records audit events (a store.AuditBatcher).
type Auditor interface {
	Append(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Deps are the front end's collaborators.
type Deps struct {
	Push Pusher
	// TOTP and Bypass check one-time codes; either may be nil.
	TOTP   CodeVerifier
	Bypass CodeVerifier
	Audit  Auditor
	// Sessions keeps Access-Challenge sessions where every node sees
	// them (the store's Grants).
	Sessions store.Grants
	// Limits keeps the attempt limits (wrong passwords and codes) and the
	// Message-Authenticator memory, shared by the nodes on the store; nil
	// means counters in this process's memory, for this node alone.
	Limits *store.Limits
	// Metrics, if set, receives the front end's Prometheus metrics.
	Metrics prometheus.Registerer
	Logger  *slog.Logger
	Now     func() time.Time
}

// Server is a running RADIUS front end.
type Server struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	now      func() time.Time
	clients  *clientTable
	cache    *answerCache
	sessions *sessions
	holds    *holds
	limits   *store.Limits
	ownLimit bool // limits is this server's own (Deps.Limits was nil)
	// fallback counts first factors on this node alone while the shared
	// limits are unavailable, for failmode safe clients.
	fallback *store.Limits
	codes    codeLimits
	warned   *logLimiter
	// ffFlight joins identical first-factor checks in flight, keyed
	// with an HMAC of the password under flightKey (this process's own,
	// random: the key never leaves memory).
	ffFlight  singleflight.Group
	flightKey [32]byte
	unknown   *unknownSources
	metrics   *metrics

	auth, acct *net.UDPConn
	sem        chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// Defaults of Config.
const (
	DefaultReadBuffer  = 4 << 20
	DefaultAnswerCache = 30 * time.Second
	DefaultMaxPending  = 10000
)

// New checks cfg and binds the sockets, so that a bad address fails at
// start. Serve answers on them; Close releases them if Serve is never
// called.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Push == nil || deps.Audit == nil || deps.Sessions == nil {
		return nil, errors.New("radius: the push engine, the audit log and the session store are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.ReadBuffer <= 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	if cfg.AnswerCache <= 0 {
		cfg.AnswerCache = DefaultAnswerCache
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if len(cfg.Clients) == 0 {
		return nil, errors.New("radius: no clients")
	}
	clients, err := newClientTable(cfg.Clients)
	if err != nil {
		return nil, fmt.Errorf("radius: %w", err)
	}
	s := &Server{
		cfg: cfg, deps: deps, log: deps.Logger.With("component", "radius"), now: deps.Now,
		clients:  clients,
		cache:    newAnswerCache(),
		sessions: newSessions(deps.Sessions),
		holds:    newHolds(),
		limits:   deps.Limits,
		warned:   newLogLimiter(10 * time.Second),
		unknown:  newUnknownSources(),
		metrics:  newMetrics(deps.Metrics),
		sem:      make(chan struct{}, cfg.MaxPending),
	}
	if s.limits == nil {
		s.limits, s.ownLimit = store.NewLimits(store.NewMemCounters(), deps.Now, deps.Logger), true
	}
	s.fallback = store.NewLimits(store.NewMemCounters(), deps.Now, deps.Logger)
	s.codes = codeLimits{s.limits}
	if _, err := rand.Read(s.flightKey[:]); err != nil {
		return nil, fmt.Errorf("radius: %w", err)
	}
	for _, c := range cfg.Clients {
		if c.MessageAuthenticator == MANever {
			s.log.Warn("RADIUS client does not require Message-Authenticator: forged Access-Accepts are possible on its path (BlastRADIUS, CVE-2024-3596); use always as soon as the client can send it",
				"client", c.Name, "address", c.Prefix)
		}
		if c.Failmode == FailSafe {
			s.log.Warn("RADIUS client fails open: when the push engine or the store is down its users get in with the first factor alone",
				"client", c.Name, "address", c.Prefix)
		}
	}
	if s.auth, err = s.listen(cfg.Listen, "authentication"); err != nil {
		s.closeLimits()
		return nil, err
	}
	if cfg.AccountingListen != "" {
		if s.acct, err = s.listen(cfg.AccountingListen, "accounting"); err != nil {
			s.auth.Close()
			s.closeLimits()
			return nil, err
		}
	}
	return s, nil
}

// listen binds a UDP socket with the configured receive buffer, and says
// when the kernel gave less than was asked for.
func (s *Server) listen(addr, what string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("radius: %s address %q: %w", what, addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("radius: %s: %w", what, err)
	}
	if !stampArrivals(conn) {
		s.log.Debug("RADIUS socket without kernel arrival stamps: a request's arrival is when it is read", "socket", what)
	}
	got := setReadBuffer(conn, s.cfg.ReadBuffer)
	s.metrics.rcvbuf.WithLabelValues(what).Set(float64(got))
	if got > 0 && got < s.cfg.ReadBuffer {
		s.log.Warn("the kernel gave the RADIUS socket a smaller receive buffer than asked for; bursts may be dropped (raise net.core.rmem_max)",
			"socket", what, "asked", s.cfg.ReadBuffer, "got", got)
	}
	s.log.Info("RADIUS listening", "socket", what, "addr", conn.LocalAddr().String(), "receive_buffer", got)
	return conn, nil
}

// AuthAddr is the address Access-Requests are served on.
func (s *Server) AuthAddr() netip.AddrPort { return s.auth.LocalAddr().(*net.UDPAddr).AddrPort() }

// AcctAddr is the accounting address, or the zero value without one.
func (s *Server) AcctAddr() netip.AddrPort {
	if s.acct == nil {
		return netip.AddrPort{}
	}
	return s.acct.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close releases the sockets. Serve calls it when ctx ends.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.auth.Close()
		if s.acct != nil {
			s.acct.Close()
		}
	})
}

// Serve answers requests until ctx ends, then closes the sockets and waits
// for the requests being handled: held ones end at once (their challenges
// are cancelled; the NAS retries another server).
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var loops sync.WaitGroup
	loops.Go(func() { s.readLoop(ctx, s.auth, false) })
	if s.acct != nil {
		loops.Go(func() { s.readLoop(ctx, s.acct, true) })
	}
	loops.Go(func() { s.housekeeping(ctx) })
	<-ctx.Done()
	s.Close()
	loops.Wait()
	s.wg.Wait()
	s.closeLimits()
	return nil
}

// closeLimits stops the server's own limits, once no request uses them.
func (s *Server) closeLimits() {
	if s.ownLimit {
		s.limits.Close()
	}
	s.fallback.Close()
}

// housekeeping ages the answer cache. Expired challenge sessions and
// attempt counters are deleted by the store's janitor.
func (s *Server) housekeeping(ctx context.Context) {
	t := time.NewTicker(s.cfg.AnswerCache)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.cache.rotate()
			s.metrics.cached.Set(float64(s.cache.len()))
		}
	}
}

func (s *Server) readLoop(ctx context.Context, conn *net.UDPConn, acct bool) {
	buf := make([]byte, maxPacket+1)
	oob := make([]byte, oobSize)
	for {
		n, oobn, _, src, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			if s.warned.allow("read", s.now()) {
				s.log.Warn("RADIUS read failed", "err", err)
			}
			time.Sleep(10 * time.Millisecond) // a persistent error must not spin
			continue
		}
		arrived := time.Now()
		if at := arrivalStamp(oob[:oobn]); !at.IsZero() && at.Before(arrived) {
			arrived = at
		}
		s.receive(ctx, conn, acct, buf[:n], src, arrived)
	}
}

// receive checks a datagram and starts handling it: the checks that need no
// I/O run here, on the read loop, so that garbage and retransmissions cost
// no goroutine.
func (s *Server) receive(ctx context.Context, conn *net.UDPConn, acct bool, b []byte, src netip.AddrPort, arrived time.Time) {
	port := "auth"
	if acct {
		port = "acct"
	}
	c := s.clients.lookup(src.Addr())
	if c == nil {
		s.dropUnknown(src, port)
		return
	}
	if len(b) > maxPacket {
		s.drop("oversized", c, src, nil)
		return
	}
	w, err := scan(b)
	if err != nil {
		s.drop("malformed", c, src, err)
		return
	}
	b = b[:w.length]
	switch {
	case w.code == radius.CodeStatusServer:
	case !acct && w.code == radius.CodeAccessRequest:
	case acct && w.code == radius.CodeAccountingRequest:
	default:
		s.drop("unexpected_code", c, src, fmt.Errorf("code %v on the %s port", w.code, port))
		return
	}
	s.metrics.requests.WithLabelValues(port, w.code.String()).Inc()
	if reason, err := s.authentic(c, b, w); err != nil {
		s.drop(reason, c, src, err)
		return
	}
	key := reqKey{src: src, acct: acct, id: b[1]}
	copy(key.auth[:], b[4:20])
	switch st, answer := s.cache.begin(key); st {
	case reqPending:
		s.metrics.retransmits.WithLabelValues("absorbed").Inc()
		return
	case reqAnswered:
		s.metrics.retransmits.WithLabelValues("resent").Inc()
		s.write(conn, answer, src)
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.cache.finish(key, nil)
		s.drop("overloaded", c, src, nil)
		return
	}
	pkt := append([]byte(nil), b...)
	s.metrics.inProgress.Inc()
	s.wg.Go(func() {
		defer func() {
			<-s.sem
			s.metrics.inProgress.Dec()
		}()
		s.handle(ctx, conn, c, key, pkt, arrived)
	})
}

// Reasons a packet is dropped for want of a valid Message-Authenticator.
var (
	errNoMA         = errors.New("Access-Request without Message-Authenticator, which this client must send")
	errProxyStateMA = errors.New("Access-Request with Proxy-State but no Message-Authenticator (BlastRADIUS)")
	errEAPNoMA      = errors.New("EAP-Message without Message-Authenticator")
	errStatusNoMA   = errors.New("Status-Server without Message-Authenticator (RFC 5997 requires it)")
)

// authentic checks that a packet was sent with the client's secret, as far
// as the packet can prove it, and that it carries what the client's policy
// requires. It returns the drop reason with the error.
func (s *Server) authentic(c *Client, b []byte, w wire) (string, error) {
	switch w.code {
	case radius.CodeAccountingRequest:
		if !verifyAccountingAuthenticator(b, c.Secret) {
			return "bad_authenticator", errBadRequest
		}
		if w.maOffset != 0 && !verifyMA(b, w.maOffset, c.Secret, true) {
			return "bad_authenticator", errBadMA
		}
		return "", nil
	case radius.CodeStatusServer:
		if w.maOffset == 0 {
			return "missing_message_authenticator", errStatusNoMA
		}
	}
	if w.maOffset != 0 {
		if !verifyMA(b, w.maOffset, c.Secret, false) {
			return "bad_authenticator", errBadMA
		}
		// Only an Access-Request counts: RFC 5997 makes every Status-Server
		// carry one, so a health check says nothing about logins.
		if w.code == radius.CodeAccessRequest && c.MessageAuthenticator == MAAuto && !c.sawMA.Load() {
			c.sawMA.Store(true)
			s.log.Info("RADIUS client sent a Message-Authenticator: requiring it from now on", "client", c.Name)
		}
		return "", nil
	}
	switch {
	case w.eap:
		return "missing_message_authenticator", errEAPNoMA
	case c.MessageAuthenticator == MANever:
		return "", nil
	case w.proxyState:
		return "missing_message_authenticator", errProxyStateMA
	case c.MessageAuthenticator == MAAlways, c.MessageAuthenticator == MAAuto && c.sawMA.Load():
		return "missing_message_authenticator", errNoMA
	}
	return "", nil
}

// drop counts a dropped packet and, for a known client, logs why (at most
// once per client and reason every few seconds, so that a flood does not
// flood the log). Unknown sources go through dropUnknown.
func (s *Server) drop(reason string, c *Client, src netip.AddrPort, err error) {
	s.metrics.dropped.WithLabelValues(reason).Inc()
	if c == nil || err == nil || !s.warned.allow(c.Name+"/"+reason, s.now()) {
		return
	}
	level := slog.LevelWarn
	if reason == "malformed" || reason == "unexpected_code" {
		level = slog.LevelInfo
	}
	s.log.Log(context.Background(), level, "RADIUS packet dropped", "client", c.Name, "src", src.String(), "reason", reason, "err", err)
}

// dropUnknown counts a packet from an address no client covers and logs
// it, once per source address a minute, with the address and port, so that
// a NAS configured with the wrong address (or behind NAT) can be found.
func (s *Server) dropUnknown(src netip.AddrPort, socket string) {
	s.metrics.dropped.WithLabelValues("unknown_client").Inc()
	log, full := s.unknown.allow(src.Addr().Unmap(), s.now())
	if !log {
		return
	}
	args := []any{"src", src.String(), "addr", src.Addr().Unmap().String(), "port", src.Port(), "socket", socket}
	if full {
		args = append(args, "note", "many unknown sources: others are only counted for now (bridge_radius_dropped_total{reason=\"unknown_client\"})")
	}
	s.log.Warn("RADIUS packet from an unknown client dropped: no radius.clients address covers it (a NAS with another address than configured, or behind NAT?); logged once a minute per address", args...)
}

func (s *Server) write(conn *net.UDPConn, b []byte, dst netip.AddrPort) {
	if _, err := conn.WriteToUDPAddrPort(b, dst); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("RADIUS write failed", "dst", dst.String(), "err", err)
	}
}

// handle answers one authentic, new request.
func (s *Server) handle(ctx context.Context, conn *net.UDPConn, c *Client, key reqKey, b []byte, arrived time.Time) {
	answered := false
	defer func() {
		if !answered {
			s.cache.finish(key, nil)
		}
	}()
	p, err := radius.Parse(b, c.Secret)
	if err != nil { // scan accepted it; this cannot happen
		s.drop("malformed", c, key.src, err)
		return
	}
	if p.Code == radius.CodeAccessRequest && c.MessageAuthenticator == MAAuto && !s.maAuto(ctx, c, p) {
		s.drop("missing_message_authenticator", c, key.src, errNoMA)
		return
	}
	var resp *radius.Packet
	switch {
	case p.Code == radius.CodeStatusServer && key.acct:
		resp = p.Response(radius.CodeAccountingResponse)
	case p.Code == radius.CodeStatusServer:
		resp = p.Response(radius.CodeAccessAccept)
	case p.Code == radius.CodeAccountingRequest:
		resp = s.accounting(ctx, c, p, key.src)
	default:
		resp = s.access(ctx, c, p, key.src, arrived)
	}
	if resp == nil || ctx.Err() != nil {
		return
	}
	// Proxy-State is copied into the response unchanged, in order (RFC
	// 2865 §5.33).
	for _, a := range p.Attributes {
		if a.Type == rfc2865.ProxyState_Type {
			resp.Add(a.Type, a.Attribute)
		}
	}
	out, err := encodeResponse(resp, p, c.Secret)
	if err != nil && resp.Code != radius.CodeAccountingResponse {
		// accept checks the size before deciding; this is the backstop:
		// a bare reject, cached like any answer so that a retransmission
		// does not start the login again.
		s.log.Error("RADIUS response does not encode; sending a bare Access-Reject", "client", c.Name, "err", err)
		resp = p.Response(radius.CodeAccessReject)
		out, err = encodeResponse(resp, p, c.Secret)
	}
	if err != nil {
		s.log.Error("RADIUS response does not encode", "client", c.Name, "err", err)
		return
	}
	s.metrics.responses.WithLabelValues(c.Name, resp.Code.String()).Inc()
	// Cached before it is sent, so that a copy arriving once the NAS has
	// the answer finds it.
	s.cache.finish(key, out)
	answered = true
	s.write(conn, out, key.src)
	s.metrics.duration.WithLabelValues(c.Name, resp.Code.String()).Observe(time.Since(arrived).Seconds())
}
