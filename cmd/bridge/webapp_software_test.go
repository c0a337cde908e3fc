package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The web app on a phone without a platform authenticator (no virtual
// authenticator in this Chromium): the app says it cannot make a passkey,
// offers the key kept in the browser, and the device it enrolls approves
// and denies real RADIUS and OIDC logins with JWS answers.
func TestWebAppSoftwareKey(t *testing.T) {
	phone := startPhone(t)
	l := listenLoopback(t)
	b := startAppBridge(t, l.Addr().String(), "")
	b.user("alice")
	b.user("bob")
	startRP(t, l, b.issuer(), "wiki", oidcSecret, []string{"openid", "email"})

	t.Run("enroll", func(t *testing.T) {
		defer use(t, phone, b)()
		got, reason := phone.enrollApp(b.appLink("alice"), false)
		if got != "alice" {
			t.Fatalf("the app enrolled %q, want alice", got)
		}
		if !strings.Contains(reason, "cannot make a passkey") {
			t.Errorf("the fallback's reason is %q", reason)
		}
		if k := phone.text(`[data-testid="account-key"]`); !strings.Contains(k, "weaker") {
			t.Errorf("the account list says %q of a software key: it must say it is weaker", k)
		}
		ds := b.devices("alice")
		if len(ds) != 1 || ds[0].Platform != "web" || ds[0].Status != "active" {
			t.Fatalf("devices of alice: %+v", ds)
		}
	})

	t.Run("RADIUS approved with the number", func(t *testing.T) {
		defer use(t, phone, b)()
		number, state := b.radiusStart("alice")
		ch := phone.waitChallenge()
		if ch.App != "Sign in to vpn?" || ch.User != "alice" || !ch.Number {
			t.Errorf("the challenge screen shows %+v", ch)
		}
		phone.decide("approve", number)
		if o, title := phone.outcome(); o != "approved" || title != "Approved" {
			t.Errorf("outcome %q (%q), want approved", o, title)
		}
		phone.appShot("approved")
		if code := b.radiusFinish("alice", state); code != "Access-Accept" {
			t.Fatalf("after approving in the app the NAS got %q", code)
		}
		phone.done()
	})

	t.Run("RADIUS wrong number", func(t *testing.T) {
		defer use(t, phone, b)()
		number, state := b.radiusStart("alice")
		wrong := "00"
		if number == wrong {
			wrong = "11"
		}
		phone.waitChallenge()
		phone.decide("approve", wrong)
		if o, title := phone.outcome(); o != "mismatch" || title != "The numbers did not match" {
			t.Errorf("outcome %q (%q), want mismatch", o, title)
		}
		if code := b.radiusFinish("alice", state); code != "Access-Reject" {
			t.Fatalf("after a wrong number the NAS got %q", code)
		}
		phone.done()
	})

	t.Run("RADIUS denied", func(t *testing.T) {
		defer use(t, phone, b)()
		_, state := b.radiusStart("alice")
		phone.waitChallenge()
		phone.decide("deny", "")
		if o, _ := phone.outcome(); o != "denied" {
			t.Errorf("outcome %q, want denied", o)
		}
		if code := b.radiusFinish("alice", state); code != "Access-Reject" {
			t.Fatalf("after denying the NAS got %q", code)
		}
		phone.done()
	})

	t.Run("OIDC approved", func(t *testing.T) {
		defer use(t, phone, b)()
		signin := phone.newWindow()
		number := signin.browserSignIn(l.Addr().String(), "alice")
		ch := phone.waitChallenge()
		if ch.App != "Sign in to Team wiki?" || ch.IP != "127.0.0.1" {
			t.Errorf("the challenge screen shows %+v", ch)
		}
		phone.decide("approve", number)
		if o, _ := phone.outcome(); o != "approved" {
			t.Errorf("outcome %q, want approved", o)
		}
		signin.waitNavigation("/callback", 60*time.Second)
		if body := signin.text("body"); body != "signed in" {
			t.Errorf("the relying party's page says %q", body)
		}
		phone.done()
		signin.check()
	})

	t.Run("refused where only hardware keys count", func(t *testing.T) {
		defer use(t, phone, b)()
		// Payroll accepts hardware keys only: the sign-in says this phone
		// cannot approve there, and the phone is not asked.
		signin := phone.newWindow()
		// A new browser session (the OIDC case's session is not what is
		// tested here).
		signin.do("clear cookies", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			_, err := cdp.Call(ctx, tab, network.ClearBrowserCookies, cdp.Empty{})
			return err
		}))
		q := url.Values{"client_id": {"payroll"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s1"},
			"redirect_uri":   {"http://" + l.Addr().String() + "/payroll"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		signin.do("sign in to payroll",
			chromedp.Navigate(b.issuer()+"/authorize?"+q.Encode()),
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`main p[role="alert"]`)))
		if h := signin.text("main h1"); h != "This phone cannot approve here" {
			t.Errorf("the sign-in page says %q", h)
		}
		refused := false
		for _, e := range auditEvents(t, b.liveBridge, "alice") {
			if e.Action == "push.start" && e.Result != "success" && strings.Contains(e.Reason, "device-key policy") {
				refused = true
			}
		}
		if !refused {
			t.Error("no refused push.start for the device-key policy")
		}
		if shown := tabRun(phone, "is a challenge shown", chromedp.Evaluate[bool](`!document.getElementById('view-challenge').hidden`)); shown {
			t.Error("the phone was asked for an application that does not accept its key")
		}
		signin.check()
	})

	t.Run("second account and fraud report", func(t *testing.T) {
		defer use(t, phone, b)()
		if got, _ := phone.enrollApp(b.appLink("bob"), false); got != "bob" {
			t.Fatalf("the app enrolled %q, want bob", got)
		}
		phone.waitFor("two accounts listed", `document.querySelectorAll('[data-testid="account"]').length === 2`, 10*time.Second)
		_, state := b.radiusStart("bob")
		ch := phone.waitChallenge()
		if ch.User != "bob" {
			t.Errorf("the challenge is for %q, want bob", ch.User)
		}
		if acct := phone.text("#challenge-account"); !strings.Contains(acct, "bob") {
			t.Errorf("with two accounts the challenge names the account: %q", acct)
		}
		phone.decide("fraud", "")
		if o, _ := phone.outcome(); o != "reported" {
			t.Errorf("outcome %q, want reported", o)
		}
		if code := b.radiusFinish("bob", state); code != "Access-Reject" {
			t.Fatalf("after a fraud report the NAS got %q", code)
		}
		if auditCount(t, b.liveBridge, "push.fraud", "bob") == 0 {
			t.Errorf("no push.fraud audit event for bob")
		}
		phone.done()
	})

	t.Run("a browser without Ed25519 is refused before the code is spent", func(t *testing.T) {
		defer use(t, phone, b)()
		b.user("carol")
		link := b.appLink("carol")
		// An older browser (Safari 16, Chrome before 137): WebCrypto has
		// no Ed25519, so the app could never verify a challenge.
		id := tabRun(phone, "take Ed25519 away", chromedp.Action[cdppage.ScriptIdentifier](func(ctx context.Context, tab *chromedp.Target) (cdppage.ScriptIdentifier, error) {
			r, err := cdp.Call(ctx, tab, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: `(() => {
				if (!globalThis.crypto || !crypto.subtle) return; // about:blank
				const s = crypto.subtle, imp = s.importKey.bind(s);
				s.importKey = (f, k, alg, ...rest) => (alg && alg.name === 'Ed25519')
					? Promise.reject(new DOMException('Unrecognized name.', 'NotSupportedError')) : imp(f, k, alg, ...rest);
			})()`})
			return r.Identifier, err
		}))
		// A new document (not a same-page fragment change), as opening the
		// link from the camera or a mail makes.
		phone.do("leave the app", chromedp.Navigate("about:blank"))
		phone.openApp(link)
		phone.do("see that the browser is too old", chromedp.WaitVisible(chromedp.CSS("#view-unsupported")))
		if !tabRun(phone, "is the unused link named", chromedp.Evaluate[bool](`!document.getElementById('unsupported-link').hidden`)) {
			t.Errorf("the page does not say the activation link was not used")
		}
		if loc := phone.location(); strings.Contains(loc, "#") {
			t.Errorf("the activation link stays in the address bar: %s", loc)
		}
		if ds := b.devices("carol"); len(ds) != 0 {
			t.Fatalf("the old browser enrolled: %+v", ds)
		}
		phone.do("give Ed25519 back", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			_, err := cdp.Call(ctx, tab, cdppage.RemoveScriptToEvaluateOnNewDocument, cdppage.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: id})
			return err
		}))
		// The same link, in a new document of an up-to-date browser, still
		// works: its code was not spent.
		phone.do("leave the app", chromedp.Navigate("about:blank"))
		if got, _ := phone.enrollApp(link, false); got != "carol" {
			t.Fatalf("the app enrolled %q, want carol", got)
		}
		for _, w := range phone.takeProblems() {
			t.Errorf("browser console: %s", w)
		}
	})

	t.Run("in an iPad's Safari tab the Home Screen steps come first", func(t *testing.T) {
		defer use(t, phone, b)()
		b.user("dave")
		link := b.appLink("dave")
		ua := tabRun(phone, "read the user agent", chromedp.Evaluate[string](`navigator.userAgent`))
		setUA := func(what, ua string) {
			phone.do(what, chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
				_, err := cdp.Call(ctx, tab, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua})
				return err
			}))
		}
		// iPadOS Safari says Macintosh; only the touch screen (5 points, as
		// an iPad has) tells.
		phone.do("have a multi-touch screen", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			_, err := cdp.Call(ctx, tab, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 5})
			return err
		}))
		setUA("be an iPad", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15")
		defer setUA("be Chromium again", ua)
		phone.do("leave the app", chromedp.Navigate("about:blank"))
		phone.openApp(link)
		if n := tabRun(phone, "touch points", chromedp.Evaluate[int](`navigator.maxTouchPoints`)); n <= 1 {
			t.Fatalf("the phone has %d touch points: the test needs a touch screen", n)
		}
		phone.do("see the Home Screen steps", chromedp.WaitVisible(chromedp.CSS("#enroll-ios")))
		if tabRun(phone, "is setting up offered first", chromedp.Evaluate[bool](`!document.getElementById('enroll-actions').hidden`)) {
			t.Errorf("in a Safari tab the app offers to set up before the Home Screen steps")
		}
		if got := tabRun(phone, "the link to copy", chromedp.Evaluate[string](`document.getElementById('enroll-ios-link').value`)); got != link {
			t.Errorf("the link to copy is %q, want %q", got, link)
		}
		if ds := b.devices("dave"); len(ds) != 0 {
			t.Fatalf("enrolled before the user chose: %+v", ds)
		}
		// The secondary choice: set up in the tab all the same.
		phone.do("set up here anyway", chromedp.Click(chromedp.CSS("#enroll-ios-here")),
			chromedp.WaitVisible(chromedp.CSS("#enroll-software")), chromedp.Click(chromedp.CSS("#enroll-software")),
			chromedp.WaitVisible(chromedp.CSS(viewHome)))
		if m := setUpRE.FindStringSubmatch(phone.text("#status")); m == nil || m[1] != "dave" {
			t.Errorf("after setting up the app says %q", phone.text("#status"))
		}
		if ds := b.devices("dave"); len(ds) != 1 {
			t.Errorf("devices of dave: %+v", ds)
		}
	})

	// Last: the fraud report locks alice's pushes.
	t.Run("superseded on screen, This wasn't me still reports it", func(t *testing.T) {
		defer use(t, phone, b)()
		before := auditCount(t, b.liveBridge, "push.fraud", "alice")
		b.radiusStart("alice")
		phone.waitChallenge()
		// The attacker's next attempt, from another station: a login for
		// another client supersedes the one on screen.
		other := strings.Replace(login("alice", password), `"203.0.113.9"`, `"198.51.100.7"`, 1)
		if out, _ := b.radclient(b.auth, "auth", radiusSecret, other); radclientCode(out) != "Access-Challenge" {
			t.Fatalf("the second login got:\n%s", out)
		}
		if o, _ := phone.outcome(); o != "elsewhere" {
			t.Fatalf("the superseded challenge ends as %q, want elsewhere", o)
		}
		phone.do("report it late", chromedp.Click(chromedp.CSS("#result-fraud")),
			chromedp.WaitVisible(chromedp.CSS("#confirm-yes")), chromedp.Click(chromedp.CSS("#confirm-yes")))
		phone.waitFor("the report taken", `document.getElementById('view-result').dataset.outcome === 'reported_late'`, browserStep)
		if n := auditCount(t, b.liveBridge, "push.fraud", "alice"); n != before+1 {
			t.Errorf("push.fraud audit events of alice: %d, want %d", n, before+1)
		}
	})
	phone.check()
}
