package protocol_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// FuzzParseActivation feeds activation URLs (what a phone reads from a QR
// code) to ParseActivation: it must never panic, and what it accepts must
// be usable: an http(s) base URL without user, query or fragment, a code, a
// push-key pin, a TLS pin only for https, and a URL that formats and parses
// back to the same activation.
func FuzzParseActivation(f *testing.F) {
	for _, a := range []protocol.Activation{
		{BaseURL: "https://bridge.example.com", Code: "q7PZ0mBWmO0e2bKt.Yb3d8ZJ6vJ0e6o1rPBBr3aSPn9p4bEo0zE1pA1h0xXw", PushKey: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{BaseURL: "https://example.com/bridge", Code: "id.secret", PushKey: "pk", TLSPin: "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
		{BaseURL: "http://127.0.0.1:8443", Code: "a.b", PushKey: "k"},
	} {
		f.Add(a.String())
	}
	f.Add("bridge://enroll?v=1&url=https://b.example&code=a.b&pk=k")
	f.Add("bridge://enroll?v=2&url=https://b.example&code=a.b&pk=k")
	f.Add("bridge://enroll?v=1&url=http://b.example&code=a.b&pk=k&tls=pin")
	f.Add("bridge://enroll?v=1&url=https://u:p@b.example/?q#f&code=a.b&pk=k")
	f.Add("https://enroll?v=1")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := protocol.ParseActivation(s)
		if err != nil {
			return
		}
		if len(s) > 2048 {
			t.Fatalf("accepted a URL of %d bytes", len(s))
		}
		if a.Code == "" || a.PushKey == "" {
			t.Fatalf("accepted %q without code or push key: %+v", s, a)
		}
		base, err := url.Parse(a.BaseURL)
		if err != nil {
			t.Fatalf("accepted base URL %q that does not parse: %v", a.BaseURL, err)
		}
		if base.Scheme != "https" && base.Scheme != "http" || base.Host == "" {
			t.Fatalf("accepted base URL %q: not http(s) with a host", a.BaseURL)
		}
		if base.User != nil || base.RawQuery != "" || base.ForceQuery || base.Fragment != "" || strings.ContainsAny(a.BaseURL, "?#") {
			t.Fatalf("accepted base URL %q with user, query or fragment", a.BaseURL)
		}
		if a.TLSPin != "" && base.Scheme != "https" {
			t.Fatalf("accepted a TLS pin for %q", a.BaseURL)
		}
		again, err := protocol.ParseActivation(a.String())
		if err != nil {
			t.Fatalf("%q parsed as %+v, whose URL %q does not parse: %v", s, a, a.String(), err)
		}
		if again.Code != a.Code || again.PushKey != a.PushKey || again.TLSPin != a.TLSPin ||
			strings.TrimRight(again.BaseURL, "/") != strings.TrimRight(a.BaseURL, "/") {
			t.Fatalf("%q parsed as %+v, which formats and parses back as %+v", s, a, again)
		}
	})
}

// fuzzKeys are fixed keys, so that a seed or crasher signed in one process
// verifies in every other.
type fuzzKeys struct {
	ec   *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
	push ed25519.PrivateKey
	// signed holds the signing input (header.payload) of every JWS the
	// test signed: a signature that verifies over anything else is a
	// forgery.
	signed map[string]bool
}

func newFuzzKeys(tb testing.TB) *fuzzKeys {
	tb.Helper()
	seed := func(s string) []byte { h := sha256.Sum256([]byte("bridge fuzz key " + s)); return h[:] }
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed("ec"))
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzKeys{ec: ec, ed: ed25519.NewKeyFromSeed(seed("ed")), push: ed25519.NewKeyFromSeed(seed("push")), signed: map[string]bool{}}
}

func (k *fuzzKeys) sign(tb testing.TB, alg string, key any, typ, kid string, embed bool, claims any) string {
	tb.Helper()
	s, err := protocol.Sign(alg, key, typ, kid, embed, claims)
	if err != nil {
		tb.Fatal(err)
	}
	k.signed[signingInput(s)] = true
	return s
}

// signingInput is what a JWS says: its decoded header and payload. It
// compares decoded bytes, not the base64url text: a JWS whose base64url is
// re-encoded with different unused low bits or with "=" padding decodes to
// the same bytes and verifies (go-jose checks the signature over the
// canonical re-encoding); that is not a forgery. FuzzParseVerify found it.
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

var allTyps = []string{protocol.TypChallenge, protocol.TypEndorsement, protocol.TypEnroll, protocol.TypProof, protocol.TypAnswer}

// FuzzParseVerify feeds compact JWSs to Parse and Verify as the server and
// the device use them: for every message type, with the device algorithms
// (and EdDSA only for the server's messages), verified with the device
// keys, the push key and a key embedded in the header. It must never panic,
// Parse must enforce its rules, and nothing may verify but what the keys
// signed.
func FuzzParseVerify(f *testing.F) {
	k := newFuzzKeys(f)
	pushJWK := jose.JSONWebKey{Key: k.push.Public(), Algorithm: protocol.AlgEdDSA}
	pushKID, err := protocol.Thumbprint(pushJWK)
	if err != nil {
		f.Fatal(err)
	}
	const iat = 1_800_000_000
	challenge := k.sign(f, protocol.AlgEdDSA, k.push, protocol.TypChallenge, pushKID, false, protocol.ChallengeClaims{
		Issuer: "https://bridge.example.com", ID: "cid", User: "alice", AppID: "vpn", AppName: "VPN", Channel: "radius",
		ClientIP: "198.51.100.7", IssuedAt: iat, Expires: iat + 60, NumberDigits: 2,
	})
	next, _, _ := ed25519.GenerateKey(strings.NewReader(strings.Repeat("n", 64)))
	endorsement := k.sign(f, protocol.AlgEdDSA, k.push, protocol.TypEndorsement, pushKID, false, protocol.EndorsementClaims{
		Key: jose.JSONWebKey{Key: next, Algorithm: protocol.AlgEdDSA, Use: "sig"}, IssuedAt: iat,
	})
	answer := protocol.AnswerClaims{ID: "cid", Hash: protocol.ChallengeHash(challenge), Decision: protocol.Approve, Number: "42", IssuedAt: iat}
	proof := protocol.ProofClaims{JTI: "AAAAAAAAAAAAAAAAAAAAAA", Method: "POST", URL: "https://bridge.example.com/device/v1/challenges/cid/answer", IssuedAt: iat, BodyHash: protocol.BodyHash([]byte(`{}`))}
	enroll := protocol.EnrollClaims{Activation: "id.secret", URL: "https://bridge.example.com/device/v1/enroll", IssuedAt: iat, Platform: "android",
		PushProvider: "fcm", PushToken: "token", Posture: map[string]bool{"hardware_key": true}}
	var seeds []string
	for _, dk := range []struct {
		alg string
		key any
	}{{protocol.AlgES256, k.ec}, {protocol.AlgEdDSA, k.ed}} {
		seeds = append(seeds,
			k.sign(f, dk.alg, dk.key, protocol.TypAnswer, "dev-1", false, answer),
			k.sign(f, dk.alg, dk.key, protocol.TypProof, "dev-1", false, proof),
			k.sign(f, dk.alg, dk.key, protocol.TypEnroll, "", true, enroll),
		)
	}
	seeds = append(seeds, challenge, endorsement)
	for _, s := range seeds {
		f.Add(s)
		parts := strings.Split(s, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".e30." + parts[2])
	}
	f.Add(`eyJhbGciOiJub25lIiwidHlwIjoiYnJpZGdlLWFuc3dlcitqd3QifQ.e30.`) // alg none
	f.Add(`{"payload":"e30","signatures":[{"protected":"e30","signature":""}]}`)
	f.Add("")

	f.Fuzz(func(t *testing.T, compact string) {
		for _, typ := range allTyps {
			algs := protocol.DeviceAlgorithms()
			if typ == protocol.TypChallenge || typ == protocol.TypEndorsement {
				algs = []jose.SignatureAlgorithm{jose.EdDSA}
			}
			p, err := protocol.Parse(compact, typ, algs)
			if err != nil {
				continue
			}
			if len(compact) > protocol.MaxJWS {
				t.Fatalf("%s: parsed %d bytes (limit %d)", typ, len(compact), protocol.MaxJWS)
			}
			if strings.Count(compact, ".") != 2 {
				t.Fatalf("%s: parsed a JWS that is not compact: %q", typ, compact)
			}
			if got, _ := p.Header.ExtraHeaders[jose.HeaderType].(string); got != typ {
				t.Fatalf("%s: parsed a JWS of typ %q", typ, got)
			}
			if alg := jose.SignatureAlgorithm(p.Header.Algorithm); !containsAlg(algs, alg) {
				t.Fatalf("%s: parsed a JWS with alg %q (allowed %v)", typ, alg, algs)
			}
			keys := []any{&k.ec.PublicKey, k.ed.Public(), k.push.Public()}
			if jwk := p.Header.JSONWebKey; jwk != nil {
				if alg, err := protocol.DeviceKey(*jwk); err == nil && alg == p.Header.Algorithm {
					keys = append(keys, jwk)
				}
			}
			for _, key := range keys {
				var claims map[string]any
				if err := p.Verify(key, &claims); err != nil {
					continue
				}
				if !k.signed[signingInput(compact)] {
					t.Fatalf("%s: verified with %T, but no test key signed %q", typ, key, signingInput(compact))
				}
				if claims == nil {
					t.Fatalf("%s: verified with a payload that is not a JSON object", typ)
				}
			}
		}
	})
}

func containsAlg(algs []jose.SignatureAlgorithm, alg jose.SignatureAlgorithm) bool {
	for _, a := range algs {
		if a == alg {
			return true
		}
	}
	return false
}
