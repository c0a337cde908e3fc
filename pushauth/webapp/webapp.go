package webapp

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/text/language"
)

//go:embed assets
var assetFS embed.FS

// Prefix is where the app is served; its service worker's scope.
const Prefix = "/app/"

// CSP is the Content-Security-Policy of every response under Prefix:
// nothing but the app's own origin, no inline script or style, no frames,
// no forms posted anywhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ThemeColor and BackgroundColor are the manifest's colours; the icons
// (icons_gen.go) are drawn on ThemeColor.
const (
	ThemeColor      = "#1d4ed8"
	BackgroundColor = "#ffffff"
)

// Config is what the app is told about the bridge.
type Config struct {
	// Name is what the app, its notifications and the passkey prompt call
	// the bridge (app.name).
	Name string
	// BaseURL is the bridge's public base URL; an activation link must
	// name exactly this one.
	BaseURL string
	// RPID is the WebAuthn relying party id; "" when passkeys are
	// impossible (the base URL's host is an IP address): the app then makes
	// software keys only.
	RPID string
	// Attestation is what the app asks of a new passkey: "none" or
	// "direct" (some application accepts only attested keys).
	Attestation string
	// VAPIDKey returns the active VAPID public key as base64url of the
	// uncompressed P-256 point, or "" when there is none; nil when Web Push
	// is off.
	VAPIDKey func() string
	// Strings are the app's strings (the app.* keys of web/locales) per
	// language tag; "en" is required and is the fallback.
	Strings map[string]map[string]string
}

// ClientConfig is /app/config.json.
type ClientConfig struct {
	Name        string `json:"name"`
	BaseURL     string `json:"base_url"`
	RPID        string `json:"rp_id"`
	Attestation string `json:"attestation"`
	VAPIDKey    string `json:"vapid_key,omitempty"`
}

// Handler serves the app under Prefix.
type Handler struct {
	cfg      Config
	assets   map[string]asset // by path under Prefix, "" being the page
	pages    map[string]asset // the page per language
	strings  map[string]asset // strings.json per language
	matcher  language.Matcher
	tags     []language.Tag
	manifest asset
}

// asset is a response body with its type and validator.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

func newAsset(body []byte, contentType string) asset {
	h := sha256.Sum256(body)
	return asset{body: body, contentType: contentType, etag: `"` + base64.RawURLEncoding.EncodeToString(h[:18]) + `"`}
}

// types are the content types of the embedded files, by extension.
var types = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".png": "image/png",
}

// New checks cfg and prepares every response.
func New(cfg Config) (*Handler, error) {
	if cfg.Name == "" || cfg.BaseURL == "" {
		return nil, errors.New("webapp: name and base URL are required")
	}
	if cfg.Attestation == "" {
		cfg.Attestation = "none"
	}
	if cfg.Attestation != "none" && cfg.Attestation != "direct" {
		return nil, fmt.Errorf("webapp: attestation %q is not none or direct", cfg.Attestation)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.Strings["en"] == nil {
		return nil, errors.New("webapp: the English strings are missing")
	}
	h := &Handler{cfg: cfg, assets: map[string]asset{}, pages: map[string]asset{}, strings: map[string]asset{}}

	// Static files; the service worker names a version of all of them, so
	// that a new build replaces the old worker and its cached shell.
	sum := sha256.New()
	var swSource []byte
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimPrefix(p, "assets/")
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(sum, "%s %d\n", name, len(body))
		sum.Write(body)
		switch {
		case name == "index.html":
			return nil // a template, below
		case name == "sw.js":
			swSource = body
			return nil
		}
		ct, ok := types[path.Ext(name)]
		if !ok {
			return fmt.Errorf("webapp: no content type for %s", name)
		}
		h.assets[name] = newAsset(body, ct)
		return nil
	})
	if err != nil {
		return nil, err
	}
	cj, _ := json.Marshal(cfg.Name)
	fmt.Fprintf(sum, "name %s\n", cj)

	// Languages: English first, the matcher's fallback.
	h.tags = []language.Tag{language.English}
	langs := make([]string, 0, len(cfg.Strings))
	for l := range cfg.Strings {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	for _, l := range langs {
		tag, err := language.Parse(l)
		if err != nil {
			return nil, fmt.Errorf("webapp: language %q: %w", l, err)
		}
		if tag != language.English {
			h.tags = append(h.tags, tag)
		}
		b, _ := json.Marshal(cfg.Strings[l])
		sum.Write(b)
	}
	h.matcher = language.NewMatcher(h.tags)
	version := base64.RawURLEncoding.EncodeToString(sum.Sum(nil)[:9])

	if !bytes.Contains(swSource, []byte("__VERSION__")) {
		return nil, errors.New("webapp: sw.js has no __VERSION__ placeholder")
	}
	h.assets["sw.js"] = newAsset(bytes.ReplaceAll(swSource, []byte("__VERSION__"), []byte(version)), types[".js"])

	tmpl, err := template.New("index.html").Funcs(template.FuncMap{"t": func(string, ...any) string { return "" }}).
		ParseFS(assetFS, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("webapp: %w", err)
	}
	for _, tag := range h.tags {
		l := tag.String()
		strs := h.merged(l)
		t, _ := tmpl.Clone()
		t.Funcs(template.FuncMap{"t": func(key string, args ...any) string { return format(strs, key, args...) }})
		var buf bytes.Buffer
		if err := t.Execute(&buf, struct{ Lang, Name, Version string }{l, cfg.Name, version}); err != nil {
			return nil, fmt.Errorf("webapp: index.html (%s): %w", l, err)
		}
		h.pages[l] = newAsset(buf.Bytes(), "text/html; charset=utf-8")
		b, _ := json.Marshal(strs)
		h.strings[l] = newAsset(b, "application/json")
	}
	if h.manifest, err = h.makeManifest(); err != nil {
		return nil, err
	}
	return h, nil
}

// merged is lang's strings over English ones, so a missing translation
// shows in English.
func (h *Handler) merged(lang string) map[string]string {
	m := map[string]string{}
	for k, v := range h.cfg.Strings["en"] {
		m[k] = v
	}
	for k, v := range h.cfg.Strings[lang] {
		m[k] = v
	}
	return m
}

// format is the string key, formatted with args; a missing key shows as
// itself, so a gap is visible.
func format(strs map[string]string, key string, args ...any) string {
	s, ok := strs[key]
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// lang picks the language from Accept-Language.
func (h *Handler) lang(r *http.Request) string {
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, _ := h.matcher.Match(tags...)
	return h.tags[i].String()
}

// ServeHTTP serves the app. Only GET and HEAD; every response, errors
// included, carries the app's security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	// Errors and redirects are never cached (a 404 of a bridge being
	// upgraded, a redirect that may change); served assets say otherwise.
	hd.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch name {
	case "":
		hd.Set("Vary", "Accept-Language")
		h.serve(w, r, h.pages[h.lang(r)], "no-cache")
	case "config.json":
		h.serveConfig(w, r)
	case "strings.json":
		hd.Set("Vary", "Accept-Language")
		h.serve(w, r, h.strings[h.lang(r)], "no-cache")
	case "manifest.webmanifest":
		h.serve(w, r, h.manifest, "no-cache")
	case "index.html":
		// 302, not 301: a permanent redirect would stay in browsers.
		http.Redirect(w, r, Prefix, http.StatusFound)
	default:
		a, ok := h.assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		// no-cache: the browser revalidates (ETag), so an upgraded bridge
		// is picked up at once; offline, the service worker's copy serves.
		h.serve(w, r, a, "no-cache")
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, a asset, cacheControl string) {
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", cacheControl)
	hd.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func (h *Handler) serveConfig(w http.ResponseWriter, r *http.Request) {
	c := ClientConfig{Name: h.cfg.Name, BaseURL: h.cfg.BaseURL, RPID: h.cfg.RPID, Attestation: h.cfg.Attestation}
	if h.cfg.VAPIDKey != nil {
		c.VAPIDKey = h.cfg.VAPIDKey()
	}
	b, err := json.Marshal(c)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
