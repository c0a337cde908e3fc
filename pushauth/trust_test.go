package pushauth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// Each test here breaks one rule of the trust model and checks that the
// bridge refuses it, audits it, and leaves the challenge answerable by the
// rightful device.

// stillPending answers the challenge properly after a refused attempt, to
// show the refusal did not close it.
func (e *env) stillPending(dev *authenticator.Device, h pushauth.Handle) {
	e.t.Helper()
	if _, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Approve, h.Number); err != nil {
		e.t.Fatalf("the rightful answer after a refused one: %v", err)
	}
	if o := e.wait(h.ID); !o.Approved() {
		e.t.Fatalf("outcome %+v", o)
	}
}

func answerClaims(c authenticator.Challenge, decision, number string, now time.Time) protocol.AnswerClaims {
	return protocol.AnswerClaims{ID: c.ID, Hash: protocol.ChallengeHash(c.Signed), Decision: decision, Number: number, IssuedAt: now.Unix()}
}

func TestForgedDeviceSignature(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(dev, h.ID)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged, err := protocol.Sign("ES256", other, protocol.TypAnswer, dev.ID(), false, answerClaims(c, protocol.Approve, h.Number, e.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = dev.PostAnswer(e.ctx, h.ID, forged)
	serverErr(t, err, 400, protocol.ErrInvalidAnswer)
	if !e.audited("push.answer", store.ResultFailure, "signature") {
		t.Fatal("forged answer not audited")
	}
	e.stillPending(dev, h)
}

// TestDEREncodedSignature: ES256 answers must carry the JWS R||S form; the
// DER form phone keystores return is refused.
func TestDEREncodedSignature(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(dev, h.ID)
	good, err := dev.SignedAnswer(c, protocol.Approve, h.Number)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if len(raw) != 64 {
		t.Fatalf("ES256 signature of %d bytes, want 64 (R||S)", len(raw))
	}
	der := derSignature(raw)
	bad := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(der)
	_, err = dev.PostAnswer(e.ctx, h.ID, bad)
	serverErr(t, err, 400, protocol.ErrInvalidAnswer)
	e.stillPending(dev, h)
}

// derSignature re-encodes an R||S signature as ASN.1 DER.
func derSignature(raw []byte) []byte {
	enc := func(b []byte) []byte {
		b = new(big.Int).SetBytes(b).Bytes()
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{2, byte(len(b))}, b...)
	}
	body := append(enc(raw[:32]), enc(raw[32:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func TestAnswerFromAnotherUsersDevice(t *testing.T) {
	e := newEnv(t)
	alice := e.enroll("alice", authenticator.EnrollOptions{})
	mallory := e.enroll("mallory", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(alice, h.ID)
	// Mallory cannot even read Alice's challenge...
	_, err := mallory.Fetch(e.ctx, h.ID)
	serverErr(t, err, 404, protocol.ErrNotFound)
	// ...nor answer it with her own key.
	_, err = mallory.Answer(e.ctx, c, protocol.Approve, h.Number)
	serverErr(t, err, 404, protocol.ErrNotFound)
	if !e.audited("push.answer", store.ResultFailure, "another user") {
		t.Fatal("answer from another user's device not audited")
	}
	e.stillPending(alice, h)
}

// TestAnswerSignedForAnotherDevice: an answer signed by one device of the
// user and sent by another (a stolen answer) is refused.
func TestAnswerSignedForAnotherDevice(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice", authenticator.EnrollOptions{})
	tablet := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(phone, h.ID)
	signed, err := phone.SignedAnswer(c, protocol.Approve, h.Number)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tablet.PostAnswer(e.ctx, h.ID, signed)
	serverErr(t, err, 403, protocol.ErrInvalidAnswer)
	e.stillPending(phone, h)
}

func TestDeviceEnrolledAfterChallenge(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(phone, h.ID)
	e.clock.Add(time.Second)
	late := e.enroll("alice", authenticator.EnrollOptions{})
	_, err := late.Answer(e.ctx, c, protocol.Approve, h.Number)
	serverErr(t, err, 403, protocol.ErrInvalidAnswer)
	if cs, err := late.Pending(e.ctx, 0); err != nil || len(cs) != 0 {
		t.Fatalf("a device enrolled later sees the earlier challenge: %v, %v", cs, err)
	}
	e.stillPending(phone, h)
}

func TestReplayedAnswer(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(dev, h.ID)
	signed, err := dev.SignedAnswer(c, protocol.Approve, h.Number)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.PostAnswer(e.ctx, h.ID, signed); err != nil {
		t.Fatal(err)
	}
	e.wait(h.ID)
	// The same answer again: a second answer to a closed challenge.
	_, err = dev.PostAnswer(e.ctx, h.ID, signed)
	serverErr(t, err, 409, protocol.ErrAlreadyAnswered)
	// The old answer presented for a new challenge.
	e.clock.Add(time.Second)
	h2 := e.start(login("alice"))
	_, err = dev.PostAnswer(e.ctx, h2.ID, signed)
	serverErr(t, err, 400, protocol.ErrInvalidAnswer)
	if !e.audited("push.answer", store.ResultFailure, "names challenge") {
		t.Fatal("replayed answer not audited")
	}
	e.stillPending(dev, h2)
}

// TestAnswerToAnotherVersion: an answer whose hash names different
// challenge content (as if the device had been shown a forged challenge
// with the same id) is refused.
func TestAnswerToAnotherVersion(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(dev, h.ID)
	claims := answerClaims(c, protocol.Approve, h.Number, e.clock.Now())
	claims.Hash = protocol.ChallengeHash(c.Signed + "x")
	signed, err := dev.Sign(protocol.TypAnswer, claims)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dev.PostAnswer(e.ctx, h.ID, signed)
	serverErr(t, err, 400, protocol.ErrInvalidAnswer)
	e.stillPending(dev, h)
}

func TestExpiredChallenge(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(dev, h.ID)
	e.clock.Add(pushauth.DefaultChallengeTTL)
	_, err := dev.Answer(e.ctx, c, protocol.Approve, h.Number)
	var se *authenticator.ServerError
	if !errors.As(err, &se) || se.Status != 409 {
		t.Fatalf("answer after expiry: %v, want 409", err)
	}
	if o := e.wait(h.ID); o.State != store.ChallengeExpired {
		t.Fatalf("outcome %+v, want expired", o)
	}
}

func TestWrongNumber(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	wrong := "00"
	if h.Number == wrong {
		wrong = "01"
	}
	state, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Approve, wrong)
	if err != nil || state != "denied" {
		t.Fatalf("wrong number: %q, %v; want the challenge denied", state, err)
	}
	if o := e.wait(h.ID); o.Approved() || o.Reason != "wrong number typed on device" {
		t.Fatalf("outcome %+v", o)
	}
}

func TestRevokedDevice(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(dev, h.ID)
	if _, err := e.st.UpdateDevice(e.ctx, dev.ID(), func(d store.Device) (store.Device, error) {
		d.Status, d.RevokedAt = store.DeviceRevoked, e.clock.Now()
		return d, nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err := dev.Answer(e.ctx, c, protocol.Approve, h.Number)
	serverErr(t, err, 401, protocol.ErrDeviceRevoked)
	_, err = dev.Pending(e.ctx, 0)
	serverErr(t, err, 401, protocol.ErrDeviceRevoked)
	// With no active device left, the login cannot even start.
	e.clock.Add(time.Second)
	if _, err := e.eng.Start(e.ctx, login("alice")); !errors.Is(err, pushauth.ErrNoDevice) {
		t.Fatalf("start with only a revoked device: %v", err)
	}
}

func TestReusedActivation(t *testing.T) {
	e := newEnv(t)
	link := e.activation("alice")
	if _, err := authenticator.Enroll(e.ctx, link, authenticator.EnrollOptions{Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	_, err := authenticator.Enroll(e.ctx, link, authenticator.EnrollOptions{Now: e.clock.Now})
	serverErr(t, err, 400, protocol.ErrInvalidCode)
	if !e.audited("device.enroll", store.ResultFailure, "already used") {
		t.Fatal("reused activation not audited")
	}
	devs, _ := e.st.ListDevices(e.ctx, "alice")
	if len(devs) != 1 {
		t.Fatalf("%d devices, want 1", len(devs))
	}
}

func TestActivationRules(t *testing.T) {
	e := newEnv(t, func(c *pushauth.Config, _ *pushauth.Deps) { c.EnrollPerIP = 3 })
	// Expired.
	link := e.activation("alice")
	e.clock.Add(pushauth.DefaultActivationTTL)
	_, err := authenticator.Enroll(e.ctx, link, authenticator.EnrollOptions{Now: e.clock.Now})
	serverErr(t, err, 400, protocol.ErrInvalidCode)
	// Wrong secret: the id of a real activation with a guessed secret.
	act, err := protocol.ParseActivation(e.activation("alice"))
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(act.Code, ".")
	act.Code = id + ".guessed-secret"
	_, err = authenticator.Enroll(e.ctx, act.String(), authenticator.EnrollOptions{Now: e.clock.Now})
	serverErr(t, err, 400, protocol.ErrInvalidCode)
	// Third failure from this address, then the limit.
	act.Code = "unknown.secret"
	_, err = authenticator.Enroll(e.ctx, act.String(), authenticator.EnrollOptions{Now: e.clock.Now})
	serverErr(t, err, 400, protocol.ErrInvalidCode)
	_, err = authenticator.Enroll(e.ctx, e.activation("alice"), authenticator.EnrollOptions{Now: e.clock.Now})
	serverErr(t, err, 429, protocol.ErrRateLimited)
	e.clock.Add(time.Minute)
	if _, err := authenticator.Enroll(e.ctx, e.activation("alice"), authenticator.EnrollOptions{Now: e.clock.Now}); err != nil {
		t.Fatalf("enroll after the rate-limit window: %v", err)
	}
}

// TestForgedServerKey: the device pinned the push key from the QR code; a
// bridge that signs with another key (rotated without endorsement, or an
// impostor) is refused, and a QR code naming another key fails enrollment.
func TestForgedServerKey(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	act, err := protocol.ParseActivation(e.activation("alice"))
	if err != nil {
		t.Fatal(err)
	}
	act.PushKey = "AAAA" + act.PushKey[4:]
	_, err = authenticator.Enroll(e.ctx, act.String(), authenticator.EnrollOptions{Now: e.clock.Now})
	if !errors.Is(err, authenticator.ErrPushKeyPin) {
		t.Fatalf("enroll with a wrong pin: %v", err)
	}
	// Rotations are endorsed (rotation_test.go), so the server signs with a
	// push key that no key endorsed.
	unendorsed := e.rotateUnendorsed()
	h := e.start(login("alice"))
	_, err = dev.Fetch(e.ctx, h.ID)
	if !errors.Is(err, authenticator.ErrInvalidChallenge) || !errors.Is(err, authenticator.ErrUntrustedKey) {
		t.Fatalf("challenge signed by an unpinned, unendorsed key: %v, want refused as untrusted", err)
	}
	if trusts(dev, unendorsed) {
		t.Fatalf("the device trusts the unendorsed key %s", unendorsed)
	}
}

// TestProofRules: every device request needs a fresh proof bound to its
// method, URL, body and time, by an enrolled device.
func TestProofRules(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	url := e.base + protocol.PathPending
	do := func(method, url, proof string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		if proof != "" {
			req.Header.Set(protocol.ProofHeader, proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var pe protocol.Error
		_ = json.NewDecoder(resp.Body).Decode(&pe)
		return resp.StatusCode, pe.Code
	}
	proof := func(method, url string, body []byte) string {
		p, err := dev.Proof(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := proof("GET", url, nil)
	if st, code := do("GET", url, good, nil); st != 200 {
		t.Fatalf("good proof: %d %s", st, code)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged, _ := protocol.Sign("ES256", other, protocol.TypProof, dev.ID(), false, protocol.ProofClaims{JTI: "abcdefghijklmnopqrstuv", Method: "GET", URL: url, IssuedAt: e.clock.Now().Unix()})
	unknown, _ := protocol.Sign("ES256", other, protocol.TypProof, "no-such-device", false, protocol.ProofClaims{JTI: "abcdefghijklmnopqrstuv", Method: "GET", URL: url, IssuedAt: e.clock.Now().Unix()})
	stale, _ := dev.Sign(protocol.TypProof, protocol.ProofClaims{JTI: "abcdefghijklmnopqrstuv", Method: "GET", URL: url, IssuedAt: e.clock.Now().Add(-2 * pushauth.DefaultProofMaxAge).Unix()})
	for _, tc := range []struct {
		name, method, url, proof string
		body                     []byte
		code                     string
	}{
		{"missing", "GET", url, "", nil, protocol.ErrInvalidProof},
		{"replayed", "GET", url, good, nil, protocol.ErrInvalidProof},
		{"forged", "GET", url, forged, nil, protocol.ErrInvalidProof},
		{"unknown device", "GET", url, unknown, nil, protocol.ErrUnknownDevice},
		{"other method", "GET", url, proof("POST", url, nil), nil, protocol.ErrInvalidProof},
		{"other URL", "GET", url, proof("GET", e.base+protocol.PathPushKeys, nil), nil, protocol.ErrInvalidProof},
		{"too old", "GET", url, stale, nil, protocol.ErrInvalidProof},
		{"other body", "PUT", e.base + protocol.PathDevice, proof("PUT", e.base+protocol.PathDevice, []byte(`{"app_version":"1"}`)), []byte(`{"app_version":"2"}`), protocol.ErrInvalidProof},
		{"wrong typ", "GET", url, mustSign(t, dev, protocol.TypAnswer, protocol.ProofClaims{JTI: "abcdefghijklmnopqrstuw", Method: "GET", URL: url, IssuedAt: e.clock.Now().Unix()}), nil, protocol.ErrInvalidProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, code := do(tc.method, tc.url, tc.proof, tc.body); st != 401 || code != tc.code {
				t.Fatalf("got %d %s, want 401 %s", st, code, tc.code)
			}
		})
	}
}

func mustSign(t *testing.T, dev *authenticator.Device, typ string, claims any) string {
	t.Helper()
	s, err := dev.Sign(typ, claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEnrollmentProofOfPossession: an enrollment signed by a key other than
// the one it embeds is refused, and the activation is not spent.
func TestEnrollmentProofOfPossession(t *testing.T) {
	e := newEnv(t)
	link := e.activation("alice")
	act, _ := protocol.ParseActivation(link)
	embedded, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	claims := protocol.EnrollClaims{Activation: act.Code, URL: e.base + protocol.PathEnroll, IssuedAt: e.clock.Now().Unix(), Platform: "other"}
	jws := signWithEmbedded(t, signer, &embedded.PublicKey, claims)
	resp, err := http.Post(e.base+protocol.PathEnroll, "application/jose", strings.NewReader(jws))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("enrollment with a mismatched key: %d %s", resp.StatusCode, body)
	}
	if _, err := authenticator.Enroll(e.ctx, link, authenticator.EnrollOptions{Now: e.clock.Now}); err != nil {
		t.Fatalf("the activation was spent by a refused enrollment: %v", err)
	}
}

// signWithEmbedded makes an enrollment JWS whose jwk header is pub but
// whose signature is by key.
func signWithEmbedded(t *testing.T, key *ecdsa.PrivateKey, pub *ecdsa.PublicKey, claims protocol.EnrollClaims) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: pub, Algorithm: "ES256"}
	hdr := map[string]any{"alg": "ES256", "typ": protocol.TypEnroll, "jwk": jwk}
	h, _ := json.Marshal(hdr)
	p, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// webhook is a local receiver for fraud reports.
type webhook struct {
	url  string
	reqs chan *http.Request
	body chan []byte
}

func startWebhook(t *testing.T) *webhook {
	w := &webhook{reqs: make(chan *http.Request, 10), body: make(chan []byte, 10)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.reqs <- r
		w.body <- b
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL + "/hook"
	return w
}

// next returns the next report after checking its signature.
func (w *webhook) next(t *testing.T, secret []byte) pushauth.FraudReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r *http.Request
	select {
	case r = <-w.reqs:
	case <-ctx.Done():
		t.Fatal("the fraud webhook was not called")
	}
	body := <-w.body
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(r.Header.Get("Bridge-Timestamp") + "."))
	m.Write(body)
	if got := r.Header.Get("Bridge-Signature"); got != "sha256="+hex.EncodeToString(m.Sum(nil)) {
		t.Fatalf("webhook signature %q does not verify", got)
	}
	var rep pushauth.FraudReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}
