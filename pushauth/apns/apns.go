package apns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bridge-idp/bridge/pushauth"
)

// Endpoints and defaults.
const (
	ProductionEndpoint = "https://api.push.apple.com"
	SandboxEndpoint    = "https://api.sandbox.push.apple.com" // development builds of the app
	DefaultTimeout     = 10 * time.Second
)

// Provider token lifetime. APNs refuses a token older than an hour
// (ExpiredProviderToken) and a new token more often than every 20 minutes
// (TooManyProviderTokenUpdates); 40 minutes sits between with margin for
// clock skew either way.
const tokenRefresh = 40 * time.Minute

// Limits.
const (
	maxKeyFile     = 16 << 10
	maxDeviceToken = 200  // hex digits; today's tokens have 64
	maxErrorBody   = 4096 // APNs' error bodies are ~60 bytes
	maxReason      = 64
)

// Config configures a Sender.
type Config struct {
	// KeyFile is the APNs auth key downloaded from Apple (AuthKey_XXXX.p8:
	// PEM "PRIVATE KEY", PKCS#8, EC P-256).
	KeyFile string
	KeyID   string // the key's 10-character id
	TeamID  string // the developer team's 10-character id
	Topic   string // the app's bundle id
	// Endpoint is ProductionEndpoint (the default when empty) or
	// SandboxEndpoint; https only.
	Endpoint string
	// CAFile optionally adds PEM root certificates to the system's, for a
	// private relay or tests.
	CAFile string
	// Timeout bounds one Send, a provider-token retry included; zero is
	// DefaultTimeout.
	Timeout time.Duration
}

// Validate reports every problem of c at once (without reading files).
func (c Config) Validate() error {
	var errs []error
	if c.KeyFile == "" {
		errs = append(errs, errors.New("apns: key file (.p8) is required"))
	}
	if err := checkID(c.KeyID); err != nil {
		errs = append(errs, fmt.Errorf("apns: key id: %w", err))
	}
	if err := checkID(c.TeamID); err != nil {
		errs = append(errs, fmt.Errorf("apns: team id: %w", err))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("apns: topic (the app's bundle id) is required"))
	} else if len(c.Topic) > 255 || strings.ContainsFunc(c.Topic, func(r rune) bool { return r <= ' ' || r > '~' }) {
		errs = append(errs, fmt.Errorf("apns: topic %q is not a bundle id", c.Topic))
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("apns: endpoint: %w", err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("apns: timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// Sender sends wakes through APNs. It is safe for concurrent use.
type Sender struct {
	endpoint string
	topic    string
	teamID   string
	timeout  time.Duration
	client   *http.Client
	signer   jose.Signer
	logger   *slog.Logger
	now      func() time.Time // for provider tokens; tests replace it

	mu     sync.Mutex // guards the provider token
	jwt    string
	issued time.Time
}

// interface guards
var _ pushauth.Sender = (*Sender)(nil)

// New checks cfg, loads the key and makes a Sender. It does no network I/O.
func New(cfg Config, logger *slog.Logger) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = ProductionEndpoint
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	key, err := loadKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), cfg.KeyID))
	if err != nil {
		return nil, fmt.Errorf("apns: key file %s: %w", cfg.KeyFile, err)
	}
	roots, err := loadRoots(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	s := &Sender{
		endpoint: strings.TrimSuffix(cfg.Endpoint, "/"),
		topic:    cfg.Topic,
		teamID:   cfg.TeamID,
		timeout:  cfg.Timeout,
		client:   &http.Client{Transport: newTransport(roots)},
		signer:   signer,
		logger:   logger,
		now:      time.Now,
	}
	logger.Info("apns: sender ready", "endpoint", s.endpoint, "topic", s.topic, "key_id", cfg.KeyID, "team_id", cfg.TeamID)
	return s, nil
}

// newTransport speaks HTTP/2 only (APNs has no HTTP/1.x), keeps its
// connections open across pushes as Apple asks, and pings idle ones so a
// dead connection is noticed before the next push waits on it.
func newTransport(roots *x509.CertPool) *http.Transport {
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     10 * time.Minute,
		Protocols:           &protocols,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 10 * time.Second},
	}
}

// Close closes idle connections to APNs.
func (s *Sender) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Provider returns "apns".
func (s *Sender) Provider() string { return "apns" }

// Send delivers w to the device with this token. APNs' refusals are
// *Error values; those that mean the token is dead wrap
// pushauth.ErrTokenInvalid.
func (s *Sender) Send(ctx context.Context, token string, w pushauth.Wake) error {
	if err := checkWake(w); err != nil {
		return err
	}
	if !validToken(token) {
		return fmt.Errorf("apns: malformed device token: %w", pushauth.ErrTokenInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	bearer, err := s.providerToken("")
	if err != nil {
		return err
	}
	err = s.post(ctx, token, w, bearer)
	if e, ok := errors.AsType[*Error](err); ok && e.Status == http.StatusForbidden && e.Reason == "ExpiredProviderToken" {
		s.logger.InfoContext(ctx, "apns: provider token refused as expired, signing a new one")
		if bearer, err = s.providerToken(bearer); err != nil {
			return err
		}
		err = s.post(ctx, token, w, bearer)
	}
	return err
}

// post makes one request.
func (s *Sender) post(ctx context.Context, token string, w pushauth.Wake, bearer string) error {
	body, pushType, priority, err := payload(w)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"/3/device/"+token, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("apns: %w", err)
	}
	expiration := int64(0) // already expired: try once now, do not store
	if w.Expires.After(s.now()) {
		expiration = w.Expires.Unix()
	}
	h := req.Header
	h.Set("authorization", "bearer "+bearer)
	h.Set("apns-topic", s.topic)
	h.Set("apns-push-type", pushType)
	h.Set("apns-priority", priority)
	h.Set("apns-collapse-id", w.ChallengeID)
	h.Set("apns-expiration", strconv.FormatInt(expiration, 10))
	h.Set("content-type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("apns: send: %w (%v)", ctxErr, err)
		}
		return fmt.Errorf("apns: send: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		s.logger.DebugContext(ctx, "apns: wake sent", "challenge", w.ChallengeID, "kind", w.Kind, "apns_id", resp.Header.Get("apns-id"))
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	reason, ts := parseReason(data)
	return &Error{Status: resp.StatusCode, Reason: reason, Timestamp: ts, ID: sanitize(resp.Header.Get("apns-id"), 36)}
}

// providerToken returns the current provider JWT, signing a new one when
// there is none, it is tokenRefresh old, or it is stale (APNs refused it).
// Concurrent callers that all saw one token refused sign one new token.
func (s *Sender) providerToken(stale string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if age := now.Sub(s.issued); s.jwt != "" && s.jwt != stale && age >= 0 && age < tokenRefresh {
		return s.jwt, nil
	}
	tok, err := jwt.Signed(s.signer).Claims(jwt.Claims{Issuer: s.teamID, IssuedAt: jwt.NewNumericDate(now)}).Serialize()
	if err != nil {
		return "", fmt.Errorf("apns: sign provider token: %w", err)
	}
	s.jwt, s.issued = tok, now
	s.logger.Debug("apns: provider token signed", "iat", now.Unix())
	return tok, nil
}

// Error is a push APNs refused.
type Error struct {
	Status    int       // HTTP status
	Reason    string    // APNs' reason ("BadDeviceToken", "Unregistered", ...), sanitised
	Timestamp time.Time // for 410: when APNs last knew the token valid
	ID        string    // apns-id, for Apple support
}

func (e *Error) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = http.StatusText(e.Status)
	}
	msg := fmt.Sprintf("apns: status %d: %s", e.Status, reason)
	if !e.Timestamp.IsZero() {
		msg += " (token valid until " + e.Timestamp.UTC().Format(time.RFC3339) + ")"
	}
	return msg
}

// Unwrap returns pushauth.ErrTokenInvalid when APNs says the device token
// is dead: 410 (Unregistered, ExpiredToken), or 400 BadDeviceToken or
// DeviceTokenNotForTopic.
func (e *Error) Unwrap() error {
	switch {
	case e.Status == http.StatusGone,
		e.Status == http.StatusBadRequest && (e.Reason == "BadDeviceToken" || e.Reason == "DeviceTokenNotForTopic"):
		return pushauth.ErrTokenInvalid
	}
	return nil
}

// parseReason reads APNs' error body {"reason": "...", "timestamp": ms}.
// The reason is cut to letters and digits (it goes into logs); a missing
// or implausible timestamp is zero.
func parseReason(body []byte) (reason string, timestamp time.Time) {
	var e struct {
		Reason    string      `json:"reason"`
		Timestamp json.Number `json:"timestamp"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", time.Time{}
	}
	if ms, err := e.Timestamp.Int64(); err == nil && ms > 0 && ms < 1<<45 {
		timestamp = time.UnixMilli(ms)
	}
	return sanitize(e.Reason, maxReason), timestamp
}

// sanitize keeps at most n ASCII letters, digits and dashes of s.
func sanitize(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if c := s[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// The notification bodies. Only generic localisation keys and the
// challenge id: the app fetches everything else from the bridge.
type (
	apsAlert struct {
		TitleLocKey string `json:"title-loc-key"`
		LocKey      string `json:"loc-key"`
	}
	aps struct {
		Alert             *apsAlert `json:"alert,omitempty"`
		Sound             string    `json:"sound,omitempty"`
		InterruptionLevel string    `json:"interruption-level,omitempty"`
		MutableContent    int       `json:"mutable-content,omitempty"`
		ContentAvailable  int       `json:"content-available,omitempty"`
	}
	notification struct {
		APS aps    `json:"aps"`
		T   string `json:"t"`
		CID string `json:"cid"`
	}
)

// payload returns the body and the apns-push-type and apns-priority of w.
func payload(w pushauth.Wake) (body []byte, pushType, priority string, err error) {
	n := notification{T: string(w.Kind), CID: w.ChallengeID}
	switch w.Kind {
	case pushauth.WakeChallenge:
		n.APS = aps{
			Alert:             &apsAlert{TitleLocKey: "BRIDGE_SIGNIN_TITLE", LocKey: "BRIDGE_SIGNIN_BODY"},
			Sound:             "default",
			InterruptionLevel: "time-sensitive",
			MutableContent:    1,
		}
		pushType, priority = "alert", "10"
	case pushauth.WakeDismiss:
		n.APS = aps{ContentAvailable: 1}
		pushType, priority = "background", "5" // APNs refuses priority 10 for background pushes
	default:
		return nil, "", "", fmt.Errorf("apns: unknown wake kind %q", w.Kind)
	}
	body, err = json.Marshal(n)
	if err != nil {
		return nil, "", "", fmt.Errorf("apns: %w", err)
	}
	return body, pushType, priority, nil
}

// loadKey reads an APNs auth key: PEM "PRIVATE KEY" holding a PKCS#8 EC
// P-256 key.
func loadKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := readSmall(path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("apns: key file: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("apns: key file %s is not PEM (want the .p8 file from Apple)", path)
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("apns: key file %s holds a %q PEM block, want \"PRIVATE KEY\" (PKCS#8, the .p8 file from Apple)", path, block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("apns: key file %s: %w", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("apns: key file %s holds a %T, want an EC P-256 key", path, k)
	}
	return key, nil
}

// loadRoots returns the system roots plus those in caFile, if any.
func loadRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil // the system roots
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	data, err := readSmall(caFile, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("apns: CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("apns: CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

func checkID(id string) error {
	if id == "" {
		return errors.New("required")
	}
	if len(id) > 32 || sanitize(id, 32) != id || strings.Contains(id, "-") {
		return fmt.Errorf("%q: want letters and digits, as shown by Apple", id)
	}
	return nil
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want an https base URL such as %s", s, ProductionEndpoint)
	}
	return nil
}

// validToken checks a device token's shape: an even number of hex digits.
func validToken(token string) bool {
	if token == "" || len(token) > maxDeviceToken || len(token)%2 != 0 {
		return false
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// checkWake refuses a wake the sender cannot put on the wire.
func checkWake(w pushauth.Wake) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("apns: %w", err)
	}
	return nil
}
