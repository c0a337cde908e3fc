package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// The userinfo endpoint answers as a protected resource (RFC 6750 3):
// without a token, 401 with a bare Bearer challenge; a malformed request,
// 400 invalid_request; a bogus, expired or revoked token, 401
// invalid_token; a token without the openid scope, 403
// insufficient_scope. Each error has a WWW-Authenticate challenge and a
// JSON body. op answers the rest (the claims, and CORS), and its own
// errors (plain text, or 403 {}) never reach the client.

// bearerError is a userinfo refusal.
type bearerError struct {
	status int
	code   string // "" for a request without a token
	desc   string
}

// userinfo wraps op's userinfo endpoint.
func (p *Provider) userinfo(inner http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodOptions { // a CORS preflight
			inner.ServeHTTP(w, r)
			return
		}
		// op's answer is kept for its headers (CORS) and, when the token
		// is good, its body; what op says about a bad one is replaced.
		berr := p.checkBearer(r)
		rec := &bufferWriter{header: http.Header{}}
		inner.ServeHTTP(rec, r)
		if berr == nil && (rec.status == 0 || rec.status == http.StatusOK) {
			copyResponse(w, rec)
			return
		}
		if berr == nil {
			// Valid a moment ago (revoked since, or op disagrees).
			berr = &bearerError{http.StatusUnauthorized, "invalid_token", "the access token is not active"}
		}
		h := w.Header()
		for k, v := range rec.header {
			if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
				h[k] = v
			}
		}
		writeBearerError(w, berr)
	}
}

// checkBearer finds the request's access token (RFC 6750 2: the
// Authorization header, a form body or the query; one method, once) and
// checks that it is active and carries the openid scope.
func (p *Provider) checkBearer(r *http.Request) *bearerError {
	tok, err := bearerToken(r)
	if err != nil {
		return &bearerError{http.StatusBadRequest, "invalid_request", err.Error()}
	}
	if tok == "" {
		return &bearerError{status: http.StatusUnauthorized}
	}
	g, err := p.activeToken(r.Context(), tok)
	if err != nil {
		return &bearerError{http.StatusUnauthorized, "invalid_token", "the access token is not active"}
	}
	if !slices.Contains(g.Scopes, oidc.ScopeOpenID) {
		return &bearerError{http.StatusForbidden, "insufficient_scope", "userinfo needs the openid scope"}
	}
	return nil
}

// activeToken returns the grant of an active access token.
func (p *Provider) activeToken(ctx context.Context, tok string) (grant, error) {
	plain, err := p.op.Crypto().Decrypt(tok)
	if err != nil {
		return grant{}, fmt.Errorf("not one of ours: %w", err)
	}
	id, subject, ok := strings.Cut(plain, ":")
	if !ok || id == "" || subject == "" || strings.Contains(subject, ":") {
		return grant{}, errors.New("not one of ours")
	}
	return p.accessGrant(ctx, id, subject)
}

// bearerToken returns the access token a request carries, "" if none; an
// error for a request that is malformed (two methods, a repeated
// parameter, a Bearer header without a well-formed token).
func bearerToken(r *http.Request) (string, error) {
	var header string
	switch hs := r.Header.Values("Authorization"); len(hs) {
	case 0:
	case 1:
		scheme, rest, _ := strings.Cut(hs[0], " ")
		if strings.EqualFold(scheme, "Bearer") {
			header = strings.TrimLeft(rest, " ")
			if !b64token(header) {
				return "", errors.New("the Authorization header does not carry a well-formed bearer token")
			}
		}
	default:
		return "", errors.New("more than one Authorization header")
	}
	if err := r.ParseForm(); err != nil {
		return "", errors.New("the request could not be read")
	}
	form := r.Form["access_token"]
	switch {
	case len(form) > 1:
		return "", errors.New("access_token is repeated")
	case len(form) == 1 && header != "":
		return "", errors.New("the access token is sent in more than one way")
	case len(form) == 1:
		if form[0] == "" {
			return "", errors.New("access_token is empty")
		}
		return form[0], nil
	}
	return header, nil
}

// b64token reports whether s is an RFC 6750 b64token: 1*( ALPHA / DIGIT
// / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func b64token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for _, c := range []byte(body) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// writeBearerError answers a refused userinfo request.
func writeBearerError(w http.ResponseWriter, e *bearerError) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if e.code == "" {
		h.Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(e.status)
		return
	}
	challenge := fmt.Sprintf(`Bearer error=%q, error_description=%q`, e.code, e.desc)
	if e.code == "insufficient_scope" {
		challenge += `, scope="openid"`
	}
	h.Set("WWW-Authenticate", challenge)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, e.code, e.desc)
}
