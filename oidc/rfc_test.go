package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
)

const (
	wikiCallback = "https://wiki.example.com/callback"
	wikiSecret   = "0123456789abcdef0123456789abcdef"
	goodPKCE     = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// A code_challenge that cannot be an S256 hash (RFC 7636 4.2: 43
// base64url characters) is refused at /authorize with invalid_request,
// sent to the redirect URI like the other authorization errors.
func TestAuthorizeCodeChallengeSyntax(t *testing.T) {
	p := newTestProvider(t)
	h := p.Handler()
	cases := []struct {
		name      string
		challenge string
		ok        bool
	}{
		{"S256 of a verifier", goodPKCE, true},
		{"42 characters", goodPKCE[:42], false},
		{"44 characters", goodPKCE + "A", false},
		{"padded", goodPKCE + "=", false},
		{"one character", "a", false},
		{"129 characters", strings.Repeat("a", 129), false},
		{"128 characters", strings.Repeat("a", 128), false}, // a verifier's length, never an S256 hash's
		{"standard base64", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+c/", false},
		{"a space", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw c", false},
		{"a non-ASCII letter", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstwé", false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := url.Values{"client_id": {"wiki"}, "redirect_uri": {wikiCallback}, "response_type": {"code"}, "scope": {"openid"},
				"state": {"st-1"}, "code_challenge": {c.challenge}, "code_challenge_method": {"S256"}}
			r := httptest.NewRequest(http.MethodGet, testIssuer+"/authorize?"+q.Encode(), nil)
			r.RemoteAddr = "10.9.0." + string(rune('1'+i)) + ":4000"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			loc, _ := url.Parse(rec.Header().Get("Location"))
			if c.ok {
				if rec.Code/100 != 3 || loc == nil || loc.Path != p.prefix+"/login" {
					t.Fatalf("%d to %q, want the sign-in", rec.Code, rec.Header().Get("Location"))
				}
				return
			}
			if rec.Code/100 != 3 || loc == nil || loc.Scheme+"://"+loc.Host+loc.Path != wikiCallback {
				t.Fatalf("%d to %q, want an error at the redirect URI: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
			}
			if q := loc.Query(); q.Get("error") != "invalid_request" || q.Get("state") != "st-1" {
				t.Errorf("error response %q, want invalid_request with the state", loc.RawQuery)
			}
		})
	}
}

// The token endpoint authenticates the client before it looks at the
// code: a wrong secret (or an unknown client) is invalid_client whatever
// the code, so that the answer tells nothing about codes to someone
// without the secret.
func TestTokenEndpointAuthenticatesClientFirst(t *testing.T) {
	p := newTestProvider(t)
	h := p.Handler()
	cases := []struct {
		name     string
		id, pass string // Basic credentials; "" id: none
		form     url.Values
		status   int
		code     string
	}{
		{"wrong secret, bad code", "wiki", "wrong", nil, http.StatusUnauthorized, "invalid_client"},
		{"wrong secret in the body, bad code", "", "", url.Values{"client_id": {"wiki"}, "client_secret": {"wrong"}}, http.StatusUnauthorized, "invalid_client"},
		{"no secret, bad code", "", "", url.Values{"client_id": {"wiki"}}, http.StatusUnauthorized, "invalid_client"},
		{"unknown client, bad code", "nobody", "x", nil, http.StatusUnauthorized, "invalid_client"},
		{"no client at all, bad code", "", "", nil, http.StatusUnauthorized, "invalid_client"},
		{"right secret, bad code", "wiki", wikiSecret, nil, http.StatusBadRequest, "invalid_grant"},
		{"right secret in the body, bad code", "", "", url.Values{"client_id": {"wiki"}, "client_secret": {wikiSecret}}, http.StatusBadRequest, "invalid_grant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {"not-a-code"}, "redirect_uri": {wikiCallback},
				"code_verifier": {strings.Repeat("v", 43)}}
			for k, v := range c.form {
				form[k] = v
			}
			r := httptest.NewRequest(http.MethodPost, testIssuer+"/oauth/token", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if c.id != "" {
				r.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.pass))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var body struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != c.status || body.Error != c.code {
				t.Errorf("%d %s, want %d %s", rec.Code, rec.Body, c.status, c.code)
			}
		})
	}
}

// userinfo answers as a protected resource (RFC 6750 3).
func TestUserinfoErrors(t *testing.T) {
	p := newTestProvider(t)
	h := p.Handler()
	ctx := context.Background()
	alice := web.Result{User: "alice", Email: "alice@example.com", AuthTime: time.Now().Truncate(time.Second), AMR: []string{"pwd", "mfa", "swk"}}
	token := func(scopes []string, family string) string {
		t.Helper()
		id, _, err := p.newAccessToken(ctx, grant{ClientID: "wiki", Scopes: scopes, User: alice}, family)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := p.op.Crypto().Encrypt(id + ":alice")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := token([]string{"openid", "email"}, "oidc:good")
	revoked := token([]string{"openid", "email"}, "oidc:revoked")
	if _, err := p.revokeFamily(ctx, "oidc:revoked"); err != nil {
		t.Fatal(err)
	}
	noOpenID := token([]string{"email"}, "oidc:noopenid")
	expiredID := "expired-token-id"
	data, _ := json.Marshal(grant{ClientID: "wiki", Scopes: []string{"openid"}, User: alice})
	past := time.Now().Add(-time.Hour)
	if err := p.st.PutGrant(ctx, store.Grant{Kind: store.GrantAccessToken, ID: expiredID, Family: "oidc:expired", Subject: "alice", Data: data,
		CreatedAt: past.Add(-10 * time.Minute), ExpiresAt: past}); err != nil {
		t.Fatal(err)
	}
	expired, err := p.op.Crypto().Encrypt(expiredID + ":alice")
	if err != nil {
		t.Fatal(err)
	}

	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	cases := []struct {
		name      string
		method    string
		header    http.Header
		body      url.Values
		status    int
		challenge string // the WWW-Authenticate header's start
		code      string // the JSON body's error
	}{
		{"a good token", "GET", bearer(good), nil, http.StatusOK, "", ""},
		{"a good token in the body", "POST", nil, url.Values{"access_token": {good}}, http.StatusOK, "", ""},
		{"no token", "GET", nil, nil, http.StatusUnauthorized, "Bearer", ""},
		{"another scheme", "GET", http.Header{"Authorization": {"Basic d2lraTp4"}}, nil, http.StatusUnauthorized, "Bearer", ""},
		{"a bogus token", "GET", bearer("bogus"), nil, http.StatusUnauthorized, `Bearer error="invalid_token"`, "invalid_token"},
		{"a revoked token", "GET", bearer(revoked), nil, http.StatusUnauthorized, `Bearer error="invalid_token"`, "invalid_token"},
		{"an expired token", "GET", bearer(expired), nil, http.StatusUnauthorized, `Bearer error="invalid_token"`, "invalid_token"},
		{"Bearer without a token", "GET", http.Header{"Authorization": {"Bearer "}}, nil, http.StatusBadRequest, `Bearer error="invalid_request"`, "invalid_request"},
		{"a token that is not a b64token", "GET", bearer("a b"), nil, http.StatusBadRequest, `Bearer error="invalid_request"`, "invalid_request"},
		{"two methods", "POST", bearer(good), url.Values{"access_token": {good}}, http.StatusBadRequest, `Bearer error="invalid_request"`, "invalid_request"},
		{"a repeated access_token", "POST", nil, url.Values{"access_token": {good, good}}, http.StatusBadRequest, `Bearer error="invalid_request"`, "invalid_request"},
		{"two Authorization headers", "GET", http.Header{"Authorization": {"Bearer " + good, "Bearer " + good}}, nil, http.StatusBadRequest, `Bearer error="invalid_request"`, "invalid_request"},
		{"without the openid scope", "GET", bearer(noOpenID), nil, http.StatusForbidden, `Bearer error="insufficient_scope"`, "insufficient_scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r *http.Request
			if c.body != nil {
				r = httptest.NewRequest(c.method, testIssuer+"/userinfo", strings.NewReader(c.body.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r = httptest.NewRequest(c.method, testIssuer+"/userinfo", nil)
			}
			for k, v := range c.header {
				r.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != c.status {
				t.Fatalf("%d %q, want %d", rec.Code, rec.Body, c.status)
			}
			got := rec.Header().Get("WWW-Authenticate")
			if c.status == http.StatusOK {
				var info map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil || info["sub"] != "alice" || info["email"] != "alice@example.com" {
					t.Errorf("claims %s (%v)", rec.Body, err)
				}
				return
			}
			if c.challenge == "Bearer" && got != "Bearer" || !strings.HasPrefix(got, c.challenge) {
				t.Errorf("WWW-Authenticate %q, want %q...", got, c.challenge)
			}
			if c.code == "" {
				return
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != c.code || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("body %q (%s), want a JSON error %q", rec.Body, rec.Header().Get("Content-Type"), c.code)
			}
		})
	}
}

// An authorization request that cannot be answered at a redirect URI is
// answered with a page that says what the user can do; the developer's
// detail is only a line for the administrator.
func TestAuthorizeErrorPageSaysWhatToDo(t *testing.T) {
	p := newTestProvider(t)
	h := p.Handler()
	for _, c := range []struct{ name, query, detail string }{
		{"unregistered redirect_uri", "client_id=wiki&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code&scope=openid",
			"redirect_uri that is not registered"},
		{"unknown client", "client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code&scope=openid",
			"client_id is not a registered application"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, testIssuer+"/authorize?"+c.query, nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.String()
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("%d %s", rec.Code, body)
			}
			if !strings.Contains(body, "Go back to the application and sign in again") || !strings.Contains(body, "contact your helpdesk") {
				t.Errorf("the page does not say what to do:\n%s", body)
			}
			if !strings.Contains(body, "Details for your administrator:") || !strings.Contains(body, c.detail) {
				t.Errorf("no detail line %q:\n%s", c.detail, body)
			}
		})
	}
}

// The sign-out page's next (where the browser goes after the sign-out)
// is a registered post-logout URI, with at most a state added. A control
// character a browser would drop (TAB, CR, LF) cannot make an
// unregistered target pass as a registered one: such a next is refused
// whole.
func TestPostLogoutURIControlCharacters(t *testing.T) {
	p := newTestProvider(t)
	for _, c := range []struct {
		next string
		ok   bool
	}{
		{"https://wiki.example.com/bye", true},
		{"https://wiki.example.com/bye?state=abc", true},
		{"https://wiki.example.com/bye?state=a%09b", true}, // encoded: stays encoded in the redirect
		{"https://wiki.example.com/bye?state=a\tb", false},
		{"https://wiki.example.com/bye\t", false},
		{"https://wiki.example.com/\t/bye", false},
		{"https://wiki.example.com/bye\r\nLocation: https://evil.example/", false},
		{"https://wiki.example.com/bye\x7f", false},
		{"https://evil.example/bye", false},
	} {
		if got := p.postLogoutURI(c.next); got != c.ok {
			t.Errorf("postLogoutURI(%q) = %v, want %v", c.next, got, c.ok)
		}
	}
}
