package main

// SAML sign-ins in a real browser: headless Chromium signs in at crewjam's
// samlsp service provider through the bridge's pages, with the request
// sent by the Redirect binding and by the HTTP-POST binding. After the
// phone has answered nothing is done in the browser: the waiting page's
// script and the bridge's auto-posting response form (an inline script
// allowed by a CSP hash) must carry the sign-in to the SP by themselves.

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
)

// serveSAMLWithBinding is samlSP.serve with the middleware's request
// binding set (crewjam.HTTPPostBinding or crewjam.HTTPRedirectBinding).
func (sp *samlSP) serveSAMLWithBinding(t *testing.T, idpMetadataURL, binding string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, _ := url.Parse(idpMetadataURL)
	md, err := samlsp.FetchMetadata(ctx, http.DefaultClient, *u)
	if err != nil {
		t.Fatal(err)
	}
	sp.opts.IDPMetadata = md
	mw, err := samlsp.New(sp.opts)
	if err != nil {
		t.Fatal(err)
	}
	mw.Binding = binding
	mux := http.NewServeMux()
	mux.Handle("/saml/", mw)
	mux.Handle("/", mw.RequireAccount(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("hello " + samlsp.AttributeFromContext(r.Context(), "uid") + " <" + samlsp.AttributeFromContext(r.Context(), "email") + ">"))
	})))
	srv := &http.Server{Handler: mux}
	go srv.Serve(sp.l)
	t.Cleanup(func() { srv.Close() })
}

// drainSAMLNavs forgets the main-frame navigations seen so far.
func (c *chromeTab) drainSAMLNavs() { c.navsSoFar() }

// waitSAMLLanding waits until the main frame navigates to host with path,
// and returns that URL and the navigations up to it.
func (c *chromeTab) waitSAMLLanding(host, path string, timeout time.Duration) (*url.URL, []string) {
	c.t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case raw := <-c.navs:
			seen = append(seen, raw)
			if u, err := url.Parse(raw); err == nil && u.Host == host && u.Path == path {
				return u, seen
			}
		case <-deadline:
			c.t.Fatalf("browser: no navigation to %s%s within %v; navigations: %v; now at %s", host, path, timeout, seen, c.location())
			return nil, seen
		}
	}
}

// navsSoFar returns and forgets the main-frame navigations seen so far.
func (c *chromeTab) navsSoFar() []string {
	var seen []string
	for {
		select {
		case raw := <-c.navs:
			seen = append(seen, raw)
		default:
			return seen
		}
	}
}

// samlBrowserSignIn opens the SP's page start, which leads (through
// the SP's redirect or its own auto-posting form) to the bridge's
// sign-in form, and signs in as user with the test password; it returns
// the number the waiting page shows. beforeForm runs once the sign-in
// form is shown, with the main-frame navigations that led to it.
func (c *chromeTab) samlBrowserSignIn(start, user string, beforeForm func(navs []string)) string {
	c.t.Helper()
	c.drainSAMLNavs()
	c.do("open the sign-in form through the SP",
		chromedp.Navigate(start),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	)
	if u, err := url.Parse(c.location()); err != nil || !strings.HasPrefix(u.Path, "/login/") {
		c.t.Fatalf("the SP's %s did not lead to the bridge's sign-in form: %s", start, c.location())
	}
	if beforeForm != nil {
		beforeForm(c.navsSoFar())
	}
	c.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#waiting")),
		chromedp.WaitVisible(chromedp.CSS(numberSel)),
	)
	n := strings.TrimSpace(tabRun(c, "read the number", chromedp.Text(chromedp.CSS(numberSel))))
	if !regexp.MustCompile(`^\d+$`).MatchString(n) {
		c.t.Fatalf("the waiting page's number is %q, not digits", n)
	}
	return n
}

func TestBrowserSAMLRedirectAndPost(t *testing.T) {
	bin, phoneBin := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin, phone: phoneBin}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	// The Redirect-binding SP writes b.dir/sp.xml; the POST-binding one
	// writes into its own directory, and its metadata is copied to
	// b.dir/sp-post.xml.
	redirSP := newSAMLSP(t, b.dir, false)
	postDir := t.TempDir()
	postSP := newSAMLSP(t, postDir, false)
	md, err := os.ReadFile(filepath.Join(postDir, "sp.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "sp-post.xml"), md, 0o600); err != nil {
		t.Fatal(err)
	}
	b.public = freePort(t)
	b.start(b.baseConfig(nil) + `saml:
  service_providers:
    - name: wiki
      display_name: Team wiki
      metadata_file: sp.xml
    - name: wiki-post
      display_name: Team wiki (POST)
      metadata_file: sp-post.xml
`)
	redirSP.serveSAMLWithBinding(t, b.baseURL()+"/saml/metadata", crewjam.HTTPRedirectBinding)
	postSP.serveSAMLWithBinding(t, b.baseURL()+"/saml/metadata", crewjam.HTTPPostBinding)
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com")
	phone := b.enroll("alice")
	const want = "hello alice <alice@example.com>"

	// signInAt runs the whole flow in browser c from the SP's "/" and
	// checks where it ends.
	signInAt := func(t *testing.T, c *chromeTab, sp *samlSP, beforeForm func(navs []string)) {
		t.Helper()
		start := sp.url.String() + "/"
		number := c.samlBrowserSignIn(start, "alice", beforeForm)
		waitURL := c.location()
		c.drainSAMLNavs()

		// The phone approves with the number; from here on the test does
		// nothing in the browser.
		phoneDone := b.answer(phone, "--auto-approve", "--number", number)
		landed, navs := c.waitSAMLLanding(sp.url.Host, "/", 90*time.Second)
		if err := <-phoneDone; err != nil {
			t.Fatalf("phone: %v", err)
		}
		t.Logf("landed at %s (waiting page %s) by %v", landed, waitURL, navs)
		// The way there: the bridge's auto-posting response page, whose
		// inline script (allowed by its CSP hash) posts to the SP's ACS,
		// which sends the browser back to "/".
		done := false
		for _, n := range navs {
			if u, err := url.Parse(n); err == nil && u.Host == b.baseURL()[len("http://"):] && u.Path == "/saml/login/done" {
				done = true
			}
		}
		if !done {
			t.Errorf("the browser did not pass the bridge's /saml/login/done page: %v", navs)
		}
		c.do("wait for the SP's page", chromedp.WaitReady(chromedp.CSS("body")))
		body := strings.TrimSpace(tabRun(c, "read the SP's page", chromedp.Text(chromedp.CSS("body"))))
		if body != want {
			t.Errorf("the SP's page says %q, want %q", body, want)
		}
		if loc := c.location(); loc != start {
			t.Errorf("the browser is at %s, want the SP's %s", loc, start)
		}
		c.check()
	}

	t.Run("redirect", func(t *testing.T) {
		c := startChromium(t)
		signInAt(t, c, redirSP, func(navs []string) {
			// samlsp answers "/" with a redirect: no page of the SP is
			// shown on the way to the sign-in form.
			for _, n := range navs {
				if u, err := url.Parse(n); err == nil && u.Host == redirSP.url.Host {
					t.Errorf("the Redirect-binding SP showed a page (%s) before the sign-in form: %v", n, navs)
				}
			}
		})
	})

	t.Run("post", func(t *testing.T) {
		// A fresh browser (its own user-data directory): no session at the
		// bridge, no cookies of the other SP.
		c := startChromium(t)
		signInAt(t, c, postSP, func(navs []string) {
			// The POST binding: samlsp showed its own auto-posting page
			// at "/", which posted the AuthnRequest to the bridge.
			shown := false
			for _, n := range navs {
				if u, err := url.Parse(n); err == nil && u.Host == postSP.url.Host && u.Path == "/" {
					shown = true
				}
			}
			if !shown {
				t.Errorf("the POST-binding SP showed no request page before the sign-in form: %v", navs)
			}
			// That page comes with samlsp's CSP (with directives Chromium
			// does not know): what it causes is samlsp's, not the
			// bridge's. Anything else stays a problem.
			spPage := "[" + postSP.url.String() + "/]"
			c.mu.Lock()
			var keep []string
			for _, p := range c.problems {
				if strings.HasSuffix(p, spPage) {
					t.Logf("on samlsp's request page (not the bridge's): %s", p)
				} else {
					keep = append(keep, p)
				}
			}
			c.problems = keep
			c.mu.Unlock()
		})
	})
}
