package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/net/html"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/directory/none"
	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/otp"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
)

// The password of every test user.
const password = "correct horse battery"

// env is a bridge node with the browser sign-in: a SQLite store, local
// users, the push engine serving the device API over real HTTP (phones
// are reference authenticators), TOTP, and the Flow mounted on an HTTP
// server beside a tiny front end of the test's own (/app/...) that hands
// sign-ins to the Flow and takes their results, as the OIDC and SAML
// front ends do. One stopped clock drives the Flow, the engine, TOTP and
// the phones.
type env struct {
	t      testing.TB
	ctx    context.Context
	clock  *testenv.Clock
	st     store.Store
	sealer *keys.Sealer
	keys   *keys.Manager
	state  *memstate.State
	eng    *pushauth.Engine
	devURL string // the device API
	audit  *store.AuditBatcher
	totp   *otp.TOTP

	local  *countingDir // "local": password
	other  *countingDir // "other": the same users, another directory
	pwless *countingDir // "push-only": passwordless over local

	cfg  Config
	flow *Flow
	srv  *httptest.Server
	base string

	mu   sync.Mutex
	apps map[string]App
}

// Test applications (channel oidc).
const (
	appPortal  = "portal"  // local directory, session reuse
	appNumbers = "numbers" // local directory, number matching
	appNoReuse = "noreuse" // local directory, no session reuse
	appOther   = "otherdir"
	appPwless  = "pwless" // passwordless, number matching
	appCaptcha = "captcha"
	appHWKeys  = "hwkeys" // device_keys hardware
	appPwlHW   = "pwlhw"  // passwordless, device_keys hardware
)

// envSetup is what options may change before the env is built.
type envSetup struct {
	cfg    Config
	engine pushauth.Config
	noTOTP bool
	// https makes BaseURL https (the server stays plain HTTP).
	https bool
	// wrapPush, when set, stands between the Flow and the engine.
	wrapPush func(Pusher) Pusher
}

type envOption func(*envSetup)

func withConfig(fn func(*Config)) envOption { return func(s *envSetup) { fn(&s.cfg) } }

func withPusher(wrap func(Pusher) Pusher) envOption { return func(s *envSetup) { s.wrapPush = wrap } }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testIPHeader lets a test browser say which address it comes from (as a
// proxy's header would); the default is the peer address.
const testIPHeader = "X-Test-Client-IP"

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	clock := testenv.NewClock(time.Now().Truncate(time.Second))
	e := &env{t: t, ctx: ctx, clock: clock, apps: map[string]App{}}
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db"), AuditKey: storetest.AuditKey()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	kek := make([]byte, 32)
	copy(kek, "web test key-encryption key 32b!")
	if e.sealer, err = keys.NewSealer(kek); err != nil {
		t.Fatal(err)
	}
	e.keys, err = keys.Open(ctx, st, e.sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposePush, Algorithm: keys.AlgEdDSA}}, Now: clock.Now}, discard())
	if err != nil {
		t.Fatal(err)
	}

	s := envSetup{
		cfg: Config{SessionLifetime: 8 * time.Hour, Key: []byte("web test CSRF key, 32 bytes long")},
		// The engine's defaults for back-off and challenge lifetime:
		// the Flow must work with them.
		engine: pushauth.Config{MaxPerHour: 1000, MaxPerIPMinute: 1000},
	}
	for _, o := range opts {
		o(&s)
	}

	dev := httptest.NewUnstartedServer(nil)
	e.devURL = "http://" + dev.Listener.Addr().String()
	e.audit = store.NewAuditBatcher(st, discard())
	e.state = memstate.New()
	s.engine.BaseURL = e.devURL
	e.eng, err = pushauth.New(s.engine, pushauth.Deps{
		Store: st, State: e.state, Keys: e.keys, ActivationKey: e.sealer.DeriveKey(pushauth.ActivationKeyLabel),
		Audit: e.audit, Now: clock.Now, Logger: discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	dev.Config.Handler = e.eng.Handler(nil)
	dev.Start()
	// Cleanups run last-in first-out: the web server (below) closes
	// first, then the device API, the engine and the audit log.
	t.Cleanup(func() { dev.Close(); e.eng.Close(); e.audit.Close() })

	if e.totp, err = otp.NewTOTP(st, e.sealer, otp.DefaultTOTPConfig("Bridge"), clock.Now); err != nil {
		t.Fatal(err)
	}
	argon := local.Argon2{Time: 1, MemoryKiB: local.MinMemoryKiB, Threads: 1}
	ld, err := local.Open("local", st, argon, discard())
	if err != nil {
		t.Fatal(err)
	}
	od, err := local.Open("other", st, argon, discard())
	if err != nil {
		t.Fatal(err)
	}
	nd, err := none.Open("push-only", ld)
	if err != nil {
		t.Fatal(err)
	}
	e.local, e.other, e.pwless = &countingDir{Directory: ld}, &countingDir{Directory: od}, &countingDir{Directory: nd}
	hash, err := local.HashPassword(argon, password)
	if err != nil {
		t.Fatal(err)
	}
	var users []store.User
	for _, u := range []struct {
		name   string
		status store.UserStatus
	}{{"alice", store.UserActive}, {"bob", store.UserActive}, {"carol", store.UserActive}, {"dave", store.UserActive}, {"erin", store.UserDisabled}} {
		users = append(users, store.User{Name: u.name, DisplayName: strings.ToUpper(u.name[:1]) + u.name[1:], Email: u.name + "@example.com",
			Groups: []string{"staff"}, Status: u.status, PasswordHash: hash})
	}
	if err := st.CreateUsers(ctx, users...); err != nil {
		t.Fatal(err)
	}

	for _, a := range []App{
		{ID: appPortal, Name: "Portal", Directory: e.local, SessionReuse: true},
		{ID: appNumbers, Name: "Payroll", Directory: e.local, NumberMatching: true, SessionReuse: true},
		{ID: appNoReuse, Name: "Admin console", Directory: e.local},
		{ID: appOther, Name: "Other", Directory: e.other, SessionReuse: true},
		{ID: appPwless, Name: "Kiosk", Directory: e.pwless, NumberMatching: true, SessionReuse: true},
		{ID: appCaptcha, Name: "Public", Directory: e.local, Captcha: true},
		{ID: appHWKeys, Name: "Vault", Directory: e.local, DeviceKeys: pushauth.KeysHardware, SessionReuse: true},
		{ID: appPwlHW, Name: "Door", Directory: e.pwless, DeviceKeys: pushauth.KeysHardware},
	} {
		a.Channel = "oidc"
		e.apps[a.ID] = a
	}

	web := httptest.NewUnstartedServer(nil)
	e.base = "http://" + web.Listener.Addr().String()
	s.cfg.BaseURL = e.base
	if s.https {
		s.cfg.BaseURL = "https://" + web.Listener.Addr().String()
	}
	e.cfg = s.cfg
	deps := Deps{
		Store: st, Push: e.eng, Audit: e.audit, Now: clock.Now, Logger: discard(),
		ClientIP: func(r *http.Request) string {
			if ip := r.Header.Get(testIPHeader); ip != "" {
				return ip
			}
			return peerIP(r)
		},
	}
	if !s.noTOTP {
		deps.TOTP, deps.HasTOTP = e.totp, e.totp.Has
	}
	if s.wrapPush != nil {
		deps.Push = s.wrapPush(e.eng)
	}
	if e.flow, err = New(s.cfg, e.lookupApp, deps); err != nil {
		t.Fatal(err)
	}
	web.Config.Handler = e.handler()
	web.Start()
	e.srv = web
	t.Cleanup(web.Close)
	return e
}

func (e *env) lookupApp(channel, id string) (App, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.apps[id]
	if !ok || a.Channel != channel {
		return App{}, false
	}
	return a, true
}

// handler is the Flow's pages beside the test's front end:
//
//	GET  /app/start?app=&fresh=1&max_age=&hint=  Begin, returning to /app/done
//	GET  /app/done?login=                        Finish, the Result as JSON
//	GET  /app/session?app=                       SessionFor, as JSON
//	POST /app/logout                             EndSession, the user
func (e *env) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", e.flow.Handler()) // its pages and their assets, wherever it serves them
	mux.HandleFunc("GET /app/start", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		app, ok := e.lookupApp("oidc", q.Get("app"))
		if !ok {
			http.Error(w, "no such app", http.StatusNotFound)
			return
		}
		l := Login{App: app, Fresh: q.Get("fresh") != "", LoginHint: q.Get("hint"), Return: doneFor(q.Get("for"))}
		if ma := q.Get("max_age"); ma != "" {
			d, err := time.ParseDuration(ma)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			l.MaxAge, l.HasMaxAge = d, true
		}
		e.flow.Begin(w, r, l)
	})
	mux.HandleFunc("GET /app/done", func(w http.ResponseWriter, r *http.Request) {
		res, err := e.flow.Finish(r, r.URL.Query().Get("login"), doneFor(r.URL.Query().Get("for")))
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(frontEndError{Error: err.Error(), NoLogin: errors.Is(err, ErrNoLogin)})
			return
		}
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("GET /app/session", func(w http.ResponseWriter, r *http.Request) {
		app, _ := e.lookupApp("oidc", r.URL.Query().Get("app"))
		res, err := e.flow.SessionFor(r, app)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(frontEndError{Error: err.Error(), NoSession: errors.Is(err, ErrNoSession)})
			return
		}
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("POST /app/logout", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, e.flow.EndSession(w, r))
	})
	return mux
}

type frontEndError struct {
	Error     string `json:"error"`
	NoLogin   bool   `json:"no_login,omitempty"`
	NoSession bool   `json:"no_session,omitempty"`
}

// countingDir is a directory that counts the checks made of it.
type countingDir struct {
	directory.Directory
	auths, lookups atomic.Int64
}

func (d *countingDir) Authenticate(ctx context.Context, user, pw string) (directory.Identity, error) {
	d.auths.Add(1)
	return d.Directory.Authenticate(ctx, user, pw)
}

func (d *countingDir) Lookup(ctx context.Context, user string) (directory.Identity, error) {
	d.lookups.Add(1)
	return d.Directory.Lookup(ctx, user)
}

func (d *countingDir) NeedsPassword() bool { return directory.RequiresPassword(d.Directory) }

func (d *countingDir) checks() int64 { return d.auths.Load() + d.lookups.Load() }

// ---- phones ----

// enroll enrolls a reference authenticator (long-poll only) for user.
func (e *env) enroll(user string, posture map[string]bool) *authenticator.Device {
	e.t.Helper()
	act, _, err := pushauth.Activator{
		Store: e.st, Keys: e.keys, HMACKey: e.sealer.DeriveKey(pushauth.ActivationKeyLabel), BaseURL: e.devURL, Now: e.clock.Now,
	}.Create(e.ctx, user, "test", "")
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := authenticator.Enroll(e.ctx, act.String(), authenticator.EnrollOptions{Name: user + "'s phone", Posture: posture, Now: e.clock.Now})
	if err != nil {
		e.t.Fatalf("enroll: %v", err)
	}
	return d
}

// pending is what the phone lists as pending right now.
func (e *env) pending(d *authenticator.Device) []authenticator.Challenge {
	e.t.Helper()
	cs, err := d.Pending(e.ctx, 0)
	if err != nil {
		e.t.Fatalf("pending: %v", err)
	}
	var out []authenticator.Challenge
	for _, c := range cs {
		if c.State == "pending" {
			out = append(out, c)
		}
	}
	return out
}

// challenge returns the phone's one pending challenge; the Flow starts
// the push before it answers, so it must be there.
func (e *env) challenge(d *authenticator.Device) authenticator.Challenge {
	e.t.Helper()
	cs := e.pending(d)
	if len(cs) != 1 {
		e.t.Fatalf("the phone has %d pending challenges, want 1", len(cs))
	}
	return cs[0]
}

// answer answers c on the phone and returns the state the server recorded.
func (e *env) answer(d *authenticator.Device, c authenticator.Challenge, decision, number string) string {
	e.t.Helper()
	st, err := d.Answer(e.ctx, c, decision, number)
	if err != nil {
		e.t.Fatalf("answer %s: %v", decision, err)
	}
	return st
}

// challengeState is how the engine recorded challenge id.
func (e *env) challengeState(id string) store.ChallengeState {
	e.t.Helper()
	c, err := e.state.GetChallenge(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.State
}

// totpCode enrolls a TOTP token for user and returns a function giving
// the code of a time.
func (e *env) totpCode(user string) func(time.Time) string {
	e.t.Helper()
	en, err := e.totp.Enroll(e.ctx, user)
	if err != nil {
		e.t.Fatal(err)
	}
	return func(at time.Time) string {
		c, err := totp.GenerateCode(en.Secret, at)
		if err != nil {
			e.t.Fatal(err)
		}
		return c
	}
}

// audited lists the audit events with action about subject.
func (e *env) audited(action, subject string) []store.AuditEvent {
	e.t.Helper()
	evs, err := e.st.ListAudit(e.ctx, 0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.AuditEvent
	for _, ev := range evs {
		if ev.Action == action && ev.Subject == subject {
			out = append(out, ev)
		}
	}
	return out
}

// pushesStarted counts the push challenges started for user.
func (e *env) pushesStarted(user string) int {
	e.t.Helper()
	n := 0
	for _, ev := range e.audited("push.start", user) {
		if ev.Result == store.ResultSuccess {
			n++
		}
	}
	return n
}

// grant reads a stored grant (zero and false if there is none).
func (e *env) grant(kind, id string) (store.Grant, bool) {
	e.t.Helper()
	g, err := e.st.GetGrant(e.ctx, kind, id, e.clock.Now())
	if errors.Is(err, store.ErrNotFound) {
		return store.Grant{}, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return g, true
}

// ---- browsers ----

// browser is a web browser: its own cookies, no JavaScript (the tests
// play the waiting page's script by hand).
type browser struct {
	e      *env
	t      testing.TB
	jar    *recordingJar
	client *http.Client
	ip     string // sent as testIPHeader when set
	ua     string
	lang   string
}

func (e *env) browser() *browser {
	jar := &recordingJar{cookies: map[string]*http.Cookie{}}
	return &browser{e: e, t: e.t, jar: jar, client: &http.Client{Jar: jar}, ua: "Mozilla/5.0 (test browser)"}
}

// noRedirects returns a copy of b (same cookies) that does not follow
// redirects.
func (b *browser) noRedirects() *browser {
	c := *b
	c.client = &http.Client{Jar: b.jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &c
}

// recordingJar keeps one cookie per name (every test page is one origin)
// and records every cookie set, with its attributes. Unlike
// net/http/cookiejar it also sends Secure cookies over plain HTTP, so a
// Flow configured for https can be driven over the test server.
type recordingJar struct {
	mu      sync.Mutex
	cookies map[string]*http.Cookie
	set     []*http.Cookie
}

func (j *recordingJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		j.set = append(j.set, c)
		if c.MaxAge < 0 || c.Value == "" {
			delete(j.cookies, c.Name)
			continue
		}
		j.cookies[c.Name] = c
	}
}

func (j *recordingJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func (j *recordingJar) get(name string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if c := j.cookies[name]; c != nil {
		return c.Value
	}
	return ""
}

func (j *recordingJar) put(name, value string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cookies[name] = &http.Cookie{Name: name, Value: value}
}

func (j *recordingJar) recorded() []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.set)
}

// page is a response as the browser saw it.
type page struct {
	t      testing.TB
	status int
	url    *url.URL // after redirects
	header http.Header
	body   string
	doc    *html.Node // for HTML
}

func (b *browser) request(method, path string, form url.Values) *http.Request {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.e.ctx, method, b.e.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.ip != "" {
		req.Header.Set(testIPHeader, b.ip)
	}
	if b.ua != "" {
		req.Header.Set("User-Agent", b.ua)
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	return req
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := &page{t: b.t, status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(data)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.body)); err != nil {
			b.t.Fatal(err)
		}
	}
	return p
}

func (b *browser) get(path string) *page {
	b.t.Helper()
	return b.do(b.request(http.MethodGet, path, nil))
}

func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return b.do(b.request(http.MethodPost, path, form))
}

// begin starts a sign-in to app at the front end (query: more of
// /app/start's parameters) and returns the sign-in's id and the page the
// browser landed on.
func (b *browser) begin(app string, query ...string) (string, *page) {
	b.t.Helper()
	q := url.Values{"app": {app}}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	p := b.get("/app/start?" + q.Encode())
	switch {
	case strings.HasPrefix(p.url.Path, "/login/"):
		return strings.TrimPrefix(p.url.Path, "/login/"), p
	case p.url.Path == "/app/done":
		return p.url.Query().Get("login"), p
	}
	b.t.Fatalf("begin: landed on %s (%d)", p.url, p.status)
	return "", nil
}

// signIn posts the sign-in form of p (a sign-in page) with user and pw.
func (b *browser) signIn(id string, p *page, user, pw string) *page {
	b.t.Helper()
	f := url.Values{"csrf": {p.csrf()}, "username": {user}}
	if pw != "" {
		f.Set("password", pw)
	}
	return b.post("/login/"+id, f)
}

// start begins a sign-in to app and signs in as user; it returns the id
// and the waiting page.
func (b *browser) start(app, user string) (string, *page) {
	b.t.Helper()
	id, p := b.begin(app)
	p.want(http.StatusOK, "signin")
	w := b.signIn(id, p, user, password)
	w.want(http.StatusOK, "wait")
	return id, w
}

// continueLogin posts the waiting page's "continue" form.
func (b *browser) continueLogin(id string, p *page) *page {
	b.t.Helper()
	f := url.Values{"csrf": {p.csrf()}}
	if in := p.input("attempt"); in != nil {
		f.Set("attempt", attr(in, "value"))
	}
	return b.post("/login/"+id+"/continue", f)
}

// result is the Result the front end got from Finish on page p (the
// front end's /app/done).
func (p *page) result() Result {
	p.t.Helper()
	if p.url.Path != "/app/done" || p.status != http.StatusOK {
		p.t.Fatalf("not back at the front end with a result: %s (%d): %s", p.url, p.status, p.text())
	}
	var r Result
	if err := json.Unmarshal([]byte(p.body), &r); err != nil {
		p.t.Fatal(err)
	}
	return r
}

// events opens the sign-in's event stream and sends what it reads, line
// by line, until the stream ends; the channel is closed then.
func (b *browser) events(ctx context.Context, id string) (*http.Response, <-chan string) {
	b.t.Helper()
	return b.eventsAt(ctx, "/login/"+id+"/events")
}

// eventsAt is events at path (with the query a page's script adds).
func (b *browser) eventsAt(ctx context.Context, path string) (*http.Response, <-chan string) {
	b.t.Helper()
	req := b.request(http.MethodGet, path, nil).WithContext(ctx)
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return resp, lines
}

// ---- pages ----

// kind tells the Flow's pages apart by their forms: signin, wait, code,
// failed, message; "" for what is not an HTML page.
func (p *page) kind() string {
	if p.doc == nil {
		return ""
	}
	switch {
	case p.find(func(n *html.Node) bool { return attr(n, "id") == "waiting" }) != nil:
		return "wait"
	case p.input("username") != nil:
		return "signin"
	case p.input("code") != nil:
		return "code"
	case p.find(func(n *html.Node) bool { return n.Data == "form" && strings.HasSuffix(attr(n, "action"), "/restart") }) != nil:
		return "failed"
	}
	return "message"
}

// want fails the test unless p has status and is a page of kind.
func (p *page) want(status int, kind string) {
	p.t.Helper()
	if p.status != status || p.kind() != kind {
		p.t.Fatalf("got %s page with status %d at %s, want %s page with %d: %s", p.kind(), p.status, p.url, kind, status, p.text())
	}
}

func (p *page) findAll(pred func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && pred(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if p.doc != nil {
		walk(p.doc)
	}
	return out
}

func (p *page) find(pred func(*html.Node) bool) *html.Node {
	if all := p.findAll(pred); len(all) > 0 {
		return all[0]
	}
	return nil
}

func (p *page) input(name string) *html.Node {
	return p.find(func(n *html.Node) bool { return n.Data == "input" && attr(n, "name") == name })
}

// csrf is the page's CSRF token; every form on a page carries the same.
func (p *page) csrf() string {
	p.t.Helper()
	in := p.input("csrf")
	if in == nil {
		p.t.Fatalf("no csrf input on the %s page at %s", p.kind(), p.url)
	}
	return attr(in, "value")
}

// number is the number the waiting page shows, "" for none.
func (p *page) number() string {
	n := p.find(func(n *html.Node) bool { return attr(n, "data-testid") == "number" })
	if n == nil {
		return ""
	}
	return strings.TrimSpace(textOf(n))
}

// errorText is the text of the form's error, "" for none.
func (p *page) errorText() string {
	n := p.find(func(n *html.Node) bool { return slices.Contains(strings.Fields(attr(n, "class")), "error") })
	if n == nil {
		return ""
	}
	return strings.TrimSpace(textOf(n))
}

// heading is the text of the page's h1.
func (p *page) heading() string {
	if n := p.find(func(n *html.Node) bool { return n.Data == "h1" }); n != nil {
		return strings.TrimSpace(textOf(n))
	}
	return ""
}

// links are the hrefs of the page's links.
func (p *page) links() []string {
	var out []string
	for _, n := range p.findAll(func(n *html.Node) bool { return n.Data == "a" }) {
		out = append(out, attr(n, "href"))
	}
	return out
}

// actions are the actions of the page's forms.
func (p *page) actions() []string {
	var out []string
	for _, n := range p.findAll(func(n *html.Node) bool { return n.Data == "form" }) {
		out = append(out, attr(n, "action"))
	}
	return out
}

// text is the page's text (its body for what is not HTML).
func (p *page) text() string {
	if p.doc == nil {
		return p.body
	}
	return strings.Join(strings.Fields(textOf(p.doc)), " ")
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style" || n.Data == "head") {
			return
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteString(" ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// en is the English string of key.
func en(t testing.TB, key string) string {
	t.Helper()
	data, err := localeFS.ReadFile("locales/en.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	s, ok := m[key]
	if !ok {
		t.Fatalf("no string %q in en.json", key)
	}
	return s
}

// wrongNumber is a number of the same length that is not n.
func wrongNumber(n string) string {
	b := []byte(n)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
	return string(b)
}

// doneFor is the fake front end's Return for its request "for" (as an
// OIDC front end names its authorization request in Return).
func doneFor(req string) string {
	if req == "" {
		return "/app/done"
	}
	return "/app/done?for=" + url.QueryEscape(req)
}
