package pushauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// DeviceError is a refusal of something a device sent: Code is a protocol
// error code, Status the HTTP status, Reason what the audit log records.
type DeviceError struct {
	Status int
	Code   string
	Reason string
	late   bool // a fraud report on a closed challenge (not an error)
}

func (e *DeviceError) Error() string { return "pushauth: " + e.Code + ": " + e.Reason }

func deviceErr(status int, code, format string, args ...any) *DeviceError {
	return &DeviceError{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// answerSkew is how far an answer's iat may be ahead of the server's clock.
const answerSkew = 30 * time.Second

// Answered is what an accepted answer did.
type Answered struct {
	store.Challenge
	// FraudReported is set when the answer reported fraud on a challenge
	// that had already closed (superseded by the attacker's next push, or
	// expired while the user read it): the report still locks pushes,
	// is audited and reaches the webhook; the challenge keeps its state.
	FraudReported bool
}

// Answer verifies a device's signed answer (a JWS) to challenge id and
// closes the challenge with it: AnswerWith for an AnswerRequest of Answer
// alone.
func (e *Engine) Answer(ctx context.Context, dev store.Device, id, signed, clientIP string) (Answered, error) {
	return e.AnswerWith(ctx, dev, id, protocol.AnswerRequest{Answer: signed}, clientIP)
}

// AnswerWith verifies a device's answer to challenge id and closes the
// challenge with it. dev is the device that made the request (its proof
// was verified); the answer must be signed by that device's enrolled key
// (a JWS answer) or passkey (a WebAuthn answer, for a passkey device),
// name the challenge's id and hash, and come from a device of the
// challenge's user enrolled before the challenge that the application's
// device-key policy accepts. Every refusal is audited.
func (e *Engine) AnswerWith(ctx context.Context, dev store.Device, id string, req protocol.AnswerRequest, clientIP string) (Answered, error) {
	c, late, err := e.answer(ctx, dev, id, req, clientIP)
	if late {
		e.lateFraudReport(ctx, c, dev, clientIP)
		return Answered{Challenge: c, FraudReported: true}, nil
	}
	if err != nil {
		var de *DeviceError
		if errors.As(err, &de) {
			e.auditLog(ctx, store.AuditEvent{
				Actor: "device:" + dev.ID, Action: "push.answer", Subject: dev.User, Channel: "device", ClientIP: clientIP,
				Result: store.ResultFailure, Reason: de.Reason, Details: map[string]string{"challenge": clip(id, 64), "device": dev.ID},
			})
		}
		return Answered{}, err
	}
	e.closed(ctx, c, &dev)
	return Answered{Challenge: c}, nil
}

// answer verifies and closes. late reports a valid fraud report on a
// challenge that was already closed.
func (e *Engine) answer(ctx context.Context, dev store.Device, id string, req protocol.AnswerRequest, clientIP string) (_ store.Challenge, late bool, _ error) {
	c, err := e.answerOnce(ctx, dev, id, req, clientIP)
	var de *DeviceError
	if errors.As(err, &de) && de.late {
		return c, true, nil
	}
	return c, false, err
}

// answerClaims verifies the answer's signature, by the device's key or
// passkey as its kind says, and returns what it signed: the same claims
// either way, so that one decision follows. commit, if not nil, must
// succeed before the challenge closes (a passkey's sign counter).
func (e *Engine) answerClaims(dev store.Device, req protocol.AnswerRequest, clientIP string) (_ protocol.AnswerClaims, commit func(context.Context) error, _ error) {
	switch {
	case req.WebAuthn != nil && req.Answer != "":
		return protocol.AnswerClaims{}, nil, deviceErr(400, protocol.ErrInvalidAnswer, "an answer is a JWS or a passkey assertion, not both")
	case req.WebAuthn != nil && dev.Kind != store.DeviceKindWebAuthn:
		return protocol.AnswerClaims{}, nil, deviceErr(400, protocol.ErrInvalidAnswer, "this device has no passkey: it answers with a signed JWS")
	case req.WebAuthn != nil:
		return e.passkeyAnswer(dev, req.WebAuthn, clientIP)
	case dev.Kind == store.DeviceKindWebAuthn:
		return protocol.AnswerClaims{}, nil, deviceErr(400, protocol.ErrInvalidAnswer, "this device answers with its passkey")
	}
	var a protocol.AnswerClaims
	p, err := protocol.Parse(req.Answer, protocol.TypAnswer, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(dev.KeyAlg)})
	if err != nil {
		return a, nil, deviceErr(400, protocol.ErrInvalidAnswer, "%v", err)
	}
	if p.Header.KeyID != dev.ID {
		return a, nil, deviceErr(403, protocol.ErrInvalidAnswer, "answer signed for device %q, sent by %q", clip(p.Header.KeyID, 64), dev.ID)
	}
	key, err := deviceKey(dev)
	if err != nil {
		return a, nil, err
	}
	if err := p.Verify(key, &a); err != nil {
		return a, nil, deviceErr(400, protocol.ErrInvalidAnswer, "%v", err)
	}
	return a, nil, nil
}

func (e *Engine) answerOnce(ctx context.Context, dev store.Device, id string, req protocol.AnswerRequest, clientIP string) (store.Challenge, error) {
	if !validID(id) {
		return store.Challenge{}, deviceErr(404, protocol.ErrNotFound, "answer to a malformed challenge id")
	}
	if e.closes.queued(id) {
		// Its login ended while the store was down; the cancel is still
		// on its way to the store. Never approve an ended login.
		return store.Challenge{ID: id}, deviceErr(409, protocol.ErrAlreadyAnswered, "answer to a challenge whose login ended (its cancel is queued)")
	}
	c, err := e.state.GetChallenge(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return c, deviceErr(404, protocol.ErrNotFound, "answer to an unknown challenge")
	}
	if err != nil {
		return c, fmt.Errorf("pushauth: answer: %w", err)
	}
	if c.User != dev.User {
		return c, deviceErr(404, protocol.ErrNotFound, "answer from a device of another user (%s)", dev.User)
	}
	if dev.CreatedAt.After(c.CreatedAt) {
		return c, deviceErr(403, protocol.ErrInvalidAnswer, "answer from a device enrolled after the challenge was sent")
	}
	if p := challengeKeys(c); !qualifies(dev, p) {
		return c, policyRefusal(dev, p)
	}
	a, commit, err := e.answerClaims(dev, req, clientIP)
	if err != nil {
		return c, err
	}
	if a.ID != c.ID {
		return c, deviceErr(400, protocol.ErrInvalidAnswer, "answer names challenge %q", clip(a.ID, 64))
	}
	if a.Hash != protocol.ChallengeHash(c.Signed) {
		return c, deviceErr(400, protocol.ErrInvalidAnswer, "answer names another version of the challenge (hash mismatch)")
	}
	now := e.now()
	if iat := time.Unix(a.IssuedAt, 0); iat.Before(c.CreatedAt.Add(-answerSkew)) || iat.After(now.Add(answerSkew)) {
		return c, deviceErr(400, protocol.ErrInvalidAnswer, "answer time %d is outside the challenge's life", a.IssuedAt)
	}
	how := store.ChallengeClose{DeviceID: dev.ID}
	switch a.Decision {
	case protocol.Approve:
		how.State, how.Reason = store.ChallengeApproved, "approved on device"
		if c.Number != "" && subtle.ConstantTimeCompare([]byte(a.Number), []byte(c.Number)) != 1 {
			how.State, how.Reason = store.ChallengeDenied, "wrong number typed on device"
		}
	case protocol.Deny:
		how.State, how.Reason = store.ChallengeDenied, "denied on device"
	case protocol.Fraud:
		how.State, how.Reason = store.ChallengeFraud, "reported as fraud on device"
	default:
		return c, deviceErr(400, protocol.ErrInvalidAnswer, "unknown decision %q", clip(a.Decision, 32))
	}
	if commit == nil {
		commit = func(context.Context) error { return nil }
	}
	lateFraud := func(cur store.Challenge) *DeviceError {
		if a.Decision != protocol.Fraud {
			return nil
		}
		return &DeviceError{late: true}
	}
	if c.State.Closed() {
		if de := lateFraud(c); de != nil {
			if err := commit(ctx); err != nil {
				return c, err
			}
			return c, de
		}
		if c.State == store.ChallengeExpired {
			return c, deviceErr(409, protocol.ErrExpired, "answer after the challenge expired")
		}
		return c, deviceErr(409, protocol.ErrAlreadyAnswered, "answer to a challenge already %s", c.State)
	}
	// A counter that did not grow refuses the answer before it decides
	// anything; one that did is kept even if another answer wins the race
	// below (the authenticator did count it).
	if err := commit(ctx); err != nil {
		return c, err
	}
	closed, err := e.state.CloseChallenge(ctx, c.ID, how, now)
	switch {
	case err == nil:
		return closed, nil
	case errors.Is(err, store.ErrUsed):
		if cur, gerr := e.state.GetChallenge(ctx, c.ID); gerr == nil {
			if de := lateFraud(cur); de != nil {
				return cur, de
			}
		}
		return c, deviceErr(409, protocol.ErrAlreadyAnswered, "second answer to a closed challenge")
	case errors.Is(err, store.ErrExpired):
		cur, gerr := e.state.GetChallenge(ctx, c.ID)
		if gerr == nil && cur.State == store.ChallengeExpired {
			e.closed(ctx, cur, nil)
		}
		if de := lateFraud(cur); gerr == nil && de != nil {
			return cur, de
		}
		return c, deviceErr(409, protocol.ErrExpired, "answer after the challenge expired")
	default:
		return c, fmt.Errorf("pushauth: answer: %w", err)
	}
}

// lateFraudReport acts on "this wasn't me" for a challenge that had closed
// before the user answered: lock pushes, audit, webhook.
func (e *Engine) lateFraudReport(ctx context.Context, c store.Challenge, dev store.Device, clientIP string) {
	now := e.now()
	if _, err := e.st.UpdatePushLimit(ctx, c.User, func(l store.PushLimit) (store.PushLimit, error) {
		l.UpdatedAt = now
		l.Failures++
		l.NextAt = now.Add(backoff(e.cfg.BackoffBase, e.cfg.BackoffMax, l.Failures))
		l.LockedUntil = now.Add(e.cfg.FraudLock)
		l.LockReason = "the user reported a push as fraud (challenge " + c.ID + ")"
		return l, nil
	}); err != nil {
		e.log.Error("fraud lock failed", "user", c.User, "err", err)
	}
	e.m.closed.WithLabelValues("fraud_reported_late").Inc()
	e.auditLog(ctx, store.AuditEvent{
		Actor: "device:" + dev.ID, Action: "push.fraud", Subject: c.User, Channel: c.Channel, ClientIP: c.ClientIP, Result: store.ResultDenied,
		Reason:  "reported as fraud on device after the challenge was " + string(c.State),
		Details: map[string]string{"challenge": c.ID, "app": c.AppID, "device": dev.ID, "device_ip": clientIP},
	})
	e.fraudWebhook(c, &dev)
}

// validID reports whether s can be an id the bridge issued: 1 to 64
// base64url characters. Anything else is refused before it reaches the
// store (PostgreSQL rejects NUL bytes in text, for one).
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// deviceKey parses a device's enrolled public key.
func deviceKey(dev store.Device) (jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(dev.PublicJWK); err != nil {
		return k, fmt.Errorf("pushauth: device %s: stored key: %w", dev.ID, err)
	}
	return k, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
