package pushtest_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bridge-idp/bridge/pushauth/pushtest"
)

// serviceAccount reads what CredentialsFile wrote.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	KeyID       string `json:"private_key_id"`
	PrivateKey  string `json:"private_key"`
	ClientEmail string `json:"client_email"`
	TokenURI    string `json:"token_uri"`
	key         *rsa.PrivateKey
}

func readServiceAccount(t *testing.T, f *pushtest.FCM) serviceAccount {
	t.Helper()
	path := f.CredentialsFile(t)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode: %v %v", fi.Mode(), err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sa serviceAccount
	if err := json.Unmarshal(data, &sa); err != nil {
		t.Fatal(err)
	}
	if sa.Type != "service_account" || sa.ProjectID != f.ProjectID || sa.ClientEmail != f.ClientEmail || sa.TokenURI != f.TokenURI() {
		t.Fatalf("credentials file %s", data)
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		t.Fatal("private_key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sa.key = k.(*rsa.PrivateKey)
	return sa
}

type assertion struct {
	jwt.Claims
	Scope string `json:"scope,omitempty"`
}

func sign(t *testing.T, key *rsa.PrivateKey, kid string, c assertion) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestFCMTokenEndpoint checks the fake's OAuth2 JWT bearer grant.
func TestFCMTokenEndpoint(t *testing.T) {
	t.Parallel()
	f := pushtest.StartFCM(t)
	sa := readServiceAccount(t, f)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	good := assertion{
		Claims: jwt.Claims{Issuer: sa.ClientEmail, Audience: jwt.Audience{sa.TokenURI}, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))},
		Scope:  pushtest.FCMScope,
	}
	with := func(mod func(*assertion)) assertion {
		a := good
		mod(&a)
		return a
	}
	tests := []struct {
		name      string
		grant     string
		assertion string
		wantError string // OAuth2 error code; "" means a token
	}{
		{"good", "", sign(t, sa.key, sa.KeyID, good), ""},
		{"cloud-platform scope", "", sign(t, sa.key, sa.KeyID, with(func(a *assertion) { a.Scope = "https://www.googleapis.com/auth/cloud-platform" })), ""},
		{"wrong grant", "client_credentials", sign(t, sa.key, sa.KeyID, good), "unsupported_grant_type"},
		{"another key", "", sign(t, other, sa.KeyID, good), "invalid_grant"},
		{"wrong kid", "", sign(t, sa.key, "nope", good), "invalid_grant"},
		{"wrong issuer", "", sign(t, sa.key, sa.KeyID, with(func(a *assertion) { a.Issuer = "x@example.com" })), "invalid_grant"},
		{"wrong audience", "", sign(t, sa.key, sa.KeyID, with(func(a *assertion) { a.Audience = jwt.Audience{"https://oauth2.googleapis.com/token"} })), "invalid_grant"},
		{"no scope", "", sign(t, sa.key, sa.KeyID, with(func(a *assertion) { a.Scope = "" })), "invalid_scope"},
		{"other scope", "", sign(t, sa.key, sa.KeyID, with(func(a *assertion) { a.Scope = "https://www.googleapis.com/auth/datastore" })), "invalid_scope"},
		{"expired", "", sign(t, sa.key, sa.KeyID, with(func(a *assertion) { a.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) })), "invalid_grant"},
		{"lives too long", "", sign(t, sa.key, sa.KeyID, with(func(a *assertion) { a.Expiry = jwt.NewNumericDate(now.Add(2 * time.Hour)) })), "invalid_grant"},
		{"not a JWT", "", "abc", "invalid_grant"},
	}
	issued := 0
	for _, tc := range tests {
		grant := tc.grant
		if grant == "" {
			grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
		}
		resp, err := http.PostForm(f.TokenURI(), url.Values{"grant_type": {grant}, "assertion": {tc.assertion}})
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int    `json:"expires_in"`
			Error       string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if tc.wantError == "" {
			issued++
			if resp.StatusCode != 200 || body.AccessToken == "" || body.TokenType != "Bearer" || body.ExpiresIn != 3600 {
				t.Errorf("%s: %d %+v, want a bearer token for 3600 s", tc.name, resp.StatusCode, body)
			}
		} else if resp.StatusCode != 400 || body.Error != tc.wantError || body.AccessToken != "" {
			t.Errorf("%s: %d %+v, want 400 %s", tc.name, resp.StatusCode, body, tc.wantError)
		}
	}
	if got := f.TokenRequests(); got != issued {
		t.Errorf("TokenRequests = %d, want %d", got, issued)
	}
}

// TestFCMSendChecks checks the fake's messages:send endpoint.
func TestFCMSendChecks(t *testing.T) {
	t.Parallel()
	f := pushtest.StartFCM(t)
	sa := readServiceAccount(t, f)
	now := time.Now()
	resp, err := http.PostForm(f.TokenURI(), url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion": {sign(t, sa.key, sa.KeyID, assertion{
			Claims: jwt.Claims{Issuer: sa.ClientEmail, Audience: jwt.Audience{sa.TokenURI}, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))},
			Scope:  pushtest.FCMScope,
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	f.Unregister("gone")

	sendURL := f.Endpoint() + "/projects/" + f.ProjectID + "/messages:send"
	tests := []struct {
		name   string
		url    string
		bearer string
		body   string
		status int
		want   string // in the answer
	}{
		{"accepted", sendURL, tok.AccessToken, `{"message":{"token":"t1","data":{"t":"challenge"},"android":{"priority":"high","ttl":"30s","collapse_key":"c1"}}}`, 200, `"name":"projects/` + f.ProjectID + `/messages/`},
		{"validate only", sendURL, tok.AccessToken, `{"validate_only":true,"message":{"token":"t1"}}`, 200, `"name"`},
		{"unregistered", sendURL, tok.AccessToken, `{"message":{"token":"gone"}}`, 404, pushtest.FCMUnregisteredBody},
		{"no bearer", sendURL, "", `{"message":{"token":"t1"}}`, 401, `"UNAUTHENTICATED"`},
		{"unknown bearer", sendURL, "ya29.nope", `{"message":{"token":"t1"}}`, 401, `"UNAUTHENTICATED"`},
		{"other project", f.Endpoint() + "/projects/other/messages:send", tok.AccessToken, `{"message":{"token":"t1"}}`, 403, `"PERMISSION_DENIED"`},
		{"unknown field", sendURL, tok.AccessToken, `{"message":{"token":"t1","user":"alice"}}`, 400, `"INVALID_ARGUMENT"`},
		{"no target", sendURL, tok.AccessToken, `{"message":{"data":{"t":"x"}}}`, 400, `"INVALID_ARGUMENT"`},
		{"two targets", sendURL, tok.AccessToken, `{"message":{"token":"t1","topic":"news"}}`, 400, `"INVALID_ARGUMENT"`},
		{"bad ttl", sendURL, tok.AccessToken, `{"message":{"token":"t1","android":{"ttl":"30"}}}`, 400, `"INVALID_ARGUMENT"`},
		{"bad priority", sendURL, tok.AccessToken, `{"message":{"token":"t1","android":{"priority":"urgent"}}}`, 400, `"INVALID_ARGUMENT"`},
		{"data not strings", sendURL, tok.AccessToken, `{"message":{"token":"t1","data":{"n":1}}}`, 400, `"INVALID_ARGUMENT"`},
		{"not JSON", sendURL, tok.AccessToken, `message`, 400, `"INVALID_ARGUMENT"`},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodPost, tc.url, strings.NewReader(tc.body))
		if tc.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, resp.StatusCode, body, tc.status, tc.want)
		}
	}
	msgs := f.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages recorded, want 1 (the accepted one)", len(msgs))
	}
	m := msgs[0]
	if m.Token != "t1" || m.Data["t"] != "challenge" || m.Android == nil || *m.Android != (pushtest.FCMAndroid{CollapseKey: "c1", Priority: "high", TTL: "30s"}) {
		t.Errorf("recorded %+v android %+v", m, m.Android)
	}
}
