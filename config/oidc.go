package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/keys"
)

// OIDC is the OpenID Provider, for web applications that sign their users
// in with OpenID Connect (authorization code flow, PKCE). It is on when
// clients are configured. Its issuer is the public base_url with /oidc
// appended (see File.OIDCIssuer); discovery is at
// issuer/.well-known/openid-configuration.
type OIDC struct {
	// SigningAlgorithm is how ID tokens are signed unless a client says
	// otherwise: ES256 (default), RS256 (keys.rsa_bits) or EdDSA.
	SigningAlgorithm string `yaml:"signing_algorithm"`
	// CodeLifetime is how long an authorization code can be redeemed: from
	// 10s to 10m. Default 1m.
	CodeLifetime time.Duration `yaml:"code_lifetime"`
	// AccessTokenLifetime is how long an access token is valid: from 1m to
	// 24h. Default 10m.
	AccessTokenLifetime time.Duration `yaml:"access_token_lifetime"`
	// IDTokenLifetime is how long an ID token is valid: from 1m to 24h.
	// Default 10m.
	IDTokenLifetime time.Duration `yaml:"id_token_lifetime"`
	// RefreshTokenLifetime bounds refresh tokens (scope offline_access):
	// each use returns a new refresh token, and the chain ends this long
	// after the login. From 0 (no refresh tokens, and offline_access is
	// then not a scope any client may have) to 2160h (90 days), and not
	// shorter than access_token_lifetime. Default 8h.
	RefreshTokenLifetime time.Duration `yaml:"refresh_token_lifetime"`
	// Clients are the applications (relying parties) allowed to sign users
	// in.
	Clients []OIDCClient `yaml:"clients"`
}

// OIDCClient is one application (relying party).
type OIDCClient struct {
	// ID is the client_id, required and unique: letters, digits, ., - and
	// _, starting with a letter or digit, at most 128 characters. It is
	// the application id of the logins (push requests, audit).
	ID string `yaml:"id"`
	// Name is shown on the sign-in page and on the phone: at most 128
	// bytes, without control characters. Default the id.
	Name string `yaml:"name"`
	// Secret is the client secret of client_secret_basic and
	// client_secret_post, at least 16 bytes (make one with
	// `openssl rand -hex 32`). Write ${ENV} or use secret_file, not both.
	// After Load Secret holds the secret read from secret_file too (one
	// trailing newline trimmed).
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// AuthMethod is how the client authenticates at the token endpoint:
	// client_secret_basic (the default with a secret), client_secret_post
	// (both need a secret), private_key_jwt (a JWT signed with a key of
	// jwks_file, the default with jwks_file; no secret) or none (a public
	// client such as a native or single-page app, with PKCE only; the
	// default with neither secret nor jwks_file).
	AuthMethod string `yaml:"auth_method"`
	// JWKSFile is a JSON Web Key Set ({"keys": [...]}) with the client's
	// public keys, for private_key_jwt and only then. Every key needs a
	// kid; private and symmetric keys are refused; RSA keys need 2048 bits
	// or more. After Load JWKS holds the parsed set.
	JWKSFile string             `yaml:"jwks_file"`
	JWKS     jose.JSONWebKeySet `yaml:"-"`
	// RedirectURIs are where logins are sent back to, compared exactly (no
	// wildcards); at least one is required. Each is an absolute URI
	// without a fragment or credentials: https://, http:// only to a
	// loopback host (127.0.0.0/8, [::1], localhost: native apps, tests),
	// or, for public clients (auth_method none) only, a native app's
	// private-use scheme named after a domain it controls, such as
	// com.example.app:/callback (RFC 8252).
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logouts may return to;
	// the same rules as redirect_uris. Optional.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// Directory is the first-factor directory: the name of one in
	// directories. Default the first directory of the file ("local" when
	// there are none).
	Directory string `yaml:"directory"`
	// NumberMatching makes the user type the number shown on the sign-in
	// page on the phone. Default true; false is logged as a warning.
	NumberMatching bool `yaml:"number_matching"`
	// DeviceKeys is which enrolled devices may approve sign-ins here: any
	// (default), hardware (not a software key: the web app without a
	// passkey, a terminal authenticator) or attested (only passkeys whose
	// attestation chained to a trusted root at enrollment, see
	// app.attestation_roots; the web app then asks for attestation).
	// Hardware and attested also refuse one-time codes, and browser
	// sessions that a qualifying device did not approve.
	DeviceKeys string `yaml:"device_keys"`
	// SessionReuse lets a browser session (web.session_lifetime) satisfy a
	// new login to this client without a push. Default true.
	SessionReuse bool `yaml:"session_reuse"`
	// Captcha asks for a CAPTCHA at every sign-in to this client; it
	// needs web.captcha. Default false.
	Captcha bool `yaml:"captcha"`
	// Scopes are the scopes the client may ask for: openid (required),
	// profile, email, groups and offline_access (refresh tokens). Default
	// all five (without offline_access when
	// oidc.refresh_token_lifetime is 0).
	Scopes []string `yaml:"scopes"`
	// SigningAlgorithm is how this client's ID tokens are signed: ES256,
	// RS256 or EdDSA. Default oidc.signing_algorithm.
	SigningAlgorithm string `yaml:"signing_algorithm"`
}

// Enabled reports whether the OpenID Provider is on: when clients are
// configured.
func (o OIDC) Enabled() bool { return len(o.Clients) > 0 }

// Algorithms returns the distinct ID token signing algorithms in use,
// signing_algorithm first, then those of the clients in order, for the key
// manager.
func (o OIDC) Algorithms() []string {
	var algs []string
	add := func(a string) {
		if a != "" && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	add(o.SigningAlgorithm)
	for _, c := range o.Clients {
		add(c.SigningAlgorithm)
	}
	return algs
}

// Public reports whether the client is a public client (auth_method none),
// which proves nothing at the token endpoint but PKCE.
func (c OIDCClient) Public() bool { return c.AuthMethod == oidcAuthNone }

// OIDCIssuer is the OpenID Provider's issuer: the public base_url with
// /oidc appended.
func (f *File) OIDCIssuer() string { return f.HTTP.Public.BaseURL + "/oidc" }

// The values of auth_method.
const (
	oidcAuthBasic = "client_secret_basic"
	oidcAuthPost  = "client_secret_post"
	oidcAuthJWT   = "private_key_jwt"
	oidcAuthNone  = "none"
)

// oidcScopes are the scopes the provider knows, in the order of defaults
// and messages.
var oidcScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// signingAlgorithms are the values of signing_algorithm.
var signingAlgorithms = []string{keys.AlgES256, keys.AlgRS256, keys.AlgEdDSA}

// oidcClientID is the form of a client id.
var oidcClientID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// minOIDCSecret is the shortest client secret accepted, in bytes.
const minOIDCSecret = 16

// maxAppName bounds a client's display name, in bytes (the push engine
// takes up to 512).
const maxAppName = 128

// defaultScopes are the scopes of a client that leaves scopes out: all of
// them, without offline_access when there are no refresh tokens.
func defaultScopes(refresh time.Duration) []string {
	if refresh == 0 {
		return slices.DeleteFunc(slices.Clone(oidcScopes), func(s string) bool { return s == "offline_access" })
	}
	return slices.Clone(oidcScopes)
}

// defaultAuthMethod is a client's auth_method when it is left out.
func defaultAuthMethod(secret, jwks bool) string {
	switch {
	case secret:
		return oidcAuthBasic
	case jwks:
		return oidcAuthJWT
	}
	return oidcAuthNone
}

// oidc checks the oidc section.
func (v *validator) oidc() {
	o := &v.c.OIDC
	if len(o.Clients) == 0 && v.c.hasUnder("oidc") {
		v.errorf("oidc.clients", "no clients, which leaves the OpenID Provider off: add clients, or remove the other oidc keys")
	}
	v.oneOf("oidc.signing_algorithm", o.SigningAlgorithm, signingAlgorithms...)
	v.durationIn("oidc.code_lifetime", o.CodeLifetime, 10*time.Second, 10*time.Minute)
	v.durationIn("oidc.access_token_lifetime", o.AccessTokenLifetime, time.Minute, 24*time.Hour)
	v.durationIn("oidc.id_token_lifetime", o.IDTokenLifetime, time.Minute, 24*time.Hour)
	const rp = "oidc.refresh_token_lifetime"
	if r := o.RefreshTokenLifetime; r < 0 || r > 2160*time.Hour {
		v.errorf(rp, "must be from 0 (no refresh tokens) to 2160h (90 days), got %s", v.c.plain(rp, r))
	} else if r > 0 && r < o.AccessTokenLifetime {
		v.errorf(rp, "%s is shorter than access_token_lifetime (%s): a refresh could never outlast the first access token; "+
			"set 0 for no refresh tokens", v.c.plain(rp, r), v.c.plain("oidc.access_token_lifetime", o.AccessTokenLifetime))
	}
	ids := map[string]int{}
	for i := range o.Clients {
		v.oidcClient(i, &o.Clients[i], ids)
	}
}

// oidcClient checks client i; ids collects the ids of the clients before
// it, for duplicates.
func (v *validator) oidcClient(i int, c *OIDCClient, ids map[string]int) {
	p := fmt.Sprintf("oidc.clients[%d]", i)
	v.deviceKeys(p+".device_keys", c.DeviceKeys)
	switch ip := p + ".id"; {
	case c.ID == "":
		v.errorf(ip, "required: the client_id the application is set up with, such as wiki")
	case !oidcClientID.MatchString(c.ID):
		v.errorf(ip, "%s: use letters, digits, ., - and _, starting with a letter or digit, at most 128 characters", v.c.show(ip, c.ID))
	default:
		if j, dup := ids[c.ID]; dup {
			v.errorf(ip, "duplicate client id %s (also oidc.clients[%d])", v.c.showFile(ip, c.ID), j)
		} else {
			ids[c.ID] = i
		}
	}

	// A name left out is the id, checked above.
	if np := p + ".name"; c.Name == "" {
		if v.c.has(np) {
			v.errorf(np, "must not be empty (leave it out for the id)")
		}
	} else if err := checkAppName(c.Name); err != nil && (v.c.has(np) || c.Name != c.ID) {
		v.errorf(np, "%s: %v", v.c.show(np, c.Name), err)
	}

	v.oidcAuth(p, c)

	public := c.AuthMethod == oidcAuthNone
	if len(c.RedirectURIs) == 0 {
		v.errorf(p+".redirect_uris", "required: at least one URI the application takes its logins back at, "+
			"such as https://wiki.example.com/redirect_uri")
	}
	v.redirectURIs(p+".redirect_uris", c.RedirectURIs, public)
	v.redirectURIs(p+".post_logout_redirect_uris", c.PostLogoutRedirectURIs, public)

	dp := p + ".directory"
	if c.Directory == "" {
		if v.c.has(dp) {
			v.errorf(dp, "must not be empty (leave it out for the first directory)")
		}
	} else if !v.hasDirectory(c.Directory) {
		v.errorf(dp, "no directory is named %s", v.c.show(dp, c.Directory))
	}

	if c.Captcha && !v.c.Web.Captcha.Enabled() {
		v.errorf(p+".captcha", "true, but web.captcha.provider is empty: set web.captcha first")
	}

	sp := p + ".scopes"
	openid := false
	seen := map[string]int{}
	for j, s := range c.Scopes {
		jp := fmt.Sprintf("%s[%d]", sp, j)
		switch k, dup := seen[s]; {
		case !slices.Contains(oidcScopes, s):
			v.errorf(jp, "unknown scope %s (use %s)", v.c.show(jp, s), strings.Join(oidcScopes, ", "))
		case dup:
			v.errorf(jp, "%s is also %s[%d]", v.c.show(jp, s), sp, k)
		case s == "offline_access" && v.c.OIDC.RefreshTokenLifetime == 0:
			v.errorf(jp, "offline_access asks for refresh tokens, which oidc.refresh_token_lifetime 0 turns off: remove it, or set refresh_token_lifetime")
		}
		seen[s] = j
		openid = openid || s == "openid"
	}
	if !openid {
		v.errorf(sp, "must contain openid, which every OpenID Connect login asks for")
	}
	// One left out is oidc.signing_algorithm, checked already.
	if ap := p + ".signing_algorithm"; v.c.has(ap) || c.SigningAlgorithm != v.c.OIDC.SigningAlgorithm {
		v.oneOf(ap, c.SigningAlgorithm, signingAlgorithms...)
	}
}

// oidcAuth checks a client's auth_method against its secret and jwks_file.
// An unreadable or empty secret_file or jwks_file, or both secret keys set,
// was reported when it was read.
func (v *validator) oidcAuth(p string, c *OIDCClient) {
	mp := p + ".auth_method"
	v.oneOf(mp, c.AuthMethod, oidcAuthBasic, oidcAuthPost, oidcAuthJWT, oidcAuthNone)
	sk, fk, jk := p+".secret", p+".secret_file", p+".jwks_file"
	secretKey := sk
	if v.c.has(fk) {
		secretKey = fk
	}
	// A secret key written without a value, or from an empty variable,
	// counts for "required" but not for "only with" (it was reported).
	secret := c.Secret != "" || c.SecretFile != ""
	hasSecret := secret || v.c.has(sk) || v.c.has(fk)
	hasJWKS := c.JWKSFile != "" || len(c.JWKS.Keys) > 0
	method := c.AuthMethod // one of the known values where it is shown
	switch c.AuthMethod {
	case oidcAuthBasic, oidcAuthPost:
		switch {
		case c.Secret != "":
			if len(c.Secret) < minOIDCSecret && !(v.c.has(sk) && v.c.has(fk)) {
				v.errorf(secretKey, "the client secret must be at least %d bytes: make one with `openssl rand -hex 32` and give it to the application too",
					minOIDCSecret)
			}
		case hasSecret:
		default:
			v.errorf(fk, "required with auth_method %s: the client_secret the application sends, at least %d bytes "+
				"(make one with `openssl rand -hex 32`): set secret_file to a file holding it, or secret: ${ENV}", method, minOIDCSecret)
		}
		if hasJWKS {
			v.errorf(jk, "only with auth_method private_key_jwt (this client's is %s)", method)
		}
	case oidcAuthJWT:
		if secret {
			v.errorf(secretKey, "only with auth_method client_secret_basic or client_secret_post: "+
				"a private_key_jwt client proves itself with its own key (remove the secret, or change auth_method)")
		}
		if !hasJWKS && !v.c.has(jk) {
			v.errorf(jk, "required with auth_method private_key_jwt: a JSON Web Key Set file with the client's public keys")
		}
	case oidcAuthNone:
		if secret {
			v.errorf(secretKey, "only with auth_method client_secret_basic or client_secret_post: "+
				"a public client (auth_method none) has no secret (remove the secret, or change auth_method)")
		}
		if hasJWKS {
			v.errorf(jk, "only with auth_method private_key_jwt (this client's is none)")
		}
	}
}

// redirectURIs checks a list of redirect_uris or post_logout_redirect_uris.
func (v *validator) redirectURIs(path string, uris []string, public bool) {
	seen := map[string]int{}
	for j, u := range uris {
		jp := fmt.Sprintf("%s[%d]", path, j)
		if u == "" {
			v.errorf(jp, "must not be empty")
			continue
		}
		if err := checkRedirectURI(u, public); err != nil {
			v.errorf(jp, "%s: %v", v.c.show(jp, u), err)
			continue
		}
		if k, dup := seen[u]; dup {
			v.errorf(jp, "%s is also %s[%d]", v.c.show(jp, u), path, k)
			continue
		}
		seen[u] = j
	}
}

// checkRedirectURI checks one redirect URI; public is whether the client
// is public (auth_method none), which alone may use a private-use scheme.
// Its errors do not quote the URI: the caller does.
func checkRedirectURI(s string, public bool) error {
	switch {
	case strings.Contains(s, "*"):
		return errors.New("wildcards are not supported: redirect URIs are compared exactly, so list each one")
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || unicode.IsControl(r) }):
		return errors.New("must not contain spaces or control characters")
	case strings.Contains(s, "#"):
		return errors.New("must not have a fragment (#...)")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return errors.New("must be an absolute URI such as https://app.example.com/callback")
	}
	if u.User != nil {
		return errors.New("must not have credentials (user@)")
	}
	switch u.Scheme {
	case "https", "http":
		if u.Host == "" || u.Opaque != "" {
			return fmt.Errorf("must be an absolute URI such as %s://app.example.com/callback", u.Scheme)
		}
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			return errors.New("http:// is only allowed to a loopback host (127.0.0.1, [::1] or localhost); use https://")
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("%s: is not https://, nor a private-use scheme named after a domain the app controls, such as com.example.app:/callback (RFC 8252)",
				u.Scheme)
		}
		if !public {
			return fmt.Errorf("a native app's private-use scheme (%s:) is only for public clients (auth_method: none)", u.Scheme)
		}
		if u.Host == "" && u.Opaque == "" && u.Path == "" {
			return fmt.Errorf("needs a path after the scheme, such as %s:/callback", u.Scheme)
		}
	}
	return nil
}

// checkAppName checks a client's display name.
func checkAppName(s string) error {
	switch {
	case len(s) > maxAppName:
		return fmt.Errorf("is longer than %d bytes", maxAppName)
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case strings.ContainsFunc(s, unicode.IsControl):
		return errors.New("must not contain control characters")
	case strings.TrimSpace(s) == "":
		return errors.New("must not be blank")
	}
	return nil
}

// jwks reads and parses a client's jwks_file into JWKS (path is the
// jwks_file key).
func (r *resolver) jwks(path string, c *OIDCClient) {
	rc := r.c
	if c.JWKSFile == "" {
		if rc.has(path) {
			r.errs = append(r.errs, rc.newError(path, "is empty"))
		}
		return
	}
	shown := rc.showFile(path, c.JWKSFile)
	b, err := r.read(c.JWKSFile)
	if err != nil {
		r.errs = append(r.errs, rc.newError(path, "cannot read %s: %v", shown, fileError(err)))
		return
	}
	set, errs := parseJWKS(b)
	for _, e := range errs {
		r.errs = append(r.errs, rc.newError(path, "%s: %v", shown, e))
	}
	if len(errs) == 0 {
		c.JWKS = set
	}
}

// privateMembers are the JWK members of private and symmetric keys (RFC
// 7518 section 6, RFC 8037).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// parseJWKS parses a client's JSON Web Key Set: at least one key, each a
// public RSA (2048 bits or more), EC or Ed25519 key with a kid of its own.
// It reports every problem; a private key is refused before it is parsed,
// and no message quotes key material.
func parseJWKS(b []byte) (jose.JSONWebKeySet, []error) {
	const want = `want {"keys": [...]} with the client's public keys`
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
		Kty  json.RawMessage   `json:"kty"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return jose.JSONWebKeySet{}, []error{fmt.Errorf("not a JSON Web Key Set: %s", want)}
	}
	if len(raw.Keys) == 0 {
		if raw.Kty != nil {
			return jose.JSONWebKeySet{}, []error{fmt.Errorf("holds a single key: %s", want)}
		}
		return jose.JSONWebKeySet{}, []error{fmt.Errorf("holds no keys: %s", want)}
	}
	var (
		set  jose.JSONWebKeySet
		errs []error
		kids = map[string]int{}
	)
	for i, rk := range raw.Keys {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(rk, &members); err != nil || members == nil {
			errs = append(errs, fmt.Errorf("keys[%d] is not a JSON object", i))
			continue
		}
		var kid string
		_ = json.Unmarshal(members["kid"], &kid)
		name := fmt.Sprintf("keys[%d]", i)
		if kid != "" {
			name += " (kid " + quote(kid) + ")"
		}
		if slices.ContainsFunc(privateMembers, func(m string) bool { _, ok := members[m]; return ok }) {
			what := "a private key"
			if _, sym := members["k"]; sym {
				what = "a symmetric key"
			}
			errs = append(errs, fmt.Errorf("%s is %s: the file must hold the client's public keys only (keep the private key with the client, and replace it now that it has been copied)", name, what))
			continue
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(rk); err != nil {
			if errors.Is(err, jose.ErrUnsupportedKeyType) {
				errs = append(errs, fmt.Errorf("%s: unsupported key type (use RSA, EC or OKP with crv Ed25519)", name))
			} else {
				errs = append(errs, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "go-jose/go-jose: ")))
			}
			continue
		}
		switch key := k.Key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < keys.MinRSABits {
				errs = append(errs, fmt.Errorf("%s: a %d-bit RSA key is too small (at least %d)", name, key.N.BitLen(), keys.MinRSABits))
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			errs = append(errs, fmt.Errorf("%s: unsupported key type (use RSA, EC or OKP with crv Ed25519)", name))
			continue
		}
		if !k.Valid() {
			errs = append(errs, fmt.Errorf("%s is not a valid key", name))
			continue
		}
		if kid == "" {
			errs = append(errs, fmt.Errorf("%s has no kid: give every key one (client assertions name their key by it)", name))
			continue
		}
		if j, dup := kids[kid]; dup {
			errs = append(errs, fmt.Errorf("%s has the kid of keys[%d]: give every key its own", name, j))
			continue
		}
		kids[kid] = i
		set.Keys = append(set.Keys, k)
	}
	return set, errs
}

// oidcWarnings adds the warnings of the oidc section.
func (c *Config) oidcWarnings(warn func(string, string, ...any)) {
	for i, oc := range c.OIDC.Clients {
		p := fmt.Sprintf("oidc.clients[%d]", i)
		id := c.show(p+".id", oc.ID)
		if c.has(p + ".secret") {
			if _, env := c.fromEnv[p+".secret"]; !env {
				warn(p+".secret", "client %s: the client secret is written in the config file; use secret_file or ${ENV}", id)
			}
		}
		if !oc.NumberMatching {
			warn(p+".number_matching", "client %s: false: a user who approves every push lets in anyone who has the password (push fatigue); "+
				"the default is true", id)
		}
	}
}
