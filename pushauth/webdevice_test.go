package pushauth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/internal/webauthntest"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// webDevice is the web app as the device API sees it: a request key that
// signs the enrollment and every proof (WebCrypto ES256 in the browser),
// and a passkey (webauthntest) that signs answers. It speaks HTTP to the
// env's real handler.
type webDevice struct {
	e       *env
	key     *ecdsa.PrivateKey
	id      string
	passkey *webauthntest.Authenticator // nil: a software-key device
	jti     int
}

// passkeyEnv is an env with passkeys on: RP ID localhost, and the base
// URL's origin (always allowed) for the ceremonies.
func passkeyEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnv(t, append([]envOption{func(c *pushauth.Config, _ *pushauth.Deps) { c.WebAuthnRPID = "localhost" }}, opts...)...)
}

func (e *env) newPasskey() *webauthntest.Authenticator {
	e.t.Helper()
	a, err := webauthntest.New("localhost", e.base)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// enrollWeb enrolls a web device for user; passkey nil makes a software
// key device (JWS answers). It returns the device and the HTTP answer's
// status and error code (status 201: enrolled).
func (e *env) enrollWeb(user string, passkey *webauthntest.Authenticator, edit func(*protocol.EnrollClaims)) (*webDevice, int, protocol.Error) {
	e.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	act, err := protocol.ParseActivation(e.activation(user))
	if err != nil {
		e.t.Fatal(err)
	}
	c := protocol.EnrollClaims{Activation: act.Code, URL: e.base + protocol.PathEnroll, IssuedAt: e.clock.Now().Unix(), Platform: protocol.PlatformWeb, Name: "web app"}
	if passkey != nil {
		tp, err := protocol.Thumbprint(jose.JSONWebKey{Key: &k.PublicKey})
		if err != nil {
			e.t.Fatal(err)
		}
		if c.WebAuthn, err = passkey.Register(protocol.EnrollWebAuthnChallenge(act.Code, tp)); err != nil {
			e.t.Fatal(err)
		}
	}
	if edit != nil {
		edit(&c)
	}
	signed, err := protocol.Sign(protocol.AlgES256, k, protocol.TypEnroll, "", true, c)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.Post(e.base+protocol.PathEnroll, "application/jose", strings.NewReader(signed))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		var pe protocol.Error
		_ = json.Unmarshal(body, &pe)
		return nil, resp.StatusCode, pe
	}
	var er protocol.EnrollResponse
	if err := json.Unmarshal(body, &er); err != nil {
		e.t.Fatal(err)
	}
	return &webDevice{e: e, key: k, id: er.DeviceID, passkey: passkey}, resp.StatusCode, protocol.Error{}
}

// mustEnrollWeb enrolls or fails the test.
func (e *env) mustEnrollWeb(user string, passkey *webauthntest.Authenticator) *webDevice {
	e.t.Helper()
	d, status, pe := e.enrollWeb(user, passkey, nil)
	if d == nil {
		e.t.Fatalf("web enrollment: %d %s %s", status, pe.Code, pe.Description)
	}
	return d
}

// call makes a device request with a proof and returns the status and body.
func (d *webDevice) call(method, path string, body []byte) (int, []byte) {
	d.e.t.Helper()
	d.jti++
	pc := protocol.ProofClaims{JTI: fmt.Sprintf("web-%s-%012d", d.id[:8], d.jti), Method: method, URL: d.e.base + path, IssuedAt: d.e.clock.Now().Unix()}
	if len(body) > 0 {
		pc.BodyHash = protocol.BodyHash(body)
	}
	proof, err := protocol.Sign(protocol.AlgES256, d.key, protocol.TypProof, d.id, false, pc)
	if err != nil {
		d.e.t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, d.e.base+path, bytes.NewReader(body))
	req.Header.Set(protocol.ProofHeader, proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// challenge GETs challenge id: its signed form, or the status when refused.
func (d *webDevice) challenge(id string) (string, int) {
	d.e.t.Helper()
	status, body := d.call("GET", protocol.PathChallenge+id, nil)
	if status != http.StatusOK {
		return "", status
	}
	var it protocol.ChallengeItem
	if err := json.Unmarshal(body, &it); err != nil {
		d.e.t.Fatal(err)
	}
	return it.Signed, status
}

// pending lists the ids of the challenges the device is shown.
func (d *webDevice) pending() []string {
	d.e.t.Helper()
	status, body := d.call("GET", protocol.PathPending, nil)
	if status != http.StatusOK {
		d.e.t.Fatalf("pending: %d %s", status, body)
	}
	var pr protocol.PendingResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		d.e.t.Fatal(err)
	}
	var ids []string
	for _, it := range pr.Challenges {
		ids = append(ids, it.ID)
	}
	return ids
}

// passkeyAnswer is the passkey answer to the challenge as the app makes
// it; edit may change the body after the assertion was made.
func (d *webDevice) passkeyAnswer(id, decision, number string, edit func(*protocol.WebAuthnAnswer)) *protocol.WebAuthnAnswer {
	d.e.t.Helper()
	signed, status := d.challenge(id)
	if status != http.StatusOK {
		d.e.t.Fatalf("fetching challenge %s: %d", id, status)
	}
	a := d.passkey.Answer(id, protocol.ChallengeHash(signed), decision, number, d.e.clock.Now().Unix())
	if edit != nil {
		edit(a)
	}
	return a
}

// post posts an answer body; it returns the status and the state or error.
func (d *webDevice) post(id string, req protocol.AnswerRequest) (int, string, protocol.Error) {
	d.e.t.Helper()
	body, _ := json.Marshal(req)
	status, out := d.call("POST", protocol.PathChallenge+id+protocol.SuffixAnswer, body)
	if status == http.StatusOK {
		var ar protocol.AnswerResponse
		_ = json.Unmarshal(out, &ar)
		return status, ar.State, protocol.Error{}
	}
	var pe protocol.Error
	_ = json.Unmarshal(out, &pe)
	return status, "", pe
}

// answer answers with the passkey.
func (d *webDevice) answer(id, decision, number string) (int, string, protocol.Error) {
	d.e.t.Helper()
	return d.post(id, protocol.AnswerRequest{WebAuthn: d.passkeyAnswer(id, decision, number, nil)})
}

// jwsAnswer answers with a JWS signed by the request key (a software-key
// web device, or a passkey device breaking its protocol).
func (d *webDevice) jwsAnswer(id, decision, number string) (int, string, protocol.Error) {
	d.e.t.Helper()
	signed, status := d.challenge(id)
	if status != http.StatusOK {
		d.e.t.Fatalf("fetching challenge %s: %d", id, status)
	}
	return d.jwsAnswerTo(id, signed, decision, number)
}

// jwsAnswerTo answers the challenge signed (as another device saw it)
// with a JWS.
func (d *webDevice) jwsAnswerTo(id, signed, decision, number string) (int, string, protocol.Error) {
	d.e.t.Helper()
	ac := protocol.AnswerClaims{ID: id, Hash: protocol.ChallengeHash(signed), Decision: decision, Number: number, IssuedAt: d.e.clock.Now().Unix()}
	jws, err := protocol.Sign(protocol.AlgES256, d.key, protocol.TypAnswer, d.id, false, ac)
	if err != nil {
		d.e.t.Fatal(err)
	}
	return d.post(id, protocol.AnswerRequest{Answer: jws})
}

// want checks an answer's result.
func want(t *testing.T, what string, status int, state string, pe protocol.Error, wantStatus int, wantStateOrCode, wantReason string) {
	t.Helper()
	got := state
	if status != http.StatusOK {
		got = pe.Code
	}
	if status != wantStatus || got != wantStateOrCode || !strings.Contains(pe.Description, wantReason) {
		t.Fatalf("%s: got %d %s %q, want %d %s %q", what, status, got, pe.Description, wantStatus, wantStateOrCode, wantReason)
	}
}
