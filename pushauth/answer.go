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
}

func (e *DeviceError) Error() string { return "pushauth: " + e.Code + ": " + e.Reason }

func deviceErr(status int, code, format string, args ...any) *DeviceError {
	return &DeviceError{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// answerSkew is how far an answer's iat may be ahead of the server's clock.
const answerSkew = 30 * time.Second

// Answer verifies a device's signed answer to challenge id and closes the
// challenge with it. dev is the device that made the request (its proof was
// verified); the answer must be signed by that device's enrolled key, name
// the challenge's id and hash, and come from a device of the challenge's
// user enrolled before the challenge. Every refusal is audited.
func (e *Engine) Answer(ctx context.Context, dev store.Device, id, signed, clientIP string) (store.Challenge, error) {
	c, err := e.answer(ctx, dev, id, signed)
	if err != nil {
		var de *DeviceError
		if errors.As(err, &de) {
			e.auditLog(ctx, store.AuditEvent{
				Actor: "device:" + dev.ID, Action: "push.answer", Subject: dev.User, Channel: "device", ClientIP: clientIP,
				Result: store.ResultFailure, Reason: de.Reason, Details: map[string]string{"challenge": clip(id, 64), "device": dev.ID},
			})
		}
		return store.Challenge{}, err
	}
	e.closed(ctx, c, &dev)
	return c, nil
}

func (e *Engine) answer(ctx context.Context, dev store.Device, id, signed string) (store.Challenge, error) {
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
	p, err := protocol.Parse(signed, protocol.TypAnswer, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(dev.KeyAlg)})
	if err != nil {
		return c, deviceErr(400, protocol.ErrInvalidAnswer, "%v", err)
	}
	if p.Header.KeyID != dev.ID {
		return c, deviceErr(403, protocol.ErrInvalidAnswer, "answer signed for device %q, sent by %q", clip(p.Header.KeyID, 64), dev.ID)
	}
	key, err := deviceKey(dev)
	if err != nil {
		return c, err
	}
	var a protocol.AnswerClaims
	if err := p.Verify(key, &a); err != nil {
		return c, deviceErr(400, protocol.ErrInvalidAnswer, "%v", err)
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
	if c.State.Closed() {
		return c, deviceErr(409, protocol.ErrAlreadyAnswered, "answer to a challenge already %s", c.State)
	}
	closed, err := e.state.CloseChallenge(ctx, c.ID, how, now)
	switch {
	case err == nil:
		return closed, nil
	case errors.Is(err, store.ErrUsed):
		return c, deviceErr(409, protocol.ErrAlreadyAnswered, "second answer to a closed challenge")
	case errors.Is(err, store.ErrExpired):
		if cur, gerr := e.state.GetChallenge(ctx, c.ID); gerr == nil && cur.State == store.ChallengeExpired {
			e.closed(ctx, cur, nil)
		}
		return c, deviceErr(409, protocol.ErrExpired, "answer after the challenge expired")
	default:
		return c, fmt.Errorf("pushauth: answer: %w", err)
	}
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
