package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/pushtest"
)

func TestSendWake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind     pushauth.WakeKind
		pushType string
		priority string
		payload  string
	}{
		{
			pushauth.WakeChallenge, "alert", "10",
			`{"aps":{"alert":{"title-loc-key":"BRIDGE_SIGNIN_TITLE","loc-key":"BRIDGE_SIGNIN_BODY"},"sound":"default","interruption-level":"time-sensitive","mutable-content":1},"t":"challenge","cid":"ch_8Jq2xZ"}`,
		},
		{
			pushauth.WakeDismiss, "background", "5",
			`{"aps":{"content-available":1},"t":"dismiss","cid":"ch_8Jq2xZ"}`,
		},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			a := pushtest.StartAPNs(t)
			clock := newClock()
			s := newSender(t, a, clock, nil)
			expires := clock.Now().Add(90 * time.Second)
			if err := s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "ch_8Jq2xZ", Kind: tc.kind, Expires: expires}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			r, err := a.Next(waitCtx(t))
			if err != nil {
				t.Fatalf("no delivery: %v", err)
			}
			if r.Token != deviceToken {
				t.Errorf("delivered to %q, want %q", r.Token, deviceToken)
			}
			if string(r.Payload) != tc.payload {
				t.Errorf("payload\n got %s\nwant %s", r.Payload, tc.payload)
			}
			for name, want := range map[string]string{
				"apns-topic":       a.Topic,
				"apns-push-type":   tc.pushType,
				"apns-priority":    tc.priority,
				"apns-collapse-id": "ch_8Jq2xZ",
				"apns-expiration":  strconv.FormatInt(expires.Unix(), 10),
				"content-type":     "application/json",
			} {
				if got := r.Header.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if got := r.Header.Get("authorization"); got != "bearer "+r.JWT {
				t.Errorf("authorization = %q, want bearer and the provider token", got)
			}
			checkProviderToken(t, a, r.JWT, clock.Now())
		})
	}
}

// checkProviderToken checks the JWT's header and claims independently of
// the fake: ES256, kid, iss, iat and nothing else.
func checkProviderToken(t *testing.T, a *pushtest.APNs, token string, iat time.Time) {
	t.Helper()
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("provider token: %v", err)
	}
	if h := tok.Headers[0]; h.KeyID != a.KeyID || h.Algorithm != "ES256" {
		t.Errorf("provider token header kid=%q alg=%q, want %q ES256", h.KeyID, h.Algorithm, a.KeyID)
	}
	var claims map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iss": a.TeamID, "iat": float64(iat.Unix())}
	if len(claims) != len(want) || claims["iss"] != want["iss"] || claims["iat"] != want["iat"] {
		t.Errorf("provider token claims %v, want %v", claims, want)
	}
}

func TestExpiration(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	clock := newClock()
	s := newSender(t, a, clock, nil)
	tests := []struct {
		name    string
		expires time.Time
		want    string
	}{
		{"future", clock.Now().Add(time.Minute), strconv.FormatInt(clock.Now().Add(time.Minute).Unix(), 10)},
		{"past: deliver now or never", clock.Now().Add(-time.Second), "0"},
		{"zero: deliver now or never", time.Time{}, "0"},
	}
	for _, tc := range tests {
		if err := s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeDismiss, Expires: tc.expires}); err != nil {
			t.Fatalf("%s: Send: %v", tc.name, err)
		}
		r, err := a.Next(waitCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Header.Get("apns-expiration"); got != tc.want {
			t.Errorf("%s: apns-expiration %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestProviderTokenReuseAndRefresh(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	clock := newClock()
	s := newSender(t, a, clock, nil)
	send := func() pushtest.APNsRequest {
		t.Helper()
		if err := s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: clock.Now().Add(time.Minute)}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		r, err := a.Next(waitCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	start := clock.Now()
	first := send()
	if second := send(); second.JWT != first.JWT {
		t.Error("two sends signed two provider tokens, want one reused")
	}
	clock.Add(39 * time.Minute)
	if r := send(); r.JWT != first.JWT {
		t.Error("provider token re-signed after 39 minutes; APNs refuses refreshes more often than every 20 minutes and the token is good for 60")
	}
	clock.Add(2 * time.Minute)
	refreshed := send()
	if refreshed.JWT == first.JWT {
		t.Fatal("provider token still in use after 41 minutes, want a new one")
	}
	checkProviderToken(t, a, first.JWT, start)
	checkProviderToken(t, a, refreshed.JWT, clock.Now())
	if r := send(); r.JWT != refreshed.JWT {
		t.Error("the refreshed provider token was not reused")
	}
}

func TestExpiredProviderTokenRenewedOnce(t *testing.T) {
	t.Parallel()
	t.Run("renewed", func(t *testing.T) {
		t.Parallel()
		a := pushtest.StartAPNs(t)
		clock := newClock()
		s := newSender(t, a, clock, nil)
		w := pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: clock.Now().Add(time.Minute)}
		if err := s.Send(context.Background(), deviceToken, w); err != nil {
			t.Fatal(err)
		}
		first, _ := a.Next(waitCtx(t))
		a.ExpireProviderTokens()
		n := countRequests(s)
		if err := s.Send(context.Background(), deviceToken, w); err != nil {
			t.Fatalf("Send after APNs expired the provider token: %v", err)
		}
		second, _ := a.Next(waitCtx(t))
		if second.JWT == first.JWT {
			t.Error("delivered with the expired provider token")
		}
		if got := n.Load(); got != 2 {
			t.Errorf("%d requests, want 2 (refused, then renewed)", got)
		}
	})
	t.Run("only once", func(t *testing.T) {
		t.Parallel()
		a := pushtest.StartAPNs(t)
		s := newSender(t, a, newClock(), nil)
		// The fake's clock is two hours ahead: every token is too old.
		a.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
		n := countRequests(s)
		err := s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: time.Now().Add(time.Minute)})
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusForbidden || e.Reason != "ExpiredProviderToken" {
			t.Fatalf("Send = %v, want 403 ExpiredProviderToken", err)
		}
		if errors.Is(err, pushauth.ErrTokenInvalid) {
			t.Error("a provider token problem marked the device token stale")
		}
		if got := n.Load(); got != 2 {
			t.Errorf("%d requests, want 2 (one renewal, no loop)", got)
		}
	})
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	s := newSender(t, a, newClock(), nil)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "c" + strconv.Itoa(i), Kind: pushauth.WakeChallenge, Expires: time.Now().Add(time.Minute)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	jwts := map[string]bool{}
	for _, r := range a.Requests() {
		jwts[r.JWT] = true
	}
	if len(a.Requests()) != n || len(jwts) != 1 {
		t.Errorf("%d deliveries with %d provider tokens, want %d with 1", len(a.Requests()), len(jwts), n)
	}
}

func TestProviderErrors(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	s := newSender(t, a, newClock(), nil)
	tests := []struct {
		name         string
		status       int
		reason       string
		tokenInvalid bool
	}{
		{"unregistered", http.StatusGone, "Unregistered", true},
		{"expired device token", http.StatusGone, "ExpiredToken", true},
		{"bad device token", http.StatusBadRequest, "BadDeviceToken", true},
		{"token for another topic", http.StatusBadRequest, "DeviceTokenNotForTopic", true},
		{"bad collapse id", http.StatusBadRequest, "BadCollapseId", false},
		{"invalid provider token", http.StatusForbidden, "InvalidProviderToken", false},
		{"too many requests", http.StatusTooManyRequests, "TooManyRequests", false},
		{"internal", http.StatusInternalServerError, "InternalServerError", false},
		{"unavailable", http.StatusServiceUnavailable, "ServiceUnavailable", false},
	}
	for i, tc := range tests {
		token := fmt.Sprintf("%064x", i+1)
		a.Reject(token, tc.status, tc.reason)
		err := s.Send(context.Background(), token, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: time.Now().Add(time.Minute)})
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: Send = %v, want an *Error", tc.name, err)
			continue
		}
		if e.Status != tc.status || e.Reason != tc.reason {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, e.Status, e.Reason, tc.status, tc.reason)
		}
		if got := errors.Is(err, pushauth.ErrTokenInvalid); got != tc.tokenInvalid {
			t.Errorf("%s: errors.Is(%v, ErrTokenInvalid) = %v, want %v", tc.name, err, got, tc.tokenInvalid)
		}
		if tc.status == http.StatusGone && e.Timestamp.IsZero() {
			t.Errorf("%s: 410 without the timestamp", tc.name)
		}
		if !strings.HasPrefix(err.Error(), "apns: status "+strconv.Itoa(tc.status)+": "+tc.reason) {
			t.Errorf("%s: error text %q", tc.name, err)
		}
	}
	if n := len(a.Requests()); n != 0 {
		t.Errorf("%d deliveries recorded for refused pushes", n)
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	s := newSender(t, a, newClock(), nil)
	n := countRequests(s)
	ok := pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: time.Now().Add(time.Minute)}
	tests := []struct {
		name         string
		token        string
		wake         pushauth.Wake
		tokenInvalid bool
	}{
		{"empty token", "", ok, true},
		{"not hex", strings.Repeat("zz", 32), ok, true},
		{"odd length", deviceToken[:63], ok, true},
		{"path in token", "../../3/device/" + deviceToken, ok, true},
		{"too long", strings.Repeat("ab", 101), ok, true},
		{"unknown kind", deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: "poke"}, false},
		{"empty challenge id", deviceToken, pushauth.Wake{Kind: pushauth.WakeDismiss}, false},
		{"challenge id longer than a collapse id", deviceToken, pushauth.Wake{ChallengeID: strings.Repeat("c", 65), Kind: pushauth.WakeDismiss}, false},
		{"challenge id with a line end", deviceToken, pushauth.Wake{ChallengeID: "c1\r\nx: y", Kind: pushauth.WakeDismiss}, false},
	}
	for _, tc := range tests {
		err := s.Send(context.Background(), tc.token, tc.wake)
		if err == nil {
			t.Errorf("%s: Send succeeded", tc.name)
			continue
		}
		if got := errors.Is(err, pushauth.ErrTokenInvalid); got != tc.tokenInvalid {
			t.Errorf("%s: errors.Is(%v, ErrTokenInvalid) = %v, want %v", tc.name, err, got, tc.tokenInvalid)
		}
	}
	if got := n.Load(); got != 0 {
		t.Errorf("%d requests made, want none", got)
	}
}

func TestSlowProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		timeout    time.Duration // Config.Timeout
		ctxTimeout time.Duration // the caller's deadline
	}{
		{"caller deadline", 0, 200 * time.Millisecond},
		{"config timeout", 200 * time.Millisecond, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := pushtest.StartAPNs(t)
			a.SetDelay(time.Hour)
			s := newSender(t, a, newClock(), func(c *Config) { c.Timeout = tc.timeout })
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			err := s.Send(ctx, deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: time.Now().Add(time.Minute)})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
			}
			if errors.Is(err, pushauth.ErrTokenInvalid) {
				t.Errorf("a timeout must not mark the token stale: %v", err)
			}
		})
	}
}

// TestWrongKey checks that the fake verifies provider tokens, and that a
// refused one is not taken for a dead device token.
func TestWrongKey(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	other := pushtest.StartAPNs(t) // another key, same ids below
	s := newSender(t, a, newClock(), func(c *Config) { c.KeyFile = other.KeyFile(t) })
	err := s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: time.Now().Add(time.Minute)})
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusForbidden || e.Reason != "InvalidProviderToken" || errors.Is(err, pushauth.ErrTokenInvalid) {
		t.Fatalf("Send = %v, want 403 InvalidProviderToken", err)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		a := pushtest.StartAPNs(t)
		s := newSender(t, a, newClock(), func(c *Config) { c.CAFile = "" })
		err := s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: time.Now().Add(time.Minute)})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Send to a server with an unknown CA = %v, want a certificate error", err)
		}
	})
	t.Run("HTTP/1.1 only server", func(t *testing.T) {
		t.Parallel()
		a := pushtest.StartAPNs(t)
		var reached atomic.Bool
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
		srv.StartTLS() // no EnableHTTP2: HTTP/1.1 only
		t.Cleanup(srv.Close)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		s := newSender(t, a, newClock(), func(c *Config) { c.Endpoint, c.CAFile = srv.URL, ca })
		err := s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: time.Now().Add(time.Minute)})
		if err == nil || reached.Load() {
			t.Fatalf("Send over HTTP/1.1 = %v (handler reached: %v), want an error before any request", err, reached.Load())
		}
	})
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pemFile := func(name, typ string, der []byte) string {
		return write(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	sec1, _ := x509.MarshalECPrivateKey(ec256)
	p384, _ := x509.MarshalPKCS8PrivateKey(ec384)
	pRSA, _ := x509.MarshalPKCS8PrivateKey(rsaKey)

	valid := Config{KeyFile: a.KeyFile(t), KeyID: a.KeyID, TeamID: a.TeamID, Topic: a.Topic}
	with := func(mod func(*Config)) Config {
		c := valid
		mod(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"missing key file", with(func(c *Config) { c.KeyFile = filepath.Join(dir, "nope.p8") }), []string{"key file", "no such file"}},
		{"not PEM", with(func(c *Config) { c.KeyFile = write("text.p8", []byte("hello")) }), []string{"not PEM"}},
		{"SEC1 key", with(func(c *Config) { c.KeyFile = pemFile("sec1.p8", "EC PRIVATE KEY", sec1) }), []string{`"EC PRIVATE KEY"`, "PKCS#8"}},
		{"garbage PKCS#8", with(func(c *Config) { c.KeyFile = pemFile("junk.p8", "PRIVATE KEY", []byte("junk")) }), []string{"junk.p8"}},
		{"P-384 key", with(func(c *Config) { c.KeyFile = pemFile("p384.p8", "PRIVATE KEY", p384) }), []string{"want an EC P-256 key"}},
		{"RSA key", with(func(c *Config) { c.KeyFile = pemFile("rsa.p8", "PRIVATE KEY", pRSA) }), []string{"*rsa.PrivateKey", "want an EC P-256 key"}},
		{"CA file missing", with(func(c *Config) { c.CAFile = filepath.Join(dir, "nope.pem") }), []string{"CA file", "no such file"}},
		{"CA file without certificates", with(func(c *Config) { c.CAFile = write("empty.pem", []byte("nothing")) }), []string{"holds no PEM certificate"}},
		{"http endpoint", with(func(c *Config) { c.Endpoint = "http://api.push.apple.com" }), []string{"endpoint", "https"}},
		{"endpoint with a path", with(func(c *Config) { c.Endpoint = "https://api.push.apple.com/3/device" }), []string{"endpoint"}},
		{"key id with spaces", with(func(c *Config) { c.KeyID = "AB CD" }), []string{"key id", "letters and digits"}},
		{"every problem at once", Config{Topic: "a b", Timeout: -1}, []string{"key file (.p8) is required", "key id: required", "team id: required", `topic "a b"`, "timeout -1ns is negative"}},
		{"no topic", with(func(c *Config) { c.Topic = "" }), []string{"topic (the app's bundle id) is required"}},
	}
	for _, tc := range tests {
		_, err := New(tc.cfg, nil)
		if err == nil {
			t.Errorf("%s: New succeeded", tc.name)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, want)
			}
		}
		if !strings.HasPrefix(err.Error(), "apns: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
	}
}

func TestParseReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body   string
		reason string
		ms     int64
	}{
		{`{"reason":"BadDeviceToken"}`, "BadDeviceToken", 0},
		{`{"reason":"Unregistered","timestamp":1700000000000}`, "Unregistered", 1700000000000},
		{`{"reason":"Unregistered","timestamp":"1700000000000"}`, "Unregistered", 1700000000000},
		{`{"reason":"Bad\r\nReason: x"}`, "BadReasonx", 0},
		{`{"reason":"` + strings.Repeat("A", 100) + `"}`, strings.Repeat("A", maxReason), 0},
		{`{"reason":"X","timestamp":-5}`, "X", 0},
		{`{"reason":"X","timestamp":1e300}`, "X", 0},
		{`{"reason":7}`, "", 0},
		{`not json`, "", 0},
		{``, "", 0},
	}
	for _, tc := range tests {
		reason, ts := parseReason([]byte(tc.body))
		var ms int64
		if !ts.IsZero() {
			ms = ts.UnixMilli()
		}
		if reason != tc.reason || ms != tc.ms {
			t.Errorf("parseReason(%q) = %q, %d; want %q, %d", tc.body, reason, ms, tc.reason, tc.ms)
		}
	}
}

// FuzzAPNsReason feeds the parser of APNs error bodies (provider input): it
// never panics, and what it returns is safe to log.
func FuzzAPNsReason(f *testing.F) {
	for _, s := range []string{`{"reason":"Unregistered","timestamp":1700000000000}`, `{"reason":"BadDeviceToken"}`, `{}`, `{"timestamp":"x"}`, `[`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reason, ts := parseReason(body)
		if len(reason) > maxReason || sanitize(reason, maxReason) != reason {
			t.Fatalf("unsafe reason %q from %q", reason, body)
		}
		if !ts.IsZero() && (ts.Before(time.Unix(0, 0)) || ts.Year() > 3000) {
			t.Fatalf("implausible timestamp %v from %q", ts, body)
		}
	})
}
