package web

import (
	"crypto/hmac"
	"encoding/json"
	"net/http"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// Bind returns the hash of the browser's binding cookie, setting a new
// cookie first if the browser has none. A front end binds what it starts
// (an OIDC authorization request) to the browser with it, and checks
// BindingHash on every later step.
func (f *Flow) Bind(w http.ResponseWriter, r *http.Request) string {
	return hashToken(f.binding(w, r))
}

// BindingHash is the hash of the browser's binding cookie, or "".
func (f *Flow) BindingHash(r *http.Request) string {
	c, err := r.Cookie(f.bindingCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	return hashToken(c.Value)
}

// ClientIP is the address a request came from, as the Flow sees it.
func (f *Flow) ClientIP(r *http.Request) string { return f.d.ClientIP(r) }

// Limiter counts events per key (an address, a user) in a fixed window,
// in this node's memory.
type Limiter struct{ l *limiter }

// NewLimiter allows max events per key per window.
func NewLimiter(max int, window time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{newLimiter(max, window, now)}
}

// Take counts one event for key and reports whether key was under its
// limit.
func (l *Limiter) Take(key string) bool { return l.l.take(key) }

// AddressKey is the limiter key of an address: IPv6 addresses count per /64.
func AddressKey(ip string) string { return store.AddressKey(ip) }

// EndSessionOf ends the browser's session if it is user's and was opened
// at authTime (compared to the second), and reports whether it did: a
// logout that names its session, such as an OIDC id_token_hint, must not
// end another one (someone else's, or a later one of the same user with
// an old token).
func (f *Flow) EndSessionOf(w http.ResponseWriter, r *http.Request, user string, authTime time.Time) bool {
	c, err := r.Cookie(f.sessionCookie)
	if err != nil || c.Value == "" {
		return false
	}
	g, err := f.d.Store.GetGrant(r.Context(), store.GrantSession, hashToken(c.Value), f.now())
	if err != nil || g.Subject != user {
		return false
	}
	var res Result
	if json.Unmarshal(g.Data, &res) != nil || res.AuthTime.Unix() != authTime.Unix() {
		return false
	}
	return f.EndSession(w, r) == user
}

// Strings returns the language a request asks for (Accept-Language) and
// the sign-in's strings in it (locales/*.json): for pages of other
// packages that share the sign-in's look (the account page).
func (f *Flow) Strings(r *http.Request) (lang string, strs map[string]string) {
	return f.pages.lang(r)
}

// PageCSP is the Content-Security-Policy of the sign-in pages (without a
// CAPTCHA): only this origin's scripts, styles and images, and data:
// images.
func (f *Flow) PageCSP() string { return f.pages.csp }

// CSRF is the CSRF token of a form of another package's page (the account
// page) that is bound to id and to the browser's binding cookie: the
// sign-in's own construction. id must not be a sign-in's id (prefix it);
// "" when the browser has no binding cookie.
func (f *Flow) CSRF(r *http.Request, id string) string {
	b := f.BindingHash(r)
	if b == "" {
		return ""
	}
	return f.csrf(id, b)
}

// CheckCSRF reports whether the form of r carries CSRF(r, id).
func (f *Flow) CheckCSRF(r *http.Request, id string) bool {
	want := f.CSRF(r, id)
	got := r.PostFormValue("csrf")
	return want != "" && got != "" && hmac.Equal([]byte(got), []byte(want))
}

// Secure reports whether the Flow's cookies are Secure (the base URL is
// https), and so __Host- prefixed.
func (f *Flow) Secure() bool { return f.secure }

// NewCookieToken makes a random cookie value of n bytes (base64url), and
// CookieTokenHash is what is stored for it, so that a read of the store
// does not yield live cookies. The sign-in's cookies are made this way; so
// are the account page's.
func NewCookieToken(n int) (string, error) { return randomToken(n) }

// CookieTokenHash is the stored form of a cookie value made by
// NewCookieToken.
func CookieTokenHash(s string) string { return hashToken(s) }
