package store

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// UserStatus says whether a user may log in.
type UserStatus string

const (
	UserActive   UserStatus = "active"
	UserDisabled UserStatus = "disabled"
)

// User is a local user record. Users found in LDAP need no record; a record
// with the same name may still hold their devices and second factors.
type User struct {
	Name        string // normalised login name, unique (see NormalizeUsername)
	DisplayName string
	Email       string
	Groups      []string
	Status      UserStatus
	// PasswordHash is a PHC string (argon2id); empty means the user has no
	// local password.
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// MaxUsernameLen bounds login names (bytes, after normalisation).
const MaxUsernameLen = 256

// NormalizeUsername returns the canonical form of a login name: NFC, lower
// case, surrounding space trimmed. It rejects empty names, names that are too
// long, and names with control characters.
func NormalizeUsername(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: user name is not valid UTF-8", ErrInvalid)
	}
	n := strings.ToLower(norm.NFC.String(strings.TrimSpace(name)))
	if n == "" {
		return "", fmt.Errorf("%w: user name is empty", ErrInvalid)
	}
	if len(n) > MaxUsernameLen {
		return "", fmt.Errorf("%w: user name is longer than %d bytes", ErrInvalid, MaxUsernameLen)
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("%w: user name contains a control character", ErrInvalid)
		}
	}
	return n, nil
}

// DeviceStatus says whether a device may answer challenges.
type DeviceStatus string

const (
	DeviceActive  DeviceStatus = "active"
	DeviceRevoked DeviceStatus = "revoked"
)

// Device is an enrolled authenticator (a phone, or the reference
// authenticator). Its private key never leaves it; the store keeps the
// public key as a JWK.
type Device struct {
	ID        string
	User      string
	Name      string
	Platform  string // android, ios, web, other
	KeyAlg    string // ES256 or EdDSA
	PublicJWK []byte // JSON Web Key of the device's public key (its request key)
	// Kind is how the device signs its answers: "" (DeviceKindJWS) with
	// the key of PublicJWK, DeviceKindWebAuthn with the passkey of
	// WebAuthn.
	Kind string
	// WebAuthn is the passkey of a DeviceKindWebAuthn device; nil for
	// others.
	WebAuthn *WebAuthnCredential
	// PushProvider is fcm, apns or empty (poll only); PushToken the
	// provider's token; PushTokenStale is set when the provider said the
	// token is no longer valid (the device keeps working over long-poll).
	PushProvider   string
	PushToken      string
	PushTokenStale bool
	AppVersion     string
	Posture        []byte // JSON object of posture signals reported at enrollment
	Status         DeviceStatus
	CreatedAt      time.Time
	LastSeenAt     time.Time // zero if never seen since enrollment
	RevokedAt      time.Time // zero unless revoked
}

// Device kinds.
const (
	DeviceKindJWS      = ""         // answers are JWS by the device key (native apps, terminal authenticator)
	DeviceKindWebAuthn = "webauthn" // answers are WebAuthn assertions by a passkey (the web app)
)

// WebAuthnCredential is a passkey as registered at enrollment, and its
// signature counter since.
type WebAuthnCredential struct {
	CredentialID []byte `json:"id"`
	PublicKey    []byte `json:"public_key"` // COSE_Key, as in the attested credential data
	// SignCount is the highest signature counter seen; 0 for a passkey
	// that does not count.
	SignCount uint32 `json:"sign_count"`
	AAGUID    []byte `json:"aaguid,omitempty"`
	// AttestationFormat is the registration's attestation statement
	// format ("none", "packed", ...); AttestationType what its
	// verification found ("none", "self", "basic_full", ...).
	AttestationFormat string `json:"attestation_format"`
	AttestationType   string `json:"attestation_type,omitempty"`
	// AttestationVerified is set when the statement's format is not none
	// and its signature verified. No vendor metadata (FIDO MDS) is
	// consulted: it proves the statement is consistent, not who made the
	// authenticator.
	AttestationVerified bool `json:"attestation_verified"`
	// AttestationTrusted is set when, besides, the statement's certificate
	// chain reached a root the bridge trusts at enrollment: one the
	// WebAuthn library pins for its format (apple, android-key) or one of
	// the operator's app.attestation_roots (packed, tpm, fido-u2f). Only
	// then does the device meet device_keys: attested.
	AttestationTrusted bool     `json:"attestation_trusted,omitempty"`
	BackupEligible     bool     `json:"backup_eligible"`
	BackedUp           bool     `json:"backed_up"`
	Transports         []string `json:"transports,omitempty"`
	RPID               string   `json:"rp_id"`
}

// KeyPurpose says what a server key signs.
type KeyPurpose string

const (
	PurposePush KeyPurpose = "push" // push challenges (EdDSA)
	PurposeOIDC KeyPurpose = "oidc" // ID and access tokens
	PurposeSAML KeyPurpose = "saml" // assertions and metadata
	// PurposeVAPID is the Web Push application server key (RFC 8292,
	// ES256): it signs the VAPID JWT of every push to a browser.
	PurposeVAPID KeyPurpose = "vapid"
)

// KeyStatus is the life stage of a server key.
type KeyStatus string

const (
	// KeyActive keys sign. There is at most one per purpose and algorithm.
	KeyActive KeyStatus = "active"
	// KeyRetired keys only verify, until VerifyUntil.
	KeyRetired KeyStatus = "retired"
)

// SigningKey is a server key. The private key is sealed (encrypted and
// authenticated) by the keys package before it reaches the store.
type SigningKey struct {
	ID          string // key id (kid)
	Purpose     KeyPurpose
	Algorithm   string // EdDSA, ES256, RS256
	PublicDER   []byte // PKIX, DER
	SealedPriv  []byte // PKCS#8 DER, sealed under the key-encryption key
	Status      KeyStatus
	CreatedAt   time.Time
	RetiredAt   time.Time // zero while active
	VerifyUntil time.Time // zero while active
	// Endorsement is a compact JWS by the key this one replaced, naming
	// this key as its successor, so devices that pinned the old key can
	// trust this one; empty for a key that replaced none, or one whose
	// purpose is not endorsed.
	Endorsement string
}

// AuditResult is the outcome recorded in an audit event.
type AuditResult string

const (
	ResultSuccess AuditResult = "success"
	ResultFailure AuditResult = "failure"
	ResultDenied  AuditResult = "denied"
	ResultError   AuditResult = "error"
)

// AuditEvent is one entry in the hash-chained audit log. Seq, PrevHash and
// Hash are assigned by AppendAudit.
type AuditEvent struct {
	Seq      int64
	Time     time.Time
	Actor    string // who acted: "cli:root", "user:alice", "system"
	Action   string // what: "login", "user.create", "key.rotate", ...
	Subject  string // on whom or what: a user name, a key id
	Channel  string // where: radius, oidc, saml, cli, admin, device
	ClientIP string
	Result   AuditResult
	Reason   string
	Details  map[string]string
	PrevHash []byte
	Hash     []byte
}

// AuditHead is the end of the chain as recorded by the last append.
type AuditHead struct {
	Seq  int64
	Hash []byte
}

// TOTP is a user's RFC 6238 soft token. The secret is sealed.
type TOTP struct {
	User         string
	SealedSecret []byte
	Algorithm    string // SHA1, SHA256, SHA512
	Digits       int
	Period       time.Duration
	// LastCounter is the time step of the last accepted code; codes of this
	// step or older are refused. -1 when no code was used yet.
	LastCounter int64
	CreatedAt   time.Time
}

// BypassCode is a temporary access code an operator issues, for example for
// a user who lost their phone. Only a hash of the code is kept.
type BypassCode struct {
	ID        string // random record id
	User      string
	Hash      []byte // salted hash of the code (format owned by the otp package)
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}
