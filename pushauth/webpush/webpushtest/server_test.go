package webpushtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

func newKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return k, base64.RawURLEncoding.EncodeToString(b)
}

func jwt(t testing.TB, k *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(claims)
	obj, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// req is a request the service checks up to decryption: its body is not
// a message for the subscription, so it ends in 400 "payload".
type req struct {
	method, path, ttl, encoding, auth, urgency, topic string
	body                                              []byte
}

func (r req) build() *http.Request {
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(string(r.body)))
	for name, v := range map[string]string{"TTL": r.ttl, "Content-Encoding": r.encoding, "Authorization": r.auth, "Urgency": r.urgency, "Topic": r.topic} {
		if v != "" {
			hr.Header.Set(name, v)
		}
	}
	return hr
}

// The service refuses what FCM and autopush refuse, with their statuses.
func TestServiceIsStrict(t *testing.T) {
	s := Start(t)
	key, pub := newKey(t)
	other, otherPub := newKey(t)
	tok, err := s.NewSubscription(pub)
	if err != nil {
		t.Fatal(err)
	}
	var ws protocol.WebPushSubscription
	if err := json.Unmarshal([]byte(tok), &ws); err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(ws.Endpoint, s.URL())
	now := time.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"aud": s.URL(), "exp": now.Add(12 * time.Hour).Unix(), "sub": "mailto:ops@example.org"}
		if edit != nil {
			edit(c)
		}
		return c
	}
	vapid := func(k *ecdsa.PrivateKey, kText string, edit func(map[string]any)) string {
		return "vapid t=" + jwt(t, k, claims(edit)) + ", k=" + kText
	}
	good := req{method: "POST", path: path, ttl: "60", encoding: "aes128gcm", auth: vapid(key, pub, nil), urgency: "high", body: make([]byte, 200)}
	for _, tc := range []struct {
		name   string
		edit   func(*req)
		status int
		reason string
	}{
		{"all headers right, body not for this subscription", func(*req) {}, 400, "payload"},
		{"unknown endpoint", func(r *req) { r.path = "/push/nope" }, 404, ""},
		{"GET", func(r *req) { r.method = "GET" }, 405, ""},
		{"no TTL", func(r *req) { r.ttl = "" }, 400, "TTL"},
		{"negative TTL", func(r *req) { r.ttl = "-1" }, 400, "TTL"},
		{"aesgcm (the old draft)", func(r *req) { r.encoding = "aesgcm" }, 415, ""},
		{"no Content-Encoding", func(r *req) { r.encoding = "" }, 415, ""},
		{"body over 4096", func(r *req) { r.body = make([]byte, 4097) }, 413, ""},
		{"Urgency unknown", func(r *req) { r.urgency = "urgent" }, 400, "Urgency"},
		{"Topic too long", func(r *req) { r.topic = strings.Repeat("a", 33) }, 400, "Topic"},
		{"Topic not base64url", func(r *req) { r.topic = "a+b" }, 400, "Topic"},
		{"no Authorization", func(r *req) { r.auth = "" }, 401, "vapid scheme"},
		{"WebPush scheme (the old draft)", func(r *req) { r.auth = "WebPush " + jwt(t, key, claims(nil)) }, 401, "vapid scheme"},
		{"no k", func(r *req) { r.auth = "vapid t=" + jwt(t, key, claims(nil)) }, 401, "needs t and k"},
		{"signed by another key than k", func(r *req) { r.auth = "vapid t=" + jwt(t, other, claims(nil)) + ", k=" + pub }, 401, "does not verify"},
		{"aud of another origin", func(r *req) {
			r.auth = vapid(key, pub, func(c map[string]any) { c["aud"] = "https://fcm.googleapis.com" })
		}, 401, "aud"},
		{"aud as an array", func(r *req) { r.auth = vapid(key, pub, func(c map[string]any) { c["aud"] = []string{s.URL()} }) }, 401, "aud"},
		{"expired", func(r *req) {
			r.auth = vapid(key, pub, func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })
		}, 401, "exp"},
		{"exp 25 h ahead", func(r *req) {
			r.auth = vapid(key, pub, func(c map[string]any) { c["exp"] = now.Add(25 * time.Hour).Unix() })
		}, 401, "exp"},
		{"no exp", func(r *req) { r.auth = vapid(key, pub, func(c map[string]any) { delete(c, "exp") }) }, 401, "exp"},
		{"sub a bare address", func(r *req) { r.auth = vapid(key, pub, func(c map[string]any) { c["sub"] = "ops@example.org" }) }, 401, "sub"},
		{"sub http", func(r *req) { r.auth = vapid(key, pub, func(c map[string]any) { c["sub"] = "http://example.org" }) }, 401, "sub"},
		{"a valid JWT by a key that is not the subscription's", func(r *req) { r.auth = vapid(other, otherPub, nil) }, 403, "applicationServerKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.edit(&r)
			rec := httptest.NewRecorder()
			s.serve(rec, r.build())
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.reason) {
				t.Errorf("answered %d %q, want %d about %q", rec.Code, rec.Body, tc.status, tc.reason)
			}
		})
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}

	// Fail: the next push gets 410, then normal service again.
	s.Fail(tok, Reply{Status: http.StatusGone, Times: 1})
	for _, want := range []int{410, 400} {
		rec := httptest.NewRecorder()
		s.serve(rec, good.build())
		if rec.Code != want {
			t.Errorf("answered %d, want %d", rec.Code, want)
		}
	}
	s.Fail(tok, Reply{Status: http.StatusTooManyRequests, RetryAfter: "5"})
	rec := httptest.NewRecorder()
	s.serve(rec, good.build())
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("answered %d with Retry-After %q, want 429 and 5", rec.Code, rec.Header().Get("Retry-After"))
	}
	if r := s.Refusals(); len(r) == 0 || r[len(r)-1].Token != tok || r[len(r)-1].Status != 429 {
		t.Errorf("last refusal %+v", r[len(r)-1])
	}
}

func TestNewSubscription(t *testing.T) {
	s := Start(t)
	_, pub := newKey(t)
	tok, err := s.NewSubscription(pub)
	if err != nil {
		t.Fatal(err)
	}
	var ws protocol.WebPushSubscription
	dec := json.NewDecoder(strings.NewReader(tok))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ws); err != nil {
		t.Fatal(err)
	}
	p, _ := base64.RawURLEncoding.DecodeString(ws.Keys.P256DH)
	a, _ := base64.RawURLEncoding.DecodeString(ws.Keys.Auth)
	if !strings.HasPrefix(ws.Endpoint, s.URL()+"/push/") || len(p) != 65 || len(a) != 16 || ws.VAPID != pub {
		t.Errorf("subscription %s", tok)
	}
	for _, bad := range []string{"", "not base64!", base64.RawURLEncoding.EncodeToString(make([]byte, 65))} {
		if _, err := s.NewSubscription(bad); err == nil {
			t.Errorf("NewSubscription(%q) accepted", bad)
		}
	}
}

// FuzzRequest: whatever arrives, the service answers with a status and
// never accepts a message it could not decrypt.
func FuzzRequest(f *testing.F) {
	s := Start(f)
	key, pub := newKey(f)
	tok, err := s.NewSubscription(pub)
	if err != nil {
		f.Fatal(err)
	}
	var ws protocol.WebPushSubscription
	_ = json.Unmarshal([]byte(tok), &ws)
	path := strings.TrimPrefix(ws.Endpoint, s.URL())
	auth := "vapid t=" + jwt(f, key, map[string]any{"aud": s.URL(), "exp": time.Now().Add(time.Hour).Unix(), "sub": "https://example.org"}) + ", k=" + pub
	f.Add("POST", path, "60", "aes128gcm", auth, "high", "abc", make([]byte, 120))
	f.Add("POST", path, "0", "aes128gcm", "vapid t=a.b.c, k="+pub, "", "", []byte{0, 0, 0, 0})
	f.Add("POST", path, "1", "aes128gcm", "vapid k=, t=", "low", "", make([]byte, 21))
	f.Add("PUT", "/push/", "x", "gzip", "Bearer x", "x", strings.Repeat("_", 40), []byte("{}"))
	f.Fuzz(func(t *testing.T, method, p, ttl, encoding, authz, urgency, topic string, body []byte) {
		if _, err := url.ParseRequestURI(p); err != nil || !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " #") || !validMethod(method) {
			return // not a request line httptest can make
		}
		r := req{method: method, path: p, ttl: ttl, encoding: encoding, auth: authz, urgency: urgency, topic: topic, body: body}
		hr := r.build()
		before := len(s.Messages())
		rec := httptest.NewRecorder()
		s.serve(rec, hr)
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("status %d", rec.Code)
		}
		if rec.Code == http.StatusCreated && len(s.Messages()) != before+1 {
			t.Fatal("201 without a recorded message")
		}
	})
}

func validMethod(m string) bool {
	return m != "" && strings.Trim(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == ""
}
