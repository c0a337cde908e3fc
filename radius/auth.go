package radius

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/otp"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
)

// challengeWait is how long the answer to an Access-Challenge waits for the
// phone before asking the user again: well under the shortest NAS timeout,
// which is why the client chose challenge mode.
const challengeWait = 3 * time.Second

// maxCodeAttempts is how many wrong codes one challenge session takes
// before it ends in a reject.
const maxCodeAttempts = 3

// login is one Access-Request on its way to a decision, with what the audit
// event needs.
type login struct {
	c       *Client
	req     *radius.Packet
	src     netip.AddrPort
	user    string // as sent, then normalised by the directory
	ident   directory.Identity
	factor  string // push, totp, bypass, failmode
	chal    string // push challenge id
	nas     string // NAS-Identifier
	nasIP   string
	calling string // Calling-Station-Id
	ip      string // the end user's address, when Calling-Station-Id is one
	station string // where the login comes from, for joining a pending push
	arrived time.Time
}

// access decides an Access-Request: a response packet, or nil to drop it.
// arrived is when the datagram reached the host (the kernel's stamp, or
// when it was read), on the wall clock.
func (s *Server) access(ctx context.Context, c *Client, p *radius.Packet, src netip.AddrPort, arrived time.Time) *radius.Packet {
	// Arrival, before the first factor and before any wait for a free
	// core, decides which attempt the request belongs to
	// (pushauth.Request.Arrived), on the server's clock.
	l := &login{c: c, req: p, src: src, arrived: s.now().Add(-max(time.Since(arrived), 0))}
	l.user = rfc2865.UserName_GetString(p)
	l.nas = clean(rfc2865.NASIdentifier_GetString(p))
	if ip, err := rfc2865.NASIPAddress_Lookup(p); err == nil {
		l.nasIP = ip.String()
	}
	l.calling = clean(rfc2865.CallingStationID_GetString(p))
	if a, err := netip.ParseAddr(l.calling); err == nil {
		l.ip = a.Unmap().String()
	}
	l.station = station(p, src, l.calling)

	if l.user == "" {
		return s.reject(ctx, l, "no User-Name", "")
	}
	if clean(l.user) != strings.TrimSpace(l.user) {
		l.user = clean(l.user)
		return s.reject(ctx, l, "User-Name with control characters or invalid UTF-8", "")
	}
	if _, ok := p.Lookup(rfc2865.CHAPPassword_Type); ok {
		return s.reject(ctx, l, "CHAP is not supported: configure the NAS for PAP", "")
	}
	if _, ok := p.Lookup(rfc2869.EAPMessage_Type); ok {
		return s.reject(ctx, l, "EAP is not supported: configure the NAS for PAP", "")
	}
	raw, hasPassword := p.Lookup(rfc2865.UserPassword_Type)
	state, hasState := p.Lookup(rfc2865.State_Type)
	var pw []byte
	switch {
	case hasPassword && len(raw) == 0 && !hasState:
		return s.reject(ctx, l, "empty User-Password (zero-length attribute) without a State", "")
	case hasPassword && len(raw) > 0:
		// A zero-length one with a State is nothing typed (radcli, as
		// ocserv uses it, sends that for Enter at a challenge's prompt).
		var err error
		if pw, err = radius.UserPassword(raw, c.Secret, p.Authenticator[:]); err != nil {
			return s.reject(ctx, l, "User-Password does not decode: "+err.Error(), "")
		}
	}
	if hasState {
		// The answer to a challenge: what the user typed, possibly nothing
		// (some NASes then leave User-Password out, radcli sends it empty).
		return s.resume(ctx, l, string(state), string(pw))
	}
	if !hasPassword {
		return s.reject(ctx, l, "no User-Password (only PAP is supported)", "")
	}

	password, factor, code := string(pw), "", ""
	if c.PasswordSuffix {
		password, factor, code = splitSuffix(password)
	}
	ident, resp, ok := s.firstFactor(ctx, l, password) // radius/limits.go
	if !ok {
		return resp
	}
	l.ident, l.user = ident, ident.Username

	switch {
	case code != "" && !codesAccepted(c):
		// Checked before the code, which stays unused.
		return s.reject(ctx, l, "one-time code refused: the client's device_keys is "+c.DeviceKeys+" (a hardware-bound key must approve)", msgNoCodes)
	case code != "":
		return s.finishCode(ctx, l, code)
	case c.SecondFactor == FactorOTP && factor == FactorPush:
		return s.reject(ctx, l, "push asked for, but this client takes one-time codes only", msgOTPOnly)
	case c.SecondFactor == FactorOTP && c.Wait == Challenge:
		return s.challenge(ctx, l, &session{kind: FactorOTP, expires: s.now().Add(5 * time.Minute)}, msgEnterCode)
	case c.SecondFactor == FactorOTP:
		return s.reject(ctx, l, "one-time code required: append it to the password as password,CODE", msgAppendCode)
	}
	return s.push(ctx, l)
}

// station names where a login comes from, so that a new request joins a
// pending push only from the same place: the NAS and the Calling-Station-Id
// (the user's address or MAC), or else the NAS port. A request with
// neither gets a station of its own: it never joins (a second login of the
// user through the same NAS supersedes the first instead of being let in by
// its approval).
func station(p *radius.Packet, src netip.AddrPort, calling string) string {
	nas := src.Addr().String()
	if calling != "" {
		return nas + "|cs|" + calling
	}
	if id := clean(rfc2869.NASPortID_GetString(p)); id != "" {
		return nas + "|port|" + id
	}
	if port, err := rfc2865.NASPort_Lookup(p); err == nil {
		return fmt.Sprintf("%s|port|%d", nas, port)
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return nas + "|once|" + base64.RawURLEncoding.EncodeToString(b[:])
}

// clean makes text from a packet fit for logs and the audit log: valid
// UTF-8, no control characters, at most 253 bytes (an attribute's most).
func clean(s string) string {
	s = strings.TrimSpace(s)
	ok := utf8.ValidString(s)
	for _, r := range s {
		if unicode.IsControl(r) {
			ok = false
			break
		}
	}
	if !ok {
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, strings.ToValidUTF8(s, "\uFFFD"))
	}
	if len(s) > 253 {
		s = strings.ToValidUTF8(s[:253], "")
	}
	return s
}

// splitSuffix separates "password,push" and "password,CODE" (6 to 20
// digits). Anything else after the last comma is part of the password.
func splitSuffix(pw string) (password, factor, code string) {
	i := strings.LastIndexByte(pw, ',')
	if i < 0 {
		return pw, "", ""
	}
	suffix := pw[i+1:]
	if strings.EqualFold(suffix, "push") {
		return pw[:i], FactorPush, ""
	}
	if looksLikeCode(suffix) {
		return pw[:i], "code", suffix
	}
	return pw, "", ""
}

// codesAccepted reports whether client c takes one-time codes (TOTP,
// bypass) as the second factor: not when its device_keys is hardware or
// attested, the operator's word that a hardware-bound key must approve
// (a code typed from anywhere would go around it).
func codesAccepted(c *Client) bool {
	return c.DeviceKeys == "" || c.DeviceKeys == pushauth.KeysAny
}

// looksLikeCode reports whether s is 6 to 20 ASCII digits: a TOTP code (6
// or 8) or a bypass code (8 to 20).
func looksLikeCode(s string) bool {
	if len(s) < 6 || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// push starts the approval and, for a held request, waits for it.
func (s *Server) push(ctx context.Context, l *login) *radius.Packet {
	c := l.c
	h, err := s.deps.Push.Start(ctx, pushauth.Request{
		User: l.user, AppID: c.Name, AppName: c.Name, Channel: "radius",
		ClientIP: l.ip, UserAgent: l.nas, Station: l.station, NumberMatching: c.NumberMatching, DeviceKeys: c.DeviceKeys, Arrived: l.arrived,
		TakeUndelivered: true, // a NAS does not resend to another node what a dead one held
	})
	l.factor = FactorPush
	if err != nil {
		return s.pushRefused(ctx, l, err)
	}
	l.chal = h.ID
	if c.Wait == Challenge {
		msg := msgApprove
		if !codesAccepted(c) {
			msg = msgApproveOnly
		}
		if h.Number != "" {
			msg = fmt.Sprintf(msgApproveNumber, h.Number)
		}
		return s.challenge(ctx, l, &session{kind: FactorPush, challenge: h.ID, number: h.Number, expires: h.ExpiresAt}, msg)
	}

	release := s.holds.add(h.ID)
	wctx, cancel := context.WithTimeout(ctx, c.HoldTimeout)
	o, err := s.deps.Push.Wait(wctx, h.ID)
	cancel()
	last := release()
	switch {
	case err == nil:
		return s.outcome(ctx, l, o)
	case ctx.Err() != nil: // shutting down: no answer; the NAS retries elsewhere
		if last {
			s.cancelPush(h.ID, "the bridge is shutting down")
		}
		return nil
	case errors.Is(err, pushauth.ErrUnavailable):
		// The store went away while the login waited: the failmode, as
		// for a new login, and the challenge must not stay answerable.
		if last {
			s.cancelPush(h.ID, "the store did not answer while the login waited")
		}
		return s.failed(ctx, l, err)
	case errors.Is(err, context.DeadlineExceeded):
		// Another request of the same login (a NAS that gave up and
		// started over) may still be waiting on this challenge.
		if last {
			s.cancelPush(h.ID, "no answer within the RADIUS hold timeout")
		}
		return s.reject(ctx, l, fmt.Sprintf("no answer from the phone within %s (hold_timeout)", c.HoldTimeout), msgNoAnswer)
	default:
		return s.failed(ctx, l, err)
	}
}

// cancelPush closes a challenge nobody waits for any more.
func (s *Server) cancelPush(id, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.deps.Push.Cancel(ctx, id, reason); err != nil && !errors.Is(err, store.ErrUsed) {
		// The engine queues a cancel the store did not take; this is
		// anything else, and the phone may show the challenge until it
		// expires.
		s.log.Warn("cancelling a push challenge failed", "challenge", id, "err", err)
	}
}

// resolvePush closes a challenge whose login a one-time code completed:
// unlike a cancel, it does not count towards the user's back-off.
func (s *Server) resolvePush(id, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.deps.Push.Resolve(ctx, id, reason); err != nil && !errors.Is(err, store.ErrUsed) {
		s.log.Warn("closing a push challenge failed", "challenge", id, "err", err)
	}
}

// pushRefused answers a push the engine would not start.
func (s *Server) pushRefused(ctx context.Context, l *login, err error) *radius.Packet {
	var rl *pushauth.RateLimitError
	switch {
	case errors.Is(err, pushauth.ErrNoQualifyingDevice):
		return s.reject(ctx, l, "no enrolled device meets the client's device_keys", msgNoDeviceKeys)
	case errors.Is(err, pushauth.ErrNoDevice):
		return s.reject(ctx, l, "no enrolled device", msgNoDevice)
	case errors.Is(err, pushauth.ErrLocked):
		return s.deny(ctx, l, err.Error(), msgLocked)
	case errors.As(err, &rl), errors.Is(err, pushauth.ErrRateLimited):
		return s.deny(ctx, l, err.Error(), msgTooMany)
	case ctx.Err() != nil:
		return nil
	}
	return s.failed(ctx, l, err)
}

// outcome answers with how the approval ended.
func (s *Server) outcome(ctx context.Context, l *login, o pushauth.Outcome) *radius.Packet {
	switch o.State {
	case store.ChallengeApproved:
		return s.accept(ctx, l, "approved on the phone")
	case store.ChallengeDenied:
		return s.deny(ctx, l, "denied on the phone: "+o.Reason, msgDenied)
	case store.ChallengeFraud:
		return s.deny(ctx, l, "reported as fraud on the phone", msgDenied)
	case store.ChallengeExpired:
		return s.reject(ctx, l, "the push challenge expired", msgNoAnswer)
	}
	return s.reject(ctx, l, fmt.Sprintf("the push challenge was %s: %s", o.State, o.Reason), msgNoAnswer)
}

// failed applies the client's failmode when the push engine or the store
// could not do its part.
func (s *Server) failed(ctx context.Context, l *login, err error) *radius.Packet {
	s.metrics.failmode.WithLabelValues(l.c.Name, l.c.Failmode).Inc()
	if l.c.Failmode == FailSafe {
		if s.warned.allow("failmode/"+l.c.Name, s.now()) {
			s.log.Error("RADIUS second factor unavailable: FAILING OPEN (failmode safe), accepting on the first factor alone",
				"client", l.c.Name, "user", l.user, "err", err)
		}
		l.factor = "failmode"
		return s.accept(ctx, l, "second factor unavailable, failmode safe: "+err.Error())
	}
	if s.warned.allow("failmode/"+l.c.Name, s.now()) {
		s.log.Error("RADIUS second factor unavailable: rejecting (failmode secure)", "client", l.c.Name, "user", l.user, "err", err)
	}
	return s.reject(ctx, l, "second factor unavailable: "+err.Error(), msgUnavailable)
}

// finishCode decides with a one-time code, given with the password or in
// answer to a challenge.
func (s *Server) finishCode(ctx context.Context, l *login, code string) *radius.Packet {
	factor, err := s.verifyCode(ctx, l.user, code)
	l.factor = factor
	switch {
	case err == nil:
		return s.accept(ctx, l, "one-time code")
	case errors.Is(err, errCodeLimit):
		return s.deny(ctx, l, err.Error(), msgTooMany)
	case isCodeRefusal(err):
		return s.deny(ctx, l, err.Error(), "")
	}
	return s.failed(ctx, l, err)
}

var errCodeLimit = errors.New("too many wrong one-time codes")

// verifyCode checks code as the user's TOTP code and, failing that, as a
// bypass code. It returns the factor that matched (or was tried last).
func (s *Server) verifyCode(ctx context.Context, user, code string) (string, error) {
	if ok, err := s.codes.reserve(ctx, user); err != nil {
		return "totp", err
	} else if !ok {
		return "totp", errCodeLimit
	}
	factor, err := "totp", error(otp.ErrNoToken)
	if s.deps.TOTP != nil && (len(code) == 6 || len(code) == 8) {
		err = s.deps.TOTP.Verify(ctx, user, code)
	}
	if s.deps.Bypass != nil && len(code) >= 8 && (errors.Is(err, otp.ErrNoToken) || errors.Is(err, otp.ErrInvalidCode)) {
		factor, err = "bypass", s.deps.Bypass.Verify(ctx, user, code)
	}
	switch {
	case err == nil:
		if rerr := s.codes.reset(ctx, user); rerr != nil {
			s.log.Warn("resetting the wrong-code count failed", "user", user, "err", rerr)
		}
	case !isCodeRefusal(err): // the store failed, not the user
		if rerr := s.codes.refund(ctx, user); rerr != nil {
			s.log.Warn("refunding a code attempt failed", "user", user, "err", rerr)
		}
	}
	return factor, err
}

// isCodeRefusal reports whether err is the user's fault (a wrong, reused or
// missing code) rather than the store's.
func isCodeRefusal(err error) bool {
	return errors.Is(err, otp.ErrInvalidCode) || errors.Is(err, otp.ErrReplay) || errors.Is(err, otp.ErrNoToken) || errors.Is(err, errCodeLimit)
}

// challenge answers with an Access-Challenge and keeps the session for the
// NAS to come back to with the State, on this node or another.
func (s *Server) challenge(ctx context.Context, l *login, sess *session, msg string) *radius.Packet {
	if sess.id == "" {
		var b [18]byte
		_, _ = rand.Read(b[:])
		sess.id = base64.RawURLEncoding.EncodeToString(b[:])
		sess.client, sess.user, sess.ident, sess.typed = l.c.Name, l.user, l.ident, strings.ToLower(strings.TrimSpace(rfc2865.UserName_GetString(l.req)))
		l.factor = sess.kind
		err := s.sessions.put(ctx, sess, s.now())
		if err == nil && sess.challenge != "" {
			// The session delivers the push's answer, on whichever node
			// the State reaches: no other login may take it as undelivered.
			err = s.deps.Push.Delivered(ctx, sess.challenge)
		}
		if err != nil {
			// The second round could not be recognised: the second
			// factor is unavailable, as when the push engine is down.
			if sess.challenge != "" {
				s.cancelPush(sess.challenge, "its RADIUS challenge session could not be stored")
			}
			return s.failed(ctx, l, fmt.Errorf("storing the challenge session: %w", err))
		}
		s.auditEvent(ctx, l, "login.challenge", store.ResultSuccess, "first factor accepted; Access-Challenge sent for the "+sess.kind, "")
	}
	resp := l.req.Response(radius.CodeAccessChallenge)
	rfc2865.State_Set(resp, []byte(sess.id))
	addReplyMessage(resp, msg)
	// Echo what the user types: a code or nothing, never a password.
	rfc2869.Prompt_Set(resp, rfc2869.Prompt_Value_Echo)
	if left := sess.expires.Sub(s.now()); left > 0 {
		rfc2865.SessionTimeout_Set(resp, rfc2865.SessionTimeout(left/time.Second+1))
	}
	s.metrics.decisions.WithLabelValues(l.c.Name, "challenge").Inc()
	return resp
}

// resume handles the NAS coming back with a State: the user pressed Enter
// (push) or typed a code. The session may have been made on another node.
func (s *Server) resume(ctx context.Context, l *login, state, response string) *radius.Packet {
	sess, unlock, err := s.sessions.take(ctx, state, s.now())
	switch {
	case errors.Is(err, errSessionUsed):
		return s.reject(ctx, l, "State already used", msgExpired)
	case errors.Is(err, store.ErrNotFound):
		return s.reject(ctx, l, "unknown or expired State", msgExpired)
	case err != nil:
		// Not failmode: without the session nothing shows that this
		// request's first factor was ever checked.
		return s.reject(ctx, l, "the challenge session could not be read: "+err.Error(), msgUnavailable)
	}
	defer unlock()
	if sess.client != l.c.Name || !strings.EqualFold(sess.typed, strings.TrimSpace(l.user)) {
		return s.reject(ctx, l, "State sent by another client or for another user", "")
	}
	l.user, l.ident, l.factor, l.chal = sess.user, sess.ident, sess.kind, sess.challenge
	response = strings.TrimSpace(response)
	end := func(resp *radius.Packet) *radius.Packet {
		if resp != nil && resp.Code != radius.CodeAccessChallenge {
			// Another node may have ended it at the same moment (a NAS
			// that sent the round to both): the decision stands, it was
			// reached on its own evidence.
			if err := s.sessions.end(context.WithoutCancel(ctx), sess, s.now()); err != nil && !errors.Is(err, errSessionUsed) {
				s.log.Warn("ending a RADIUS challenge session failed; it expires by itself", "client", l.c.Name, "user", l.user, "err", err)
			}
		}
		return resp
	}

	code := strings.Map(dropSpaces, response)
	if sess.number != "" && code == sess.number {
		code = "" // the user typed the number here too: as good as Enter
	}
	if (looksLikeCode(code) || sess.kind == FactorOTP) && !codesAccepted(l.c) {
		// The code is not checked (nor used up); the push, if any, still
		// waits for the phone.
		if sess.kind == FactorOTP {
			return end(s.reject(ctx, l, "one-time code refused: the client's device_keys is "+l.c.DeviceKeys, msgNoCodes))
		}
		s.auditChallenge(ctx, l, "one-time code refused: the client's device_keys is "+l.c.DeviceKeys)
		return s.challenge(ctx, l, sess, msgNoCodesApprove)
	}
	if looksLikeCode(code) || sess.kind == FactorOTP {
		factor, err := s.verifyCode(ctx, l.user, code)
		l.factor = factor
		switch {
		case err == nil:
			if sess.challenge != "" {
				s.resolvePush(sess.challenge, "answered with a one-time code")
			}
			if r := s.endBeforeAccept(ctx, l, sess); r != nil {
				return r
			}
			return s.accept(ctx, l, "one-time code")
		case errors.Is(err, errCodeLimit):
			return end(s.deny(ctx, l, err.Error(), msgTooMany))
		case !isCodeRefusal(err):
			return end(s.failed(ctx, l, err))
		}
		n, cerr := s.sessions.countAttempt(ctx, sess, s.now())
		if cerr != nil || n >= maxCodeAttempts {
			if sess.challenge != "" {
				s.cancelPush(sess.challenge, "too many wrong one-time codes")
			}
			return end(s.deny(ctx, l, err.Error(), msgTooMany))
		}
		s.auditChallenge(ctx, l, "wrong one-time code: "+err.Error())
		msg := msgCodeAgain
		if sess.kind == FactorPush {
			msg = msgCodeAgainOrApprove
		}
		return s.challenge(ctx, l, sess, msg)
	}

	wctx, cancel := context.WithTimeout(ctx, challengeWait)
	o, err := s.deps.Push.Wait(wctx, sess.challenge)
	cancel()
	switch {
	case err == nil:
		if o.Approved() {
			if r := s.endBeforeAccept(ctx, l, sess); r != nil {
				return r
			}
			return s.outcome(ctx, l, o)
		}
		return end(s.outcome(ctx, l, o))
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		msg := msgStillWaiting
		if sess.number != "" {
			msg = fmt.Sprintf(msgStillWaitingNumber, sess.number)
		}
		return s.challenge(ctx, l, sess, msg)
	}
	return end(s.failed(ctx, l, err))
}

// endBeforeAccept uses the session up before an Access-Accept is built:
// of two rounds of one State on two nodes (a NAS that sent it to both),
// only the one that ends the session accepts. It returns the answer for a
// round that may not accept, or nil.
func (s *Server) endBeforeAccept(ctx context.Context, l *login, sess *session) *radius.Packet {
	err := s.sessions.end(context.WithoutCancel(ctx), sess, s.now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errSessionUsed):
		return s.reject(ctx, l, "State already used (the login was answered by another request)", msgExpired)
	}
	return s.reject(ctx, l, "the challenge session could not be ended: "+err.Error(), msgUnavailable)
}

func dropSpaces(r rune) rune {
	if r == ' ' || r == '-' || r == '\t' {
		return -1
	}
	return r
}

// accept builds an Access-Accept with the client's reply attributes and
// those of the user's groups.
func (s *Server) accept(ctx context.Context, l *login, reason string) *radius.Packet {
	c := l.c
	resp := l.req.Response(radius.CodeAccessAccept)
	// Class ties the NAS's accounting records to this login (RFC 2865
	// §5.25: the NAS sends it back unchanged in Accounting-Requests).
	// Per client: off, or a template (classValue).
	class := classValue(c.Class, l.chal, l.user)
	if class != "" {
		resp.Add(rfc2865.Class_Type, radius.Attribute(class))
	}
	if c.SessionTimeout > 0 {
		rfc2865.SessionTimeout_Set(resp, rfc2865.SessionTimeout(c.SessionTimeout/time.Second))
	}
	for _, v := range c.Attributes {
		resp.Attributes = append(resp.Attributes, v.AVP())
	}
	for _, g := range c.Groups {
		if inGroup(l.ident, g.Group) {
			for _, v := range g.Attributes {
				resp.Attributes = append(resp.Attributes, v.AVP())
			}
		}
	}
	if n := encodedLen(resp, l.req); n > maxPacket {
		// Found before the decision is recorded: an accept that cannot be
		// sent must not be audited as one.
		return s.reject(ctx, l, fmt.Sprintf("the Access-Accept would be %d bytes, over RADIUS's %d: fewer reply attributes or Proxy-State", n, maxPacket), "")
	}
	if err := s.audit(ctx, l, store.ResultSuccess, reason, class); err != nil {
		// An accept leaves only with its audit event durable (in the
		// store or this node's spool): fail secure.
		return s.reject(ctx, l, "the accept could not be recorded in the audit log: "+err.Error(), msgUnavailable)
	}
	s.metrics.decisions.WithLabelValues(c.Name, "accept").Inc()
	return resp
}

// reject answers Access-Reject for a failure (wrong password, no device,
// timeout); msg, if set, is shown to the user.
func (s *Server) reject(ctx context.Context, l *login, reason, msg string) *radius.Packet {
	return s.refuse(ctx, l, store.ResultFailure, reason, msg)
}

// deny answers Access-Reject for a refusal (denied on the phone, locked,
// rate limited).
func (s *Server) deny(ctx context.Context, l *login, reason, msg string) *radius.Packet {
	return s.refuse(ctx, l, store.ResultDenied, reason, msg)
}

func (s *Server) refuse(ctx context.Context, l *login, result store.AuditResult, reason, msg string) *radius.Packet {
	if msg != "" && !directory.RequiresPassword(l.c.Directory) {
		// Passwordless: anyone who knows a user name gets this far, so
		// say nothing about the account (no device, locked, ...).
		msg = ""
	}
	resp := l.req.Response(radius.CodeAccessReject)
	addReplyMessage(resp, msg)
	// A reject grants nothing: it goes out even if its event could not
	// be recorded (auditEvent logged that).
	_ = s.audit(ctx, l, result, reason, "")
	s.metrics.decisions.WithLabelValues(l.c.Name, "reject").Inc()
	return resp
}

// addReplyMessage adds msg, if any, as Reply-Message.
func addReplyMessage(p *radius.Packet, msg string) {
	if msg != "" {
		_ = rfc2865.ReplyMessage_SetString(p, msg)
	}
}

// auditChallenge records a step of a challenge session that did not end it.
func (s *Server) auditChallenge(ctx context.Context, l *login, reason string) {
	_ = s.audit(ctx, l, store.ResultFailure, reason, "")
}

// audit records a decision: who, from which NAS and end-user address, what
// was decided and why. The error says the event is not durable (neither in
// the store nor in the audit spool); it has been logged.
func (s *Server) audit(ctx context.Context, l *login, result store.AuditResult, reason, class string) error {
	return s.auditEvent(ctx, l, "login", result, reason, class)
}

func (s *Server) auditEvent(ctx context.Context, l *login, action string, result store.AuditResult, reason, class string) error {
	d := map[string]string{"client": l.c.Name, "nas_addr": l.src.Addr().String(), "wait": string(l.c.Wait)}
	for k, v := range map[string]string{"nas_identifier": l.nas, "nas_ip": l.nasIP, "calling_station_id": l.calling,
		"factor": l.factor, "challenge": l.chal, "class": class, "directory": l.c.Directory.Name()} {
		if v != "" {
			d[k] = v
		}
	}
	user := clean(l.user)
	_, err := s.deps.Audit.Append(context.WithoutCancel(ctx), store.AuditEvent{
		Time: s.now(), Actor: "radius:" + l.c.Name, Action: action, Subject: user, Channel: "radius",
		ClientIP: l.ip, Result: result, Reason: reason, Details: d,
	})
	if err != nil {
		s.log.Error("recording a RADIUS decision in the audit log failed", "client", l.c.Name, "user", user, "result", result, "err", err)
	}
	return err
}
