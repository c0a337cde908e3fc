package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
	"github.com/bridge-idp/bridge/web"
)

// --- issWriter ---------------------------------------------------------

func TestIssWriter(t *testing.T) {
	const iss = "https://idp.example.com/oidc"
	for _, tc := range []struct {
		name     string
		status   int
		location string
		want     string // "" means unchanged
	}{
		{"code", http.StatusFound, "https://rp.example.com/cb?code=abc&state=xyz", "https://rp.example.com/cb?code=abc&iss=https%3A%2F%2Fidp.example.com%2Foidc&state=xyz"},
		{"see other with code", http.StatusSeeOther, "https://rp.example.com/cb?code=abc", "https://rp.example.com/cb?code=abc&iss=https%3A%2F%2Fidp.example.com%2Foidc"},
		{"error", http.StatusFound, "https://rp.example.com/cb?error=login_required&state=s", "https://rp.example.com/cb?error=login_required&iss=https%3A%2F%2Fidp.example.com%2Foidc&state=s"},
		{"native scheme", http.StatusFound, "com.example.app:/cb?code=c", "com.example.app:/cb?code=c&iss=https%3A%2F%2Fidp.example.com%2Foidc"},
		{"login page", http.StatusFound, "/oidc/login?id=abc", ""},
		{"no query", http.StatusFound, "https://rp.example.com/cb", ""},
		{"existing iss kept", http.StatusFound, "https://rp.example.com/cb?code=abc&iss=https%3A%2F%2Fother.example", ""},
		{"not a redirect", http.StatusOK, "https://rp.example.com/cb?code=abc", ""},
		{"bad request", http.StatusBadRequest, "https://rp.example.com/cb?error=x", ""},
		{"no location", http.StatusFound, "", ""},
		{"unparsable location", http.StatusFound, "http://[::1/cb?code=x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := &issWriter{ResponseWriter: rec, iss: iss}
			if tc.location != "" {
				w.Header().Set("Location", tc.location)
			}
			w.WriteHeader(tc.status)
			want := tc.want
			if want == "" {
				want = tc.location
			}
			if got := rec.Header().Get("Location"); got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
		})
	}

	// Through http.Redirect, as op writes its responses.
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "https://idp.example.com/oidc/authorize", nil)
	http.Redirect(&issWriter{ResponseWriter: rec, iss: iss}, r, "https://rp.example.com/cb?code=c&state=s", http.StatusFound)
	u, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || u.Query().Get("iss") != iss || u.Query().Get("code") != "c" || u.Query().Get("state") != "s" {
		t.Errorf("http.Redirect through issWriter: %q", rec.Header().Get("Location"))
	}
}

// --- tokenClientID -----------------------------------------------------

func assertion(t *testing.T, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256","kid":"k1"}`)) + "." + enc([]byte(payload)) + "." + enc([]byte("signature"))
}

func TestTokenClientID(t *testing.T) {
	post := func(form url.Values, basicUser, basicPass string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "https://idp.example.com/oidc/oauth/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basicUser != "" || basicPass != "" {
			r.SetBasicAuth(basicUser, basicPass)
		}
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		want       string
	}{
		{"basic", url.Values{"grant_type": {"authorization_code"}}, "wiki", "secret", "wiki"},
		{"basic escaped", nil, "my%3Aclient", "secret", "my:client"},
		{"basic wins over the body", url.Values{"client_id": {"other"}}, "wiki", "secret", "wiki"},
		{"basic badly escaped falls back to the body", url.Values{"client_id": {"poster"}}, "bad%zz", "secret", "poster"},
		{"post", url.Values{"client_id": {"poster"}, "client_secret": {"s"}}, "", "", "poster"},
		{"client_id beats the assertion", url.Values{"client_id": {"poster"}, "client_assertion": {assertion(t, `{"sub":"jwtc"}`)}}, "", "", "poster"},
		{"assertion sub", url.Values{"client_assertion": {assertion(t, `{"iss":"jwtc","sub":"jwtc","aud":"x"}`)}}, "", "", "jwtc"},
		{"assertion without sub", url.Values{"client_assertion": {assertion(t, `{"iss":"jwtc"}`)}}, "", "", ""},
		{"assertion sub not a string", url.Values{"client_assertion": {assertion(t, `{"sub":42}`)}}, "", "", ""},
		{"assertion payload not JSON", url.Values{"client_assertion": {assertion(t, `not json`)}}, "", "", ""},
		{"assertion payload not base64", url.Values{"client_assertion": {"eyJ.!!!.sig"}}, "", "", ""},
		{"assertion with padding", url.Values{"client_assertion": {"a." + base64.URLEncoding.EncodeToString([]byte(`{"sub":"jwtc"}`)) + ".c"}}, "", "", ""},
		{"assertion two parts", url.Values{"client_assertion": {"a.b"}}, "", "", ""},
		{"assertion four parts", url.Values{"client_assertion": {"a.b.c.d"}}, "", "", ""},
		{"assertion garbage", url.Values{"client_assertion": {"garbage"}}, "", "", ""},
		{"nothing", url.Values{"grant_type": {"authorization_code"}}, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tokenClientID(post(tc.form, tc.user, tc.pass)); got != tc.want {
				t.Errorf("tokenClientID = %q, want %q", got, tc.want)
			}
		})
	}

	// The client_id of the query string is not the body's.
	r := httptest.NewRequest(http.MethodPost, "https://idp.example.com/oidc/oauth/token?client_id=wiki", strings.NewReader(""))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_ = r.ParseForm()
	if got := tokenClientID(r); got != "" {
		t.Errorf("tokenClientID took client_id from the query: %q", got)
	}
}

// --- discovery ---------------------------------------------------------

// zitadelDoc is a discovery document as op might write it, with all that
// the bridge takes away.
const zitadelDoc = `{
 "issuer": "https://idp.example.com/oidc",
 "authorization_endpoint": "https://idp.example.com/oidc/authorize",
 "token_endpoint": "https://idp.example.com/oidc/oauth/token",
 "device_authorization_endpoint": "https://idp.example.com/oidc/device_authorization",
 "response_types_supported": ["code", "id_token", "id_token token"],
 "response_modes_supported": ["query", "fragment", "form_post"],
 "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
 "code_challenge_methods_supported": ["plain", "S256"],
 "request_parameter_supported": true,
 "request_object_signing_alg_values_supported": ["RS256"],
 "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
 "id_token_signing_alg_values_supported": ["ES256"]
}`

func TestDiscoveryRewrite(t *testing.T) {
	serve := func(p *Provider, inner http.HandlerFunc) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		p.discovery(inner)(rec, httptest.NewRequest(http.MethodGet, "https://idp.example.com/oidc/.well-known/openid-configuration", nil))
		return rec
	}
	doc := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-From-Op", "1")
		_, _ = w.Write([]byte(zitadelDoc))
	}

	for _, refresh := range []time.Duration{0, 8 * time.Hour} {
		p := &Provider{cfg: Config{RefreshTokenLifetime: refresh}}
		rec := serve(p, doc)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" ||
			rec.Header().Get("Cache-Control") != "public, max-age=300" {
			t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
		}
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		strs := func(k string) []string {
			var out []string
			for _, v := range got[k].([]any) {
				out = append(out, v.(string))
			}
			return out
		}
		wantGrants := []string{"authorization_code"}
		if refresh > 0 {
			wantGrants = append(wantGrants, "refresh_token")
		}
		for k, want := range map[string][]string{
			"response_types_supported":         {"code"},
			"response_modes_supported":         {"query"},
			"grant_types_supported":            wantGrants,
			"code_challenge_methods_supported": {"S256"},
			"acr_values_supported":             {acrMFA},
			// Left as op wrote them.
			"token_endpoint_auth_methods_supported": {"none", "client_secret_basic", "client_secret_post", "private_key_jwt"},
			"id_token_signing_alg_values_supported": {"ES256"},
		} {
			if g := strs(k); !slices.Equal(g, want) {
				t.Errorf("refresh %v: %s = %v, want %v", refresh, k, g, want)
			}
		}
		if got["authorization_response_iss_parameter_supported"] != true || got["request_parameter_supported"] != false {
			t.Errorf("iss parameter %v, request parameter %v", got["authorization_response_iss_parameter_supported"], got["request_parameter_supported"])
		}
		for _, k := range []string{"device_authorization_endpoint", "request_object_signing_alg_values_supported"} {
			if _, ok := got[k]; ok {
				t.Errorf("%s is still in the document", k)
			}
		}
		if got["issuer"] != "https://idp.example.com/oidc" || got["token_endpoint"] != "https://idp.example.com/oidc/oauth/token" {
			t.Errorf("issuer or token endpoint changed: %v %v", got["issuer"], got["token_endpoint"])
		}
	}

	// Anything but a JSON document with 200 passes through unchanged.
	p := &Provider{}
	for _, tc := range []struct {
		name  string
		inner http.HandlerFunc
		code  int
		body  string
	}{
		{"error", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Err", "1")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"server_error"}`))
		}, http.StatusInternalServerError, `{"error":"server_error"}`},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }, http.StatusOK, "<html>"},
		{"JSON array", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("[1]")) }, http.StatusOK, "[1]"},
		{"not found", http.NotFound, http.StatusNotFound, "404 page not found\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(p, tc.inner)
			if rec.Code != tc.code || rec.Body.String() != tc.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tc.code, tc.body)
			}
			if tc.name == "error" && rec.Header().Get("X-Err") != "1" {
				t.Error("headers not copied")
			}
		})
	}
}

// --- an in-process provider --------------------------------------------

const testIssuer = "https://idp.example.com/oidc"

// testClients are the clients of the in-process provider.
func testClients() []*Client {
	all := []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, scopeGroups, oidc.ScopeOfflineAccess}
	return []*Client{
		{ID: "wiki", Secret: "0123456789abcdef0123456789abcdef", AuthMethod: oidc.AuthMethodBasic,
			RedirectURIs:           []string{"https://wiki.example.com/callback", "http://127.0.0.1:5556/callback"},
			PostLogoutRedirectURIs: []string{"https://wiki.example.com/bye"}, Scopes: all,
			App: web.App{ID: "wiki", Name: "Wiki", Channel: "oidc", SessionReuse: true}},
		// A native app: op accepts any port on its loopback redirect URI;
		// the bridge means to accept the registered one only.
		{ID: "native", AuthMethod: oidc.AuthMethodNone,
			RedirectURIs: []string{"com.example.app:/cb", "http://127.0.0.1:7777/cb"}, Scopes: all,
			App: web.App{ID: "native", Name: "Native", Channel: "oidc"}},
		{ID: "spa", AuthMethod: oidc.AuthMethodNone, RedirectURIs: []string{"https://spa.example.com/"}, Scopes: []string{oidc.ScopeOpenID},
			SigningAlgorithm: keys.AlgES256, App: web.App{ID: "spa", Name: "SPA", Channel: "oidc"}},
	}
}

// noPush is a push engine that is never reached from /authorize (methods
// the Pusher interface may gain come from the nil embedded one).
type noPush struct{ web.Pusher }

func (noPush) Start(context.Context, pushauth.Request) (pushauth.Handle, error) {
	return pushauth.Handle{}, errors.New("no push in this test")
}
func (noPush) Wait(context.Context, string) (pushauth.Outcome, error) {
	return pushauth.Outcome{}, errors.New("no push in this test")
}
func (noPush) Cancel(context.Context, string, string) error { return nil }

type nopAudit struct{}

func (nopAudit) Append(_ context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	return e, nil
}

// newTestProvider builds a provider on a SQLite store in a temporary
// directory, with real keys and a real sign-in flow (never reached from
// /authorize).
func newTestProvider(t testing.TB) *Provider {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db"), AuditKey: storetest.AuditKey()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := keys.NewSealer([]byte("oidc test key-encryption key 32b"))
	if err != nil {
		t.Fatal(err)
	}
	km, err := keys.Open(ctx, st, sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposeOIDC, Algorithm: keys.AlgES256}}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clients := testClients()
	apps := map[string]web.App{}
	for _, c := range clients {
		apps[c.ID] = c.App
	}
	flow, err := web.New(web.Config{BaseURL: "https://idp.example.com", SessionLifetime: time.Hour, Key: []byte("oidc test CSRF key, 32 bytes !!!")},
		func(channel, id string) (web.App, bool) { a, ok := apps[id]; return a, ok && channel == "oidc" },
		web.Deps{Store: st, Push: noPush{}, Audit: nopAudit{}})
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	copy(key[:], "oidc test token crypto key 32 b!")
	p, err := New(Config{
		Issuer: testIssuer, CodeLifetime: time.Minute, AccessTokenLifetime: 10 * time.Minute, IDTokenLifetime: 10 * time.Minute,
		RefreshTokenLifetime: 8 * time.Hour, Clients: clients, CryptoKey: key,
	}, Deps{Store: st, Replay: st, Keys: km, Flow: flow, Audit: nopAudit{}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProviderDiscoveryInProcess(t *testing.T) {
	p := newTestProvider(t)
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testIssuer+"/.well-known/openid-configuration", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("discovery: %d %s", rec.Code, rec.Body)
	}
	var doc struct {
		Issuer         string   `json:"issuer"`
		Authorization  string   `json:"authorization_endpoint"`
		Token          string   `json:"token_endpoint"`
		EndSession     string   `json:"end_session_endpoint"`
		Introspection  string   `json:"introspection_endpoint"`
		Revocation     string   `json:"revocation_endpoint"`
		JWKS           string   `json:"jwks_uri"`
		Grants         []string `json:"grant_types_supported"`
		ResponseTypes  []string `json:"response_types_supported"`
		Challenge      []string `json:"code_challenge_methods_supported"`
		IssParam       bool     `json:"authorization_response_iss_parameter_supported"`
		AuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
		Algs           []string `json:"id_token_signing_alg_values_supported"`
		DeviceEndpoint *string  `json:"device_authorization_endpoint"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != testIssuer || doc.Authorization != testIssuer+"/authorize" || doc.Token != testIssuer+"/oauth/token" ||
		doc.EndSession != testIssuer+"/end_session" || doc.Introspection != testIssuer+"/oauth/introspect" ||
		doc.Revocation != testIssuer+"/revoke" || doc.JWKS != testIssuer+"/keys" {
		t.Errorf("endpoints: %+v", doc)
	}
	if !slices.Equal(doc.Grants, []string{"authorization_code", "refresh_token"}) || !slices.Equal(doc.ResponseTypes, []string{"code"}) ||
		!slices.Equal(doc.Challenge, []string{"S256"}) || !doc.IssParam || doc.DeviceEndpoint != nil || !slices.Equal(doc.Algs, []string{"ES256"}) {
		t.Errorf("document: %+v", doc)
	}
	for _, m := range []string{"client_secret_basic", "client_secret_post", "private_key_jwt"} {
		if !slices.Contains(doc.AuthMethods, m) {
			t.Errorf("token_endpoint_auth_methods_supported %v lacks %s", doc.AuthMethods, m)
		}
	}
}

// --- FuzzAuthorizeParams -----------------------------------------------

var formActionRe = regexp.MustCompile(`(?i)<form[^>]*action="([^"]*)"`)

// checkAuthorizeResponse enforces what /authorize must never do, whatever
// the query: fail with a 5xx, or send the browser (by redirect or by an
// auto-posting form) anywhere but the bridge's own pages or a redirect URI
// registered for the client the request names.
func checkAuthorizeResponse(t *testing.T, p *Provider, query string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("query %q: status %d: %s", query, rec.Code, rec.Body)
	}
	form, perr := url.ParseQuery(query)
	registered := func(target string) bool {
		base, _, _ := strings.Cut(target, "?")
		base, _, _ = strings.Cut(base, "#")
		if perr != nil {
			return false
		}
		c := p.clients[form.Get("client_id")]
		return c != nil && slices.Contains(c.RedirectURIs, base)
	}
	if rec.Code >= 300 && rec.Code < 400 {
		loc := rec.Header().Get("Location")
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("query %q: redirect to an unparsable %q", query, loc)
		}
		if u.Scheme == "" && u.Host == "" && u.Path == p.prefix+"/login" {
			// The bridge's own sign-in: the code will go to the stored
			// request's redirect URI, which must be the client's.
			a, err := p.getRequest(context.Background(), u.Query().Get("id"))
			if err != nil {
				t.Fatalf("query %q: redirect to the sign-in of a request that is not stored: %v", query, err)
			}
			if perr != nil || a.ClientID != form.Get("client_id") || !slices.Contains(p.clients[a.ClientID].RedirectURIs, a.RedirectURI) {
				t.Fatalf("query %q: stored a request of client %q for redirect URI %q, not one of client %q's", query, a.ClientID, a.RedirectURI, form.Get("client_id"))
			}
			return
		}
		if !registered(loc) {
			t.Fatalf("query %q: status %d redirects to %q, which is not a redirect URI of client %q", query, rec.Code, loc, form.Get("client_id"))
		}
		return
	}
	if m := formActionRe.FindStringSubmatch(rec.Body.String()); m != nil {
		action := html.UnescapeString(m[1])
		if !registered(action) {
			t.Fatalf("query %q: status %d posts a form to %q, which is not a redirect URI of client %q", query, rec.Code, action, form.Get("client_id"))
		}
	}
}

func FuzzAuthorizeParams(f *testing.F) {
	const pkce = "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
	wiki := "client_id=wiki&redirect_uri=" + url.QueryEscape("https://wiki.example.com/callback")
	native := "client_id=native&redirect_uri=" + url.QueryEscape("com.example.app:/cb")
	for _, seed := range []string{
		"",
		"client_id=wiki",
		wiki,
		wiki + "&response_type=code&scope=openid&state=s" + pkce,
		wiki + "&response_type=code&scope=openid&state=s",
		wiki + "&response_type=code&scope=openid" + pkce + "&code_challenge_method=plain",
		wiki + "&response_type=token&scope=openid&nonce=n" + pkce,
		wiki + "&response_type=code&scope=openid&response_mode=form_post",
		wiki + "&response_type=code&scope=openid&response_mode=fragment",
		wiki + "&response_type=code&scope=openid&prompt=none&prompt=login" + pkce,
		wiki + "&response_type=code&scope=openid&max_age=-1" + pkce,
		wiki + "&response_type=code&scope=openid&max_age=abc" + pkce,
		wiki + "&response_type=code&scope=openid&request=eyJhbGciOiJub25lIn0.e30." + pkce,
		wiki + "&response_type=code&scope=openid&id_token_hint=garbage" + pkce,
		wiki + "&response_type=code&scope=openid&ui_locales=%ff%fe&claims=%7B" + pkce,
		"client_id=wiki&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code&scope=openid",
		"client_id=wiki&redirect_uri=https%3A%2F%2Fwiki.example.com%2Fcallback%2F..%2Fevil&response_type=code&scope=openid",
		native + "&response_type=code&scope=openid" + pkce,
		"client_id=native&redirect_uri=" + url.QueryEscape("http://127.0.0.1:7778/cb") + "&response_type=code&scope=openid",
		"client_id=spa&redirect_uri=" + url.QueryEscape("https://spa.example.com/") + "&response_type=code&scope=openid%20offline_access" + pkce,
		"client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code&scope=openid",
		"%zz=1&client_id=wiki",
		"client_id=wiki;redirect_uri=x",
		// Repeated parameters: see TestAuthorizeRepeatedParameters.
		wiki + "&redirect_uri=" + url.QueryEscape("https://wiki.example.com/callback") + "&response_type=code&scope=openid" + pkce,
	} {
		f.Add(seed, false)
	}
	f.Add(wiki+"&response_type=code&scope=openid&state=s"+pkce, true)

	p := newTestProvider(f)
	h := p.Handler()
	var calls atomic.Uint32
	f.Fuzz(func(t *testing.T, query string, post bool) {
		var r *http.Request
		if post {
			r = httptest.NewRequest(http.MethodPost, testIssuer+"/authorize", strings.NewReader(query))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(http.MethodGet, testIssuer+"/authorize", nil)
			r.URL.RawQuery = query
		}
		// Each from its own address, below the per-address limit.
		n := calls.Add(1)
		r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", n>>16&0xff, n>>8&0xff, n&0xff)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		checkAuthorizeResponse(t, p, query, rec)
	})
}

// TestAuthorizeRepeatedParameters: the bridge checks client_id and
// redirect_uri as net/http reads them (the first value, names as
// written); op decodes the last value, and takes names in any case, in
// map order. A native client's request naming its registered redirect
// URI first and another loopback port second (or as Redirect_URI) must
// not end at that other port: neither an error redirect nor a stored
// request whose code would go there.
func TestAuthorizeRepeatedParameters(t *testing.T) {
	p := newTestProvider(t)
	h := p.Handler()
	const pkce = "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
	other := url.QueryEscape("http://127.0.0.1:9999/cb")
	for _, q := range []string{
		"client_id=native&redirect_uri=com.example.app%3A%2Fcb&redirect_uri=" + other + "&response_type=code&scope=openid" + pkce,
		"client_id=native&redirect_uri=com.example.app%3A%2Fcb&Redirect_URI=" + other + "&response_type=code&scope=openid" + pkce,
		"client_id=native&redirect_uri=com.example.app%3A%2Fcb&REDIRECT_URI=" + other + "&response_type=code&scope=openid",
		"client_id=wiki&redirect_uri=https%3A%2F%2Fwiki.example.com%2Fcallback&Client_Id=native&Redirect_Uri=" + other + "&response_type=code&scope=openid",
	} {
		t.Run("", func(t *testing.T) {
			// op's decoder applies case variants in map order: try
			// enough times to see both orders.
			for range 16 {
				r := httptest.NewRequest(http.MethodGet, testIssuer+"/authorize", nil)
				r.URL.RawQuery = q
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				checkAuthorizeResponse(t, p, q, rec)
			}
		})
	}
}
