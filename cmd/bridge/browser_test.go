package main

// End-to-end tests in a real browser: headless Chromium, driven over the
// DevTools protocol with chromedp, signs in at a relying party through the
// bridge's pages; the waiting page's own script (wait.js) must carry the
// sign-in on once the phone has answered.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

const (
	chromiumPath = "/usr/bin/chromium"
	// browserStep bounds one browser step (a page load, a wait for an
	// element); the CI machine is small and shared.
	browserStep = 60 * time.Second
	// numberSel is the number-matching number on the waiting page.
	numberSel = `#waiting p.number[data-testid="number"]`
)

// chromeTab is one headless Chromium with one tab, and what the tab saw:
// console errors, uncaught exceptions and browser-log errors (CSP
// violations among them), requests to hosts other than loopback, and the
// main frame's navigations.
type chromeTab struct {
	t   *testing.T
	ctx context.Context // the tab's chromedp context; no deadline

	mu       sync.Mutex
	problems []string // console errors, exceptions, error log entries
	warnings []string // console and log warnings, for the test log
	foreign  []string // URLs of requests to non-loopback hosts
	navs     chan string
	// Workers (the web app's service worker) the tab attached to: their
	// console, exceptions, log (CSP) and requests are observed like the
	// page's. Their contexts end with the tab's.
	workers  map[target.ID]context.CancelFunc
	attached []string // URLs of the workers observed

	out lockedBuffer // Chromium's stdout and stderr, chromedp's own log
}

// lockedBuffer is a bytes.Buffer for writers on several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startChromium starts headless Chromium for the test (skipping, or
// failing where CI requires it, when it is not installed) and opens a tab.
// Everything stops when the test ends.
func startChromium(t *testing.T) *chromeTab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Unavailable(t, "chromium", "apt-get install chromium")
	}
	c := &chromeTab{t: t, navs: make(chan string, 256)}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// The test machine has no network beyond loopback: nothing in the
		// background may try to reach out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		// No host name but localhost resolves (the rules apply to IP
		// literals too). A request elsewhere is still seen, and failed,
		// below.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&c.out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	logf := func(format string, args ...any) { fmt.Fprintf(&c.out, "chromedp: "+format+"\n", args...) }
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logf), chromedp.WithLogf(logf))
	c.ctx = ctx
	t.Cleanup(func() {
		cancelTab()   // closes the tab and the browser
		cancelAlloc() // waits for the process to exit
		if t.Failed() {
			t.Logf("chromium output (without D-Bus complaints):\n%s", c.output())
		}
	})

	// The first Do starts the browser and binds it to ctx, so it cannot
	// carry a deadline itself: a timer cancels a start that hangs.
	hung := time.AfterFunc(2*time.Minute, cancelTab)
	err := chromedp.Do(ctx)
	hung.Stop()
	if err != nil {
		t.Fatalf("starting chromium: %v\n%s", err, c.output())
	}
	if err := chromedp.Listen(ctx, c.observe); err != nil {
		t.Fatal(err)
	}
	return c
}

// output is Chromium's output and chromedp's log, without the lines about
// the D-Bus that test machines do not have.
func (c *chromeTab) output() string {
	var keep []string
	for _, line := range strings.Split(c.out.String(), "\n") {
		if !strings.Contains(line, ":ERROR:dbus/") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// observe runs in the tab's event loop: it must return fast and run no
// command.
func (c *chromeTab) observe(ev any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		msg := fmt.Sprintf("console.%s: %s", ev.Type, remoteArgs(ev.Args))
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			c.problems = append(c.problems, msg)
		case runtime.ConsoleAPICalledTypeWarning:
			c.warnings = append(c.warnings, msg)
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		c.problems = append(c.problems, fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		msg := fmt.Sprintf("log (%s, %s): %s [%s]", e.Source, e.Level, e.Text, e.URL)
		switch {
		case e.Level == cdplog.EntryLevelError && e.Source == cdplog.EntrySourceNetwork && strings.HasSuffix(e.URL, "/favicon.ico"):
			// The browser asks a page without an icon for /favicon.ico by
			// itself: the relying party's plain-text answer here. (The
			// bridge's pages declare an empty icon, so they cause none.)
			c.warnings = append(c.warnings, msg)
		case e.Level == cdplog.EntryLevelError:
			c.problems = append(c.problems, msg)
		case e.Level == cdplog.EntryLevelWarning:
			c.warnings = append(c.warnings, msg)
		}
	case *network.EventRequestWillBeSent:
		if !loopbackURL(ev.Request.URL) {
			c.foreign = append(c.foreign, ev.Request.URL)
		}
	case *target.EventAttachedToTarget:
		if k := ev.TargetInfo.Type; k == "service_worker" || k == "worker" || k == "shared_worker" {
			id := ev.TargetInfo.TargetID
			if _, seen := c.workers[id]; !seen {
				if c.workers == nil {
					c.workers = map[target.ID]context.CancelFunc{}
				}
				// Attaching runs commands: not in the event loop.
				wctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithTargetID(id))
				c.workers[id] = cancel
				go c.attachWorker(wctx, ev.TargetInfo.URL)
			}
		}
	case *cdppage.EventFrameNavigated:
		if ev.Frame.ParentID == "" {
			select {
			case c.navs <- ev.Frame.URL:
			default:
			}
		}
	}
}

// attachWorker attaches to a worker the tab auto-attached and observes it
// as the page. A worker that is gone before (a service worker stopped
// when idle) is no problem: it is attached again when it starts.
func (c *chromeTab) attachWorker(ctx context.Context, u string) {
	if err := chromedp.Do(ctx); err != nil {
		fmt.Fprintf(&c.out, "chromedp: attaching to the worker %s: %v\n", u, err)
		return
	}
	if err := chromedp.Listen(ctx, c.observe); err != nil {
		fmt.Fprintf(&c.out, "chromedp: observing the worker %s: %v\n", u, err)
		return
	}
	c.mu.Lock()
	c.attached = append(c.attached, u)
	c.mu.Unlock()
}

// workersSeen lists the URLs of the workers observed so far.
func (c *chromeTab) workersSeen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.attached...)
}

func remoteArgs(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// loopbackURL reports whether a request stays on this machine: http(s)
// and ws(s) to localhost or a loopback address, or a scheme that is not
// fetched from a network at all.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "data", "blob", "about":
		return true
	case "http", "https", "ws", "wss":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

// do runs steps with a deadline.
func (c *chromeTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.t.Fatalf("browser: %s: %v (at %s)", what, err, c.location())
	}
}

// tabRun runs one action with a deadline and returns its value.
func tabRun[T any](c *chromeTab, what string, a chromedp.Action[T]) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		c.t.Fatalf("browser: %s: %v (at %s)", what, err, c.location())
	}
	return v
}

// location is where the tab is, for messages.
func (c *chromeTab) location() string {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown: " + err.Error()
	}
	return loc
}

// waitNavigation waits until the main frame navigates to a URL with the
// path, and returns that URL. Earlier navigations are passed over.
func (c *chromeTab) waitNavigation(path string, timeout time.Duration) *url.URL {
	c.t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case raw := <-c.navs:
			seen = append(seen, raw)
			if u, err := url.Parse(raw); err == nil && u.Path == path {
				return u
			}
		case <-deadline:
			c.t.Fatalf("browser: no navigation to %s within %v; navigations: %v; now at %s", path, timeout, seen, c.location())
			return nil
		}
	}
}

// check fails the test for console errors, CSP violations, uncaught
// exceptions and requests to other hosts seen so far, and logs warnings.
func (c *chromeTab) check() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.warnings {
		c.t.Logf("browser warning: %s", w)
	}
	c.warnings = nil
	for _, p := range c.problems {
		c.t.Errorf("browser console: %s", p)
	}
	for _, u := range c.foreign {
		c.t.Errorf("the browser made a request to a host other than loopback: %s", u)
	}
}

// takeProblems returns and forgets the problems seen so far.
func (c *chromeTab) takeProblems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.problems
	c.problems = nil
	return p
}

// browserSignIn loads the relying party's /login, which sends the browser
// to the bridge's sign-in form, and signs in as user with the test
// password; it returns the number the waiting page shows.
func (c *chromeTab) browserSignIn(rpAddr, user string) string {
	c.t.Helper()
	c.do("open the sign-in form",
		chromedp.Navigate("http://"+rpAddr+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	)
	if u, err := url.Parse(c.location()); err != nil || !strings.HasPrefix(u.Path, "/login/") {
		c.t.Fatalf("the relying party's /login did not lead to the bridge's sign-in form: %s", c.location())
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

// saveScreenshot writes png as name in dir, and also in $BRIDGE_SCREENSHOTS
// when that is set.
func saveScreenshot(t *testing.T, dir, name string, png []byte) {
	t.Helper()
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	dirs := []string{dir}
	if d := os.Getenv("BRIDGE_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
}

func TestBrowserSignInWithChromium(t *testing.T) {
	c := startChromium(t)
	l := listenLoopback(t)
	b := startOIDCBridge(t, oidcClients(l.Addr().String()))
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com")
	phone := b.enroll("alice")
	party := startRP(t, l, b.issuer(), "wiki", oidcSecret, []string{"openid", "email"})

	number := c.browserSignIn(l.Addr().String(), "alice")
	waitURL := c.location()

	// The phone approves, typing the number the page shows. From here on
	// the test does nothing in the browser: the page's script must learn
	// the outcome and carry on to the relying party.
	phoneDone := b.answer(phone, "--auto-approve", "--number", number)
	landed := c.waitNavigation("/callback", 90*time.Second)
	if err := <-phoneDone; err != nil {
		t.Fatalf("phone: %v", err)
	}
	if landed.Host != l.Addr().String() {
		t.Errorf("landed at %s, not at the relying party %s", landed, l.Addr())
	}
	if landed.Query().Get("iss") != b.issuer() {
		t.Errorf("the authorization response has no iss=%s: %s", b.issuer(), landed)
	}
	c.do("wait for the relying party's page", chromedp.WaitReady(chromedp.CSS("body")))
	body := strings.TrimSpace(tabRun(c, "read the relying party's page", chromedp.Text(chromedp.CSS("body"))))
	if body != "signed in" {
		t.Errorf("the relying party's page says %q, want %q", body, "signed in")
	}
	if u, err := url.Parse(c.location()); err != nil || u.Path != "/callback" {
		t.Errorf("the browser is at %s, want the relying party's /callback (came from %s)", c.location(), waitURL)
	}

	select {
	case tokens := <-party.tokens:
		if tokens.IDTokenClaims == nil || tokens.IDTokenClaims.Subject != "alice" {
			t.Errorf("ID token claims: %+v", tokens.IDTokenClaims)
		}
		if tokens.AccessToken == "" {
			t.Error("no access token")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the relying party received no tokens")
	}
	c.check()
}

func TestBrowserDeniedPush(t *testing.T) {
	c := startChromium(t)
	l := listenLoopback(t)
	b := startOIDCBridge(t, oidcClients(l.Addr().String()))
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com")
	phone := b.enroll("alice")
	party := startRP(t, l, b.issuer(), "wiki", oidcSecret, []string{"openid", "email"})

	c.browserSignIn(l.Addr().String(), "alice")

	// The phone denies; the page's script must move to the failure page
	// by itself.
	if err := <-b.answer(phone, "--auto-deny"); err != nil {
		t.Fatalf("phone: %v", err)
	}
	c.do("wait for the failure page", chromedp.WaitVisible(chromedp.CSS(`form[action$="/restart"] button`)))
	if h := strings.TrimSpace(tabRun(c, "read the heading", chromedp.Text(chromedp.CSS("main h1")))); h != "Sign-in denied" {
		t.Errorf("failure page heading %q, want %q", h, "Sign-in denied")
	}
	if p := strings.TrimSpace(tabRun(c, "read the message", chromedp.Text(chromedp.CSS(`main p[role="alert"]`)))); !strings.Contains(p, "denied on your phone") {
		t.Errorf("failure page message %q", p)
	}
	button := strings.TrimSpace(tabRun(c, "read the button", chromedp.Text(chromedp.CSS(`form[action$="/restart"] button`))))
	if button != "Try again" {
		t.Errorf("failure page button %q, want %q", button, "Try again")
	}

	// "Try again" shows the sign-in form again.
	c.do("try again",
		chromedp.Click(chromedp.CSS(`form[action$="/restart"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.WaitVisible(chromedp.CSS("#password")),
	)
	if u, err := url.Parse(c.location()); err != nil || !strings.HasPrefix(u.Path, "/login/") {
		t.Errorf("after Try again the browser is at %s", c.location())
	}

	select {
	case tok := <-party.tokens:
		t.Errorf("the relying party got tokens after a denied push: %+v", tok.IDTokenClaims)
	default:
	}
	c.check()

	// The checks above would pass if the listener saw nothing: make sure a
	// CSP violation on these pages does reach it. An inline script is
	// against the policy (script-src 'self').
	c.do("inject an inline script", chromedp.Evaluate[chromedp.Void](
		`(() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; document.head.appendChild(s); })()`))
	if ran := tabRun(c, "read window.inlineRan", chromedp.Evaluate[bool](`window.inlineRan === true`)); ran {
		t.Error("an inline script ran: the page has no Content-Security-Policy against it")
	}
	// The report comes as an event after the command's reply.
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := c.takeProblems()
		if strings.Contains(strings.Join(p, "\n"), "Content Security Policy") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a CSP violation did not show up as a console error (saw %q)", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// numberLayout is where the waiting page's number is, in CSS pixels.
type numberLayout struct {
	TextLeft    float64 `json:"textLeft"`
	TextRight   float64 `json:"textRight"`
	BoxLeft     float64 `json:"boxLeft"`
	BoxRight    float64 `json:"boxRight"`
	Top         float64 `json:"top"`
	Bottom      float64 `json:"bottom"`
	ScrollWidth float64 `json:"scrollWidth"`
	ClientWidth float64 `json:"clientWidth"`
	PageWidth   float64 `json:"pageWidth"`
	ViewWidth   float64 `json:"viewWidth"`
	ViewHeight  float64 `json:"viewHeight"`
}

const numberLayoutJS = `(() => {
  const el = document.querySelector('#waiting p.number[data-testid="number"]');
  const range = document.createRange();
  range.selectNodeContents(el);
  const t = range.getBoundingClientRect(), b = el.getBoundingClientRect();
  return {textLeft: t.left, textRight: t.right, boxLeft: b.left, boxRight: b.right, top: b.top, bottom: b.bottom,
    scrollWidth: el.scrollWidth, clientWidth: el.clientWidth,
    pageWidth: document.documentElement.scrollWidth, viewWidth: window.innerWidth, viewHeight: window.innerHeight};
})()`

func TestBrowserPhoneViewport(t *testing.T) {
	const width, height = 360, 740
	c := startChromium(t)
	l := listenLoopback(t)
	b := startOIDCBridge(t, oidcClients(l.Addr().String()))
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com")
	b.enroll("alice")
	startRP(t, l, b.issuer(), "wiki", oidcSecret, []string{"openid", "email"})
	shots := t.TempDir()

	c.do("emulate a phone", chromedp.EmulateViewport(width, height, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	c.do("open the sign-in form",
		chromedp.Navigate("http://"+l.Addr().String()+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	)
	saveScreenshot(t, shots, "signin.png", tabRun(c, "screenshot the sign-in form", chromedp.CaptureScreenshot()))
	if w := tabRun(c, "measure the page", chromedp.Evaluate[float64](`document.documentElement.scrollWidth`)); w > width {
		t.Errorf("the sign-in form is %v px wide, wider than the %d px viewport", w, width)
	}

	c.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(numberSel)),
	)
	checkNumber := func(scheme string) {
		t.Helper()
		m := tabRun(c, "measure the number", chromedp.Evaluate[numberLayout](numberLayoutJS))
		t.Logf("%s: number layout %+v", scheme, m)
		if m.ViewWidth != width {
			t.Errorf("%s: viewport is %v px wide, want %d", scheme, m.ViewWidth, width)
		}
		if m.TextLeft < 0 || m.TextRight > width || m.BoxLeft < 0 || m.BoxRight > width {
			t.Errorf("%s: the number (text %v..%v, box %v..%v) is not within the %d px viewport", scheme, m.TextLeft, m.TextRight, m.BoxLeft, m.BoxRight, width)
		}
		if m.ScrollWidth > m.ClientWidth {
			t.Errorf("%s: the number overflows its box (%v > %v px)", scheme, m.ScrollWidth, m.ClientWidth)
		}
		if m.Top < 0 || m.Bottom > height {
			t.Errorf("%s: the number (%v..%v) is not on the first screen (%d px high)", scheme, m.Top, m.Bottom, height)
		}
		if m.PageWidth > width {
			t.Errorf("%s: the waiting page is %v px wide, wider than the viewport: it scrolls sideways", scheme, m.PageWidth)
		}
	}
	checkNumber("light")
	saveScreenshot(t, shots, "wait.png", tabRun(c, "screenshot the waiting page", chromedp.CaptureScreenshot()))

	// The same in the dark colour scheme.
	dark := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}
	c.do("switch to the dark scheme", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		_, err := cdp.Call(ctx, tab, emulation.SetEmulatedMedia, dark)
		return err
	}))
	checkNumber("dark")
	saveScreenshot(t, shots, "wait-dark.png", tabRun(c, "screenshot the waiting page (dark)", chromedp.CaptureScreenshot()))
	c.check()
}

// "Send again" in a real browser: the old waiting page's script is
// running when the click supersedes its push, and must not submit
// "continue" over the resend's navigation (the user ended on "Replaced
// by another sign-in" while the new push was on the phone). The page the
// click leads to is the waiting page of the new push, whose approval
// signs the user in.
func TestBrowserSendAgain(t *testing.T) {
	c := startChromium(t)
	l := listenLoopback(t)
	b := startOIDCBridge(t, oidcClients(l.Addr().String()))
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com")
	phone := b.enroll("alice")
	startRP(t, l, b.issuer(), "wiki", oidcSecret, []string{"openid", "email"})

	for round := 1; round <= 2; round++ {
		first := c.browserSignIn(l.Addr().String(), "alice")
		// "Send again" is refused within 10 s of the last push.
		time.Sleep(11 * time.Second)
	drain:
		for {
			select {
			case <-c.navs:
			default:
				break drain
			}
		}
		c.do("send again", chromedp.Click(chromedp.CSS(`form[action$="/resend"] button`)))
		// The first navigation the click leads to: the resend's answer,
		// unless the old page's script overtook it.
		select {
		case raw := <-c.navs:
			if u, err := url.Parse(raw); err != nil || !strings.HasSuffix(u.Path, "/resend") {
				t.Errorf("round %d: Send again led to %s, not to the resend's answer", round, raw)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: no navigation after Send again (at %s)", round, c.location())
		}
		c.do("wait for the page", chromedp.WaitVisible(chromedp.CSS("main h1")))
		heading := strings.TrimSpace(tabRun(c, "read the heading", chromedp.Text(chromedp.CSS("main h1"))))
		if heading != "Approve on your phone" {
			t.Fatalf("round %d: after Send again the page says %q (at %s), want the waiting page", round, heading, c.location())
		}
		number := strings.TrimSpace(tabRun(c, "read the number", chromedp.Text(chromedp.CSS(numberSel))))
		t.Logf("round %d: numbers %s, then %s", round, first, number)
		phoneDone := b.answer(phone, "--auto-approve", "--number", number)
		c.waitNavigation("/callback", 90*time.Second)
		if err := <-phoneDone; err != nil {
			t.Fatalf("round %d: phone: %v", round, err)
		}
		c.do("wait for the relying party's page", chromedp.WaitReady(chromedp.CSS("body")))
		if body := strings.TrimSpace(tabRun(c, "read the relying party's page", chromedp.Text(chromedp.CSS("body")))); body != "signed in" {
			t.Fatalf("round %d: the relying party's page says %q", round, body)
		}
		// A fresh sign-in for the next round: no session reuse.
		c.do("clear cookies", func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{})
			return chromedp.Void{}, err
		})
	}
	c.check()
}
