package account

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
)

// GrantKind is the store kind of account sessions.
const GrantKind = "account_session"

const (
	cookieName = "bridge_account"
	returnPath = "/account/done"
)

// session is an account session as stored (JSON in the grant).
type session struct {
	User      string    `json:"user"`
	Directory string    `json:"dir"`
	AMR       []string  `json:"amr"`
	Device    string    `json:"device,omitempty"` // the device whose push signed the user in
	AuthTime  time.Time `json:"auth_time"`
	Started   time.Time `json:"started"`
	// Binding is the hash of the browser's binding cookie (web.Flow).
	Binding string `json:"binding"`
	// ID is the grant's id (the hash of the cookie); not stored.
	ID string `json:"-"`
}

// withDevice reports whether the user signed in with one of their
// devices (a push), not with a code.
func (s session) withDevice() bool { return s.Device != "" }

// csrfID is what the session's forms' CSRF tokens are bound to, beside
// the browser: apart from every sign-in's id by its prefix.
func (s session) csrfID() string { return "account:" + s.ID }

// secondFactor says whether a finished sign-in may open the account page:
// a first factor and a second one the user already has. With a password
// directory that is Result.MFA (the password and a push or a code). A
// passwordless directory's first factor is the user name, nothing a user
// holds: there, only a push approved by one of their enrolled devices
// (possession, and the device's own unlock) opens the page; a code alone
// does not.
func secondFactor(res web.Result) bool {
	return res.MFA() || res.DeviceID != ""
}

// load returns the browser's account session, sliding its idle expiry,
// or false. The session must be this browser's (the binding cookie it
// was opened with) and its user still known to the directory.
func (p *Page) load(r *http.Request) (session, bool) {
	c, err := r.Cookie(p.cookie)
	if err != nil || len(c.Value) < 32 || len(c.Value) > 64 {
		return session{}, false
	}
	ctx := r.Context()
	now := p.now()
	id := web.CookieTokenHash(c.Value)
	bound := p.d.Flow.BindingHash(r)
	var s session
	_, err = p.d.Store.UpdateGrant(ctx, GrantKind, id, now, func(g store.Grant) (store.Grant, error) {
		if err := json.Unmarshal(g.Data, &s); err != nil {
			return g, err
		}
		if bound == "" || !hmac.Equal([]byte(s.Binding), []byte(bound)) {
			return g, errNotBound
		}
		g.ExpiresAt = now.Add(IdleTimeout)
		if end := s.Started.Add(MaxLifetime); end.Before(g.ExpiresAt) {
			g.ExpiresAt = end
		}
		if !g.ExpiresAt.After(now) {
			return g, store.ErrNotFound
		}
		return g, nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, errNotBound) {
			p.log.WarnContext(ctx, "loading an account session failed", "err", err)
		}
		return session{}, false
	}
	if _, err := p.d.App.Directory.Lookup(ctx, s.User); err != nil {
		return session{}, false
	}
	// A session opened with a device lasts only as long as the device: a
	// revoked (stolen) phone's session must not go on adding devices.
	// Revoking a device deletes its sessions (EndDeviceSessions); this
	// check also covers a revocation whose clean-up failed.
	if s.withDevice() {
		d, err := p.d.Store.GetDevice(ctx, s.Device)
		switch {
		case err == nil && d.User == s.User && d.Status == store.DeviceActive:
		case err == nil || errors.Is(err, store.ErrNotFound):
			if err := p.d.Store.DeleteGrant(detached(ctx), GrantKind, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				p.log.WarnContext(ctx, "deleting the account session of a revoked device failed", "user", s.User, "device", s.Device, "err", err)
			}
			return session{}, false
		default:
			// Not known to be active: signed out for now, the session kept.
			p.log.WarnContext(ctx, "reading the account session's device failed", "user", s.User, "device", s.Device, "err", err)
			return session{}, false
		}
	}
	s.ID = id
	return s, true
}

// DeviceFamily is the grant family of the account sessions opened with
// the device (store.Grant.Family), apart from the OIDC families by its
// prefix.
func DeviceFamily(deviceID string) string { return "account:device:" + deviceID }

// EndDeviceSessions ends the account sessions opened with the device and
// returns how many it ended. Whoever revokes a device calls it (the
// account page, bridge devices revoke); the page also refuses a session
// whose device is no longer active, so a failure here leaves no session
// usable.
func EndDeviceSessions(ctx context.Context, st store.Grants, deviceID string) (int64, error) {
	if deviceID == "" {
		return 0, nil
	}
	return st.RevokeFamily(ctx, DeviceFamily(deviceID))
}

var errNotBound = errors.New("account: session of another browser")

// authed runs h for a request with an account session; a POST must carry
// the session's CSRF token. Without a session: the sign-in page (a GET)
// or a refusal (a POST).
func (p *Page) authed(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := p.load(r)
		if !ok {
			if r.Method == http.MethodGet {
				p.landing(w, r, http.StatusUnauthorized)
				return
			}
			p.message(w, r, http.StatusForbidden, "account.expired_title", "account.expired_body")
			return
		}
		if r.Method == http.MethodPost && !p.d.Flow.CheckCSRF(r, s.csrfID()) {
			p.message(w, r, http.StatusForbidden, "csrf_title", "account.csrf_body")
			return
		}
		h(w, r, s)
	}
}

// signIn starts the browser sign-in to the account application.
func (p *Page) signIn(w http.ResponseWriter, r *http.Request) {
	p.d.Flow.Begin(w, r, web.Login{App: p.d.App, Fresh: true, Return: returnPath})
}

// signedIn takes the sign-in's result and opens the account session.
func (p *Page) signedIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	res, err := p.d.Flow.Finish(r, r.URL.Query().Get("login"), returnPath)
	if err != nil || res.Directory != p.d.App.Directory.Name() {
		p.message(w, r, http.StatusBadRequest, "account.expired_title", "account.expired_body")
		return
	}
	if !secondFactor(res) {
		p.audit(ctx, r, res.User, "account.signin", store.ResultDenied, "no second factor", map[string]string{"amr": joinAMR(res.AMR)})
		p.message(w, r, http.StatusForbidden, "account.second_factor_title", "account.second_factor_body")
		return
	}
	tok, err := web.NewCookieToken(32)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	now := p.now()
	bound := p.d.Flow.BindingHash(r) // Finish found the sign-in bound to it
	s := session{User: res.User, Directory: res.Directory, AMR: res.AMR, Device: res.DeviceID, AuthTime: res.AuthTime, Started: now, Binding: bound}
	data, _ := json.Marshal(s)
	// A new sign-in replaces the browser's old session.
	if c, err := r.Cookie(p.cookie); err == nil && c.Value != "" {
		_ = p.d.Store.DeleteGrant(ctx, GrantKind, web.CookieTokenHash(c.Value))
	}
	g := store.Grant{Kind: GrantKind, ID: web.CookieTokenHash(tok), Subject: res.User, Data: data, CreatedAt: now, ExpiresAt: now.Add(IdleTimeout)}
	if res.DeviceID != "" {
		g.Family = DeviceFamily(res.DeviceID)
	}
	if err := p.d.Store.PutGrant(ctx, g); err != nil {
		p.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: p.cookie, Value: tok, Path: "/", MaxAge: int(MaxLifetime / time.Second),
		HttpOnly: true, Secure: p.d.Flow.Secure(), SameSite: http.SameSiteStrictMode})
	p.audit(ctx, r, res.User, "account.signin", store.ResultSuccess, "", map[string]string{"amr": joinAMR(res.AMR), "device": res.DeviceID})
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// signOut ends the account session.
func (p *Page) signOut(w http.ResponseWriter, r *http.Request, s session) {
	if err := p.d.Store.DeleteGrant(r.Context(), GrantKind, s.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.fail(w, r, err)
		return
	}
	p.clearCookie(w)
	p.audit(r.Context(), r, s.User, "account.signout", store.ResultSuccess, "", nil)
	p.message(w, r, http.StatusOK, "account.signed_out_title", "account.signed_out_body")
}

// clearCookie tells the browser to forget its account session cookie.
func (p *Page) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: p.cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.d.Flow.Secure(), SameSite: http.SameSiteStrictMode})
}

// overview is /account: the devices, or the sign-in page.
func (p *Page) overview(w http.ResponseWriter, r *http.Request) {
	s, ok := p.load(r)
	if !ok {
		p.landing(w, r, http.StatusOK)
		return
	}
	p.devices(w, r, s, "")
}

func joinAMR(amr []string) string { return strings.Join(amr, " ") }

// detached is ctx for work that must finish once begun (an audit, a
// revocation) even if the browser leaves.
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
