package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The secret of the confidential test client.
const oidcSecret = "0123456789abcdef0123456789abcdef"

// startOIDCBridge starts the bridge with local users, the push settings of
// the RADIUS tests, and the OIDC section oidcYAML (at top level, "oidc:"
// included; other top-level sections such as "web:" may follow it). The
// file oidc.secret in the bridge's directory holds oidcSecret. pushLines
// are added to the push section ("challenge_ttl: 10s").
func startOIDCBridge(t *testing.T, oidcYAML string, pushLines ...string) *liveBridge {
	t.Helper()
	bin, phone := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin, phone: phone}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	if err := os.WriteFile(filepath.Join(b.dir, "oidc.secret"), []byte(oidcSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.public = freePort(t)
	b.start(b.baseConfig(pushLines) + oidcYAML + "\n")
	return b
}

// baseURL is the public listener's URL.
func (b *liveBridge) baseURL() string { return fmt.Sprintf("http://127.0.0.1:%d", b.public) }

// issuer is the OpenID Provider's issuer.
func (b *liveBridge) issuer() string { return b.baseURL() + "/oidc" }

// listenLoopback reserves a loopback port for a relying party, so that its
// redirect URI can go into the bridge's config before it serves.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// browser is a cookie-keeping HTTP client that records where redirects
// took it: the sign-in pages as a user without JavaScript sees them.
type browser struct {
	t      *testing.T
	c      *http.Client
	visits []string
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t}
	b.c = &http.Client{Jar: jar, Timeout: 60 * time.Second}
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		b.visits = append(b.visits, req.URL.String())
		if len(via) > 20 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}
	return b
}

// page is a fetched page: where it ended up, its status and body.
type page struct {
	url    *url.URL
	status int
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{url: resp.Request.URL, status: resp.StatusCode, body: string(body)}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post submits a form to action, resolved against the page's URL.
func (b *browser) post(from page, action string, form url.Values) page {
	b.t.Helper()
	u, err := from.url.Parse(action)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	csrfRe   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	numberRe = regexp.MustCompile(`data-testid="number">(\d+)<`)
	actionRe = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// csrf is the page's CSRF token.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token on %s (status %d):\n%s", p.url, p.status, p.body)
	}
	return m[1]
}

// number is the number-matching number on a waiting page, or "".
func (p page) number() string {
	if m := numberRe.FindStringSubmatch(p.body); m != nil {
		return m[1]
	}
	return ""
}

// action is the first form's action on the page.
func (p page) action(t *testing.T) string {
	t.Helper()
	m := actionRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no form on %s:\n%s", p.url, p.body)
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}
