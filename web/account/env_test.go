package account

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
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
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
	"github.com/bridge-idp/bridge/web"
)

const password = "correct horse battery"

// env is a node with the browser sign-in and the account page on one
// HTTP server, the push engine's device API on another (the phones are
// reference authenticators), TOTP, and one stopped clock for all.
type env struct {
	t      *testing.T
	ctx    context.Context
	clock  *testenv.Clock
	st     store.Store
	keys   *keys.Manager
	sealer *keys.Sealer
	eng    *pushauth.Engine
	state  *memstate.State
	audit  *store.AuditBatcher
	totp   *otp.TOTP
	devURL string
	base   string
	page   *Page
	act    pushauth.Activator
}

type envOptions struct {
	selfEnrollment bool
	deviceKeys     string // Config.DeviceKeys
	passwordless   bool
	https          bool
	// webhook is the fraud webhook's URL.
	webhook string
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, ctx: ctx, clock: testenv.NewClock(time.Now().Truncate(time.Second))}
	discard := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db"), AuditKey: storetest.AuditKey()}, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	if e.sealer, err = keys.NewSealer([]byte("account test key-encryption key!")); err != nil {
		t.Fatal(err)
	}
	if e.keys, err = keys.Open(ctx, st, e.sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposePush, Algorithm: keys.AlgEdDSA}}, Now: e.clock.Now}, discard); err != nil {
		t.Fatal(err)
	}
	dev := httptest.NewUnstartedServer(nil)
	e.devURL = "http://" + dev.Listener.Addr().String()
	e.audit = store.NewAuditBatcher(st, discard)
	e.state = memstate.New()
	e.eng, err = pushauth.New(pushauth.Config{BaseURL: e.devURL, MaxPerHour: 1000, MaxPerIPMinute: 1000,
		FraudWebhook: pushauth.Webhook{URL: o.webhook, Timeout: 5 * time.Second}}, pushauth.Deps{
		Store: st, State: e.state, Keys: e.keys, ActivationKey: e.sealer.DeriveKey(pushauth.ActivationKeyLabel),
		Audit: e.audit, Now: e.clock.Now, Logger: discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	dev.Config.Handler = e.eng.Handler(nil)
	dev.Start()
	t.Cleanup(func() { dev.Close(); e.eng.Close(); e.audit.Close() })
	if e.totp, err = otp.NewTOTP(st, e.sealer, otp.DefaultTOTPConfig("Bridge"), e.clock.Now); err != nil {
		t.Fatal(err)
	}
	argon := local.Argon2{Time: 1, MemoryKiB: local.MinMemoryKiB, Threads: 1}
	var dir directory.Directory
	if dir, err = local.Open("local", st, argon, discard); err != nil {
		t.Fatal(err)
	}
	if o.passwordless {
		if dir, err = none.Open("push-only", dir.(directory.Looker)); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := local.HashPassword(argon, password)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alice", "bob"} {
		if err := st.CreateUsers(ctx, store.User{Name: n, Status: store.UserActive, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}

	srv := httptest.NewUnstartedServer(nil)
	e.base = "http://" + srv.Listener.Addr().String()
	base := e.base
	if o.https {
		base = "https://" + srv.Listener.Addr().String()
	}
	app := App("Bridge", dir)
	apps := func(channel, id string) (web.App, bool) { return app, channel == Channel && id == AppID }
	flow, err := web.New(web.Config{BaseURL: base, Key: []byte("account test CSRF key, 32 bytes!")}, apps, web.Deps{
		Store: st, Push: e.eng, TOTP: e.totp, HasTOTP: e.totp.Has, Audit: e.audit, Now: e.clock.Now, Logger: discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.act = pushauth.Activator{Store: st, Keys: e.keys, HMACKey: e.sealer.DeriveKey(pushauth.ActivationKeyLabel), BaseURL: e.devURL, Now: e.clock.Now}
	e.page, err = New(Config{SelfEnrollment: o.selfEnrollment, DeviceKeys: o.deviceKeys}, Deps{Flow: flow, App: app, Store: st, Activator: e.act, Fraud: e.eng, Audit: e.audit, Now: e.clock.Now, Logger: discard,
		AppName: func(channel, id string) string {
			if a, ok := apps(channel, id); ok {
				return a.Name
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", flow.Handler())
	mux.Handle("/account", e.page.Handler())
	mux.Handle("/account/", e.page.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

// enroll enrolls a reference authenticator for user.
func (e *env) enroll(user string) *authenticator.Device {
	e.t.Helper()
	return e.enrollWith(user, nil)
}

// enrollWith enrolls a reference authenticator with posture signals.
func (e *env) enrollWith(user string, posture map[string]bool) *authenticator.Device {
	e.t.Helper()
	act, _, err := e.act.Create(e.ctx, user, "test", "")
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := authenticator.Enroll(e.ctx, act.String(), authenticator.EnrollOptions{Name: user + "'s phone", Posture: posture, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// totpCode gives user a TOTP token and returns its current code maker.
func (e *env) totpCode(user string) func() string {
	e.t.Helper()
	en, err := e.totp.Enroll(e.ctx, user)
	if err != nil {
		e.t.Fatal(err)
	}
	return func() string {
		e.clock.Add(30 * time.Second) // a new time step: codes are single use
		c, err := totp.GenerateCode(en.Secret, e.clock.Now())
		if err != nil {
			e.t.Fatal(err)
		}
		return c
	}
}

// audited lists the audit events of action about user.
func (e *env) audited(action, user string) []store.AuditEvent {
	e.t.Helper()
	evs, err := e.st.ListAuditBySubject(e.ctx, user, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.AuditEvent
	for _, ev := range evs {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// browser keeps cookies (all of them, Secure ones over plain HTTP too)
// and follows redirects.
type browser struct {
	e      *env
	mu     sync.Mutex
	jar    map[string]*http.Cookie
	set    []*http.Cookie
	client *http.Client
}

func (e *env) browser() *browser {
	b := &browser{e: e, jar: map[string]*http.Cookie{}}
	b.client = &http.Client{Jar: b}
	return b
}

func (b *browser) SetCookies(_ *url.URL, cs []*http.Cookie) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		b.set = append(b.set, c)
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.jar, c.Name)
		} else {
			b.jar[c.Name] = c
		}
	}
}

func (b *browser) Cookies(*url.URL) []*http.Cookie {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*http.Cookie
	for _, c := range b.jar {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

// page is a response as the browser saw it.
type page struct {
	t      *testing.T
	status int
	url    *url.URL
	body   string
	header http.Header
	doc    *html.Node
}

func (b *browser) do(method, path string, form url.Values) *page {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.base+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	p := &page{t: b.e.t, status: resp.StatusCode, url: resp.Request.URL, body: string(data), header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.body)); err != nil {
			b.e.t.Fatal(err)
		}
	}
	return p
}

func (b *browser) get(path string) *page { b.e.t.Helper(); return b.do(http.MethodGet, path, nil) }

func (b *browser) post(path string, form url.Values) *page {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return b.do(http.MethodPost, path, form)
}

// startSignIn opens /account/signin and signs in with the password; it
// returns the sign-in's id and the page that follows (waiting or code).
func (b *browser) startSignIn(user string) (string, *page) {
	b.e.t.Helper()
	p := b.get("/account/signin")
	if !strings.HasPrefix(p.url.Path, "/login/") || p.input("username") == nil {
		b.e.t.Fatalf("/account/signin led to %s: %s", p.url, p.text())
	}
	id := strings.TrimPrefix(p.url.Path, "/login/")
	f := url.Values{"csrf": {p.csrf()}, "username": {user}}
	if p.input("password") != nil {
		f.Set("password", password)
	}
	return id, b.post("/login/"+id, f)
}

// signInWithPush signs in to the account page as user, approving on
// phone with the number shown; it returns the page it ends on.
func (b *browser) signInWithPush(user string, phone *authenticator.Device) *page {
	b.e.t.Helper()
	id, w := b.startSignIn(user)
	n := w.find(func(n *html.Node) bool { return attr(n, "data-testid") == "number" })
	if n == nil {
		b.e.t.Fatalf("no number on the waiting page: %s", w.text())
	}
	cs, err := phone.Pending(b.e.ctx, 0)
	if err != nil || len(cs) != 1 {
		b.e.t.Fatalf("the phone has %d challenges (%v)", len(cs), err)
	}
	if _, err := phone.Answer(b.e.ctx, cs[0], protocol.Approve, textOf(n)); err != nil {
		b.e.t.Fatal(err)
	}
	f := url.Values{"csrf": {w.csrf()}}
	if in := w.input("attempt"); in != nil {
		f.Set("attempt", attr(in, "value"))
	}
	return b.post("/login/"+id+"/continue", f)
}

// signInWithCode signs in to the account page as user with a TOTP code
// (a user without a device lands on the code page).
func (b *browser) signInWithCode(user string, code func() string) *page {
	b.e.t.Helper()
	id, p := b.startSignIn(user)
	if p.input("code") == nil {
		p = b.get("/login/" + id + "/code")
	}
	if p.input("code") == nil {
		b.e.t.Fatalf("no code page: %s", p.text())
	}
	return b.post("/login/"+id+"/code", url.Values{"csrf": {p.csrf()}, "code": {code()}})
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

func (p *page) csrf() string {
	p.t.Helper()
	in := p.input("csrf")
	if in == nil {
		p.t.Fatalf("no csrf input on %s: %s", p.url, p.text())
	}
	return attr(in, "value")
}

func (p *page) heading() string {
	if h := p.find(func(n *html.Node) bool { return n.Data == "h1" }); h != nil {
		return textOf(h)
	}
	return ""
}

// devices lists the ids of the devices the page shows.
func (p *page) devices() []string {
	var ids []string
	for _, n := range p.findAll(func(n *html.Node) bool { return n.Data == "li" && hasClass(n, "device") }) {
		ids = append(ids, attr(n, "data-device"))
	}
	return ids
}

// form returns the form posting to action, or nil.
func (p *page) form(action string) *html.Node {
	return p.find(func(n *html.Node) bool { return n.Data == "form" && attr(n, "action") == action })
}

func (p *page) text() string {
	if p.doc == nil {
		return p.body
	}
	return textOf(p.doc)
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, c string) bool {
	for _, f := range strings.Fields(attr(n, "class")) {
		if f == c {
			return true
		}
	}
	return false
}
