package config

import (
	"net/netip"
	"time"

	"github.com/bridge-idp/bridge/directory/ldap"
	"github.com/bridge-idp/bridge/directory/local"
)

// File is bridge.yaml as written. Load decodes it strictly (unknown keys are
// errors), expands ${ENV} in values, applies the defaults written below to
// every key left out (an empty value, "key:" or "key: ~", counts as left
// out; an explicit zero is kept and validated), makes relative paths
// absolute, reads *_file secrets and validates it, reporting every problem
// with its key and line. See Config for the result.
type File struct {
	// DevMode relaxes what a production node insists on, for trying the
	// bridge on a laptop: without a configured KEK, one is generated into
	// data_dir/dev.kek. Logged as a warning at every start.
	DevMode bool `yaml:"dev_mode"`

	// DataDir holds files the bridge creates (the SQLite database by
	// default, dev.kek in dev mode). Relative paths in this file are
	// relative to the directory of the config file. Default ".".
	DataDir string `yaml:"data_dir"`

	Log       Log         `yaml:"log"`
	Storage   Storage     `yaml:"storage"`
	Keys      Keys        `yaml:"keys"`
	HTTP      HTTP        `yaml:"http"`
	Passwords Passwords   `yaml:"passwords"`
	TOTP      TOTP        `yaml:"totp"`
	Bypass    Bypass      `yaml:"bypass_codes"`
	Push      Push        `yaml:"push"`
	Radius    Radius      `yaml:"radius"`
	Web       Web         `yaml:"web"`
	OIDC      OIDC        `yaml:"oidc"`
	SAML      SAML        `yaml:"saml"`
	App       App         `yaml:"app"`
	Directory []Directory `yaml:"directories"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error. Default info.
	Format string `yaml:"format"` // text or json. Default text.
}

// Storage selects and configures the storage backend.
type Storage struct {
	// Driver is sqlite (default) or postgres.
	Driver   string   `yaml:"driver"`
	SQLite   SQLite   `yaml:"sqlite"`
	Postgres Postgres `yaml:"postgres"`
	// SweepInterval is how often expired short-lived records are deleted.
	// Default 1m.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// AuditSpool is where this node keeps audit events while the store
	// does not answer.
	AuditSpool AuditSpool `yaml:"audit_spool"`
}

// AuditSpool is this node's file of audit events the store could not take
// (it did not answer): a decision is sent only once its event is in the
// store or synced here, and the node appends the file to the store, in
// order, as soon as the store answers again (also after a restart). Each
// node needs a spool of its own, on a local disk.
type AuditSpool struct {
	// Path of the spool file. Default: beside the SQLite file
	// (sqlite.path + ".audit-spool") with sqlite, data_dir/audit.spool
	// with postgres.
	Path string `yaml:"path"`
	// MaxMB bounds the file, in MiB; when it is full, decisions that need
	// an audit event fail secure (an accept becomes a reject). Default 64.
	MaxMB int `yaml:"max_mb"`
}

// SQLite is the embedded default backend.
type SQLite struct {
	// Path of the database file. Default data_dir/bridge.db.
	Path string `yaml:"path"`
	// BusyTimeout is how long a writer waits for the file lock. Default 5s.
	BusyTimeout time.Duration `yaml:"busy_timeout"`
}

// Postgres is the backend for several nodes.
type Postgres struct {
	// DSN is a libpq connection string or postgres:// URL; it usually holds
	// a password, so write ${ENV} or use dsn_file, not both. Required with
	// driver postgres. After Load it holds the DSN read from dsn_file too.
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
	// MaxConns bounds the connection pool. Default 10.
	MaxConns int `yaml:"max_conns"`
}

// Keys configures the server's signing keys and their encryption at rest.
type Keys struct {
	// KEK is the key-encryption key (32 bytes as hex or base64); write
	// ${ENV} or use kek_file, not both. Required unless dev_mode is on.
	// After Load it holds the text read from kek_file too; Config.KEK
	// holds the decoded bytes.
	KEK     string `yaml:"kek"`
	KEKFile string `yaml:"kek_file"`
	// RotationOverlap is how long a rotated-out key still verifies. Default
	// 168h (7 days): longer than any token or challenge it signed.
	RotationOverlap time.Duration `yaml:"rotation_overlap"`
	// RefreshInterval is how often a running node re-reads keys from the
	// store, so a rotation on one node reaches the others. Default 1m.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// RSABits is the size of generated RSA keys (RS256): 2048, 3072 or
	// 4096. Default 3072.
	RSABits int `yaml:"rsa_bits"`
}

// HTTP configures the listeners.
type HTTP struct {
	// Public serves the device API and the login pages: reachable by phones
	// and browsers.
	Public Listener `yaml:"public"`
	// Admin serves health, metrics and (later) the admin API; optional,
	// so that admin traffic can stay on an internal address.
	Admin Listener `yaml:"admin"`
	// AdminAPI is the HTTP admin API on the admin listener (enrollment
	// activations as JSON, PNG or SVG). Off unless a token is set.
	AdminAPI AdminAPI `yaml:"admin_api"`
	// ShutdownTimeout bounds the graceful shutdown. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// DrainDelay is how long, on shutdown, the listeners keep serving after
	// /readyz turns 503, so that load balancers stop sending traffic
	// before connections are refused. Part of ShutdownTimeout: at least 0
	// and shorter than it. Default 0 (no delay).
	DrainDelay time.Duration `yaml:"drain_delay"`
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout bound each
	// connection. Defaults 5s, 30s, 60s (long-polls need it), 120s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
}

// AdminAPI authenticates callers of the admin API with a bearer token.
type AdminAPI struct {
	// Token is the bearer token (at least 32 bytes; make one with
	// `openssl rand -hex 32`); write ${ENV} or use token_file, not both.
	// Setting it turns the API on; it needs http.admin.listen. After Load
	// it holds the token read from token_file too.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// Listener is one HTTP(S) listener.
type Listener struct {
	// Listen is host:port (port 0: any free port). Empty disables the
	// admin listener, which must not share the public listener's address;
	// the public listener defaults to 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// BaseURL is how phones and browsers reach this listener (public only);
	// it goes into enrollment QR codes and redirects. An absolute http(s)
	// URL, possibly with a path; a trailing slash is dropped. Default
	// derived from listen (all interfaces written as localhost); required
	// with storage.driver postgres, where every node must use the same one.
	BaseURL string `yaml:"base_url"`
	// TLS serves HTTPS from these files.
	TLS TLS `yaml:"tls"`
	// AllowPlainHTTP must be set to serve without TLS (behind a TLS
	// terminating proxy, or on loopback for a trial). Logged as a warning
	// unless the address is loopback. Ignored when TLS is set.
	AllowPlainHTTP bool `yaml:"allow_plain_http"`
	// TrustedProxies (public listener only) are the addresses or CIDR
	// prefixes of the reverse proxies in front of the bridge. A request
	// from one of them is taken to come from the client its
	// X-Forwarded-For names (for rate limits, the audit log and what the
	// phone shows); from anywhere else the header is ignored. Default
	// none. A prefix of everything (0.0.0.0/0, ::/0) is an error: anyone
	// could then choose their address.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Proxies returns TrustedProxies parsed (Load has checked them).
func (l Listener) Proxies() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(l.TrustedProxies))
	for _, s := range l.TrustedProxies {
		if p, err := parseClientAddress(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// TLS is a certificate and key in PEM files; both or neither. Load checks
// that they are readable and match.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Passwords configures local password hashing.
type Passwords struct {
	// Argon2id: time, memory_kib and threads. Defaults 3, 65536, 2; at
	// least 1, 19456 (OWASP's minimum), 1.
	Argon2id local.Argon2 `yaml:"argon2id"`
}

// TOTP configures RFC 6238 soft tokens.
type TOTP struct {
	// Issuer is shown in authenticator apps. Default "Bridge".
	Issuer string `yaml:"issuer"`
	// Algorithm is SHA1 (default; what most apps support), SHA256 or SHA512.
	Algorithm string `yaml:"algorithm"`
	// Digits is 6 (default) or 8.
	Digits int `yaml:"digits"`
	// Period is the time step, whole seconds up to 10m. Default 30s.
	Period time.Duration `yaml:"period"`
	// Skew is how many steps before and after the current one are accepted,
	// for phone clocks that drift: 0 to 10. Default 1.
	Skew int `yaml:"skew"`
}

// Bypass configures operator-issued one-time bypass codes.
type Bypass struct {
	// TTL is the default lifetime of a code. Default 1h.
	TTL time.Duration `yaml:"ttl"`
	// MaxTTL caps what an operator may ask for; at least TTL. Default 72h.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// Digits is the length of a code. Default 10; from 8 to 20.
	Digits int `yaml:"digits"`
}

// Push configures the push approval engine: challenges sent to enrolled
// phones, answered by number matching, and the services that wake the app
// (FCM for Android, APNs for iOS; without either, the app finds challenges
// by long-poll).
type Push struct {
	// ChallengeTTL is how long a challenge can be answered: from 10s to 5m.
	// Default 60s.
	ChallengeTTL time.Duration `yaml:"challenge_ttl"`
	// NumberDigits is the length of the number the user matches on the
	// phone: from 2 to 8. Default 2.
	NumberDigits int `yaml:"number_digits"`
	// ProofMaxAge is how far the time in a device's signed proof may be
	// from the server's: from 5s to 10m. Default 60s.
	ProofMaxAge time.Duration `yaml:"proof_max_age"`
	// LongPoll is the longest a device's long-poll waits: from 1s to 5m,
	// and below http.write_timeout (else a warning: the server would cut
	// the poll off). Default 30s.
	LongPoll time.Duration `yaml:"long_poll"`
	// ActivationTTL is how long an enrollment code (QR code) is valid: from
	// 1m to 168h (7 days). Default 10m.
	ActivationTTL time.Duration `yaml:"activation_ttl"`
	// BackoffBase and BackoffMax: after n denied or unanswered pushes in a
	// row, a user's next push waits BackoffBase*2^(n-1), at most
	// BackoffMax. BackoffBase is positive, BackoffMax at least BackoffBase.
	// Defaults 5s and 15m.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
	// MaxPerHour caps the pushes one user gets in an hour; at least 1.
	// Default 20.
	MaxPerHour int `yaml:"max_per_hour"`
	// MaxPerIPMinute caps the pushes started from one client IP address in
	// a minute, per node; at least 1. Default 30.
	MaxPerIPMinute int `yaml:"max_per_ip_minute"`
	// FraudLock is how long a user's "this was not me" report blocks
	// pushes to that user. 0 means a report does not lock (logged as a
	// warning); not negative. Default 1h.
	FraudLock time.Duration `yaml:"fraud_lock"`
	// DeliveryTimeout bounds one push to FCM or APNs: from 1s to 2m.
	// Default 10s.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
	// DeliveryWorkers is how many pushes are sent at once: from 1 to 1024.
	// Default 32.
	DeliveryWorkers int `yaml:"delivery_workers"`
	// Retention is how long closed challenges are kept (for rate limits
	// and support questions) before they are deleted; at least 1h.
	// Default 24h.
	Retention time.Duration `yaml:"retention"`
	// EnrollPerIPMinute caps failed enrollment attempts from one client IP
	// address in a minute; at least 1. Default 10.
	EnrollPerIPMinute int `yaml:"enroll_per_ip_minute"`
	// SweepInterval is how often expired challenges are closed: from 1s to
	// 1m. Default 5s.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// State is where open challenges live: memory (this node only), store
	// (the storage backend, shared by every node) or auto (default):
	// memory with storage.driver sqlite, store with postgres. memory with
	// postgres is allowed but logged as a warning: each node must then
	// answer its own challenges. See File.PushState.
	State string `yaml:"state"`
	// FraudWebhook is told about every fraud report; optional.
	FraudWebhook FraudWebhook `yaml:"fraud_webhook"`
	// FCM wakes Android phones; optional.
	FCM FCM `yaml:"fcm"`
	// APNs wakes iPhones; optional.
	APNs APNs `yaml:"apns"`
}

// FraudWebhook is an HTTP endpoint that receives a JSON POST for every
// fraud report. Empty URL: none.
type FraudWebhook struct {
	// URL is an absolute http(s) URL; plain http to a host other than
	// loopback is logged as a warning.
	URL string `yaml:"url"`
	// Secret, if set, signs every body (HMAC-SHA256); at least 16 bytes.
	// Write ${ENV} or use secret_file, not both. After Load it holds the
	// secret read from secret_file too.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Timeout bounds one POST: from 1s to 1m. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
}

// FCM is Firebase Cloud Messaging, which wakes the Android app. Enabled
// when credentials_file is set.
type FCM struct {
	// CredentialsFile is the Firebase project's Google service-account key
	// (JSON), readable. Keep it private: it is logged as a warning when
	// other users can read it.
	CredentialsFile string `yaml:"credentials_file"`
	// ProjectID is the Firebase project; default the credentials file's
	// project_id.
	ProjectID string `yaml:"project_id"`
	// Endpoint overrides the FCM API base URL: https, or http to a
	// loopback host (for tests). Default Google's.
	Endpoint string `yaml:"endpoint"`
}

// APNs is the Apple Push Notification service, which wakes the iOS app.
// Enabled when key_file is set; key_id, team_id and topic are then
// required.
type APNs struct {
	// KeyFile is the APNs auth key downloaded from Apple (AuthKey_*.p8: an
	// EC P-256 key, PEM PKCS#8), readable. Keep it private: it is logged as
	// a warning when other users can read it.
	KeyFile string `yaml:"key_file"`
	// KeyID is the key's 10-character id; TeamID the developer team's.
	KeyID  string `yaml:"key_id"`
	TeamID string `yaml:"team_id"`
	// Topic is the app's bundle id.
	Topic string `yaml:"topic"`
	// Environment is production (default) or sandbox (development builds
	// of the app).
	Environment string `yaml:"environment"`
	// Endpoint overrides the environment's APNs URL: https only (a private
	// relay, tests). See APNs.URL.
	Endpoint string `yaml:"endpoint"`
	// CAFile adds PEM root certificates to the system's for the endpoint
	// (a private relay, tests); optional.
	CAFile string `yaml:"ca_file"`
}

// Directory is one first-factor source, referred to by name. Without any,
// there is one local directory named "local".
type Directory struct {
	// Name is unique, matching ^[a-z0-9][a-z0-9_-]*$.
	Name string `yaml:"name"`
	// Type is local, ldap or none.
	Type string `yaml:"type"`
	// LDAP is required when type is ldap, and only then. After Load its
	// BindPassword holds the password read from bind_password_file, and
	// BindPasswordFile is cleared (ldap.Config takes one or the other).
	LDAP *ldap.Config `yaml:"ldap"`
	// Identities names the directory that none looks users up in (default:
	// the local users). Only for type none; it must name a local or ldap
	// directory.
	Identities string `yaml:"identities"`
}
