package account

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
)

// The internal application the account page signs users in to.
const (
	AppID   = "account"
	Channel = "account"
)

// App is the account page's application for the sign-in (the front end
// that mounts the page registers it in the Flow's applications): number
// matching on, no session reuse (a browser session opened at another
// application never opens this page), dir the directory users sign in
// with.
func App(appName string, dir directory.Directory) web.App {
	return web.App{ID: AppID, Channel: Channel, Name: appName + " account", Directory: dir, NumberMatching: true}
}

// Session lifetimes.
const (
	IdleTimeout = 15 * time.Minute
	MaxLifetime = time.Hour
)

// Config is the account page's configuration.
type Config struct {
	// SelfEnrollment lets a user who signed in with a code (no device)
	// add a device (app.self_enrollment).
	SelfEnrollment bool
	// DeviceKeys is the strictest device_keys of the applications (""
	// or any, hardware, attested; config (*File).StrictestDeviceKeys).
	// Under a strict policy a device added here must not open a way round
	// it: a passkey added from a session opened with a software key, or
	// with a code, would meet hardware although nothing the policy trusts
	// approved it. So adding a device then needs the session's device to
	// meet this policy, and self-enrollment does not apply.
	DeviceKeys string
}

// Store is what the page keeps and reads.
type Store interface {
	store.Grants
	store.Devices
	ListAudit(ctx context.Context, afterSeq int64, limit int) ([]store.AuditEvent, error)
	ListAuditBySubject(ctx context.Context, subject string, beforeSeq int64, limit int) ([]store.AuditEvent, error)
}

// Activator makes device activations (a pushauth.Activator).
type Activator interface {
	Create(ctx context.Context, user, createdBy, tlsPin string) (protocol.Activation, store.Activation, error)
}

// FraudReporter takes "this wasn't me" about a recorded sign-in
// (pushauth.Engine).
type FraudReporter interface {
	ReportFraud(ctx context.Context, user, what, clientIP string) error
}

// Deps are the page's collaborators.
type Deps struct {
	Flow      *web.Flow
	App       web.App // App(...), as registered in the Flow's applications
	Store     Store
	Activator Activator
	Fraud     FraudReporter
	Audit     web.Auditor
	// AppName gives an application's name to show for its id in a
	// channel (oidc, saml, radius, account); nil or "": the id is shown.
	AppName func(channel, id string) string
	Logger  *slog.Logger
	Now     func() time.Time
}

// Page serves /account.
type Page struct {
	cfg    Config
	d      Deps
	log    *slog.Logger
	now    func() time.Time
	cookie string
	tmpl   *templates
}

// New builds the page.
func New(cfg Config, d Deps) (*Page, error) {
	if d.Flow == nil || d.Store == nil || d.Activator == nil || d.Fraud == nil || d.Audit == nil || d.App.Directory == nil {
		return nil, errors.New("account: flow, store, activator, fraud reporter, auditor and the application's directory are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	t, err := loadTemplates()
	if err != nil {
		return nil, err
	}
	p := &Page{cfg: cfg, d: d, log: d.Logger, now: d.Now, cookie: cookieName, tmpl: t}
	if d.Flow.Secure() {
		p.cookie = "__Host-" + cookieName
	}
	return p, nil
}

// Handler serves the account page under /account (mount it at /account
// and /account/). Every change is a POST: a GET changes nothing.
func (p *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /account", p.overview)
	mux.HandleFunc("GET /account/{$}", p.overview)
	mux.HandleFunc("GET /account/account.css", serveCSS)
	mux.HandleFunc("GET /account/signin", p.signIn)
	mux.HandleFunc("GET /account/done", p.signedIn)
	mux.HandleFunc("POST /account/signout", p.authed(p.signOut))
	mux.HandleFunc("POST /account/devices/add", p.authed(p.addDevice))
	mux.HandleFunc("POST /account/devices/{id}/rename", p.authed(p.rename))
	mux.HandleFunc("GET /account/devices/{id}/remove", p.authed(p.confirmRemove))
	mux.HandleFunc("POST /account/devices/{id}/remove", p.authed(p.remove))
	mux.HandleFunc("GET /account/signins", p.authed(p.signIns))
	mux.HandleFunc("GET /account/signins/{seq}/report", p.authed(p.confirmReport))
	mux.HandleFunc("POST /account/signins/{seq}/report", p.authed(p.report))
	return mux
}

// audit records a change the user made.
func (p *Page) audit(ctx context.Context, r *http.Request, user, action string, res store.AuditResult, reason string, details map[string]string) {
	_, err := p.d.Audit.Append(context.WithoutCancel(ctx), store.AuditEvent{
		Time: p.now(), Actor: "user:" + user, Action: action, Subject: user, Channel: Channel,
		ClientIP: p.d.Flow.ClientIP(r), Result: res, Reason: reason, Details: details,
	})
	if err != nil {
		p.log.ErrorContext(ctx, "audit append failed", "action", action, "user", user, "err", err)
	}
}

// fail answers an internal error; the detail goes to the log only.
func (p *Page) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.log.ErrorContext(r.Context(), "account page failed", "err", err)
	p.message(w, r, http.StatusInternalServerError, "account.error_title", "account.error_body")
}
