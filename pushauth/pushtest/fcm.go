package pushtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FCM error bodies, as Google sends them.
const (
	// FCMUnregisteredBody is the answer (HTTP 404) for a token the app
	// instance gave up: uninstalled, or the token was rotated.
	FCMUnregisteredBody = `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`
	// FCMInvalidTokenBody is the answer (HTTP 400) for a string that is not
	// a registration token at all.
	FCMInvalidTokenBody = `{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"The registration token is not a valid FCM registration token"}]}]}}`
	// FCMSenderIDMismatchBody is the answer (HTTP 403) for a token that
	// belongs to another Firebase project.
	FCMSenderIDMismatchBody = `{"error":{"code":403,"message":"SenderId mismatch","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"SENDER_ID_MISMATCH"}]}}`
	// FCMUnavailableBody is the answer (HTTP 503) of an overloaded server.
	FCMUnavailableBody = `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNAVAILABLE"}]}}`
)

// FCMScope is the OAuth2 scope that allows sending FCM messages; the
// broader cloud-platform scope is accepted too.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// FCMMessage is one message the fake FCM accepted.
type FCMMessage struct {
	Project string            // from the URL
	Token   string            // message.token
	Data    map[string]string // message.data
	Android *FCMAndroid       // message.android, nil when absent
	// Raw is the "message" object exactly as sent, so tests can check that
	// nothing else (notification, apns, webpush blocks) was added.
	Raw    json.RawMessage
	Header http.Header
}

// FCMAndroid is message.android.
type FCMAndroid struct {
	CollapseKey string `json:"collapse_key"`
	Priority    string `json:"priority"`
	TTL         string `json:"ttl"` // as sent: "30s", "1.5s"
}

// FCM is a fake of Firebase Cloud Messaging HTTP v1 and of Google's OAuth2
// token endpoint. Start one with StartFCM.
type FCM struct {
	ProjectID   string
	ClientEmail string

	srv   *httptest.Server
	key   *rsa.PrivateKey
	keyID string

	mu            sync.Mutex
	accessTokens  map[string]bool
	tokenRequests int
	replies       map[string]fcmReply // device token -> canned error
	delay         time.Duration
	now           func() time.Time

	msgs *recorder[FCMMessage]
}

type fcmReply struct {
	status int
	body   string
}

// StartFCM starts a fake FCM on 127.0.0.1, closed when the test ends.
func StartFCM(t testing.TB) *FCM {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("pushtest: %v", err)
	}
	f := &FCM{
		ProjectID:    "bridge-test-" + randomHex(3),
		key:          key,
		keyID:        randomHex(20),
		accessTokens: make(map[string]bool),
		replies:      make(map[string]fcmReply),
		now:          time.Now,
		msgs:         newRecorder[FCMMessage](),
	}
	f.ClientEmail = "bridge-push@" + f.ProjectID + ".iam.gserviceaccount.com"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.serveToken)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.serveSend)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// Endpoint is the base URL of the FCM v1 API, the counterpart of
// https://fcm.googleapis.com/v1.
func (f *FCM) Endpoint() string { return f.srv.URL + "/v1" }

// TokenURI is the OAuth2 token endpoint written into the credentials file.
func (f *FCM) TokenURI() string { return f.srv.URL + "/token" }

// CredentialsFile writes a Google service-account key file for the fake's
// project (a fresh RSA key, token_uri pointing at the fake), mode 0600, and
// returns its path.
func (f *FCM) CredentialsFile(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		t.Fatalf("pushtest: %v", err)
	}
	data, err := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  f.ProjectID,
		"private_key_id":              f.keyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                f.ClientEmail,
		"client_id":                   "100000000000000000001",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   f.TokenURI(),
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	if err != nil {
		t.Fatalf("pushtest: %v", err)
	}
	return writeFile(t, "service-account.json", data)
}

// Unregister makes the fake answer sends to token as FCM does for a token
// that is no longer registered (HTTP 404, errorCode UNREGISTERED).
func (f *FCM) Unregister(token string) {
	f.Reject(token, http.StatusNotFound, FCMUnregisteredBody)
}

// Reject makes the fake answer sends to token with status and body (one of
// the FCM*Body constants, or any other).
func (f *FCM) Reject(token string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[token] = fcmReply{status, body}
}

// SetDelay makes the fake wait d before answering a send (not a token
// request), or until the client gives up.
func (f *FCM) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// SetClock sets the fake's clock, used to check the assertion's iat and exp.
func (f *FCM) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// TokenRequests is how many access tokens were issued.
func (f *FCM) TokenRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenRequests
}

// Messages returns the messages accepted so far, oldest first.
func (f *FCM) Messages() []FCMMessage { return f.msgs.all() }

// Next returns the oldest accepted message not yet returned by Next,
// waiting for one until ctx is done.
func (f *FCM) Next(ctx context.Context) (FCMMessage, error) { return f.msgs.wait(ctx) }

// assertionClaims are the claims of the service account's signed JWT
// (RFC 7523) that Google checks.
type assertionClaims struct {
	jwt.Claims
	Scope string `json:"scope"`
}

// serveToken is Google's OAuth2 token endpoint for the JWT bearer grant.
func (f *FCM) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", "bad form")
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(w, "unsupported_grant_type", "Invalid grant_type: "+g)
		return
	}
	tok, err := jwt.ParseSigned(r.PostForm.Get("assertion"), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		oauthError(w, "invalid_grant", "Invalid JWT: "+err.Error())
		return
	}
	if len(tok.Headers) != 1 || (tok.Headers[0].KeyID != "" && tok.Headers[0].KeyID != f.keyID) {
		oauthError(w, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	var c assertionClaims
	if err := tok.Claims(&f.key.PublicKey, &c); err != nil {
		oauthError(w, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	f.mu.Lock()
	now := f.now()
	f.mu.Unlock()
	switch {
	case c.Issuer != f.ClientEmail:
		oauthError(w, "invalid_grant", "Invalid issuer: "+c.Issuer)
		return
	case !c.Audience.Contains(f.TokenURI()):
		oauthError(w, "invalid_grant", "Invalid JWT audience")
		return
	case !slices.ContainsFunc(strings.Fields(c.Scope), func(s string) bool { return s == FCMScope || s == cloudPlatformScope }):
		oauthError(w, "invalid_scope", "scope does not allow FCM: "+c.Scope)
		return
	case c.IssuedAt == nil || c.Expiry == nil:
		oauthError(w, "invalid_grant", "JWT without iat or exp")
		return
	}
	iat, exp := c.IssuedAt.Time(), c.Expiry.Time()
	if iat.After(now.Add(5*time.Minute)) || !exp.After(now) || exp.Sub(iat) > time.Hour {
		oauthError(w, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
		return
	}
	access := "ya29.fake-" + randomHex(24)
	f.mu.Lock()
	f.accessTokens[access] = true
	f.tokenRequests++
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600})
}

// sendRequest is the body of messages:send.
type sendRequest struct {
	ValidateOnly bool            `json:"validate_only"`
	Message      json.RawMessage `json:"message"`
}

// wireMessage is the FCM v1 Message resource; unknown fields are refused,
// as by the real API.
type wireMessage struct {
	Name         string            `json:"name"`
	Data         map[string]string `json:"data"`
	Notification json.RawMessage   `json:"notification"`
	Android      *struct {
		FCMAndroid
		RestrictedPackageName string            `json:"restricted_package_name"`
		Data                  map[string]string `json:"data"`
		Notification          json.RawMessage   `json:"notification"`
		FCMOptions            json.RawMessage   `json:"fcm_options"`
		DirectBootOK          bool              `json:"direct_boot_ok"`
	} `json:"android"`
	Webpush    json.RawMessage `json:"webpush"`
	APNS       json.RawMessage `json:"apns"`
	FCMOptions json.RawMessage `json:"fcm_options"`
	Token      string          `json:"token"`
	Topic      string          `json:"topic"`
	Condition  string          `json:"condition"`
}

var ttlPattern = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,9})?s$`)

// serveSend is POST /v1/projects/{project}/messages:send.
func (f *FCM) serveSend(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	authorized := ok && f.accessTokens[bearer]
	delay := f.delay
	f.mu.Unlock()
	if !authorized {
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	if project != f.ProjectID {
		googleError(w, http.StatusForbidden, "PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/"+project+"' (or it may not exist).")
		return
	}
	var req sendRequest
	var m wireMessage
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = strictJSON(body, &req)
	}
	if err == nil {
		err = strictJSON(req.Message, &m)
	}
	if err == nil {
		err = m.validate()
	}
	if err != nil {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
		return
	}
	if !pause(r, delay) {
		return
	}
	f.mu.Lock()
	reply, rejected := f.replies[m.Token]
	f.mu.Unlock()
	if rejected {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(reply.status)
		io.WriteString(w, reply.body)
		return
	}
	if !req.ValidateOnly {
		msg := FCMMessage{Project: project, Token: m.Token, Data: m.Data, Raw: req.Message, Header: r.Header.Clone()}
		if m.Android != nil {
			a := m.Android.FCMAndroid
			msg.Android = &a
		}
		f.msgs.add(msg)
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": "projects/" + project + "/messages/0:" + randomHex(8)})
}

func (m *wireMessage) validate() error {
	targets := 0
	for _, s := range []string{m.Token, m.Topic, m.Condition} {
		if s != "" {
			targets++
		}
	}
	if targets != 1 {
		return fmt.Errorf("exactly one of token, topic, condition must be set")
	}
	if a := m.Android; a != nil {
		switch strings.ToLower(a.Priority) {
		case "", "normal", "high":
		default:
			return fmt.Errorf("invalid value at 'message.android.priority': %q", a.Priority)
		}
		if a.TTL != "" && !ttlPattern.MatchString(a.TTL) {
			return fmt.Errorf("invalid value at 'message.android.ttl': %q", a.TTL)
		}
	}
	return nil
}

// strictJSON decodes one JSON value, refusing unknown fields and trailing
// data.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

// googleError writes a Google API error body.
func googleError(w http.ResponseWriter, code int, status, message string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": message, "status": status}})
}

// oauthError writes an RFC 6749 error as Google's token endpoint does.
func oauthError(w http.ResponseWriter, code, description string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
