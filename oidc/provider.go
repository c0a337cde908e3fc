package oidc

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
)

// Config is the runtime configuration of the OpenID Provider.
type Config struct {
	// Issuer is the public base URL + "/oidc"; the provider is mounted at
	// its path.
	Issuer string
	// SigningAlgorithm signs ID tokens unless a client says otherwise:
	// ES256, RS256 or EdDSA.
	SigningAlgorithm     string
	CodeLifetime         time.Duration
	AccessTokenLifetime  time.Duration
	IDTokenLifetime      time.Duration
	RefreshTokenLifetime time.Duration // 0: no refresh tokens
	Clients              []*Client
	// CryptoKey encrypts the access tokens (which carry only a token id):
	// the same 32 bytes on every node.
	CryptoKey [32]byte
}

// Client is a registered relying party.
type Client struct {
	ID     string
	Secret string
	// AuthMethod is client_secret_basic, client_secret_post,
	// private_key_jwt or none (a public client: PKCE only).
	AuthMethod             oidc.AuthMethod
	JWKS                   jose.JSONWebKeySet
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	Scopes                 []string
	SigningAlgorithm       string
	// App is the application as the sign-in pages know it (name,
	// directory, number matching, session reuse, CAPTCHA).
	App web.App

	refresh         bool
	idTokenLifetime time.Duration
	loginPath       string
}

func (c *Client) customScheme() bool {
	for _, u := range c.RedirectURIs {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return true
		}
	}
	return false
}

// Keys is the key manager as the provider uses it.
type Keys interface {
	Signer(purpose store.KeyPurpose, alg string) (keys.Key, error)
	VerificationKeys(purpose store.KeyPurpose) []keys.PublicKey
}

// Auditor records audit events (a store.AuditBatcher).
type Auditor interface {
	Append(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Deps are the provider's collaborators.
type Deps struct {
	Store store.Grants
	// Replay keeps the client assertions' jti values (private_key_jwt).
	Replay store.Replay
	Keys   Keys
	Flow   *web.Flow
	Audit  Auditor
	Logger *slog.Logger
	Now    func() time.Time
}

// Provider is the bridge's OpenID Provider.
type Provider struct {
	cfg     Config
	st      store.Grants
	replay  store.Replay
	keys    Keys
	flow    *web.Flow
	audits  Auditor
	log     *slog.Logger
	now     func() time.Time
	clients map[string]*Client
	algs    []string
	op      *op.Provider
	issuer  *url.URL
	prefix  string
	// authorizeLimit bounds the authorization requests an address can make
	// the bridge store; clientAuthAudit the audit events of failed client
	// authentication.
	authorizeLimit, clientAuthAudit *web.Limiter
}

// authorizePerMinute is how many authorization requests an address may
// send per minute.
const authorizePerMinute = 300

// New builds the provider.
func New(cfg Config, d Deps) (*Provider, error) {
	if d.Store == nil || d.Replay == nil || d.Keys == nil || d.Flow == nil || d.Audit == nil {
		return nil, errors.New("oidc: store, replay cache, keys, sign-in flow and auditor are required")
	}
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || iss.Host == "" {
		return nil, fmt.Errorf("oidc: issuer %q is not an absolute URL", cfg.Issuer)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if cfg.SigningAlgorithm == "" {
		cfg.SigningAlgorithm = keys.AlgES256
	}
	p := &Provider{
		cfg: cfg, st: d.Store, replay: d.Replay, keys: d.Keys, flow: d.Flow, audits: d.Audit, log: d.Logger, now: d.Now,
		clients: map[string]*Client{}, issuer: iss, prefix: strings.TrimSuffix(iss.Path, "/"),
		authorizeLimit:  web.NewLimiter(authorizePerMinute, time.Minute, d.Now),
		clientAuthAudit: web.NewLimiter(clientAuthAudits, time.Minute, d.Now),
	}
	p.algs = []string{cfg.SigningAlgorithm}
	for _, c := range cfg.Clients {
		if _, dup := p.clients[c.ID]; dup {
			return nil, fmt.Errorf("oidc: client %q is defined twice", c.ID)
		}
		c.refresh = cfg.RefreshTokenLifetime > 0 && slices.Contains(c.Scopes, oidc.ScopeOfflineAccess)
		c.idTokenLifetime = cfg.IDTokenLifetime
		c.loginPath = p.prefix + "/login"
		p.clients[c.ID] = c
		if c.SigningAlgorithm != "" && !slices.Contains(p.algs, c.SigningAlgorithm) {
			p.algs = append(p.algs, c.SigningAlgorithm)
		}
	}
	for _, a := range p.algs {
		if _, err := d.Keys.Signer(store.PurposeOIDC, a); err != nil {
			return nil, fmt.Errorf("oidc: no %s signing key: %w", a, err)
		}
	}
	opCfg := &op.Config{
		CryptoKey:                cfg.CryptoKey,
		DefaultLogoutRedirectURI: strings.TrimSuffix(iss.Path, "/") + "/logout/done",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		AuthMethodPrivateKeyJWT:  true,
		GrantTypeRefreshToken:    cfg.RefreshTokenLifetime > 0,
		RequestObjectSupported:   false,
		SupportedUILocales:       []language.Tag{language.English},
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, scopeGroups, oidc.ScopeOfflineAccess},
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "at_hash",
			"azp", "name", "preferred_username", "email", "email_verified", "groups"},
	}
	var opts []op.Option
	if iss.Scheme == "http" {
		// The listener config allows plain HTTP only where the operator
		// said so (allow_plain_http), which is logged at start.
		opts = append(opts, op.WithAllowInsecure())
	}
	opts = append(opts, op.WithLogger(d.Logger),
		// op's hint verifier knows RS256, ES256 and PS256 only.
		op.WithIDTokenHintVerifierOpts(op.WithSupportedIDTokenHintSigningAlgorithms(p.algs...)))
	p.op, err = op.NewProvider(opCfg, storage{p}, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	return p, nil
}

type clientKey struct{}

// Handler serves the provider under the issuer's path (Prefix).
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	inner := http.StripPrefix(p.prefix, p.op)
	mux.HandleFunc("GET "+p.prefix+"/login", p.login)
	mux.HandleFunc("GET "+p.prefix+"/login/done", p.loginDone)
	mux.HandleFunc(p.prefix+"/.well-known/openid-configuration", p.discovery(inner))
	mux.Handle(p.prefix+"/authorize", p.authorize(inner))
	mux.Handle(p.prefix+"/authorize/callback", p.callback(inner))
	mux.Handle(p.prefix+"/oauth/token", p.clientEndpoint(inner, true))
	mux.Handle(p.prefix+"/oauth/introspect", p.clientEndpoint(inner, false))
	mux.Handle(p.prefix+"/revoke", p.clientEndpoint(inner, false))
	mux.HandleFunc(p.prefix+"/end_session", p.endSession(inner))
	mux.HandleFunc(p.prefix+"/logout", p.logoutPage)
	mux.HandleFunc("GET "+p.prefix+"/logout/done", func(w http.ResponseWriter, r *http.Request) {
		p.page(w, http.StatusOK, "Signed out", "You are signed out.", "", "")
	})
	mux.Handle(p.prefix+"/keys", inner)
	mux.HandleFunc(p.prefix+"/userinfo", p.userinfo(inner))
	return mux
}

// Prefix is the path the provider is mounted at ("/oidc").
func (p *Provider) Prefix() string { return p.prefix }

// discovery serves zitadel's document, corrected to what the bridge
// does: code flow only, S256 only, and iss in authorization responses.
func (p *Provider) discovery(inner http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &bufferWriter{header: http.Header{}}
		inner.ServeHTTP(rec, r)
		var doc map[string]any
		if rec.status != 0 && rec.status != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &doc) != nil {
			copyResponse(w, rec)
			return
		}
		doc["response_types_supported"] = []string{"code"}
		doc["response_modes_supported"] = []string{"query"}
		grants := []string{"authorization_code"}
		if p.cfg.RefreshTokenLifetime > 0 {
			grants = append(grants, "refresh_token")
		}
		doc["grant_types_supported"] = grants
		doc["code_challenge_methods_supported"] = []string{"S256"}
		doc["authorization_response_iss_parameter_supported"] = true
		doc["request_parameter_supported"] = false
		doc["acr_values_supported"] = []string{acrMFA}
		delete(doc, "device_authorization_endpoint")
		delete(doc, "request_object_signing_alg_values_supported")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_ = json.NewEncoder(w).Encode(doc)
	}
}

// authorize checks what zitadel's op lets through: the redirect URI must
// be one of the client's exactly (op accepts any port on a loopback URI
// for native clients), and a bad one gets an error page, never a
// redirect. Responses get iss (RFC 9207).
func (p *Provider) authorize(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			p.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The request could not be read.")
			return
		}
		if k := repeated(r.Form); k != "" {
			p.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The request repeats the parameter "+strconv.Quote(truncate(k, 40))+".")
			return
		}
		if len(r.Form) > maxParams {
			p.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The request has too many parameters.")
			return
		}
		for k, v := range r.Form {
			lk := strings.ToLower(k)
			limit, ok := paramLimits[lk]
			if !ok {
				limit = maxParamLen
			}
			if len(v[0]) > limit {
				p.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The request's "+strconv.Quote(truncate(lk, 40))+" is too long.")
				return
			}
		}
		if !p.authorizeLimit.Take(web.AddressKey(p.flow.ClientIP(r))) {
			p.errorPage(w, r, http.StatusTooManyRequests, web.ErrorBusy, "Too many authorization requests from this address.")
			return
		}
		c, ok := p.clients[r.Form.Get("client_id")]
		if !ok {
			p.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The client_id is not a registered application.")
			return
		}
		if !slices.Contains(c.RedirectURIs, r.Form.Get("redirect_uri")) {
			p.auditClient(r.Context(), c.ID, "oidc.authorize", store.ResultFailure, "redirect_uri not registered")
			p.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The application sent a redirect_uri that is not registered for it.")
			return
		}
		if r.Form.Has("request") || r.Form.Has("request_uri") {
			p.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "Request objects are not supported.")
			return
		}
		// The request is bound to this browser: only it may sign in to it
		// and collect its code.
		binding := p.flow.Bind(w, r)
		r = r.WithContext(context.WithValue(r.Context(), bindingKey{}, binding))
		inner.ServeHTTP(&issWriter{ResponseWriter: w, iss: p.cfg.Issuer}, r)
	})
}

// Limits of an authorization request's parameters: their number, and the
// length of each (paramLimits by lower-case name, maxParamLen for the
// rest), so that an unauthenticated request cannot make the bridge store
// or show much.
const (
	maxParams   = 40
	maxParamLen = 1024
)

// paramLimits are the parameters allowed more or less than maxParamLen.
var paramLimits = map[string]int{
	"state": 2048, "nonce": 512, "login_hint": 256, "scope": 512,
	"redirect_uri": 2048, "client_id": 128, "max_age": 12, "prompt": 64, "acr_values": 512,
	"ui_locales": 128, "id_token_hint": 8192,
}

// repeated returns the name of a parameter that comes more than once, in
// any spelling, or is not plain lower-case ASCII; "" if there is none.
// op's decoder takes the last of repeated parameters and matches names
// with Unicode case folding ("ſtate" is "state"), while the bridge's
// checks read the first exact name: no parameter may come twice, and
// every name must be spelt as the protocol spells it.
func repeated(form url.Values) string {
	for k, v := range form {
		if len(v) > 1 || !plainName(k) {
			return k
		}
	}
	return ""
}

// plainName reports whether a parameter name is lower-case ASCII letters,
// digits and underscores, as every OAuth and OIDC parameter is.
func plainName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

type bindingKey struct{}

// boundHere reports whether the request's browser is the one that sent a.
func (p *Provider) boundHere(r *http.Request, a *authRequest) bool {
	h := p.flow.BindingHash(r)
	return a.Binding != "" && h != "" && subtle.ConstantTimeCompare([]byte(h), []byte(a.Binding)) == 1
}

// callback is op's /authorize/callback, which sends the code: only to the
// browser that signed in.
func (p *Provider) callback(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// op reads the id from the form, where a POST body comes before
		// the query: only a GET with exactly one id reaches it, so that the
		// request checked here is the one op answers.
		ids := r.URL.Query()["id"]
		if r.Method != http.MethodGet || len(ids) != 1 {
			p.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The authorization request is unknown, expired, or was finished in another browser.")
			return
		}
		a, err := p.getRequest(r.Context(), ids[0])
		if err != nil || a.User == nil || !p.boundHere(r, a) {
			p.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The authorization request is unknown, expired, or was finished in another browser.")
			return
		}
		inner.ServeHTTP(&issWriter{ResponseWriter: w, iss: p.cfg.Issuer}, r)
	})
}

// clientEndpoint guards the endpoints clients call with their credentials
// (token, introspection, revocation): POST only, parameters in the body
// only (op reads the query too), each named once in plain lower-case
// ASCII (op matches names case-insensitively, with Unicode folding), and
// the client's authentication checked by the bridge first (see
// authenticateClient). At the token endpoint it puts the client in the
// context, for SigningKey to pick its algorithm.
func (p *Provider) clientEndpoint(inner http.Handler, token bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
			return
		}
		if r.URL.RawQuery != "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "parameters go in the body, not the query")
			return
		}
		if err := r.ParseForm(); err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body could not be read")
			return
		}
		if k := repeated(r.PostForm); k != "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "repeated or misspelt parameter "+strconv.Quote(truncate(k, 40)))
			return
		}
		r.Form = r.PostForm
		r, err := p.authenticateClient(r, token)
		if err != nil {
			var ce *clientAuthError
			if errors.As(err, &ce) {
				writeClientAuthError(w, ce)
				return
			}
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "")
			return
		}
		if c, ok := p.clients[tokenClientID(r)]; ok && token {
			r = r.WithContext(context.WithValue(r.Context(), clientKey{}, c))
		}
		inner.ServeHTTP(w, r)
	})
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, code, desc)
}

// tokenClientID is the client a token request names, before it is
// authenticated (op authenticates it).
func tokenClientID(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(id); err == nil {
			return u
		}
	}
	if id := r.PostForm.Get("client_id"); id != "" {
		return id
	}
	if a := r.PostForm.Get("client_assertion"); a != "" {
		parts := strings.Split(a, ".")
		if len(parts) == 3 {
			var claims struct {
				Sub string `json:"sub"`
			}
			if b, err := base64URLDecode(parts[1]); err == nil && json.Unmarshal(b, &claims) == nil {
				return claims.Sub
			}
		}
	}
	return ""
}

// endSession hands the request to op, which checks id_token_hint and
// post_logout_redirect_uri and calls TerminateSessionFromRequest; that
// ends the browser's session only for a valid hint naming its user.
// Without one, the user confirms on a page first (no logout by a link on
// someone else's page).
func (p *Provider) endSession(inner http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ctx := context.WithValue(r.Context(), logoutKey{}, &logoutCtx{w: w, r: r})
		inner.ServeHTTP(w, r.WithContext(ctx))
	}
}

type logoutKey struct{}

type logoutCtx struct {
	w http.ResponseWriter
	r *http.Request
}

// logoutPage asks the user to confirm a logout that came without a valid
// id_token_hint, and performs it on POST. The session cookie is
// SameSite=Lax: a POST from another site carries none, and ends nothing.
func (p *Provider) logoutPage(w http.ResponseWriter, r *http.Request) {
	next := r.FormValue("next")
	if !p.postLogoutURI(next) {
		next = ""
	}
	if r.Method == http.MethodPost {
		if o := r.Header.Get("Origin"); o != "" && o != p.issuer.Scheme+"://"+p.issuer.Host {
			p.errorPage(w, r, http.StatusForbidden, web.ErrorSignOut, "The sign-out request came from another site.")
			return
		}
		if user := p.flow.EndSession(w, r); user != "" {
			p.audit(r.Context(), user, "logout", "", store.ResultSuccess, "confirmed on the sign-out page", nil)
		}
		if next != "" {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		p.page(w, http.StatusOK, "Signed out", "You are signed out.", "", "")
		return
	}
	p.page(w, http.StatusOK, "Sign out", "Sign out of your sign-in session on this browser?", p.prefix+"/logout", next)
}

// postLogoutURI reports whether u is a registered post-logout URI of
// some client, with at most a state parameter added (as op adds it).
func (p *Provider) postLogoutURI(u string) bool {
	parsed, err := url.Parse(u)
	if u == "" || err != nil {
		return false
	}
	q := parsed.Query()
	q.Del("state")
	parsed.RawQuery = q.Encode()
	bare := parsed.String()
	for _, c := range p.clients {
		if slices.Contains(c.PostLogoutRedirectURIs, bare) || slices.Contains(c.PostLogoutRedirectURIs, u) {
			return true
		}
	}
	return false
}

// login is the client's LoginURL: it hands the request to the sign-in
// pages, or answers at once (prompt=none, a reusable session).
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a, err := p.getRequest(ctx, r.URL.Query().Get("id"))
	if err != nil || a.User != nil || !p.boundHere(r, a) {
		p.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The authorization request is unknown, expired, or was started in another browser.")
		return
	}
	c := p.clients[a.ClientID]
	if c == nil {
		p.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The authorization request's client is no longer configured.")
		return
	}
	l := web.Login{
		App: c.App, LoginHint: a.LoginHint,
		Fresh:  slices.Contains(a.Prompt, oidc.PromptLogin),
		Return: p.returnPath(a),
	}
	if a.MaxAge != nil {
		l.MaxAge, l.HasMaxAge = time.Duration(*a.MaxAge)*time.Second, true
		if *a.MaxAge == 0 {
			l.Fresh = true
		}
	}
	if slices.Contains(a.Prompt, oidc.PromptNone) {
		res, err := p.flow.SessionFor(r, c.App)
		if err != nil || !c.App.SessionReuse || l.Fresh ||
			l.HasMaxAge && p.now().Sub(res.AuthTime) > l.MaxAge ||
			a.HintSubject != "" && a.HintSubject != res.User ||
			!p.flow.SessionMeetsKeys(ctx, c.App, res) {
			p.redirectError(w, r, a, oidc.ErrLoginRequired())
			return
		}
		res.FromSession = true
		p.finish(w, r, a, res)
		return
	}
	p.flow.Begin(w, r, l)
}

// returnPath is where the sign-in pages return for a.
func (p *Provider) returnPath(a *authRequest) string {
	return p.prefix + "/login/done?id=" + url.QueryEscape(a.ID)
}

// loginDone is where the sign-in pages return.
func (p *Provider) loginDone(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a, err := p.getRequest(ctx, r.URL.Query().Get("id"))
	if err != nil || a.User != nil || !p.boundHere(r, a) {
		p.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The authorization request is unknown, expired, or was started in another browser.")
		return
	}
	// The sign-in must be the one started for this request: another
	// finished sign-in of the browser (another application, a session
	// reused where this request wanted a push) is no good here.
	res, err := p.flow.Finish(r, r.URL.Query().Get("login"), p.returnPath(a))
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The authorization request is unknown, expired, or was finished in another browser.")
		return
	}
	p.finish(w, r, a, res)
}

// finish binds the signed-in user to the request and sends the browser
// to op's callback, which issues the code.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, a *authRequest, res web.Result) {
	ctx := r.Context()
	c := p.clients[a.ClientID]
	if c == nil || !p.boundHere(r, a) || c.App.Directory == nil || res.Directory != c.App.Directory.Name() {
		p.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The sign-in does not belong to this browser or to the application's directory.")
		return
	}
	_, err := p.st.UpdateGrant(ctx, store.GrantAuthRequest, a.ID, p.now(), func(g store.Grant) (store.Grant, error) {
		var cur authRequest
		if err := json.Unmarshal(g.Data, &cur); err != nil {
			return g, err
		}
		if cur.User != nil {
			return g, errors.New("already signed in")
		}
		cur.User = &res
		data, err := json.Marshal(&cur)
		g.Data, g.Subject = data, res.User
		return g, err
	})
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The authorization request expired or was signed in to already.")
		return
	}
	details := map[string]string{"amr": strings.Join(res.AMR, " ")}
	if res.FromSession {
		details["session"] = "reused"
	}
	p.audit(ctx, res.User, "oidc.authorize", a.ClientID, store.ResultSuccess, "", details)
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(op.ContextWithIssuer(ctx, p.cfg.Issuer), a.ID), http.StatusSeeOther)
}

// redirectError sends an error authorization response to the client.
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, a *authRequest, e *oidc.Error) {
	_ = p.st.DeleteGrant(r.Context(), store.GrantAuthRequest, a.ID)
	u, err := url.Parse(a.RedirectURI)
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The application's redirect URI is not valid.")
		return
	}
	q := u.Query()
	q.Set("error", string(e.ErrorType))
	if e.Description != "" {
		q.Set("error_description", e.Description)
	}
	if a.State != "" {
		q.Set("state", a.State)
	}
	q.Set("iss", p.cfg.Issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (p *Provider) putRequest(ctx context.Context, a *authRequest) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	now := p.now()
	return p.st.PutGrant(ctx, store.Grant{Kind: store.GrantAuthRequest, ID: a.ID, Family: a.Family, Data: data,
		CreatedAt: now, ExpiresAt: now.Add(requestLifetime)})
}

// requestLifetime bounds an authorization request, sign-in included.
const requestLifetime = 15 * time.Minute

func (p *Provider) getRequest(ctx context.Context, id string) (*authRequest, error) {
	if id == "" || len(id) > 64 {
		return nil, store.ErrNotFound
	}
	g, err := p.st.GetGrant(ctx, store.GrantAuthRequest, id, p.now())
	if err != nil {
		return nil, err
	}
	a := new(authRequest)
	if err := json.Unmarshal(g.Data, a); err != nil {
		return nil, err
	}
	return a, nil
}

// newAccessToken stores an access token's grant and returns its id (op
// wraps it, encrypted, into the token the client gets).
//
// It is the last record a token response writes, and it checks afterwards
// that the family was not revoked meanwhile (a replayed code or refresh
// token racing this response): revocation writes its tombstone before it
// deletes, so either the deletion sees this response's records or this
// check sees the tombstone.
func (p *Provider) newAccessToken(ctx context.Context, g grant, family string) (string, time.Time, error) {
	id, err := randomString(24)
	if err != nil {
		return "", time.Time{}, err
	}
	now := p.now()
	exp := now.Add(p.cfg.AccessTokenLifetime)
	data, _ := json.Marshal(g)
	if err := p.st.PutGrant(ctx, store.Grant{Kind: store.GrantAccessToken, ID: id, Family: family, Subject: g.User.User,
		Data: data, CreatedAt: now, ExpiresAt: exp}); err != nil {
		return "", time.Time{}, err
	}
	revoked, err := p.familyRevoked(ctx, family, g.User)
	if err != nil {
		return "", time.Time{}, err
	}
	if revoked {
		if _, err := p.st.RevokeFamily(ctx, family); err != nil {
			p.log.ErrorContext(ctx, "revoking a revoked family's new tokens failed", "err", err)
		}
		return "", time.Time{}, errInvalidGrant
	}
	return id, exp, nil
}

// familyRevoked reports whether the family has a tombstone, or its user
// was signed out (SignOut) at or after the sign-in it comes from.
func (p *Provider) familyRevoked(ctx context.Context, family string, u web.Result) (bool, error) {
	now := p.now()
	if _, err := p.st.GetGrant(ctx, grantRevokedFamily, family, now); err == nil {
		return true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	g, err := p.st.GetGrant(ctx, grantSignedOut, u.User, now)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	at, err := time.Parse(time.RFC3339Nano, string(g.Data))
	return err != nil || !u.AuthTime.After(at), nil
}

// grantRevokedFamily is the tombstone of a revoked family (its ID is the
// family; it has no family itself, so RevokeFamily keeps it).
const grantRevokedFamily = "oidc_revoked"

// grantSignedOut records when a user was signed out (ID the user name,
// Data the time; no subject, so RevokeSubject keeps it): tokens of
// sign-ins from before it are refused, also those a response racing the
// sign-out is still writing.
const grantSignedOut = "oidc_signed_out"

// SignOut signs user out everywhere: it records the sign-out, so that no
// token of an earlier sign-in is issued any more, and then deletes the
// user's sessions, sign-ins in progress and tokens. It returns how many
// records it deleted.
func SignOut(ctx context.Context, st store.Grants, user string, now time.Time) (int64, error) {
	at := []byte(now.UTC().Format(time.RFC3339Nano))
	exp := now.Add(maxRefreshLifetime + time.Hour)
	err := st.PutGrant(ctx, store.Grant{Kind: grantSignedOut, ID: user, Data: at, CreatedAt: now, ExpiresAt: exp})
	if errors.Is(err, store.ErrConflict) {
		_, err = st.UpdateGrant(ctx, grantSignedOut, user, now, func(g store.Grant) (store.Grant, error) {
			g.Data, g.ExpiresAt = at, exp
			return g, nil
		})
		if errors.Is(err, store.ErrNotFound) { // expired, not yet swept
			if err = st.DeleteGrant(ctx, grantSignedOut, user); err == nil || errors.Is(err, store.ErrNotFound) {
				err = st.PutGrant(ctx, store.Grant{Kind: grantSignedOut, ID: user, Data: at, CreatedAt: now, ExpiresAt: exp})
			}
		}
	}
	n, rerr := st.RevokeSubject(ctx, user)
	return n, errors.Join(err, rerr)
}

// maxRefreshLifetime is the longest refresh-token chain the config allows
// (oidc.refresh_token_lifetime): a sign-out is remembered that long.
const maxRefreshLifetime = 2160 * time.Hour

// revokeFamily revokes every record of a family, leaving a tombstone that
// stops tokens still being issued for it (see newAccessToken).
func (p *Provider) revokeFamily(ctx context.Context, family string) (int64, error) {
	if family == "" {
		return 0, nil
	}
	now := p.now()
	err := p.st.PutGrant(ctx, store.Grant{Kind: grantRevokedFamily, ID: family, CreatedAt: now,
		ExpiresAt: now.Add(max(p.cfg.RefreshTokenLifetime, p.cfg.AccessTokenLifetime, requestLifetime) + time.Hour)})
	if errors.Is(err, store.ErrConflict) {
		err = nil
	}
	// Revoked even when the tombstone could not be written: what exists
	// now goes, and the error is reported.
	n, rerr := p.st.RevokeFamily(ctx, family)
	return n, errors.Join(err, rerr)
}

func (p *Provider) accessGrant(ctx context.Context, id, subject string) (grant, error) {
	var g grant
	rec, err := p.st.GetGrant(ctx, store.GrantAccessToken, id, p.now())
	if err != nil {
		return g, errors.New("token is not active")
	}
	if err := json.Unmarshal(rec.Data, &g); err != nil {
		return g, err
	}
	if g.User.User != subject {
		return g, errors.New("token is not active")
	}
	return g, nil
}

// codeReplayed revokes the family of a code presented after it was used.
func (p *Provider) codeReplayed(ctx context.Context, g store.Grant) {
	n, err := p.revokeFamily(ctx, g.Family)
	if err != nil {
		p.log.ErrorContext(ctx, "revoking the tokens of a replayed code failed", "err", err)
	}
	p.log.WarnContext(ctx, "authorization code used twice: its tokens are revoked", "user", g.Subject, "client", clientOf(g), "revoked", n)
	p.audit(ctx, g.Subject, "oidc.code.replay", clientOf(g), store.ResultFailure,
		"authorization code used twice: its tokens are revoked", map[string]string{"revoked": strconv.FormatInt(n, 10)})
}

// refreshReused revokes the family of a refresh token presented after it
// was rotated: either the client or an attacker holds a stolen copy.
func (p *Provider) refreshReused(ctx context.Context, g store.Grant) {
	n, err := p.revokeFamily(ctx, g.Family)
	if err != nil {
		p.log.ErrorContext(ctx, "revoking a reused refresh token's family failed", "err", err)
	}
	p.log.WarnContext(ctx, "refresh token reused: its family is revoked", "user", g.Subject, "client", clientOf(g), "revoked", n)
	p.audit(ctx, g.Subject, "oidc.refresh.reuse", clientOf(g), store.ResultFailure,
		"refresh token used twice: every token of the sign-in is revoked", map[string]string{"revoked": strconv.FormatInt(n, 10)})
}

func (p *Provider) audit(ctx context.Context, user, action, clientID string, res store.AuditResult, reason string, details map[string]string) {
	if details == nil {
		details = map[string]string{}
	}
	if clientID != "" {
		details["client_id"] = clientID
	}
	actor := "system"
	if user != "" {
		actor = "user:" + user
	}
	if _, err := p.audits.Append(ctx, store.AuditEvent{Time: p.now(), Actor: actor, Action: action, Subject: user,
		Channel: "oidc", Result: res, Reason: reason, Details: details}); err != nil {
		p.log.ErrorContext(ctx, "audit append failed", "err", err)
	}
}

// auditClientAuth records a failed client authentication, at most
// clientAuthAudits a minute per client: anyone can fail to authenticate
// as a registered client, and the audit chain is not for flooding. The
// rest are logged, as a count.
func (p *Provider) auditClientAuth(ctx context.Context, clientID, reason string) {
	if p.clientAuthAudit.Take(clientID) {
		p.auditClient(ctx, clientID, "oidc.client_auth", store.ResultFailure, reason)
		return
	}
	p.log.WarnContext(ctx, "client authentication failed (not audited: too many)", "client", clientID, "reason", reason)
}

// clientAuthAudits bounds the audit events of failed client
// authentication, per client and minute.
const clientAuthAudits = 20

func (p *Provider) auditClient(ctx context.Context, clientID, action string, res store.AuditResult, reason string) {
	p.audit(ctx, "", action, clientID, res, reason, nil)
}

// errorPage is shown instead of redirecting to a client that cannot be
// trusted with the answer.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, status int, kind web.ErrorKind, detail string) {
	p.flow.ErrorPage(w, r, status, kind, detail)
}

// page renders a simple page, with a sign-out form when action is set.
func (p *Provider) page(w http.ResponseWriter, status int, title, msg, action, next string) {
	var form *web.SimpleForm
	if action != "" {
		form = &web.SimpleForm{Action: action, Button: "Sign out"}
		if next != "" {
			form.Hidden = map[string]string{"next": next}
		}
	}
	web.SimplePage(w, status, title, msg, form)
}

// issWriter adds iss to authorization responses (RFC 9207): redirects to
// the client carrying code or error.
type issWriter struct {
	http.ResponseWriter
	iss string
}

func (w *issWriter) WriteHeader(code int) {
	if code >= 300 && code < 400 {
		if loc := w.Header().Get("Location"); loc != "" {
			if u, err := url.Parse(loc); err == nil {
				q := u.Query()
				if (q.Has("code") || q.Has("error")) && !q.Has("iss") {
					q.Set("iss", w.iss)
					u.RawQuery = q.Encode()
					w.Header().Set("Location", u.String())
				}
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// bufferWriter records a response to rewrite it.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }
func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }

func copyResponse(w http.ResponseWriter, b *bufferWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

func base64URLDecode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
