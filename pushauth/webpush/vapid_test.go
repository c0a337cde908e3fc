package webpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

// The Authorization header has RFC 8292's shape: "vapid t=<JWT>, k=<key>",
// the JWT a compact JWS with header {"typ":"JWT","alg":"ES256"}, claims
// aud, exp and sub only, and a raw 64-byte R||S signature by k's key.
func TestVAPIDHeaderShape(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdhPub, _ := priv.PublicKey.ECDH()
	pub := ecdhPub.Bytes()
	now := time.Unix(1_900_000_000, 0)
	c := &jwtCache{subject: "mailto:ops@example.org"}
	h, err := c.authorization("https://fcm.googleapis.com", "kid1", priv, pub, now)
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(h, "vapid t=")
	if !ok {
		t.Fatalf("header %q does not start with vapid t=", h)
	}
	jwt, k, ok := strings.Cut(rest, ", k=")
	if !ok || k != base64.RawURLEncoding.EncodeToString(pub) {
		t.Fatalf("header %q: k is not the public key", h)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT %q has %d parts", jwt, len(parts))
	}
	var hdr map[string]any
	decodeJSON(t, parts[0], &hdr)
	if len(hdr) != 2 || hdr["alg"] != "ES256" || hdr["typ"] != "JWT" {
		t.Errorf("JWT header %v, want {alg: ES256, typ: JWT}", hdr)
	}
	var claims map[string]any
	decodeJSON(t, parts[1], &claims)
	want := map[string]any{"aud": "https://fcm.googleapis.com", "exp": float64(now.Add(12 * time.Hour).Unix()), "sub": "mailto:ops@example.org"}
	if len(claims) != 3 || claims["aud"] != want["aud"] || claims["exp"] != want["exp"] || claims["sub"] != want["sub"] {
		t.Errorf("claims %v, want %v", claims, want)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature is %d bytes (%v), want 64 (raw R||S)", len(sig), err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(&priv.PublicKey, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("the signature does not verify")
	}

	// Reused for the same origin and key within the hour, not after, and
	// never across origins or keys.
	for _, tc := range []struct {
		name        string
		origin, kid string
		at          time.Time
		same        bool
	}{
		{"same origin and key, later", "https://fcm.googleapis.com", "kid1", now.Add(59 * time.Minute), true},
		{"after an hour", "https://fcm.googleapis.com", "kid1", now.Add(time.Hour), false},
		{"other origin", "https://updates.push.services.mozilla.com", "kid1", now, false},
		{"other key", "https://fcm.googleapis.com", "kid2", now, false},
	} {
		c2 := &jwtCache{subject: c.subject}
		first, _ := c2.authorization("https://fcm.googleapis.com", "kid1", priv, pub, now)
		got, err := c2.authorization(tc.origin, tc.kid, priv, pub, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		if (got == first) != tc.same {
			t.Errorf("%s: reused = %v, want %v", tc.name, got == first, tc.same)
		}
	}
}

func decodeJSON(t *testing.T, part string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("%q is not base64url: %v", part, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}
