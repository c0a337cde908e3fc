package main

// More end-to-end tests of the OpenID Provider against the real binary:
// client authentication (private_key_jwt, client_secret_post), EdDSA,
// key rotation, the discovery document, prompt and max_age, RP-initiated
// logout, introspection, codes and userinfo. One bridge serves the
// subtests of TestOIDCMore, in order: they share the browser session of
// the first sign-in.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// oidcMoreEnv is the bridge of TestOIDCMore and what its subtests share.
type oidcMoreEnv struct {
	t      *testing.T
	b      *liveBridge
	rpBase string // where every client's redirect URIs point (nothing serves there)
	phone  string
	br     *browser // the browser with the session of the first sign-in

	clientKey *ecdsa.PrivateKey // jwtc's key, published in its jwks_file
}

// The clients of TestOIDCMore; all but jwtc authenticate with a secret.
const (
	morePosterSecret = "poster-secret-0123456789abcdef"
	moreClientKeyID  = "jwtc-key-1"
)

func oidcMoreYAML(rpBase, jwksFile, posterFile string) string {
	return fmt.Sprintf(`oidc:
  code_lifetime: 10s
  clients:
    - id: wiki
      name: Team wiki
      secret_file: oidc.secret
      redirect_uris: [%[1]s/callback]
      post_logout_redirect_uris: [%[1]s/bye]
    - id: poster
      auth_method: client_secret_post
      secret_file: %[3]s
      redirect_uris: [%[1]s/post]
    - id: jwtc
      auth_method: private_key_jwt
      jwks_file: %[2]s
      redirect_uris: [%[1]s/jwt]
    - id: ed
      secret_file: oidc.secret
      signing_algorithm: EdDSA
      redirect_uris: [%[1]s/ed]
      post_logout_redirect_uris: [%[1]s/ed-bye]
    - id: rsa
      secret_file: oidc.secret
      signing_algorithm: RS256
      redirect_uris: [%[1]s/rsa]
    - id: noreuse
      secret_file: oidc.secret
      session_reuse: false
      redirect_uris: [%[1]s/noreuse]
web:
  session_lifetime: 10m
keys:
  refresh_interval: 1s
  rsa_bits: 2048
`, rpBase, jwksFile, posterFile)
}

// moreRedirects maps the clients of oidcMoreYAML to their redirect paths.
var moreRedirects = map[string]string{
	"wiki": "/callback", "poster": "/post", "jwtc": "/jwt", "ed": "/ed", "rsa": "/rsa", "noreuse": "/noreuse",
}

func startOIDCMore(t *testing.T) *oidcMoreEnv {
	t.Helper()
	l := listenLoopback(t)
	e := &oidcMoreEnv{t: t, rpBase: "http://" + l.Addr().String()}
	var err error
	if e.clientKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	aux := t.TempDir()
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &e.clientKey.PublicKey, KeyID: moreClientKeyID, Algorithm: "ES256", Use: "sig"}}})
	jwksFile, posterFile := filepath.Join(aux, "jwtc.jwks"), filepath.Join(aux, "poster.secret")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(posterFile, []byte(morePosterSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.b = startOIDCBridge(t, oidcMoreYAML(e.rpBase, jwksFile, posterFile))
	e.b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com", "--display-name", "Alice Liddell", "--group", "staff")
	e.phone = e.b.enroll("alice")
	e.br = e.newBrowser()
	return e
}

// newBrowser is a browser that stops at the relying party: the test
// takes the code from the redirect.
func (e *oidcMoreEnv) newBrowser() *browser {
	br := newBrowser(e.t)
	br.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		br.visits = append(br.visits, req.URL.String())
		if strings.HasPrefix(req.URL.String(), e.rpBase+"/") {
			return http.ErrUseLastResponse
		}
		if len(via) > 20 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}
	return br
}

// moreAuthz is an authorization request of a client, with its PKCE verifier.
type moreAuthz struct {
	client, redirect, verifier, state string
	url                               string
}

// authURL builds an authorization request for client; params are added
// to it (scope replaces "openid email").
func (e *oidcMoreEnv) authURL(client string, params ...string) moreAuthz {
	a := moreAuthz{client: client, redirect: e.rpBase + moreRedirects[client], verifier: oauth2.GenerateVerifier(), state: rand.Text()}
	cfg := oauth2.Config{ClientID: client, RedirectURL: a.redirect, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: e.b.issuer() + "/authorize"}}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier)}
	for i := 0; i+1 < len(params); i += 2 {
		if params[i] == "scope" {
			cfg.Scopes = strings.Fields(params[i+1])
			continue
		}
		opts = append(opts, oauth2.SetAuthURLParam(params[i], params[i+1]))
	}
	a.url = cfg.AuthCodeURL(a.state, opts...)
	return a
}

// moreLanded is the query the browser was sent to the client with; it fails
// unless p is a redirect to a's redirect URI.
func moreLanded(t *testing.T, br *browser, p page, redirect string) url.Values {
	t.Helper()
	if p.status != http.StatusFound && p.status != http.StatusSeeOther || len(br.visits) == 0 {
		t.Fatalf("expected a redirect to %s, got %d at %s:\n%s", redirect, p.status, p.url, p.body)
	}
	u, err := url.Parse(br.visits[len(br.visits)-1])
	if err != nil {
		t.Fatal(err)
	}
	if base := strings.SplitN(u.String(), "?", 2)[0]; base != redirect {
		t.Fatalf("redirected to %s, want %s", u, redirect)
	}
	return u.Query()
}

// code takes the code of an authorization response, checking state and
// iss.
func (e *oidcMoreEnv) code(t *testing.T, br *browser, p page, a moreAuthz) string {
	t.Helper()
	q := moreLanded(t, br, p, a.redirect)
	if q.Get("code") == "" || q.Get("state") != a.state || q.Get("iss") != e.b.issuer() {
		t.Fatalf("authorization response without code, state or iss: %v", q)
	}
	return q.Get("code")
}

// reuse runs an authorization that the browser session answers (no
// push) and returns its code.
func (e *oidcMoreEnv) reuse(t *testing.T, br *browser, a moreAuthz) string {
	t.Helper()
	return e.code(t, br, br.get(a.url), a)
}

// push runs an authorization through the sign-in form and a push the
// phone approves, and returns its code.
func (e *oidcMoreEnv) push(t *testing.T, br *browser, a moreAuthz) string {
	t.Helper()
	wait := signIn(t, br, a.url, "alice")
	return e.code(t, br, approve(t, e.b, br, wait, e.phone), a)
}

// signInAny runs an authorization whether or not the browser has a
// session: through the form and a push if it shows the form.
func (e *oidcMoreEnv) signInAny(t *testing.T, br *browser, a moreAuthz) string {
	t.Helper()
	p := br.get(a.url)
	if p.status == http.StatusOK && strings.Contains(p.body, `name="username"`) {
		wait := br.post(p, p.action(t), url.Values{"csrf": {p.csrf(t)}, "username": {"alice"}, "password": {password}})
		if wait.status != http.StatusOK || !strings.Contains(wait.body, `id="waiting"`) {
			t.Fatalf("expected the waiting page, got %d at %s:\n%s", wait.status, wait.url, wait.body)
		}
		p = approve(t, e.b, br, wait, e.phone)
	}
	return e.code(t, br, p, a)
}

// moreTokenResponse is the token endpoint's answer.
type moreTokenResponse struct {
	status           int
	AccessToken      string `json:"access_token"`
	IDToken          string `json:"id_token"`
	RefreshToken     string `json:"refresh_token"`
	Scope            string `json:"scope"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func (r moreTokenResponse) String() string {
	return fmt.Sprintf("%d error=%q (%s) access=%t id=%t", r.status, r.Error, r.ErrorDescription, r.AccessToken != "", r.IDToken != "")
}

// post sends a form to an endpoint of the issuer, with Basic
// credentials if user is set, and decodes the JSON answer into out.
func (e *oidcMoreEnv) post(t *testing.T, path string, form url.Values, user, pass string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.b.issuer()+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && len(body) > 0 && body[0] == '{' {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("POST %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// exchange redeems a's code; auth adds the client's credentials to the
// form or names the Basic user and password.
func (e *oidcMoreEnv) exchange(t *testing.T, a moreAuthz, code string, auth url.Values, user, pass string) moreTokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirect}, "code_verifier": {a.verifier}}
	for k, v := range auth {
		form[k] = v
	}
	var r moreTokenResponse
	r.status = e.post(t, "/oauth/token", form, user, pass, &r)
	return r
}

// exchangeBasic redeems a code of a client with the secret oidc.secret
// (client_secret_basic).
func (e *oidcMoreEnv) exchangeBasic(t *testing.T, a moreAuthz, code string) moreTokenResponse {
	t.Helper()
	r := e.exchange(t, a, code, nil, a.client, oidcSecret)
	if r.status != http.StatusOK || r.IDToken == "" || r.AccessToken == "" {
		t.Fatalf("exchange for %s: %v", a.client, r)
	}
	return r
}

// moreClientAssertion is a private_key_jwt client assertion (RFC 7523) of
// jwtc signed with key.
func moreClientAssertion(t *testing.T, key *ecdsa.PrivateKey, kid, aud, jti string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": "jwtc", "sub": "jwtc", "aud": aud, "jti": jti,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func moreAssertionForm(assertion string) url.Values {
	return url.Values{
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
}

// verify checks an ID token with go-oidc, against a freshly fetched
// discovery document and JWKS.
func (e *oidcMoreEnv) verify(t *testing.T, clientID, raw string, algs ...string) (*gooidc.IDToken, error) {
	t.Helper()
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, e.b.issuer())
	if err != nil {
		t.Fatal(err)
	}
	return provider.Verifier(&gooidc.Config{ClientID: clientID, SupportedSigningAlgs: algs}).Verify(ctx, raw)
}

// moreIDClaims are the ID token claims the tests look at.
type moreIDClaims struct {
	AuthTime      int64    `json:"auth_time"`
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
}

func moreClaims(t *testing.T, idt *gooidc.IDToken) moreIDClaims {
	t.Helper()
	var c moreIDClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// moreKid is the kid of a JWS's header.
func moreKid(t *testing.T, token string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(h, &v)
	return v.Kid
}

// jwksKids are the kids the JWKS publishes, by algorithm.
func (e *oidcMoreEnv) jwksKids(t *testing.T) map[string][]string {
	t.Helper()
	resp, err := http.Get(e.b.issuer() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, k := range set.Keys {
		out[k.Algorithm] = append(out[k.Algorithm], k.KeyID)
	}
	return out
}

// moreGetJSON fetches a JSON document.
func moreGetJSON(t *testing.T, u string, header http.Header, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v: %s", u, err, body)
		}
	}
	return resp.StatusCode
}

var moreRotatedKidRe = regexp.MustCompile(`(?m)^oidc ES256: active (\S+)$`)

func TestOIDCMore(t *testing.T) {
	e := startOIDCMore(t)
	b := e.b

	// The first sign-in, with a push: it opens the session the later
	// subtests reuse, and its ID token is signed with the first ES256 key.
	first := e.authURL("wiki")
	firstTok := e.exchangeBasic(t, first, e.push(t, e.br, first))
	firstIDT, err := e.verify(t, "wiki", firstTok.IDToken)
	if err != nil {
		t.Fatalf("go-oidc rejects the first ID token: %v", err)
	}
	firstAuthTime := moreClaims(t, firstIDT).AuthTime
	if firstAuthTime == 0 {
		t.Fatal("the ID token has no auth_time")
	}

	// A code left unredeemed past oidc.code_lifetime (10s): checked
	// after the quick subtests, so that the wait overlaps them; the
	// session is then old enough for max_age=1 (PromptAndMaxAge).
	expiring := e.authURL("wiki")
	expiringCode := e.reuse(t, e.br, expiring)
	expiringAt := time.Now().Add(10 * time.Second)

	t.Run("Discovery", func(t *testing.T) {
		var doc map[string]any
		if st := moreGetJSON(t, b.issuer()+"/.well-known/openid-configuration", nil, &doc); st != http.StatusOK {
			t.Fatalf("discovery: %d", st)
		}
		strs := func(k string) []string {
			var out []string
			v, _ := doc[k].([]any)
			for _, s := range v {
				out = append(out, fmt.Sprint(s))
			}
			return out
		}
		if doc["issuer"] != b.issuer() {
			t.Errorf("issuer %v, want %s", doc["issuer"], b.issuer())
		}
		if doc["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("authorization_response_iss_parameter_supported = %v", doc["authorization_response_iss_parameter_supported"])
		}
		for k, want := range map[string][]string{
			"code_challenge_methods_supported": {"S256"},
			"response_types_supported":         {"code"},
			"response_modes_supported":         {"query"},
			"grant_types_supported":            {"authorization_code", "refresh_token"},
		} {
			if got := strs(k); !slices.Equal(got, want) {
				t.Errorf("%s = %v, want %v", k, got, want)
			}
		}
		if _, ok := doc["device_authorization_endpoint"]; ok {
			t.Error("device_authorization_endpoint is advertised")
		}
		for k, path := range map[string]string{
			"authorization_endpoint": "/authorize", "token_endpoint": "/oauth/token", "jwks_uri": "/keys",
			"userinfo_endpoint": "/userinfo", "end_session_endpoint": "/end_session",
			"revocation_endpoint": "/revoke", "introspection_endpoint": "/oauth/introspect",
		} {
			if doc[k] != b.issuer()+path {
				t.Errorf("%s = %v, want %s", k, doc[k], b.issuer()+path)
			}
		}
		methods := strs("token_endpoint_auth_methods_supported")
		for _, m := range []string{"client_secret_basic", "client_secret_post", "private_key_jwt"} {
			if !slices.Contains(methods, m) {
				t.Errorf("token_endpoint_auth_methods_supported %v lacks %s", methods, m)
			}
		}
		// ES256 by default, RS256 and EdDSA as clients ask.
		algs := strs("id_token_signing_alg_values_supported")
		slices.Sort(algs)
		if !slices.Equal(algs, []string{"ES256", "EdDSA", "RS256"}) {
			t.Errorf("id_token_signing_alg_values_supported = %v, want ES256, RS256 and EdDSA", algs)
		}
		kids := e.jwksKids(t)
		for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
			if len(kids[alg]) != 1 {
				t.Errorf("JWKS: %d %s keys, want 1 (%v)", len(kids[alg]), alg, kids)
			}
		}
	})

	t.Run("PrivateKeyJWT", func(t *testing.T) {
		aud := b.issuer()
		t.Run("Success", func(t *testing.T) {
			a := e.authURL("jwtc")
			r := e.exchange(t, a, e.reuse(t, e.br, a), moreAssertionForm(moreClientAssertion(t, e.clientKey, moreClientKeyID, aud, rand.Text())), "", "")
			if r.status != http.StatusOK || r.IDToken == "" {
				t.Fatalf("private_key_jwt with aud = issuer: %v", r)
			}
			if _, err := e.verify(t, "jwtc", r.IDToken); err != nil {
				t.Errorf("go-oidc rejects jwtc's ID token: %v", err)
			}
		})
		// OpenID Connect Core 9: the audience SHOULD be the token
		// endpoint's URL, and most client libraries send that.
		t.Run("AudienceTokenEndpoint", func(t *testing.T) {
			a := e.authURL("jwtc")
			r := e.exchange(t, a, e.reuse(t, e.br, a), moreAssertionForm(moreClientAssertion(t, e.clientKey, moreClientKeyID, b.issuer()+"/oauth/token", rand.Text())), "", "")
			if r.status != http.StatusOK || r.IDToken == "" {
				t.Errorf("private_key_jwt with aud = the token endpoint URL is refused: %v", r)
			}
		})
		t.Run("WrongAudience", func(t *testing.T) {
			a := e.authURL("jwtc")
			r := e.exchange(t, a, e.reuse(t, e.br, a), moreAssertionForm(moreClientAssertion(t, e.clientKey, moreClientKeyID, "https://elsewhere.example/oidc", rand.Text())), "", "")
			if r.status == http.StatusOK || r.AccessToken != "" {
				t.Fatalf("an assertion for another audience was accepted: %v", r)
			}
		})
		t.Run("WrongKey", func(t *testing.T) {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			for _, kid := range []string{moreClientKeyID, "unknown-kid"} {
				a := e.authURL("jwtc")
				r := e.exchange(t, a, e.reuse(t, e.br, a), moreAssertionForm(moreClientAssertion(t, other, kid, aud, rand.Text())), "", "")
				if r.status == http.StatusOK || r.AccessToken != "" {
					t.Fatalf("an assertion signed with another key (kid %s) was accepted: %v", kid, r)
				}
				// RFC 6749 5.2: failed client authentication is
				// invalid_client (401).
				if r.Error != "invalid_client" || r.status != http.StatusUnauthorized {
					t.Errorf("kid %s, wrong key: %v, want 401 invalid_client", kid, r)
				}
			}
		})
		t.Run("SecretRefused", func(t *testing.T) {
			a := e.authURL("jwtc")
			code := e.reuse(t, e.br, a)
			r := e.exchange(t, a, code, url.Values{"client_id": {"jwtc"}, "client_secret": {oidcSecret}}, "", "")
			if r.status == http.StatusOK || r.Error != "invalid_client" {
				t.Errorf("client_secret_post for a private_key_jwt client: %v", r)
			}
			a = e.authURL("jwtc")
			r = e.exchange(t, a, e.reuse(t, e.br, a), nil, "jwtc", oidcSecret)
			if r.status == http.StatusOK || r.Error != "invalid_client" {
				t.Errorf("client_secret_basic for a private_key_jwt client: %v", r)
			}
		})
		// OpenID Connect Core 9: a client assertion (its jti) is good
		// for one use.
		t.Run("AssertionReplay", func(t *testing.T) {
			assertion := moreClientAssertion(t, e.clientKey, moreClientKeyID, aud, rand.Text())
			a := e.authURL("jwtc")
			if r := e.exchange(t, a, e.reuse(t, e.br, a), moreAssertionForm(assertion), "", ""); r.status != http.StatusOK {
				t.Fatalf("first use of the assertion: %v", r)
			}
			a = e.authURL("jwtc")
			if r := e.exchange(t, a, e.reuse(t, e.br, a), moreAssertionForm(assertion), "", ""); r.status == http.StatusOK {
				t.Errorf("a client assertion (same jti) was accepted twice: %v", r)
			}
		})
	})

	t.Run("ClientSecretPost", func(t *testing.T) {
		a := e.authURL("poster")
		r := e.exchange(t, a, e.reuse(t, e.br, a), url.Values{"client_id": {"poster"}, "client_secret": {morePosterSecret}}, "", "")
		if r.status != http.StatusOK || r.IDToken == "" {
			t.Fatalf("client_secret_post: %v", r)
		}
		a = e.authURL("poster")
		r = e.exchange(t, a, e.reuse(t, e.br, a), url.Values{"client_id": {"poster"}, "client_secret": {"not the secret at all"}}, "", "")
		if r.status == http.StatusOK || r.Error != "invalid_client" {
			t.Errorf("client_secret_post with a wrong secret: %v", r)
		}
		// The secret in a Basic header instead of the body works too:
		// clients with a secret may send it either way (see
		// oidc/clientauth.go), but not both ways at once.
		a = e.authURL("poster")
		r = e.exchange(t, a, e.reuse(t, e.br, a), nil, "poster", morePosterSecret)
		if r.status != http.StatusOK {
			t.Errorf("client_secret_post client authenticating with HTTP Basic: %v", r)
		}
		a = e.authURL("poster")
		r = e.exchange(t, a, e.reuse(t, e.br, a), url.Values{"client_secret": {morePosterSecret}}, "poster", morePosterSecret)
		if r.status != http.StatusUnauthorized || r.Error != "invalid_client" {
			t.Errorf("a secret sent both ways at once: %v", r)
		}
	})

	t.Run("EdDSA", func(t *testing.T) {
		a := e.authURL("ed")
		r := e.exchangeBasic(t, a, e.reuse(t, e.br, a))
		if alg := jwsAlg(t, r.IDToken); alg != "EdDSA" {
			t.Fatalf("ed's ID token is signed with %s, want EdDSA", alg)
		}
		if _, err := e.verify(t, "ed", r.IDToken); err != nil {
			t.Errorf("go-oidc (algorithms from discovery) rejects the EdDSA ID token: %v", err)
		}
		if _, err := e.verify(t, "ed", r.IDToken, gooidc.EdDSA); err != nil {
			t.Errorf("go-oidc (EdDSA only) rejects the EdDSA ID token: %v", err)
		}
		if _, err := e.verify(t, "ed", r.IDToken, gooidc.ES256, gooidc.RS256); err == nil {
			t.Error("an EdDSA ID token verified for a verifier that allows ES256 and RS256 only")
		}
		if !slices.Contains(e.jwksKids(t)["EdDSA"], moreKid(t, r.IDToken)) {
			t.Errorf("the EdDSA token's kid %s is not in the JWKS", moreKid(t, r.IDToken))
		}
		// ed's own ID token as id_token_hint of a prompt=none request.
		a = e.authURL("ed", "prompt", "none", "id_token_hint", r.IDToken)
		if q := moreLanded(t, e.br, e.br.get(a.url), a.redirect); q.Get("code") == "" {
			t.Errorf("prompt=none with an EdDSA id_token_hint: %v", q)
		}
		a = e.authURL("rsa")
		if alg := jwsAlg(t, e.exchangeBasic(t, a, e.reuse(t, e.br, a)).IDToken); alg != "RS256" {
			t.Errorf("rsa's ID token is signed with %s", alg)
		}
	})

	t.Run("Introspection", func(t *testing.T) {
		a := e.authURL("wiki")
		tok := e.exchangeBasic(t, a, e.reuse(t, e.br, a))
		type result struct {
			Active   bool   `json:"active"`
			Sub      string `json:"sub"`
			Scope    string `json:"scope"`
			ClientID string `json:"client_id"`
			Email    string `json:"email"`
		}
		introspect := func(token, user, pass string) (int, result) {
			var r result
			st := e.post(t, "/oauth/introspect", url.Values{"token": {token}}, user, pass, &r)
			return st, r
		}
		st, r := introspect(tok.AccessToken, "wiki", oidcSecret)
		if st != http.StatusOK || !r.Active || r.Sub != "alice" || r.ClientID != "wiki" || r.Scope != "openid email" {
			t.Errorf("active token: %d %+v", st, r)
		}
		if st, r := introspect(tok.AccessToken, "ed", oidcSecret); st != http.StatusOK || r.Active || r.Sub != "" {
			t.Errorf("another client introspecting wiki's token: %d %+v", st, r)
		}
		if st, r := introspect("not-a-token", "wiki", oidcSecret); st != http.StatusOK || r.Active {
			t.Errorf("unknown token: %d %+v", st, r)
		}
		if st, r := introspect(tok.AccessToken, "wiki", "wrong secret, wrong secret"); st == http.StatusOK || r.Active {
			t.Errorf("introspection with a wrong client secret: %d %+v", st, r)
		}
		if st, r := introspect(tok.AccessToken, "", ""); st == http.StatusOK || r.Active {
			t.Errorf("unauthenticated introspection: %d %+v", st, r)
		}
		// Revoked (RFC 7009), then inactive.
		if st := e.post(t, "/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}, "wiki", oidcSecret, nil); st != http.StatusOK {
			t.Fatalf("revoke: %d", st)
		}
		if st, r := introspect(tok.AccessToken, "wiki", oidcSecret); st != http.StatusOK || r.Active {
			t.Errorf("revoked token: %d %+v", st, r)
		}
		if userinfo(t, b, tok.AccessToken) == http.StatusOK {
			t.Error("a revoked access token still works at userinfo")
		}
	})

	t.Run("CodeOfAnotherClient", func(t *testing.T) {
		a := e.authURL("wiki")
		code := e.reuse(t, e.br, a)
		// ed, with its own valid credentials and wiki's redirect URI.
		r := e.exchange(t, a, code, nil, "ed", oidcSecret)
		if r.status == http.StatusOK || r.Error != "invalid_grant" {
			t.Errorf("wiki's code exchanged by ed: %v", r)
		}
		a = e.authURL("wiki")
		code = e.reuse(t, e.br, a)
		r = e.exchange(t, a, code, url.Values{"client_id": {"poster"}, "client_secret": {morePosterSecret}}, "", "")
		if r.status == http.StatusOK || r.Error != "invalid_grant" {
			t.Errorf("wiki's code exchanged by poster: %v", r)
		}
		// And another client's redirect URI does not help either.
		a = e.authURL("wiki")
		code = e.reuse(t, e.br, a)
		a.redirect = e.rpBase + "/ed"
		if r := e.exchange(t, a, code, nil, "ed", oidcSecret); r.status == http.StatusOK {
			t.Errorf("wiki's code exchanged by ed with ed's redirect URI: %v", r)
		}
	})

	t.Run("Userinfo", func(t *testing.T) {
		info := func(access string) map[string]any {
			var m map[string]any
			if st := moreGetJSON(t, b.issuer()+"/userinfo", http.Header{"Authorization": {"Bearer " + access}}, &m); st != http.StatusOK {
				t.Fatalf("userinfo: %d", st)
			}
			return m
		}
		a := e.authURL("wiki", "scope", "openid")
		tok := e.exchangeBasic(t, a, e.reuse(t, e.br, a))
		m := info(tok.AccessToken)
		if m["sub"] != "alice" {
			t.Errorf("userinfo sub = %v", m["sub"])
		}
		for _, k := range []string{"email", "email_verified", "groups", "name", "preferred_username"} {
			if _, ok := m[k]; ok {
				t.Errorf("scope openid only: userinfo has %s: %v", k, m)
			}
		}
		idt, err := e.verify(t, "wiki", tok.IDToken)
		if err != nil {
			t.Fatal(err)
		}
		if c := moreClaims(t, idt); c.Email != "" || c.EmailVerified != nil || c.Groups != nil || c.Name != "" {
			t.Errorf("scope openid only: ID token claims %+v", c)
		}

		a = e.authURL("wiki", "scope", "openid email")
		m = info(e.exchangeBasic(t, a, e.reuse(t, e.br, a)).AccessToken)
		if m["email"] != "alice@example.com" || m["email_verified"] != true {
			t.Errorf("scope email: %v", m)
		}
		if _, ok := m["groups"]; ok {
			t.Errorf("scope email: userinfo has groups: %v", m)
		}

		a = e.authURL("wiki", "scope", "openid profile groups")
		m = info(e.exchangeBasic(t, a, e.reuse(t, e.br, a)).AccessToken)
		if m["name"] != "Alice Liddell" || fmt.Sprint(m["groups"]) != "[staff]" || m["email"] != nil {
			t.Errorf("scope profile groups: %v", m)
		}
	})

	t.Run("ExpiredCode", func(t *testing.T) {
		time.Sleep(time.Until(expiringAt.Add(1500 * time.Millisecond)))
		r := e.exchange(t, expiring, expiringCode, nil, "wiki", oidcSecret)
		if r.status == http.StatusOK || r.Error != "invalid_grant" {
			t.Errorf("a code past code_lifetime: %v", r)
		}
	})

	t.Run("PromptAndMaxAge", func(t *testing.T) {
		form := func(t *testing.T, br *browser, a moreAuthz, what string) {
			t.Helper()
			p := br.get(a.url)
			if p.status != http.StatusOK || !strings.Contains(p.body, `name="username"`) {
				t.Errorf("%s: expected the sign-in form, got %d at %s", what, p.status, p.url)
			}
		}
		form(t, e.br, e.authURL("wiki", "prompt", "login"), "prompt=login")
		form(t, e.br, e.authURL("wiki", "max_age", "0"), "max_age=0")
		form(t, e.br, e.authURL("noreuse"), "a client with session_reuse: false")

		// max_age within the session's age: the session answers, without
		// a push (a push would have shown the waiting page), with the
		// first sign-in's auth_time.
		a := e.authURL("wiki", "max_age", "3600")
		idt, err := e.verify(t, "wiki", e.exchangeBasic(t, a, e.reuse(t, e.br, a)).IDToken)
		if err != nil {
			t.Fatal(err)
		}
		if at := moreClaims(t, idt).AuthTime; at != firstAuthTime {
			t.Errorf("reused session: auth_time %d, want the first sign-in's %d", at, firstAuthTime)
		}

		a = e.authURL("wiki", "prompt", "none")
		idt, err = e.verify(t, "wiki", e.exchangeBasic(t, a, e.reuse(t, e.br, a)).IDToken)
		if err != nil {
			t.Fatal(err)
		}
		if at := moreClaims(t, idt).AuthTime; at != firstAuthTime {
			t.Errorf("prompt=none: auth_time %d, want %d", at, firstAuthTime)
		}

		// With the ID token as id_token_hint (the session's user).
		a = e.authURL("wiki", "prompt", "none", "id_token_hint", firstTok.IDToken)
		if q := moreLanded(t, e.br, e.br.get(a.url), a.redirect); q.Get("code") == "" {
			t.Errorf("prompt=none with the session user's id_token_hint: %v", q)
		}

		// prompt=none without a session: login_required, with state and
		// iss.
		fresh := e.newBrowser()
		a = e.authURL("wiki", "prompt", "none")
		q := moreLanded(t, fresh, fresh.get(a.url), a.redirect)
		if q.Get("error") != "login_required" || q.Get("state") != a.state || q.Get("iss") != b.issuer() || q.Get("code") != "" {
			t.Errorf("prompt=none without a session: %v", q)
		}
		// prompt=none with max_age shorter than the session's age (the
		// first sign-in was over 10s ago: ExpiredCode waited).
		a = e.authURL("wiki", "prompt", "none", "max_age", "1")
		if q := moreLanded(t, e.br, e.br.get(a.url), a.redirect); q.Get("error") != "login_required" || q.Get("code") != "" {
			t.Errorf("prompt=none, max_age=1 on an older session: %v", q)
		}

		// prompt=none to a client that does not reuse sessions: there is
		// no usable session, so login_required, not a code.
		a = e.authURL("noreuse", "prompt", "none")
		if q := moreLanded(t, e.br, e.br.get(a.url), a.redirect); q.Get("error") != "login_required" || q.Get("code") != "" {
			t.Errorf("prompt=none to a client with session_reuse: false answered without asking: %v", q)
		}
	})

	t.Run("KeyRotation", func(t *testing.T) {
		oldKid := moreKid(t, firstTok.IDToken)
		out := b.cli("", "keys", "rotate", "--purpose", "oidc")
		m := moreRotatedKidRe.FindStringSubmatch(out)
		if m == nil || m[1] == oldKid {
			t.Fatalf("keys rotate:\n%s", out)
		}
		newKid := m[1]
		// The running bridge picks the new key up (keys.refresh_interval
		// 1s).
		deadline := time.Now().Add(15 * time.Second)
		for !slices.Contains(e.jwksKids(t)["ES256"], newKid) {
			if time.Now().After(deadline) {
				t.Fatalf("the JWKS does not publish the new key %s: %v", newKid, e.jwksKids(t))
			}
			time.Sleep(200 * time.Millisecond)
		}
		kids := e.jwksKids(t)
		if !slices.Contains(kids["ES256"], oldKid) {
			t.Errorf("the retired key %s left the JWKS within its overlap: %v", oldKid, kids)
		}
		if len(kids["EdDSA"]) != 2 || len(kids["RS256"]) != 2 {
			t.Errorf("after rotating every OIDC key, the JWKS: %v", kids)
		}
		if _, err := e.verify(t, "wiki", firstTok.IDToken); err != nil {
			t.Errorf("the ID token signed before the rotation no longer verifies: %v", err)
		}
		// The next token is signed with the new key (the signer may lag
		// the JWKS by a refresh: retry briefly).
		var kid string
		for range 10 {
			a := e.authURL("wiki")
			tok := e.exchangeBasic(t, a, e.reuse(t, e.br, a))
			if kid = moreKid(t, tok.IDToken); kid == newKid {
				if _, err := e.verify(t, "wiki", tok.IDToken); err != nil {
					t.Errorf("the new ID token does not verify: %v", err)
				}
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		if kid != newKid {
			t.Errorf("after the rotation ID tokens are signed with %s, want %s", kid, newKid)
		}
	})

	t.Run("EndSession", func(t *testing.T) {
		a := e.authURL("wiki")
		tok := e.exchangeBasic(t, a, e.reuse(t, e.br, a))

		// An unregistered post_logout_redirect_uri: an error, no redirect.
		n := len(e.br.visits)
		p := e.br.get(b.issuer() + "/end_session?" + url.Values{"id_token_hint": {tok.IDToken},
			"post_logout_redirect_uri": {e.rpBase + "/elsewhere"}, "state": {"s1"}}.Encode())
		if p.status < 400 || p.status >= 500 || len(e.br.visits) != n {
			t.Errorf("unregistered post_logout_redirect_uri: %d, redirects %v", p.status, e.br.visits[n:])
		}
		// Another client's registered URI is not wiki's either.
		n = len(e.br.visits)
		p = e.br.get(b.issuer() + "/end_session?" + url.Values{"id_token_hint": {tok.IDToken},
			"post_logout_redirect_uri": {e.rpBase + "/ed-bye"}}.Encode())
		if p.status < 400 || p.status >= 500 || len(e.br.visits) != n {
			t.Errorf("ed's post_logout_redirect_uri with wiki's id_token_hint: %d, redirects %v", p.status, e.br.visits[n:])
		}
		// An unknown client: a client error, not a server error.
		if st := e.br.get(b.issuer() + "/end_session?client_id=nobody&post_logout_redirect_uri=" + url.QueryEscape(e.rpBase+"/bye")).status; st >= 500 {
			t.Errorf("end_session with an unknown client_id: status %d", st)
		}

		// Log out properly (signing in again if the requests above ended
		// the session).
		a = e.authURL("wiki")
		tok = e.exchangeBasic(t, a, e.signInAny(t, e.br, a))
		p = e.br.get(b.issuer() + "/end_session?" + url.Values{"id_token_hint": {tok.IDToken},
			"post_logout_redirect_uri": {e.rpBase + "/bye"}, "state": {"bye-state"}}.Encode())
		if q := moreLanded(t, e.br, p, e.rpBase+"/bye"); q.Get("state") != "bye-state" {
			t.Errorf("post-logout redirect without state: %v", q)
		}
		// The session is gone: the next authorization asks again, and
		// prompt=none gets login_required.
		p = e.br.get(e.authURL("wiki").url)
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="username"`) {
			t.Errorf("after end_session: %d at %s, want the sign-in form", p.status, p.url)
		}
		a = e.authURL("wiki", "prompt", "none")
		if q := moreLanded(t, e.br, e.br.get(a.url), a.redirect); q.Get("error") != "login_required" {
			t.Errorf("prompt=none after end_session: %v", q)
		}

		// An EdDSA client's ID token as id_token_hint: its
		// post_logout_redirect_uri is honoured like anyone's.
		a = e.authURL("ed")
		tok = e.exchangeBasic(t, a, e.signInAny(t, e.br, a))
		p = e.br.get(b.issuer() + "/end_session?" + url.Values{"id_token_hint": {tok.IDToken},
			"post_logout_redirect_uri": {e.rpBase + "/ed-bye"}, "state": {"ed-state"}}.Encode())
		if p.status != http.StatusFound {
			t.Errorf("end_session with an EdDSA id_token_hint: %d %s", p.status, strings.TrimSpace(p.body))
		} else if q := moreLanded(t, e.br, p, e.rpBase+"/ed-bye"); q.Get("state") != "ed-state" {
			t.Errorf("EdDSA logout: %v", q)
		}
	})
}
