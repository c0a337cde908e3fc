package webpush

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/webpush/webpushtest"
	"github.com/bridge-idp/bridge/store"
)

// A challenge wake reaches the push service encrypted for the subscription,
// with TTL, Urgency, Topic and a VAPID header the service verifies.
func TestSendRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.subscribe(t)
	if err := f.s.CheckToken(tok); err != nil {
		t.Fatalf("CheckToken of a fresh subscription: %v", err)
	}
	const cid = "Yb3uS7hPq2-_xw0RkT9aLg" // 22 characters: fits in Topic
	if err := f.s.Send(ctx(t), tok, f.wake(cid)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m, err := f.ps.Next(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]string
	if err := json.Unmarshal(m.Plaintext, &p); err != nil || len(p) != 2 || p["t"] != "challenge" || p["cid"] != cid {
		t.Errorf("payload %s, want {\"t\":\"challenge\",\"cid\":%q}", m.Plaintext, cid)
	}
	if m.TTL != 90 || m.Urgency != "high" || m.Topic != cid {
		t.Errorf("TTL %d, Urgency %q, Topic %q; want 90, high, %s", m.TTL, m.Urgency, m.Topic, cid)
	}
	if m.Audience != f.ps.URL() || m.Subject != "mailto:ops@example.org" || m.VAPIDKey != f.s.PublicKey() {
		t.Errorf("VAPID aud %q sub %q k %q; want %q, mailto:ops@example.org, %q", m.Audience, m.Subject, m.VAPIDKey, f.ps.URL(), f.s.PublicKey())
	}
	if want := f.clock.Now().Add(12 * time.Hour); !m.Expires.Equal(want) {
		t.Errorf("JWT exp %v, want %v", m.Expires, want)
	}

	// A challenge id too long for Topic goes without one; an expired
	// challenge goes with TTL 0.
	long := strings.Repeat("a", 43)
	w := f.wake(long)
	w.Expires = f.clock.Now().Add(-time.Second)
	if err := f.s.Send(ctx(t), tok, w); err != nil {
		t.Fatal(err)
	}
	m, err = f.ps.Next(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "" || m.Header.Get("Topic") != "" || m.TTL != 0 {
		t.Errorf("long id: Topic %q, TTL %d; want none and 0", m.Header.Get("Topic"), m.TTL)
	}
}

// Dismiss wakes never go over Web Push.
func TestDismissDropped(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.subscribe(t)
	w := f.wake("c1")
	w.Kind = pushauth.WakeDismiss
	if err := f.s.Send(ctx(t), tok, w); err != nil {
		t.Fatalf("Send(dismiss) = %v, want nil", err)
	}
	if n := len(f.ps.Messages()) + len(f.ps.Refusals()); n != 0 {
		t.Errorf("the push service got %d requests for a dismiss", n)
	}
	if got := count(t, f.s.m.dropped, dropDismiss); got != 1 {
		t.Errorf("dropped{dismiss} = %v, want 1", got)
	}
}

// 404 and 410 retire the subscription; 400, 403 and 413 are permanent
// errors, not retried and not a stale token.
func TestPushServiceRefusals(t *testing.T) {
	for _, tc := range []struct {
		status int
		stale  bool
	}{
		{http.StatusGone, true},
		{http.StatusNotFound, true},
		{http.StatusBadRequest, false},
		{http.StatusForbidden, false},
		{http.StatusRequestEntityTooLarge, false},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			f := newFixture(t, nil)
			tok := f.subscribe(t)
			f.ps.Fail(tok, webpushtest.Reply{Status: tc.status})
			err := f.s.Send(ctx(t), tok, f.wake("c1"))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if errors.Is(err, pushauth.ErrTokenInvalid) != tc.stale {
				t.Errorf("Send = %v; ErrTokenInvalid %v, want %v", err, !tc.stale, tc.stale)
			}
			if n := len(f.ps.Refusals()); n != 1 {
				t.Errorf("%d requests, want 1 (not retried)", n)
			}
			if len(f.waits.all()) != 0 {
				t.Errorf("waited %v", f.waits.all())
			}
		})
	}
}

// 429 and 5xx are retried with back-off, Retry-After honoured, until the
// push service takes the push or the attempts run out.
func TestRetries(t *testing.T) {
	t.Run("429 then success, Retry-After honoured", func(t *testing.T) {
		f := newFixture(t, nil)
		tok := f.subscribe(t)
		f.ps.Fail(tok, webpushtest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "7", Times: 1})
		if err := f.s.Send(ctx(t), tok, f.wake("c1")); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := f.waits.all(); !slices.Equal(got, []time.Duration{7 * time.Second}) {
			t.Errorf("waited %v, want [7s] (Retry-After)", got)
		}
		if len(f.ps.Messages()) != 1 || len(f.ps.Refusals()) != 1 {
			t.Errorf("%d accepted, %d refused; want 1 and 1", len(f.ps.Messages()), len(f.ps.Refusals()))
		}
		if got := count(t, f.s.m.requests, resultThrottled); got != 1 {
			t.Errorf("requests{throttled} = %v", got)
		}
		if got := count(t, f.s.m.requests, resultCreated); got != 1 {
			t.Errorf("requests{created} = %v", got)
		}
	})
	t.Run("5xx with doubling back-off, bounded attempts", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.MaxAttempts = 3 })
		tok := f.subscribe(t)
		f.ps.Fail(tok, webpushtest.Reply{Status: http.StatusInternalServerError})
		err := f.s.Send(ctx(t), tok, f.wake("c1"))
		if err == nil || errors.Is(err, pushauth.ErrTokenInvalid) {
			t.Fatalf("Send = %v, want a plain error", err)
		}
		if got := f.waits.all(); !slices.Equal(got, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}) {
			t.Errorf("waited %v, want [100ms 200ms]", got)
		}
		if n := len(f.ps.Refusals()); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
	t.Run("Retry-After beyond the challenge's expiry", func(t *testing.T) {
		f := newFixture(t, nil)
		tok := f.subscribe(t)
		f.ps.Fail(tok, webpushtest.Reply{Status: http.StatusServiceUnavailable, RetryAfter: "3600"})
		err := f.s.Send(ctx(t), tok, f.wake("c1"))
		if err == nil || !strings.Contains(err.Error(), "expires before the next attempt") {
			t.Fatalf("Send = %v", err)
		}
		if n := len(f.ps.Refusals()); n != 1 || len(f.waits.all()) != 0 {
			t.Errorf("%d requests and waits %v; want 1 and none", n, f.waits.all())
		}
	})
	t.Run("Retry-After beyond Send's deadline", func(t *testing.T) {
		f := newFixture(t, nil)
		tok := f.subscribe(t)
		f.ps.Fail(tok, webpushtest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "60"})
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := f.s.Send(c, tok, f.wake("c1"))
		if err == nil || !strings.Contains(err.Error(), "deadline comes before the next attempt") {
			t.Fatalf("Send = %v", err)
		}
	})
	t.Run("network errors", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.MaxAttempts = 2 })
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now: connection refused
		tok := strings.Replace(f.subscribe(t), f.ps.URL(), "http://"+addr, 1)
		err = f.s.Send(ctx(t), tok, f.wake("c1"))
		if err == nil || strings.Contains(err.Error(), "/push/") {
			t.Fatalf("Send = %v (an error without the endpoint's path wanted)", err)
		}
		if got := count(t, f.s.m.requests, resultNetwork); got != 2 {
			t.Errorf("requests{network} = %v, want 2", got)
		}
	})
}

// The push service refuses a push signed with a key other than the
// subscription's (403): the sender signs with the key the subscription
// names, so here the token lies about it.
func TestVAPIDKeyMustBeTheSubscriptions(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.subscribe(t)
	old := f.s.PublicKey()
	if _, err := f.km.Rotate(context.Background(), store.PurposeVAPID); err != nil {
		t.Fatal(err)
	}
	lying := strings.Replace(tok, old, f.s.PublicKey(), 1)
	err := f.s.Send(ctx(t), lying, f.wake("c1"))
	if err == nil || errors.Is(err, pushauth.ErrTokenInvalid) {
		t.Fatalf("Send = %v, want a permanent error", err)
	}
	if r := f.ps.Refusals(); len(r) != 1 || r[0].Status != http.StatusForbidden {
		t.Errorf("refusals %+v, want one 403", r)
	}
}

// After a rotation a subscription made with the old key is still signed
// with it, one made with the new key with the new one; once the old key's
// overlap is over, the old subscription is a stale token and nothing is
// sent.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t, nil)
	oldTok, oldKey := f.subscribe(t), f.s.PublicKey()
	if _, err := f.km.Rotate(context.Background(), store.PurposeVAPID); err != nil {
		t.Fatal(err)
	}
	newKey := f.s.PublicKey()
	if newKey == oldKey {
		t.Fatal("PublicKey did not change with the rotation")
	}
	newTok := f.subscribe(t)
	for _, tc := range []struct{ tok, key string }{{oldTok, oldKey}, {newTok, newKey}} {
		if err := f.s.Send(ctx(t), tc.tok, f.wake("c1")); err != nil {
			t.Fatalf("Send: %v", err)
		}
		m, err := f.ps.Next(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if m.VAPIDKey != tc.key {
			t.Errorf("signed with %s, want %s", m.VAPIDKey, tc.key)
		}
	}

	f.clock.Add(24 * time.Hour)
	err := f.s.Send(ctx(t), oldTok, f.wake("c2"))
	if !errors.Is(err, pushauth.ErrTokenInvalid) {
		t.Fatalf("old subscription after the overlap: Send = %v, want ErrTokenInvalid", err)
	}
	if n := len(f.ps.Messages()) + len(f.ps.Refusals()); n != 2 {
		t.Errorf("%d requests, want the 2 before the overlap ended", n)
	}
	if err := f.s.Send(ctx(t), newTok, f.wake("c2")); err != nil {
		t.Errorf("new subscription: %v", err)
	}
}

// A redirect from a push service is not followed: it could lead past the
// allow-list.
func TestRedirectNotFollowed(t *testing.T) {
	var hit atomic.Bool
	inner := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit.Store(true) }))
	defer inner.Close()
	redir := httptest.NewServer(http.RedirectHandler(inner.URL+"/x", http.StatusTemporaryRedirect))
	defer redir.Close()
	f := newFixture(t, nil)
	tok := strings.Replace(f.subscribe(t), f.ps.URL(), redir.URL, 1)
	if err := f.s.Send(ctx(t), tok, f.wake("c1")); err == nil || !strings.Contains(err.Error(), "307") {
		t.Errorf("Send = %v, want the 307 as an error", err)
	}
	if hit.Load() {
		t.Error("the redirect was followed")
	}
}

// New checks its config, needs a VAPID key, and registers its metrics.
func TestNew(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no subject", Config{AllowedHosts: []string{"fcm.googleapis.com"}}, "subject"},
		{"bare address subject", Config{Subject: "ops@example.org", AllowedHosts: []string{"fcm.googleapis.com"}}, "subject"},
		{"http subject", Config{Subject: "http://example.org", AllowedHosts: []string{"fcm.googleapis.com"}}, "subject"},
		{"no hosts", Config{Subject: "https://example.org"}, "no allowed"},
		{"bad host", Config{Subject: "https://example.org", AllowedHosts: []string{"https://fcm.googleapis.com/"}}, "not a host name"},
		{"negative", Config{Subject: "https://example.org", AllowedHosts: []string{"x.org"}, Timeout: -1}, "negative"},
	} {
		if _, err := New(tc.cfg, f.km, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	s, err := New(Config{Subject: "https://bridge.example.org", AllowedHosts: []string{"fcm.googleapis.com"}}, f.km, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if s.Provider() != "webpush" {
		t.Errorf("Provider = %q", s.Provider())
	}
	s.m.dropped.WithLabelValues(dropDismiss).Inc()
	s.m.requests.WithLabelValues(resultCreated).Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if !slices.Equal(names, []string{"bridge_webpush_dropped_total", "bridge_webpush_requests_total"}) {
		t.Errorf("registered %v", names)
	}
}
