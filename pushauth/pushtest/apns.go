package pushtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// APNsRequest is one notification the fake APNs accepted.
type APNsRequest struct {
	Token    string          // the device token from the path
	Header   http.Header     // apns-topic, apns-push-type, apns-priority, ...
	Payload  json.RawMessage // the JSON body exactly as sent
	JWT      string          // the provider token it was authorised with
	IssuedAt time.Time       // the provider token's iat
}

// APNs is a fake of the Apple Push Notification service's HTTP/2 provider
// API with token-based authentication. Start one with StartAPNs.
type APNs struct {
	KeyID  string // the .p8 key's id, expected in the JWT header
	TeamID string // expected as the JWT issuer
	Topic  string // the app's bundle id, expected in apns-topic

	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu       sync.Mutex
	replies  map[string]apnsReply // device token -> canned error
	expired  map[string]bool      // provider tokens declared expired
	seen     map[string]bool      // provider tokens accepted so far
	delay    time.Duration
	now      func() time.Time
	protoErr int // requests refused for not being HTTP/2

	reqs *recorder[APNsRequest]
}

type apnsReply struct {
	status int
	reason string
}

// StartAPNs starts a fake APNs on 127.0.0.1 speaking HTTP/2 over TLS with
// httptest's certificate (trust it with CAFile), closed when the test ends.
func StartAPNs(t testing.TB) *APNs {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("pushtest: %v", err)
	}
	a := &APNs{
		KeyID:   randomUpper(10),
		TeamID:  randomUpper(10),
		Topic:   "org.example.bridge",
		key:     key,
		replies: make(map[string]apnsReply),
		expired: make(map[string]bool),
		seen:    make(map[string]bool),
		now:     time.Now,
		reqs:    newRecorder[APNsRequest](),
	}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.EnableHTTP2 = true
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	return a
}

// Endpoint is the fake's base URL, the counterpart of
// https://api.push.apple.com.
func (a *APNs) Endpoint() string { return a.srv.URL }

// CAFile writes the fake's TLS certificate as PEM and returns its path, for
// the sender's CAFile.
func (a *APNs) CAFile(t testing.TB) string {
	t.Helper()
	return writeFile(t, "apns-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw}))
}

// KeyFile writes the provider's signing key as Apple hands it out (a .p8
// file: PEM "PRIVATE KEY", PKCS#8, EC P-256), mode 0600, and returns its
// path.
func (a *APNs) KeyFile(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		t.Fatalf("pushtest: %v", err)
	}
	return writeFile(t, "AuthKey_"+a.KeyID+".p8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// Unregister makes the fake answer pushes to token as APNs does for a
// device token that is no longer active for the topic: 410 Unregistered.
func (a *APNs) Unregister(token string) { a.Reject(token, http.StatusGone, "Unregistered") }

// Reject makes the fake answer pushes to token with status and
// {"reason": reason} (410 answers carry a timestamp too).
func (a *APNs) Reject(token string, status int, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.replies[strings.ToLower(token)] = apnsReply{status, reason}
}

// ExpireProviderTokens makes the fake answer 403 ExpiredProviderToken to
// every provider token it has accepted so far.
func (a *APNs) ExpireProviderTokens() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for tok := range a.seen {
		a.expired[tok] = true
	}
}

// SetDelay makes the fake wait d before answering, or until the client
// gives up.
func (a *APNs) SetDelay(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.delay = d
}

// SetClock sets the fake's clock, used to check provider tokens' iat.
func (a *APNs) SetClock(now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = now
}

// NotHTTP2 is how many requests were refused for not being HTTP/2.
func (a *APNs) NotHTTP2() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.protoErr
}

// Requests returns the notifications accepted so far, oldest first.
func (a *APNs) Requests() []APNsRequest { return a.reqs.all() }

// Next returns the oldest accepted notification not yet returned by Next,
// waiting for one until ctx is done.
func (a *APNs) Next(ctx context.Context) (APNsRequest, error) { return a.reqs.wait(ctx) }

// maxPayload is APNs' limit for a regular (non-VoIP) notification.
const maxPayload = 4096

// serve checks one request the way APNs does, in APNs' order: connection,
// path, provider token, headers, payload, device token state.
func (a *APNs) serve(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		a.mu.Lock()
		a.protoErr++
		a.mu.Unlock()
		// APNs does not speak HTTP/1.x at all; the closest answer.
		http.Error(w, "HTTP/2 required", http.StatusHTTPVersionNotSupported)
		return
	}
	if r.Method != http.MethodPost {
		apnsError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", 0)
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok || token == "" || strings.Contains(token, "/") {
		apnsError(w, http.StatusNotFound, "BadPath", 0)
		return
	}
	provider, iat, status, reason := a.checkProviderToken(r.Header.Get("Authorization"))
	if status != 0 {
		apnsError(w, status, reason, 0)
		return
	}
	if status, reason := a.checkHeaders(r.Header); status != 0 {
		apnsError(w, status, reason, 0)
		return
	}
	if b, err := hex.DecodeString(token); err != nil || len(b) == 0 {
		apnsError(w, http.StatusBadRequest, "BadDeviceToken", 0)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		return
	}
	if len(body) > maxPayload {
		apnsError(w, http.StatusRequestEntityTooLarge, "PayloadTooLarge", 0)
		return
	}
	var payload struct {
		APS map[string]any `json:"aps"`
	}
	if len(body) == 0 {
		apnsError(w, http.StatusBadRequest, "PayloadEmpty", 0)
		return
	}
	if err := json.Unmarshal(body, &payload); err != nil || payload.APS == nil {
		// APNs needs a JSON dictionary with an "aps" dictionary; its
		// exact reason for a malformed one is not documented.
		apnsError(w, http.StatusBadRequest, "BadPayload", 0)
		return
	}
	a.mu.Lock()
	delay := a.delay
	a.mu.Unlock()
	if !pause(r, delay) {
		return
	}
	a.mu.Lock()
	reply, rejected := a.replies[strings.ToLower(token)]
	now := a.now()
	a.mu.Unlock()
	if rejected {
		var ts int64
		if reply.status == http.StatusGone {
			ts = now.Add(-time.Hour).UnixMilli()
		}
		apnsError(w, reply.status, reply.reason, ts)
		return
	}
	a.reqs.add(APNsRequest{Token: token, Header: r.Header.Clone(), Payload: body, JWT: provider, IssuedAt: iat})
	id := r.Header.Get("apns-id")
	if id == "" {
		id = newUUID()
	}
	w.Header().Set("apns-id", id)
	w.WriteHeader(http.StatusOK)
}

// checkProviderToken verifies "bearer <JWT>": ES256 with the fake's key,
// kid, iss and an iat neither older than an hour nor in the future.
func (a *APNs) checkProviderToken(authorization string) (token string, iat time.Time, status int, reason string) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", iat, http.StatusForbidden, "MissingProviderToken"
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 || tok.Headers[0].KeyID != a.KeyID {
		return token, iat, http.StatusForbidden, "InvalidProviderToken"
	}
	var c jwt.Claims
	if err := tok.Claims(&a.key.PublicKey, &c); err != nil || c.Issuer != a.TeamID || c.IssuedAt == nil {
		return token, iat, http.StatusForbidden, "InvalidProviderToken"
	}
	iat = c.IssuedAt.Time()
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	switch {
	case a.expired[token] || now.Sub(iat) > time.Hour:
		return token, iat, http.StatusForbidden, "ExpiredProviderToken"
	case iat.After(now.Add(time.Minute)):
		return token, iat, http.StatusForbidden, "InvalidProviderToken"
	}
	a.seen[token] = true
	return token, iat, 0, ""
}

// checkHeaders checks the apns-* headers the bridge sends.
func (a *APNs) checkHeaders(h http.Header) (status int, reason string) {
	topic := h.Get("apns-topic")
	switch {
	case topic == "":
		return http.StatusBadRequest, "MissingTopic"
	case topic != a.Topic:
		return http.StatusBadRequest, "TopicDisallowed"
	}
	pushType := h.Get("apns-push-type")
	switch pushType {
	case "alert", "background":
	case "":
		return http.StatusBadRequest, "InvalidPushType"
	default:
		// voip, location, complication, ... are real but not ours.
		return http.StatusBadRequest, "InvalidPushType"
	}
	switch p := h.Get("apns-priority"); {
	case p == "" || p == "10":
		if pushType == "background" {
			// Background pushes must have priority 5.
			return http.StatusBadRequest, "BadPriority"
		}
	case p == "5" || p == "1":
	default:
		return http.StatusBadRequest, "BadPriority"
	}
	if len(h.Get("apns-collapse-id")) > 64 {
		return http.StatusBadRequest, "BadCollapseId"
	}
	if e := h.Get("apns-expiration"); e != "" {
		if n, err := strconv.ParseInt(e, 10, 64); err != nil || n < 0 {
			return http.StatusBadRequest, "BadExpirationDate"
		}
	}
	return 0, ""
}

// apnsError writes APNs' error body; timestamp (milliseconds) is only
// sent with 410.
func apnsError(w http.ResponseWriter, status int, reason string, timestamp int64) {
	body := map[string]any{"reason": reason}
	if timestamp != 0 {
		body["timestamp"] = timestamp
	}
	w.Header().Set("apns-id", newUUID())
	writeJSON(w, status, body)
}

// newUUID returns a random UUID, the form of apns-id.
func newUUID() string {
	h := strings.ToUpper(randomHex(16))
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-A" + h[17:20] + "-" + h[20:32]
}
