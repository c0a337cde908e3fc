package fcm

import (
	"context"
	"crypto/rsa"
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
	"strings"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/bridge-idp/bridge/pushauth"
)

// Defaults for Config.
const (
	// DefaultEndpoint is the FCM HTTP v1 base URL, the one the SDK uses
	// when no endpoint is given.
	DefaultEndpoint = "https://fcm.googleapis.com/v1"
	DefaultTimeout  = 10 * time.Second
)

// Scope is the OAuth2 scope asked for: sending FCM messages and nothing
// else (the SDK's default set includes cloud-platform and the databases).
const Scope = "https://www.googleapis.com/auth/firebase.messaging"

// Limits.
const (
	maxCredentialsFile = 64 << 10
	maxToken           = 4096                // FCM tokens are ~160-250 bytes
	maxTTL             = 28 * 24 * time.Hour // FCM's maximum
	maxErrorBody       = 64 << 10
)

// Config configures a Sender.
type Config struct {
	// CredentialsFile is a Google service-account key file (JSON) of the
	// Firebase project. Its token_uri is where access tokens come from.
	CredentialsFile string
	// ProjectID is the Firebase project; empty takes the file's project_id.
	ProjectID string
	// Endpoint is the FCM v1 base URL; empty is DefaultEndpoint. It must be
	// https, or http to a loopback address (tests, a local relay).
	Endpoint string
	// Timeout bounds one Send, retries included; zero is DefaultTimeout.
	Timeout time.Duration
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.CredentialsFile == "" {
		errs = append(errs, errors.New("fcm: credentials file is required"))
	}
	if c.Endpoint != "" {
		if err := checkURL(c.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("fcm: endpoint: %w", err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("fcm: timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// Sender sends wakes through FCM. It is safe for concurrent use.
type Sender struct {
	client  *messaging.Client
	tokens  oauth2.TokenSource // caching; the SDK's transport uses the same one
	project string
	timeout time.Duration
	logger  *slog.Logger
	now     func() time.Time // for the TTL; tests replace it
}

// interface guards
var _ pushauth.Sender = (*Sender)(nil)

// New checks cfg and the credentials file and makes a Sender. It does no
// network I/O: the first Send fetches the access token. ctx only carries
// values: the Sender outlives it.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	data, sa, err := readCredentials(cfg.CredentialsFile)
	if err != nil {
		return nil, err
	}
	project := cfg.ProjectID
	if project == "" {
		project = sa.ProjectID
	}
	if project == "" {
		return nil, fmt.Errorf("fcm: credentials file %s has no project_id and no project id is configured", cfg.CredentialsFile)
	}

	// The token source keeps the context it is made with for every later
	// token exchange: it must not be cancelled with the caller's ctx, and
	// its HTTP client (oauth2.HTTPClient) bounds each exchange.
	base := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, &http.Client{Timeout: cfg.Timeout})
	creds, err := google.CredentialsFromJSONWithType(base, data, google.ServiceAccount, Scope)
	if err != nil {
		return nil, fmt.Errorf("fcm: credentials file %s: %w", cfg.CredentialsFile, err)
	}
	// The endpoint override is option.WithEndpoint: messaging.NewClient
	// takes the endpoint google.golang.org/api/transport returns for the
	// options and builds "{endpoint}/projects/{p}/messages:send" from it,
	// falling back to https://fcm.googleapis.com/v1 only when none is set.
	// No URL rewriting transport is needed, and the SDK keeps its own
	// HTTP/2 transport, retries and error parsing.
	app, err := firebase.NewApp(base, &firebase.Config{ProjectID: project},
		option.WithCredentials(creds),
		option.WithEndpoint(strings.TrimSuffix(cfg.Endpoint, "/")),
		option.WithTelemetryDisabled(),
	)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	client, err := app.Messaging(base)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	logger.InfoContext(ctx, "fcm: sender ready", "project", project, "endpoint", cfg.Endpoint, "client_email", sa.ClientEmail)
	return &Sender{client: client, tokens: creds.TokenSource, project: project, timeout: cfg.Timeout, logger: logger, now: time.Now}, nil
}

// Provider returns "fcm".
func (s *Sender) Provider() string { return "fcm" }

// Send delivers w to the device with this registration token as a
// data-only, high-priority message. A token FCM refuses for good gives an
// error wrapping pushauth.ErrTokenInvalid.
func (s *Sender) Send(ctx context.Context, token string, w pushauth.Wake) error {
	if err := checkWake(w); err != nil {
		return err
	}
	if !validToken(token) {
		return fmt.Errorf("fcm: malformed registration token: %w", pushauth.ErrTokenInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.accessToken(ctx); err != nil {
		return err
	}
	name, err := s.client.Send(ctx, s.message(token, w))
	if err != nil {
		return mapError(ctx, err)
	}
	s.logger.DebugContext(ctx, "fcm: wake sent", "project", s.project, "challenge", w.ChallengeID, "kind", w.Kind, "message", name)
	return nil
}

// accessToken makes sure an access token is at hand before the SDK sends.
// The SDK would fetch it too (from the same caching source), but it takes a
// failed exchange for a network error and retries it with backoff for
// seconds, and ends up reporting a timeout instead of Google's answer
// ("invalid_grant": a revoked or wrong key). The exchange itself takes no
// context: its HTTP client's timeout bounds it, and ctx bounds the wait.
func (s *Sender) accessToken(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		_, err := s.tokens.Token()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("fcm: access token: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fcm: access token: %w", ctx.Err())
	}
}

// message is everything Google sees: the data pair and delivery options.
func (s *Sender) message(token string, w pushauth.Wake) *messaging.Message {
	ttl := min(max(w.Expires.Sub(s.now()).Truncate(time.Second), time.Second), maxTTL)
	return &messaging.Message{
		Token: token,
		Data:  map[string]string{"t": string(w.Kind), "cid": w.ChallengeID},
		Android: &messaging.AndroidConfig{
			Priority:    "high",
			TTL:         &ttl,
			CollapseKey: w.ChallengeID,
		},
	}
}

// mapError turns an SDK error into ours. The messaging.Is* helpers need
// the SDK's error itself, unwrapped.
func mapError(ctx context.Context, err error) error {
	switch {
	case messaging.IsUnregistered(err):
		return fmt.Errorf("fcm: token unregistered: %w", pushauth.ErrTokenInvalid)
	case messaging.IsSenderIDMismatch(err):
		return fmt.Errorf("fcm: token belongs to another sender: %w", pushauth.ErrTokenInvalid)
	case messaging.IsInvalidArgument(err) && tokenRejected(errorBody(err)):
		return fmt.Errorf("fcm: token is not a valid registration token: %w", pushauth.ErrTokenInvalid)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The SDK reports a cancelled request as its own error type.
		return fmt.Errorf("fcm: send: %w (%v)", ctxErr, err)
	}
	return fmt.Errorf("fcm: send: %w", err)
}

// errorBody returns the body of the HTTP answer behind an SDK error (the
// SDK keeps a buffered copy), at most maxErrorBody bytes.
func errorBody(err error) []byte {
	resp := errorutils.HTTPResponse(err)
	if resp == nil || resp.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return b
}

// tokenRejected reports whether an INVALID_ARGUMENT error body is about the
// registration token (rather than the message): a google.rpc.BadRequest
// field violation on message.token, or FCM's message for a malformed token.
func tokenRejected(body []byte) bool {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Details []struct {
				Type            string `json:"@type"`
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	if len(body) > maxErrorBody || json.Unmarshal(body, &e) != nil {
		return false
	}
	for _, d := range e.Error.Details {
		if d.Type != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				return true
			}
		}
	}
	return strings.Contains(strings.ToLower(e.Error.Message), "not a valid fcm registration token")
}

// serviceAccount is what New needs from the key file.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
	TokenURI    string `json:"token_uri"`
}

// readCredentials reads and checks a service-account key file before it
// goes near the oauth2 library: only a service account (no external
// account configuration that would run commands or fetch URLs), with an
// RSA key, sending its assertions over https.
func readCredentials(path string) ([]byte, serviceAccount, error) {
	var sa serviceAccount
	f, err := os.Open(path)
	if err != nil {
		return nil, sa, fmt.Errorf("fcm: credentials file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
	if err != nil {
		return nil, sa, fmt.Errorf("fcm: credentials file: %w", err)
	}
	if len(data) > maxCredentialsFile {
		return nil, sa, fmt.Errorf("fcm: credentials file %s is larger than %d bytes", path, maxCredentialsFile)
	}
	if err := json.Unmarshal(data, &sa); err != nil {
		return nil, sa, fmt.Errorf("fcm: credentials file %s is not a service-account JSON key: %w", path, err)
	}
	var errs []error
	if sa.Type != "service_account" {
		errs = append(errs, fmt.Errorf("type is %q, want \"service_account\"", sa.Type))
	}
	if sa.ClientEmail == "" {
		errs = append(errs, errors.New("client_email is missing"))
	}
	if err := checkRSAKey(sa.PrivateKey); err != nil {
		errs = append(errs, fmt.Errorf("private_key: %w", err))
	}
	if sa.TokenURI != "" {
		if err := checkURL(sa.TokenURI); err != nil {
			errs = append(errs, fmt.Errorf("token_uri: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, sa, fmt.Errorf("fcm: credentials file %s: %w", path, err)
	}
	return data, sa, nil
}

// checkRSAKey checks that s is a PEM RSA private key, as Google issues.
func checkRSAKey(s string) error {
	if s == "" {
		return errors.New("missing")
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return errors.New("not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return fmt.Errorf("a %T, want RSA", k)
		}
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		return errors.New("not a PKCS#8 or PKCS#1 RSA private key")
	}
	return nil
}

// checkURL accepts https URLs, and http ones to a loopback address: an
// access token or a signed assertion never crosses a network in clear.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not a base URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http is only allowed to a loopback address", s)
	}
	return fmt.Errorf("%q: scheme must be https", s)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validToken is a cheap shape check: FCM tokens are printable ASCII without
// spaces. Anything else cannot be delivered to and is not sent.
func validToken(token string) bool {
	if token == "" || len(token) > maxToken {
		return false
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] > '~' {
			return false
		}
	}
	return true
}

// checkWake refuses a wake the sender cannot put on the wire.
func checkWake(w pushauth.Wake) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("fcm: %w", err)
	}
	return nil
}
