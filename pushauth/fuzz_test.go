package pushauth_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// The fuzz targets share one fixture per target: a bridge node (SQLite
// store, real engine and handler) with a fixed base URL, a stopped clock,
// devices with fixed ids and keys, and a pending challenge with a fixed id
// signed by a fixed key. Everything a seed depends on is the same in every
// process, so seeds made in the coordinator stay valid in the fuzz workers,
// and a crasher replays in a fresh `go test`. The challenge state is reset
// before each input, so an input's outcome depends on that input only.

const (
	fuzzBase = "https://bridge.example.com"
	fuzzRPID = "bridge.example.com"
)

var fuzzStart = time.Unix(1_900_000_000, 0).UTC()

const (
	fuzzChallengeID = "fuzzChallenge00000000000001"
	fuzzNumber      = "42"
	fuzzIP          = "192.0.2.44"
)

type fuzzDevice struct {
	rec store.Device
	key crypto.Signer
}

type fuzzFixture struct {
	*env
	state *swapState
	h     http.Handler
	devs  map[string]*fuzzDevice
	chal  store.Challenge
	// signed holds the signing input (header.payload) of every JWS the
	// fixture signed with a device key: the server must accept nothing
	// else, since nothing else can carry a valid signature.
	signed map[string]bool
}

// fixed keys, from a name.
func fuzzSeed(name string) []byte {
	h := sha256.Sum256([]byte("bridge fuzz key " + name))
	return h[:]
}

func fuzzKey(tb testing.TB, alg, name string) crypto.Signer {
	tb.Helper()
	if alg == protocol.AlgEdDSA {
		return ed25519.NewKeyFromSeed(fuzzSeed(name))
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), fuzzSeed(name))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func newFuzzFixture(f *testing.F) *fuzzFixture {
	f.Helper()
	state := &swapState{}
	e := newNode(f, sqliteStore(f), state, testenv.NewClock(fuzzStart), func(c *pushauth.Config, d *pushauth.Deps) {
		// Every refusal is audited; the targets do not look at the log,
		// and a commit per input would make them crawl.
		d.Audit, d.Store = nil, unaudited{d.Store}
		c.BaseURL = fuzzBase
		c.LongPoll = time.Millisecond // a fuzzed ?wait= must not hold the worker
		c.EnrollPerIP = 1 << 30       // every input is a failed enrollment
		c.WebAuthnRPID = fuzzRPID     // passkeys on
	})
	fx := &fuzzFixture{env: e, state: state, h: e.eng.Handler(nil), devs: map[string]*fuzzDevice{}, signed: map[string]bool{}}
	for _, d := range []struct {
		name, id, user, alg string
		created             time.Duration // before fuzzStart
		status              store.DeviceStatus
	}{
		{"alice-es", "fuzzDevAliceES256000001", "alice", protocol.AlgES256, time.Hour, store.DeviceActive},
		{"alice-ed", "fuzzDevAliceEdDSA000001", "alice", protocol.AlgEdDSA, time.Hour, store.DeviceActive},
		{"mallory", "fuzzDevMallory000000001", "mallory", protocol.AlgES256, time.Hour, store.DeviceActive},
		{"alice-late", "fuzzDevAliceLate0000001", "alice", protocol.AlgES256, 5 * time.Second, store.DeviceActive},
		{"alice-revoked", "fuzzDevAliceRevoked0001", "alice", protocol.AlgES256, time.Hour, store.DeviceRevoked},
	} {
		key := fuzzKey(f, d.alg, d.name)
		pub, err := jose.JSONWebKey{Key: key.Public(), Algorithm: d.alg}.MarshalJSON()
		if err != nil {
			f.Fatal(err)
		}
		rec := store.Device{
			ID: d.id, User: d.user, Name: d.name, Platform: protocol.PlatformOther, KeyAlg: d.alg, PublicJWK: pub,
			Status: d.status, CreatedAt: fuzzStart.Add(-d.created), LastSeenAt: fuzzStart.Add(-d.created),
		}
		if d.alg == protocol.AlgES256 {
			rec.Posture = []byte(`{"hardware_key":true}`) // as if in a keystore
		}
		if d.status == store.DeviceRevoked {
			rec.RevokedAt = fuzzStart.Add(-time.Minute)
		}
		if err := e.st.CreateDevice(e.ctx, rec); err != nil {
			f.Fatal(err)
		}
		fx.devs[d.name] = &fuzzDevice{rec: rec, key: key}
	}

	// The challenge, as Start would make it, signed by a fixed push key
	// (the server never verifies its own challenges; devices do).
	push := ed25519.NewKeyFromSeed(fuzzSeed("push"))
	kid, err := protocol.Thumbprint(jose.JSONWebKey{Key: push.Public()})
	if err != nil {
		f.Fatal(err)
	}
	created := fuzzStart.Add(-10 * time.Second)
	c := store.Challenge{
		ID: fuzzChallengeID, User: "alice", AppID: "vpn", AppName: "Corporate VPN", Channel: "radius", ClientIP: "198.51.100.7",
		Number: fuzzNumber, State: store.ChallengePending, CreatedAt: created, ExpiresAt: created.Add(pushauth.DefaultChallengeTTL),
		PurgeAt: created.Add(pushauth.DefaultChallengeTTL + pushauth.DefaultRetention),
	}
	c.Signed, err = protocol.Sign(protocol.AlgEdDSA, push, protocol.TypChallenge, kid, false, protocol.ChallengeClaims{
		Issuer: fuzzBase, ID: c.ID, User: c.User, AppID: c.AppID, AppName: c.AppName, Channel: c.Channel, ClientIP: c.ClientIP,
		IssuedAt: created.Unix(), Expires: c.ExpiresAt.Unix(), NumberDigits: len(fuzzNumber),
	})
	if err != nil {
		f.Fatal(err)
	}
	c.Hash, _ = base64.RawURLEncoding.DecodeString(protocol.ChallengeHash(c.Signed))
	fx.chal = c
	if err := fx.reset(); err != nil {
		f.Fatal(err)
	}
	return fx
}

// reset gives the node a fresh challenge state: the fixture challenge
// pending, no proof seen.
func (fx *fuzzFixture) reset() error {
	s := memstate.New()
	if _, _, _, err := s.CreateChallenge(context.Background(), fx.chal, fuzzStart, time.Time{}, func(store.Challenge) bool { return false }); err != nil {
		return err
	}
	fx.state.set(s)
	return nil
}

func (fx *fuzzFixture) challengeState(t *testing.T) store.Challenge {
	t.Helper()
	c, err := fx.state.GetChallenge(context.Background(), fx.chal.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sign signs claims with a fixture device's key; record adds it to the
// signed set.
func (fx *fuzzFixture) sign(tb testing.TB, dev, typ, kid string, claims any) string {
	tb.Helper()
	d := fx.devs[dev]
	s, err := protocol.Sign(d.rec.KeyAlg, d.key, typ, kid, false, claims)
	if err != nil {
		tb.Fatal(err)
	}
	fx.signed[signingInput(s)] = true
	return s
}

func (fx *fuzzFixture) answerClaims(decision, number string) protocol.AnswerClaims {
	return protocol.AnswerClaims{ID: fx.chal.ID, Hash: protocol.ChallengeHash(fx.chal.Signed), Decision: decision, Number: number, IssuedAt: fuzzStart.Unix()}
}

// answer is a signed answer by dev (kid = its id).
func (fx *fuzzFixture) answer(tb testing.TB, dev string, c protocol.AnswerClaims) string {
	return fx.sign(tb, dev, protocol.TypAnswer, fx.devs[dev].rec.ID, c)
}

// proof is a request proof by dev with a fixed jti (seeds must be the same
// in every process).
func (fx *fuzzFixture) proof(tb testing.TB, dev, method, path string, body []byte, jti string) string {
	c := protocol.ProofClaims{JTI: jti, Method: method, URL: fuzzBase + path, IssuedAt: fuzzStart.Unix()}
	if len(body) > 0 {
		c.BodyHash = protocol.BodyHash(body)
	}
	return fx.sign(tb, dev, protocol.TypProof, fx.devs[dev].rec.ID, c)
}

// signingInput is what a JWS says: its decoded header and payload (not
// the base64url text, which can be re-encoded with other unused low bits
// or "=" padding and still verify; see protocol's FuzzParseVerify).
func signingInput(compact string) string {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return compact
	}
	var out []string
	for _, part := range parts[:2] {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
		if err != nil {
			return compact
		}
		out = append(out, string(b))
	}
	return out[0] + "\x00" + out[1]
}

// checkAnswer verifies, independently of the engine, that signed is an
// answer dev may give to the fixture challenge, and returns the state it
// must close the challenge in.
func (fx *fuzzFixture) checkAnswer(dev store.Device, signed string) (store.ChallengeState, error) {
	if !fx.signed[signingInput(signed)] {
		return "", errors.New("the fixture never signed it")
	}
	p, err := protocol.Parse(signed, protocol.TypAnswer, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(dev.KeyAlg)})
	if err != nil {
		return "", err
	}
	if p.Header.KeyID != dev.ID {
		return "", fmt.Errorf("signed for device %q, sent by %q", p.Header.KeyID, dev.ID)
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(dev.PublicJWK); err != nil {
		return "", err
	}
	var a protocol.AnswerClaims
	if err := p.Verify(key, &a); err != nil {
		return "", err
	}
	switch {
	case dev.User != fx.chal.User:
		return "", errors.New("device of another user")
	case dev.CreatedAt.After(fx.chal.CreatedAt):
		return "", errors.New("device enrolled after the challenge")
	case a.ID != fx.chal.ID:
		return "", fmt.Errorf("answer for challenge %q", a.ID)
	case a.Hash != protocol.ChallengeHash(fx.chal.Signed):
		return "", errors.New("chash mismatch")
	case a.IssuedAt < fx.chal.CreatedAt.Add(-30*time.Second).Unix() || a.IssuedAt > fuzzStart.Add(30*time.Second).Unix():
		return "", errors.New("iat out of range")
	}
	switch a.Decision {
	case protocol.Approve:
		if a.Number != fuzzNumber {
			return store.ChallengeDenied, nil
		}
		return store.ChallengeApproved, nil
	case protocol.Deny:
		return store.ChallengeDenied, nil
	case protocol.Fraud:
		return store.ChallengeFraud, nil
	}
	return "", fmt.Errorf("decision %q", a.Decision)
}

// checkProof verifies, independently of the engine, that r carries one
// valid proof by an active fixture device for its method, URL and body.
func (fx *fuzzFixture) checkProof(r *http.Request, body []byte) (store.Device, error) {
	vals := r.Header.Values(protocol.ProofHeader)
	if len(vals) != 1 {
		return store.Device{}, fmt.Errorf("%d proofs", len(vals))
	}
	if !fx.signed[signingInput(vals[0])] {
		return store.Device{}, errors.New("the fixture never signed it")
	}
	p, err := protocol.Parse(vals[0], protocol.TypProof, protocol.DeviceAlgorithms())
	if err != nil {
		return store.Device{}, err
	}
	var dev *fuzzDevice
	for _, d := range fx.devs {
		if d.rec.ID == p.Header.KeyID {
			dev = d
		}
	}
	switch {
	case dev == nil:
		return store.Device{}, fmt.Errorf("kid %q is no fixture device", p.Header.KeyID)
	case dev.rec.Status != store.DeviceActive:
		return store.Device{}, errors.New("revoked device")
	case p.Header.Algorithm != dev.rec.KeyAlg:
		return store.Device{}, errors.New("alg mismatch")
	}
	var pc protocol.ProofClaims
	if err := p.Verify(dev.key.Public(), &pc); err != nil {
		return store.Device{}, err
	}
	switch {
	case pc.Method != r.Method:
		return store.Device{}, fmt.Errorf("proof for %s, request is %s", pc.Method, r.Method)
	case pc.URL != fuzzBase+r.URL.Path:
		return store.Device{}, fmt.Errorf("proof for %s, request is for %s", pc.URL, fuzzBase+r.URL.Path)
	case len(body) == 0 && pc.BodyHash != "", len(body) > 0 && pc.BodyHash != protocol.BodyHash(body):
		return store.Device{}, errors.New("body mismatch")
	case len(pc.JTI) < 16 || len(pc.JTI) > 64:
		return store.Device{}, errors.New("jti length")
	case pc.IssuedAt < fuzzStart.Add(-pushauth.DefaultProofMaxAge).Unix() || pc.IssuedAt > fuzzStart.Add(pushauth.DefaultProofMaxAge).Unix():
		return store.Device{}, errors.New("iat out of range")
	}
	return dev.rec, nil
}

// FuzzEnroll feeds arbitrary enrollments to Engine.Enroll. It must never
// panic; a refused enrollment must create no device and leave the
// activations unspent; an accepted one must be a valid enrollment, signed
// by the key it embeds, over one of the test's activation codes, and the
// only one for that code.
func FuzzEnroll(f *testing.F) {
	fx := newFuzzFixture(f)
	const user = "enrollee"
	var codes []string
	var actIDs []string
	for range 2 {
		act, rec, err := pushauth.Activator{
			Store: fx.st, Keys: fx.keys, HMACKey: fx.sealer.DeriveKey(pushauth.ActivationKeyLabel), BaseURL: fuzzBase, Now: fx.clock.Now,
		}.Create(fx.ctx, user, "fuzz", "")
		if err != nil {
			f.Fatal(err)
		}
		codes = append(codes, act.Code)
		actIDs = append(actIDs, rec.ID)
	}
	claims := func(code string) protocol.EnrollClaims {
		return protocol.EnrollClaims{
			Activation: code, URL: fuzzBase + protocol.PathEnroll, IssuedAt: fuzzStart.Unix(), Platform: protocol.PlatformAndroid,
			Name: "Pixel", AppVersion: "1.0.0", PushProvider: protocol.ProviderFCM, PushToken: "fcm-token",
			Posture: map[string]bool{"hardware_key": true, "rooted": false},
		}
	}
	enrollment := func(alg, keyName string, c protocol.EnrollClaims) string {
		s, err := protocol.Sign(alg, fuzzKey(f, alg, keyName), protocol.TypEnroll, "", true, c)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	valid := enrollment(protocol.AlgES256, "enroll-es", claims(codes[0]))
	f.Add(valid)
	f.Add(valid) // replayed: the code is spent
	f.Add(enrollment(protocol.AlgEdDSA, "enroll-ed", claims(codes[1])))
	for _, mod := range []func(*protocol.EnrollClaims){
		func(c *protocol.EnrollClaims) { c.URL = "https://evil.example/device/v1/enroll" },
		func(c *protocol.EnrollClaims) { c.IssuedAt -= 3600 },
		func(c *protocol.EnrollClaims) { c.Platform = "windows" },
		func(c *protocol.EnrollClaims) { c.PushProvider = "" },
		func(c *protocol.EnrollClaims) { c.PushProvider = "webpush" },
		func(c *protocol.EnrollClaims) { c.Name = "bad\x1bname" },
		func(c *protocol.EnrollClaims) { c.Activation = strings.Split(c.Activation, ".")[0] + ".wrong" },
		func(c *protocol.EnrollClaims) { c.Activation = "no-dot" },
		func(c *protocol.EnrollClaims) { c.Posture = map[string]bool{strings.Repeat("p", 65): true} },
	} {
		c := claims(codes[1])
		mod(&c)
		f.Add(enrollment(protocol.AlgES256, "enroll-es", c))
	}
	// Signed by one key, embedding another.
	signedBy, err := protocol.Sign(protocol.AlgES256, fuzzKey(f, protocol.AlgES256, "other"), protocol.TypEnroll, "", true, claims(codes[1]))
	if err != nil {
		f.Fatal(err)
	}
	embedded := strings.Split(enrollment(protocol.AlgES256, "enroll-es", claims(codes[1])), ".")
	f.Add(embedded[0] + "." + embedded[1] + "." + strings.Split(signedBy, ".")[2])
	f.Add("")
	f.Add("eyJhbGciOiJub25lIn0.e30.")

	// The fixture works: a valid enrollment with a third code is accepted.
	act, _, err := pushauth.Activator{
		Store: fx.st, Keys: fx.keys, HMACKey: fx.sealer.DeriveKey(pushauth.ActivationKeyLabel), BaseURL: fuzzBase, Now: fx.clock.Now,
	}.Create(fx.ctx, "sanity", "fuzz", "")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := fx.eng.Enroll(fx.ctx, enrollment(protocol.AlgEdDSA, "sanity", claims(act.Code)), fuzzIP); err != nil {
		f.Fatalf("the fixture refuses a valid enrollment: %v", err)
	}

	used := map[string]bool{} // activation codes enrolled with, in this process
	f.Fuzz(func(t *testing.T, signed string) {
		ctx := context.Background()
		before := fx.deviceCount(t, user)
		actsBefore := fx.activations(t, actIDs)
		d, err := fx.eng.Enroll(ctx, signed, fuzzIP)
		after := fx.deviceCount(t, user)
		if err != nil {
			var de *pushauth.DeviceError
			if !errors.As(err, &de) {
				t.Fatalf("internal error for an enrollment: %v", err)
			}
			if after != before {
				t.Fatalf("a refused enrollment (%v) changed the devices from %d to %d", err, before, after)
			}
			if got := fx.activations(t, actIDs); !slices.Equal(got, actsBefore) {
				t.Fatalf("a refused enrollment (%v) spent an activation", err)
			}
			return
		}
		if after != before+1 {
			t.Fatalf("an accepted enrollment changed the devices from %d to %d", before, after)
		}
		var c protocol.EnrollClaims
		p, perr := protocol.Parse(signed, protocol.TypEnroll, protocol.DeviceAlgorithms())
		if perr != nil || p.Header.JSONWebKey == nil || p.Verify(p.Header.JSONWebKey, &c) != nil {
			t.Fatalf("accepted an enrollment that does not verify with its own key: %q", signed)
		}
		if !slices.Contains(codes, c.Activation) || used[c.Activation] {
			t.Fatalf("accepted an enrollment with code %q (used before: %v)", c.Activation, used[c.Activation])
		}
		used[c.Activation] = true
		stored, err := fx.st.GetDevice(ctx, d.ID)
		if err != nil || stored.User != user || stored.Status != store.DeviceActive {
			t.Fatalf("enrolled device %+v, %v", stored, err)
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(stored.PublicJWK); err != nil {
			t.Fatal(err)
		}
		got, _ := protocol.Thumbprint(k)
		want, _ := protocol.Thumbprint(*p.Header.JSONWebKey)
		if got != want || stored.KeyAlg != p.Header.Algorithm {
			t.Fatalf("enrolled key %s/%s, the enrollment embeds %s/%s", got, stored.KeyAlg, want, p.Header.Algorithm)
		}
	})
}

func (fx *fuzzFixture) deviceCount(t *testing.T, user string) int {
	t.Helper()
	ds, err := fx.st.ListDevices(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return len(ds)
}

func (fx *fuzzFixture) activations(t *testing.T, ids []string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		a, err := fx.st.GetActivation(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a.UsedAt.String()+"/"+a.DeviceID)
	}
	return out
}

// FuzzAnswer feeds arbitrary answers, from each kind of device, to
// Engine.Answer for the fixture challenge, pending or (closed set) already
// superseded. It must never panic; a refused answer must leave the
// challenge as it was; an accepted one must be an answer the rightful
// device signed, and close a pending challenge as its decision and number
// say: never approved unless it is the valid approval. On a closed
// challenge only a valid fraud report is accepted, and it changes nothing
// but is reported as taken.
func FuzzAnswer(f *testing.F) {
	fx := newFuzzFixture(f)
	devs := []string{"alice-es", "alice-ed", "mallory", "alice-late"}
	const (
		aliceES = iota
		aliceED
		mallory
		late
	)
	good := fx.answerClaims(protocol.Approve, fuzzNumber)
	valid := fx.answer(f, "alice-es", good)
	f.Add(uint8(aliceES), false, valid)
	f.Add(uint8(aliceED), false, fx.answer(f, "alice-ed", good))
	f.Add(uint8(aliceES), true, valid)
	f.Add(uint8(aliceES), true, fx.answer(f, "alice-es", fx.answerClaims(protocol.Fraud, "")))
	f.Add(uint8(mallory), true, fx.answer(f, "mallory", fx.answerClaims(protocol.Fraud, "")))
	for _, c := range []protocol.AnswerClaims{
		fx.answerClaims(protocol.Approve, "41"),
		fx.answerClaims(protocol.Approve, ""),
		fx.answerClaims(protocol.Approve, "042"),
		fx.answerClaims(protocol.Deny, ""),
		fx.answerClaims(protocol.Fraud, ""),
		fx.answerClaims("APPROVE", fuzzNumber),
		fx.answerClaims("", fuzzNumber),
	} {
		f.Add(uint8(aliceES), false, fx.answer(f, "alice-es", c))
	}
	for _, mod := range []func(*protocol.AnswerClaims){
		func(c *protocol.AnswerClaims) { c.ID = "another" },
		func(c *protocol.AnswerClaims) { c.Hash = protocol.ChallengeHash(fx.chal.Signed + "x") },
		func(c *protocol.AnswerClaims) { c.IssuedAt -= 3600 },
		func(c *protocol.AnswerClaims) { c.IssuedAt += 3600 },
	} {
		c := good
		mod(&c)
		f.Add(uint8(aliceES), false, fx.answer(f, "alice-es", c))
	}
	f.Add(uint8(aliceED), false, valid)                                                                       // signed by one device, sent by another
	f.Add(uint8(aliceED), false, fx.sign(f, "alice-es", protocol.TypAnswer, "fuzzDevAliceEdDSA000001", good)) // kid of the sender, key of another
	f.Add(uint8(mallory), false, fx.answer(f, "mallory", good))
	f.Add(uint8(late), false, fx.answer(f, "alice-late", good))
	f.Add(uint8(late), true, fx.answer(f, "alice-late", fx.answerClaims(protocol.Fraud, "")))
	f.Add(uint8(aliceES), false, fx.sign(f, "alice-es", protocol.TypProof, "fuzzDevAliceES256000001", good))
	parts := strings.Split(valid, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[2])
	f.Add(uint8(aliceES), false, parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(derSignature(raw)))
	f.Add(uint8(aliceES), false, parts[0]+"."+parts[1]+".")
	f.Add(uint8(aliceES), false, "eyJhbGciOiJub25lIiwidHlwIjoiYnJpZGdlLWFuc3dlcitqd3QifQ."+parts[1]+".")
	f.Add(uint8(aliceES), false, "")

	if _, err := fx.eng.Answer(fx.ctx, fx.devs["alice-es"].rec, fx.chal.ID, valid, fuzzIP); err != nil {
		f.Fatalf("the fixture refuses a valid answer: %v", err)
	}

	f.Fuzz(func(t *testing.T, which uint8, closed bool, signed string) {
		ctx := context.Background()
		if err := fx.reset(); err != nil {
			t.Fatal(err)
		}
		if closed {
			if _, err := fx.state.CloseChallenge(ctx, fx.chal.ID, store.ChallengeClose{State: store.ChallengeSuperseded, Reason: "superseded"}, fuzzStart); err != nil {
				t.Fatal(err)
			}
		}
		before := fx.challengeState(t)
		dev := fx.devs[devs[int(which)%len(devs)]].rec
		res, err := fx.eng.Answer(ctx, dev, fx.chal.ID, signed, fuzzIP)
		c := fx.challengeState(t)
		want, werr := fx.checkAnswer(dev, signed)
		if err != nil {
			var de *pushauth.DeviceError
			if !errors.As(err, &de) {
				t.Fatalf("internal error for an answer: %v", err)
			}
			if c.State != before.State || c.DeviceID != before.DeviceID {
				t.Fatalf("a refused answer (%v) changed the challenge from %s to %s", err, before.State, c.State)
			}
			if werr == nil && (!closed || want == store.ChallengeFraud) {
				t.Fatalf("refused an answer that should be taken (%s): %v", want, err)
			}
			return
		}
		if werr != nil {
			t.Fatalf("accepted an answer from %s that must be refused (%v); challenge %s", dev.Name, werr, c.State)
		}
		if closed {
			if want != store.ChallengeFraud || !res.FraudReported || c.State != before.State {
				t.Fatalf("accepted a %s answer on a closed challenge: fraud reported %v, challenge %s", want, res.FraudReported, c.State)
			}
			return
		}
		if c.State != want || c.DeviceID != dev.ID || res.FraudReported {
			t.Fatalf("the answer closed the challenge as %s by %q (fraud reported %v), want %s by %q", c.State, c.DeviceID, res.FraudReported, want, dev.ID)
		}
	})
}

// FuzzDeviceRequest feeds arbitrary requests (method, path and query,
// Device-Proof headers, body) to the device API handler. It must never
// panic or fail with an internal error; errors are protocol errors in
// JSON; a request is served only with a valid proof for exactly that
// request; what it returns belongs to the device's user; and the challenge
// closes only through an accepted answer.
func FuzzDeviceRequest(f *testing.F) {
	fx := newFuzzFixture(f)
	answerPath := protocol.PathChallenge + fx.chal.ID + protocol.SuffixAnswer
	// Answers inside bodies are EdDSA: deterministic signatures, so the
	// body, its hash in the proof and the proof's signing input are the
	// same in every process.
	answerBody, _ := json.Marshal(protocol.AnswerRequest{Answer: fx.answer(f, "alice-ed", fx.answerClaims(protocol.Approve, fuzzNumber))})
	denyBody, _ := json.Marshal(protocol.AnswerRequest{Answer: fx.answer(f, "alice-ed", fx.answerClaims(protocol.Deny, ""))})
	update := []byte(`{"push_provider":"fcm","push_token":"fcm-token-2","app_version":"2.0"}`)
	jti := func(i int) string { return fmt.Sprintf("fuzz-jti-%016d", i) }
	type seed struct {
		method, target, proof string
		body                  []byte
	}
	seeds := []seed{
		{"GET", protocol.PathPending + "?wait=0", fx.proof(f, "alice-es", "GET", protocol.PathPending, nil, jti(1)), nil},
		{"GET", protocol.PathPending + "?wait=30", fx.proof(f, "alice-late", "GET", protocol.PathPending, nil, jti(2)), nil},
		{"GET", protocol.PathPending + "?wait=30&known=" + fx.chal.ID + ",other", fx.proof(f, "alice-es", "GET", protocol.PathPending, nil, jti(18)), nil},
		{"GET", protocol.PathPending + "?wait=1&known=" + fx.chal.ID, fx.proof(f, "alice-ed", "GET", protocol.PathPending, nil, jti(19)), nil},
		{"GET", protocol.PathPending, fx.proof(f, "mallory", "GET", protocol.PathPending, nil, jti(3)), nil},
		{"GET", protocol.PathPending + "?wait=x", fx.proof(f, "alice-es", "GET", protocol.PathPending, nil, jti(4)), nil},
		{"GET", protocol.PathPending, fx.proof(f, "alice-revoked", "GET", protocol.PathPending, nil, jti(5)), nil},
		{"GET", protocol.PathChallenge + fx.chal.ID, fx.proof(f, "alice-ed", "GET", protocol.PathChallenge+fx.chal.ID, nil, jti(6)), nil},
		{"GET", protocol.PathChallenge + fx.chal.ID, fx.proof(f, "mallory", "GET", protocol.PathChallenge+fx.chal.ID, nil, jti(7)), nil},
		{"GET", protocol.PathChallenge + "unknown", fx.proof(f, "alice-es", "GET", protocol.PathChallenge+"unknown", nil, jti(8)), nil},
		{"POST", answerPath, fx.proof(f, "alice-ed", "POST", answerPath, answerBody, jti(9)), answerBody},
		{"POST", answerPath, fx.proof(f, "alice-ed", "POST", answerPath, denyBody, jti(10)), denyBody},
		{"POST", answerPath, fx.proof(f, "alice-es", "POST", answerPath, answerBody, jti(11)), answerBody}, // alice-ed's answer sent by alice-es
		{"POST", answerPath, fx.proof(f, "alice-es", "POST", answerPath, []byte("{"), jti(12)), []byte("{")},
		{"PUT", protocol.PathDevice, fx.proof(f, "alice-es", "PUT", protocol.PathDevice, update, jti(13)), update},
		{"GET", protocol.PathPushKeys, fx.proof(f, "alice-ed", "GET", protocol.PathPushKeys, nil, jti(14)), nil},
		{"GET", protocol.PathPushKeys, fx.proof(f, "alice-ed", "POST", protocol.PathPushKeys, nil, jti(15)), nil},
		{"GET", protocol.PathPending, fx.proof(f, "alice-es", "GET", protocol.PathPending, nil, "short"), nil},
		{"PUT", protocol.PathDevice, fx.proof(f, "alice-es", "PUT", protocol.PathDevice, nil, jti(16)), update},
		{"POST", protocol.PathEnroll, "", []byte("eyJhbGciOiJFUzI1NiJ9.e30.")},
		{"GET", protocol.PathEnroll, "", nil},
		{"DELETE", protocol.PathDevice, "", nil},
		{"GET", "/device/v1/nope", "", nil},
		{"GET", "/device/v1/../v1/challenges", "", nil},
		{"GET", "/", "", nil},
	}
	two := fx.proof(f, "alice-es", "GET", protocol.PathPending, nil, jti(17))
	lateFetch := len(seeds) + 1
	seeds = append(seeds, seed{"GET", protocol.PathPending, two + "\n" + two, nil},
		seed{"GET", protocol.PathChallenge + fx.chal.ID, fx.proof(f, "alice-late", "GET", protocol.PathChallenge+fx.chal.ID, nil, jti(20)), nil})
	for _, s := range seeds {
		f.Add(s.method, s.target, s.proof, s.body)
	}
	// Proofs of the regression seeds in testdata/fuzz/FuzzDeviceRequest
	// (EdDSA: the same bytes in every process), so that the checks know
	// the fixture signed them.
	fx.proof(f, "alice-ed", "GET", protocol.PathPending, nil, "fuzz-jti-regression-wait-overflow") // wait-overflow

	for i, want := range map[int]int{0: 200, 2: 200, 3: 200, 6: 401, 7: 200, 8: 404, 10: 200, 14: 204, 15: 200, lateFetch: 404} {
		r := httptest.NewRequest(seeds[i].method, fuzzBase+seeds[i].target, bytes.NewReader(seeds[i].body))
		r.Header.Set(protocol.ProofHeader, seeds[i].proof)
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		if w.Code != want {
			f.Fatalf("seed %d (%s %s): %d %s, want %d", i, seeds[i].method, seeds[i].target, w.Code, w.Body, want)
		}
		if err := fx.reset(); err != nil {
			f.Fatal(err)
		}
	}

	knownCodes := []string{protocol.ErrInvalidRequest, protocol.ErrInvalidProof, protocol.ErrInvalidAnswer, protocol.ErrUnknownDevice,
		protocol.ErrDeviceRevoked, protocol.ErrNotFound, protocol.ErrAlreadyAnswered, protocol.ErrExpired, protocol.ErrInvalidCode, protocol.ErrRateLimited}
	f.Fuzz(func(t *testing.T, method, target, proof string, body []byte) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		r, err := http.NewRequest(method, fuzzBase+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a server would parse
		}
		r.RemoteAddr = fuzzIP + ":40000"
		for _, p := range strings.Split(proof, "\n") {
			if p != "" {
				r.Header.Add(protocol.ProofHeader, p)
			}
		}
		if err := fx.reset(); err != nil {
			t.Fatal(err)
		}
		dw := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
		w := dw.ResponseRecorder
		fx.h.ServeHTTP(dw, r)
		if !dw.deadline.IsZero() && dw.deadline.Before(time.Now()) {
			t.Fatalf("%s %s: the handler set the write deadline in the past (%v): a real connection would lose the response", method, target, dw.deadline)
		}
		resp := w.Result()
		status := resp.StatusCode
		if status == http.StatusInternalServerError {
			t.Fatalf("%s %s: 500: %s", method, target, w.Body)
		}
		onDevice := strings.HasPrefix(r.URL.Path, "/device/")
		redirect := status == http.StatusMovedPermanently || status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect
		if onDevice && !redirect {
			if ct := resp.Header.Get("Content-Type"); status != http.StatusNoContent && ct != "application/json" {
				t.Fatalf("%s %s: %d with Content-Type %q", method, target, status, ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("%s %s: %d with Cache-Control %q", method, target, status, cc)
			}
			if status >= 400 {
				var pe protocol.Error
				if err := json.Unmarshal(w.Body.Bytes(), &pe); err != nil || !slices.Contains(knownCodes, pe.Code) {
					t.Fatalf("%s %s: %d with body %q, want a protocol error", method, target, status, w.Body)
				}
				if status == http.StatusUnauthorized && pe.Code != protocol.ErrDeviceRevoked && pe.Description != "" {
					t.Fatalf("%s %s: 401 %s explains itself: %q", method, target, pe.Code, pe.Description)
				}
				if status == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
					t.Fatalf("%s %s: 429 without Retry-After", method, target)
				}
			}
		}
		c := fx.challengeState(t)
		if status/100 != 2 {
			if c.State != store.ChallengePending {
				t.Fatalf("%s %s answered %d, but the challenge closed as %s", method, target, status, c.State)
			}
			return
		}
		if !onDevice {
			t.Fatalf("%s %s: %d outside the device API", method, target, status)
		}
		if r.Method == http.MethodPost && r.URL.Path == protocol.PathEnroll {
			t.Fatalf("enrolled with %q, but the fixture has no activation code", body)
		}
		dev, err := fx.checkProof(r, body)
		if err != nil {
			t.Fatalf("%s %s answered %d for a request whose proof is not valid for it: %v", method, target, status, err)
		}
		isAnswer := r.Method == http.MethodPost && r.URL.Path == answerPath
		if !isAnswer && c.State != store.ChallengePending {
			t.Fatalf("%s %s closed the challenge as %s", method, target, c.State)
		}
		switch {
		case isAnswer:
			var req protocol.AnswerRequest
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("answered %d to a body that is not JSON", status)
			}
			want, err := fx.checkAnswer(dev, req.Answer)
			if err != nil {
				t.Fatalf("accepted an answer by %s that must be refused: %v", dev.Name, err)
			}
			var ar protocol.AnswerResponse
			if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil || ar.State != string(want) || c.State != want {
				t.Fatalf("answer: response %q, challenge %s; want %s", w.Body, c.State, want)
			}
		case r.URL.Path == protocol.PathPending:
			var pr protocol.PendingResponse
			if err := json.Unmarshal(w.Body.Bytes(), &pr); err != nil || pr.Challenges == nil {
				t.Fatalf("pending: %q", w.Body)
			}
			for _, it := range pr.Challenges {
				ch, err := fx.state.GetChallenge(context.Background(), it.ID)
				if err != nil || ch.User != dev.User || dev.CreatedAt.After(ch.CreatedAt) || it.Signed != ch.Signed {
					t.Fatalf("device %s (%s) was given challenge %+v", dev.Name, dev.User, it)
				}
			}
		case strings.HasPrefix(r.URL.Path, protocol.PathChallenge):
			var it protocol.ChallengeItem
			if err := json.Unmarshal(w.Body.Bytes(), &it); err != nil {
				t.Fatalf("challenge: %q", w.Body)
			}
			ch, err := fx.state.GetChallenge(context.Background(), it.ID)
			if err != nil || ch.User != dev.User || dev.CreatedAt.After(ch.CreatedAt) || it.Signed != ch.Signed {
				t.Fatalf("device %s (%s) was given challenge %+v", dev.Name, dev.User, it)
			}
		}
	})
}

// deadlineRecorder is a ResponseRecorder that, like a real connection,
// takes a write deadline (http.ResponseController), and remembers it.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadline time.Time
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.deadline = t
	return nil
}

// TestLongPollHugeWait: a long-poll whose wait does not fit in a
// time.Duration once in nanoseconds must still get an answer (capped, or
// refused). It is the regression test of a finding of FuzzDeviceRequest's
// write-deadline check: handler.pending computes time.Duration(n)*time.Second,
// which overflows to a negative wait for n >= 9223372037, and then sets the
// connection's write deadline to now + wait + 10 s, in the past; the
// response is never written, the connection closes, and Go clients retry
// the GET with the same proof, which then fails as replayed (401).
func TestLongPollHugeWait(t *testing.T) {
	e := newEnv(t, func(c *pushauth.Config, _ *pushauth.Deps) { c.LongPoll = time.Second })
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	for _, wait := range []string{"1", "9223372036", "9223372037", "18446744073"} {
		t.Run(wait, func(t *testing.T) {
			proof, err := dev.Proof(http.MethodGet, e.base+protocol.PathPending, nil)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "GET %s?wait=%s HTTP/1.1\r\nHost: bridge\r\n%s: %s\r\nConnection: close\r\n\r\n", protocol.PathPending, wait, protocol.ProofHeader, proof)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to a long-poll with wait=%s: %v", wait, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("wait=%s: %d, want 200 (wait capped) or 400 (refused)", wait, resp.StatusCode)
			}
		})
	}
}

// FuzzDeviceUpdate sends arbitrary JSON bodies, each with a valid proof,
// to PUT /device/v1/device, from a device with a hardware key (software
// set: one without). It must never panic; it must answer 204 exactly
// when the update follows the documented rules, store exactly what it
// says, and leave the device unchanged when it refuses it.
func FuzzDeviceUpdate(f *testing.F) {
	fx := newFuzzFixture(f)
	for _, s := range []string{
		`{"push_provider":"fcm","push_token":"fcm-token"}`,
		`{"push_provider":"apns","push_token":"0123456789abcdef"}`,
		`{"push_provider":"","push_token":""}`,
		`{"push_token":"only-a-token"}`,
		`{"push_provider":"apns"}`,
		`{"push_provider":"webpush","push_token":"x"}`,
		`{"app_version":"1.2.3 (45)"}`,
		`{"app_version":"bad\u0007"}`,
		`{"posture":{"rooted":false,"jailbroken":false,"emulator":false,"debugger":false,"hooked":false,"hardware_key":true}}`,
		`{"posture":{"hardware_key":false}}`,
		`{"posture":{}}`,
		`{"posture":{"":true}}`,
		`{"posture":{"a":true,"b":true,"c":true,"d":true,"e":true,"f":true,"g":true,"h":true,"i":true,"j":true,"k":true,"l":true,"m":true,"n":true,"o":true,"p":true,"q":true}}`,
		`{"posture":null,"app_version":null}`,
		`{"PUSH_PROVIDER":"fcm","Push_Token":"case"}`,
		`{"push_token":"` + strings.Repeat("t", protocol.MaxPushToken+1) + `"}`,
		`{}`, `null`, `[]`, `"x"`, `{`, ``,
	} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	f.Fuzz(func(t *testing.T, software bool, body []byte) {
		ctx := context.Background()
		name := "alice-es"
		if software {
			name = "alice-ed"
		}
		dev := fx.devs[name].rec
		if err := fx.reset(); err != nil {
			t.Fatal(err)
		}
		before, err := fx.st.GetDevice(ctx, dev.ID)
		if err != nil {
			t.Fatal(err)
		}
		jti := make([]byte, 16)
		rand.Read(jti)
		c := protocol.ProofClaims{JTI: base64.RawURLEncoding.EncodeToString(jti), Method: http.MethodPut, URL: fuzzBase + protocol.PathDevice, IssuedAt: fuzzStart.Unix()}
		if len(body) > 0 {
			c.BodyHash = protocol.BodyHash(body)
		}
		proof, err := protocol.Sign(dev.KeyAlg, fx.devs[name].key, protocol.TypProof, dev.ID, false, c)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPut, fuzzBase+protocol.PathDevice, bytes.NewReader(body))
		r.Header.Set(protocol.ProofHeader, proof)
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		after, err := fx.st.GetDevice(ctx, dev.ID)
		if err != nil {
			t.Fatal(err)
		}

		var u protocol.DeviceUpdate
		decoded := len(body) <= protocol.MaxBody && json.Unmarshal(body, &u) == nil
		want, valid := applyUpdate(before, u)
		switch {
		case len(body) > protocol.MaxBody:
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("a body of %d bytes: %d %s", len(body), w.Code, w.Body)
			}
		case !decoded:
			if w.Code != http.StatusBadRequest {
				t.Fatalf("a body that is not a JSON update: %d %s", w.Code, w.Body)
			}
		case valid && w.Code != http.StatusNoContent:
			t.Fatalf("a valid update %q was refused: %d %s", body, w.Code, w.Body)
		case !valid && w.Code != http.StatusBadRequest:
			t.Fatalf("an invalid update %q: %d %s, want 400", body, w.Code, w.Body)
		}
		if w.Code != http.StatusNoContent {
			if !sameDevice(before, after) {
				t.Fatalf("a refused update (%d %s) changed the device:\n before %+v\n after  %+v", w.Code, w.Body, before, after)
			}
			if w.Code < 500 {
				var pe protocol.Error
				if err := json.Unmarshal(w.Body.Bytes(), &pe); err != nil || pe.Code != protocol.ErrInvalidRequest {
					t.Fatalf("refusal %d %q, want invalid_request", w.Code, w.Body)
				}
			}
			return
		}
		if w.Body.Len() != 0 {
			t.Fatalf("204 with a body %q", w.Body)
		}
		if !sameDevice(want, after) {
			t.Fatalf("update %q stored\n %+v\nwant\n %+v", body, after, want)
		}
	})
}

// applyUpdate is the documented meaning of a device update: the device it
// makes and whether it follows the rules.
func applyUpdate(d store.Device, u protocol.DeviceUpdate) (store.Device, bool) {
	text := func(s string, max int) bool {
		if len(s) > max || !utf8.ValidString(s) {
			return false
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				return false
			}
		}
		return true
	}
	if u.PushProvider != nil {
		d.PushProvider = *u.PushProvider
	}
	if u.PushToken != nil {
		d.PushToken = *u.PushToken
		d.PushTokenStale = false // a token sent, changed or not, clears the mark (§6.4)
	}
	ok := true
	switch d.PushProvider {
	case "":
		ok = d.PushToken == ""
	case protocol.ProviderFCM, protocol.ProviderAPNs:
		ok = d.PushToken != "" && len(d.PushToken) <= protocol.MaxPushToken && utf8.ValidString(d.PushToken)
	default:
		ok = false
	}
	if u.AppVersion != nil {
		ok = ok && text(*u.AppVersion, protocol.MaxString)
		d.AppVersion = *u.AppVersion
	}
	if u.Posture != nil {
		// hardware_key describes the key made at enrollment: an update
		// neither sets nor clears it.
		p := maps.Clone(u.Posture)
		delete(p, "hardware_key")
		var was map[string]bool
		if json.Unmarshal(d.Posture, &was) == nil && was["hardware_key"] {
			p["hardware_key"] = true
		}
		ok = ok && len(p) <= protocol.MaxPosture
		for k := range p {
			ok = ok && k != "" && text(k, 64)
		}
		d.Posture = nil
		if len(p) > 0 {
			d.Posture, _ = json.Marshal(p)
		}
	}
	return d, ok
}

// sameDevice compares what a device update may change.
func sameDevice(a, b store.Device) bool {
	return a.ID == b.ID && a.User == b.User && a.Status == b.Status && a.KeyAlg == b.KeyAlg && bytes.Equal(a.PublicJWK, b.PublicJWK) &&
		a.PushProvider == b.PushProvider && a.PushToken == b.PushToken && a.AppVersion == b.AppVersion &&
		postureEqual(a.Posture, b.Posture) && (a.PushTokenStale == b.PushTokenStale || a.PushProvider != b.PushProvider || a.PushToken != b.PushToken)
}

func postureEqual(a, b []byte) bool {
	var pa, pb map[string]bool
	if len(a) > 0 && json.Unmarshal(a, &pa) != nil || len(b) > 0 && json.Unmarshal(b, &pb) != nil {
		return bytes.Equal(a, b)
	}
	if len(pa) != len(pb) {
		return false
	}
	for k, v := range pa {
		if w, ok := pb[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// unaudited is a store whose audit log discards what it is given.
type unaudited struct{ pushauth.Store }

func (unaudited) AppendAudit(_ context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	return e, nil
}

// swapState is a store.PushState whose contents the fuzz targets replace
// before each input.
type swapState struct {
	mu  sync.Mutex
	cur *memstate.State
}

// interface guards
var _ store.PushState = (*swapState)(nil)

func (s *swapState) set(st *memstate.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = st
}

func (s *swapState) get() *memstate.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *swapState) CreateChallenge(ctx context.Context, c store.Challenge, now, closedSince time.Time, join func(store.Challenge) bool) (store.Challenge, bool, []store.Challenge, error) {
	return s.get().CreateChallenge(ctx, c, now, closedSince, join)
}

func (s *swapState) RecentChallenges(ctx context.Context, user string, since time.Time) ([]store.Challenge, error) {
	return s.get().RecentChallenges(ctx, user, since)
}

func (s *swapState) GetChallenge(ctx context.Context, id string) (store.Challenge, error) {
	return s.get().GetChallenge(ctx, id)
}

func (s *swapState) PendingChallenges(ctx context.Context, user string, now time.Time) ([]store.Challenge, error) {
	return s.get().PendingChallenges(ctx, user, now)
}

func (s *swapState) CloseChallenge(ctx context.Context, id string, how store.ChallengeClose, now time.Time) (store.Challenge, error) {
	return s.get().CloseChallenge(ctx, id, how, now)
}

func (s *swapState) ExpireChallenges(ctx context.Context, now time.Time, limit int) ([]store.Challenge, error) {
	return s.get().ExpireChallenges(ctx, now, limit)
}

func (s *swapState) CountChallenges(ctx context.Context, user string, since time.Time) (int, error) {
	return s.get().CountChallenges(ctx, user, since)
}

func (s *swapState) UseOnce(ctx context.Context, namespace, key string, now, expires time.Time) error {
	return s.get().UseOnce(ctx, namespace, key, now, expires)
}

func (s *swapState) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	return s.get().DeleteExpired(ctx, now)
}
