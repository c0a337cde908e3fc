package webapp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// testStrings are the app.* strings of web/locales/en.json (read from
// the file: this package does not import web).
func testStrings(t *testing.T) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile("../../web/locales/en.json")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]string
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatal(err)
	}
	app := map[string]string{}
	for k, v := range all {
		if strings.HasPrefix(k, "app.") {
			app[k] = v
		}
	}
	return map[string]map[string]string{"en": app}
}

func newTestHandler(t *testing.T, change func(*Config)) *Handler {
	t.Helper()
	cfg := Config{Name: "Example sign-in", BaseURL: "https://bridge.example.com/", RPID: "bridge.example.com", Strings: testStrings(t)}
	if change != nil {
		change(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestEveryResponseHasTheSecurityHeaders(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		cache        string
	}{
		{"GET", "/app/", 200, "text/html; charset=utf-8", "no-cache"},
		{"HEAD", "/app/", 200, "text/html; charset=utf-8", "no-cache"},
		{"GET", "/app/app.js", 200, "text/javascript; charset=utf-8", "no-cache"},
		{"GET", "/app/sw.js", 200, "text/javascript; charset=utf-8", "no-cache"},
		{"GET", "/app/style.css", 200, "text/css; charset=utf-8", "no-cache"},
		{"GET", "/app/config.json", 200, "application/json", "no-store"},
		{"GET", "/app/strings.json", 200, "application/json", "no-cache"},
		{"GET", "/app/manifest.webmanifest", 200, "application/manifest+json", "no-cache"},
		{"GET", "/app/icons/icon-192.png", 200, "image/png", "no-cache"},
		{"GET", "/app/icons/apple-touch-icon.png", 200, "image/png", "no-cache"},
		{"GET", "/app/index.html", 302, "", "no-store"},
		{"GET", "/app/nope.js", 404, "", "no-store"},
		{"GET", "/app/icons/", 404, "", "no-store"},
		{"GET", "/app/../app/app.js", 404, "", "no-store"},
		{"POST", "/app/", 405, "", "no-store"},
		{"PUT", "/app/config.json", 405, "", "no-store"},
	} {
		w := get(h, tc.method, tc.path)
		if w.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.status)
		}
		hd := w.Header()
		if got := hd.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("%s %s: CSP %q", tc.method, tc.path, got)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s %s: headers %v", tc.method, tc.path, hd)
		}
		if tc.contentType != "" && hd.Get("Content-Type") != tc.contentType {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, hd.Get("Content-Type"), tc.contentType)
		}
		if hd.Get("Cache-Control") != tc.cache {
			t.Errorf("%s %s: Cache-Control %q, want %q", tc.method, tc.path, hd.Get("Cache-Control"), tc.cache)
		}
		if tc.method == "HEAD" && w.Body.Len() != 0 {
			t.Errorf("HEAD %s has a body", tc.path)
		}
	}
}

func TestRevalidation(t *testing.T) {
	h := newTestHandler(t, nil)
	first := get(h, "GET", "/app/app.js")
	etag := first.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w := get(h, "GET", "/app/app.js", "If-None-Match", etag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("revalidation with the ETag: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := get(h, "GET", "/app/app.js", "If-None-Match", `"other"`); w.Code != http.StatusOK {
		t.Errorf("another ETag: %d", w.Code)
	}
}

func TestConfigJSON(t *testing.T) {
	var cfg map[string]any
	w := get(newTestHandler(t, nil), "GET", "/app/config.json")
	if err := json.Unmarshal(w.Body.Bytes(), &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "Example sign-in", "base_url": "https://bridge.example.com", "rp_id": "bridge.example.com", "attestation": "none"}
	if len(cfg) != len(want) {
		t.Errorf("config.json without Web Push: %v, want %v", cfg, want)
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("config.json %s = %v, want %v", k, cfg[k], v)
		}
	}

	// The VAPID key is asked for at each request (it rotates).
	key := "BAAA"
	h := newTestHandler(t, func(c *Config) { c.Attestation = "direct"; c.VAPIDKey = func() string { return key } })
	for _, k := range []string{"BAAA", "BBBB"} {
		key = k
		cfg = nil
		if err := json.Unmarshal(get(h, "GET", "/app/config.json").Body.Bytes(), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg["vapid_key"] != k || cfg["attestation"] != "direct" {
			t.Errorf("config.json with Web Push: %v", cfg)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, change := range map[string]func(*Config){
		"no name":             func(c *Config) { c.Name = "" },
		"no base URL":         func(c *Config) { c.BaseURL = "" },
		"unknown attestation": func(c *Config) { c.Attestation = "indirect" },
		"no English strings":  func(c *Config) { c.Strings = map[string]map[string]string{"de": {}} },
		"bad language tag":    func(c *Config) { c.Strings["not a tag!"] = map[string]string{} },
	} {
		cfg := Config{Name: "x", BaseURL: "https://b.example", Strings: testStrings(t)}
		change(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestManifest(t *testing.T) {
	for _, tc := range []struct{ name, short string }{
		{"Example sign-in", "Sign-in"}, // too long for a home screen: app.short_name
		{"Acme", "Acme"},
	} {
		w := get(newTestHandler(t, func(c *Config) { c.Name = tc.name }), "GET", "/app/manifest.webmanifest")
		var m manifest
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if m.Name != tc.name || m.ShortName != tc.short || m.StartURL != Prefix || m.Scope != Prefix || m.ID != Prefix ||
			m.Display != "standalone" || m.ThemeColor != ThemeColor || m.BackgroundColor != BackgroundColor {
			t.Errorf("manifest %+v", m)
		}
		seen := map[string]bool{}
		for _, ic := range m.Icons {
			seen[ic.Sizes+" "+ic.Purpose] = true
			r := get(newTestHandler(t, nil), "GET", ic.Src)
			c, format, err := image.DecodeConfig(r.Body)
			if err != nil || format != "png" || ic.Sizes != fmt.Sprintf("%dx%d", c.Width, c.Height) || ic.Type != "image/png" {
				t.Errorf("icon %s: %s %dx%d %v, declared %s %s", ic.Src, format, c.Width, c.Height, err, ic.Sizes, ic.Type)
			}
		}
		for _, want := range []string{"192x192 any", "512x512 any", "512x512 maskable"} {
			if !seen[want] {
				t.Errorf("no %s icon", want)
			}
		}
	}
}

// The service worker names a version of everything it caches: a new build
// (or another name) is a new worker, so browsers replace the old shell.
func TestServiceWorkerVersion(t *testing.T) {
	a := get(newTestHandler(t, nil), "GET", "/app/sw.js").Body.String()
	b := get(newTestHandler(t, func(c *Config) { c.Name = "Other" }), "GET", "/app/sw.js").Body.String()
	if strings.Contains(a, "__VERSION__") {
		t.Fatal("the version placeholder was not replaced")
	}
	re := regexp.MustCompile(`const VERSION = '([A-Za-z0-9_-]+)';`)
	va, vb := re.FindStringSubmatch(a), re.FindStringSubmatch(b)
	if va == nil || vb == nil || va[1] == vb[1] {
		t.Errorf("versions %v and %v", va, vb)
	}
	// Everything the worker caches is served.
	h := newTestHandler(t, nil)
	m := regexp.MustCompile(`(?s)const SHELL = \[(.*?)\];`).FindStringSubmatch(a)
	if m == nil {
		t.Fatal("no SHELL in sw.js")
	}
	for _, p := range regexp.MustCompile(`'([^']+)'`).FindAllStringSubmatch(m[1], -1) {
		if w := get(h, "GET", p[1]); w.Code != http.StatusOK {
			t.Errorf("the shell's %s: %d", p[1], w.Code)
		}
	}
	// ...and every module the page loads is in it (offline start).
	files, _ := fs.Glob(assetFS, "assets/*.js")
	for _, f := range files {
		name := "/app/" + strings.TrimPrefix(f, "assets/")
		if name != "/app/sw.js" && !strings.Contains(m[1], "'"+name+"'") {
			t.Errorf("%s is not in the service worker's shell", name)
		}
	}
}

// Every string the app shows is in the locales, and the page has no
// inline script, no inline style, no event-handler attribute and nothing
// from another origin (the CSP would block them; this says which).
func TestPageAndStrings(t *testing.T) {
	strs := testStrings(t)["en"]
	keyRE := regexp.MustCompile(`['"](app\.[a-z_]+)['"]`)
	prefixes := map[string]bool{}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".js") || strings.HasSuffix(p, ".html")) {
			return err
		}
		b, _ := assetFS.ReadFile(p)
		for _, m := range keyRE.FindAllStringSubmatch(string(b), -1) {
			k := m[1]
			if strings.HasSuffix(k, "_") { // a prefix completed at run time
				prefixes[k] = true
				continue
			}
			if _, ok := strs[k]; !ok {
				t.Errorf("%s uses %s, which web/locales/en.json lacks", p, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, outcome := range []string{"approved", "denied", "mismatch", "reported", "reported_late", "expired", "elsewhere", "refused", "removed"} {
		for _, part := range []string{"_title", "_body"} {
			if _, ok := strs["app.result_"+outcome+part]; !ok {
				t.Errorf("no app.result_%s%s", outcome, part)
			}
		}
	}
	if !prefixes["app.result_"] || !prefixes["app.channel_"] {
		t.Errorf("prefixes used: %v", prefixes)
	}

	body := get(newTestHandler(t, nil), "GET", "/app/").Body.String()
	if strings.Contains(body, "app.") && regexp.MustCompile(`>app\.[a-z_]+<`).MatchString(body) {
		t.Errorf("the page shows a key instead of its string")
	}
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
					t.Errorf("<%s %s=...>: inline code or style", n.Data, a.Key)
				}
				if (a.Key == "src" || a.Key == "href") && !strings.HasPrefix(a.Val, "/app/") && !strings.HasPrefix(a.Val, "#") {
					t.Errorf("<%s %s=%q>: not the app's own", n.Data, a.Key, a.Val)
				}
			}
			// No autofill of the number (one-time-code would offer a
			// number an attacker texted the user).
			if n.Data == "input" {
				ac := ""
				for _, a := range n.Attr {
					if a.Key == "autocomplete" {
						ac = a.Val
					}
				}
				if ac != "off" {
					t.Errorf("<input> with autocomplete %q, want off", ac)
				}
			}
			if (n.Data == "script" || n.Data == "style") && n.FirstChild != nil && strings.TrimSpace(n.FirstChild.Data) != "" {
				t.Errorf("inline <%s>", n.Data)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)

	// strings.json is the app.* strings, nothing else.
	var served map[string]string
	if err := json.Unmarshal(get(newTestHandler(t, nil), "GET", "/app/strings.json").Body.Bytes(), &served); err != nil {
		t.Fatal(err)
	}
	if len(served) != len(strs) {
		t.Errorf("strings.json has %d strings, want %d", len(served), len(strs))
	}
}

// A language without a translation falls back to English, string by
// string.
func TestLanguage(t *testing.T) {
	h := newTestHandler(t, func(c *Config) {
		c.Strings["de"] = map[string]string{"app.approve": "Bestätigen"}
	})
	var de, en map[string]string
	json.Unmarshal(get(h, "GET", "/app/strings.json", "Accept-Language", "de-CH, de;q=0.9").Body.Bytes(), &de)
	json.Unmarshal(get(h, "GET", "/app/strings.json", "Accept-Language", "fr").Body.Bytes(), &en)
	if de["app.approve"] != "Bestätigen" || de["app.deny"] != en["app.deny"] || en["app.approve"] != "Approve" {
		t.Errorf("de %q %q, fallback %q", de["app.approve"], de["app.deny"], en["app.approve"])
	}
	page := get(h, "GET", "/app/", "Accept-Language", "de")
	if !bytes.Contains(page.Body.Bytes(), []byte(`<html lang="de">`)) || page.Header().Get("Vary") != "Accept-Language" {
		t.Errorf("German page: %s", page.Header())
	}
}
