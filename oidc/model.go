package oidc

import (
	"crypto"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/bridge-idp/bridge/web"
)

// authRequest is an authorization request as stored (store.GrantAuthRequest,
// JSON): what the client asked for and, once the user has signed in, who
// they are. It implements op.AuthRequest.
type authRequest struct {
	ID            string                   `json:"id"`
	ClientID      string                   `json:"client_id"`
	RedirectURI   string                   `json:"redirect_uri"`
	State         string                   `json:"state,omitempty"`
	Nonce         string                   `json:"nonce,omitempty"`
	Scopes        []string                 `json:"scopes"`
	ResponseType  oidc.ResponseType        `json:"response_type"`
	ResponseMode  oidc.ResponseMode        `json:"response_mode,omitempty"`
	Challenge     string                   `json:"code_challenge"`
	ChallengeMeth oidc.CodeChallengeMethod `json:"code_challenge_method"`
	Prompt        []string                 `json:"prompt,omitempty"`
	MaxAge        *uint                    `json:"max_age,omitempty"`
	LoginHint     string                   `json:"login_hint,omitempty"`
	// Binding is the hash of the binding cookie of the browser that sent
	// the request: only that browser may sign in to it and collect its
	// code.
	Binding string `json:"binding,omitempty"`
	// HintSubject is the subject of a valid id_token_hint: prompt=none
	// answers only for that user.
	HintSubject string `json:"hint_sub,omitempty"`
	// Family groups the code and the tokens issued for this request.
	Family string `json:"family"`
	// Set when the sign-in finished.
	User     *web.Result `json:"user,omitempty"`
	CodeSent bool        `json:"code_sent,omitempty"`
	// CodeHash names the code's record once it is issued; the code is
	// used up when tokens are issued for it (after op has checked the
	// client and PKCE), so a wrong attempt does not burn it.
	CodeHash string `json:"code_hash,omitempty"`
}

func (a *authRequest) GetID() string         { return a.ID }
func (a *authRequest) GetACR() string        { return acrOf(a.User) }
func (a *authRequest) GetAMR() []string      { return amrOf(a.User) }
func (a *authRequest) GetAudience() []string { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	if a.User == nil {
		return time.Time{}
	}
	return a.User.AuthTime
}
func (a *authRequest) GetClientID() string { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.Challenge, Method: a.ChallengeMeth}
}
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string {
	if a.User == nil {
		return ""
	}
	return a.User.User
}
func (a *authRequest) Done() bool { return a.User != nil }

// grant is what an access or refresh token stands for (JSON in its
// store.Grant): the sign-in it came from and what it may be used for.
type grant struct {
	ClientID string     `json:"client_id"`
	Scopes   []string   `json:"scopes"`
	User     web.Result `json:"user"`
	// Expires is when the chain of refresh tokens ends (refresh tokens
	// only): rotation does not extend it.
	Expires time.Time `json:"expires,omitzero"`
}

func (g *grant) GetAMR() []string       { return amrOf(&g.User) }
func (g *grant) GetAudience() []string  { return []string{g.ClientID} }
func (g *grant) GetAuthTime() time.Time { return g.User.AuthTime }
func (g *grant) GetClientID() string    { return g.ClientID }
func (g *grant) GetScopes() []string    { return g.Scopes }
func (g *grant) GetSubject() string     { return g.User.User }
func (g *grant) SetCurrentScopes(s []string) {
	g.Scopes = s
}

// refreshRequest is a refresh token presented at the token endpoint, with
// the hash it is stored under.
type refreshRequest struct {
	grant
	hash   string
	family string
}

// ACR values: every bridge sign-in is multi-factor.
const acrMFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

func acrOf(r *web.Result) string {
	if r != nil && r.MFA() {
		return acrMFA
	}
	return ""
}

func amrOf(r *web.Result) []string {
	if r == nil {
		return nil
	}
	return slices.Clone(r.AMR)
}

// client is a configured client as zitadel's op sees it. verified is set
// when the token endpoint has authenticated it already (private_key_jwt,
// see authenticateClient): op then checks PKCE only.
type client struct {
	c        *Client
	verified bool
}

func (c client) GetID() string                    { return c.c.ID }
func (c client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }
func (c client) ApplicationType() op.ApplicationType {
	if c.c.AuthMethod == oidc.AuthMethodNone && c.c.customScheme() {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}
func (c client) AuthMethod() oidc.AuthMethod {
	if c.verified {
		return oidc.AuthMethodNone
	}
	return c.c.AuthMethod
}
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType {
	g := []oidc.GrantType{oidc.GrantTypeCode}
	if c.c.refresh {
		g = append(g, oidc.GrantTypeRefreshToken)
	}
	return g
}
func (c client) LoginURL(id string) string           { return c.c.loginPath + "?id=" + id }
func (c client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c client) IDTokenLifetime() time.Duration      { return c.c.idTokenLifetime }
func (c client) DevMode() bool                       { return false }
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) IsScopeAllowed(scope string) bool { return slices.Contains(c.c.Scopes, scope) }

// IDTokenUserinfoClaimsAssertion puts the scope's claims in the ID token
// too: many relying parties (mod_auth_openidc among them) read email and
// name from it.
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c client) ClockSkew() time.Duration             { return 0 }

// signingKey adapts a keys.Key for op.
type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey adapts a keys.PublicKey for op's JWKS.
type publicKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.PublicKey
}

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key }
