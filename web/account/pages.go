package account

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/account.css
var accountCSS []byte

// view is what the templates see.
type view struct {
	Lang, Title string
	User, CSRF  string
	Notice      string // a string key
	Error       string // a string key
	Body        string // a message page's text (a string key)
	Signed      bool   // signed in: the page has the account's navigation

	Devices []deviceView
	Device  *deviceView
	CanAdd  bool
	// Adding a device.
	Link    string
	QR      template.URL
	Expires string
	// Recent sign-ins.
	SignIns []signInView
	SignIn  *signInView
	Older   int64

	strs map[string]string
}

// T returns the string key in the page's language, formatted with args;
// a missing key shows as itself.
func (v view) T(key string, args ...any) string {
	s, ok := v.strs[key]
	if !ok {
		s = key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

type templates struct{ pages map[string]*template.Template }

var pageNames = []string{"landing", "devices", "remove", "add", "signins", "report", "message"}

func loadTemplates() (*templates, error) {
	t := &templates{pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		tm, err := template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("account: template %s: %w", name, err)
		}
		t.pages[name] = tm
	}
	return t, nil
}

// view starts the view of a signed-in page.
func (p *Page) view(r *http.Request, s session, title string) view {
	return view{Title: title, User: s.User, CSRF: p.d.Flow.CSRF(r, s.csrfID()), Signed: true}
}

func (p *Page) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	v.Lang, v.strs = p.d.Flow.Strings(r)
	var buf bytes.Buffer
	if err := p.tmpl.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		p.log.ErrorContext(r.Context(), "rendering the account page failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", p.d.Flow.PageCSP())
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// message is a page with a title and a text, and a link to the account.
func (p *Page) message(w http.ResponseWriter, r *http.Request, status int, title, body string) {
	p.render(w, r, status, "message", view{Title: title, Body: body})
}

// landing is the page of a browser without an account session.
func (p *Page) landing(w http.ResponseWriter, r *http.Request, status int) {
	p.render(w, r, status, "landing", view{Title: "account.title", Body: p.d.App.Name})
}

func serveCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(accountCSS)
}
