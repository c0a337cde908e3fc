package fcm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/pushtest"
)

func TestSendWake(t *testing.T) {
	t.Parallel()
	for _, kind := range []pushauth.WakeKind{pushauth.WakeChallenge, pushauth.WakeDismiss} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			f := pushtest.StartFCM(t)
			s := newSender(t, f, nil)
			w := pushauth.Wake{ChallengeID: "ch_8Jq2xZ", Kind: kind, Expires: fixedNow.Add(90 * time.Second)}
			if err := s.Send(context.Background(), deviceToken, w); err != nil {
				t.Fatalf("Send: %v", err)
			}
			m, err := f.Next(waitCtx(t))
			if err != nil {
				t.Fatalf("no delivery: %v", err)
			}
			if m.Token != deviceToken || m.Project != f.ProjectID {
				t.Errorf("delivered to %q in %q, want %q in %q", m.Token, m.Project, deviceToken, f.ProjectID)
			}
			if want := map[string]string{"t": string(kind), "cid": "ch_8Jq2xZ"}; !maps.Equal(m.Data, want) {
				t.Errorf("data = %v, want %v", m.Data, want)
			}
			if m.Android == nil || *m.Android != (pushtest.FCMAndroid{CollapseKey: "ch_8Jq2xZ", Priority: "high", TTL: "90s"}) {
				t.Errorf("android = %+v, want collapse key, high priority, ttl 90s", m.Android)
			}
			// Nothing else: no notification block, no apns or webpush
			// block, nothing about the user.
			if got := slices.Sorted(maps.Keys(keys(t, m.Raw))); !slices.Equal(got, []string{"android", "data", "token"}) {
				t.Errorf("message fields = %v, want android, data, token only", got)
			}
			if got := slices.Sorted(maps.Keys(keys(t, keys(t, m.Raw)["android"]))); !slices.Equal(got, []string{"collapse_key", "priority", "ttl"}) {
				t.Errorf("android fields = %v, want collapse_key, priority, ttl only", got)
			}
		})
	}
}

func TestAccessTokenReused(t *testing.T) {
	t.Parallel()
	f := pushtest.StartFCM(t)
	s := newSender(t, f, nil)
	for i := range 3 {
		w := pushauth.Wake{ChallengeID: "c" + string(rune('0'+i)), Kind: pushauth.WakeChallenge, Expires: fixedNow.Add(time.Minute)}
		if err := s.Send(context.Background(), deviceToken, w); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if n := len(f.Messages()); n != 3 {
		t.Errorf("%d messages delivered, want 3", n)
	}
	if n := f.TokenRequests(); n != 1 {
		t.Errorf("%d access tokens fetched for 3 sends, want 1", n)
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	s := &Sender{now: func() time.Time { return fixedNow }}
	tests := []struct {
		name    string
		expires time.Time
		want    time.Duration
	}{
		{"minutes", fixedNow.Add(5 * time.Minute), 5 * time.Minute},
		{"fraction cut", fixedNow.Add(90*time.Second + 700*time.Millisecond), 90 * time.Second},
		{"under a second", fixedNow.Add(300 * time.Millisecond), time.Second},
		{"already expired", fixedNow.Add(-time.Minute), time.Second},
		{"zero", time.Time{}, time.Second},
		{"beyond FCM maximum", fixedNow.Add(60 * 24 * time.Hour), 28 * 24 * time.Hour},
	}
	for _, tc := range tests {
		m := s.message(deviceToken, pushauth.Wake{ChallengeID: "c", Kind: pushauth.WakeChallenge, Expires: tc.expires})
		if got := *m.Android.TTL; got != tc.want {
			t.Errorf("%s: ttl %v, want %v", tc.name, got, tc.want)
		}
	}
}

// notTokenBody is an INVALID_ARGUMENT about the message, not the token.
const notTokenBody = `{"error":{"code":400,"message":"Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), Field 'ttl', Illegal duration format","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.android.ttl","description":"Illegal duration format"}]}]}}`

func TestProviderErrors(t *testing.T) {
	t.Parallel()
	f := pushtest.StartFCM(t)
	s := newSender(t, f, nil)
	tests := []struct {
		name         string
		status       int
		body         string
		tokenInvalid bool
	}{
		{"unregistered", http.StatusNotFound, pushtest.FCMUnregisteredBody, true},
		{"invalid token", http.StatusBadRequest, pushtest.FCMInvalidTokenBody, true},
		{"invalid token, message only", http.StatusBadRequest, `{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}}`, true},
		{"sender id mismatch", http.StatusForbidden, pushtest.FCMSenderIDMismatchBody, true},
		{"invalid argument about the message", http.StatusBadRequest, notTokenBody, false},
		{"internal", http.StatusInternalServerError, `{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INTERNAL"}]}}`, false},
		{"quota", http.StatusTooManyRequests, `{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}`, false},
		{"not JSON", http.StatusBadGateway, `<html>bad gateway</html>`, false},
	}
	for i, tc := range tests {
		token := deviceToken + string(rune('a'+i))
		f.Reject(token, tc.status, tc.body)
		err := s.Send(context.Background(), token, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: fixedNow.Add(time.Minute)})
		if err == nil {
			t.Errorf("%s: Send succeeded", tc.name)
			continue
		}
		if got := errors.Is(err, pushauth.ErrTokenInvalid); got != tc.tokenInvalid {
			t.Errorf("%s: errors.Is(%v, ErrTokenInvalid) = %v, want %v", tc.name, err, got, tc.tokenInvalid)
		}
		if !strings.HasPrefix(err.Error(), "fcm: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
	}
	if n := len(f.Messages()); n != 0 {
		t.Errorf("%d messages recorded for refused sends", n)
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	f := pushtest.StartFCM(t)
	s := newSender(t, f, nil)
	ok := pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: fixedNow.Add(time.Minute)}
	tests := []struct {
		name         string
		token        string
		wake         pushauth.Wake
		tokenInvalid bool
	}{
		{"empty token", "", ok, true},
		{"token with space", "abc def", ok, true},
		{"token with newline", "abc\ndef", ok, true},
		{"token too long", strings.Repeat("a", maxToken+1), ok, true},
		{"unknown kind", deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: "poke"}, false},
		{"empty challenge id", deviceToken, pushauth.Wake{Kind: pushauth.WakeDismiss}, false},
		{"challenge id too long", deviceToken, pushauth.Wake{ChallengeID: strings.Repeat("c", 65), Kind: pushauth.WakeDismiss}, false},
		{"challenge id not ASCII", deviceToken, pushauth.Wake{ChallengeID: "défi", Kind: pushauth.WakeDismiss}, false},
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
	if n := f.TokenRequests() + len(f.Messages()); n != 0 {
		t.Errorf("%d requests reached the provider", n)
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
			f := pushtest.StartFCM(t)
			f.SetDelay(time.Hour)
			s := newSender(t, f, func(c *Config) { c.Timeout = tc.timeout })
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			err := s.Send(ctx, deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: fixedNow.Add(time.Minute)})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
			}
			if errors.Is(err, pushauth.ErrTokenInvalid) {
				t.Errorf("a timeout must not mark the token stale: %v", err)
			}
		})
	}
}

// TestWrongServiceAccountKey checks that the fake verifies the assertion's
// signature and that a refused token exchange is an error, not a dead
// device token.
func TestWrongServiceAccountKey(t *testing.T) {
	t.Parallel()
	f := pushtest.StartFCM(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(other)
	path := editCredentials(t, f.CredentialsFile(t), "private_key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	// Well under the SDK's retries of a failed exchange (0.5+1+2+4 s): the
	// refusal must be reported as such, at once, not as a timeout.
	s := newSender(t, f, func(c *Config) { c.CredentialsFile, c.Timeout = path, 5*time.Second })
	err = s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: fixedNow.Add(time.Minute)})
	if err == nil || errors.Is(err, pushauth.ErrTokenInvalid) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("Send = %v, want an invalid_grant error", err)
	}
	if len(f.Messages()) != 0 {
		t.Error("a message was delivered without a valid access token")
	}
}

func TestProjectOverride(t *testing.T) {
	t.Parallel()
	f := pushtest.StartFCM(t)
	s := newSender(t, f, func(c *Config) { c.ProjectID = "someone-else" })
	err := s.Send(context.Background(), deviceToken, pushauth.Wake{ChallengeID: "c1", Kind: pushauth.WakeChallenge, Expires: fixedNow.Add(time.Minute)})
	if err == nil || errors.Is(err, pushauth.ErrTokenInvalid) {
		t.Fatalf("Send to another project = %v, want a permission error", err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	f := pushtest.StartFCM(t)
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"no credentials file", Config{}, []string{"credentials file is required"}},
		{"missing file", Config{CredentialsFile: filepath.Join(dir, "nope.json")}, []string{"no such file"}},
		{"not JSON", Config{CredentialsFile: write("text.json", "hello")}, []string{"not a service-account JSON key"}},
		{"too large", Config{CredentialsFile: write("big.json", strings.Repeat(" ", maxCredentialsFile+1))}, []string{"larger than"}},
		{"external account", Config{CredentialsFile: editCredentials(t, f.CredentialsFile(t), "type", "external_account")}, []string{`type is "external_account"`}},
		{"no client email", Config{CredentialsFile: editCredentials(t, f.CredentialsFile(t), "client_email", nil)}, []string{"client_email is missing"}},
		{"no private key", Config{CredentialsFile: editCredentials(t, f.CredentialsFile(t), "private_key", nil)}, []string{"private_key: missing"}},
		{"garbage private key", Config{CredentialsFile: editCredentials(t, f.CredentialsFile(t), "private_key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}, []string{"private_key: not a PKCS#8 or PKCS#1 RSA private key"}},
		{"cleartext token uri", Config{CredentialsFile: editCredentials(t, f.CredentialsFile(t), "token_uri", "http://oauth2.example.com/token")}, []string{"token_uri", "only allowed to a loopback"}},
		{"no project", Config{CredentialsFile: editCredentials(t, f.CredentialsFile(t), "project_id", nil)}, []string{"no project_id"}},
		{"cleartext endpoint", Config{CredentialsFile: f.CredentialsFile(t), Endpoint: "http://fcm.example.com/v1"}, []string{"endpoint", "only allowed to a loopback"}},
		{"endpoint not a URL", Config{CredentialsFile: f.CredentialsFile(t), Endpoint: "fcm.googleapis.com"}, []string{"endpoint", "not a base URL"}},
		{"every problem at once", Config{Endpoint: "ftp://x/", Timeout: -time.Second}, []string{"credentials file is required", "scheme must be https", "timeout -1s is negative"}},
	}
	for _, tc := range tests {
		_, err := New(context.Background(), tc.cfg, nil)
		if err == nil {
			t.Errorf("%s: New succeeded", tc.name)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, want)
			}
		}
		if !strings.HasPrefix(err.Error(), "fcm: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
	}
}

func TestTokenRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"field violation", pushtest.FCMInvalidTokenBody, true},
		{"message only", `{"error":{"message":"The registration token is not a valid FCM registration token"}}`, true},
		{"other field", notTokenBody, false},
		{"unregistered", pushtest.FCMUnregisteredBody, false},
		{"empty", ``, false},
		{"not JSON", `not json`, false},
		{"wrong shape", `{"error":"INVALID_ARGUMENT"}`, false},
	}
	for _, tc := range tests {
		if got := tokenRejected([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: tokenRejected = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// FuzzTokenRejected feeds the parser of FCM error bodies (provider input):
// it never panics, and it only blames the token when the body says so (a
// field violation on message.token, or the invalid-token message), so a
// garbled answer never marks a working device stale.
func FuzzTokenRejected(f *testing.F) {
	for _, s := range []string{pushtest.FCMInvalidTokenBody, pushtest.FCMUnregisteredBody, notTokenBody, "", "{", `{"error":{"details":[null]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if tokenRejected(body) && !bytes.Contains(body, []byte("message.token")) && !bytes.Contains(bytes.ToLower(body), []byte("registration token")) {
			t.Fatalf("token blamed for a body that does not name it: %q", body)
		}
	})
}
