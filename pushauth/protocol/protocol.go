package protocol

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Version is the protocol version in paths and activation URLs.
const Version = "1"

// Paths, relative to the bridge's public base URL.
const (
	PathEnroll    = "/device/v1/enroll"
	PathDevice    = "/device/v1/device"
	PathPushKeys  = "/device/v1/push-keys"
	PathPending   = "/device/v1/challenges"
	PathChallenge = "/device/v1/challenges/" // + id
	SuffixAnswer  = "/answer"                // PathChallenge + id + SuffixAnswer
)

// ProofHeader carries a device request's proof (TypProof).
const ProofHeader = "Device-Proof"

// JWS "typ" values.
const (
	TypChallenge   = "bridge-challenge+jwt"
	TypEndorsement = "bridge-push-key+jwt"
	TypEnroll      = "bridge-enroll+jwt"
	TypProof       = "bridge-proof+jwt"
	TypAnswer      = "bridge-answer+jwt"
)

// Algorithms.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// DeviceAlgorithms returns the algorithms a device key may use.
func DeviceAlgorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}
}

// Limits on device input, enforced before any parsing.
const (
	MaxJWS         = 8 << 10  // bytes of one compact JWS
	MaxBody        = 16 << 10 // bytes of a request body
	MaxPushToken   = 4096
	MaxString      = 256 // app version, device name
	MaxPosture     = 16  // posture signals
	MaxPostureName = 64  // bytes of a posture signal's name
)

// Decisions a device can send.
const (
	Approve = "approve"
	Deny    = "deny"
	Fraud   = "fraud" // deny, and report "this wasn't me"
)

// Platforms.
const (
	PlatformAndroid = "android"
	PlatformIOS     = "ios"
	PlatformOther   = "other"
	PlatformWeb     = "web" // the bridge's own web app (PWA)
)

// Push providers a device may register a token for.
const (
	ProviderFCM  = "fcm"
	ProviderAPNs = "apns"
	// ProviderWebPush is Web Push (RFC 8030): the push token is a
	// WebPushSubscription as JSON.
	ProviderWebPush = "webpush"
)

// ChallengeClaims is the payload of a challenge (TypChallenge), signed by
// the server's push key. It tells the user who is logging in to what, from
// where; it never holds the number to type, which only the login side shows.
type ChallengeClaims struct {
	Issuer       string `json:"iss"` // the bridge's base URL
	ID           string `json:"cid"`
	User         string `json:"sub"`
	AppID        string `json:"app"`
	AppName      string `json:"app_name"`
	Channel      string `json:"channel"` // radius, oidc, saml
	ClientIP     string `json:"ip,omitempty"`
	UserAgent    string `json:"ua,omitempty"`
	Location     string `json:"loc,omitempty"`
	IssuedAt     int64  `json:"iat"`
	Expires      int64  `json:"exp"`
	NumberDigits int    `json:"nm,omitempty"` // digits the user must type; 0: no number matching
	// Keys is the application's device-key policy when it is stricter
	// than any: "hardware" or "attested". A device that does not qualify
	// cannot answer (and is not asked).
	Keys string `json:"keys,omitempty"`
}

// AnswerClaims is the payload of an answer (TypAnswer), signed by the
// device key; the JWS header's kid is the device id.
type AnswerClaims struct {
	ID       string `json:"cid"`
	Hash     string `json:"chash"` // ChallengeHash of the challenge JWS answered
	Decision string `json:"decision"`
	Number   string `json:"number,omitempty"` // what the user typed
	IssuedAt int64  `json:"iat"`
}

// ProofClaims is the payload of a request proof (TypProof), signed by the
// device key; kid is the device id. Like DPoP (RFC 9449) it binds one
// request: method, URL without query, time, a unique id, and the body.
type ProofClaims struct {
	JTI      string `json:"jti"` // at least 96 random bits, base64url
	Method   string `json:"htm"`
	URL      string `json:"htu"`
	IssuedAt int64  `json:"iat"`
	BodyHash string `json:"bh,omitempty"` // BodyHash of the body; absent when there is none
}

// EnrollClaims is the payload of an enrollment (TypEnroll), signed by the
// new device key whose public half is in the JWS "jwk" header. Signing the
// server-issued activation code proves possession of the key.
type EnrollClaims struct {
	Activation   string          `json:"act"` // the activation code from the QR code
	URL          string          `json:"htu"` // base URL + PathEnroll
	IssuedAt     int64           `json:"iat"`
	Platform     string          `json:"platform"`
	Name         string          `json:"name,omitempty"`
	AppVersion   string          `json:"app_version,omitempty"`
	PushProvider string          `json:"push_provider,omitempty"`
	PushToken    string          `json:"push_token,omitempty"`
	Posture      map[string]bool `json:"posture,omitempty"` // rooted, jailbroken, emulator, debugger, hooked
	// WebAuthn is the passkey the web app made for this enrollment
	// (platform "web"); its answers are then WebAuthn assertions.
	WebAuthn *WebAuthnRegistration `json:"webauthn,omitempty"`
}

// WebAuthnRegistration is a WebAuthn registration response (the
// PublicKeyCredential of navigator.credentials.create), every byte string
// base64url. Its challenge is EnrollWebAuthnChallenge.
type WebAuthnRegistration struct {
	ID                string   `json:"id"`
	ClientDataJSON    string   `json:"client_data_json"`
	AttestationObject string   `json:"attestation_object"`
	Transports        []string `json:"transports,omitempty"`
}

// WebAuthnAnswer is an answer made with a passkey: the answer's claims
// and the WebAuthn assertion (navigator.credentials.get) whose challenge
// is AnswerWebAuthnChallenge of them. Byte strings are base64url.
type WebAuthnAnswer struct {
	ID                string `json:"cid"`
	Hash              string `json:"chash"`
	Decision          string `json:"decision"`
	Number            string `json:"number,omitempty"`
	IssuedAt          int64  `json:"iat"`
	CredentialID      string `json:"credential_id"`
	ClientDataJSON    string `json:"client_data_json"`
	AuthenticatorData string `json:"authenticator_data"`
	Signature         string `json:"signature"`
	UserHandle        string `json:"user_handle,omitempty"`
}

// WebPushSubscription is the push token of a Web Push device: the
// browser's PushSubscription.toJSON() and the VAPID key it was made with.
type WebPushSubscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256DH string `json:"p256dh"` // the browser's ECDH public key, uncompressed P-256 point
		Auth   string `json:"auth"`   // 16-byte authentication secret
	} `json:"keys"`
	VAPID string `json:"vapid"` // the applicationServerKey used: uncompressed P-256 point
}

// EndorsementClaims is the payload of an endorsement (TypEndorsement): a
// push key signing its successor, so a device that pinned one key can
// follow rotations.
type EndorsementClaims struct {
	Key      jose.JSONWebKey `json:"jwk"`
	IssuedAt int64           `json:"iat"`
}

// EnrollResponse answers a successful enrollment.
type EnrollResponse struct {
	DeviceID string `json:"device_id"`
	User     string `json:"user"`
	// PushKeys are the server's push public keys; the device pins the one
	// whose thumbprint is in the activation URL and trusts others only
	// through Endorsements.
	PushKeys     jose.JSONWebKeySet `json:"push_keys"`
	Endorsements []string           `json:"endorsements,omitempty"`
}

// PushKeysResponse answers GET PathPushKeys.
type PushKeysResponse struct {
	PushKeys     jose.JSONWebKeySet `json:"push_keys"`
	Endorsements []string           `json:"endorsements,omitempty"`
}

// ChallengeItem is a challenge as the device receives it.
type ChallengeItem struct {
	ID     string `json:"id"`
	State  string `json:"state"` // pending, or how it closed
	Signed string `json:"challenge"`
}

// PendingResponse answers the long-poll GET PathPending.
type PendingResponse struct {
	Challenges []ChallengeItem `json:"challenges"`
}

// AnswerRequest is the body of POST PathChallenge+id+SuffixAnswer.
type AnswerRequest struct {
	Answer string `json:"answer,omitempty"`
	// WebAuthn is the answer of a passkey device, instead of Answer.
	WebAuthn *WebAuthnAnswer `json:"webauthn,omitempty"`
}

// AnswerResponse says how the challenge closed. FraudReported is set when
// a fraud report arrived after the challenge had closed otherwise
// (superseded, expired): the report was still taken (pushes locked, the
// operator alerted) and State says how the challenge had closed.
type AnswerResponse struct {
	State         string `json:"state"`
	FraudReported bool   `json:"fraud_reported,omitempty"`
}

// DeviceUpdate is the body of PUT PathDevice. Absent fields are unchanged;
// an empty push_token with a provider "" makes the device poll-only.
type DeviceUpdate struct {
	PushProvider *string         `json:"push_provider,omitempty"`
	PushToken    *string         `json:"push_token,omitempty"`
	AppVersion   *string         `json:"app_version,omitempty"`
	Posture      map[string]bool `json:"posture,omitempty"`
}

// Error is the body of every error response.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// Error codes.
const (
	ErrInvalidRequest  = "invalid_request"
	ErrInvalidProof    = "invalid_proof"
	ErrInvalidAnswer   = "invalid_answer"
	ErrUnknownDevice   = "unknown_device"
	ErrDeviceRevoked   = "device_revoked"
	ErrNotFound        = "not_found"
	ErrAlreadyAnswered = "already_answered"
	ErrExpired         = "expired"
	ErrInvalidCode     = "invalid_activation"
	ErrRateLimited     = "rate_limited"
	ErrServer          = "server_error"
)

var b64 = base64.RawURLEncoding

// EnrollWebAuthnChallenge is the WebAuthn challenge of a web app's
// registration: SHA-256("bridge-webauthn-enroll\n" + activation + "\n" +
// thumbprint of the enrollment's request key), so the passkey is bound to
// one activation and one request key.
func EnrollWebAuthnChallenge(activation, thumbprint string) []byte {
	h := sha256.Sum256([]byte("bridge-webauthn-enroll\n" + activation + "\n" + thumbprint))
	return h[:]
}

// AnswerWebAuthnChallenge is the WebAuthn challenge of an answer made with
// a passkey: SHA-256 of "bridge-answer/1\n" + cid + "\n" + chash + "\n" +
// decision + "\n" + number + "\n" + iat (decimal).
func AnswerWebAuthnChallenge(cid, chash, decision, number string, iat int64) []byte {
	h := sha256.Sum256([]byte("bridge-answer/1\n" + cid + "\n" + chash + "\n" + decision + "\n" + number + "\n" + strconv.FormatInt(iat, 10)))
	return h[:]
}

// ChallengeHash is what an answer names in "chash": base64url of SHA-256
// over the challenge's compact JWS exactly as received.
func ChallengeHash(signed string) string {
	h := sha256.Sum256([]byte(signed))
	return b64.EncodeToString(h[:])
}

// BodyHash is a proof's "bh": base64url of SHA-256 over the body bytes.
func BodyHash(body []byte) string {
	h := sha256.Sum256(body)
	return b64.EncodeToString(h[:])
}

// Thumbprint is a key's fingerprint: the RFC 7638 SHA-256 thumbprint,
// base64url. The server's push key id is its thumbprint.
func Thumbprint(k jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("protocol: thumbprint: %w", err)
	}
	return b64.EncodeToString(tp), nil
}

// SPKIPin is a TLS certificate pin: base64url of SHA-256 over the
// certificate's SubjectPublicKeyInfo (DER).
func SPKIPin(spkiDER []byte) string {
	h := sha256.Sum256(spkiDER)
	return b64.EncodeToString(h[:])
}

// DeviceKey checks a device's public key and returns its algorithm: an
// ECDSA P-256 key is ES256, an Ed25519 key EdDSA. Private keys, other
// curves and other key types are refused.
func DeviceKey(k jose.JSONWebKey) (string, error) {
	if !k.Valid() {
		return "", errors.New("protocol: the device key is not a valid JWK")
	}
	if !k.IsPublic() {
		return "", errors.New("protocol: the device key must be a public key")
	}
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", fmt.Errorf("protocol: device key curve %s is not P-256", pub.Curve.Params().Name)
		}
		if k.Algorithm != "" && k.Algorithm != AlgES256 {
			return "", fmt.Errorf("protocol: a P-256 key must be used with ES256, not %q", k.Algorithm)
		}
		return AlgES256, nil
	case ed25519.PublicKey:
		if k.Algorithm != "" && k.Algorithm != AlgEdDSA {
			return "", fmt.Errorf("protocol: an Ed25519 key must be used with EdDSA, not %q", k.Algorithm)
		}
		return AlgEdDSA, nil
	default:
		return "", fmt.Errorf("protocol: device key type %T is not supported (want EC P-256 or Ed25519)", k.Key)
	}
}

// Sign makes a compact JWS of claims with typ. kid names the key; with
// embedJWK the public key is embedded in a "jwk" header instead
// (enrollment). key is an *ecdsa.PrivateKey or ed25519.PrivateKey.
func Sign(alg string, key any, typ, kid string, embedJWK bool, claims any) (string, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	if embedJWK {
		opts.EmbedJWK = true
		key = jose.JSONWebKey{Key: key, Algorithm: alg}
	} else if kid != "" {
		key = jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("protocol: signer: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("protocol: encoding %s: %w", typ, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("protocol: signing %s: %w", typ, err)
	}
	return jws.CompactSerialize()
}

// Parsed is a compact JWS parsed but not yet verified.
type Parsed struct {
	jws    *jose.JSONWebSignature
	Header jose.Header
}

// Parse parses a compact JWS of type typ signed with one of algs, without
// verifying it: the caller looks at Header (kid, jwk) to choose the key,
// then calls Verify. It refuses oversized input, JSON serialisation, several
// signatures, a wrong or missing typ and unexpected critical headers.
func Parse(compact, typ string, algs []jose.SignatureAlgorithm) (*Parsed, error) {
	if len(compact) > MaxJWS {
		return nil, fmt.Errorf("protocol: %s is longer than %d bytes", typ, MaxJWS)
	}
	if compact == "" {
		return nil, fmt.Errorf("protocol: %s is missing", typ)
	}
	jws, err := jose.ParseSignedCompact(compact, algs)
	if err != nil {
		return nil, fmt.Errorf("protocol: %s: %w", typ, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("protocol: %s must have exactly one signature", typ)
	}
	h := jws.Signatures[0].Protected
	got, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if got != typ {
		return nil, fmt.Errorf("protocol: JWS type is %q, want %q", got, typ)
	}
	return &Parsed{jws: jws, Header: h}, nil
}

// Verify checks the signature with key (a public key or jose.JSONWebKey)
// and decodes the payload into claims.
func (p *Parsed) Verify(key any, claims any) error {
	payload, err := p.jws.Verify(key)
	if err != nil {
		return fmt.Errorf("protocol: signature: %w", err)
	}
	if err := json.Unmarshal(payload, claims); err != nil {
		return fmt.Errorf("protocol: payload: %w", err)
	}
	return nil
}

// Activation is what an enrollment QR code holds.
type Activation struct {
	// BaseURL is the bridge's public base URL.
	BaseURL string
	// Code is the one-time activation code (id.secret).
	Code string
	// PushKey is the Thumbprint of the server's push key to pin.
	PushKey string
	// TLSPin, optional, is the SPKIPin of the bridge's TLS certificate.
	TLSPin string
}

// Scheme is the URL scheme of activation links.
const Scheme = "bridge"

// String formats the activation as a URL:
// bridge://enroll?v=1&url=<base>&code=<code>&pk=<thumbprint>[&tls=<pin>].
func (a Activation) String() string {
	q := url.Values{}
	q.Set("v", Version)
	q.Set("url", a.BaseURL)
	q.Set("code", a.Code)
	q.Set("pk", a.PushKey)
	if a.TLSPin != "" {
		q.Set("tls", a.TLSPin)
	}
	return Scheme + "://enroll?" + q.Encode()
}

// ParseActivation parses an activation URL.
func ParseActivation(s string) (Activation, error) {
	if len(s) > 2048 {
		return Activation{}, errors.New("protocol: activation URL is too long")
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return Activation{}, fmt.Errorf("protocol: activation URL: %w", err)
	}
	if u.Scheme != Scheme || u.Host != "enroll" {
		return Activation{}, fmt.Errorf("protocol: activation URL must start with %s://enroll?", Scheme)
	}
	q := u.Query()
	if v := q.Get("v"); v != Version {
		return Activation{}, fmt.Errorf("protocol: activation URL version %q is not supported (want %s)", v, Version)
	}
	a := Activation{BaseURL: q.Get("url"), Code: q.Get("code"), PushKey: q.Get("pk"), TLSPin: q.Get("tls")}
	base, err := url.Parse(a.BaseURL)
	switch {
	case err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "":
		return Activation{}, fmt.Errorf("protocol: activation URL: url %q is not an http(s) URL", a.BaseURL)
	case base.User != nil || base.RawQuery != "" || base.Fragment != "" || strings.HasSuffix(a.BaseURL, "?") || strings.Contains(a.BaseURL, "#"):
		return Activation{}, fmt.Errorf("protocol: activation URL: url %q must have no user, query or fragment", a.BaseURL)
	case a.TLSPin != "" && base.Scheme != "https":
		return Activation{}, errors.New("protocol: activation URL pins a TLS key for a plain http bridge")
	case a.Code == "":
		return Activation{}, errors.New("protocol: activation URL has no code")
	case a.PushKey == "":
		return Activation{}, errors.New("protocol: activation URL has no push key fingerprint (pk)")
	}
	a.BaseURL = strings.TrimRight(a.BaseURL, "/")
	return a, nil
}
