package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// screenshotDir is where the users' page's screenshots are kept.
const screenshotDir = "../../docs/images"

// appShot saves a phone-sized screenshot of the app for the users' page
// (docs/images/app-NAME.png) when BRIDGE_UPDATE_SCREENSHOTS is set, and in
// the test's directory (and $BRIDGE_SCREENSHOTS) always.
func (c *chromeTab) appShot(name string) {
	c.t.Helper()
	png := tabRun(c, "screenshot "+name, chromedp.CaptureScreenshot())
	saveScreenshot(c.t, c.t.TempDir(), "app-"+name+".png", png)
	if os.Getenv("BRIDGE_UPDATE_SCREENSHOTS") != "" {
		if err := os.WriteFile(filepath.Join(screenshotDir, "app-"+name+".png"), png, 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
}

// overrideBits makes the virtual authenticator's next responses lack the
// user-verified flag (badUV), as an authenticator that skipped the
// fingerprint would send them; false, false restores it.
func (c *chromeTab) overrideBits(id webauthn.AuthenticatorID, badUV bool) {
	c.t.Helper()
	c.do("override the authenticator's flags", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		_, err := cdp.Call(ctx, tab, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{AuthenticatorID: id, IsBadUV: &badUV})
		return err
	}))
}

// The web app with a passkey (DevTools' virtual platform authenticator
// with user verification, as a phone's fingerprint or face unlock):
// enrollment makes the passkey, every answer is a WebAuthn assertion, and
// the bridge refuses one without user verification or with a signature
// counter that went back (a cloned credential).
func TestWebAppPasskey(t *testing.T) {
	phone := startPhone(t)
	auth := phone.virtualAuthenticator()
	l := listenLoopback(t)
	b := startAppBridge(t, l.Addr().String(), "")
	b.user("alice")
	b.user("carol")
	startRP(t, l, b.issuer(), "wiki", oidcSecret, []string{"openid", "email"})

	t.Run("enrollment without user verification is refused", func(t *testing.T) {
		defer use(t, phone, b)()
		phone.overrideBits(auth, true)
		defer phone.overrideBits(auth, false)
		phone.openApp(b.appLink("carol"))
		phone.do("set up with the passkey", chromedp.WaitVisible(chromedp.CSS("#enroll-start")), chromedp.Click(chromedp.CSS("#enroll-start")))
		phone.waitFor("the refusal", `document.getElementById('status').textContent.includes('did not accept this phone')`, browserStep)
		if ds := b.devices("carol"); len(ds) != 0 {
			t.Errorf("a passkey without user verification enrolled: %+v", ds)
		}
		expectRefused(t, phone, "/device/v1/enroll")
	})

	t.Run("enroll", func(t *testing.T) {
		defer use(t, phone, b)()
		phone.openApp(b.appLink("alice"))
		phone.do("see the enrollment screen", chromedp.WaitVisible(chromedp.CSS("#enroll-start")))
		phone.appShot("enroll")
		phone.do("set up with the passkey", chromedp.Click(chromedp.CSS("#enroll-start")), chromedp.WaitVisible(chromedp.CSS(viewHome)))
		if s := phone.text("#status"); !strings.Contains(s, "set up for alice") {
			t.Fatalf("after enrolling the app says %q", s)
		}
		if k := phone.text(`[data-testid="account-key"]`); !strings.Contains(k, "passkey") {
			t.Errorf("the account list says %q of a passkey", k)
		}
		if cred := phone.credentialOf(auth, "alice"); cred.RpID != "localhost" || cred.UserDisplayName != "alice" {
			t.Errorf("alice's passkey: %+v", cred)
		}
		if ds := b.devices("alice"); len(ds) != 1 || ds[0].Platform != "web" {
			t.Fatalf("devices of alice: %+v", ds)
		}
		phone.appShot("accounts")
	})

	t.Run("RADIUS approved with the passkey", func(t *testing.T) {
		defer use(t, phone, b)()
		before := phone.credentialOf(auth, "alice").SignCount
		number, state := b.radiusStart("alice")
		phone.waitChallenge()
		phone.do("type the number", chromedp.SendKeys(chromedp.CSS("#number"), number))
		phone.appShot("challenge")
		phone.do("approve", chromedp.Click(chromedp.CSS("#approve")))
		if o, _ := phone.outcome(); o != "approved" {
			t.Fatalf("outcome %q", o)
		}
		if code := b.radiusFinish("alice", state); code != "Access-Accept" {
			t.Fatalf("the NAS got %q", code)
		}
		if after := phone.credentialOf(auth, "alice").SignCount; after <= before {
			t.Errorf("the passkey's counter went from %v to %v: no assertion was made", before, after)
		}
		phone.done()
	})

	t.Run("OIDC approved with the passkey", func(t *testing.T) {
		defer use(t, phone, b)()
		signin := phone.newWindow()
		number := signin.browserSignIn(l.Addr().String(), "alice")
		phone.waitChallenge()
		phone.decide("approve", number)
		if o, _ := phone.outcome(); o != "approved" {
			t.Fatalf("outcome %q", o)
		}
		signin.waitNavigation("/callback", 60*time.Second)
		if body := signin.text("body"); body != "signed in" {
			t.Errorf("the relying party's page says %q", body)
		}
		// The approval was made by a hardware-bound key after user
		// verification.
		var amr string
		for _, e := range auditEvents(t, b.liveBridge, "alice") {
			if e.Action == "login" && e.Details["application"] == "wiki" {
				amr = e.Details["amr"]
			}
		}
		if !strings.Contains(amr, "hwk") || strings.Contains(amr, "swk") {
			t.Errorf("the sign-in's amr is %q, want hwk", amr)
		}
		phone.done()
		signin.check()
	})

	t.Run("RADIUS denied with the passkey", func(t *testing.T) {
		defer use(t, phone, b)()
		_, state := b.radiusStart("alice")
		phone.waitChallenge()
		phone.decide("deny", "")
		if o, _ := phone.outcome(); o != "denied" {
			t.Fatalf("outcome %q", o)
		}
		if code := b.radiusFinish("alice", state); code != "Access-Reject" {
			t.Fatalf("the NAS got %q", code)
		}
		phone.done()
	})

	t.Run("approval without user verification is refused", func(t *testing.T) {
		defer use(t, phone, b)()
		phone.overrideBits(auth, true)
		defer phone.overrideBits(auth, false)
		approved := auditCount(t, b.liveBridge, "push.approved", "alice")
		number, _ := b.radiusStart("alice")
		phone.waitChallenge()
		phone.decide("approve", number)
		if o, _ := phone.outcome(); o != "refused" {
			t.Fatalf("outcome %q, want refused", o)
		}
		expectRefused(t, phone, "/answer")
		if !refusedAnswer(t, b, "alice", "user verification") {
			t.Error("no refused push.answer saying user verification was missing")
		}
		// The challenge stays open (another device may still answer it)
		// but nothing approved it; the next login supersedes it.
		if n := auditCount(t, b.liveBridge, "push.approved", "alice"); n != approved {
			t.Fatalf("an approval without user verification was taken (%d approvals, %d before)", n, approved)
		}
		phone.done()
	})

	t.Run("a counter that goes back is refused", func(t *testing.T) {
		defer use(t, phone, b)()
		// The credential copied elsewhere would sign with its own,
		// lower, counter: put it back with a counter below the bridge's.
		cred := phone.credentialOf(auth, "alice")
		if cred.SignCount < 2 {
			t.Fatalf("the counter is %v: too low to go back", cred.SignCount)
		}
		phone.do("put the credential back with a lower counter", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tab, webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: auth, CredentialID: cred.CredentialID}); err != nil {
				return err
			}
			// Raw: the typed Credential always sends the CMTG members,
			// which this authenticator refuses.
			return tab.Call(ctx, webauthn.CommandAddCredential, map[string]any{"authenticatorId": auth, "credential": map[string]any{
				"credentialId": cred.CredentialID, "isResidentCredential": cred.IsResidentCredential, "rpId": cred.RpID,
				"privateKey": cred.PrivateKey, "userHandle": cred.UserHandle, "signCount": 0,
				"userName": cred.UserName, "userDisplayName": cred.UserDisplayName,
			}}, nil)
		}))
		if c := phone.credentialOf(auth, "alice").SignCount; c != 0 {
			t.Fatalf("the counter is %v after putting the credential back", c)
		}
		// A web sign-in (another application: it supersedes the RADIUS
		// login the previous case left open, which the app does not show
		// again).
		approved := auditCount(t, b.liveBridge, "push.approved", "alice")
		signin := phone.newWindow()
		// A fresh sign-in, not the session of the OIDC case.
		signin.do("clear cookies", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			_, err := cdp.Call(ctx, tab, network.ClearBrowserCookies, cdp.Empty{})
			return err
		}))
		number := signin.browserSignIn(l.Addr().String(), "alice")
		if ch := phone.waitChallenge(); ch.App != "Sign in to Team wiki?" {
			t.Fatalf("the app shows %+v", ch)
		}
		phone.decide("approve", number)
		if o, _ := phone.outcome(); o != "refused" {
			t.Fatalf("outcome %q, want refused", o)
		}
		expectRefused(t, phone, "/answer")
		if n := auditCount(t, b.liveBridge, "push.approved", "alice"); n != approved {
			t.Fatalf("an approval by a cloned credential was taken (%d approvals, %d before)", n, approved)
		}
		signin.check()
		if auditCount(t, b.liveBridge, "device.clone_suspected", "alice") == 0 {
			t.Error("no device.clone_suspected audit event")
		}
		phone.done()
	})
	phone.check()
}

// refusedAnswer reports whether the audit log has a refused push.answer
// of user whose reason contains why.
func refusedAnswer(t *testing.T, b *appBridge, user, why string) bool {
	t.Helper()
	for _, e := range auditEvents(t, b.liveBridge, user) {
		if e.Action == "push.answer" && e.Result != "success" && strings.Contains(e.Reason, why) {
			return true
		}
	}
	return false
}

// credentialOf is the authenticator's passkey for user.
func (c *chromeTab) credentialOf(id webauthn.AuthenticatorID, user string) *webauthn.Credential {
	c.t.Helper()
	var found []*webauthn.Credential
	for _, cr := range c.credentials(id) {
		if cr.UserName == user {
			found = append(found, cr)
		}
	}
	if len(found) != 1 {
		c.t.Fatalf("the authenticator holds %d passkeys for %s", len(found), user)
	}
	return found[0]
}

// expectRefused takes the browser's report of the refused request (a
// 4xx answer is logged as a failed load) out of the problems, failing for
// any other problem.
func expectRefused(t *testing.T, c *chromeTab, path string) {
	t.Helper()
	var got bool
	deadline := time.Now().Add(5 * time.Second)
	for !got && time.Now().Before(deadline) {
		for _, p := range c.takeProblems() {
			if strings.Contains(p, "Failed to load resource") && strings.Contains(p, path) {
				got = true
				continue
			}
			t.Errorf("browser console: %s", p)
		}
		if !got {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !got {
		t.Errorf("no refused request to %s was seen", path)
	}
}
