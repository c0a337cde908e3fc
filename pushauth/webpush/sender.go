package webpush

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// Defaults for Config.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxAttempts = 4
	DefaultRetryBase   = 500 * time.Millisecond
	// retryMax caps the back-off between attempts (Retry-After may ask
	// for more, up to the challenge's expiry).
	retryMax = 4 * time.Second
	// maxErrorBody is how much of a push service's error answer is kept
	// for the error message.
	maxErrorBody = 512
	// maxTopic is RFC 8030 §5.4's limit on the Topic header.
	maxTopic = 32
)

// Config configures a Sender.
type Config struct {
	// Subject is the VAPID "sub": a mailto: or https: URL where the push
	// services can reach the operator. Required.
	Subject string
	// AllowedHosts are the push-service hosts subscriptions may name; a
	// leading "*." matches any subdomain (not the name itself). Required:
	// the bridge POSTs wherever a device's subscription points, so only
	// the real push services are listed (config.DefaultWebPushHosts). A
	// loopback host listed by name may be reached over plain http and on
	// any port, for tests (other hosts on port 443 only); the sender logs
	// a warning when one is listed.
	AllowedHosts []string
	// Timeout bounds one request to a push service; zero is
	// DefaultTimeout. The context given to Send bounds all of them.
	Timeout time.Duration
	// MaxAttempts bounds the requests for one wake (the first and the
	// retries after 429, 5xx or a network error); zero is
	// DefaultMaxAttempts.
	MaxAttempts int
	// RetryBase is the back-off before the first retry, doubled for each
	// further one (at most 4s; a longer Retry-After is honoured); zero is
	// DefaultRetryBase.
	RetryBase time.Duration
	// HTTPClient sends the requests; nil is a client of the sender's own.
	// The sender uses a copy that never follows redirects (a redirect
	// would lead past the allow-list).
	HTTPClient *http.Client
}

// Keys is what the sender needs of the key manager (*keys.Manager): the
// VAPID keys that still sign, active first.
type Keys interface {
	Signers(purpose store.KeyPurpose, alg string) []keys.Key
}

// Sender delivers wakes over Web Push. It is safe for concurrent use and
// starts no goroutines.
type Sender struct {
	allow     allowList
	keys      Keys
	client    *http.Client
	jwts      jwtCache
	timeout   time.Duration
	attempts  int
	retryBase time.Duration
	m         *metrics
	log       *slog.Logger
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error // tests record the waits
}

// interface guards
var (
	_ pushauth.Sender                       = (*Sender)(nil)
	_ interface{ CheckToken(string) error } = (*Sender)(nil)
)

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.Subject); err != nil || !(u.Scheme == "mailto" && u.Opaque != "" || u.Scheme == "https" && u.Host != "") {
		errs = append(errs, fmt.Errorf("webpush: subject %q must be a mailto: or https: URL", c.Subject))
	}
	if _, err := newAllowList(c.AllowedHosts); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout < 0 || c.RetryBase < 0 || c.MaxAttempts < 0 {
		errs = append(errs, errors.New("webpush: timeout, retry base and max attempts must not be negative"))
	}
	return errors.Join(errs...)
}

// New makes a Sender signing with the VAPID keys of km, registering its
// metrics on reg (nil: not exported). km must hold an active VAPID key
// (keys.Spec{Purpose: store.PurposeVAPID, Algorithm: keys.AlgES256}). New
// does no network I/O.
func New(cfg Config, km Keys, reg prometheus.Registerer, logger *slog.Logger) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if km == nil {
		return nil, errors.New("webpush: New needs the key manager")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	allow, _ := newAllowList(cfg.AllowedHosts)
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &Sender{
		allow:     allow,
		keys:      km,
		client:    client,
		jwts:      jwtCache{subject: cfg.Subject},
		timeout:   orDefault(cfg.Timeout, DefaultTimeout),
		attempts:  orDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		retryBase: orDefault(cfg.RetryBase, DefaultRetryBase),
		m:         newMetrics(),
		log:       logger,
		now:       time.Now,
		sleep:     sleep,
	}
	pub := s.PublicKey()
	if pub == "" {
		return nil, errors.New("webpush: the key manager holds no active VAPID key (purpose vapid, ES256)")
	}
	if err := s.m.register(reg); err != nil {
		return nil, fmt.Errorf("webpush: metrics: %w", err)
	}
	for h := range allow.exact {
		if isLoopback(h) {
			logger.Warn("webpush: the allow-list names a loopback host: subscriptions may point the bridge at it, over plain http too (meant for tests)", "host", h)
		}
	}
	logger.Info("webpush: sender ready", "subject", cfg.Subject, "allowed_hosts", cfg.AllowedHosts, "vapid_key", pub)
	return s, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Provider returns "webpush".
func (s *Sender) Provider() string { return protocol.ProviderWebPush }

// PublicKey returns the active VAPID public key as the app's
// applicationServerKey: the uncompressed P-256 point, base64url without
// padding. Empty if there is none.
func (s *Sender) PublicKey() string {
	ks := s.keys.Signers(store.PurposeVAPID, keys.AlgES256)
	if len(ks) == 0 {
		return ""
	}
	b, err := point(ks[0])
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// CheckToken checks a push token (protocol.WebPushSubscription JSON) before
// it is stored: at most MaxToken bytes; endpoint an absolute https URL on
// an allowed host and the default port, with no user info or fragment
// (http, or another port, only to a loopback host listed by name);
// keys.p256dh an uncompressed P-256 point; keys.auth
// 16 bytes; vapid an uncompressed P-256 point. It does not require vapid
// to be a key the bridge still holds: Send treats that as a stale token.
func (s *Sender) CheckToken(token string) error {
	if _, err := s.allow.parseToken(token); err != nil {
		return fmt.Errorf("webpush: %w", err)
	}
	return nil
}

// Send delivers w to the subscription in token: the payload
// {"t":"challenge","cid":…} encrypted for the browser (RFC 8291), signed
// with the VAPID key the subscription was made with (RFC 8292). Dismiss
// wakes are dropped (nil): every Web Push must show a notification. A
// subscription that is malformed, no longer allowed, made with a VAPID key
// no longer kept, or that the push service says is gone (404, 410) gives
// an error wrapping pushauth.ErrTokenInvalid. 429, 5xx and network errors
// are retried with back-off (honouring Retry-After) while ctx and the
// challenge last; other answers are permanent errors.
func (s *Sender) Send(ctx context.Context, token string, w pushauth.Wake) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("webpush: %w", err)
	}
	if w.Kind == pushauth.WakeDismiss {
		s.m.dropped.WithLabelValues(dropDismiss).Inc()
		return nil
	}
	sub, err := s.allow.parseToken(token)
	if err != nil {
		s.m.dropped.WithLabelValues(dropBadToken).Inc()
		return fmt.Errorf("webpush: %v: %w", err, pushauth.ErrTokenInvalid)
	}
	key, pub, ok := s.signer(sub.vapid)
	if !ok {
		s.m.dropped.WithLabelValues(dropOldKey).Inc()
		return fmt.Errorf("webpush: the subscription was made with a VAPID key the bridge no longer keeps; the app must resubscribe: %w", pushauth.ErrTokenInvalid)
	}
	payload, err := json.Marshal(struct {
		T   string `json:"t"`
		CID string `json:"cid"`
	}{string(w.Kind), w.ChallengeID})
	if err != nil {
		return fmt.Errorf("webpush: %w", err)
	}
	body, err := seal(payload, sub.uaPub, sub.auth)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		retry, after, err := s.post(ctx, sub, key, pub, body, w)
		if !retry {
			return err
		}
		if attempt >= s.attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		wait := max(min(s.retryBase<<(attempt-1), retryMax), after)
		if !s.now().Add(wait).Before(w.Expires) {
			return fmt.Errorf("%w (not retried: the challenge expires before the next attempt)", err)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return fmt.Errorf("%w (not retried: the delivery deadline comes before the next attempt)", err)
		}
		if serr := s.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (retry abandoned: %v)", err, serr)
		}
	}
}

// signer finds the VAPID key whose public key is vapid.
func (s *Sender) signer(vapid []byte) (keys.Key, []byte, bool) {
	for _, k := range s.keys.Signers(store.PurposeVAPID, keys.AlgES256) {
		if b, err := point(k); err == nil && bytes.Equal(b, vapid) {
			return k, b, true
		}
	}
	return keys.Key{}, nil, false
}

// post makes one request. retry says whether another attempt may succeed;
// after is the push service's Retry-After, if any.
func (s *Sender) post(ctx context.Context, sub subscription, key keys.Key, pub, body []byte, w pushauth.Wake) (retry bool, after time.Duration, err error) {
	now := s.now()
	auth, err := s.jwts.authorization(sub.origin, key.ID, key.Signer, pub, now)
	if err != nil {
		return false, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, sub.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("webpush: %w", err)
	}
	ttl := max(w.Expires.Sub(now)/time.Second, 0)
	req.Header.Set("TTL", strconv.FormatInt(int64(ttl), 10))
	req.Header.Set("Urgency", "high")
	if topic(w.ChallengeID) {
		req.Header.Set("Topic", w.ChallengeID)
	}
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", auth)
	resp, err := s.client.Do(req)
	if err != nil {
		s.m.requests.WithLabelValues(resultNetwork).Inc()
		// The url.Error would repeat the whole endpoint (the
		// subscription's capability URL) in the logs: the origin is enough.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return ctx.Err() == nil, 0, fmt.Errorf("webpush: post to %s: %w", sub.origin, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	answer := fmt.Errorf("webpush: %s answered %s: %q", sub.origin, resp.Status, strings.TrimSpace(string(msg)))
	switch code := resp.StatusCode; {
	case code == http.StatusCreated || code == http.StatusOK || code == http.StatusAccepted:
		s.m.requests.WithLabelValues(resultCreated).Inc()
		s.log.DebugContext(ctx, "webpush: wake sent", "origin", sub.origin, "challenge", w.ChallengeID, "location", resp.Header.Get("Location"))
		return false, 0, nil
	case code == http.StatusNotFound || code == http.StatusGone:
		s.m.requests.WithLabelValues(resultGone).Inc()
		return false, 0, fmt.Errorf("%w: %w", answer, pushauth.ErrTokenInvalid)
	case code == http.StatusTooManyRequests:
		s.m.requests.WithLabelValues(resultThrottled).Inc()
		return true, retryAfter(resp.Header.Get("Retry-After"), now), answer
	case code >= 500:
		s.m.requests.WithLabelValues(resultServerError).Inc()
		return true, retryAfter(resp.Header.Get("Retry-After"), now), answer
	default:
		s.m.requests.WithLabelValues(resultRefused).Inc()
		return false, 0, fmt.Errorf("%w (not retried)", answer)
	}
}

// topic reports whether a challenge id can be the Topic header: at most
// 32 characters of the base64url alphabet (RFC 8030 §5.4).
func topic(id string) bool {
	if id == "" || len(id) > maxTopic {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. Zero if
// absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

// point is a VAPID key's public key as an uncompressed P-256 point.
func point(k keys.Key) ([]byte, error) {
	pub, ok := k.Public.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("webpush: key %s is a %T, not a P-256 key", k.ID, k.Public)
	}
	e, err := pub.ECDH()
	if err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
