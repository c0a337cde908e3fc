package main

// The harness of the web app's end-to-end tests: the real bridge binary
// with its public base URL on http://localhost:PORT (a WebAuthn RP ID must
// be a domain name, and localhost is a secure context), headless Chromium
// at phone size running the app at /app/, and what drives it: activation
// links, the app's buttons, DevTools' virtual authenticator.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

const (
	appName = "Example sign-in"
	// The phone's screen in CSS pixels (an iPhone 14's).
	phoneWidth, phoneHeight = 390, 844
)

// appBridge is a bridge serving the web app, with a RADIUS client in
// challenge mode (number matching), the OIDC clients of oidcClients and
// payroll, an OIDC client that accepts hardware keys only.
type appBridge struct {
	*liveBridge
	base string // http://localhost:PORT
}

// startAppBridge starts the bridge; rpAddr is the OIDC relying party's
// address, more is YAML added after the app section's name: indented by
// two spaces it continues the app section.
func startAppBridge(t *testing.T, rpAddr string, more string) *appBridge {
	t.Helper()
	requireRadclient(t)
	bin, phone := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin, phone: phone, auth: freeUDPPort(t), public: freePort(t)}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	for name, secret := range map[string]string{"radius.secret": radiusSecret, "oidc.secret": oidcSecret} {
		if err := os.WriteFile(filepath.Join(b.dir, name), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := fmt.Sprintf("http://localhost:%d", b.public)
	text := b.baseConfig(nil)
	with := strings.Replace(text, "allow_plain_http: true}", "allow_plain_http: true, base_url: "+base+"}", 1)
	if with == text {
		t.Fatal("baseConfig no longer writes the public listener as {listen: ..., allow_plain_http: true}; update startAppBridge")
	}
	b.start(with + fmt.Sprintf(`radius:
  listen: 127.0.0.1:%d
  accounting_listen: "off"
  clients:
    - name: vpn
      address: 127.0.0.1
      secret_file: radius.secret
      wait: challenge
%s
app:
  name: %s
%s
`, b.auth, strings.Replace(oidcClients(rpAddr), "web:\n", fmt.Sprintf(`    - id: payroll
      name: Payroll
      secret_file: oidc.secret
      redirect_uris: [http://%s/payroll]
      device_keys: hardware
web:
`, rpAddr), 1), appName, more))
	return &appBridge{liveBridge: b, base: base}
}

// appLink makes a one-time activation for user and returns the web app's
// activation link (<base>/app/#enroll?...&user=USER), from the CLI's
// app_url when it prints one, else from the native link's parameters as
// the shared design defines it.
func (b *appBridge) appLink(user string) string {
	b.t.Helper()
	var act struct {
		URL    string `json:"url"`
		AppURL string `json:"app_url"`
	}
	if err := json.Unmarshal([]byte(b.cli("", "devices", "enroll", user, "--json")), &act); err != nil {
		b.t.Fatal(err)
	}
	if act.AppURL != "" {
		return act.AppURL
	}
	u, err := url.Parse(act.URL)
	if err != nil || u.Scheme != "bridge" {
		b.t.Fatalf("activation URL %q", act.URL)
	}
	q := u.Query()
	q.Set("user", user)
	return b.base + "/app/#enroll?" + q.Encode()
}

// device is what `bridge devices list --json` says of a device.
type device struct {
	ID, Name, Platform, Status string
	PushProvider               string `json:"push_provider"`
	PushStale                  bool   `json:"push_token_stale"`
}

func (b *appBridge) devices(user string) []device {
	b.t.Helper()
	var ds []device
	if err := json.Unmarshal([]byte(b.cli("", "devices", "list", user, "--json")), &ds); err != nil {
		b.t.Fatal(err)
	}
	return ds
}

// radiusStart sends the first Access-Request of a challenge-mode login and
// returns the number the NAS would show and the State to send back.
func (b *appBridge) radiusStart(user string) (number, state string) {
	b.t.Helper()
	out, _ := b.radclient(b.auth, "auth", radiusSecret, login(user, password))
	num, st := radiusNumberRE.FindStringSubmatch(out), radiusStateRE.FindStringSubmatch(out)
	if radclientCode(out) != "Access-Challenge" || num == nil || st == nil {
		b.t.Fatalf("the first request was not answered with an Access-Challenge with a number:\n%s", out)
	}
	return num[1], st[1]
}

// radiusFinish sends the second request (the user pressed Enter) and
// returns the answer's code.
func (b *appBridge) radiusFinish(user, state string) string {
	b.t.Helper()
	out, _ := b.radclient(b.auth, "auth", radiusSecret, login(user, "", "State = "+state))
	return radclientCode(out)
}

// startPhone is Chromium at phone size, the app's phone.
func startPhone(t *testing.T) *chromeTab {
	t.Helper()
	c := startChromium(t)
	c.do("emulate a phone", chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	return c
}

// newWindow opens another window in the same browser (the sign-in side of
// an OIDC login, beside the phone's app), observed like the first.
func (c *chromeTab) newWindow() *chromeTab {
	c.t.Helper()
	w := &chromeTab{t: c.t, navs: make(chan string, 256)}
	ctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithNewWindow(true))
	w.ctx = ctx
	c.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		c.t.Fatalf("opening a window: %v", err)
	}
	if err := chromedp.Listen(ctx, w.observe); err != nil {
		c.t.Fatal(err)
	}
	return w
}

// virtualAuthenticator gives the tab a platform authenticator with user
// verification (a phone's fingerprint or face unlock) and returns its id.
func (c *chromeTab) virtualAuthenticator() webauthn.AuthenticatorID {
	c.t.Helper()
	var id webauthn.AuthenticatorID
	c.do("add a virtual authenticator", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tab, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		r, err := cdp.Call(ctx, tab, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true,
		}})
		id = r.AuthenticatorID
		return err
	}))
	return id
}

// credentials lists the virtual authenticator's credentials.
func (c *chromeTab) credentials(id webauthn.AuthenticatorID) []*webauthn.Credential {
	c.t.Helper()
	var creds []*webauthn.Credential
	c.do("list the authenticator's credentials", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		r, err := cdp.Call(ctx, tab, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
		creds = r.Credentials
		return err
	}))
	return creds
}

// The app's screens.
const (
	viewHome      = "#view-home"
	viewEnroll    = "#view-enroll"
	viewChallenge = "#view-challenge"
	viewResult    = "#view-result"
)

// openApp loads the app (or an activation link) and waits until it has
// started.
func (c *chromeTab) openApp(u string) {
	c.t.Helper()
	c.do("open the app", chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
}

var setUpRE = regexp.MustCompile(`This phone is set up for (\S+)\.`)

// enrollApp opens an activation link in the app and sets the phone up:
// with the passkey when passkey is true (a virtual authenticator must be
// there), else with the key kept in the browser, which the app must offer
// because there is no platform authenticator. It returns the user the
// app says it was set up for and, for a software key, the reason the app
// gave for offering it.
func (c *chromeTab) enrollApp(link string, passkey bool) (user, reason string) {
	c.t.Helper()
	c.openApp(link)
	c.do("see the enrollment screen", chromedp.WaitVisible(chromedp.CSS(viewEnroll)))
	if u, _ := url.Parse(c.location()); u != nil && u.Fragment != "" {
		c.t.Errorf("the activation link stays in the address bar: %s", c.location())
	}
	if passkey {
		c.do("set up with the passkey", chromedp.Click(chromedp.CSS("#enroll-start")))
	} else {
		c.do("see the software key offered", chromedp.WaitVisible(chromedp.CSS("#enroll-software")))
		reason = c.text("#enroll-fallback-reason")
		c.do("continue with a software key", chromedp.Click(chromedp.CSS("#enroll-software")))
	}
	c.do("wait for the account list", chromedp.WaitVisible(chromedp.CSS(viewHome)))
	status := c.text("#status")
	m := setUpRE.FindStringSubmatch(status)
	if m == nil {
		c.t.Fatalf("after enrolling the app says %q", status)
	}
	return m[1], reason
}

// text is an element's text, trimmed.
func (c *chromeTab) text(sel string) string {
	c.t.Helper()
	return strings.TrimSpace(tabRun(c, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// shownChallenge is what the challenge screen shows.
type shownChallenge struct {
	App, User, IP string
	Number        bool // the number field is there
}

// waitChallenge waits for the challenge screen and reads it.
func (c *chromeTab) waitChallenge() shownChallenge {
	c.t.Helper()
	c.waitFor("the challenge screen", `!document.getElementById('view-challenge').hidden`, browserStep)
	return shownChallenge{
		App: c.text("#challenge-app"), User: c.text("#challenge-user"), IP: c.text("#challenge-ip"),
		Number: tabRun(c, "is there a number field", chromedp.Evaluate[bool](`!document.getElementById('number-row').hidden`)),
	}
}

// decide answers the challenge on screen: approve (typing number when it
// is not ""), deny, or fraud (confirmed).
func (c *chromeTab) decide(decision, number string) {
	c.t.Helper()
	switch decision {
	case "approve":
		if number != "" {
			c.do("type the number", chromedp.SendKeys(chromedp.CSS("#number"), number))
		}
		c.do("approve", chromedp.Click(chromedp.CSS("#approve")))
	case "deny":
		c.do("deny", chromedp.Click(chromedp.CSS("#deny")))
	case "fraud":
		c.do("report", chromedp.Click(chromedp.CSS("#fraud")),
			chromedp.WaitVisible(chromedp.CSS("#confirm-yes")),
			chromedp.Click(chromedp.CSS("#confirm-yes")))
	default:
		c.t.Fatalf("decision %q", decision)
	}
}

// outcome waits for the result screen and returns its outcome (approved,
// denied, mismatch, reported, expired, elsewhere, refused) and title.
func (c *chromeTab) outcome() (string, string) {
	c.t.Helper()
	c.do("wait for the result", chromedp.WaitVisible(chromedp.CSS(viewResult)))
	o := tabRun(c, "read the outcome", chromedp.Evaluate[string](`document.getElementById('view-result').dataset.outcome`))
	return o, c.text("#result-title")
}

// done leaves the result screen.
func (c *chromeTab) done() {
	c.t.Helper()
	c.do("press Done", chromedp.Click(chromedp.CSS("#result-done")), chromedp.WaitVisible(chromedp.CSS(viewHome)))
}

// evalAsync runs an async JavaScript function body in the page and
// returns its JSON result.
func evalAsync[T any](c *chromeTab, what, body string) T {
	c.t.Helper()
	return tabRun(c, what, chromedp.Evaluate[T](`(async () => {`+body+`})()`, chromedp.EvalAwaitPromise))
}

// waitFor polls cond in the page until it is true.
func (c *chromeTab) waitFor(what, js string, d time.Duration) {
	c.t.Helper()
	if !eventually(d, func() bool {
		return tabRun(c, what, chromedp.Evaluate[bool](js))
	}) {
		c.mu.Lock()
		seen := append(append([]string(nil), c.problems...), c.warnings...)
		c.mu.Unlock()
		page := tabRun(c, "read the page", chromedp.Evaluate[string](`document.body.innerText`))
		c.t.Fatalf("browser: %s: not within %v (at %s); the page says:\n%s\nconsole so far:\n%s", what, d, c.location(), page, strings.Join(seen, "\n"))
	}
}

// issuer is the OpenID Provider's issuer on the base URL.
func (b *appBridge) issuer() string { return b.base + "/oidc" }

// use makes the phone and the bridge report to the subtest t until the
// returned func runs (a helper's Fatal must stop the subtest, not its
// parent).
func use(t *testing.T, c *chromeTab, b *appBridge) func() {
	ct, bt := c.t, b.t
	c.t, b.t = t, t
	return func() { c.t, b.t = ct, bt }
}
