package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// oidcSecret is a valid client secret for tests.
const oidcSecret = "0123456789abcdef0123456789abcdef"

// testJWKS is a valid client key set: one public EC P-256 key.
const testJWKS = `{"keys": [{"kty": "EC", "kid": "k1", "crv": "P-256",
  "x": "fbO0lk0K57xwfF-bYPX_KR28r-KSPj_lCoy97xjrA_0", "y": "yFUm4jQ5BBsllvxUYzOXgeDBhxP6bpcn1FOxdkDi5O4"}]}`

// oidcClient is an oidc section with one valid client: extra keys for it
// on line 3 of the section (line 8 after trial), then secret and
// redirect_uris unless extra has them (or says auth_method).
func oidcClient(extra string) string {
	s := "oidc:\n  clients:\n    - id: wiki\n" + extra
	for _, kv := range []string{"secret: " + oidcSecret, "redirect_uris: [https://wiki.example.com/redirect_uri]"} {
		key, _, _ := strings.Cut(kv, ":")
		if strings.Contains(extra, "      "+key+":") ||
			(key == "secret" && (strings.Contains(extra, "      secret_file:") || strings.Contains(extra, "      auth_method:") ||
				strings.Contains(extra, "      jwks_file:"))) {
			continue
		}
		s += "      " + kv + "\n"
	}
	return s
}

func TestOIDCDefaults(t *testing.T) {
	c := mustParse(t, trial(""))
	if o := c.OIDC; o.Enabled() || o.SigningAlgorithm != "ES256" || o.CodeLifetime != time.Minute || o.AccessTokenLifetime != 10*time.Minute ||
		o.IDTokenLifetime != 10*time.Minute || o.RefreshTokenLifetime != 8*time.Hour {
		t.Errorf("oidc %+v", o)
	}

	c = mustParse(t, trial(oidcClient("")))
	want := OIDCClient{
		ID: "wiki", Name: "wiki", Secret: oidcSecret, AuthMethod: "client_secret_basic",
		RedirectURIs: []string{"https://wiki.example.com/redirect_uri"}, Directory: "local",
		NumberMatching: true, DeviceKeys: DeviceKeysAny, SessionReuse: true, Captcha: false,
		Scopes: []string{"openid", "profile", "email", "groups", "offline_access"}, SigningAlgorithm: "ES256",
	}
	if !c.OIDC.Enabled() || !reflect.DeepEqual(c.OIDC.Clients[0], want) {
		t.Errorf("client defaults:\n got %+v\nwant %+v", c.OIDC.Clients, want)
	}

	dir := t.TempDir()
	writeFile(t, dir, "secret", oidcSecret+"\n")
	writeFile(t, dir, "jwks.json", testJWKS)
	tests := []struct {
		name  string
		src   string
		check func(c *OIDCClient) bool
	}{
		{"auth_method with secret_file", oidcClient("      secret_file: secret\n"), func(c *OIDCClient) bool { return c.AuthMethod == "client_secret_basic" }},
		{"auth_method with jwks_file", oidcClient("      jwks_file: jwks.json\n"), func(c *OIDCClient) bool {
			return c.AuthMethod == "private_key_jwt" && len(c.JWKS.Keys) == 1 && c.JWKS.Keys[0].KeyID == "k1" && c.JWKS.Keys[0].IsPublic()
		}},
		{"auth_method public", "oidc:\n  clients:\n    - id: cli\n      redirect_uris: ['http://127.0.0.1/cb']\n",
			func(c *OIDCClient) bool { return c.AuthMethod == "none" && c.Public() }},
		{"name", oidcClient("      name: The Wiki\n"), func(c *OIDCClient) bool { return c.Name == "The Wiki" }},
		{"number_matching off", oidcClient("      number_matching: false\n"), func(c *OIDCClient) bool { return !c.NumberMatching }},
		{"session_reuse off", oidcClient("      session_reuse: false\n"), func(c *OIDCClient) bool { return !c.SessionReuse && c.NumberMatching }},
		{"number_matching empty value", oidcClient("      number_matching:\n"), func(c *OIDCClient) bool { return c.NumberMatching }},
		{"first directory", "directories:\n  - {name: corp, type: local}\n  - {name: other, type: local}\n" + oidcClient(""),
			func(c *OIDCClient) bool { return c.Directory == "corp" }},
		{"signing_algorithm from oidc", "oidc:\n  signing_algorithm: EdDSA\n" + oidcClient("")[len("oidc:\n"):],
			func(c *OIDCClient) bool { return c.SigningAlgorithm == "EdDSA" }},
		{"signing_algorithm of the client", "oidc:\n  signing_algorithm: EdDSA\n" + oidcClient("      signing_algorithm: RS256\n")[len("oidc:\n"):],
			func(c *OIDCClient) bool { return c.SigningAlgorithm == "RS256" }},
		{"scopes without refresh tokens", "oidc:\n  refresh_token_lifetime: 0s\n" + oidcClient("")[len("oidc:\n"):],
			func(c *OIDCClient) bool {
				return slices.Equal(c.Scopes, []string{"openid", "profile", "email", "groups"})
			}},
		{"scopes", oidcClient("      scopes: [openid]\n"), func(c *OIDCClient) bool { return slices.Equal(c.Scopes, []string{"openid"}) }},
	}
	for _, tt := range tests {
		c, err := parseString(t, trial(tt.src), dir, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !tt.check(&c.OIDC.Clients[0]) {
			t.Errorf("%s: client %+v", tt.name, c.OIDC.Clients[0])
		}
	}
}

func TestOIDCAlgorithms(t *testing.T) {
	for _, tt := range []struct {
		o    OIDC
		want []string
	}{
		{OIDC{SigningAlgorithm: "ES256"}, []string{"ES256"}},
		{OIDC{SigningAlgorithm: "ES256", Clients: []OIDCClient{{SigningAlgorithm: "ES256"}}}, []string{"ES256"}},
		{OIDC{SigningAlgorithm: "RS256", Clients: []OIDCClient{{SigningAlgorithm: "EdDSA"}, {SigningAlgorithm: "RS256"}, {SigningAlgorithm: "ES256"},
			{SigningAlgorithm: "EdDSA"}}}, []string{"RS256", "EdDSA", "ES256"}},
		{OIDC{}, nil},
	} {
		if got := tt.o.Algorithms(); !slices.Equal(got, tt.want) {
			t.Errorf("Algorithms() = %q, want %q", got, tt.want)
		}
	}
	c := mustParse(t, trial("oidc:\n  signing_algorithm: RS256\n  clients:\n"+
		"    - {id: a, secret: "+oidcSecret+", redirect_uris: ['https://a.example.com/'], signing_algorithm: EdDSA}\n"+
		"    - {id: b, secret: "+oidcSecret+", redirect_uris: ['https://b.example.com/']}\n"))
	if got := c.OIDC.Algorithms(); !slices.Equal(got, []string{"RS256", "EdDSA"}) {
		t.Errorf("Algorithms() = %q", got)
	}
}

func TestOIDCIssuer(t *testing.T) {
	c := mustParse(t, "dev_mode: true\nhttp:\n  public:\n    base_url: https://mfa.example.com/bridge/\n    allow_plain_http: true\n")
	if got := c.OIDCIssuer(); got != "https://mfa.example.com/bridge/oidc" {
		t.Errorf("OIDCIssuer() = %q", got)
	}
}

func TestOIDCValidate(t *testing.T) {
	public := func(uris ...string) string {
		return "oidc:\n  clients:\n    - id: cli\n      redirect_uris: ['" + strings.Join(uris, "', '") + "']\n"
	}
	confidential := func(uris ...string) string {
		return oidcClient("      redirect_uris: ['" + strings.Join(uris, "', '") + "']\n")
	}
	tests := []struct {
		name string
		src  string // completed by trial
		want string // "" means valid
	}{
		{"empty section", "oidc:\n", ""},
		{"keys without clients", "oidc:\n  code_lifetime: 30s\n",
			"bridge.yaml:5: oidc.clients: no clients, which leaves the OpenID Provider off: add clients, or remove the other oidc keys"},
		{"empty clients", "oidc:\n  clients: []\n", "oidc.clients: no clients"},
		{"signing_algorithm", "oidc:\n  signing_algorithm: HS256\n" + oidcClient("")[len("oidc:\n"):],
			`bridge.yaml:6: oidc.signing_algorithm: unknown value "HS256" (use ES256, RS256, EdDSA)`},
		{"signing_algorithm RS256", "oidc:\n  signing_algorithm: RS256\n" + oidcClient("")[len("oidc:\n"):], ""},
		{"code_lifetime short", "oidc:\n  code_lifetime: 9s\n" + oidcClient("")[len("oidc:\n"):], "bridge.yaml:6: oidc.code_lifetime: must be from 10s to 10m, got 9s"},
		{"code_lifetime long", "oidc:\n  code_lifetime: 11m\n" + oidcClient("")[len("oidc:\n"):], "oidc.code_lifetime: must be from 10s to 10m, got 11m0s"},
		{"access_token_lifetime", "oidc:\n  access_token_lifetime: 59s\n" + oidcClient("")[len("oidc:\n"):],
			"bridge.yaml:6: oidc.access_token_lifetime: must be from 1m to 24h, got 59s"},
		{"id_token_lifetime", "oidc:\n  id_token_lifetime: 24h1s\n" + oidcClient("")[len("oidc:\n"):],
			"bridge.yaml:6: oidc.id_token_lifetime: must be from 1m to 24h, got 24h0m1s"},
		{"refresh_token_lifetime 0", "oidc:\n  refresh_token_lifetime: 0s\n" + oidcClient("")[len("oidc:\n"):], ""},
		{"refresh_token_lifetime 90 days", "oidc:\n  refresh_token_lifetime: 2160h\n" + oidcClient("")[len("oidc:\n"):], ""},
		{"refresh_token_lifetime long", "oidc:\n  refresh_token_lifetime: 2161h\n" + oidcClient("")[len("oidc:\n"):],
			"bridge.yaml:6: oidc.refresh_token_lifetime: must be from 0 (no refresh tokens) to 2160h (90 days), got 2161h0m0s"},
		{"refresh_token_lifetime negative", "oidc:\n  refresh_token_lifetime: -1h\n" + oidcClient("")[len("oidc:\n"):],
			"oidc.refresh_token_lifetime: must be from 0 (no refresh tokens) to 2160h (90 days), got -1h0m0s"},
		{"refresh_token_lifetime below access", "oidc:\n  refresh_token_lifetime: 9m\n" + oidcClient("")[len("oidc:\n"):],
			"bridge.yaml:6: oidc.refresh_token_lifetime: 9m0s is shorter than access_token_lifetime (10m0s)"},

		{"id required", "oidc:\n  clients:\n    - redirect_uris: ['http://127.0.0.1/cb']\n",
			"bridge.yaml:7: oidc.clients[0].id: required: the client_id the application is set up with"},
		{"id form", "oidc:\n  clients:\n    - id: wiki/app\n      redirect_uris: ['http://127.0.0.1/cb']\n",
			`bridge.yaml:7: oidc.clients[0].id: "wiki/app": use letters, digits, ., - and _, starting with a letter or digit, at most 128 characters`},
		{"id leading dot", "oidc:\n  clients:\n    - id: .wiki\n      redirect_uris: ['http://127.0.0.1/cb']\n", `oidc.clients[0].id: ".wiki": use letters`},
		{"id 128", "oidc:\n  clients:\n    - id: " + strings.Repeat("A", 128) + "\n      redirect_uris: ['http://127.0.0.1/cb']\n", ""},
		{"id 129", "oidc:\n  clients:\n    - id: " + strings.Repeat("A", 129) + "\n      redirect_uris: ['http://127.0.0.1/cb']\n", "oidc.clients[0].id: "},
		{"id mixed", "oidc:\n  clients:\n    - id: My.App_2-x\n      redirect_uris: ['http://127.0.0.1/cb']\n", ""},
		{"id duplicate", oidcClient("") + "    - id: wiki\n      redirect_uris: ['http://127.0.0.1/cb']\n",
			`bridge.yaml:10: oidc.clients[1].id: duplicate client id "wiki" (also oidc.clients[0])`},
		{"name empty", oidcClient("      name: ''\n"), "bridge.yaml:8: oidc.clients[0].name: must not be empty (leave it out for the id)"},
		{"name blank", oidcClient("      name: '  '\n"), `bridge.yaml:8: oidc.clients[0].name: "  ": must not be blank`},
		{"name control", oidcClient("      name: \"Wiki\\nApprove\"\n"), `oidc.clients[0].name: "Wiki\nApprove": must not contain control characters`},
		{"name long", oidcClient("      name: " + strings.Repeat("x", 129) + "\n"), "oidc.clients[0].name: \"xxxx"},
		{"name unicode", oidcClient("      name: Café Wiki ✓\n"), ""},

		{"auth_method", oidcClient("      auth_method: tls_client_auth\n"),
			`bridge.yaml:8: oidc.clients[0].auth_method: unknown value "tls_client_auth" (use client_secret_basic, client_secret_post, private_key_jwt, none)`},
		{"client_secret_post", oidcClient("      auth_method: client_secret_post\n      secret: " + oidcSecret + "\n"), ""},
		{"client_secret_basic without secret", oidcClient("      auth_method: client_secret_basic\n"),
			"bridge.yaml:7: oidc.clients[0].secret_file: required with auth_method client_secret_basic: the client_secret the application sends, at least 16 bytes"},
		{"client_secret_post without secret", oidcClient("      auth_method: client_secret_post\n"),
			"oidc.clients[0].secret_file: required with auth_method client_secret_post"},
		{"secret short", oidcClient("      secret: 0123456789abcde\n"),
			"bridge.yaml:8: oidc.clients[0].secret: the client secret must be at least 16 bytes: make one with `openssl rand -hex 32`"},
		{"secret with none", oidcClient("      auth_method: none\n      secret: " + oidcSecret + "\n"),
			"bridge.yaml:9: oidc.clients[0].secret: only with auth_method client_secret_basic or client_secret_post: a public client (auth_method none) has no secret"},
		{"secret with private_key_jwt", oidcClient("      auth_method: private_key_jwt\n      jwks_file: jwks.json\n      secret: " + oidcSecret + "\n"),
			"bridge.yaml:10: oidc.clients[0].secret: only with auth_method client_secret_basic or client_secret_post: a private_key_jwt client proves itself with its own key"},
		{"private_key_jwt without jwks_file", oidcClient("      auth_method: private_key_jwt\n"),
			"bridge.yaml:7: oidc.clients[0].jwks_file: required with auth_method private_key_jwt: a JSON Web Key Set file with the client's public keys"},
		{"private_key_jwt", oidcClient("      auth_method: private_key_jwt\n      jwks_file: jwks.json\n"), ""},
		{"jwks_file with a secret", oidcClient("      jwks_file: jwks.json\n      secret: " + oidcSecret + "\n"),
			"bridge.yaml:8: oidc.clients[0].jwks_file: only with auth_method private_key_jwt (this client's is client_secret_basic)"},
		{"jwks_file with none", oidcClient("      auth_method: none\n      jwks_file: jwks.json\n"),
			"bridge.yaml:9: oidc.clients[0].jwks_file: only with auth_method private_key_jwt (this client's is none)"},
		{"jwks_file empty", oidcClient("      auth_method: private_key_jwt\n      jwks_file:\n"), "bridge.yaml:9: oidc.clients[0].jwks_file: is empty"},

		{"redirect_uris required", "oidc:\n  clients:\n    - id: wiki\n      secret: " + oidcSecret + "\n",
			"bridge.yaml:7: oidc.clients[0].redirect_uris: required: at least one URI the application takes its logins back at"},
		{"redirect_uris empty list", oidcClient("      redirect_uris: []\n"), "bridge.yaml:8: oidc.clients[0].redirect_uris: required"},
		{"redirect_uri https", confidential("https://wiki.example.com:8443/redirect_uri?x=1", "https://wiki.example.com/"), ""},
		{"redirect_uri wildcard", confidential("https://*.example.com/cb"),
			`bridge.yaml:8: oidc.clients[0].redirect_uris[0]: "https://*.example.com/cb": wildcards are not supported: redirect URIs are compared exactly, so list each one`},
		{"redirect_uri wildcard path", confidential("https://wiki.example.com/*"), "wildcards are not supported"},
		{"redirect_uri fragment", confidential("https://wiki.example.com/cb#x"), `"https://wiki.example.com/cb#x": must not have a fragment (#...)`},
		{"redirect_uri empty fragment", confidential("https://wiki.example.com/cb#"), "must not have a fragment"},
		{"redirect_uri userinfo", confidential("https://me@wiki.example.com/cb"), `"https://me@wiki.example.com/cb": must not have credentials (user@)`},
		{"redirect_uri space", confidential("https://wiki.example.com/a b"), "must not contain spaces or control characters"},
		{"redirect_uri relative", confidential("/cb"), `"/cb": must be an absolute URI such as https://app.example.com/callback`},
		{"redirect_uri no host", confidential("https:/cb"), `"https:/cb": must be an absolute URI such as https://app.example.com/callback`},
		{"redirect_uri http", confidential("http://wiki.example.com/cb"),
			`"http://wiki.example.com/cb": http:// is only allowed to a loopback host (127.0.0.1, [::1] or localhost); use https://`},
		{"redirect_uri http private address", confidential("http://10.0.0.1/cb"), "http:// is only allowed to a loopback host"},
		{"redirect_uri http loopback", confidential("http://127.0.0.1:8400/cb", "http://127.9.9.9/cb", "http://[::1]/cb", "http://localhost:3000/cb"), ""},
		{"redirect_uri http loopback public", public("http://127.0.0.1/cb"), ""},
		{"redirect_uri private-use confidential", confidential("com.example.app:/cb"),
			`"com.example.app:/cb": a native app's private-use scheme (com.example.app:) is only for public clients (auth_method: none)`},
		{"redirect_uri private-use public", public("com.example.app:/cb", "com.example.app://cb", "com.example.app:cb"), ""},
		{"redirect_uri private-use without a domain", public("myapp:/cb"),
			`"myapp:/cb": myapp: is not https://, nor a private-use scheme named after a domain the app controls, such as com.example.app:/callback (RFC 8252)`},
		{"redirect_uri javascript", public("javascript:alert(1)"), "javascript: is not https://"},
		{"redirect_uri data", public("data:text/html,x"), "data: is not https://"},
		{"redirect_uri private-use empty", public("com.example.app:"), `"com.example.app:": needs a path after the scheme, such as com.example.app:/callback`},
		{"redirect_uri empty", confidential(""), "bridge.yaml:8: oidc.clients[0].redirect_uris[0]: must not be empty"},
		{"redirect_uri duplicate", confidential("https://a.example.com/", "https://a.example.com/"),
			`oidc.clients[0].redirect_uris[1]: "https://a.example.com/" is also oidc.clients[0].redirect_uris[0]`},
		{"post_logout_redirect_uris", oidcClient("      post_logout_redirect_uris: ['https://wiki.example.com/', 'http://localhost/bye']\n"), ""},
		{"post_logout_redirect_uri http", oidcClient("      post_logout_redirect_uris: ['http://wiki.example.com/']\n"),
			`bridge.yaml:8: oidc.clients[0].post_logout_redirect_uris[0]: "http://wiki.example.com/": http:// is only allowed to a loopback host`},
		{"post_logout_redirect_uri wildcard", oidcClient("      post_logout_redirect_uris: ['https://*.example.com/']\n"),
			"oidc.clients[0].post_logout_redirect_uris[0]: \"https://*.example.com/\": wildcards are not supported"},
		{"post_logout_redirect_uri private-use confidential", oidcClient("      post_logout_redirect_uris: ['com.example.app:/bye']\n"),
			"is only for public clients"},

		{"directory", "directories:\n  - {name: corp, type: local}\n" + oidcClient("      directory: corp\n"), ""},
		{"directory passwordless", "directories:\n  - {name: local, type: local}\n  - {name: push, type: none}\n" + oidcClient("      directory: push\n"), ""},
		{"directory unknown", oidcClient("      directory: corp\n"), `bridge.yaml:8: oidc.clients[0].directory: no directory is named "corp"`},
		{"directory empty", oidcClient("      directory: ''\n"), "oidc.clients[0].directory: must not be empty (leave it out for the first directory)"},

		{"captcha without web.captcha", oidcClient("      captcha: true\n"),
			"bridge.yaml:8: oidc.clients[0].captcha: true, but web.captcha.provider is empty: set web.captcha first"},
		{"captcha with web.captcha", captchaSection("turnstile", "    secret: ${S}\n") + oidcClient("      captcha: true\n"), ""},
		{"captcha false", oidcClient("      captcha: false\n"), ""},

		{"scopes unknown", oidcClient("      scopes: [openid, address]\n"),
			`bridge.yaml:8: oidc.clients[0].scopes[1]: unknown scope "address" (use openid, profile, email, groups, offline_access)`},
		{"scopes duplicate", oidcClient("      scopes: [openid, email, email]\n"), `oidc.clients[0].scopes[2]: "email" is also oidc.clients[0].scopes[1]`},
		{"scopes without openid", oidcClient("      scopes: [profile]\n"),
			"bridge.yaml:8: oidc.clients[0].scopes: must contain openid, which every OpenID Connect login asks for"},
		{"scopes empty", oidcClient("      scopes: []\n"), "oidc.clients[0].scopes: must contain openid"},
		{"scopes all", oidcClient("      scopes: [openid, profile, email, groups, offline_access]\n"), ""},
		{"offline_access without refresh tokens", "oidc:\n  refresh_token_lifetime: 0s\n" + oidcClient("      scopes: [openid, offline_access]\n")[len("oidc:\n"):],
			"bridge.yaml:9: oidc.clients[0].scopes[1]: offline_access asks for refresh tokens, which oidc.refresh_token_lifetime 0 turns off"},
		{"client signing_algorithm", oidcClient("      signing_algorithm: none\n"),
			`bridge.yaml:8: oidc.clients[0].signing_algorithm: unknown value "none" (use ES256, RS256, EdDSA)`},
		{"client signing_algorithm EdDSA", oidcClient("      signing_algorithm: EdDSA\n"), ""},
	}
	dir := t.TempDir()
	writeFile(t, dir, "jwks.json", testJWKS)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(tt.src), dir, map[string]string{"S": captchaSecret})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v\nconfig:\n%s", err, trial(tt.src))
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("Validate after Parse: %v", err)
				}
				return
			}
			wantErr(t, err, tt.want)
			if err != nil && strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("want exactly one problem, got:\n%v", err)
			}
		})
	}
}

func TestOIDCAllProblemsAtOnce(t *testing.T) {
	src := trial("oidc:\n  code_lifetime: 1s\n  clients:\n" +
		"    - id: a/b\n      auth_method: none\n      secret: x\n      redirect_uris: ['http://example.com/', 'x:y']\n      scopes: [email]\n" +
		"      directory: nope\n      captcha: true\n")
	_, err := parseString(t, src, "", nil)
	wantErr(t, err,
		"bridge.yaml:6: oidc.code_lifetime:",
		"bridge.yaml:8: oidc.clients[0].id:",
		"bridge.yaml:10: oidc.clients[0].secret:",
		"bridge.yaml:11: oidc.clients[0].redirect_uris[0]:",
		"bridge.yaml:11: oidc.clients[0].redirect_uris[1]:",
		"bridge.yaml:12: oidc.clients[0].scopes:",
		"bridge.yaml:13: oidc.clients[0].directory:",
		"bridge.yaml:14: oidc.clients[0].captcha:")
}

// jwk marshals a key as a JWK with kid.
func jwk(t *testing.T, key any, kid string) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOIDCJWKS checks jwks_file: the keys are parsed into JWKS, and a
// private or symmetric key is refused without being shown.
func TestOIDCJWKS(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := func(keys ...string) string { return `{"keys": [` + strings.Join(keys, ", ") + `]}` }
	secretOf := func(jwk string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(jwk), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"d", "k"} {
			if s, ok := m[k].(string); ok {
				return s
			}
		}
		t.Fatalf("no private member in %s", jwk)
		return ""
	}
	ecPriv, rsaPriv, edPrivJWK, hs := jwk(t, ec, "ec"), jwk(t, rk, "rsa"), jwk(t, edPriv, ""), jwk(t, []byte("0123456789abcdef0123456789abcdef"), "hs")
	tests := []struct {
		name, jwks string
		want       string // an error; "" means success
		private    string // a private key of jwks, which the error must not show
		kids       []string
	}{
		{name: "public keys", jwks: set(jwk(t, &ec.PublicKey, "ec"), jwk(t, &rk.PublicKey, "rsa"), jwk(t, edPub, "ed")),
			kids: []string{"ec", "rsa", "ed"}},
		{name: "EC private key", jwks: set(jwk(t, &ec.PublicKey, "pub"), ecPriv), private: ecPriv,
			want: `keys[1] (kid "ec") is a private key: the file must hold the client's public keys only`},
		{name: "RSA private key", jwks: set(rsaPriv), private: rsaPriv, want: `keys[0] (kid "rsa") is a private key`},
		{name: "Ed25519 private key", jwks: set(edPrivJWK), private: edPrivJWK, want: `keys[0] is a private key`},
		{name: "symmetric key", jwks: set(hs), private: hs, want: `keys[0] (kid "hs") is a symmetric key`},
		{name: "no kid", jwks: set(jwk(t, &ec.PublicKey, "")), want: "keys[0] has no kid"},
		{name: "duplicate kid", jwks: set(jwk(t, &ec.PublicKey, "a"), jwk(t, edPub, "a")), want: `keys[1] (kid "a") has the kid of keys[0]: give every key its own`},
		{name: "not an object", jwks: set(`"x"`), want: "keys[0] is not a JSON object"},
		{name: "not a set", jwks: `[1, 2]`, want: `not a JSON Web Key Set: want {"keys": [...]} with the client's public keys`},
		{name: "a single key", jwks: jwk(t, &ec.PublicKey, "ec"), want: "holds a single key"},
		{name: "no keys", jwks: `{"keys": null}`, want: "holds no keys"},
		{name: "missing kty", jwks: set(`{"kid": "x", "x": "AA"}`), want: `keys[0] (kid "x"): missing json web key type`},
		{name: "bad coordinates", jwks: set(`{"kty": "EC", "crv": "P-256", "kid": "x", "x": "AA", "y": "AA"}`), want: `keys[0] (kid "x"): `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := writeFile(t, dir, "jwks.json", tt.jwks)
			c, err := parseString(t, trial(oidcClient("      jwks_file: jwks.json\n")), dir, nil)
			if tt.want != "" {
				wantErr(t, err, fmt.Sprintf(`bridge.yaml:8: oidc.clients[0].jwks_file: %q: %s`, file, tt.want))
				if tt.private != "" && err != nil {
					if piece := leaked(err.Error(), secretOf(tt.private)); piece != "" {
						t.Errorf("error shows %q of the private key: %v", piece, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			k := c.OIDC.Clients[0].JWKS.Keys
			var kids []string
			for _, key := range k {
				if !key.IsPublic() {
					t.Errorf("key %s is not public", key.KeyID)
				}
				kids = append(kids, key.KeyID)
			}
			if !slices.Equal(kids, tt.kids) || c.OIDC.Clients[0].AuthMethod != "private_key_jwt" {
				t.Errorf("kids %q, client %+v", kids, c.OIDC.Clients[0])
			}
			if len(c.Warnings) != 1 {
				t.Errorf("warnings %q", c.Warnings)
			}
		})
	}

	// A 1024-bit RSA key is too small.
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "jwks.json", set(jwk(t, &small.PublicKey, "old")))
	_, err = parseString(t, trial(oidcClient("      jwks_file: jwks.json\n")), dir, nil)
	wantErr(t, err, `keys[0] (kid "old"): a 1024-bit RSA key is too small (at least 2048)`)

	// A config built in code may set JWKS instead of jwks_file.
	c := mustParse(t, trial("oidc:\n  clients:\n    - id: cli\n      redirect_uris: ['http://127.0.0.1/cb']\n"))
	oc := &c.OIDC.Clients[0]
	oc.AuthMethod = "private_key_jwt"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "jwks_file: required with auth_method private_key_jwt") {
		t.Errorf("Validate without keys: %v", err)
	}
	oc.JWKS = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ec.PublicKey, KeyID: "ec"}}}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with JWKS set in code: %v", err)
	}
}

func TestOIDCSecrets(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secret", "oidc-file-secret-0123456789\n")
	writeFile(t, dir, "short", "0123456789abcde\n")
	writeFile(t, dir, "empty", "")
	env := map[string]string{"OIDC": "oidc-env-secret-0123456789", "EMPTY": ""}
	tests := []struct {
		name, extra string
		want        string // an error; "" means success
		secret      string
	}{
		{name: "secret_file", extra: "      secret_file: secret\n", secret: "oidc-file-secret-0123456789"},
		{name: "secret from env", extra: "      secret: ${OIDC}\n", secret: "oidc-env-secret-0123456789"},
		{name: "secret_file with client_secret_post", extra: "      auth_method: client_secret_post\n      secret_file: secret\n",
			secret: "oidc-file-secret-0123456789"},
		{name: "secret and secret_file", extra: "      secret: ${OIDC}\n      secret_file: secret\n",
			want: "bridge.yaml:9: oidc.clients[0].secret_file: set either secret or secret_file, not both"},
		{name: "secret_file missing", extra: "      secret_file: nope\n",
			want: `bridge.yaml:8: oidc.clients[0].secret_file: cannot read "` + filepath.Join(dir, "nope") + `": no such file or directory`},
		{name: "secret_file empty", extra: "      secret_file: empty\n", want: `bridge.yaml:8: oidc.clients[0].secret_file: file "` + filepath.Join(dir, "empty") + `" is empty`},
		{name: "secret_file too short", extra: "      secret_file: short\n",
			want: "bridge.yaml:8: oidc.clients[0].secret_file: the client secret must be at least 16 bytes"},
		{name: "secret_file without a value", extra: "      secret_file:\n", want: "bridge.yaml:8: oidc.clients[0].secret_file: is empty"},
		{name: "secret empty variable", extra: "      secret: ${EMPTY}\n", want: "bridge.yaml:8: oidc.clients[0].secret: is empty"},
		{name: "secret_file with none", extra: "      auth_method: none\n      secret_file: secret\n",
			want: "bridge.yaml:9: oidc.clients[0].secret_file: only with auth_method client_secret_basic or client_secret_post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(oidcClient(tt.extra)), dir, env)
			if tt.want != "" {
				wantErr(t, err, tt.want)
				if err != nil && strings.Count(err.Error(), "\n") != 0 {
					t.Errorf("want exactly one problem, got:\n%v", err)
				}
				if err != nil && (strings.Contains(err.Error(), env["OIDC"]) || strings.Contains(err.Error(), "oidc-file-secret")) {
					t.Errorf("error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.OIDC.Clients[0].Secret; got != tt.secret {
				t.Errorf("secret %q, want %q", got, tt.secret)
			}
		})
	}
}

func TestOIDCWarnings(t *testing.T) {
	env := map[string]string{"S": oidcSecret}
	tests := []struct {
		name string
		src  string
		want string // substring of the one warning besides dev_mode; "" means none
	}{
		{"secret from the environment", oidcClient("      secret: ${S}\n"), ""},
		{"secret in the file", oidcClient(""),
			`bridge.yaml:8: oidc.clients[0].secret: client "wiki": the client secret is written in the config file; use secret_file or ${ENV}`},
		{"public client", "oidc:\n  clients:\n    - id: cli\n      redirect_uris: ['http://127.0.0.1:8400/cb', 'com.example.cli:/cb']\n", ""},
		{"http loopback redirect", oidcClient("      secret: ${S}\n      redirect_uris: ['http://localhost:8080/cb']\n"), ""},
		{"session_reuse off", oidcClient("      secret: ${S}\n      session_reuse: false\n"), ""},
		{"number_matching off", oidcClient("      secret: ${S}\n      number_matching: false\n"),
			`bridge.yaml:9: oidc.clients[0].number_matching: client "wiki": false: a user who approves every push lets in anyone who has the password (push fatigue)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(tt.src), "", env)
			if err != nil {
				t.Fatal(err)
			}
			var others []string
			for _, w := range c.Warnings {
				if !strings.Contains(w, "dev_mode") {
					others = append(others, w)
				}
			}
			switch {
			case tt.want == "" && len(others) != 0:
				t.Errorf("warnings: %q", others)
			case tt.want != "" && (len(others) != 1 || !strings.HasPrefix(others[0], tt.want)):
				t.Errorf("warnings %q, want one starting with %q", others, tt.want)
			}
		})
	}
}

// TestWebOIDCSecretFileMode warns about a CAPTCHA or client secret_file
// that other users can read.
func TestWebOIDCSecretFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	src := trial(captchaSection("turnstile", "    secret_file: captcha\n") + oidcClient("      secret_file: oidc\n"))
	for _, tt := range []struct {
		mode fs.FileMode
		warn bool
	}{{0o600, false}, {0o644, true}} {
		dir := t.TempDir()
		for name, content := range map[string]string{"captcha": captchaSecret + "\n", "oidc": oidcSecret + "\n"} {
			if err := os.Chmod(writeFile(t, dir, name, content), tt.mode); err != nil {
				t.Fatal(err)
			}
		}
		c, err := parseString(t, src, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{
			fmt.Sprintf("bridge.yaml:8: web.captcha.secret_file: %s is readable by other users (mode %04o); chmod 600 it", filepath.Join(dir, "captcha"), tt.mode),
			fmt.Sprintf("bridge.yaml:13: oidc.clients[0].secret_file: %s is readable by other users (mode %04o); chmod 600 it", filepath.Join(dir, "oidc"), tt.mode),
		} {
			if slices.Contains(c.Warnings, w) != tt.warn {
				t.Errorf("mode %04o: warned %v, want %v:\n%s\nwarnings: %q", tt.mode, !tt.warn, tt.warn, w, c.Warnings)
			}
		}
	}
}
