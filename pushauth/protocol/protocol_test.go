package protocol_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

var b64 = base64.RawURLEncoding

func TestActivationRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   protocol.Activation
		want protocol.Activation // what parsing the URL gives back
	}{
		{
			name: "without TLS pin",
			in:   protocol.Activation{BaseURL: "https://bridge.example.com", Code: "abc.def", PushKey: "pk-thumbprint"},
		},
		{
			name: "with TLS pin and a path",
			in:   protocol.Activation{BaseURL: "https://example.com/bridge", Code: "id.secret-with_chars~", PushKey: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", TLSPin: "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
		},
		{
			name: "plain http without pin",
			in:   protocol.Activation{BaseURL: "http://127.0.0.1:8080", Code: "a.b", PushKey: "k"},
		},
		{
			name: "trailing slash is dropped",
			in:   protocol.Activation{BaseURL: "https://bridge.example.com/", Code: "a.b", PushKey: "k"},
			want: protocol.Activation{BaseURL: "https://bridge.example.com", Code: "a.b", PushKey: "k"},
		},
		{
			name: "characters that need escaping",
			in:   protocol.Activation{BaseURL: "https://bridge.example.com/a%20b", Code: "a+b&c=d.e f", PushKey: "k/+="},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.in.String()
			if !strings.HasPrefix(s, "bridge://enroll?") {
				t.Fatalf("String() = %q, want a bridge://enroll? URL", s)
			}
			got, err := protocol.ParseActivation(s)
			if err != nil {
				t.Fatalf("ParseActivation(%q): %v", s, err)
			}
			want := tc.want
			if want == (protocol.Activation{}) {
				want = tc.in
			}
			if got != want {
				t.Fatalf("round trip of %q\n got %+v\nwant %+v", s, got, want)
			}
			// Surrounding whitespace (a QR scanner's newline) is tolerated.
			if again, err := protocol.ParseActivation(" " + s + "\n"); err != nil || again != want {
				t.Fatalf("with whitespace: %+v, %v", again, err)
			}
		})
	}
}

// TestActivationFormat pins the URL format the apps parse.
func TestActivationFormat(t *testing.T) {
	a := protocol.Activation{BaseURL: "https://bridge.example.com", Code: "id.secret", PushKey: "pk", TLSPin: "pin"}
	want := "bridge://enroll?code=id.secret&pk=pk&tls=pin&url=https%3A%2F%2Fbridge.example.com&v=1"
	if got := a.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestActivationRefused(t *testing.T) {
	valid := func(mod func(q map[string]string)) string {
		q := map[string]string{"v": "1", "url": "https://bridge.example.com", "code": "id.secret", "pk": "thumb"}
		mod(q)
		var parts []string
		for _, k := range []string{"v", "url", "code", "pk", "tls"} {
			if v, ok := q[k]; ok {
				parts = append(parts, k+"="+escape(v))
			}
		}
		return "bridge://enroll?" + strings.Join(parts, "&")
	}
	if _, err := protocol.ParseActivation(valid(func(map[string]string) {})); err != nil {
		t.Fatalf("the base case is refused: %v", err)
	}
	for _, tc := range []struct {
		name, url, want string
	}{
		{"wrong scheme", strings.Replace(valid(func(map[string]string) {}), "bridge://", "https://", 1), "must start with"},
		{"other scheme", strings.Replace(valid(func(map[string]string) {}), "bridge://", "otpauth://", 1), "must start with"},
		{"wrong host", strings.Replace(valid(func(map[string]string) {}), "//enroll?", "//login?", 1), "must start with"},
		{"no host", "bridge:enroll?v=1&url=https%3A%2F%2Fb.example&code=a.b&pk=k", "must start with"},
		{"version 2", valid(func(q map[string]string) { q["v"] = "2" }), "version"},
		{"no version", valid(func(q map[string]string) { delete(q, "v") }), "version"},
		{"missing code", valid(func(q map[string]string) { delete(q, "code") }), "no code"},
		{"empty code", valid(func(q map[string]string) { q["code"] = "" }), "no code"},
		{"missing pk", valid(func(q map[string]string) { delete(q, "pk") }), "push key"},
		{"missing url", valid(func(q map[string]string) { delete(q, "url") }), "not an http(s) URL"},
		{"url not http", valid(func(q map[string]string) { q["url"] = "ftp://bridge.example.com" }), "not an http(s) URL"},
		{"url without host", valid(func(q map[string]string) { q["url"] = "https:///path" }), "not an http(s) URL"},
		{"url relative", valid(func(q map[string]string) { q["url"] = "/device" }), "not an http(s) URL"},
		{"url with user", valid(func(q map[string]string) { q["url"] = "https://user:pw@bridge.example.com" }), "no user, query or fragment"},
		{"url with query", valid(func(q map[string]string) { q["url"] = "https://bridge.example.com/?x=1" }), "no user, query or fragment"},
		{"url with empty query", valid(func(q map[string]string) { q["url"] = "https://bridge.example.com?" }), "no user, query or fragment"},
		{"url with fragment", valid(func(q map[string]string) { q["url"] = "https://bridge.example.com#frag" }), "no user, query or fragment"},
		{"url with empty fragment", valid(func(q map[string]string) { q["url"] = "https://bridge.example.com#" }), "no user, query or fragment"},
		{"tls pin with http", valid(func(q map[string]string) { q["url"] = "http://bridge.example.com"; q["tls"] = "pin" }), "plain http"},
		{"too long", valid(func(q map[string]string) { q["code"] = strings.Repeat("a", 2048) }), "too long"},
		{"not a URL", "bridge://enroll?v=1&url=%zz", "activation URL"},
		{"empty", "", "must start with"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := protocol.ParseActivation(tc.url)
			if err == nil {
				t.Fatalf("ParseActivation(%q) = %+v, want an error", tc.url, a)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseActivation(%q): %v, want an error about %q", tc.url, err, tc.want)
			}
		})
	}
}

func escape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B", "?", "%3F", " ", "%20")
	return r.Replace(s)
}

func TestDeviceKey(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		key     jose.JSONWebKey
		want    string // the algorithm, or "" for a refusal
		wantErr string
	}{
		{"P-256", jose.JSONWebKey{Key: &p256.PublicKey}, protocol.AlgES256, ""},
		{"P-256 with ES256", jose.JSONWebKey{Key: &p256.PublicKey, Algorithm: "ES256"}, protocol.AlgES256, ""},
		{"Ed25519", jose.JSONWebKey{Key: edPub}, protocol.AlgEdDSA, ""},
		{"Ed25519 with EdDSA", jose.JSONWebKey{Key: edPub, Algorithm: "EdDSA"}, protocol.AlgEdDSA, ""},
		{"P-384", jose.JSONWebKey{Key: &p384.PublicKey}, "", "not P-256"},
		{"RSA", jose.JSONWebKey{Key: &rsaKey.PublicKey}, "", "not supported"},
		{"RSA with RS256", jose.JSONWebKey{Key: &rsaKey.PublicKey, Algorithm: "RS256"}, "", "not supported"},
		{"P-256 private", jose.JSONWebKey{Key: p256}, "", "public key"},
		{"Ed25519 private", jose.JSONWebKey{Key: edPriv}, "", "public key"},
		{"RSA private", jose.JSONWebKey{Key: rsaKey}, "", "public key"},
		{"P-256 with EdDSA", jose.JSONWebKey{Key: &p256.PublicKey, Algorithm: "EdDSA"}, "", "ES256"},
		{"P-256 with ES384", jose.JSONWebKey{Key: &p256.PublicKey, Algorithm: "ES384"}, "", "ES256"},
		{"P-256 with none", jose.JSONWebKey{Key: &p256.PublicKey, Algorithm: "none"}, "", "ES256"},
		{"Ed25519 with ES256", jose.JSONWebKey{Key: edPub, Algorithm: "ES256"}, "", "EdDSA"},
		{"symmetric", jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef")}, "", ""},
		{"empty", jose.JSONWebKey{}, "", "not a valid JWK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alg, err := protocol.DeviceKey(tc.key)
			if tc.want != "" {
				if err != nil || alg != tc.want {
					t.Fatalf("DeviceKey = %q, %v; want %q", alg, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("DeviceKey = %q, want a refusal", alg)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("DeviceKey: %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

// TestDeviceKeyFromJSON: keys as a phone sends them in the enrollment's
// "jwk" header.
func TestDeviceKeyFromJSON(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x, y := coordinates(t, &p256.PublicKey)
	badY := make([]byte, 32)
	new(big.Int).Add(new(big.Int).SetBytes(y), big.NewInt(1)).FillBytes(badY)
	d, err := p256.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	lowOrder := make([]byte, 32)
	lowOrder[0] = 1 // the neutral point: every signature "verifies" under it
	for _, tc := range []struct {
		name, json, want string
	}{
		{"EC", `{"kty":"EC","crv":"P-256","x":"` + b64.EncodeToString(x) + `","y":"` + b64.EncodeToString(y) + `"}`, "ES256"},
		{"OKP", `{"kty":"OKP","crv":"Ed25519","x":"` + b64.EncodeToString(edPub) + `"}`, "EdDSA"},
		{"EC point not on the curve", `{"kty":"EC","crv":"P-256","x":"` + b64.EncodeToString(x) + `","y":"` + b64.EncodeToString(badY) + `"}`, ""},
		{"EC with d", `{"kty":"EC","crv":"P-256","x":"` + b64.EncodeToString(x) + `","y":"` + b64.EncodeToString(y) + `","d":"` + b64.EncodeToString(d) + `"}`, ""},
		{"OKP low order", `{"kty":"OKP","crv":"Ed25519","x":"` + b64.EncodeToString(lowOrder) + `"}`, ""},
		{"OKP X25519", `{"kty":"OKP","crv":"X25519","x":"` + b64.EncodeToString(edPub) + `"}`, ""},
		{"oct", `{"kty":"oct","k":"` + b64.EncodeToString([]byte("secret")) + `"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k jose.JSONWebKey
			err := k.UnmarshalJSON([]byte(tc.json))
			var alg string
			if err == nil {
				alg, err = protocol.DeviceKey(k)
			}
			if tc.want != "" && (err != nil || alg != tc.want) {
				t.Fatalf("got %q, %v; want %s", alg, err, tc.want)
			}
			if tc.want == "" && err == nil {
				t.Fatalf("accepted as %s, want a refusal", alg)
			}
		})
	}
}

// keyPair is a device key for the JWS tests.
type keyPair struct {
	alg  string
	priv any
	pub  any
}

func keyPairs(t *testing.T) []keyPair {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []keyPair{
		{protocol.AlgES256, ec, &ec.PublicKey},
		{protocol.AlgEdDSA, edPriv, edPub},
	}
}

func answer() protocol.AnswerClaims {
	return protocol.AnswerClaims{ID: "cid-1", Hash: protocol.ChallengeHash("x.y.z"), Decision: protocol.Approve, Number: "42", IssuedAt: 1_800_000_000}
}

func TestSignParseVerify(t *testing.T) {
	for _, kp := range keyPairs(t) {
		t.Run(kp.alg, func(t *testing.T) {
			signed, err := protocol.Sign(kp.alg, kp.priv, protocol.TypAnswer, "dev-1", false, answer())
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(signed, "."); n != 2 {
				t.Fatalf("%q is not a compact JWS", signed)
			}
			hdr := header(t, signed)
			if hdr["alg"] != kp.alg || hdr["typ"] != protocol.TypAnswer || hdr["kid"] != "dev-1" || hdr["jwk"] != nil {
				t.Fatalf("header %v", hdr)
			}
			if kp.alg == protocol.AlgES256 {
				sig, _ := b64.DecodeString(strings.Split(signed, ".")[2])
				if len(sig) != 64 {
					t.Fatalf("ES256 signature of %d bytes, want 64 (R||S)", len(sig))
				}
			}
			p, err := protocol.Parse(signed, protocol.TypAnswer, protocol.DeviceAlgorithms())
			if err != nil {
				t.Fatal(err)
			}
			if p.Header.KeyID != "dev-1" || p.Header.Algorithm != kp.alg || p.Header.JSONWebKey != nil {
				t.Fatalf("parsed header %+v", p.Header)
			}
			var got protocol.AnswerClaims
			if err := p.Verify(kp.pub, &got); err != nil {
				t.Fatal(err)
			}
			if got != answer() {
				t.Fatalf("claims %+v, want %+v", got, answer())
			}
			// A jose.JSONWebKey works as well as the bare key.
			if err := p.Verify(jose.JSONWebKey{Key: kp.pub}, &got); err != nil {
				t.Fatalf("verify with a JWK: %v", err)
			}
			// Another key of the same type does not.
			other := keyPairs(t)
			for _, o := range other {
				if o.alg == kp.alg && p.Verify(o.pub, &got) == nil {
					t.Fatal("verified with another key")
				}
			}
		})
	}
}

// TestSignEmbedded: an enrollment carries its public key in "jwk" and no kid.
func TestSignEmbedded(t *testing.T) {
	for _, kp := range keyPairs(t) {
		t.Run(kp.alg, func(t *testing.T) {
			claims := protocol.EnrollClaims{Activation: "a.b", URL: "https://b.example/device/v1/enroll", IssuedAt: 1, Platform: "ios"}
			signed, err := protocol.Sign(kp.alg, kp.priv, protocol.TypEnroll, "ignored", true, claims)
			if err != nil {
				t.Fatal(err)
			}
			p, err := protocol.Parse(signed, protocol.TypEnroll, protocol.DeviceAlgorithms())
			if err != nil {
				t.Fatal(err)
			}
			jwk := p.Header.JSONWebKey
			if jwk == nil || !jwk.IsPublic() {
				t.Fatalf("header %+v has no public jwk", p.Header)
			}
			if p.Header.KeyID != "" {
				t.Fatalf("enrollment header has kid %q", p.Header.KeyID)
			}
			if alg, err := protocol.DeviceKey(*jwk); err != nil || alg != kp.alg {
				t.Fatalf("embedded key: %q, %v", alg, err)
			}
			var got protocol.EnrollClaims
			if err := p.Verify(jwk, &got); err != nil || got.Activation != "a.b" {
				t.Fatalf("verify with the embedded key: %+v, %v", got, err)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	kp := keyPairs(t)
	ec, ed := kp[0], kp[1]
	good, err := protocol.Sign(ec.alg, ec.priv, protocol.TypAnswer, "dev-1", false, answer())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	edPub := ed.pub.(ed25519.PublicKey)
	ecPubBytes, _ := x509.MarshalPKIXPublicKey(ec.pub)
	payload := b64.EncodeToString(mustJSON(t, answer()))

	big := answer()
	big.Number = strings.Repeat("1", protocol.MaxJWS)
	oversized, err := protocol.Sign(ec.alg, ec.priv, protocol.TypAnswer, "dev-1", false, big)
	if err != nil {
		t.Fatal(err)
	}
	wrongTyp, _ := protocol.Sign(ec.alg, ec.priv, protocol.TypProof, "dev-1", false, answer())
	noTyp := rawJWS(t, map[string]any{"alg": "ES256", "kid": "dev-1"}, payload, ecSign(t, ec.priv.(*ecdsa.PrivateKey)))
	upperTyp := rawJWS(t, map[string]any{"alg": "ES256", "kid": "dev-1", "typ": strings.ToUpper(protocol.TypAnswer)}, payload, ecSign(t, ec.priv.(*ecdsa.PrivateKey)))

	// JSON serialisations, flattened and general with two signatures.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ec.priv}, (&jose.SignerOptions{}).WithType(protocol.TypAnswer))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(mustJSON(t, answer()))
	if err != nil {
		t.Fatal(err)
	}
	flattened := obj.FullSerialize()
	multi, err := jose.NewMultiSigner([]jose.SigningKey{{Algorithm: jose.ES256, Key: ec.priv}, {Algorithm: jose.EdDSA, Key: ed.priv}}, (&jose.SignerOptions{}).WithType(protocol.TypAnswer))
	if err != nil {
		t.Fatal(err)
	}
	mobj, err := multi.Sign(mustJSON(t, answer()))
	if err != nil {
		t.Fatal(err)
	}
	twoSigs := mobj.FullSerialize()
	if !strings.Contains(twoSigs, `"signatures"`) {
		t.Fatalf("not a general serialisation: %s", twoSigs)
	}

	none := rawJWS(t, map[string]any{"alg": "none", "typ": protocol.TypAnswer, "kid": "dev-1"}, payload, nil)
	noneUpper := rawJWS(t, map[string]any{"alg": "NONE", "typ": protocol.TypAnswer, "kid": "dev-1"}, payload, nil)
	hmacWith := func(secret []byte) string {
		h := b64.EncodeToString(mustJSON(t, map[string]any{"alg": "HS256", "typ": protocol.TypAnswer, "kid": "dev-1"}))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(h + "." + payload))
		return h + "." + payload + "." + b64.EncodeToString(m.Sum(nil))
	}
	edJWK, _ := jose.JSONWebKey{Key: edPub}.MarshalJSON()
	es384 := rawJWS(t, map[string]any{"alg": "ES384", "typ": protocol.TypAnswer, "kid": "dev-1"}, payload, make([]byte, 96))
	rs256 := rawJWS(t, map[string]any{"alg": "RS256", "typ": protocol.TypAnswer, "kid": "dev-1"}, payload, make([]byte, 256))

	for _, tc := range []struct {
		name, jws string
		algs      []jose.SignatureAlgorithm
	}{
		{"empty", "", protocol.DeviceAlgorithms()},
		{"garbage", "not a jws", protocol.DeviceAlgorithms()},
		{"two parts", parts[0] + "." + parts[1], protocol.DeviceAlgorithms()},
		{"four parts", good + ".x", protocol.DeviceAlgorithms()},
		{"five parts (JWE shape)", good + ".x.y", protocol.DeviceAlgorithms()},
		{"bad base64 header", "!!!." + parts[1] + "." + parts[2], protocol.DeviceAlgorithms()},
		{"header not JSON", b64.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], protocol.DeviceAlgorithms()},
		{"oversized", oversized, protocol.DeviceAlgorithms()},
		{"wrong typ", wrongTyp, protocol.DeviceAlgorithms()},
		{"missing typ", noTyp, protocol.DeviceAlgorithms()},
		{"typ in other case", upperTyp, protocol.DeviceAlgorithms()},
		{"JSON flattened", flattened, protocol.DeviceAlgorithms()},
		{"JSON with two signatures", twoSigs, protocol.DeviceAlgorithms()},
		{"alg none", none, protocol.DeviceAlgorithms()},
		{"alg NONE", noneUpper, protocol.DeviceAlgorithms()},
		{"HS256 keyed with the Ed25519 public key", hmacWith(edPub), protocol.DeviceAlgorithms()},
		{"HS256 keyed with the P-256 SPKI", hmacWith(ecPubBytes), protocol.DeviceAlgorithms()},
		{"HS256 keyed with the JWK", hmacWith(edJWK), protocol.DeviceAlgorithms()},
		{"ES384", es384, protocol.DeviceAlgorithms()},
		{"RS256", rs256, protocol.DeviceAlgorithms()},
		{"ES256 where only EdDSA is allowed", good, []jose.SignatureAlgorithm{jose.EdDSA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := protocol.Parse(tc.jws, protocol.TypAnswer, tc.algs)
			if err == nil {
				t.Fatalf("Parse accepted it: header %+v", p.Header)
			}
		})
	}
	if _, err := protocol.Parse(oversized, protocol.TypAnswer, protocol.DeviceAlgorithms()); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("oversized: %v, want refused for its size", err)
	}
}

// TestParseMaxSize: MaxJWS bytes is allowed, one more is not.
func TestParseMaxSize(t *testing.T) {
	kp := keyPairs(t)[1] // EdDSA: fixed-size signatures
	sized := func(n int) (string, bool) {
		for pad := 0; pad < protocol.MaxJWS; pad++ {
			c := answer()
			c.Number = strings.Repeat("1", pad)
			s, err := protocol.Sign(kp.alg, kp.priv, protocol.TypAnswer, "dev-1", false, c)
			if err != nil {
				t.Fatal(err)
			}
			if len(s) == n {
				return s, true
			}
			if len(s) > n {
				return "", false
			}
		}
		return "", false
	}
	for _, n := range []int{protocol.MaxJWS, protocol.MaxJWS - 1, protocol.MaxJWS - 2} {
		if s, ok := sized(n); ok {
			if _, err := protocol.Parse(s, protocol.TypAnswer, protocol.DeviceAlgorithms()); err != nil {
				t.Fatalf("a JWS of %d bytes (limit %d) is refused: %v", n, protocol.MaxJWS, err)
			}
			break
		}
	}
	for _, n := range []int{protocol.MaxJWS + 1, protocol.MaxJWS + 2, protocol.MaxJWS + 3} {
		if s, ok := sized(n); ok {
			if _, err := protocol.Parse(s, protocol.TypAnswer, protocol.DeviceAlgorithms()); err == nil {
				t.Fatalf("a JWS of %d bytes (limit %d) is accepted", n, protocol.MaxJWS)
			}
			return
		}
	}
	t.Fatal("could not make a JWS just over the limit")
}

func TestVerifyRefuses(t *testing.T) {
	kp := keyPairs(t)
	ec, ed := kp[0], kp[1]
	for _, k := range kp {
		t.Run(k.alg, func(t *testing.T) {
			good, err := protocol.Sign(k.alg, k.priv, protocol.TypAnswer, "dev-1", false, answer())
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(good, ".")
			tampered := answer()
			tampered.Decision = protocol.Deny
			otherPayload := b64.EncodeToString(mustJSON(t, tampered))
			sig, _ := b64.DecodeString(parts[2])
			flipped := append([]byte(nil), sig...)
			flipped[len(flipped)-1] ^= 1
			hdr := header(t, good)
			hdr["kid"] = "dev-2"
			otherHeader := b64.EncodeToString(mustJSON(t, hdr))
			for _, tc := range []struct{ name, jws string }{
				{"tampered payload", parts[0] + "." + otherPayload + "." + parts[2]},
				{"tampered header", otherHeader + "." + parts[1] + "." + parts[2]},
				{"flipped signature bit", parts[0] + "." + parts[1] + "." + b64.EncodeToString(flipped)},
				{"empty signature", parts[0] + "." + parts[1] + "."},
				{"truncated signature", parts[0] + "." + parts[1] + "." + b64.EncodeToString(sig[:len(sig)-1])},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p, err := protocol.Parse(tc.jws, protocol.TypAnswer, protocol.DeviceAlgorithms())
					if err != nil {
						return // refused early: fine
					}
					var got protocol.AnswerClaims
					if err := p.Verify(k.pub, &got); err == nil {
						t.Fatalf("verified: %+v", got)
					}
				})
			}
		})
	}
	t.Run("DER-encoded ES256", func(t *testing.T) {
		good, _ := protocol.Sign(ec.alg, ec.priv, protocol.TypAnswer, "dev-1", false, answer())
		parts := strings.Split(good, ".")
		raw, _ := b64.DecodeString(parts[2])
		der := derSignature(raw)
		p, err := protocol.Parse(parts[0]+"."+parts[1]+"."+b64.EncodeToString(der), protocol.TypAnswer, protocol.DeviceAlgorithms())
		if err != nil {
			return
		}
		var got protocol.AnswerClaims
		if p.Verify(ec.pub, &got) == nil {
			t.Fatal("a DER-encoded ES256 signature verified")
		}
		// And the conversion the doc describes gives back R||S.
		if conv := rawFromDER(t, der); !bytesEqual(conv, raw) {
			t.Fatalf("DER to R||S conversion: %x, want %x", conv, raw)
		}
	})
	t.Run("ES256 header over an EdDSA key", func(t *testing.T) {
		good, _ := protocol.Sign(ec.alg, ec.priv, protocol.TypAnswer, "dev-1", false, answer())
		p, err := protocol.Parse(good, protocol.TypAnswer, protocol.DeviceAlgorithms())
		if err != nil {
			t.Fatal(err)
		}
		var got protocol.AnswerClaims
		if p.Verify(ed.pub, &got) == nil {
			t.Fatal("an ES256 JWS verified with an Ed25519 key")
		}
	})
	t.Run("unknown critical header", func(t *testing.T) {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: ed.priv}, (&jose.SignerOptions{}).
			WithType(protocol.TypAnswer).WithHeader("crit", []string{"exp"}).WithHeader("exp", 1))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := signer.Sign(mustJSON(t, answer()))
		if err != nil {
			t.Fatal(err)
		}
		compact, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		p, err := protocol.Parse(compact, protocol.TypAnswer, protocol.DeviceAlgorithms())
		if err != nil {
			return
		}
		var got protocol.AnswerClaims
		if p.Verify(ed.pub, &got) == nil {
			t.Fatal("a JWS with an unknown critical header verified")
		}
	})
	t.Run("payload not an object", func(t *testing.T) {
		signed, err := protocol.Sign(ed.alg, ed.priv, protocol.TypAnswer, "dev-1", false, []string{"approve"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := protocol.Parse(signed, protocol.TypAnswer, protocol.DeviceAlgorithms())
		if err != nil {
			t.Fatal(err)
		}
		var got protocol.AnswerClaims
		if p.Verify(ed.pub, &got) == nil {
			t.Fatal("a JSON array payload decoded as answer claims")
		}
	})
}

func TestHashes(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	abc, _ := hex.DecodeString("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
	// SHA-256(""), FIPS 180-4 examples.
	empty, _ := hex.DecodeString("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	for _, tc := range []struct {
		name, got, want string
	}{
		{"ChallengeHash(abc)", protocol.ChallengeHash("abc"), b64.EncodeToString(abc)},
		{"BodyHash(abc)", protocol.BodyHash([]byte("abc")), b64.EncodeToString(abc)},
		{"BodyHash(empty)", protocol.BodyHash(nil), b64.EncodeToString(empty)},
		{"SPKIPin(abc)", protocol.SPKIPin([]byte("abc")), b64.EncodeToString(abc)},
		// The same values written out, so the encoding (base64url, no
		// padding) is pinned too.
		{"ChallengeHash literal", protocol.ChallengeHash("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"},
		{"BodyHash literal", protocol.BodyHash(nil), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	// chash is over the JWS's ASCII bytes exactly as received: one byte
	// more is another hash.
	if protocol.ChallengeHash("a.b.c") == protocol.ChallengeHash("a.b.c\n") {
		t.Error("ChallengeHash ignores a trailing newline")
	}
}

func TestSPKIPin(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	if got, want := protocol.SPKIPin(der), b64.EncodeToString(sum[:]); got != want {
		t.Fatalf("SPKIPin = %q, want %q", got, want)
	}
}

func TestThumbprint(t *testing.T) {
	// RFC 7638 section 3.1.
	var rsaKey jose.JSONWebKey
	if err := json.Unmarshal([]byte(`{"kty":"RSA",
		"n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
		"e":"AQAB","alg":"RS256","kid":"2011-04-29"}`), &rsaKey); err != nil {
		t.Fatal(err)
	}
	// RFC 8037 appendix A.3.
	var edKey jose.JSONWebKey
	if err := json.Unmarshal([]byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`), &edKey); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  jose.JSONWebKey
		want string
	}{
		{"RFC 7638 RSA", rsaKey, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC 8037 Ed25519", edKey, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
	} {
		got, err := protocol.Thumbprint(tc.key)
		if err != nil || got != tc.want {
			t.Errorf("%s: Thumbprint = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}

	// A P-256 key, computed by hand: SHA-256 over the required members in
	// lexicographic order, no whitespace.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x, y := coordinates(t, &k.PublicKey)
	canon := `{"crv":"P-256","kty":"EC","x":"` + b64.EncodeToString(x) + `","y":"` + b64.EncodeToString(y) + `"}`
	sum := sha256.Sum256([]byte(canon))
	got, err := protocol.Thumbprint(jose.JSONWebKey{Key: &k.PublicKey, KeyID: "ignored", Algorithm: "ES256", Use: "sig"})
	if err != nil || got != b64.EncodeToString(sum[:]) {
		t.Errorf("P-256: Thumbprint = %q, %v; want %q", got, err, b64.EncodeToString(sum[:]))
	}
	// And an Ed25519 key by hand.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	canon = `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`
	sum = sha256.Sum256([]byte(canon))
	got, err = protocol.Thumbprint(jose.JSONWebKey{Key: pub})
	if err != nil || got != b64.EncodeToString(sum[:]) {
		t.Errorf("Ed25519: Thumbprint = %q, %v; want %q", got, err, b64.EncodeToString(sum[:]))
	}
	if _, err := protocol.Thumbprint(jose.JSONWebKey{}); err == nil {
		t.Error("Thumbprint of an empty key succeeded")
	}
}

// helpers

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func header(t *testing.T, compact string) map[string]any {
	t.Helper()
	h, err := b64.DecodeString(strings.Split(compact, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(h, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// rawJWS assembles a compact JWS from a header, an encoded payload and a
// signature (or, with sign set by ecSign, an ES256 signature over them).
func rawJWS(t *testing.T, hdr map[string]any, payload string, sig any) string {
	t.Helper()
	h := b64.EncodeToString(mustJSON(t, hdr))
	input := h + "." + payload
	switch s := sig.(type) {
	case nil:
		return input + "."
	case []byte:
		return input + "." + b64.EncodeToString(s)
	case func(string) []byte:
		return input + "." + b64.EncodeToString(s(input))
	}
	t.Fatalf("signature of type %T", sig)
	return ""
}

func ecSign(t *testing.T, key *ecdsa.PrivateKey) func(string) []byte {
	return func(input string) []byte {
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// derSignature re-encodes an R||S signature as ASN.1 DER, as keystores
// return it.
func derSignature(raw []byte) []byte {
	enc := func(b []byte) []byte {
		b = new(big.Int).SetBytes(b).Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{2, byte(len(b))}, b...)
	}
	body := append(enc(raw[:32]), enc(raw[32:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// rawFromDER is the conversion docs/device-protocol.md tells app
// developers to do: strip the DER, left-pad R and S to 32 bytes each.
func rawFromDER(t *testing.T, der []byte) []byte {
	t.Helper()
	if len(der) < 8 || der[0] != 0x30 || int(der[1]) != len(der)-2 {
		t.Fatalf("not a DER SEQUENCE: %x", der)
	}
	rest := der[2:]
	out := make([]byte, 0, 64)
	for range 2 {
		if rest[0] != 0x02 {
			t.Fatalf("not an INTEGER: %x", rest)
		}
		n := int(rest[1])
		v := rest[2 : 2+n]
		rest = rest[2+n:]
		for len(v) > 0 && v[0] == 0 {
			v = v[1:] // drop the sign byte and leading zeros
		}
		if len(v) > 32 {
			t.Fatalf("integer of %d bytes", len(v))
		}
		out = append(out, make([]byte, 32-len(v))...)
		out = append(out, v...)
	}
	return out
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// coordinates returns a P-256 public key's x and y, 32 bytes each.
func coordinates(t *testing.T, k *ecdsa.PublicKey) (x, y []byte) {
	t.Helper()
	b, err := k.Bytes() // 0x04 || x || y
	if err != nil || len(b) != 65 {
		t.Fatalf("encoding the public key: %v", err)
	}
	return b[1:33], b[33:]
}
