package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// oidcClients is the OIDC section of the tests: a confidential client
// (wiki) and a public one (spa), both redirecting to the relying party
// listening at rpAddr.
func oidcClients(rpAddr string) string {
	return fmt.Sprintf(`oidc:
  clients:
    - id: wiki
      name: Team wiki
      secret_file: oidc.secret
      redirect_uris: [http://%[1]s/callback]
      post_logout_redirect_uris: [http://%[1]s/bye]
    - id: spa
      name: Single-page app
      auth_method: none
      redirect_uris: [http://%[1]s/spa]
      signing_algorithm: RS256
      session_reuse: false
web:
  session_lifetime: 10m
`, rpAddr)
}

// signIn takes the browser from an authorization URL through the sign-in
// form; it returns the waiting page.
func signIn(t *testing.T, br *browser, authURL, user string) page {
	t.Helper()
	form := br.get(authURL)
	if form.status != http.StatusOK || !strings.Contains(form.body, `name="username"`) {
		t.Fatalf("expected the sign-in form at %s, got %d:\n%s", form.url, form.status, form.body)
	}
	wait := br.post(form, form.action(t), url.Values{"csrf": {form.csrf(t)}, "username": {user}, "password": {password}})
	if wait.status != http.StatusOK || !strings.Contains(wait.body, `id="waiting"`) {
		t.Fatalf("expected the waiting page, got %d at %s:\n%s", wait.status, wait.url, wait.body)
	}
	return wait
}

// approve answers the waiting page's push on phone (typing the number it
// shows) and continues; it returns where the browser landed.
func approve(t *testing.T, b *liveBridge, br *browser, wait page, phone string, args ...string) page {
	t.Helper()
	if n := wait.number(); n != "" {
		args = append(args, "--number", n)
	}
	if err := <-b.answer(phone, append([]string{"--auto-approve"}, args...)...); err != nil {
		t.Fatalf("phone: %v", err)
	}
	return br.post(wait, "/login/"+loginID(t, wait)+"/continue", url.Values{"csrf": {wait.csrf(t)}})
}

func loginID(t *testing.T, p page) string {
	t.Helper()
	parts := strings.Split(strings.Trim(p.url.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "login" {
		t.Fatalf("not a sign-in page: %s", p.url)
	}
	return parts[1]
}

// rpServer is a relying party on zitadel's rp package: /login starts the
// code flow (PKCE), /callback exchanges the code and hands the tokens to
// the test.
type rpServer struct {
	rp     rp.RelyingParty
	tokens chan *zoidc.Tokens[*zoidc.IDTokenClaims]
	errs   chan string
}

func startRP(t *testing.T, l net.Listener, issuer, clientID, secret string, scopes []string) *rpServer {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	cookies := httphelper.NewCookieHandler(key, key, httphelper.WithUnsecure())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	party, err := rp.NewRelyingPartyOIDC(ctx, issuer, clientID, secret, "http://"+l.Addr().String()+"/callback", scopes,
		rp.WithPKCE(cookies), rp.WithSigningAlgsFromDiscovery(),
		rp.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, errorType, desc, state string) {
			http.Error(w, errorType+": "+desc, http.StatusBadRequest)
		}))
	if err != nil {
		t.Fatal(err)
	}
	s := &rpServer{rp: party, tokens: make(chan *zoidc.Tokens[*zoidc.IDTokenClaims], 4), errs: make(chan string, 4)}
	mux := http.NewServeMux()
	mux.Handle("/login", rp.AuthURLHandler(func() string { return rand.Text() }, party))
	mux.Handle("/callback", rp.CodeExchangeHandler(func(w http.ResponseWriter, r *http.Request, tokens *zoidc.Tokens[*zoidc.IDTokenClaims], state string, _ rp.RelyingParty) {
		s.tokens <- tokens
		fmt.Fprint(w, "signed in")
	}, party))
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func TestOIDCCodeFlowWithRP(t *testing.T) {
	l := listenLoopback(t)
	b := startOIDCBridge(t, oidcClients(l.Addr().String()))
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com", "--display-name", "Alice Liddell", "--group", "staff")
	phone := b.enroll("alice")
	party := startRP(t, l, b.issuer(), "wiki", oidcSecret, []string{"openid", "profile", "email", "groups", "offline_access"})
	ctx := context.Background()

	br := newBrowser(t)
	wait := signIn(t, br, "http://"+l.Addr().String()+"/login", "alice")
	if wait.number() == "" {
		t.Fatal("number matching is on by default, but the waiting page shows no number")
	}
	landed := approve(t, b, br, wait, phone)
	if landed.status != http.StatusOK || landed.body != "signed in" {
		t.Fatalf("the relying party did not sign the user in: %d %s", landed.status, landed.body)
	}
	tokens := <-party.tokens

	// The authorization response carried iss (RFC 9207).
	var cb *url.URL
	for _, v := range br.visits {
		if u, _ := url.Parse(v); u != nil && u.Path == "/callback" {
			cb = u
		}
	}
	if cb == nil || cb.Query().Get("iss") != b.issuer() {
		t.Fatalf("authorization response without iss=%s: %v", b.issuer(), br.visits)
	}

	// An independent verifier checks the ID token: signature (ES256 by
	// default, key from the JWKS), issuer, audience, expiry.
	provider, err := gooidc.NewProvider(ctx, b.issuer())
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&gooidc.Config{ClientID: "wiki"})
	idt, err := verifier.Verify(ctx, tokens.IDToken)
	if err != nil {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	var claims struct {
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		AuthTime int64    `json:"auth_time"`
		Email    string   `json:"email"`
		Name     string   `json:"name"`
		Groups   []string `json:"groups"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "alice" || claims.Email != "alice@example.com" || claims.Name != "Alice Liddell" || !slices.Equal(claims.Groups, []string{"staff"}) {
		t.Errorf("ID token claims: sub %q, %+v", idt.Subject, claims)
	}
	if !slices.Contains(claims.AMR, "pwd") || !slices.Contains(claims.AMR, "mfa") ||
		!(slices.Contains(claims.AMR, "hwk") || slices.Contains(claims.AMR, "swk")) {
		t.Errorf("amr = %v, want pwd, mfa and hwk or swk", claims.AMR)
	}
	if claims.ACR == "" || time.Since(time.Unix(claims.AuthTime, 0)) > time.Minute {
		t.Errorf("acr %q, auth_time %d", claims.ACR, claims.AuthTime)
	}
	if alg := jwsAlg(t, tokens.IDToken); alg != "ES256" {
		t.Errorf("ID token signed with %s, want ES256 by default", alg)
	}

	// Userinfo with the access token.
	info, err := rp.Userinfo[*zoidc.UserInfo](ctx, tokens.AccessToken, "Bearer", "alice", party.rp)
	if err != nil || info.Email != "alice@example.com" {
		t.Fatalf("userinfo: %v %+v", err, info)
	}

	// Refresh: a new pair; the old refresh token is then used up, and
	// using it again revokes the whole family.
	first := tokens.RefreshToken
	if first == "" {
		t.Fatal("no refresh token with offline_access")
	}
	fresh, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, party.rp, first, "", "")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == first {
		t.Fatal("refresh did not rotate the refresh token")
	}
	if _, err := rp.Userinfo[*zoidc.UserInfo](ctx, fresh.AccessToken, "Bearer", "alice", party.rp); err != nil {
		t.Fatalf("userinfo with the refreshed access token: %v", err)
	}
	if _, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, party.rp, first, "", ""); err == nil {
		t.Fatal("a used refresh token was accepted again")
	}
	if _, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, party.rp, fresh.RefreshToken, "", ""); err == nil {
		t.Error("after reuse of its predecessor, the newest refresh token still works: the family was not revoked")
	}
	if _, err := rp.Userinfo[*zoidc.UserInfo](ctx, fresh.AccessToken, "Bearer", "alice", party.rp); err == nil {
		t.Error("after refresh-token reuse, the family's access token still works")
	}
	if auditCount(t, b, "oidc.refresh.reuse", "alice") != 1 {
		t.Error("refresh-token reuse was not audited")
	}

	// A second sign-in in the same browser: the session stands in for
	// the push (the phone is not asked), and revoking its refresh token
	// ends it.
	landed = br.get("http://" + l.Addr().String() + "/login")
	if landed.body != "signed in" {
		t.Fatalf("session reuse: landed at %s with %d:\n%s", landed.url, landed.status, landed.body)
	}
	second := <-party.tokens
	if err := rp.RevokeToken(ctx, party.rp, second.RefreshToken, "refresh_token"); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, party.rp, second.RefreshToken, "", ""); err == nil {
		t.Error("a revoked refresh token still works")
	}
	if _, err := rp.Userinfo[*zoidc.UserInfo](ctx, second.AccessToken, "Bearer", "alice", party.rp); err == nil {
		t.Error("revoking the refresh token left its access token working")
	}

	// Signing the user out from the CLI ends the browser session: the next
	// sign-in asks again.
	if out := b.cli("", "oidc", "signout", "alice"); !strings.Contains(out, "signed alice out") {
		t.Errorf("oidc signout: %s", out)
	}
	if p := br.get("http://" + l.Addr().String() + "/login"); !strings.Contains(p.body, `name="username"`) {
		t.Errorf("after oidc signout the session still signs the browser in: %s\n%s", p.url, p.body)
	}
	if auditCount(t, b, "user.signout", "alice") != 1 {
		t.Error("oidc signout not audited")
	}
	var listed []struct {
		ID string `json:"id"`
	}
	out := b.cli("", "oidc", "clients", "--json")
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 2 || listed[0].ID != "wiki" || strings.Contains(out, oidcSecret) {
		t.Errorf("oidc clients --json: %v\n%s", err, out)
	}

	// A tampered ID token fails verification.
	parts := strings.Split(tokens.IDToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"sub":"alice"`, `"sub":"mallory"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	if _, err := verifier.Verify(ctx, strings.Join(parts, ".")); err == nil {
		t.Error("go-oidc accepted a tampered ID token")
	}
}

func jwsAlg(t *testing.T, token string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Alg string `json:"alg"`
	}
	json.Unmarshal(h, &v)
	return v.Alg
}

// manualClient drives the code flow with golang.org/x/oauth2 and stops at
// the redirect to the client, so that the test holds the code.
type manualClient struct {
	t   *testing.T
	cfg oauth2.Config
	br  *browser
}

func newManualClient(t *testing.T, b *liveBridge, clientID, secret, redirect string) *manualClient {
	br := newBrowser(t)
	// Stop at the client's redirect URI: nothing listens there.
	br.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		br.visits = append(br.visits, req.URL.String())
		if strings.HasPrefix(req.URL.String(), redirect) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return &manualClient{t: t, br: br, cfg: oauth2.Config{
		ClientID: clientID, ClientSecret: secret, RedirectURL: redirect, Scopes: []string{"openid", "email", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: b.issuer() + "/authorize", TokenURL: b.issuer() + "/oauth/token"},
	}}
}

// redirected is the Location the bridge sent the browser to at the end of
// a flow (the client's redirect URI with code or error).
func (m *manualClient) redirected(p page) url.Values {
	m.t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		m.t.Fatalf("expected a redirect to the client, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	last := m.br.visits[len(m.br.visits)-1]
	u, err := url.Parse(last)
	if err != nil {
		m.t.Fatal(err)
	}
	return u.Query()
}

func TestOIDCNegative(t *testing.T) {
	l := listenLoopback(t)
	rpBase := "http://" + l.Addr().String()
	// No sessions: every sign-in asks the phone.
	b := startOIDCBridge(t, strings.Replace(oidcClients(l.Addr().String()), "session_lifetime: 10m", "session_lifetime: 0s", 1))
	b.cli(password+"\n", "users", "add", "bob", "--password-stdin", "--email", "bob@example.com")
	phone := b.enroll("bob")
	ctx := context.Background()

	t.Run("MissingPKCE", func(t *testing.T) {
		m := newManualClient(t, b, "wiki", oidcSecret, rpBase+"/callback")
		p := m.br.get(m.cfg.AuthCodeURL("st1"))
		q := m.redirected(p)
		if q.Get("error") != "invalid_request" || q.Get("state") != "st1" || q.Get("iss") != b.issuer() {
			t.Fatalf("missing PKCE: %v", q)
		}
	})
	t.Run("PlainPKCE", func(t *testing.T) {
		m := newManualClient(t, b, "wiki", oidcSecret, rpBase+"/callback")
		p := m.br.get(m.cfg.AuthCodeURL("st2", oauth2.SetAuthURLParam("code_challenge", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
		if q := m.redirected(p); q.Get("error") != "invalid_request" {
			t.Fatalf("plain PKCE: %v", q)
		}
	})
	t.Run("WrongRedirectURI", func(t *testing.T) {
		for _, redirect := range []string{rpBase + "/callback/../evil", rpBase + "/callbackx", "http://127.0.0.1:1/callback", rpBase + "/CALLBACK"} {
			m := newManualClient(t, b, "wiki", oidcSecret, redirect)
			p := m.br.get(m.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			if p.status != http.StatusBadRequest || len(m.br.visits) != 0 {
				t.Errorf("redirect_uri %s: status %d, redirects %v", redirect, p.status, m.br.visits)
			}
		}
	})
	t.Run("ImplicitRefused", func(t *testing.T) {
		m := newManualClient(t, b, "wiki", oidcSecret, rpBase+"/callback")
		u := m.cfg.AuthCodeURL("st3", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("response_type", "id_token token"), oauth2.SetAuthURLParam("nonce", "n"))
		p := m.br.get(u)
		// Refused with an error page or an error response; never a token.
		if p.status == http.StatusBadRequest && len(m.br.visits) == 0 {
			return
		}
		if q := m.redirected(p); q.Get("error") == "" || q.Get("code") != "" || q.Get("access_token") != "" {
			t.Fatalf("implicit flow: %v", q)
		}
	})

	// login runs a whole sign-in with PKCE and returns the code.
	login := func(t *testing.T, m *manualClient, verifier string) string {
		t.Helper()
		wait := signIn(t, m.br, m.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "bob")
		q := m.redirected(approve(t, b, m.br, wait, phone))
		if q.Get("code") == "" || q.Get("iss") != b.issuer() {
			t.Fatalf("no code: %v", q)
		}
		return q.Get("code")
	}

	t.Run("ReplayedCodeRevokesTokens", func(t *testing.T) {
		m := newManualClient(t, b, "wiki", oidcSecret, rpBase+"/callback")
		verifier := oauth2.GenerateVerifier()
		code := login(t, m, verifier)
		tok, err := m.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("a code was exchanged twice")
		}
		if userinfo(t, b, tok.AccessToken) == http.StatusOK {
			t.Error("the access token of a replayed code still works")
		}
		if _, err := m.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Error("the refresh token of a replayed code still works")
		}
		if auditCount(t, b, "oidc.code.replay", "bob") != 1 {
			t.Error("code replay not audited")
		}
	})
	t.Run("WrongVerifier", func(t *testing.T) {
		m := newManualClient(t, b, "wiki", oidcSecret, rpBase+"/callback")
		verifier := oauth2.GenerateVerifier()
		code := login(t, m, verifier)
		if _, err := m.cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Fatal("a code was exchanged with the wrong PKCE verifier")
		}
		// A failed attempt (someone holding the code but not the
		// verifier) does not burn the code for the client.
		replays := auditCount(t, b, "oidc.code.replay", "bob")
		if _, err := m.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("the right verifier after a wrong one: %v", err)
		}
		if auditCount(t, b, "oidc.code.replay", "bob") != replays {
			t.Error("a failed attempt made the code's first real use count as a replay")
		}
	})
	t.Run("WrongClientSecret", func(t *testing.T) {
		m := newManualClient(t, b, "wiki", oidcSecret, rpBase+"/callback")
		verifier := oauth2.GenerateVerifier()
		code := login(t, m, verifier)
		m.cfg.ClientSecret = "not the secret at all!!"
		if _, err := m.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("a code was exchanged with a wrong client secret")
		}
	})
	t.Run("PublicClientRS256", func(t *testing.T) {
		m := newManualClient(t, b, "spa", "", rpBase+"/spa")
		verifier := oauth2.GenerateVerifier()
		code := login(t, m, verifier)
		tok, err := m.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		if alg := jwsAlg(t, raw); alg != "RS256" {
			t.Errorf("spa's ID token is signed with %s, want RS256", alg)
		}
		provider, err := gooidc.NewProvider(ctx, b.issuer())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := provider.Verifier(&gooidc.Config{ClientID: "spa"}).Verify(ctx, raw); err != nil {
			t.Errorf("go-oidc rejects the RS256 ID token: %v", err)
		}
		if _, err := provider.Verifier(&gooidc.Config{ClientID: "wiki"}).Verify(ctx, raw); err == nil {
			t.Error("spa's ID token verified for another audience")
		}
	})
	t.Run("DeniedPush", func(t *testing.T) {
		m := newManualClient(t, b, "wiki", oidcSecret, rpBase+"/callback")
		wait := signIn(t, m.br, m.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "bob")
		if err := <-b.answer(phone, "--auto-deny"); err != nil {
			t.Fatal(err)
		}
		p := m.br.post(wait, "/login/"+loginID(t, wait)+"/continue", url.Values{"csrf": {wait.csrf(t)}})
		if !strings.Contains(p.body, "Sign-in denied") || !strings.Contains(p.body, "/restart") {
			t.Fatalf("denied push: %d\n%s", p.status, p.body)
		}
		for _, v := range m.br.visits {
			if strings.Contains(v, "code=") {
				t.Fatalf("a code was issued after a denied push: %s", v)
			}
		}
	})
	t.Run("ClientEndpointsStrict", func(t *testing.T) {
		// op reads the query as well as the body, matches parameter names
		// with Unicode case folding and takes the last of repeated ones:
		// every way of slipping a parameter past the bridge's own checks
		// is refused before op sees it.
		// send returns the status and the error_description: the bridge's
		// own words show that its check, not op, refused the request.
		send := func(method, path, query string, form url.Values) string {
			t.Helper()
			u := b.issuer() + path
			if query != "" {
				u += "?" + query
			}
			req, _ := http.NewRequest(method, u, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("wiki", oidcSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Desc string `json:"error_description"`
			}
			json.NewDecoder(resp.Body).Decode(&e)
			return fmt.Sprintf("%d %s", resp.StatusCode, e.Desc)
		}
		grant := func(extra ...string) url.Values {
			v := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {rpBase + "/callback"}}
			for i := 0; i+1 < len(extra); i += 2 {
				v.Add(extra[i], extra[i+1])
			}
			return v
		}
		for _, path := range []string{"/oauth/token", "/oauth/introspect", "/revoke"} {
			for name, got := range map[string]string{
				"GET":                     send(http.MethodGet, path, "", nil),
				"PUT":                     send(http.MethodPut, path, "", grant()),
				"a query string":          send(http.MethodPost, path, "client_assertion=x", grant()),
				"a repeated parameter":    send(http.MethodPost, path, "", grant("code", "y")),
				"another spelling":        send(http.MethodPost, path, "", grant("Code", "y")),
				"a Unicode-folded name":   send(http.MethodPost, path, "", grant("client_a\u017f\u017fertion", "y")),
				"an upper-case assertion": send(http.MethodPost, path, "", grant("Client_Assertion", "y")),
			} {
				if !strings.HasPrefix(got, "405 use POST") && !strings.HasPrefix(got, "400 parameters go in the body") &&
					!strings.HasPrefix(got, "400 repeated or misspelt parameter") {
					t.Errorf("%s with %s: %s", path, name, got)
				}
			}
		}
	})
	t.Run("DisabledUserSignedOut", func(t *testing.T) {
		b.cli(password+"\n", "users", "add", "dora", "--password-stdin")
		dora := b.enroll("dora")
		m := newManualClient(t, b, "wiki", oidcSecret, rpBase+"/callback")
		verifier := oauth2.GenerateVerifier()
		wait := signIn(t, m.br, m.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "dora")
		q := m.redirected(approve(t, b, m.br, wait, dora))
		tok, err := m.cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		b.cli("", "users", "disable", "dora")
		if userinfo(t, b, tok.AccessToken) == http.StatusOK {
			t.Error("a disabled user's access token still works")
		}
		if _, err := m.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Error("a disabled user's refresh token still works")
		}
	})
	t.Run("CSRFMissing", func(t *testing.T) {
		m := newManualClient(t, b, "wiki", oidcSecret, rpBase+"/callback")
		form := m.br.get(m.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		p := m.br.post(form, form.action(t), url.Values{"username": {"bob"}, "password": {password}})
		if p.status != http.StatusForbidden {
			t.Fatalf("sign-in without a CSRF token: %d", p.status)
		}
	})
}

// TestOIDCPushTimeout is apart: it needs a short challenge lifetime.
func TestOIDCPushTimeout(t *testing.T) {
	l := listenLoopback(t)
	b := startOIDCBridge(t, oidcClients(l.Addr().String()), "challenge_ttl: 10s")
	b.cli(password+"\n", "users", "add", "carol", "--password-stdin")
	b.enroll("carol")
	m := newManualClient(t, b, "wiki", oidcSecret, "http://"+l.Addr().String()+"/callback")
	wait := signIn(t, m.br, m.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "carol")
	// Nobody answers: the waiting page's long poll reports the expiry.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := m.br.get(wait.url.String() + "/status")
		if strings.Contains(st.body, `"expired"`) {
			break
		}
		if !strings.Contains(st.body, `"pending"`) || time.Now().After(deadline) {
			t.Fatalf("status: %d %s", st.status, st.body)
		}
	}
	p := m.br.post(wait, "/login/"+loginID(t, wait)+"/continue", url.Values{"csrf": {wait.csrf(t)}})
	if !strings.Contains(p.body, "No answer from your phone") || !strings.Contains(p.body, "Try again") {
		t.Fatalf("timed-out push: %d\n%s", p.status, p.body)
	}
	// Try again goes back to the sign-in form of the same request.
	again := m.br.post(p, p.action(t), url.Values{"csrf": {p.csrf(t)}})
	if !strings.Contains(again.body, `name="username"`) {
		t.Fatalf("try again: %d\n%s", again.status, again.body)
	}
}

func userinfo(t *testing.T, b *liveBridge, access string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.issuer()+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
