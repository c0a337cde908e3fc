package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzLoginPaths sends what a browser (or anyone) may send to the
// sign-in pages: any path under /login/, any form body, any user agent,
// with or without the browser's binding cookie, to a fresh sign-in each
// time ("@id" in the path and "@csrf" in the body stand for its id and
// CSRF token). Nothing may panic or answer with a server error.
func FuzzLoginPaths(f *testing.F) {
	e := newEnv(f, withConfig(func(c *Config) { c.FailuresPerIP, c.FailuresPerUser = 1<<30, 1<<30 }))
	e.enroll("alice", nil) // a right password reaches the push engine
	e.totpCode("alice")
	signIn := "csrf=@csrf&username=alice&password=" + url.QueryEscape(password)
	for _, s := range []struct {
		method, path, body, ua string
		bound                  bool
	}{
		{"GET", "@id", "", "Mozilla/5.0", true},
		{"POST", "@id", signIn, "Mozilla/5.0", true},
		{"POST", "@id", signIn, strings.Repeat("Mozilla/5.0 ", 60), true},
		{"POST", "@id", signIn, "", false},
		{"POST", "@id", "csrf=@csrf&username=" + strings.Repeat("x", 5000) + "&password=x", "", true},
		{"POST", "@id", "csrf=@csrf&username=%00%ff%fe&password=%00", "", true},
		{"POST", "@id", "csrf=@csrf&username=alice&password=" + url.QueryEscape(password) + "&csrf=other", "", true},
		{"POST", "@id", "csrf=@csrf;username=alice", "", true},
		{"GET", "@id/events", "", "", true},
		{"GET", "@id/status", "", "", true},
		{"POST", "@id/continue", "csrf=@csrf", "", true},
		{"POST", "@id/resend", "csrf=@csrf", "", true},
		{"GET", "@id/code", "", "", true},
		{"POST", "@id/code", "csrf=@csrf&code=123456", "", true},
		{"POST", "@id/code", "csrf=@csrf&code=" + strings.Repeat("9", 100), "", true},
		{"POST", "@id/restart", "csrf=@csrf", "", true},
		{"GET", "AAAAAAAAAAAAAAAAAAAAAA", "", "", true},
		{"GET", "AAAAAAAAAAAAAAAAAAAAA=", "", "", true},
		{"POST", "%00", "csrf=%ff", "", false},
		{"GET", "@id/../../assets/style.css", "", "", true},
		{"GET", "@id%2f..%2fcode", "", "", true},
		{"GET", "", "", "", true},
	} {
		f.Add(s.method, s.path, s.body, s.ua, s.bound)
	}
	app, _ := e.lookupApp("oidc", appPortal)
	h := e.srv.Config.Handler
	f.Fuzz(func(t *testing.T, method, path, body, ua string, bound bool) {
		// A fresh sign-in.
		rec := httptest.NewRecorder()
		e.flow.Begin(rec, httptest.NewRequest(http.MethodGet, "/app/start", nil), Login{App: app, Return: "/app/done"})
		id := strings.TrimPrefix(rec.Result().Header.Get("Location"), "/login/")
		var binding string
		for _, c := range rec.Result().Cookies() {
			if c.Name == bindingCookieName {
				binding = c.Value
			}
		}
		if !validID(id) || binding == "" {
			t.Fatalf("Begin: %d, Location %q", rec.Code, rec.Result().Header.Get("Location"))
		}
		path = strings.ReplaceAll(path, "@id", id)
		body = strings.ReplaceAll(body, "@csrf", url.QueryEscape(e.flow.csrf(id, hashToken(binding))))
		if method != http.MethodPost {
			method = http.MethodGet
		}
		// Long polls on a pending push would wait; what matters is the
		// answer, not the wait.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://bridge.test/login/"+path, strings.NewReader(body))
		if err != nil {
			t.Skip(err)
		}
		req.RemoteAddr = "192.0.2.1:4711"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header["User-Agent"] = []string{ua}
		if bound {
			req.AddCookie(&http.Cookie{Name: bindingCookieName, Value: binding})
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Errorf("%s %q (body %q, user agent %d bytes): %d %s", method, path, body, len(ua), rec.Code, rec.Body.String())
		}
	})
}
