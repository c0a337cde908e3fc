package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
)

// Config is the runtime configuration of the browser sign-in.
type Config struct {
	// BaseURL is the public listener's URL; cookies are Secure when it is
	// https.
	BaseURL string
	// SessionLifetime is how long a browser session lets a later sign-in
	// skip the push (for applications that allow it); 0 disables sessions.
	SessionLifetime time.Duration
	// LoginTimeout is how long a sign-in page stays usable.
	LoginTimeout time.Duration
	// FailuresPerIP and FailuresPerUser bound failed sign-ins and codes
	// per 15 minutes.
	FailuresPerIP   int
	FailuresPerUser int
	Captcha         Captcha
	// Key signs CSRF tokens: 32 bytes, the same on every node.
	Key []byte
}

// Pusher is the push engine as the sign-in uses it.
type Pusher interface {
	Start(ctx context.Context, req pushauth.Request) (pushauth.Handle, error)
	Wait(ctx context.Context, id string) (pushauth.Outcome, error)
	Cancel(ctx context.Context, id, reason string) error
	// Resolve closes a push whose sign-in was completed another way (a
	// one-time code): it does not count towards the user's back-off.
	Resolve(ctx context.Context, id, reason string) error
	// DeviceQualifies reports whether a device is active and meets a
	// device-key policy (pushauth.Engine.DeviceQualifies): a browser
	// session stands in for a sign-in to an application with device_keys
	// hardware or attested only if the device that approved it does.
	DeviceQualifies(ctx context.Context, deviceID, policy string) bool
}

// CodeVerifier checks a one-time code (otp.TOTP).
type CodeVerifier interface {
	Verify(ctx context.Context, user, code string) error
}

// Auditor records audit events (a store.AuditBatcher).
type Auditor interface {
	Append(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Deps are the Flow's collaborators.
type Deps struct {
	Store store.Grants
	Push  Pusher
	// TOTP checks codes typed instead of approving; HasTOTP says whether
	// a user has a TOTP token (to offer the option). Either may be nil:
	// no code option.
	TOTP    CodeVerifier
	HasTOTP func(ctx context.Context, user string) (bool, error)
	Audit   Auditor
	// HTTPClient verifies CAPTCHA tokens; nil: a client with
	// Captcha.Timeout.
	HTTPClient *http.Client
	// ClientIP says where a request came from; nil: the peer address.
	ClientIP func(*http.Request) string
	Logger   *slog.Logger
	Now      func() time.Time

	// Limits counts failed sign-ins, shared by the nodes on the store;
	// nil means the store's counters if it has them, else memory.
	Limits *store.Limits
}

// App is an application users sign in to, as a front end describes it.
type App struct {
	ID        string
	Name      string // shown on the pages and the phone
	Channel   string // oidc, saml
	Directory directory.Directory
	// NumberMatching makes the user type the number shown on the waiting
	// page into the phone.
	NumberMatching bool
	// SessionReuse lets an existing browser session satisfy a sign-in
	// without a push.
	SessionReuse bool
	// Captcha always asks for a CAPTCHA on this application's sign-in.
	Captcha bool
	// DeviceKeys is the application's device-key policy
	// (pushauth.Request.DeviceKeys): "" or any, hardware, attested.
	DeviceKeys string
}

// Apps finds an application by channel and id; the Flow looks the
// application of a stored sign-in up on every request, so that a changed
// config applies.
type Apps func(channel, id string) (App, bool)

// Login is a sign-in a front end asks for.
type Login struct {
	App App
	// Fresh demands a new push even if a session exists (prompt=login,
	// ForceAuthn).
	Fresh bool
	// MaxAge, when set, is the oldest first sign-in a session may be
	// reused from (OIDC max_age).
	MaxAge    time.Duration
	HasMaxAge bool
	// LoginHint fills in the user name.
	LoginHint string
	// Return is the front end's path to come back to; the Flow adds
	// login={id}.
	Return string
}

// Result is a finished sign-in.
type Result struct {
	User        string    `json:"user"`
	DisplayName string    `json:"name,omitempty"`
	Email       string    `json:"email,omitempty"`
	Groups      []string  `json:"groups,omitempty"`
	Directory   string    `json:"dir"`
	AuthTime    time.Time `json:"auth_time"`
	// AMR lists the methods used (RFC 8176): pwd, otp, mfa, hwk or swk.
	AMR []string `json:"amr"`
	// DeviceID is the phone that approved, if one did.
	DeviceID string `json:"device,omitempty"`
	// Session is the browser session's id (a hash of its cookie), empty
	// when sessions are off.
	Session string `json:"session,omitempty"`
	// FromSession is set when an existing session satisfied the sign-in.
	FromSession bool `json:"from_session,omitempty"`
}

// MFA reports whether the result includes a second factor.
func (r Result) MFA() bool {
	for _, m := range r.AMR {
		if m == "mfa" {
			return true
		}
	}
	return false
}

// Errors Finish and SessionFor return.
var (
	// ErrNoLogin: no finished sign-in under that id for this browser.
	ErrNoLogin = errors.New("web: no finished sign-in")
	// ErrNoSession: no usable browser session.
	ErrNoSession = errors.New("web: no session")
)

// Flow runs browser sign-ins.
type Flow struct {
	cfg     Config
	d       Deps
	apps    Apps
	log     *slog.Logger
	now     func() time.Time
	secure  bool
	pages   *pages
	ipFails *failures
	usrFail *failures
	captcha *captchaVerifier
	// The cookies' names: with the __Host- prefix when served over TLS,
	// so that no sibling domain can plant them.
	bindingCookie, sessionCookie string
	// decoyTTL and decoyDigits make a decoy push last as long, and its
	// number as long, as a real one.
	decoyTTL    time.Duration
	decoyDigits int
}

// New builds a Flow.
func New(cfg Config, apps Apps, d Deps) (*Flow, error) {
	if d.Store == nil || d.Push == nil || d.Audit == nil || apps == nil {
		return nil, errors.New("web: store, push engine, auditor and applications are required")
	}
	if len(cfg.Key) < 32 {
		return nil, errors.New("web: a 32-byte key is required")
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = 10 * time.Minute
	}
	if cfg.FailuresPerIP <= 0 {
		cfg.FailuresPerIP = 20
	}
	if cfg.FailuresPerUser <= 0 {
		cfg.FailuresPerUser = 10
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.ClientIP == nil {
		d.ClientIP = peerIP
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("web: base URL: %w", err)
	}
	p, err := loadPages(cfg.Captcha)
	if err != nil {
		return nil, err
	}
	limits := flowLimits(d) // counters.go
	f := &Flow{
		cfg: cfg, d: d, apps: apps, log: d.Logger, now: d.Now,
		secure:  u.Scheme == "https",
		pages:   p,
		ipFails: &failures{limits, "web/ip/", cfg.FailuresPerIP, failureWindow, d.Logger},
		usrFail: &failures{limits, "web/user/", cfg.FailuresPerUser, failureWindow, d.Logger},
	}
	f.bindingCookie, f.sessionCookie = bindingCookieName, sessionCookieName
	if f.secure {
		f.bindingCookie, f.sessionCookie = "__Host-"+bindingCookieName, "__Host-"+sessionCookieName
	}
	if cfg.Captcha.Enabled() {
		f.captcha = newCaptchaVerifier(cfg.Captcha, d.HTTPClient)
	}
	f.decoyTTL, f.decoyDigits = pushauth.DefaultChallengeTTL, pushauth.DefaultNumberDigits
	if pc, ok := d.Push.(interface{ Config() pushauth.Config }); ok {
		if c := pc.Config(); c.ChallengeTTL > 0 && c.NumberDigits > 0 {
			f.decoyTTL, f.decoyDigits = c.ChallengeTTL, c.NumberDigits
		}
	}
	return f, nil
}

const (
	failureWindow = 15 * time.Minute
	// bindingCookieName ties a sign-in to the browser that started it;
	// front ends check it too (see Bind).
	bindingCookieName = "bridge_browser"
	sessionCookieName = "bridge_session"
)

// login is a sign-in as stored (store.GrantLogin, JSON).
type login struct {
	Channel   string        `json:"channel"`
	App       string        `json:"app"`
	Return    string        `json:"return"`
	Fresh     bool          `json:"fresh,omitempty"`
	MaxAge    time.Duration `json:"max_age,omitempty"`
	HasMaxAge bool          `json:"has_max_age,omitempty"`
	Hint      string        `json:"hint,omitempty"`
	// Binding is the hash of the browser's binding cookie.
	Binding string `json:"binding"`
	Step    string `json:"step"` // signin, push, code, done, failed
	// After the first factor.
	Identity *directory.Identity `json:"identity,omitempty"`
	Password bool                `json:"pwd,omitempty"`
	// Decoy is set for a passwordless sign-in of an unknown user (or one
	// without a phone): the waiting page is shown but nothing is pushed,
	// so the page does not tell who exists.
	Decoy     bool      `json:"decoy,omitempty"`
	Challenge string    `json:"challenge,omitempty"`
	Number    string    `json:"number,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	PushedAt  time.Time `json:"pushed_at,omitzero"`
	Resends   int       `json:"resends,omitempty"`
	// Sending is set while a "send again" is between counting itself
	// (Resends) and recording its push (Challenge).
	Sending bool   `json:"sending,omitempty"`
	HasCode bool   `json:"has_code,omitempty"`
	Failure string `json:"failure,omitempty"`
	// RetryAfter is when a rate-limited user may try again.
	RetryAfter time.Time `json:"retry_after,omitzero"`
	Result     *Result   `json:"result,omitempty"`
}

// Begin starts a sign-in for l and answers the browser: a redirect to the
// sign-in page, or straight back to l.Return when the browser's session
// satisfies l.
func (f *Flow) Begin(w http.ResponseWriter, r *http.Request, l Login) {
	ctx := r.Context()
	binding := f.binding(w, r)
	id, err := randomToken(16)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	st := login{
		Channel: l.App.Channel, App: l.App.ID, Return: l.Return, Fresh: l.Fresh,
		MaxAge: l.MaxAge, HasMaxAge: l.HasMaxAge, Hint: l.LoginHint,
		Binding: hashToken(binding), Step: "signin",
	}
	if res, ok := f.reusable(r, l); ok {
		st.Step, st.Result = "done", &res
		f.audit(ctx, r, l.App, res.User, store.ResultSuccess, "browser session", map[string]string{"amr": strings.Join(res.AMR, " ")})
	}
	if err := f.put(ctx, id, st); err != nil {
		f.fail(w, r, err)
		return
	}
	if st.Step == "done" {
		http.Redirect(w, r, returnURL(st.Return, id), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login/"+id, http.StatusSeeOther)
}

// reusable returns the browser session's result if it may stand in for
// a new sign-in to l.
func (f *Flow) reusable(r *http.Request, l Login) (Result, bool) {
	if !l.App.SessionReuse || l.Fresh || f.cfg.SessionLifetime <= 0 {
		return Result{}, false
	}
	res, err := f.SessionFor(r, l.App)
	if err != nil {
		return Result{}, false
	}
	if l.HasMaxAge && f.now().Sub(res.AuthTime) > l.MaxAge {
		return Result{}, false
	}
	if !f.SessionMeetsKeys(r.Context(), l.App, res) {
		return Result{}, false
	}
	res.FromSession = true
	return res, true
}

// SessionMeetsKeys reports whether a browser session (res, from
// SessionFor) may stand in for a sign-in to app under app's device-key
// policy: always under any; under hardware or attested only when a device
// approved the session and still qualifies (active, and of a kind the
// policy accepts). A session opened with a one-time code, or approved by a
// software key for a laxer application, does not; the user is asked
// again, on a qualifying device. Front ends that answer from a session
// without pages (OIDC prompt=none, SAML IsPassive) ask it too.
func (f *Flow) SessionMeetsKeys(ctx context.Context, app App, res Result) bool {
	if app.DeviceKeys == "" || app.DeviceKeys == pushauth.KeysAny {
		return true
	}
	return res.DeviceID != "" && f.d.Push != nil && f.d.Push.DeviceQualifies(ctx, res.DeviceID, app.DeviceKeys)
}

// stillValid looks the session's user up again: one disabled or removed
// since the session opened gets no single sign-on from it, and the
// claims handed on are current.
func (f *Flow) stillValid(ctx context.Context, app App, res *Result) bool {
	id, err := app.Directory.Lookup(ctx, res.User)
	if err != nil {
		return false
	}
	res.DisplayName, res.Email, res.Groups = id.DisplayName, id.Email, id.Groups
	return true
}

// SessionFor returns the browser's session if it exists and was opened
// with app's directory (ErrNoSession otherwise). It does not consider
// the app's SessionReuse or device-key policy (SessionMeetsKeys): that is
// for the caller (prompt=none, IsPassive) to decide; sign-out uses it to
// find the session whatever the policy.
func (f *Flow) SessionFor(r *http.Request, app App) (Result, error) {
	c, err := r.Cookie(f.sessionCookie)
	if err != nil || c.Value == "" {
		return Result{}, ErrNoSession
	}
	g, err := f.d.Store.GetGrant(r.Context(), store.GrantSession, hashToken(c.Value), f.now())
	if err != nil {
		return Result{}, ErrNoSession
	}
	var res Result
	if err := json.Unmarshal(g.Data, &res); err != nil {
		return Result{}, ErrNoSession
	}
	if app.Directory == nil || res.Directory != app.Directory.Name() || !f.stillValid(r.Context(), app, &res) {
		return Result{}, ErrNoSession
	}
	return res, nil
}

// Finish takes the result of the finished sign-in id, once: a second call
// returns ErrNoLogin, as does a sign-in started in another browser or one
// that was begun with another Return than ret (the front end's own
// request: a sign-in finished for one request is no good for another).
func (f *Flow) Finish(r *http.Request, id, ret string) (Result, error) {
	ctx := r.Context()
	st, err := f.get(r, id)
	if err != nil || st.Step != "done" || st.Result == nil || st.Return != ret {
		return Result{}, ErrNoLogin
	}
	if _, err := f.d.Store.ConsumeGrant(ctx, store.GrantLogin, id, f.now()); err != nil {
		return Result{}, ErrNoLogin
	}
	return *st.Result, nil
}

// EndSession ends the browser's session, if any, and returns whose it
// was.
func (f *Flow) EndSession(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(f.sessionCookie)
	f.clearCookie(w, f.sessionCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	var res Result
	if g, err := f.d.Store.GetGrant(r.Context(), store.GrantSession, hashToken(c.Value), f.now()); err == nil {
		_ = json.Unmarshal(g.Data, &res)
	}
	if err := f.d.Store.DeleteGrant(r.Context(), store.GrantSession, hashToken(c.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
		f.log.WarnContext(r.Context(), "ending browser session failed", "err", err)
	}
	return res.User
}

// EndSessionByID ends the session whose id a Result carries (SAML and
// OIDC logouts that arrive without the browser's cookie).
func (f *Flow) EndSessionByID(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	err := f.d.Store.DeleteGrant(ctx, store.GrantSession, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// sessionToken makes the cookie of a new browser session and names the
// session in res, before the result is stored: only the request that
// stores it (of several tabs continuing at once) then opens the session,
// so the session the result names is the browser's. "" when sessions
// are off.
func (f *Flow) sessionToken(r *http.Request, res *Result) string {
	if f.cfg.SessionLifetime <= 0 {
		return ""
	}
	tok, err := randomToken(32)
	if err != nil {
		f.log.ErrorContext(r.Context(), "opening browser session failed", "err", err)
		return ""
	}
	res.Session = hashToken(tok)
	return tok
}

// openSession stores res as the browser's session under tok (from
// sessionToken) and sets its cookie.
func (f *Flow) openSession(w http.ResponseWriter, r *http.Request, res Result, tok string) {
	if tok == "" {
		return
	}
	// A new sign-in replaces the browser's old session.
	if c, err := r.Cookie(f.sessionCookie); err == nil && c.Value != "" {
		_ = f.d.Store.DeleteGrant(r.Context(), store.GrantSession, hashToken(c.Value))
	}
	data, _ := json.Marshal(res)
	now := f.now()
	exp := res.AuthTime.Add(f.cfg.SessionLifetime)
	if err := f.d.Store.PutGrant(r.Context(), store.Grant{
		Kind: store.GrantSession, ID: res.Session, Subject: res.User, Data: data, CreatedAt: now, ExpiresAt: exp,
	}); err != nil {
		// The result names a session that does not exist: SessionFor
		// finds none, and ending it by id is a no-op.
		f.log.ErrorContext(r.Context(), "opening browser session failed", "err", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: f.sessionCookie, Value: tok, Path: "/", Expires: exp, HttpOnly: true, Secure: f.secure, SameSite: http.SameSiteLaxMode,
	})
}

// binding returns the browser's binding cookie, setting a new one if it
// has none.
func (f *Flow) binding(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(f.bindingCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return c.Value
	}
	v, _ := randomToken(32)
	http.SetCookie(w, &http.Cookie{Name: f.bindingCookie, Value: v, Path: "/", HttpOnly: true, Secure: f.secure, SameSite: http.SameSiteLaxMode})
	// Later steps of the same request (a front end's Bind, then Begin)
	// see the new cookie, not none.
	r.AddCookie(&http.Cookie{Name: f.bindingCookie, Value: v})
	return v
}

func (f *Flow) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: f.secure, SameSite: http.SameSiteLaxMode})
}

// get loads sign-in id if this browser started it.
func (f *Flow) get(r *http.Request, id string) (login, error) {
	var st login
	if !validID(id) {
		return st, store.ErrNotFound
	}
	c, err := r.Cookie(f.bindingCookie)
	if err != nil {
		return st, store.ErrNotFound
	}
	g, err := f.d.Store.GetGrant(r.Context(), store.GrantLogin, id, f.now())
	if err != nil {
		return st, err
	}
	if !g.UsedAt.IsZero() {
		return st, store.ErrUsed
	}
	if err := json.Unmarshal(g.Data, &st); err != nil {
		return st, fmt.Errorf("web: stored sign-in %s: %w", id, err)
	}
	if !hmac.Equal([]byte(st.Binding), []byte(hashToken(c.Value))) {
		return st, store.ErrNotFound
	}
	return st, nil
}

func (f *Flow) put(ctx context.Context, id string, st login) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	now := f.now()
	return f.d.Store.PutGrant(ctx, store.Grant{Kind: store.GrantLogin, ID: id, Data: data, CreatedAt: now, ExpiresAt: now.Add(f.cfg.LoginTimeout)})
}

// update changes sign-in id atomically; fn sees the stored state.
func (f *Flow) update(ctx context.Context, id string, fn func(*login) error) (login, error) {
	var out login
	_, err := f.d.Store.UpdateGrant(ctx, store.GrantLogin, id, f.now(), func(g store.Grant) (store.Grant, error) {
		if !g.UsedAt.IsZero() {
			return g, store.ErrUsed
		}
		var st login
		if err := json.Unmarshal(g.Data, &st); err != nil {
			return g, err
		}
		if err := fn(&st); err != nil {
			return g, err
		}
		data, err := json.Marshal(st)
		if err != nil {
			return g, err
		}
		g.Data, out = data, st
		if st.Subject() != "" {
			g.Subject = st.Subject()
		}
		return g, nil
	})
	return out, err
}

// resending reports whether a "send again" is between counting itself
// and recording its push: the recorded push is being replaced, and what
// happens to it ends nothing.
func (l *login) resending() bool { return l.Sending }

// attempt numbers the push that Challenge (or the decoy) records: the
// one the waiting page shows, and its script and continue form name.
func (l *login) attempt() int {
	if l.Sending {
		return l.Resends - 1
	}
	return l.Resends
}

// Subject is the user a sign-in is about, once known.
func (l *login) Subject() string {
	if l.Identity != nil {
		return l.Identity.Username
	}
	return ""
}

// csrf is the token a sign-in's forms carry: bound to the sign-in and to
// the browser's binding cookie.
func (f *Flow) csrf(id, binding string) string {
	m := hmac.New(sha256.New, f.cfg.Key)
	m.Write([]byte("bridge web csrf v1\x00" + id + "\x00" + binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (f *Flow) checkCSRF(r *http.Request, id string, st login) bool {
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(f.csrf(id, st.Binding)))
}

func returnURL(ret, id string) string {
	sep := "?"
	if strings.Contains(ret, "?") {
		sep = "&"
	}
	return ret + sep + "login=" + url.QueryEscape(id)
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashToken(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// validID accepts what randomToken(16) makes.
func validID(id string) bool {
	if len(id) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (f *Flow) audit(ctx context.Context, r *http.Request, app App, user string, res store.AuditResult, reason string, details map[string]string) {
	if details == nil {
		details = map[string]string{}
	}
	details["application"] = app.ID
	if ua := userAgent(r); ua != "" {
		details["user_agent"] = ua
	}
	_, err := f.d.Audit.Append(ctx, store.AuditEvent{
		Time: f.now(), Actor: "user:" + user, Action: "login", Subject: user, Channel: app.Channel,
		ClientIP: f.d.ClientIP(r), Result: res, Reason: reason, Details: details,
	})
	if err != nil {
		f.log.ErrorContext(ctx, "audit append failed", "err", err)
	}
}
