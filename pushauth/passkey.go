package pushauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	wa "github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// The web app's passkeys: the registration made at enrollment and the
// assertions that answer challenges, verified with go-webauthn's protocol
// package (the ceremony's rules: type, challenge, origin, RP ID hash,
// flags, signature, attestation statement). What the bridge adds: the
// challenges are derived from the enrollment and the answer (package
// protocol), so neither needs server-side session state, and the sign
// counter is checked and moved inside the device's UpdateDevice.

// maxCredentialID is WebAuthn's limit on a credential id (L3 §5.1).
const maxCredentialID = 1023

// Transports a registration may list: at most maxTransports names of at
// most 32 bytes.
const maxTransports = 8

// passkeyAlgs are the credential algorithms the app asks for (ES256,
// EdDSA, RS256) and the server accepts.
var passkeyAlgs = []wa.CredentialParameter{
	{Type: wa.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: wa.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
	{Type: wa.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
}

// errPasskeysOff refuses a passkey enrollment on a bridge without an RP ID.
var errPasskeysOff = deviceErr(400, protocol.ErrInvalidRequest, "passkeys are off on this bridge (its base URL is an IP address)")

// verifyRegistration checks the passkey of an enrollment whose activation
// code is act and whose request key has thumbprint tp, and returns the
// credential to store.
func (e *Engine) verifyRegistration(r *protocol.WebAuthnRegistration, act, tp string) (*store.WebAuthnCredential, error) {
	if e.cfg.WebAuthnRPID == "" {
		return nil, errPasskeysOff
	}
	bad := func(format string, args ...any) error {
		return deviceErr(400, protocol.ErrInvalidRequest, "passkey registration: "+format, args...)
	}
	rawID, err := b64d(r.ID)
	switch {
	case err != nil || len(rawID) == 0:
		return nil, bad("id is not base64url")
	case len(rawID) > maxCredentialID:
		return nil, bad("credential id is longer than %d bytes", maxCredentialID)
	case len(r.Transports) > maxTransports:
		return nil, bad("more than %d transports", maxTransports)
	}
	for _, t := range r.Transports {
		if t == "" || len(t) > 32 || !printableASCII(t) {
			return nil, bad("a transport is not a short printable name")
		}
	}
	cdj, err1 := b64d(r.ClientDataJSON)
	ao, err2 := b64d(r.AttestationObject)
	if err1 != nil || err2 != nil || len(cdj) == 0 || len(ao) == 0 {
		return nil, bad("client_data_json and attestation_object must be base64url")
	}
	ccr := wa.CredentialCreationResponse{
		PublicKeyCredential: wa.PublicKeyCredential{Credential: wa.Credential{ID: r.ID, Type: string(wa.PublicKeyCredentialType)}, RawID: rawID},
		AttestationResponse: wa.AuthenticatorAttestationResponse{
			AuthenticatorResponse: wa.AuthenticatorResponse{ClientDataJSON: cdj},
			AttestationObject:     ao,
			Transports:            r.Transports,
		},
	}
	pcc, err := ccr.Parse()
	if err != nil {
		return nil, bad("%s", waReason(err))
	}
	ad := pcc.Response.AttestationObject.AuthData
	if !ad.Flags.UserVerified() {
		// The app asks for userVerification "required"; an authenticator
		// that did not verify the user cannot answer either.
		return nil, deviceErr(400, protocol.ErrInvalidRequest, "user verification required")
	}
	challenge := b64.EncodeToString(protocol.EnrollWebAuthnChallenge(act, tp))
	if _, err := pcc.Verify(challenge, e.cfg.WebAuthnRPID, e.cfg.origins(), nil, nil, wa.TopOriginExplicitVerificationMode,
		false, true, true, nil, passkeyAlgs, wa.AttestationPolicy{}, wa.SignaturePolicy{}); err != nil {
		return nil, bad("%s", waReason(err))
	}
	obj := pcc.Response.AttestationObject
	return &store.WebAuthnCredential{
		CredentialID: ad.AttData.CredentialID, PublicKey: ad.AttData.CredentialPublicKey, SignCount: ad.Counter,
		AAGUID: ad.AttData.AAGUID, AttestationFormat: obj.Format, AttestationType: obj.Type,
		// Verify refused a statement that did not verify; "none" has nothing to verify.
		AttestationVerified: obj.Format != string(wa.AttestationFormatNone),
		AttestationTrusted:  obj.Format != string(wa.AttestationFormatNone) && attestationTrusted(obj, e.attRoots, e.now()),
		BackupEligible:      ad.Flags.HasBackupEligible(), BackedUp: ad.Flags.HasBackupState(),
		Transports: r.Transports, RPID: e.cfg.WebAuthnRPID,
	}, nil
}

// passkeyAnswer verifies a passkey device's answer: the assertion by its
// enrolled credential over the challenge derived from the answer's claims.
// It returns the claims and a commit that moves the sign counter, run just
// before the challenge closes.
func (e *Engine) passkeyAnswer(dev store.Device, a *protocol.WebAuthnAnswer, clientIP string) (protocol.AnswerClaims, func(context.Context) error, error) {
	claims := protocol.AnswerClaims{ID: a.ID, Hash: a.Hash, Decision: a.Decision, Number: a.Number, IssuedAt: a.IssuedAt}
	bad := func(format string, args ...any) error {
		return deviceErr(400, protocol.ErrInvalidAnswer, "passkey answer: "+format, args...)
	}
	cred := dev.WebAuthn
	if cred == nil {
		return claims, nil, fmt.Errorf("pushauth: device %s: a webauthn device without its passkey", dev.ID)
	}
	rawID, err := b64d(a.CredentialID)
	if err != nil || len(rawID) == 0 {
		return claims, nil, bad("credential_id is not base64url")
	}
	if !bytes.Equal(rawID, cred.CredentialID) {
		return claims, nil, deviceErr(403, protocol.ErrInvalidAnswer, "passkey answer by a credential this device did not enroll")
	}
	cdj, err1 := b64d(a.ClientDataJSON)
	authData, err2 := b64d(a.AuthenticatorData)
	sig, err3 := b64d(a.Signature)
	uh, err4 := b64d(a.UserHandle)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || len(cdj) == 0 || len(authData) == 0 || len(sig) == 0 {
		return claims, nil, bad("client_data_json, authenticator_data and signature must be base64url")
	}
	car := wa.CredentialAssertionResponse{
		PublicKeyCredential: wa.PublicKeyCredential{Credential: wa.Credential{ID: a.CredentialID, Type: string(wa.PublicKeyCredentialType)}, RawID: rawID},
		AssertionResponse: wa.AuthenticatorAssertionResponse{
			AuthenticatorResponse: wa.AuthenticatorResponse{ClientDataJSON: cdj},
			AuthenticatorData:     authData, Signature: sig, UserHandle: uh,
		},
	}
	par, err := car.Parse()
	if err != nil {
		return claims, nil, bad("%s", waReason(err))
	}
	flags := par.Response.AuthenticatorData.Flags
	if !flags.UserVerified() {
		return claims, nil, deviceErr(403, protocol.ErrInvalidAnswer, "user verification required")
	}
	// The challenge is the hash of the answer: an assertion made for
	// another decision, number, challenge or time does not verify.
	challenge := b64.EncodeToString(protocol.AnswerWebAuthnChallenge(a.ID, a.Hash, a.Decision, a.Number, a.IssuedAt))
	if err := par.Verify(challenge, cred.RPID, "", e.cfg.origins(), nil, nil, wa.TopOriginExplicitVerificationMode,
		false, true, true, cred.PublicKey, wa.SignaturePolicy{}); err != nil {
		return claims, nil, bad("%s", waReason(err))
	}
	got := par.Response.AuthenticatorData.Counter
	commit := func(ctx context.Context) error {
		return e.moveSignCount(ctx, dev, got, flags.HasBackupState(), clientIP)
	}
	return claims, commit, nil
}

// errCounter is the refusal of an assertion whose counter did not grow.
func errCounter() *DeviceError {
	return deviceErr(403, protocol.ErrInvalidAnswer, "sign counter did not increase: possible cloned credential")
}

// moveSignCount applies the sign counter rule and stores the new count,
// both inside the device's update (one transaction, the row locked), so
// that the same assertion given to two nodes at once is taken once: a
// count that does not grow is refused, unless stored and received are both
// 0 (a passkey that does not count, as synced passkeys do).
func (e *Engine) moveSignCount(ctx context.Context, dev store.Device, got uint32, backedUp bool, clientIP string) error {
	// A passkey that does not count (synced passkeys report 0) changes
	// nothing: no write for it. dev was read by this request's proof
	// check; a counter another answer moved meanwhile would make this 0 a
	// clone, which only an authenticator that counted could show, and it
	// never goes back to 0.
	if w := dev.WebAuthn; got == 0 && w != nil && w.SignCount == 0 && w.BackedUp == backedUp {
		return nil
	}
	now := e.now()
	var stored uint32
	var clone bool
	_, err := e.st.UpdateDevice(ctx, dev.ID, func(d store.Device) (store.Device, error) {
		if d.Status != store.DeviceActive {
			return d, deviceErr(401, protocol.ErrDeviceRevoked, "answer from a revoked device")
		}
		if d.WebAuthn == nil {
			return d, fmt.Errorf("pushauth: device %s lost its passkey", d.ID)
		}
		stored = d.WebAuthn.SignCount
		if !(got == 0 && stored == 0) && got <= stored {
			clone = true
			return d, errCounter()
		}
		d.WebAuthn.SignCount, d.WebAuthn.BackedUp = got, backedUp
		d.LastSeenAt = now
		return d, nil
	})
	if clone {
		e.m.clones.Inc()
		e.auditLog(ctx, store.AuditEvent{
			Actor: "device:" + dev.ID, Action: "device.clone_suspected", Subject: dev.User, Channel: "device", ClientIP: clientIP,
			Result: store.ResultDenied, Reason: "sign counter did not increase: possible cloned credential",
			Details: map[string]string{"device": dev.ID, "stored_count": strconv.FormatUint(uint64(stored), 10), "received_count": strconv.FormatUint(uint64(got), 10)},
		})
	}
	var de *DeviceError
	if err != nil && !errors.As(err, &de) {
		return fmt.Errorf("pushauth: storing the sign counter: %w", err)
	}
	return err
}

// waReason is a go-webauthn error as one line for the device and the
// audit log: what failed and the library's detail (no secrets in either).
func waReason(err error) string {
	var we *wa.Error
	if errors.As(err, &we) {
		s := we.Details
		if we.DevInfo != "" {
			if s != "" {
				s += ": "
			}
			s += we.DevInfo
		}
		if s == "" {
			s = we.Type
		}
		return clip(s, 300)
	}
	return clip(err.Error(), 300)
}

var b64 = base64.RawURLEncoding

// b64d decodes base64url without padding; "" is no bytes.
func b64d(s string) ([]byte, error) { return b64.DecodeString(s) }

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
