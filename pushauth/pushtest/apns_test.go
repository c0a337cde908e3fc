package pushtest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bridge-idp/bridge/pushauth/pushtest"
)

const apnsToken = "5f6aa01d8e3358949b7c25d461bb78ad740f4707462c7eafbebcf74fa5ddb387"

// apnsClient trusts the fake and speaks the given protocols.
func apnsClient(t *testing.T, a *pushtest.APNs, http2 bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	data, err := os.ReadFile(a.CAFile(t))
	if err != nil || !pool.AppendCertsFromPEM(data) {
		t.Fatalf("CAFile: %v", err)
	}
	var p http.Protocols
	p.SetHTTP1(!http2)
	p.SetHTTP2(http2)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func loadP8(t *testing.T, a *pushtest.APNs) *ecdsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(a.KeyFile(t))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("KeyFile is not a PEM PRIVATE KEY: %q", data)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("KeyFile holds %T, want EC P-256", k)
	}
	return key
}

func providerToken(t *testing.T, key *ecdsa.PrivateKey, kid, iss string, iat time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: iss, IssuedAt: jwt.NewNumericDate(iat)}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAPNsChecks checks that the fake refuses what APNs refuses, with
// APNs' status and reason, and records only what it accepts.
func TestAPNsChecks(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	client := apnsClient(t, a, true)
	key := loadP8(t, a)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	good := providerToken(t, key, a.KeyID, a.TeamID, now)
	a.Unregister(apnsToken[:62] + "00")

	type request struct {
		path    string
		auth    string
		headers map[string]string
		body    string
	}
	base := func(mod func(*request)) request {
		r := request{
			path: "/3/device/" + apnsToken,
			auth: "bearer " + good,
			headers: map[string]string{
				"apns-topic": a.Topic, "apns-push-type": "alert", "apns-priority": "10",
				"apns-collapse-id": "c1", "apns-expiration": "0",
			},
			body: `{"aps":{"alert":{"loc-key":"X"}},"cid":"c1"}`,
		}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	tests := []struct {
		name   string
		req    request
		status int
		reason string
	}{
		{"accepted", base(nil), 200, ""},
		{"background, priority 5", base(func(r *request) {
			r.headers["apns-push-type"], r.headers["apns-priority"], r.body = "background", "5", `{"aps":{"content-available":1}}`
		}), 200, ""},
		{"unregistered", base(func(r *request) { r.path = "/3/device/" + apnsToken[:62] + "00" }), 410, "Unregistered"},
		{"no provider token", base(func(r *request) { r.auth = "" }), 403, "MissingProviderToken"},
		{"another key", base(func(r *request) { r.auth = "bearer " + providerToken(t, otherKey, a.KeyID, a.TeamID, now) }), 403, "InvalidProviderToken"},
		{"wrong kid", base(func(r *request) { r.auth = "bearer " + providerToken(t, key, "XXXXXXXXXX", a.TeamID, now) }), 403, "InvalidProviderToken"},
		{"wrong team", base(func(r *request) { r.auth = "bearer " + providerToken(t, key, a.KeyID, "XXXXXXXXXX", now) }), 403, "InvalidProviderToken"},
		{"token older than an hour", base(func(r *request) {
			r.auth = "bearer " + providerToken(t, key, a.KeyID, a.TeamID, now.Add(-61*time.Minute))
		}), 403, "ExpiredProviderToken"},
		{"token from the future", base(func(r *request) { r.auth = "bearer " + providerToken(t, key, a.KeyID, a.TeamID, now.Add(time.Hour)) }), 403, "InvalidProviderToken"},
		{"not a JWT", base(func(r *request) { r.auth = "bearer abc" }), 403, "InvalidProviderToken"},
		{"no topic", base(func(r *request) { delete(r.headers, "apns-topic") }), 400, "MissingTopic"},
		{"other topic", base(func(r *request) { r.headers["apns-topic"] = "org.example.other" }), 400, "TopicDisallowed"},
		{"voip push type", base(func(r *request) { r.headers["apns-push-type"] = "voip" }), 400, "InvalidPushType"},
		{"background at priority 10", base(func(r *request) { r.headers["apns-push-type"] = "background" }), 400, "BadPriority"},
		{"priority 7", base(func(r *request) { r.headers["apns-priority"] = "7" }), 400, "BadPriority"},
		{"long collapse id", base(func(r *request) { r.headers["apns-collapse-id"] = strings.Repeat("c", 65) }), 400, "BadCollapseId"},
		{"bad expiration", base(func(r *request) { r.headers["apns-expiration"] = "soon" }), 400, "BadExpirationDate"},
		{"bad path", base(func(r *request) { r.path = "/3/devices/" + apnsToken }), 404, "BadPath"},
		{"not hex", base(func(r *request) { r.path = "/3/device/xyz" }), 400, "BadDeviceToken"},
		{"empty payload", base(func(r *request) { r.body = "" }), 400, "PayloadEmpty"},
		{"payload without aps", base(func(r *request) { r.body = `{"t":"x"}` }), 400, "BadPayload"},
		{"payload too large", base(func(r *request) { r.body = `{"aps":{},"x":"` + strings.Repeat("x", 4096) + `"}` }), 413, "PayloadTooLarge"},
	}
	accepted := 0
	for _, tc := range tests {
		req, err := http.NewRequest(http.MethodPost, a.Endpoint()+tc.req.path, strings.NewReader(tc.req.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.req.auth != "" {
			req.Header.Set("authorization", tc.req.auth)
		}
		for k, v := range tc.req.headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Reason    string `json:"reason"`
			Timestamp int64  `json:"timestamp"`
		}
		if resp.StatusCode != 200 {
			if err := json.Unmarshal(body, &e); err != nil {
				t.Errorf("%s: error body %q: %v", tc.name, body, err)
			}
		} else {
			accepted++
		}
		if resp.StatusCode != tc.status || e.Reason != tc.reason {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, resp.StatusCode, e.Reason, tc.status, tc.reason)
		}
		if resp.Header.Get("apns-id") == "" {
			t.Errorf("%s: no apns-id", tc.name)
		}
		if (tc.status == 410) != (e.Timestamp != 0) {
			t.Errorf("%s: timestamp %d", tc.name, e.Timestamp)
		}
	}
	if got := len(a.Requests()); got != accepted {
		t.Errorf("%d requests recorded, want the %d accepted", got, accepted)
	}
}

func TestAPNsRefusesHTTP1(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	resp, err := apnsClient(t, a, false).Post(a.Endpoint()+"/3/device/"+apnsToken, "application/json", strings.NewReader(`{"aps":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != http.StatusHTTPVersionNotSupported || a.NotHTTP2() != 1 {
		t.Errorf("HTTP/%d request: status %d, NotHTTP2 %d; want 505 and 1", resp.ProtoMajor, resp.StatusCode, a.NotHTTP2())
	}
}

func TestAPNsNext(t *testing.T) {
	t.Parallel()
	a := pushtest.StartAPNs(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next on an idle fake with a cancelled context = %v", err)
	}
	client := apnsClient(t, a, true)
	tok := providerToken(t, loadP8(t, a), a.KeyID, a.TeamID, time.Now())
	got := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := a.Next(ctx)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- r.Header.Get("apns-collapse-id")
	}()
	for _, id := range []string{"first", "second"} {
		req, _ := http.NewRequest(http.MethodPost, a.Endpoint()+"/3/device/"+apnsToken, strings.NewReader(`{"aps":{}}`))
		req.Header.Set("authorization", "bearer "+tok)
		req.Header.Set("apns-topic", a.Topic)
		req.Header.Set("apns-push-type", "alert")
		req.Header.Set("apns-collapse-id", id)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("push %s: %v %v", id, resp, err)
		}
		resp.Body.Close()
	}
	if first := <-got; first != "first" {
		t.Errorf("Next returned %q, want the oldest (first)", first)
	}
	r, err := a.Next(context.Background())
	if err != nil || r.Header.Get("apns-collapse-id") != "second" {
		t.Errorf("second Next = %q, %v", r.Header.Get("apns-collapse-id"), err)
	}
}
