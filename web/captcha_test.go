package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// siteverify is a CAPTCHA provider's verification endpoint speaking the
// siteverify protocol: it accepts goodToken with the right secret.
type siteverify struct {
	srv *httptest.Server

	mu     sync.Mutex
	got    []url.Values
	status int // answer with this status instead, when set
}

const (
	captchaSecret  = "test-captcha-secret"
	captchaSiteKey = "test-site-key"
	goodToken      = "token-the-widget-gave"
	captchaScript  = "https://challenges.cloudflare.com/turnstile/v0/api.js"
	captchaOrigin  = "https://challenges.cloudflare.com"
)

func newSiteverify(t testing.TB) *siteverify {
	s := &siteverify{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, r.PostForm)
		status := s.status
		s.mu.Unlock()
		if status != 0 {
			http.Error(w, "unavailable", status)
			return
		}
		var out struct {
			Success    bool     `json:"success"`
			ErrorCodes []string `json:"error-codes"`
		}
		switch {
		case r.PostForm.Get("secret") != captchaSecret:
			out.ErrorCodes = []string{"invalid-input-secret"}
		case r.PostForm.Get("response") != goodToken:
			out.ErrorCodes = []string{"invalid-input-response"}
		default:
			out.Success = true
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *siteverify) calls() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func withCaptcha(s *siteverify, afterFailures int) envOption {
	return withConfig(func(c *Config) {
		c.Captcha = Captcha{
			Provider: "turnstile", SiteKey: captchaSiteKey, Secret: captchaSecret, VerifyURL: s.srv.URL,
			ScriptURL: captchaScript, AfterFailures: afterFailures, Timeout: 5 * time.Second,
		}
	})
}

// widget is the CAPTCHA widget's element on a sign-in page, nil for none.
func (p *page) widget() *html.Node {
	return p.find(func(n *html.Node) bool { return slices.Contains(strings.Fields(attr(n, "class")), "cf-turnstile") })
}

// cspDirective returns the sources of one directive of the page's CSP.
func (p *page) cspDirective(name string) []string {
	for _, d := range strings.Split(p.header.Get("Content-Security-Policy"), ";") {
		f := strings.Fields(d)
		if len(f) > 0 && f[0] == name {
			return f[1:]
		}
	}
	return nil
}

// An application that always asks for a CAPTCHA: the widget and its
// script are on the form, the token is verified with the provider before
// the directory is asked, and without it nothing happens.
func TestCaptchaAlways(t *testing.T) {
	t.Parallel()
	sv := newSiteverify(t)
	e := newEnv(t, withCaptcha(sv, 0))
	e.enroll("alice", nil)
	b := e.browser()
	b.ip = "203.0.113.50"

	// An application without it shows none, and its CSP allows no
	// other origin.
	_, plain := b.begin(appPortal)
	if plain.widget() != nil || strings.Contains(plain.header.Get("Content-Security-Policy"), captchaOrigin) {
		t.Errorf("CAPTCHA on an application without it: %s", plain.header.Get("Content-Security-Policy"))
	}

	id, p := b.begin(appCaptcha)
	p.want(http.StatusOK, "signin")
	wantWidget := func(p *page) {
		t.Helper()
		w := p.widget()
		if w == nil || attr(w, "data-sitekey") != captchaSiteKey {
			t.Fatalf("no widget with the site key on the %d page", p.status)
		}
		// The widget is inside the form, so its token is posted.
		form := p.find(func(n *html.Node) bool { return n.Data == "form" })
		inside := false
		for n := w.Parent; n != nil; n = n.Parent {
			inside = inside || n == form
		}
		if !inside {
			t.Error("the widget is outside the sign-in form")
		}
		if p.find(func(n *html.Node) bool { return n.Data == "script" && attr(n, "src") == captchaScript }) == nil {
			t.Error("the provider's script is not loaded")
		}
		scripts := p.cspDirective("script-src")
		if !slices.Contains(scripts, captchaOrigin) || !slices.Contains(scripts, "'self'") || slices.Contains(scripts, "'unsafe-inline'") {
			t.Errorf("script-src %v", scripts)
		}
		if !slices.Contains(p.cspDirective("frame-src"), captchaOrigin) {
			t.Errorf("frame-src %v", p.cspDirective("frame-src"))
		}
		if fa := p.cspDirective("frame-ancestors"); !slices.Equal(fa, []string{"'none'"}) {
			t.Errorf("frame-ancestors %v", fa)
		}
	}
	wantWidget(p)

	// No token: refused before the directory or the provider is asked.
	r := b.signIn(id, p, "alice", password)
	r.want(http.StatusBadRequest, "signin")
	if r.errorText() != en(t, "error_captcha") || !strings.Contains(r.errorText(), "not a robot") {
		t.Errorf("error %q", r.errorText())
	}
	wantWidget(r)
	if e.local.checks() != 0 || len(sv.calls()) != 0 {
		t.Fatalf("without a token: %d directory checks, %d verifications", e.local.checks(), len(sv.calls()))
	}

	// A token the provider refuses.
	f := url.Values{"csrf": {p.csrf()}, "username": {"alice"}, "password": {password}, "cf-turnstile-response": {"forged"}}
	r = b.post("/login/"+id, f)
	r.want(http.StatusBadRequest, "signin")
	if e.local.checks() != 0 || len(sv.calls()) != 1 {
		t.Fatalf("with a refused token: %d directory checks, %d verifications", e.local.checks(), len(sv.calls()))
	}

	// One it accepts.
	f.Set("cf-turnstile-response", goodToken)
	b.post("/login/"+id, f).want(http.StatusOK, "wait")
	calls := sv.calls()
	if len(calls) != 2 {
		t.Fatalf("%d verifications", len(calls))
	}
	if got := calls[1]; got.Get("secret") != captchaSecret || got.Get("response") != goodToken || got.Get("remoteip") != b.ip {
		t.Errorf("the provider got %v", got)
	}
	if e.local.auths.Load() != 1 || e.pushesStarted("alice") != 1 {
		t.Errorf("%d password checks, %d pushes", e.local.auths.Load(), e.pushesStarted("alice"))
	}
	if evs := e.audited("login", "alice"); len(evs) != 2 || !strings.HasPrefix(evs[0].Reason, "captcha: ") {
		t.Errorf("login events %+v", evs)
	}
}

// A provider that cannot be reached fails closed, with the CAPTCHA
// error, not an internal one.
func TestCaptchaProviderDown(t *testing.T) {
	t.Parallel()
	sv := newSiteverify(t)
	sv.mu.Lock()
	sv.status = http.StatusServiceUnavailable
	sv.mu.Unlock()
	e := newEnv(t, withCaptcha(sv, 0))
	b := e.browser()
	id, p := b.begin(appCaptcha)
	r := b.post("/login/"+id, url.Values{"csrf": {p.csrf()}, "username": {"alice"}, "password": {password}, "cf-turnstile-response": {goodToken}})
	r.want(http.StatusBadRequest, "signin")
	if r.errorText() != en(t, "error_captcha") || e.local.checks() != 0 {
		t.Errorf("error %q, %d directory checks", r.errorText(), e.local.checks())
	}
}

// With AfterFailures, an address is asked for a CAPTCHA once it has that
// many failed sign-ins, and not before.
func TestCaptchaAfterFailures(t *testing.T) {
	t.Parallel()
	sv := newSiteverify(t)
	e := newEnv(t, withCaptcha(sv, 2))
	e.enroll("alice", nil)
	b := e.browser()
	b.ip = "198.51.100.20"
	id, p := b.begin(appPortal)
	if p.widget() != nil || p.find(func(n *html.Node) bool { return n.Data == "script" }) != nil {
		t.Fatal("a CAPTCHA before any failure")
	}
	r := b.signIn(id, p, "alice", "wrong")
	r.want(http.StatusUnauthorized, "signin")
	if r.widget() != nil {
		t.Fatal("a CAPTCHA after one failure")
	}
	r = b.signIn(id, p, "alice", "wrong")
	r.want(http.StatusUnauthorized, "signin")
	if r.widget() == nil {
		t.Fatal("no CAPTCHA after two failures")
	}
	if s := b.get("/login/" + id); s.widget() == nil {
		t.Fatal("no CAPTCHA on the form after two failures")
	}
	checks := e.local.checks()
	r = b.signIn(id, p, "alice", password)
	r.want(http.StatusBadRequest, "signin")
	if r.errorText() != en(t, "error_captcha") || e.local.checks() != checks {
		t.Fatalf("without a token: error %q, directory asked %d times", r.errorText(), e.local.checks()-checks)
	}

	// Another address is not asked.
	o := e.browser()
	o.ip = "198.51.100.21"
	_, op := o.begin(appNoReuse)
	if op.widget() != nil {
		t.Error("a CAPTCHA for another address")
	}

	f := url.Values{"csrf": {p.csrf()}, "username": {"alice"}, "password": {password}, "cf-turnstile-response": {goodToken}}
	b.post("/login/"+id, f).want(http.StatusOK, "wait")
	if calls := sv.calls(); len(calls) != 1 || calls[0].Get("remoteip") != b.ip {
		t.Errorf("verifications %v", calls)
	}
}
