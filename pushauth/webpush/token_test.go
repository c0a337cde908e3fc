package webpush

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/pushauth"
)

// testToken builds a subscription token for endpoint, with valid keys
// unless edit changes them.
func testToken(t testing.TB, endpoint string, edit func(m map[string]any)) string {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]any{
		"endpoint": endpoint,
		"keys":     map[string]any{"p256dh": enc(k.PublicKey().Bytes()), "auth": enc(bytes.Repeat([]byte{1}, 16))},
		"vapid":    enc(v.PublicKey().Bytes()),
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var testHosts = []string{"fcm.googleapis.com", "updates.push.services.mozilla.com", "*.push.apple.com", "*.notify.windows.com", "127.0.0.1", "localhost"}

func TestCheckToken(t *testing.T) {
	allow, err := newAllowList(testHosts)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sender{allow: allow}
	keysOf := func(m map[string]any) map[string]any { return m["keys"].(map[string]any) }
	offCurve := base64.RawURLEncoding.EncodeToString(append([]byte{4}, bytes.Repeat([]byte{1}, 64)...))
	for _, tc := range []struct {
		name     string
		endpoint string
		edit     func(map[string]any)
		want     string // "" = accepted
	}{
		{"FCM", "https://fcm.googleapis.com/fcm/send/dXk3:APA91b", nil, ""},
		{"Mozilla", "https://updates.push.services.mozilla.com/wpush/v2/gAAAAA", nil, ""},
		{"Apple subdomain", "https://web.push.apple.com/QGuQyavXutnMH", nil, ""},
		{"Windows subdomain, upper case", "https://WNS2-BY3P.Notify.Windows.com/w/?token=BQYAAA", nil, ""},
		{"default port", "https://fcm.googleapis.com:443/fcm/send/x", nil, ""},
		{"other port", "https://fcm.googleapis.com:8443/fcm/send/x", nil, "endpoint port 8443: push services are reached on the default https port only"},
		{"port 80 over https", "https://updates.push.services.mozilla.com:80/wpush/v2/x", nil, "default https port only"},
		{"other port on a wildcard host", "https://web.push.apple.com:22/x", nil, "default https port only"},
		{"loopback https listed by name, any port", "https://127.0.0.1:9443/push/x", nil, ""},
		{"loopback http listed by name", "http://127.0.0.1:8123/push/x", nil, ""},
		{"localhost http", "http://localhost:8123/push/x", nil, ""},
		{"toJSON's expirationTime passes", "https://fcm.googleapis.com/x", func(m map[string]any) { m["expirationTime"] = nil }, ""},
		{"apex of a wildcard", "https://push.apple.com/x", nil, "not an allowed push service"},
		{"other host", "https://internal.example.org/x", nil, "not an allowed push service"},
		{"suffix trick", "https://fcm.googleapis.com.evil.org/x", nil, "not an allowed push service"},
		{"metadata address", "http://169.254.169.254/latest/meta-data", nil, "not an allowed push service"},
		{"http to a real service", "http://fcm.googleapis.com/x", nil, "must be https"},
		{"userinfo", "https://user:pw@fcm.googleapis.com/x", nil, "user info"},
		{"fragment", "https://fcm.googleapis.com/x#frag", nil, "fragment"},
		{"relative", "/fcm/send/x", nil, "absolute"},
		{"other scheme", "ftp://fcm.googleapis.com/x", nil, "must be https"},
		{"unknown member", "https://fcm.googleapis.com/x", func(m map[string]any) { m["extra"] = 1 }, "unknown field"},
		{"p256dh short", "https://fcm.googleapis.com/x", func(m map[string]any) { keysOf(m)["p256dh"] = "BAAA" }, "uncompressed P-256 point"},
		{"p256dh off the curve", "https://fcm.googleapis.com/x", func(m map[string]any) { keysOf(m)["p256dh"] = offCurve }, "not a point on P-256"},
		{"p256dh not base64url", "https://fcm.googleapis.com/x", func(m map[string]any) { keysOf(m)["p256dh"] = "BC+/" }, "not base64url"},
		{"auth 15 bytes", "https://fcm.googleapis.com/x", func(m map[string]any) {
			keysOf(m)["auth"] = base64.RawURLEncoding.EncodeToString(make([]byte, 15))
		}, "keys.auth is 15 bytes"},
		{"no auth", "https://fcm.googleapis.com/x", func(m map[string]any) { delete(keysOf(m), "auth") }, "keys.auth is not base64url"},
		{"vapid missing", "https://fcm.googleapis.com/x", func(m map[string]any) { delete(m, "vapid") }, "vapid is not base64url"},
		{"vapid off the curve", "https://fcm.googleapis.com/x", func(m map[string]any) { m["vapid"] = offCurve }, "vapid is not a point"},
		{"too long", "https://fcm.googleapis.com/" + strings.Repeat("x", MaxToken), nil, "more than 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CheckToken(testToken(t, tc.endpoint, tc.edit))
			if tc.want == "" {
				if err != nil {
					t.Errorf("CheckToken: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckToken = %v, want an error about %q", err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "null", "[]", `{"endpoint":1}`, testToken(t, "https://fcm.googleapis.com/x", nil) + "{}"} {
		if err := s.CheckToken(bad); err == nil {
			t.Errorf("CheckToken(%q) accepted", bad)
		}
	}
	// http to a loopback host reached only through a wildcard is refused.
	wild, _ := newAllowList([]string{"*.localhost"})
	if err := (&Sender{allow: wild}).CheckToken(testToken(t, "https://a.localhost:9443/x", nil)); err == nil || !strings.Contains(err.Error(), "default https port only") {
		t.Errorf("another port on a wildcard-matched loopback host: %v, want refused", err)
	}
	if err := (&Sender{allow: wild}).CheckToken(testToken(t, "http://a.localhost/x", nil)); err == nil {
		t.Error("http to a wildcard-matched loopback host accepted")
	}
}

// Send refuses a token CheckToken refuses as a stale token, without a
// request.
func TestSendBadTokenIsStale(t *testing.T) {
	f := newFixture(t, nil)
	err := f.s.Send(ctx(t), testToken(t, "https://internal.example.org/x", nil), f.wake("c1"))
	if !errors.Is(err, pushauth.ErrTokenInvalid) {
		t.Errorf("Send = %v, want ErrTokenInvalid", err)
	}
	if got := count(t, f.s.m.dropped, dropBadToken); got != 1 {
		t.Errorf("dropped{bad_token} = %v", got)
	}
}

func FuzzCheckToken(f *testing.F) {
	f.Add(testToken(f, "https://fcm.googleapis.com/fcm/send/x", nil))
	f.Add(testToken(f, "http://127.0.0.1:1/push/x", func(m map[string]any) { m["expirationTime"] = 1 }))
	f.Add(testToken(f, "https://a.push.apple.com/x", nil))
	f.Add(`{"endpoint":"https://[::1]:443/x","keys":{"p256dh":"","auth":""},"vapid":""}`)
	f.Add(`{"endpoint":"https://fcm.googleapis.com/%zz","keys":{}}`)
	allow, err := newAllowList(testHosts)
	if err != nil {
		f.Fatal(err)
	}
	s := &Sender{allow: allow}
	f.Fuzz(func(t *testing.T, token string) {
		sub, err := s.allow.parseToken(token)
		if err := s.CheckToken(token); (err == nil) != (sub.uaPub != nil) {
			t.Fatalf("CheckToken and parseToken disagree: %v", err)
		}
		if err != nil {
			return
		}
		if len(token) > MaxToken || len(sub.auth) != 16 || len(sub.vapid) != 65 || !strings.HasPrefix(sub.origin, "http") {
			t.Fatalf("accepted a bad token: %q", token)
		}
		if ok, _ := allow.allows(strings.ToLower(strings.Split(strings.Split(sub.origin, "://")[1], ":")[0])); !ok && !strings.Contains(sub.origin, "[") {
			t.Fatalf("accepted a host not allowed: %s", sub.origin)
		}
	})
}
