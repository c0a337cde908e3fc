package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"golang.org/x/text/language"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

//go:embed locales/*.json
var localeFS embed.FS

// view is what the page templates see.
type view struct {
	ID, CSRF, App, Number, Hint, User string
	Password, HasCode, CanResend      bool
	// Challenge is set when a push is pending (the code page links back).
	Challenge bool
	// Attempt is the push the waiting page shows (login.attempt): its
	// script and its continue form name it.
	Attempt int
	Failure string // denied, timeout, fraud, ...
	// Retry is how long a rate-limited user has to wait.
	Retry   time.Duration
	Notice  string // a string key
	Error   string // a string key
	Captcha *captchaView
	// Set by render.
	Lang        string
	Title, Body string
	Back        string
	// Detail is a message page's line for the administrator (English,
	// not a key).
	Detail  string
	strings map[string]string
}

// RetryIn says Retry in words: "40 seconds", "a minute", "5 minutes"
// (rounded up).
func (v view) RetryIn() string {
	secs := int((v.Retry + time.Second - 1) / time.Second)
	mins := (secs + 59) / 60
	switch {
	case secs <= 1:
		return v.T("wait_in_second")
	case secs < 60:
		return v.T("wait_in_seconds", secs)
	case mins == 1:
		return v.T("wait_in_minute")
	default:
		return v.T("wait_in_minutes", mins)
	}
}

type captchaView struct {
	Widget, SiteKey, Script string
}

// T returns the string key in the page's language, formatted with args.
// A missing key shows as itself, so a gap is visible, not blank.
func (v view) T(key string, args ...any) string {
	s, ok := v.strings[key]
	if !ok {
		s = key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

type pages struct {
	tmpl    map[string]*template.Template
	locales map[string]map[string]string
	matcher language.Matcher
	tags    []language.Tag
	captcha Captcha
	csp     string
	cspCap  string // with the CAPTCHA's origins
}

// pageNames are the page templates; each is parsed with the layout.
var pageNames = []string{"signin", "wait", "code", "failed", "message"}

func loadPages(c Captcha) (*pages, error) {
	p := &pages{tmpl: map[string]*template.Template{}, locales: map[string]map[string]string{}, captcha: c}
	for _, name := range pageNames {
		t, err := template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		p.tmpl[name] = t
	}
	files, err := fs.Glob(localeFS, "locales/*.json")
	if err != nil {
		return nil, err
	}
	// English first: the fallback of the matcher.
	p.tags = []language.Tag{language.English}
	for _, f := range files {
		data, err := localeFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("web: %s: %w", f, err)
		}
		tag, err := language.Parse(strings.TrimSuffix(path.Base(f), ".json"))
		if err != nil {
			return nil, fmt.Errorf("web: %s: %w", f, err)
		}
		p.locales[tag.String()] = m
		if tag != language.English {
			p.tags = append(p.tags, tag)
		}
	}
	if p.locales["en"] == nil {
		return nil, fmt.Errorf("web: locales/en.json is missing")
	}
	p.matcher = language.NewMatcher(p.tags)
	const base = "default-src 'none'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
	p.csp = base + "; script-src 'self'; style-src 'self'; connect-src 'self'"
	if c.Enabled() {
		o := strings.Join(c.origins(), " ")
		p.cspCap = base + "; script-src 'self' " + o + "; style-src 'self' 'unsafe-inline' " + o +
			"; connect-src 'self' " + o + "; frame-src " + o
	}
	return p, nil
}

// lang picks the page language from Accept-Language.
func (p *pages) lang(r *http.Request) (string, map[string]string) {
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, _ := p.matcher.Match(tags...)
	tag := p.tags[i]
	return tag.String(), p.locales[tag.String()]
}

func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	v.Lang, v.strings = p.lang(r)
	if v.Title == "" {
		v.Title = "title_" + name
	}
	var buf bytes.Buffer
	if err := p.tmpl[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if v.Captcha != nil {
		h.Set("Content-Security-Policy", p.cspCap)
	} else {
		h.Set("Content-Security-Policy", p.csp)
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (p *pages) signin(w http.ResponseWriter, r *http.Request, v view, errKey string, captcha bool) {
	p.signinStatus(w, r, http.StatusOK, v, errKey, captcha)
}

func (p *pages) signinStatus(w http.ResponseWriter, r *http.Request, status int, v view, errKey string, captcha bool) {
	v.Error = errKey
	if captcha && p.captcha.Enabled() {
		v.Captcha = &captchaView{Widget: p.captcha.widget(), SiteKey: p.captcha.SiteKey, Script: p.captcha.ScriptURL}
	}
	p.render(w, r, status, "signin", v)
}

func (p *pages) wait(w http.ResponseWriter, r *http.Request, v view) {
	p.waitStatus(w, r, http.StatusOK, v)
}

func (p *pages) waitStatus(w http.ResponseWriter, r *http.Request, status int, v view) {
	p.render(w, r, status, "wait", v)
}

func (p *pages) code(w http.ResponseWriter, r *http.Request, v view, errKey string) {
	p.codeStatus(w, r, http.StatusOK, v, errKey)
}

func (p *pages) codeStatus(w http.ResponseWriter, r *http.Request, status int, v view, errKey string) {
	v.Error = errKey
	p.render(w, r, status, "code", v)
}

func (p *pages) failed(w http.ResponseWriter, r *http.Request, v view) {
	if v.Failure == "" {
		v.Failure = "cancelled"
	}
	v.Title = "fail_" + v.Failure + "_title"
	p.render(w, r, http.StatusOK, "failed", v)
}

// message is a page with a title, a text and maybe a link back.
func (p *pages) message(w http.ResponseWriter, r *http.Request, status int, title, body, back string) {
	p.render(w, r, status, "message", view{Title: title, Body: body, Back: back})
}

// static serves the embedded style sheet and script.
func (p *pages) static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fsrv := http.StripPrefix("/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}
