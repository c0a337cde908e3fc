package pushauth_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bridge-idp/bridge/internal/webauthntest"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/pushauth/pushtest"
	"github.com/bridge-idp/bridge/store"
)

// TestPasskeyEnrollAndDecide: a web app device with a passkey enrolls (kind
// webauthn, hardware key, audited with its attestation) and its passkey
// answers decide challenges exactly as JWS answers do.
func TestPasskeyEnrollAndDecide(t *testing.T) {
	e := passkeyEnv(t)
	pk := e.newPasskey()
	pk.BackupEligible, pk.BackedUp = true, true
	d := e.mustEnrollWeb("alice", pk)

	dev, err := e.st.GetDevice(e.ctx, d.id)
	if err != nil {
		t.Fatal(err)
	}
	w := dev.WebAuthn
	if dev.Kind != store.DeviceKindWebAuthn || dev.Platform != protocol.PlatformWeb || w == nil || string(w.CredentialID) != string(pk.CredentialID) ||
		string(w.PublicKey) != string(pk.COSEKey()) || string(w.AAGUID) != string(pk.AAGUID) || w.AttestationFormat != "none" || w.AttestationVerified ||
		!w.BackupEligible || !w.BackedUp || w.RPID != "localhost" || !slices.Equal(w.Transports, []string{"internal", "hybrid"}) {
		t.Fatalf("stored device: %+v, passkey %+v", dev, w)
	}
	if string(dev.Posture) != `{"hardware_key":true}` {
		t.Fatalf("posture %s, want hardware_key true", dev.Posture)
	}
	evs, _ := e.st.ListAudit(e.ctx, 0, 1000)
	var enrolled bool
	for _, ev := range evs {
		if ev.Action == "device.enroll" && ev.Result == store.ResultSuccess && ev.Details["kind"] == "webauthn" &&
			ev.Details["attestation"] == "none" && ev.Details["attestation_verified"] == "false" {
			enrolled = true
		}
	}
	if !enrolled {
		t.Fatalf("no enrollment audit with kind and attestation: %+v", evs)
	}

	cases := []struct {
		decision, number string
		state            store.ChallengeState
		reason           string
	}{
		{protocol.Approve, "right", store.ChallengeApproved, "approved on device"},
		{protocol.Approve, "99x", store.ChallengeDenied, "wrong number"},
		{protocol.Deny, "", store.ChallengeDenied, "denied on device"},
		{protocol.Fraud, "", store.ChallengeFraud, "reported as fraud"},
	}
	for _, c := range cases {
		e.clock.Add(time.Second)
		h := e.start(login("alice"))
		if c.number == "right" {
			c.number = h.Number
		}
		status, state, pe := d.answer(h.ID, c.decision, c.number)
		want(t, c.decision+" "+c.reason, status, state, pe, http.StatusOK, string(c.state), "")
		o := e.wait(h.ID)
		if o.State != c.state || !strings.Contains(o.Reason, c.reason) || o.DeviceID != d.id || !o.Passkey || !o.HardwareKey {
			t.Fatalf("%s: outcome %+v", c.decision, o)
		}
		if err := e.eng.Unlock(e.ctx, "alice"); err != nil { // the next case starts without back-off
			t.Fatal(err)
		}
	}
}

// TestPasskeyUserVerification: without the UV flag neither the
// registration nor an answer is taken.
func TestPasskeyUserVerification(t *testing.T) {
	e := passkeyEnv(t)
	pk := e.newPasskey()
	pk.UV = false
	_, status, pe := e.enrollWeb("alice", pk, nil)
	if status != 400 || pe.Code != protocol.ErrInvalidRequest || pe.Description != "user verification required" {
		t.Fatalf("registration without UV: %d %+v", status, pe)
	}
	if !e.audited("device.enroll", store.ResultFailure, "user verification required") {
		t.Fatal("the refused registration is not audited with its reason")
	}
	pk.UV = true
	d := e.mustEnrollWeb("alice", pk)
	h := e.start(login("alice"))
	pk.UV = false
	status, state, pe := d.answer(h.ID, protocol.Approve, h.Number)
	want(t, "answer without UV", status, state, pe, 403, protocol.ErrInvalidAnswer, "user verification required")
	if !e.audited("push.answer", store.ResultFailure, "user verification required") {
		t.Fatal("the refused answer is not audited")
	}
	pk.UV = true
	status, state, pe = d.answer(h.ID, protocol.Approve, h.Number)
	want(t, "answer with UV", status, state, pe, 200, string(store.ChallengeApproved), "")
}

// TestPasskeyUserPresence: without the user-present flag (UV still set)
// neither a registration nor an answer is taken.
func TestPasskeyUserPresence(t *testing.T) {
	e := passkeyEnv(t)
	pk := e.newPasskey()
	pk.UP = false
	_, status, pe := e.enrollWeb("alice", pk, nil)
	if status != 400 || pe.Code != protocol.ErrInvalidRequest || !strings.Contains(pe.Description, "User presence required") {
		t.Fatalf("registration without UP: %d %+v", status, pe)
	}
	if devs, _ := e.st.ListDevices(e.ctx, "alice"); len(devs) != 0 {
		t.Fatalf("a registration without UP enrolled %+v", devs)
	}
	pk.UP = true
	d := e.mustEnrollWeb("alice", pk)
	h := e.start(login("alice"))
	pk.UP = false
	status, state, pe := d.answer(h.ID, protocol.Approve, h.Number)
	want(t, "answer without UP", status, state, pe, 400, protocol.ErrInvalidAnswer, "User presence required")
	if !e.audited("push.answer", store.ResultFailure, "User presence required") {
		t.Fatal("the refused answer is not audited")
	}
	pk.UP = true
	status, state, pe = d.answer(h.ID, protocol.Approve, h.Number)
	want(t, "answer with UP", status, state, pe, 200, string(store.ChallengeApproved), "")
}

// TestPasskeyCredentialOncePerUser: a credential id enrolls once per user:
// a second registration of the same passkey for the same user is refused
// (even once the first device is revoked), and the activation stays
// unused; another user's enrollment is not affected.
func TestPasskeyCredentialOncePerUser(t *testing.T) {
	e := passkeyEnv(t)
	pk := e.newPasskey()
	first := e.mustEnrollWeb("alice", pk)
	_, status, pe := e.enrollWeb("alice", pk, nil)
	if status != 400 || pe.Code != protocol.ErrInvalidRequest || pe.Description != "this passkey is already enrolled for this user" {
		t.Fatalf("second enrollment of the same credential: %d %+v", status, pe)
	}
	if _, err := e.st.UpdateDevice(e.ctx, first.id, func(d store.Device) (store.Device, error) {
		d.Status, d.RevokedAt = store.DeviceRevoked, e.clock.Now()
		return d, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, status, _ := e.enrollWeb("alice", pk, nil); status != 400 {
		t.Fatalf("the credential of a revoked device enrolled again: %d", status)
	}
	if devs, _ := e.st.ListDevices(e.ctx, "alice"); len(devs) != 1 {
		t.Fatalf("alice has %d devices, want the first only", len(devs))
	}
	acts, err := e.st.ListActivations(e.ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	unused := 0
	for _, a := range acts {
		if a.UsedAt.IsZero() {
			unused++
		}
	}
	if unused != 2 {
		t.Errorf("%d unused activations after two refusals, want 2", unused)
	}
	// A new passkey of alice's, and the same one for bob, enroll.
	e.mustEnrollWeb("alice", e.newPasskey())
	e.mustEnrollWeb("bob", pk)
}

// TestPasskeySignCounter: a counting passkey's counter must grow; one that
// stands still or goes back is refused and audited as a possible clone; a
// passkey that never counts (0 and 0) is fine.
func TestPasskeySignCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := passkeyEnv(t, func(_ *pushauth.Config, d *pushauth.Deps) { d.Metrics = reg })
	pk := e.newPasskey()
	pk.Counting = true // registration reports 1
	d := e.mustEnrollWeb("alice", pk)

	next := func() pushauth.Handle {
		t.Helper()
		e.clock.Add(time.Second)
		return e.start(login("alice"))
	}
	h := next()
	pk.Counter = 4 // reports 5
	status, state, pe := d.answer(h.ID, protocol.Approve, h.Number)
	want(t, "counter grew", status, state, pe, 200, string(store.ChallengeApproved), "")
	if dev, _ := e.st.GetDevice(e.ctx, d.id); dev.WebAuthn.SignCount != 5 {
		t.Fatalf("stored counter %d, want 5", dev.WebAuthn.SignCount)
	}
	for _, c := range []struct {
		name    string
		counter uint32
	}{{"stood still", 5}, {"went back", 2}, {"went to 0", 0}} {
		h = next()
		pk.Counting, pk.Counter = false, c.counter
		status, state, pe = d.answer(h.ID, protocol.Approve, h.Number)
		want(t, c.name, status, state, pe, 403, protocol.ErrInvalidAnswer, "sign counter did not increase: possible cloned credential")
		if got, _ := e.state.GetChallenge(e.ctx, h.ID); got.State != store.ChallengePending {
			t.Fatalf("%s: the refused answer closed the challenge: %s", c.name, got.State)
		}
		if dev, _ := e.st.GetDevice(e.ctx, d.id); dev.WebAuthn.SignCount != 5 {
			t.Fatalf("%s: stored counter moved to %d", c.name, dev.WebAuthn.SignCount)
		}
	}
	if !e.audited("device.clone_suspected", store.ResultDenied, "possible cloned credential") {
		t.Fatal("no device.clone_suspected audit event")
	}
	if n := counterValue(t, reg, "bridge_push_clone_suspected_total"); n != 3 {
		t.Fatalf("clone metric = %v, want 3", n)
	}

	// A passkey that does not count: 0 after 0, every time.
	zero := e.newPasskey()
	z := e.mustEnrollWeb("bob", zero)
	for i := range 2 {
		e.clock.Add(time.Second)
		h := e.start(login("bob"))
		status, state, pe := z.answer(h.ID, protocol.Approve, h.Number)
		want(t, "counter 0 and 0", status, state, pe, 200, string(store.ChallengeApproved), "")
		_ = i
	}
}

// counterValue reads a counter from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// nextPush waits for the next FCM message.
func (e *env) nextPush(t *testing.T) pushtest.FCMMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	m, err := e.fcm.Next(ctx)
	if err != nil {
		t.Fatalf("no push: %v", err)
	}
	return m
}

// TestPasskeyAnswerBindsDecision: the assertion's challenge is the hash of
// the answer; a body whose decision, number, time, challenge hash or
// credential differs from what was signed is refused, and the challenge
// stays open for the real answer.
func TestPasskeyAnswerBindsDecision(t *testing.T) {
	e := passkeyEnv(t)
	pk := e.newPasskey()
	d := e.mustEnrollWeb("alice", pk)
	other := e.newPasskey()
	h := e.start(login("alice"))
	cases := []struct {
		name   string
		edit   func(a *protocol.WebAuthnAnswer)
		status int
		reason string
	}{
		{"decision", func(a *protocol.WebAuthnAnswer) { a.Decision = protocol.Approve }, 400, "challenge"},
		{"number", func(a *protocol.WebAuthnAnswer) { a.Number = "00" }, 400, "challenge"},
		{"iat", func(a *protocol.WebAuthnAnswer) { a.IssuedAt++ }, 400, "challenge"},
		{"other credential", func(a *protocol.WebAuthnAnswer) {
			b := other.Answer(a.ID, a.Hash, a.Decision, a.Number, a.IssuedAt)
			*a = *b
		}, 403, "credential this device did not enroll"},
		{"other key, same credential id", func(a *protocol.WebAuthnAnswer) {
			other.CredentialID = pk.CredentialID
			*a = *other.Answer(a.ID, a.Hash, a.Decision, a.Number, a.IssuedAt)
		}, 400, "signature"},
	}
	for _, c := range cases {
		// Signed as a deny (or as made by edit); sent as the edit says.
		a := d.passkeyAnswer(h.ID, protocol.Deny, "", c.edit)
		status, state, pe := d.post(h.ID, protocol.AnswerRequest{WebAuthn: a})
		want(t, c.name, status, state, pe, c.status, protocol.ErrInvalidAnswer, c.reason)
	}
	// An assertion for the right answer, but made on another origin.
	pk.Origin = "http://evil.localhost:1"
	status, state, pe := d.answer(h.ID, protocol.Approve, h.Number)
	want(t, "other origin", status, state, pe, 400, protocol.ErrInvalidAnswer, "origin")
	pk.Origin = e.base
	pk.Type = "webauthn.create"
	status, state, pe = d.answer(h.ID, protocol.Approve, h.Number)
	want(t, "registration-type client data", status, state, pe, 400, protocol.ErrInvalidAnswer, "ceremony type")
	pk.Type = ""
	status, state, pe = d.answer(h.ID, protocol.Approve, h.Number)
	want(t, "the real answer", status, state, pe, 200, string(store.ChallengeApproved), "")
}

// TestPasskeyRegistrationRefusals: a registration for another activation,
// request key, origin or RP ID is refused, as is one on a bridge without
// passkeys or from a native platform.
func TestPasskeyRegistrationRefusals(t *testing.T) {
	e := passkeyEnv(t)
	cases := []struct {
		name   string
		pk     func(*webauthntest.Authenticator)
		edit   func(*protocol.EnrollClaims, *webauthntest.Authenticator)
		code   string
		reason string
	}{
		{"other origin", func(a *webauthntest.Authenticator) { a.Origin = "https://bridge.example" }, nil, protocol.ErrInvalidRequest, "origin"},
		{"other RP ID", func(a *webauthntest.Authenticator) { a.RPID = "example.org" }, nil, protocol.ErrInvalidRequest, "RP Hash mismatch"},
		{"challenge of another activation", nil, func(c *protocol.EnrollClaims, a *webauthntest.Authenticator) {
			c.WebAuthn, _ = a.Register(protocol.EnrollWebAuthnChallenge("other.code", "tp"))
		}, protocol.ErrInvalidRequest, "challenge"},
		{"native platform", nil, func(c *protocol.EnrollClaims, _ *webauthntest.Authenticator) { c.Platform = protocol.PlatformAndroid }, protocol.ErrInvalidRequest, "only from platform"},
		{"id is not the attested credential", nil, func(c *protocol.EnrollClaims, _ *webauthntest.Authenticator) {
			c.WebAuthn.ID = "AAAA"
		}, protocol.ErrInvalidRequest, "credential id"},
		{"bad base64", nil, func(c *protocol.EnrollClaims, _ *webauthntest.Authenticator) { c.WebAuthn.AttestationObject = "***" }, protocol.ErrInvalidRequest, "base64url"},
		{"too many transports", nil, func(c *protocol.EnrollClaims, _ *webauthntest.Authenticator) {
			c.WebAuthn.Transports = strings.Split("a,b,c,d,e,f,g,h,i", ",")
		}, protocol.ErrInvalidRequest, "transports"},
	}
	for _, c := range cases {
		pk := e.newPasskey()
		if c.pk != nil {
			c.pk(pk)
		}
		var edit func(*protocol.EnrollClaims)
		if c.edit != nil {
			edit = func(ec *protocol.EnrollClaims) { c.edit(ec, pk) }
		}
		d, status, pe := e.enrollWeb("alice", pk, edit)
		if d != nil || status != 400 || pe.Code != c.code || !strings.Contains(pe.Description, c.reason) {
			t.Errorf("%s: got %d %s %q, want 400 %s %q", c.name, status, pe.Code, pe.Description, c.code, c.reason)
		}
	}
	if devs, _ := e.st.ListDevices(e.ctx, "alice"); len(devs) != 0 {
		t.Fatalf("refused registrations left devices: %+v", devs)
	}

	off := newEnv(t) // base URL on an IP address: no RP ID
	_, status, pe := off.enrollWeb("alice", off.newPasskey(), nil)
	if status != 400 || pe.Code != protocol.ErrInvalidRequest || pe.Description != "passkeys are off on this bridge (its base URL is an IP address)" {
		t.Fatalf("passkeys off: %d %+v", status, pe)
	}
	// The same bridge takes the web app's software keys.
	sw := off.mustEnrollWeb("alice", nil)
	if dev, _ := off.st.GetDevice(off.ctx, sw.id); dev.Kind != store.DeviceKindJWS || string(dev.Posture) != `{"hardware_key":false}` {
		t.Fatalf("software-key web device: kind %q posture %s", dev.Kind, dev.Posture)
	}
}

// TestPasskeyAnswerFormats: each kind of device answers in its own format
// only.
func TestPasskeyAnswerFormats(t *testing.T) {
	e := passkeyEnv(t)
	d := e.mustEnrollWeb("alice", e.newPasskey())
	sw := e.mustEnrollWeb("alice", nil) // JWS answers, request key
	h := e.start(login("alice"))
	status, state, pe := d.jwsAnswer(h.ID, protocol.Approve, h.Number)
	want(t, "JWS answer from a passkey device", status, state, pe, 400, protocol.ErrInvalidAnswer, "this device answers with its passkey")
	pk := webauthnFor(t, e)
	sw.passkey = pk
	status, state, pe = sw.answer(h.ID, protocol.Approve, h.Number)
	want(t, "passkey answer from a JWS device", status, state, pe, 400, protocol.ErrInvalidAnswer, "this device has no passkey")
	both := d.passkeyAnswer(h.ID, protocol.Approve, h.Number, nil)
	status, state, pe = d.post(h.ID, protocol.AnswerRequest{Answer: "x.y.z", WebAuthn: both})
	want(t, "both", status, state, pe, 400, protocol.ErrInvalidAnswer, "not both")
	status, state, pe = sw.jwsAnswer(h.ID, protocol.Approve, h.Number)
	want(t, "software-key web device's JWS", status, state, pe, 200, string(store.ChallengeApproved), "")
	if o := e.wait(h.ID); o.Passkey || o.HardwareKey {
		t.Fatalf("a software key's approval: %+v", o)
	}
}

// claimsOf is the payload of a compact JWS.
func claimsOf(t *testing.T, signed string) string {
	t.Helper()
	parts := strings.Split(signed, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", signed)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func webauthnFor(t *testing.T, e *env) *webauthntest.Authenticator {
	t.Helper()
	return e.newPasskey()
}

// TestDeviceKeysPolicy: hardware refuses software keys (the web app
// without a passkey, a native key not reported in hardware) and accepts
// passkeys and hardware native keys; attested accepts only passkeys whose
// attestation verified, is not self attestation and chains to a configured
// root. Refused devices are not woken, not listed, 404 on GET and 403 on
// answer; with none left Start says so.
func TestDeviceKeysPolicy(t *testing.T) {
	root, err := webauthntest.NewCA("operator's attestation root")
	if err != nil {
		t.Fatal(err)
	}
	e := passkeyEnv(t, func(c *pushauth.Config, _ *pushauth.Deps) { c.AttestationRoots = []*x509.Certificate{root.Cert} })
	sw := e.mustEnrollWeb("alice", nil)
	nativeToken := randomToken()
	native := e.enroll("alice", authenticator.EnrollOptions{PushProvider: protocol.ProviderFCM, PushToken: nativeToken})
	hardware := func(p string) pushauth.Request { r := login("alice"); r.DeviceKeys = p; return r }

	_, err = e.eng.Start(e.ctx, hardware(pushauth.KeysHardware))
	if !errors.Is(err, pushauth.ErrNoQualifyingDevice) || !errors.Is(err, pushauth.ErrNoDevice) {
		t.Fatalf("only software keys under hardware: %v", err)
	}
	if !e.audited("push.start", store.ResultDenied, "device-key policy") {
		t.Fatal("the refusal is not audited")
	}
	if _, err := e.eng.Start(e.ctx, hardware("tpm")); err == nil {
		t.Fatal("an unknown policy started")
	}

	pk := e.newPasskey()
	d := e.mustEnrollWeb("alice", pk)
	hwToken := randomToken()
	hwNative := e.enroll("alice", authenticator.EnrollOptions{Posture: map[string]bool{"hardware_key": true}, PushProvider: protocol.ProviderFCM, PushToken: hwToken})
	e.clock.Add(time.Second)
	h := e.start(hardware(pushauth.KeysHardware))
	signed, status := d.challenge(h.ID)
	if status != 200 || !strings.Contains(claimsOf(t, signed), `"keys":"hardware"`) {
		t.Fatalf("the passkey device's view: %d %s", status, claimsOf(t, signed))
	}
	if m := e.nextPush(t); m.Token != hwToken || m.Data["t"] != "challenge" {
		t.Fatalf("first push: %+v, want the hardware native device's challenge", m)
	}
	if ids := sw.pending(); len(ids) != 0 {
		t.Fatalf("a software-key device lists %v", ids)
	}
	if _, status := sw.challenge(h.ID); status != 404 {
		t.Fatalf("a software-key device GETs the challenge: %d", status)
	}
	if _, err := native.Fetch(e.ctx, h.ID); err == nil {
		t.Fatal("a software-key native device fetched the challenge")
	}
	if cs, err := hwNative.Pending(e.ctx, 0); err != nil || len(cs) != 1 {
		t.Fatalf("a hardware native device's list: %v %v", cs, err)
	}
	// Answers from refused devices: 403, audited, the challenge still open.
	status2, state, pe := sw.jwsAnswerTo(h.ID, signed, protocol.Approve, h.Number)
	want(t, "software web key", status2, state, pe, 403, protocol.ErrInvalidAnswer, "accepts only hardware device keys")
	if !e.audited("push.answer", store.ResultFailure, "accepts only hardware device keys; this device has a software key") {
		t.Fatal("the refused answer is not audited")
	}
	status2, state, pe = d.answer(h.ID, protocol.Approve, h.Number)
	want(t, "passkey under hardware", status2, state, pe, 200, string(store.ChallengeApproved), "")
	// The dismiss goes to the hardware native device, which was asked; by
	// then a push to the software-key one would have arrived too.
	if m := e.nextPush(t); m.Token != hwToken {
		t.Fatalf("second push: %+v, want the dismiss to the hardware native device", m)
	}
	for _, m := range e.fcm.Messages() {
		if m.Token == nativeToken {
			t.Fatalf("the software-key native device was woken: %+v", m)
		}
	}

	// attested: a passkey with attestation none or self attestation does
	// not qualify, nor basic attestation under a CA that is not one of the
	// configured roots (anyone can make a CA); basic attestation under the
	// configured root does.
	e.clock.Add(time.Second)
	if _, err := e.eng.Start(e.ctx, hardware(pushauth.KeysAttested)); !errors.Is(err, pushauth.ErrNoQualifyingDevice) {
		t.Fatalf("attested with a none passkey: %v", err)
	}
	self := e.newPasskey()
	self.Attestation = webauthntest.AttestPackedSelf
	e.mustEnrollWeb("alice", self)
	if _, err := e.eng.Start(e.ctx, hardware(pushauth.KeysAttested)); !errors.Is(err, pushauth.ErrNoQualifyingDevice) {
		t.Fatalf("attested with a self-attested passkey: %v", err)
	}
	otherCA, err := webauthntest.NewCA("someone's own CA")
	if err != nil {
		t.Fatal(err)
	}
	for name, ca := range map[string]*webauthntest.CA{"a throwaway CA": nil, "a CA that is not a configured root": otherCA} {
		untrusted := e.newPasskey()
		untrusted.Attestation, untrusted.CA = webauthntest.AttestPacked, ca
		u := e.mustEnrollWeb("alice", untrusted)
		dev, _ := e.st.GetDevice(e.ctx, u.id)
		if w := dev.WebAuthn; !w.AttestationVerified || w.AttestationTrusted || w.AttestationType != "basic_full" {
			t.Fatalf("basic attestation under %s stored as %+v", name, w)
		}
		if pushauth.Qualifies(dev, pushauth.KeysAttested) {
			t.Fatalf("basic attestation under %s qualifies as attested", name)
		}
		if _, err := e.eng.Start(e.ctx, hardware(pushauth.KeysAttested)); !errors.Is(err, pushauth.ErrNoQualifyingDevice) {
			t.Fatalf("attested with basic attestation under %s: %v", name, err)
		}
	}
	basic := e.newPasskey()
	basic.Attestation, basic.CA = webauthntest.AttestPacked, root
	b := e.mustEnrollWeb("alice", basic)
	if dev, _ := e.st.GetDevice(e.ctx, b.id); !dev.WebAuthn.AttestationVerified || !dev.WebAuthn.AttestationTrusted || dev.WebAuthn.AttestationType != "basic_full" || dev.WebAuthn.AttestationFormat != "packed" {
		t.Fatalf("basic attestation stored as %+v", dev.WebAuthn)
	}
	e.clock.Add(time.Second)
	h = e.start(hardware(pushauth.KeysAttested))
	if _, status := d.challenge(h.ID); status != 404 {
		t.Fatalf("a none passkey GETs an attested challenge: %d", status)
	}
	signedB, _ := b.challenge(h.ID)
	status2, state, pe = d.post(h.ID, protocol.AnswerRequest{WebAuthn: pk.Answer(h.ID, protocol.ChallengeHash(signedB), protocol.Approve, h.Number, e.clock.Now().Unix())})
	want(t, "none passkey under attested", status2, state, pe, 403, protocol.ErrInvalidAnswer, "accepts only attested device keys")
	status2, state, pe = b.answer(h.ID, protocol.Approve, h.Number)
	want(t, "attested passkey", status2, state, pe, 200, string(store.ChallengeApproved), "")
}

// TestAttestationTrustedRoots: an attestation chain is trusted through
// intermediates it carries up to a configured root, not through another
// root's intermediates, and is checked at the engine's time (at
// enrollment).
func TestAttestationTrustedRoots(t *testing.T) {
	root, err := webauthntest.NewCA("operator's attestation root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.Intermediate("vendor's issuing CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := webauthntest.NewCA("another root")
	if err != nil {
		t.Fatal(err)
	}
	otherInter, err := other.Intermediate("another issuing CA")
	if err != nil {
		t.Fatal(err)
	}
	e := passkeyEnv(t, func(c *pushauth.Config, _ *pushauth.Deps) { c.AttestationRoots = []*x509.Certificate{root.Cert} })
	trusted := func(ca *webauthntest.CA) bool {
		t.Helper()
		a := e.newPasskey()
		a.Attestation, a.CA = webauthntest.AttestPacked, ca
		d := e.mustEnrollWeb("alice", a)
		dev, err := e.st.GetDevice(e.ctx, d.id)
		if err != nil || !dev.WebAuthn.AttestationVerified {
			t.Fatalf("the statement under %s did not verify: %+v %v", ca.Cert.Subject.CommonName, dev.WebAuthn, err)
		}
		if dev.WebAuthn.AttestationTrusted != pushauth.Qualifies(dev, pushauth.KeysAttested) {
			t.Fatalf("trusted %v but qualifies %v", dev.WebAuthn.AttestationTrusted, !dev.WebAuthn.AttestationTrusted)
		}
		return dev.WebAuthn.AttestationTrusted
	}
	if !trusted(root) || !trusted(inter) {
		t.Fatal("a chain to the configured root is not trusted")
	}
	if trusted(otherInter) || trusted(other) {
		t.Fatal("a chain to another root is trusted")
	}
	// Two days on by the engine's clock the chain has expired (the root is
	// valid for a day, the attestation certificate an hour), though the
	// statement itself still verifies: trust is judged at enrollment time
	// by the engine's clock.
	e.clock.Add(48 * time.Hour)
	if trusted(root) {
		t.Fatal("a chain to an expired root is trusted")
	}
}
