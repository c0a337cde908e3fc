package pushauth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/internal/webauthntest"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

var b64 = base64.RawURLEncoding

// fuzzPasskey is the fixture's passkey: a fixed key and credential id.
func fuzzPasskey(tb testing.TB) *webauthntest.Authenticator {
	tb.Helper()
	a, err := webauthntest.New(fuzzRPID, fuzzBase)
	if err != nil {
		tb.Fatal(err)
	}
	a.Key = fuzzKey(tb, protocol.AlgES256, "passkey").(*ecdsa.PrivateKey)
	a.CredentialID = fuzzSeed("credential id")
	a.AAGUID = fuzzSeed("aaguid")[:16]
	return a
}

// FuzzPasskeyEnroll feeds arbitrary passkey registrations (the webauthn
// claim of an enrollment) to Engine.Enroll, in an enrollment otherwise
// valid and signed by a fixed request key, with an activation code the
// store does not know. It must never panic or fail with an internal
// error, and create no device; a registration that gets past the passkey
// checks (refused only for the unknown code) must be one an independent
// check accepts: client data of webauthn.create with the derived
// challenge and the bridge's origin, the RP ID hash, UP and UV set.
func FuzzPasskeyEnroll(f *testing.F) {
	fx := newFuzzFixture(f)
	const act = "fuzzActivation0001.fuzzSecret000000000000000001"
	key := fuzzKey(f, protocol.AlgES256, "web request key").(*ecdsa.PrivateKey)
	tp, err := protocol.Thumbprint(jose.JSONWebKey{Key: &key.PublicKey})
	if err != nil {
		f.Fatal(err)
	}
	challenge := protocol.EnrollWebAuthnChallenge(act, tp)
	add := func(r *protocol.WebAuthnRegistration) {
		f.Add(r.ID, r.ClientDataJSON, r.AttestationObject, strings.Join(r.Transports, ","))
	}
	for _, mod := range []func(*webauthntest.Authenticator){
		func(*webauthntest.Authenticator) {},
		func(a *webauthntest.Authenticator) { a.Attestation = webauthntest.AttestPackedSelf },
		func(a *webauthntest.Authenticator) { a.Attestation = webauthntest.AttestPacked },
		func(a *webauthntest.Authenticator) { a.UV = false },
		func(a *webauthntest.Authenticator) { a.Origin = "https://evil.example" },
		func(a *webauthntest.Authenticator) { a.RPID = "example.com" },
		func(a *webauthntest.Authenticator) { a.Type = "webauthn.get" },
	} {
		a := fuzzPasskey(f)
		mod(a)
		r, err := a.Register(challenge)
		if err != nil {
			f.Fatal(err)
		}
		add(r)
	}
	f.Add("", "", "", "")
	f.Add("AA", "e30", "oA", "internal")

	claims := func(id, cdj, ao, transports string) protocol.EnrollClaims {
		r := &protocol.WebAuthnRegistration{ID: id, ClientDataJSON: cdj, AttestationObject: ao}
		if transports != "" {
			r.Transports = strings.Split(transports, ",")
		}
		return protocol.EnrollClaims{Activation: act, URL: fuzzBase + protocol.PathEnroll, IssuedAt: fuzzStart.Unix(), Platform: protocol.PlatformWeb, WebAuthn: r}
	}
	// The fixture works: the valid registration gets past the passkey.
	good, _ := fuzzPasskey(f).Register(challenge)
	gc := claims(good.ID, good.ClientDataJSON, good.AttestationObject, "")
	signed, err := protocol.Sign(protocol.AlgES256, key, protocol.TypEnroll, "", true, gc)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := fx.eng.Enroll(fx.ctx, signed, fuzzIP); err == nil || !strings.Contains(err.Error(), "unknown activation code") {
		f.Fatalf("the fixture's valid registration: %v", err)
	}

	f.Fuzz(func(t *testing.T, id, cdj, ao, transports string) {
		c := claims(id, cdj, ao, transports)
		signed, err := protocol.Sign(protocol.AlgES256, key, protocol.TypEnroll, "", true, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(signed) > protocol.MaxJWS {
			return // refused before parsing; FuzzEnroll covers it
		}
		_, err = fx.eng.Enroll(context.Background(), signed, fuzzIP)
		var de *pushauth.DeviceError
		if err == nil || !errors.As(err, &de) {
			t.Fatalf("want a refusal (unknown code at best), got %v", err)
		}
		if n := fx.deviceCount(t, "alice"); n != 4 { // the fixture's
			t.Fatalf("alice has %d devices after a refused enrollment", n)
		}
		if de.Reason != "unknown activation code" {
			return // refused by the passkey checks
		}
		if why := checkRegistration(c.WebAuthn, challenge); why != "" {
			t.Fatalf("passed the passkey checks but %s", why)
		}
	})
}

// checkRegistration is the fuzz oracle: what every accepted registration
// must be, checked without go-webauthn.
func checkRegistration(r *protocol.WebAuthnRegistration, challenge []byte) string {
	cdj, err := b64.DecodeString(r.ClientDataJSON)
	if err != nil {
		return "client data is not base64url"
	}
	var cd struct{ Type, Challenge, Origin string }
	if json.Unmarshal(cdj, &cd) != nil || cd.Type != "webauthn.create" || cd.Challenge != b64.EncodeToString(challenge) || cd.Origin != fuzzBase {
		return "the client data is not this enrollment's: " + string(cdj)
	}
	ao, err := b64.DecodeString(r.AttestationObject)
	rp := sha256.Sum256([]byte(fuzzRPID))
	// authData is inside the CBOR map; its start is the RP ID hash.
	i := bytes.Index(ao, rp[:])
	if err != nil || i < 0 || len(ao) < i+33 {
		return "the attestation object does not hold the RP ID hash"
	}
	if flags := ao[i+32]; flags&0x05 != 0x05 {
		return "UP or UV is not set"
	}
	return ""
}

// FuzzPasskeyAnswer feeds arbitrary passkey answers to the fixture
// challenge from a passkey device of its user. It must never panic or
// fail with an internal error; a refused answer leaves the challenge and
// the sign counter as they were; an accepted one must pass an independent
// check (the assertion by the enrolled key over authenticator data and the
// client data hash, client data of webauthn.get with the challenge derived
// from the answer's claims and the bridge's origin, RP ID hash, UP and UV)
// and close the challenge as its decision and number say.
func FuzzPasskeyAnswer(f *testing.F) {
	fx := newFuzzFixture(f)
	pk := fuzzPasskey(f)
	dev := store.Device{
		ID: "fuzzDevAlicePasskey0001", User: "alice", Name: "web app", Platform: protocol.PlatformWeb, KeyAlg: protocol.AlgES256,
		PublicJWK: fx.devs["alice-es"].rec.PublicJWK, Posture: []byte(`{"hardware_key":true}`), Status: store.DeviceActive,
		CreatedAt: fx.devs["alice-es"].rec.CreatedAt, Kind: store.DeviceKindWebAuthn,
		WebAuthn: &store.WebAuthnCredential{CredentialID: pk.CredentialID, PublicKey: pk.COSEKey(), AttestationFormat: "none", RPID: fuzzRPID},
	}
	if err := fx.st.CreateDevice(fx.ctx, dev); err != nil {
		f.Fatal(err)
	}
	chash := protocol.ChallengeHash(fx.chal.Signed)
	iat := fuzzStart.Unix()
	add := func(a *protocol.WebAuthnAnswer) {
		f.Add(a.ID, a.Hash, a.Decision, a.Number, a.IssuedAt, a.CredentialID, a.ClientDataJSON, a.AuthenticatorData, a.Signature, a.UserHandle)
	}
	add(pk.Answer(fx.chal.ID, chash, protocol.Approve, fuzzNumber, iat))
	add(pk.Answer(fx.chal.ID, chash, protocol.Approve, "41", iat))
	add(pk.Answer(fx.chal.ID, chash, protocol.Deny, "", iat))
	add(pk.Answer(fx.chal.ID, chash, protocol.Fraud, "", iat))
	tampered := pk.Answer(fx.chal.ID, chash, protocol.Deny, "", iat)
	tampered.Decision = protocol.Approve
	add(tampered)
	pk.UV = false
	add(pk.Answer(fx.chal.ID, chash, protocol.Approve, fuzzNumber, iat))
	pk.UV, pk.Counter = true, 3
	add(pk.Answer(fx.chal.ID, chash, protocol.Approve, fuzzNumber, iat))
	pk.Counter, pk.Origin = 0, "https://evil.example"
	add(pk.Answer(fx.chal.ID, chash, protocol.Approve, fuzzNumber, iat))
	pk.Origin = fuzzBase
	f.Add("", "", "", "", int64(0), "", "", "", "", "")

	resetCounter := func(t testing.TB) {
		if _, err := fx.st.UpdateDevice(context.Background(), dev.ID, func(d store.Device) (store.Device, error) {
			d.WebAuthn.SignCount = 0
			return d, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fx.eng.AnswerWith(fx.ctx, dev, fx.chal.ID, protocol.AnswerRequest{WebAuthn: pk.Answer(fx.chal.ID, chash, protocol.Approve, fuzzNumber, iat)}, fuzzIP); err != nil {
		f.Fatalf("the fixture refuses a valid passkey answer: %v", err)
	}

	f.Fuzz(func(t *testing.T, cid, hash, decision, number string, iat int64, credID, cdj, authData, sig, userHandle string) {
		ctx := context.Background()
		if err := fx.reset(); err != nil {
			t.Fatal(err)
		}
		resetCounter(t)
		a := &protocol.WebAuthnAnswer{ID: cid, Hash: hash, Decision: decision, Number: number, IssuedAt: iat,
			CredentialID: credID, ClientDataJSON: cdj, AuthenticatorData: authData, Signature: sig, UserHandle: userHandle}
		cur, _ := fx.st.GetDevice(ctx, dev.ID)
		_, err := fx.eng.AnswerWith(ctx, cur, fx.chal.ID, protocol.AnswerRequest{WebAuthn: a}, fuzzIP)
		c := fx.challengeState(t)
		after, _ := fx.st.GetDevice(ctx, dev.ID)
		if err != nil {
			var de *pushauth.DeviceError
			if !errors.As(err, &de) {
				t.Fatalf("internal error for a passkey answer: %v", err)
			}
			if c.State != store.ChallengePending || after.WebAuthn.SignCount != 0 {
				t.Fatalf("a refused answer (%v) changed the challenge to %s or the counter to %d", err, c.State, after.WebAuthn.SignCount)
			}
			return
		}
		if why := checkAssertion(pk, a, fx.chal.ID, chash); why != "" {
			t.Fatalf("accepted a passkey answer that %s", why)
		}
		want := store.ChallengeApproved
		switch {
		case decision == protocol.Deny, decision == protocol.Approve && number != fuzzNumber:
			want = store.ChallengeDenied
		case decision == protocol.Fraud:
			want = store.ChallengeFraud
		}
		if c.State != want || c.DeviceID != dev.ID {
			t.Fatalf("the answer closed the challenge as %s by %q, want %s", c.State, c.DeviceID, want)
		}
	})
}

// checkAssertion is the fuzz oracle for an accepted passkey answer.
func checkAssertion(pk *webauthntest.Authenticator, a *protocol.WebAuthnAnswer, cid, chash string) string {
	credID, _ := b64.DecodeString(a.CredentialID)
	cdj, err1 := b64.DecodeString(a.ClientDataJSON)
	ad, err2 := b64.DecodeString(a.AuthenticatorData)
	sig, err3 := b64.DecodeString(a.Signature)
	if err1 != nil || err2 != nil || err3 != nil || !bytes.Equal(credID, pk.CredentialID) {
		return "is not base64url or names another credential"
	}
	if a.ID != cid || a.Hash != chash {
		return "names another challenge"
	}
	var cd struct{ Type, Challenge, Origin string }
	want := b64.EncodeToString(protocol.AnswerWebAuthnChallenge(a.ID, a.Hash, a.Decision, a.Number, a.IssuedAt))
	if json.Unmarshal(cdj, &cd) != nil || cd.Type != "webauthn.get" || cd.Challenge != want || cd.Origin != fuzzBase {
		return "has client data of another ceremony: " + string(cdj)
	}
	rp := sha256.Sum256([]byte(fuzzRPID))
	if len(ad) < 37 || !bytes.Equal(ad[:32], rp[:]) || ad[32]&0x05 != 0x05 {
		return "has authenticator data of another RP or without UP and UV"
	}
	cdh := sha256.Sum256(cdj)
	h := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	if !ecdsa.VerifyASN1(&pk.Key.PublicKey, h[:], sig) {
		return "is not signed by the enrolled key"
	}
	return ""
}
