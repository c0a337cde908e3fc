package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// The token endpoint authenticates clients itself before op sees the
// request, where op's own checks fall short:
//   - private_key_jwt: the assertion's audience may be the issuer or the
//     token endpoint (OIDC Core 9 says the latter; op accepts only the
//     former), exp is required and near, and each jti is used once
//     (replays are refused, on every node);
//   - a private_key_jwt client must use it, and a request may carry one
//     method only.
//
// Clients with a secret may send it either way, Basic or in the body, as
// most providers allow: relying-party libraries (zitadel's rp among them)
// send it in the body on refresh whatever they were registered with.
//
// A private_key_jwt request that passes is handed to op without the
// assertion, as the client it proved to be (verifiedClient), with PKCE
// still checked by op.

// maxAssertionLife bounds how far in the future a client assertion's exp
// may be: a long-lived assertion would be a password.
const maxAssertionLife = 10 * time.Minute

type verifiedClientKey struct{}

// clientAuthError is a token-endpoint answer to failed client
// authentication (RFC 6749 5.2).
type clientAuthError struct{ desc string }

func (e *clientAuthError) Error() string { return e.desc }

// authenticateClient checks the client authentication of a request to a
// client endpoint (its form parsed) and returns the request to hand to op.
// At the token endpoint (token) a verified assertion is taken out and the
// client marked as verified; introspection and revocation want to see one,
// so there it stays (and op checks it again).
func (p *Provider) authenticateClient(r *http.Request, token bool) (*http.Request, error) {
	assertion := r.PostForm.Get("client_assertion")
	_, _, basic := r.BasicAuth()
	if assertion == "" {
		c, ok := p.clients[tokenClientID(r)]
		if !ok {
			if token {
				// op would look at the code first.
				return nil, &clientAuthError{"unknown client or wrong credentials"}
			}
			return r, nil // op answers unknown clients
		}
		switch {
		case basic && r.PostForm.Has("client_secret"):
			return nil, &clientAuthError{"more than one client authentication method"}
		case c.AuthMethod == oidc.AuthMethodPrivateKeyJWT:
			return nil, &clientAuthError{"this client authenticates with a signed JWT (private_key_jwt)"}
		}
		if token && c.AuthMethod != oidc.AuthMethodNone {
			// op checks the code (and PKCE) before the client's secret, so
			// that a wrong secret with a bad code says invalid_grant: the
			// client is authenticated here first, always.
			if err := (storage{p}).AuthorizeClientIDSecret(r.Context(), c.ID, clientSecret(r)); err != nil {
				return nil, &clientAuthError{"unknown client or wrong credentials"}
			}
		}
		return r, nil
	}
	if basic || r.PostForm.Has("client_secret") {
		return nil, &clientAuthError{"more than one client authentication method"}
	}
	if r.PostForm.Get("client_assertion_type") != oidc.ClientAssertionTypeJWTAssertion {
		return nil, &clientAuthError{"unsupported client_assertion_type"}
	}
	c, err := p.verifyAssertion(r.Context(), assertion)
	if err != nil {
		if c != "" {
			p.auditClientAuth(r.Context(), c, "private_key_jwt: "+err.Error())
		}
		return nil, &clientAuthError{"the client assertion is not valid"}
	}
	if id := r.PostForm.Get("client_id"); id != "" && id != c {
		return nil, &clientAuthError{"client_id does not match the client assertion"}
	}
	if !token {
		return r, nil
	}
	r.PostForm.Del("client_assertion")
	r.PostForm.Del("client_assertion_type")
	r.PostForm.Set("client_id", c)
	return r.WithContext(context.WithValue(r.Context(), verifiedClientKey{}, c)), nil
}

// clientSecret is the secret a request carries: in the Basic
// credentials (form-encoded, RFC 6749 2.3.1) or the body.
func clientSecret(r *http.Request) string {
	if _, secret, ok := r.BasicAuth(); ok {
		u, err := url.QueryUnescape(secret)
		if err != nil {
			return "" // as op: no secret
		}
		return u
	}
	return r.PostForm.Get("client_secret")
}

// verifyAssertion checks a private_key_jwt client assertion and returns
// its client id (also on failure, when it names a registered client).
func (p *Provider) verifyAssertion(ctx context.Context, raw string) (string, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256,
		jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA})
	if err != nil {
		return "", fmt.Errorf("not a signed JWT: %w", err)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return "", err
	}
	c, ok := p.clients[unverified.Issuer]
	if !ok || c.AuthMethod != oidc.AuthMethodPrivateKeyJWT {
		return "", errors.New("not a private_key_jwt client")
	}
	if len(tok.Headers) != 1 {
		return c.ID, errors.New("one signature expected")
	}
	keys := c.JWKS.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		keys = c.JWKS.Key(kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return c.ID, errors.New("signature does not verify with the client's keys")
	}
	now := p.now()
	switch {
	case claims.Issuer != c.ID || claims.Subject != c.ID:
		return c.ID, errors.New("iss and sub must be the client id")
	case claims.Expiry == nil:
		return c.ID, errors.New("no exp")
	case claims.ID == "":
		return c.ID, errors.New("no jti")
	case !slices.ContainsFunc(claims.Audience, func(a string) bool { return a == p.cfg.Issuer || a == p.cfg.Issuer+"/oauth/token" }):
		return c.ID, errors.New("aud is neither the issuer nor the token endpoint")
	}
	exp := claims.Expiry.Time()
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: now}, time.Minute); err != nil {
		return c.ID, err
	}
	if exp.After(now.Add(maxAssertionLife)) {
		return c.ID, fmt.Errorf("exp is more than %s ahead", maxAssertionLife)
	}
	h := sha256.Sum256([]byte(c.ID + "\x00" + claims.ID))
	if err := p.replay.UseOnce(ctx, "oidc-client-assertion", hex.EncodeToString(h[:]), now, exp.Add(time.Minute)); err != nil {
		return c.ID, fmt.Errorf("jti used before: %w", err)
	}
	return c.ID, nil
}

// writeClientAuthError answers failed client authentication.
func writeClientAuthError(w http.ResponseWriter, e *clientAuthError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprintf(w, `{"error":"invalid_client","error_description":%q}`, e.desc)
}
