package pushauth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults for Config.
const (
	DefaultChallengeTTL    = 60 * time.Second
	DefaultNumberDigits    = 2
	DefaultProofMaxAge     = 60 * time.Second
	DefaultLongPoll        = 30 * time.Second
	DefaultActivationTTL   = 10 * time.Minute
	DefaultBackoffBase     = 5 * time.Second
	DefaultBackoffMax      = 15 * time.Minute
	DefaultMaxPerHour      = 20
	DefaultMaxPerIPMinute  = 30
	DefaultFraudLock       = time.Hour
	DefaultDeliveryTimeout = 10 * time.Second
	DefaultDeliveryWorkers = 32
	DefaultRetention       = 24 * time.Hour
	DefaultEnrollPerIP     = 10 // failed enrollments per IP per minute
	DefaultSweepInterval   = 5 * time.Second

	// MinChallengeTTL and MaxChallengeTTL bound the challenge lifetime
	// (SECURITY.md: 60-120 s; shorter is allowed for RADIUS hold mode).
	MinChallengeTTL = 10 * time.Second
	MaxChallengeTTL = 5 * time.Minute
)

// Config tunes the engine. Zero values take the defaults.
type Config struct {
	// BaseURL is the bridge's public base URL: challenges name it as
	// issuer and device proofs must name it. Required.
	BaseURL string
	// ChallengeTTL is how long a challenge can be answered.
	ChallengeTTL time.Duration
	// NumberDigits is the length of the number to match.
	NumberDigits int
	// ProofMaxAge is how far a device proof's iat may be from now.
	ProofMaxAge time.Duration
	// LongPoll is the longest a device's long-poll waits.
	LongPoll time.Duration
	// ActivationTTL is how long an enrollment code is valid.
	ActivationTTL time.Duration
	// BackoffBase and BackoffMax: after n denials or timeouts in a row, the
	// user's next push waits BackoffBase*2^(n-1), at most BackoffMax.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxPerHour caps the challenges one user gets in an hour.
	MaxPerHour int
	// MaxPerIPMinute caps the challenges started from one client IP in a
	// minute, per node.
	MaxPerIPMinute int
	// FraudLock is how long a fraud report blocks pushes to the user.
	FraudLock time.Duration
	// FraudWebhook, if set, receives a JSON POST for every fraud report.
	FraudWebhook Webhook
	// DeliveryTimeout bounds one push to FCM or APNs; DeliveryWorkers how
	// many run at once (the rest queue; a full queue drops the push and the
	// device still finds the challenge by long-poll).
	DeliveryTimeout time.Duration
	DeliveryWorkers int
	// Retention is how long closed challenges are kept (rate limits and
	// support questions) before the janitor deletes them.
	Retention time.Duration
	// EnrollPerIP caps failed enrollment attempts per client IP a minute.
	EnrollPerIP int
	// SweepInterval is how often Run closes challenges nobody waits for
	// once they expire.
	SweepInterval time.Duration

	// WebAuthnRPID is the WebAuthn relying party id the web app's passkeys
	// are bound to (config app.rp_id). Empty turns passkeys off: a base
	// URL on an IP address cannot have them; the web app then enrolls
	// software keys, which answer with JWS.
	WebAuthnRPID string
	// WebAuthnOrigins are origins besides the base URL's whose passkey
	// ceremonies are accepted (config app.origins). The base URL's origin
	// is always accepted.
	WebAuthnOrigins []string
	// WebAuthnAttestation is the attestation the web app asks for ("none"
	// or "direct", config (*File).AppAttestation); the engine verifies any
	// statement it gets either way. Default none.
	WebAuthnAttestation string
	// AttestationRoots are the operator's trusted roots for packed, tpm
	// and fido-u2f attestation chains (config app.attestation_roots;
	// default none). A passkey meets device_keys attested only when its
	// attestation chained to one of them, or to a root go-webauthn pins for
	// its format (apple, android-key); see attestation.go.
	AttestationRoots []*x509.Certificate
}

// origins are the origins passkey ceremonies may come from: the base
// URL's, then WebAuthnOrigins.
func (c Config) origins() []string {
	out := []string{}
	if u, err := url.Parse(c.BaseURL); err == nil && u.Host != "" {
		out = append(out, u.Scheme+"://"+u.Host)
	}
	for _, o := range c.WebAuthnOrigins {
		if o = strings.TrimSuffix(o, "/"); !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// Webhook is an HTTP endpoint told about fraud reports.
type Webhook struct {
	URL string
	// Secret, if set, signs each body: header Bridge-Signature is
	// "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body), with the
	// timestamp in header Bridge-Timestamp.
	Secret  []byte
	Timeout time.Duration // default 5s
}

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.ChallengeTTL, DefaultChallengeTTL)
	set(&c.ProofMaxAge, DefaultProofMaxAge)
	set(&c.LongPoll, DefaultLongPoll)
	set(&c.ActivationTTL, DefaultActivationTTL)
	set(&c.BackoffBase, DefaultBackoffBase)
	set(&c.BackoffMax, DefaultBackoffMax)
	set(&c.FraudLock, DefaultFraudLock)
	set(&c.DeliveryTimeout, DefaultDeliveryTimeout)
	set(&c.Retention, DefaultRetention)
	set(&c.SweepInterval, DefaultSweepInterval)
	set(&c.FraudWebhook.Timeout, 5*time.Second)
	if c.NumberDigits == 0 {
		c.NumberDigits = DefaultNumberDigits
	}
	if c.MaxPerHour == 0 {
		c.MaxPerHour = DefaultMaxPerHour
	}
	if c.MaxPerIPMinute == 0 {
		c.MaxPerIPMinute = DefaultMaxPerIPMinute
	}
	if c.DeliveryWorkers == 0 {
		c.DeliveryWorkers = DefaultDeliveryWorkers
	}
	if c.EnrollPerIP == 0 {
		c.EnrollPerIP = DefaultEnrollPerIP
	}
	if c.WebAuthnAttestation == "" {
		c.WebAuthnAttestation = "none"
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	return c
}

// Validate reports every problem at once (after defaults).
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.BaseURL)
	if c.BaseURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("pushauth: base URL %q is not an http(s) URL", c.BaseURL))
	}
	if c.ChallengeTTL < MinChallengeTTL || c.ChallengeTTL > MaxChallengeTTL {
		errs = append(errs, fmt.Errorf("pushauth: challenge lifetime %v is outside %v..%v", c.ChallengeTTL, MinChallengeTTL, MaxChallengeTTL))
	}
	if c.NumberDigits < 2 || c.NumberDigits > 8 {
		errs = append(errs, fmt.Errorf("pushauth: number matching digits %d is outside 2..8", c.NumberDigits))
	}
	if c.BackoffMax < c.BackoffBase {
		errs = append(errs, fmt.Errorf("pushauth: back-off max %v is below its base %v", c.BackoffMax, c.BackoffBase))
	}
	for name, v := range map[string]int{"max per hour": c.MaxPerHour, "max per IP a minute": c.MaxPerIPMinute, "delivery workers": c.DeliveryWorkers, "enroll attempts per IP": c.EnrollPerIP} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("pushauth: %s is negative", name))
		}
	}
	if c.FraudWebhook.URL != "" {
		if u, err := url.Parse(c.FraudWebhook.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("pushauth: fraud webhook %q is not an http(s) URL", c.FraudWebhook.URL))
		}
	}
	if rp := c.WebAuthnRPID; rp != "" && (net.ParseIP(rp) != nil || strings.ContainsAny(rp, "/:@ ") || rp != strings.ToLower(rp)) {
		errs = append(errs, fmt.Errorf("pushauth: WebAuthn RP ID %q is not a lower-case domain name", rp))
	}
	for _, o := range c.WebAuthnOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("pushauth: WebAuthn origin %q is not scheme://host[:port]", o))
		}
	}
	for i, r := range c.AttestationRoots {
		if r == nil {
			errs = append(errs, fmt.Errorf("pushauth: attestation root %d is nil", i))
		}
	}
	if c.WebAuthnAttestation != "none" && c.WebAuthnAttestation != "direct" {
		errs = append(errs, fmt.Errorf("pushauth: WebAuthn attestation %q is not none or direct", c.WebAuthnAttestation))
	}
	return errors.Join(errs...)
}
