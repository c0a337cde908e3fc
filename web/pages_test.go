package web

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// rawKey matches a string key shown as itself (view.T's fallback).
var rawKey = regexp.MustCompile(`\b[a-z]+(_[a-z]+)+\b`)

// everyPage walks a browser through every page of the Flow and returns
// them by name.
func everyPage(t *testing.T, e *env) map[string]*page {
	t.Helper()
	phone := e.enroll("alice", nil)
	code := e.totpCode("alice")
	b := e.browser()
	out := map[string]*page{}

	id, p := b.begin(appNumbers)
	out["signin"] = p
	out["signin 401"] = b.signIn(id, p, "alice", "wrong")
	w := b.signIn(id, p, "alice", password)
	out["wait"] = w
	out["wait 429"] = b.post("/login/"+id+"/resend", url.Values{"csrf": {w.csrf()}})
	cp := b.get("/login/" + id + "/code")
	out["code"] = cp
	out["code 401"] = b.post("/login/"+id+"/code", url.Values{"csrf": {cp.csrf()}, "code": {wrongNumber(code(e.clock.Now()))}})
	e.answer(phone, e.challenge(phone), protocol.Deny, "")
	out["failed"] = b.continueLogin(id, w)
	out["csrf 403"] = b.post("/login/"+id+"/restart", url.Values{"csrf": {"stale"}})
	out["expired 404"] = e.browser().get("/login/" + id)
	for name, want := range map[string]struct {
		status int
		kind   string
	}{
		"signin": {200, "signin"}, "signin 401": {401, "signin"}, "wait": {200, "wait"}, "wait 429": {429, "wait"},
		"code": {200, "code"}, "code 401": {401, "code"}, "failed": {200, "failed"},
		"csrf 403": {403, "message"}, "expired 404": {404, "message"},
	} {
		out[name].want(want.status, want.kind)
	}
	return out
}

// Every page: no caching, a CSP without inline script that forbids
// framing, no inline script or style, forms that post with the CSRF
// token, labelled inputs, and no string key shown as itself.
func TestPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, p := range everyPage(t, e) {
		t.Run(name, func(t *testing.T) {
			h := p.header
			if h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Cache-Control") != "no-store" {
				t.Errorf("Content-Type %q, Cache-Control %q", h.Get("Content-Type"), h.Get("Cache-Control"))
			}
			for dir, want := range map[string][]string{
				"default-src": {"'none'"}, "frame-ancestors": {"'none'"}, "base-uri": {"'none'"},
				"script-src": {"'self'"}, "style-src": {"'self'"},
			} {
				if got := p.cspDirective(dir); !slices.Equal(got, want) {
					t.Errorf("CSP %s %v, want %v (%s)", dir, got, want, h.Get("Content-Security-Policy"))
				}
			}

			for _, n := range p.findAll(func(*html.Node) bool { return true }) {
				for _, a := range n.Attr {
					if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
						t.Errorf("inline %s on <%s>", a.Key, n.Data)
					}
				}
				switch n.Data {
				case "script":
					if src := attr(n, "src"); !strings.HasPrefix(src, "/") || strings.HasPrefix(src, "//") || n.FirstChild != nil {
						t.Errorf("script %q is not a same-origin file", src)
					}
				case "style":
					t.Error("inline <style>")
				}
			}
			if root := p.find(func(n *html.Node) bool { return n.Data == "html" }); attr(root, "lang") != "en" {
				t.Errorf("lang %q", attr(root, "lang"))
			}
			if p.find(func(n *html.Node) bool {
				return n.Data == "meta" && attr(n, "name") == "referrer" && attr(n, "content") == "no-referrer"
			}) == nil {
				t.Error("no referrer policy")
			}

			forms := p.findAll(func(n *html.Node) bool { return n.Data == "form" })
			token := ""
			for _, f := range forms {
				if attr(f, "method") != "post" || !strings.HasPrefix(attr(f, "action"), "/login/") {
					t.Errorf("form %q method %q", attr(f, "action"), attr(f, "method"))
				}
				var csrf []string
				walk(f, func(n *html.Node) {
					if n.Data == "input" && attr(n, "name") == "csrf" && attr(n, "type") == "hidden" {
						csrf = append(csrf, attr(n, "value"))
					}
				})
				if len(csrf) != 1 || csrf[0] == "" || (token != "" && csrf[0] != token) {
					t.Errorf("form %q has CSRF inputs %q", attr(f, "action"), csrf)
				} else {
					token = csrf[0]
				}
			}
			if len(forms) == 0 && p.kind() != "message" {
				t.Errorf("a %s page without forms", p.kind())
			}

			ids := map[string]bool{}
			for _, n := range p.findAll(func(n *html.Node) bool { return hasAttr(n, "id") }) {
				if ids[attr(n, "id")] {
					t.Errorf("id %q twice", attr(n, "id"))
				}
				ids[attr(n, "id")] = true
			}
			for _, in := range p.findAll(func(n *html.Node) bool { return n.Data == "input" && attr(n, "type") != "hidden" }) {
				id := attr(in, "id")
				if id == "" || p.find(func(n *html.Node) bool {
					return n.Data == "label" && attr(n, "for") == id && strings.TrimSpace(textOf(n)) != ""
				}) == nil {
					t.Errorf("input %q (id %q) has no label", attr(in, "name"), id)
				}
			}
			if p.find(func(n *html.Node) bool { return n.Data == "h1" && strings.TrimSpace(textOf(n)) != "" }) == nil {
				t.Error("no heading")
			}

			title := p.find(func(n *html.Node) bool { return n.Data == "title" })
			shown := []string{p.text()}
			if title != nil {
				shown = append(shown, textOf(title))
			}
			for _, n := range p.findAll(func(*html.Node) bool { return true }) {
				for _, a := range n.Attr {
					if strings.HasPrefix(a.Key, "data-") && a.Key != "data-base" && a.Key != "data-sitekey" {
						shown = append(shown, a.Val)
					}
				}
			}
			for _, s := range shown {
				if k := rawKey.FindString(s); k != "" {
					t.Errorf("string key %q shown as itself", k)
				}
			}
			if title == nil || strings.TrimSpace(textOf(title)) == "" {
				t.Error("no title")
			}
		})
	}
}

// The style sheet and script the pages link are served, as embedded.
func TestAssets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	urls := map[string]bool{}
	for _, p := range everyPage(t, e) {
		for _, n := range p.findAll(func(n *html.Node) bool {
			return (n.Data == "script" && attr(n, "src") != "") || (n.Data == "link" && attr(n, "rel") == "stylesheet")
		}) {
			urls[attr(n, "src")+attr(n, "href")] = true
		}
	}
	var names []string
	for u := range urls {
		p := b.get(u)
		name := path.Base(u)
		want, err := fs.ReadFile(staticFS, "static/"+name)
		if err != nil {
			t.Errorf("%s: no such embedded file: %v", u, err)
			continue
		}
		ct := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}[path.Ext(name)]
		if p.status != http.StatusOK || p.body != string(want) || p.header.Get("Content-Type") != ct {
			t.Errorf("%s: %d, Content-Type %q, %d bytes", u, p.status, p.header.Get("Content-Type"), len(p.body))
		}
		names = append(names, name)
		if p := b.get(path.Dir(u) + "/no-such-file.js"); p.status != http.StatusNotFound {
			t.Errorf("a missing asset: %d", p.status)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"style.css", "wait.js"}) {
		t.Errorf("pages link %v, want the style sheet and the waiting page's script", names)
	}
}

// Every cookie the Flow sets is HttpOnly and SameSite=Lax, and Secure
// when the bridge is served over https.
func TestCookies(t *testing.T) {
	t.Parallel()
	for _, https := range []bool{false, true} {
		t.Run(fmt.Sprintf("https=%v", https), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(s *envSetup) { s.https = https })
			phone := e.enroll("alice", nil)
			b := e.browser()
			id, w := b.start(appPortal, "alice")
			e.answer(phone, e.challenge(phone), protocol.Approve, "")
			b.continueLogin(id, w).result()
			b.post("/app/logout", nil)

			names := map[string]bool{}
			for _, c := range b.jar.recorded() {
				names[c.Name] = true
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != https || c.Path != "/" {
					t.Errorf("cookie %s: HttpOnly %v, SameSite %v, Secure %v, Path %q", c.Name, c.HttpOnly, c.SameSite, c.Secure, c.Path)
				}
			}
			wantB, wantS := bindingCookieName, sessionCookieName
			if https {
				// Over TLS the cookies carry the __Host- prefix.
				wantB, wantS = "__Host-"+wantB, "__Host-"+wantS
			}
			if !names[wantB] || !names[wantS] {
				t.Errorf("cookies set: %v", names)
			}
		})
	}
}

// A browser asking for a language there is no file for gets English.
func TestLanguageFallback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.lang = "de-CH, de;q=0.9, fr;q=0.8"
	_, p := b.begin(appPortal)
	if l := attr(p.find(func(n *html.Node) bool { return n.Data == "html" }), "lang"); l != "en" || p.heading() != fmt.Sprintf(en(t, "signin_heading"), "Portal") {
		t.Errorf("lang %q, heading %q", l, p.heading())
	}
}

// Every string key the templates and the code use is in every locale,
// every failure a sign-in can end with has its title and text, and no
// page renders a key as itself.
func TestStringKeys(t *testing.T) {
	t.Parallel()
	p, err := loadPages(Captcha{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{} // key: where it is used

	// The templates'.
	static := regexp.MustCompile(`\.T\s+"([^"]+)"`)
	dynamic := regexp.MustCompile(`\.T\s+\(print\s+"([^"]*)"\s+\.Failure\s+"([^"]*)"\)`)
	var failureAffixes [][2]string
	tmpls, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(tmpls) == 0 {
		t.Fatalf("templates: %v %v", tmpls, err)
	}
	for _, name := range tmpls {
		data, err := fs.ReadFile(templateFS, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range static.FindAllStringSubmatch(string(data), -1) {
			keys[m[1]] = name
		}
		for _, m := range dynamic.FindAllStringSubmatch(string(data), -1) {
			failureAffixes = append(failureAffixes, [2]string{m[1], m[2]})
		}
	}
	if len(failureAffixes) == 0 {
		t.Error("no failure strings found in the templates")
	}

	// Every failure a sign-in can end with.
	failures := []string{"nodevice", "nodevicekeys", "locked", "ratelimited"}
	for _, s := range []store.ChallengeState{store.ChallengePending, store.ChallengeApproved, store.ChallengeDenied, store.ChallengeFraud,
		store.ChallengeExpired, store.ChallengeSuperseded, store.ChallengeCancelled, "unknown"} {
		failures = append(failures, failureOf(s))
	}
	for _, f := range failures {
		keys["fail_"+f+"_title"] = "failed page title"
		for _, a := range failureAffixes {
			keys[a[0]+f+a[1]] = "failed page"
		}
	}
	// The pages that are titled after their name.
	for _, name := range []string{"signin", "wait", "code"} {
		keys["title_"+name] = "render"
	}

	// The code's: string literals that look like keys, outside struct
	// tags and map keys of audit details.
	codeKey := regexp.MustCompile(`^(title|error|expired|csrf|resend|fail|wait|link|label|button|code|signin)_[a-z_]+$`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	fromCode := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if _, ok := n.(*ast.Field); ok {
				return false // a struct tag is no string key
			}
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && codeKey.MatchString(s) {
				keys[s] = fset.Position(lit.Pos()).String()
				fromCode++
			}
			return true
		})
	}
	if fromCode < 10 {
		t.Errorf("only %d string keys found in the code", fromCode)
	}

	for lang, strs := range p.locales {
		for k, where := range keys {
			if _, ok := strs[k]; !ok {
				t.Errorf("%s: no string %q (used by %s)", lang, k, where)
			}
		}
	}

	// Rendered: every page with every failure, error and notice.
	render := func(name string, v view, errKey string) string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/login/x", nil)
		switch name {
		case "failed":
			p.failed(rec, req, v)
		case "signin":
			p.signin(rec, req, v, errKey, false)
		case "code":
			p.code(rec, req, v, errKey)
		default:
			v.Error = errKey
			p.render(rec, req, http.StatusOK, name, v)
		}
		return rec.Body.String()
	}
	base := view{ID: "x", CSRF: "token", App: "Portal", Number: "42", Password: true, HasCode: true, CanResend: true, Challenge: true}
	var bodies []string
	for _, f := range append(failures, "") {
		v := base
		v.Failure = f
		bodies = append(bodies, render("failed", v, ""))
	}
	for k := range keys {
		if strings.HasPrefix(k, "error_") {
			bodies = append(bodies, render("signin", base, k), render("code", base, k))
		}
		if strings.HasPrefix(k, "resend_") {
			v := base
			v.Notice = k
			bodies = append(bodies, render("wait", v, ""))
		}
	}
	for _, pair := range [][2]string{{"expired_title", "expired_body"}, {"csrf_title", "csrf_body"}, {"error_title", "error_body"}} {
		rec := httptest.NewRecorder()
		p.message(rec, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusOK, pair[0], pair[1], "/login/x")
		bodies = append(bodies, rec.Body.String())
	}
	for _, body := range bodies {
		doc, err := html.Parse(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		pg := &page{t: t, doc: doc, header: http.Header{}}
		text := pg.text()
		if title := pg.find(func(n *html.Node) bool { return n.Data == "title" }); title != nil {
			text += " " + textOf(title)
		}
		if k := rawKey.FindString(text); k != "" {
			t.Errorf("%q shown as itself in %s", k, text)
		}
	}
}

// walk calls fn on every element under n, n included.
func walk(n *html.Node, fn func(*html.Node)) {
	if n.Type == html.ElementNode {
		fn(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

// A sign-in page left open past LoginTimeout has expired.
func TestLoginTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) { c.LoginTimeout = 5 * time.Minute }))
	b := e.browser()
	id, p := b.begin(appPortal)
	e.clock.Add(5*time.Minute + time.Second)
	r := b.signIn(id, p, "alice", password)
	r.want(http.StatusNotFound, "message")
	if r.heading() != en(t, "expired_title") || e.local.checks() != 0 {
		t.Errorf("heading %q, %d directory checks", r.heading(), e.local.checks())
	}
}
