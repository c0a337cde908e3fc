package webpush

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// VAPID JWTs (RFC 8292 §2).
const (
	// jwtLifetime is how far ahead a JWT's exp is set: RFC 8292 allows at
	// most 24 hours, push services such as FCM refuse more; 12 hours is
	// what the RFC's example and the browsers' libraries use.
	jwtLifetime = 12 * time.Hour
	// jwtReuse is how long a JWT is reused for the same origin and key:
	// signing one per push would cost an ECDSA signature each time, and
	// push services accept a JWT as long as it is not expired. A reused
	// JWT still has at least jwtLifetime-jwtReuse to live.
	jwtReuse = time.Hour
	// maxCachedJWTs bounds the cache (one entry per push-service origin
	// and VAPID key); when full it starts again empty.
	maxCachedJWTs = 256
)

// vapidClaims is the JWT's claims set: aud the push resource's origin,
// exp, sub the operator's contact.
type vapidClaims struct {
	Audience string `json:"aud"`
	Expires  int64  `json:"exp"`
	Subject  string `json:"sub"`
}

type jwtKey struct{ origin, kid string }

type cachedJWT struct {
	header string // the whole Authorization value
	issued time.Time
}

// jwtCache makes and keeps the Authorization headers.
type jwtCache struct {
	subject string
	mu      sync.Mutex
	m       map[jwtKey]cachedJWT
}

// authorization returns "vapid t=<JWT>, k=<key>" (RFC 8292 §3) for a push
// to origin signed by signer, whose public key (uncompressed point) is pub.
func (c *jwtCache) authorization(origin, kid string, signer crypto.Signer, pub []byte, now time.Time) (string, error) {
	k := jwtKey{origin, kid}
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && !now.Before(e.issued) && now.Sub(e.issued) < jwtReuse {
		return e.header, nil
	}
	jwt, err := signJWT(signer, vapidClaims{Audience: origin, Expires: now.Add(jwtLifetime).Unix(), Subject: c.subject})
	if err != nil {
		return "", err
	}
	h := "vapid t=" + jwt + ", k=" + base64.RawURLEncoding.EncodeToString(pub)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedJWTs {
		c.m = map[jwtKey]cachedJWT{}
	}
	c.m[k] = cachedJWT{header: h, issued: now}
	c.mu.Unlock()
	return h, nil
}

// signJWT signs claims as a compact JWS with ES256 and typ JWT. go-jose
// writes the raw R||S signature JWS wants.
func signJWT(signer crypto.Signer, claims vapidClaims) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signer}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("webpush: VAPID signer: %w", err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("webpush: signing the VAPID JWT: %w", err)
	}
	return obj.CompactSerialize()
}
