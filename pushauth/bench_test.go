package pushauth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	wa "github.com/go-webauthn/webauthn/protocol"

	"github.com/bridge-idp/bridge/internal/webauthntest"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/postgres/pgtest"
	"github.com/bridge-idp/bridge/store/storetest"
)

// BenchmarkApproval measures one whole approval in process, without the
// network: Start (limits, signed challenge, stored, audited) → the device
// signs its answer and a request proof → the bridge verifies the proof and
// the answer and closes the challenge (audited) → Wait returns approved.
// Both sides' cryptography is in the figure: the device's ES256 signatures
// as well as the server's Ed25519 signature and ES256 verifications.
//
// Logins run concurrently for many users, as on a busy node; the audit log
// is written with group commit. Sub-benchmarks compare where challenges
// live: this node's memory (the SQLite default) or the store itself.
func BenchmarkApproval(b *testing.B) {
	b.Run("state=memory/store=sqlite", func(b *testing.B) {
		benchApproval(b, func(e *env) store.PushState { return memstate.New() }, newBenchEnv)
	})
	b.Run("state=sqlite/store=sqlite", func(b *testing.B) {
		benchApproval(b, func(e *env) store.PushState { return e.st }, newBenchEnv)
	})
	if os.Getenv("BRIDGE_TEST_POSTGRES_DSN") != "" {
		b.Run("state=postgres/store=postgres", func(b *testing.B) {
			benchApproval(b, func(e *env) store.PushState { return e.st }, newPostgresBenchEnv)
		})
	}
	// The same approvals by passkey devices of the web app (§17): the
	// request key signs the proofs (ES256, as WebCrypto does), the passkey
	// answers with a WebAuthn assertion instead of a JWS.
	b.Run("device=passkey/state=memory/store=sqlite", func(b *testing.B) {
		benchPasskeyApproval(b, func(e *env) store.PushState { return memstate.New() })
	})
	b.Run("device=passkey/state=sqlite/store=sqlite", func(b *testing.B) {
		benchPasskeyApproval(b, func(e *env) store.PushState { return e.st })
	})
}

const benchUsers = 256

func noLimits(c *pushauth.Config, _ *pushauth.Deps) {
	c.MaxPerHour = 1 << 30
	c.MaxPerIPMinute = 1 << 30
}

func newBenchEnv(b *testing.B, state func(*env) store.PushState) *env {
	return benchNode(b, sqliteStore(b), state)
}

// benchNode is a node on st whose push state state picks (memory, or the
// store), without rate limits: the benchmark logs users in back to back.
func benchNode(b *testing.B, st store.Store, state func(*env) store.PushState, opts ...envOption) *env {
	var ps store.PushState = memstate.New()
	if s := state(&env{st: st}); s != nil {
		ps = s
	}
	return newNode(b, st, ps, nil, append([]envOption{noLimits}, opts...)...)
}

func benchApproval(b *testing.B, state func(*env) store.PushState, newEnv func(*testing.B, func(*env) store.PushState) *env) {
	e := newEnv(b, state)
	devs := make([]*authenticator.Device, benchUsers)
	for i := range devs {
		devs[i] = e.enroll(fmt.Sprintf("user%03d", i), authenticator.EnrollOptions{})
	}
	var next atomic.Int64
	ctx := context.Background()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine owns users i, i+G, ...: one login per user at a time.
		for pb.Next() {
			i := int(next.Add(1) % benchUsers)
			if err := approveOnce(ctx, e, devs[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "approvals/s")
}

// approveOnce runs one login for dev's user to an approved outcome.
func approveOnce(ctx context.Context, e *env, dev *authenticator.Device) error {
	req := login(dev.User())
	h, err := e.eng.Start(ctx, req)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if h.Joined {
		// Another goroutine is logging the same user in; wait for that one.
		_, err := e.eng.Wait(ctx, h.ID)
		return err
	}
	c, err := e.state.GetChallenge(ctx, h.ID)
	if err != nil {
		return err
	}
	signed, err := dev.SignedAnswer(authenticator.Challenge{ID: c.ID, Signed: c.Signed}, protocol.Approve, h.Number)
	if err != nil {
		return err
	}
	body := []byte(`{"answer":"` + signed + `"}`)
	url := e.base + protocol.PathChallenge + h.ID + protocol.SuffixAnswer
	proof, err := dev.Proof("POST", url, body)
	if err != nil {
		return err
	}
	r := httptest.NewRequest("POST", url, strings.NewReader(string(body)))
	r.Header.Set(protocol.ProofHeader, proof)
	d, err := e.eng.Authenticate(ctx, r, body)
	if err != nil {
		return fmt.Errorf("proof: %w", err)
	}
	if _, err := e.eng.Answer(ctx, d, h.ID, signed, "192.0.2.1"); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	o, err := e.eng.Wait(ctx, h.ID)
	if err != nil {
		return err
	}
	if !o.Approved() {
		return fmt.Errorf("outcome %+v", o)
	}
	return nil
}

func newPostgresBenchEnv(b *testing.B, state func(*env) store.PushState) *env {
	dsn := pgtest.FreshSchema(b)
	st, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, MaxConns: 16, AuditKey: storetest.AuditKey()}, discard())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return benchNode(b, st, state)
}

// BenchmarkApprovalCryptoFloor is the peer BenchmarkApproval is read
// against: the signatures of one approval and their checks alone (the
// server signs the challenge; the device signs its proof and its answer;
// the server verifies both), with the same parallelism. The ratio of the
// two says what the rest of the engine costs.
func BenchmarkApprovalCryptoFloor(b *testing.B) {
	pushKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	devKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	claims := protocol.ChallengeClaims{Issuer: "https://bridge.example.com", ID: "abcdefghijklmnopqrstuvwxyz0", User: "alice", AppID: "vpn", Channel: "radius", IssuedAt: 1, Expires: 61}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ch, err := protocol.Sign("EdDSA", pushKey, protocol.TypChallenge, "push", false, claims)
			if err != nil {
				b.Error(err)
				return
			}
			ans, _ := protocol.Sign("ES256", devKey, protocol.TypAnswer, "dev", false, protocol.AnswerClaims{ID: claims.ID, Hash: protocol.ChallengeHash(ch), Decision: "approve", IssuedAt: 1})
			proof, _ := protocol.Sign("ES256", devKey, protocol.TypProof, "dev", false, protocol.ProofClaims{JTI: "0123456789abcdef", Method: "POST", URL: "https://bridge.example.com/x", IssuedAt: 1})
			for _, s := range []struct{ jws, typ string }{{proof, protocol.TypProof}, {ans, protocol.TypAnswer}} {
				p, err := protocol.Parse(s.jws, s.typ, protocol.DeviceAlgorithms())
				if err != nil {
					b.Error(err)
					return
				}
				var v map[string]any
				if err := p.Verify(&devKey.PublicKey, &v); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "approvals/s")
}

// benchPasskeyApproval is benchApproval with passkey devices of the web
// app on a SQLite store: 256 users, each with a web device enrolled with a
// passkey (RP ID localhost, the node's own origin). The passkeys do not
// count (sign counter 0, as synced passkeys report): the engine has no
// counter to store for them (moveSignCount), and the goroutines may share
// a user without ordering their assertions.
func benchPasskeyApproval(b *testing.B, state func(*env) store.PushState) {
	e := benchNode(b, sqliteStore(b), state, func(c *pushauth.Config, _ *pushauth.Deps) { c.WebAuthnRPID = "localhost" })
	devs := make([]*webDevice, benchUsers)
	for i := range devs {
		devs[i] = e.mustEnrollWeb(benchUser(i), e.newPasskey())
	}
	var next, jti atomic.Int64
	ctx := context.Background()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1) % benchUsers)
			if err := approveOncePasskey(ctx, e, benchUser(i), devs[i], jti.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "approvals/s")
}

func benchUser(i int) string { return fmt.Sprintf("user%03d", i) }

// approveOncePasskey is approveOnce for a passkey device: the app's
// assertion over the answer's challenge, posted as the webauthn member of
// the answer body with a proof by the request key; jti numbers the proof.
func approveOncePasskey(ctx context.Context, e *env, user string, d *webDevice, jti int64) error {
	h, err := e.eng.Start(ctx, login(user))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if h.Joined {
		_, err := e.eng.Wait(ctx, h.ID)
		return err
	}
	c, err := e.state.GetChallenge(ctx, h.ID)
	if err != nil {
		return err
	}
	now := e.clock.Now().Unix()
	req := protocol.AnswerRequest{WebAuthn: d.passkey.Answer(c.ID, protocol.ChallengeHash(c.Signed), protocol.Approve, h.Number, now)}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	url := e.base + protocol.PathChallenge + h.ID + protocol.SuffixAnswer
	proof, err := protocol.Sign(protocol.AlgES256, d.key, protocol.TypProof, d.id, false,
		protocol.ProofClaims{JTI: fmt.Sprintf("bench-%016d", jti), Method: "POST", URL: url, BodyHash: protocol.BodyHash(body), IssuedAt: now})
	if err != nil {
		return err
	}
	r := httptest.NewRequest("POST", url, bytes.NewReader(body))
	r.Header.Set(protocol.ProofHeader, proof)
	dev, err := e.eng.Authenticate(ctx, r, body)
	if err != nil {
		return fmt.Errorf("proof: %w", err)
	}
	if _, err := e.eng.AnswerWith(ctx, dev, h.ID, req, "192.0.2.1"); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	o, err := e.eng.Wait(ctx, h.ID)
	if err != nil {
		return err
	}
	if !o.Approved() {
		return fmt.Errorf("outcome %+v", o)
	}
	return nil
}

// BenchmarkPasskeyApprovalCryptoFloor is the peer of the passkey
// approvals, as BenchmarkApprovalCryptoFloor is of the JWS ones: the
// server signs the challenge (EdDSA); the device signs its request proof
// (ES256 JWS) and makes its assertion (ES256 over authData ‖
// SHA-256(clientDataJSON)); the server verifies the proof and checks the
// assertion. check=minimal checks the assertion by hand: decode its
// members, read the client data's type, challenge and origin, the RP ID
// hash and the UP and UV flags, and verify the signature with a key parsed
// beforehand. check=go-webauthn does what the engine does instead
// (passkeyAnswer): go-webauthn's Parse and Verify, the stored COSE key
// parsed at each check. Their difference is what the library adds over
// the floor.
func BenchmarkPasskeyApprovalCryptoFloor(b *testing.B) {
	const origin = "https://bridge.example.com"
	b.Run("check=minimal", func(b *testing.B) { benchPasskeyFloor(b, origin, checkAssertionMinimal) })
	b.Run("check=go-webauthn", func(b *testing.B) { benchPasskeyFloor(b, origin, checkAssertionWebAuthn) })
}

// assertionCheck checks a passkey answer by pk's credential against the
// challenge derived from its claims.
type assertionCheck func(a *protocol.WebAuthnAnswer, pk *webauthntest.Authenticator, origin string) error

func benchPasskeyFloor(b *testing.B, origin string, check assertionCheck) {
	pushKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	reqKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pk, err := webauthntest.New("bridge.example.com", origin)
	if err != nil {
		b.Fatal(err)
	}
	claims := protocol.ChallengeClaims{Issuer: origin, ID: "abcdefghijklmnopqrstuvwxyz0", User: "alice", AppID: "vpn", Channel: "radius", IssuedAt: 1, Expires: 61}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ch, err := protocol.Sign("EdDSA", pushKey, protocol.TypChallenge, "push", false, claims)
			if err != nil {
				b.Error(err)
				return
			}
			a := pk.Answer(claims.ID, protocol.ChallengeHash(ch), protocol.Approve, "", 1)
			proof, _ := protocol.Sign("ES256", reqKey, protocol.TypProof, "dev", false, protocol.ProofClaims{JTI: "0123456789abcdef", Method: "POST", URL: origin + "/x", IssuedAt: 1})
			p, err := protocol.Parse(proof, protocol.TypProof, protocol.DeviceAlgorithms())
			if err != nil {
				b.Error(err)
				return
			}
			var v map[string]any
			if err := p.Verify(&reqKey.PublicKey, &v); err != nil {
				b.Error(err)
				return
			}
			if err := check(a, pk, origin); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "approvals/s")
}

var b64url = base64.RawURLEncoding

// checkAssertionMinimal is the least a check of the assertion must do.
func checkAssertionMinimal(a *protocol.WebAuthnAnswer, pk *webauthntest.Authenticator, origin string) error {
	cdj, err1 := b64url.DecodeString(a.ClientDataJSON)
	ad, err2 := b64url.DecodeString(a.AuthenticatorData)
	sig, err3 := b64url.DecodeString(a.Signature)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	var cd struct{ Type, Challenge, Origin string }
	if err := json.Unmarshal(cdj, &cd); err != nil {
		return err
	}
	want := b64url.EncodeToString(protocol.AnswerWebAuthnChallenge(a.ID, a.Hash, a.Decision, a.Number, a.IssuedAt))
	if cd.Type != "webauthn.get" || cd.Challenge != want || cd.Origin != origin {
		return fmt.Errorf("client data %+v", cd)
	}
	rp := sha256.Sum256([]byte(pk.RPID))
	if len(ad) < 37 || !bytes.Equal(ad[:32], rp[:]) || ad[32]&0x05 != 0x05 {
		return errors.New("authenticator data")
	}
	cdh := sha256.Sum256(cdj)
	h := sha256.Sum256(append(ad, cdh[:]...))
	if !ecdsa.VerifyASN1(&pk.Key.PublicKey, h[:], sig) {
		return errors.New("assertion signature")
	}
	return nil
}

// checkAssertionWebAuthn checks the assertion as passkeyAnswer does.
func checkAssertionWebAuthn(a *protocol.WebAuthnAnswer, pk *webauthntest.Authenticator, origin string) error {
	rawID, err1 := b64url.DecodeString(a.CredentialID)
	cdj, err2 := b64url.DecodeString(a.ClientDataJSON)
	ad, err3 := b64url.DecodeString(a.AuthenticatorData)
	sig, err4 := b64url.DecodeString(a.Signature)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return err
	}
	car := wa.CredentialAssertionResponse{
		PublicKeyCredential: wa.PublicKeyCredential{Credential: wa.Credential{ID: a.CredentialID, Type: string(wa.PublicKeyCredentialType)}, RawID: rawID},
		AssertionResponse: wa.AuthenticatorAssertionResponse{
			AuthenticatorResponse: wa.AuthenticatorResponse{ClientDataJSON: cdj},
			AuthenticatorData:     ad, Signature: sig,
		},
	}
	par, err := car.Parse()
	if err != nil {
		return err
	}
	if !par.Response.AuthenticatorData.Flags.UserVerified() {
		return errors.New("not user-verified")
	}
	challenge := b64url.EncodeToString(protocol.AnswerWebAuthnChallenge(a.ID, a.Hash, a.Decision, a.Number, a.IssuedAt))
	return par.Verify(challenge, pk.RPID, "", []string{origin}, nil, nil, wa.TopOriginExplicitVerificationMode,
		false, true, true, pk.COSEKey(), wa.SignaturePolicy{})
}
