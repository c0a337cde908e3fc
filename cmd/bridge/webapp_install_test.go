package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png" // image.DecodeConfig of the icons
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"
)

// notification is what registration.getNotifications() gives of one.
type notification struct {
	Title, Body, Tag string
}

// notifications lists the app's notifications shown now.
func (c *chromeTab) notifications() []notification {
	c.t.Helper()
	return evalAsync[[]notification](c, "list the notifications", `
		const reg = await navigator.serviceWorker.ready;
		return (await reg.getNotifications()).map((n) => ({title: n.title, body: n.body, tag: n.tag}));`)
}

// pushRegistration enables DevTools' ServiceWorker domain and returns the
// id of the app's service worker registration (scope /app/).
func (c *chromeTab) pushRegistration(scope string) serviceworker.RegistrationID {
	c.t.Helper()
	// A push reaches only an activated worker.
	if s := evalAsync[string](c, "wait for the worker", `return (await navigator.serviceWorker.ready).active.state;`); s != "activated" {
		c.t.Fatalf("the service worker is %s", s)
	}
	ctx, cancel := context.WithTimeout(c.ctx, browserStep)
	defer cancel()
	events := chromedp.Events(ctx, serviceworker.WorkerRegistrationUpdated)
	if _, err := chromedp.Call(ctx, serviceworker.Enable, cdp.Empty{}); err != nil {
		c.t.Fatalf("ServiceWorker.enable: %v", err)
	}
	for ev, err := range events {
		if err != nil {
			c.t.Fatalf("no service worker registration for %s: %v", scope, err)
		}
		for _, r := range ev.Registrations {
			if r.ScopeURL == scope && !r.IsDeleted {
				return r.RegistrationID
			}
		}
	}
	return ""
}

// grantNotifications allows origin's notifications, as the user's "Allow".
func grantNotifications(origin string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"}, Setting: cdpbrowser.PermissionSettingGranted, Origin: origin})
		return err
	})
}

// deliverPush hands data to the app's service worker as a push message.
func (c *chromeTab) deliverPush(origin string, reg serviceworker.RegistrationID, data string) {
	c.t.Helper()
	c.do("deliver a push", chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		_, err := cdp.Call(ctx, tab, serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{Origin: origin, RegistrationID: reg, Data: data})
		return err
	}))
}

// The app is installable (what Chromium itself checks, the manifest's
// fields, a service worker controlling the page, the icons), its service
// worker turns a push into a notification naming the application only,
// after fetching and verifying the challenge, and it opens offline from
// its cached shell.
func TestWebAppInstallAndPush(t *testing.T) {
	phone := startPhone(t)
	b := startAppBridge(t, "127.0.0.1:9", "")
	b.user("alice")
	phone.enrollApp(b.appLink("alice"), false)

	t.Run("installable", func(t *testing.T) {
		defer use(t, phone, b)()
		// Open the app again, as from the home screen (DevTools' navigation
		// to the page's own URL is a reload that may bypass the worker).
		phone.do("leave the app", chromedp.Navigate("about:blank"))
		phone.openApp(b.base + "/app/")
		if !eventually(30*time.Second, func() bool {
			return tabRun(phone, "is the page controlled", chromedp.Evaluate[bool](`navigator.serviceWorker.controller !== null`))
		}) {
			st := evalAsync[string](phone, "the registration", `
				const r = await navigator.serviceWorker.getRegistration('/app/');
				if (!r) return 'no registration';
				const s = (w) => w ? w.state : '-';
				return 'installing ' + s(r.installing) + ', waiting ' + s(r.waiting) + ', active ' + s(r.active);`)
			t.Fatalf("no service worker controls the page: %s", st)
		}
		if s := tabRun(phone, "read the worker's script", chromedp.Evaluate[string](`navigator.serviceWorker.controller.scriptURL`)); s != b.base+"/app/sw.js" {
			t.Errorf("the page is controlled by %s", s)
		}
		// The worker is observed too (its console, CSP reports and
		// requests count as the page's do in phone.check).
		if !eventually(10*time.Second, func() bool {
			for _, u := range phone.workersSeen() {
				if u == b.base+"/app/sw.js" {
					return true
				}
			}
			return false
		}) {
			t.Errorf("the service worker is not observed; workers seen: %v", phone.workersSeen())
		}
		errs := tabRun(phone, "installability", chromedp.Action[cdppage.GetInstallabilityErrorsResult](func(ctx context.Context, tab *chromedp.Target) (cdppage.GetInstallabilityErrorsResult, error) {
			return cdp.Call(ctx, tab, cdppage.GetInstallabilityErrors, cdp.Empty{})
		}))
		for _, e := range errs.InstallabilityErrors {
			var args []string
			for _, a := range e.ErrorArguments {
				args = append(args, a.Name+"="+a.Value)
			}
			t.Errorf("Chromium says the app is not installable: %s %v", e.ErrorID, args)
		}
		m := tabRun(phone, "the manifest", chromedp.Action[cdppage.GetAppManifestResult](func(ctx context.Context, tab *chromedp.Target) (cdppage.GetAppManifestResult, error) {
			return cdp.Call(ctx, tab, cdppage.GetAppManifest, cdppage.GetAppManifestParams{})
		}))
		if len(m.Errors) > 0 || m.Manifest == nil {
			t.Fatalf("manifest errors: %+v", m.Errors)
		}
		// Chromium's parsed manifest (its own spelling of the values)...
		mf := m.Manifest
		if mf.Name != appName || mf.StartURL != b.base+"/app/" || mf.Scope != b.base+"/app/" || mf.ID != b.base+"/app/" ||
			!strings.EqualFold(strings.TrimPrefix(mf.Display, "k"), "standalone") || mf.ThemeColor == "" || mf.BackgroundColor == "" {
			t.Errorf("manifest as Chromium read it: %+v", mf)
		}
		// ...and the file as served.
		var raw struct {
			ShortName string `json:"short_name"`
			Icons     []struct{ Src, Sizes, Type, Purpose string }
		}
		if err := json.Unmarshal([]byte(m.Data), &raw); err != nil {
			t.Fatal(err)
		}
		if raw.ShortName == "" || len([]rune(raw.ShortName)) > 12 {
			t.Errorf("short_name %q: a home screen shows about 12 characters", raw.ShortName)
		}
		icons := map[string]string{} // sizes+purpose → src
		for _, ic := range raw.Icons {
			icons[ic.Sizes+" "+ic.Purpose] = ic.Src
		}
		for _, want := range []string{"192x192 any", "512x512 any", "512x512 maskable"} {
			src, ok := icons[want]
			if !ok {
				t.Errorf("the manifest has no %s icon: %+v", want, raw.Icons)
				continue
			}
			var w, h int
			fmt.Sscanf(want, "%dx%d", &w, &h)
			checkIcon(t, b.base+src, w, h)
		}
		checkIcon(t, b.base+"/app/icons/apple-touch-icon.png", 180, 180)
		if href := tabRun(phone, "the apple-touch-icon link", chromedp.Evaluate[string](`document.querySelector('link[rel="apple-touch-icon"]').href`)); href != b.base+"/app/icons/apple-touch-icon.png" {
			t.Errorf("apple-touch-icon link %q", href)
		}
	})

	t.Run("push", func(t *testing.T) {
		defer use(t, phone, b)()
		origin := b.base
		phone.do("allow notifications", grantNotifications(origin))
		reg := phone.pushRegistration(b.base + "/app/")
		number, state := b.radiusStart("alice")
		phone.waitChallenge()
		cid := tabRun(phone, "the challenge's id", chromedp.Evaluate[string](`document.getElementById('view-challenge').dataset.cid`))
		phone.deliverPush(origin, reg, fmt.Sprintf(`{"t":"challenge","cid":%q}`, cid))
		var shown []notification
		if !eventually(20*time.Second, func() bool { shown = phone.notifications(); return len(shown) > 0 }) {
			t.Fatal("the push showed no notification")
		}
		if len(shown) != 1 || shown[0] != (notification{Title: "Sign-in request", Body: "vpn", Tag: cid}) {
			t.Errorf("notifications %+v, want one titled Sign-in request naming the application (vpn), tagged %s", shown, cid)
		}
		for _, n := range shown {
			if strings.Contains(n.Title+n.Body, "alice") || strings.Contains(n.Title+n.Body, "203.0.113.9") {
				t.Errorf("the notification shows something personal on the lock screen: %+v", n)
			}
		}

		// A push naming no challenge of this phone (forged, or late)
		// shows only the generic text: nothing from a push is a fact.
		const forged = "Zm9yZ2VkLWNoYWxsZW5nZS1pZA"
		phone.deliverPush(origin, reg, fmt.Sprintf(`{"t":"challenge","cid":%q}`, forged))
		var generic *notification
		if !eventually(20*time.Second, func() bool {
			for _, n := range phone.notifications() {
				if n.Tag == forged {
					generic = &n
					return true
				}
			}
			return false
		}) {
			t.Fatal("a push for an unknown challenge showed no notification (browsers require one)")
		}
		if generic.Title != "Sign-in request" || generic.Body != "Open the app to review it." {
			t.Errorf("the notification for an unknown challenge is %+v", *generic)
		}

		// Answering in the app takes the challenge's notification away.
		phone.decide("approve", number)
		if o, _ := phone.outcome(); o != "approved" {
			t.Fatalf("outcome %q", o)
		}
		if !eventually(10*time.Second, func() bool {
			for _, n := range phone.notifications() {
				if n.Tag == cid {
					return false
				}
			}
			return true
		}) {
			t.Errorf("the answered challenge's notification is still shown: %+v", phone.notifications())
		}
		if code := b.radiusFinish("alice", state); code != "Access-Accept" {
			t.Fatalf("the NAS got %q", code)
		}
		phone.done()
	})

	t.Run("opened from a notification", func(t *testing.T) {
		defer use(t, phone, b)()
		// A tap on a notification opens /app/#c=<cid> (sw.js): the app
		// shows that challenge and clears the fragment.
		_, state := b.radiusStart("alice")
		phone.waitChallenge()
		cid := tabRun(phone, "the challenge's id", chromedp.Evaluate[string](`document.getElementById('view-challenge').dataset.cid`))
		// A new window, as clients.openWindow makes; then the same page
		// with the fragment, as a tap with the app open would.
		phone.do("leave the app", chromedp.Navigate("about:blank"))
		phone.openApp(b.base + "/app/#c=" + cid)
		phone.waitChallenge()
		if got := tabRun(phone, "the challenge's id", chromedp.Evaluate[string](`document.getElementById('view-challenge').dataset.cid`)); got != cid {
			t.Errorf("opened %s, shows %s", cid, got)
		}
		// The long-poll would deliver the same challenge: what shows that it
		// was opened from the link is that the page asked for it by id
		// (resource timing of this document, which began at the link).
		byID := tabRun(phone, "the page's requests", chromedp.Evaluate[bool](`performance.getEntriesByType('resource').some((e) => new URL(e.name).pathname === '/device/v1/challenges/' + `+strconv.Quote(cid)+`)`))
		if !byID {
			t.Errorf("the page did not GET /device/v1/challenges/%s: the challenge it shows came from the long-poll", cid)
		}
		if loc := phone.location(); strings.Contains(loc, "#") {
			t.Errorf("the fragment stays: %s", loc)
		}
		phone.decide("deny", "")
		if o, _ := phone.outcome(); o != "denied" {
			t.Errorf("outcome %q", o)
		}
		if code := b.radiusFinish("alice", state); code != "Access-Reject" {
			t.Fatalf("the NAS got %q", code)
		}
		phone.done()
	})
	phone.check()

	t.Run("offline", func(t *testing.T) {
		defer use(t, phone, b)()
		// The bridge goes away: the app still opens from the service
		// worker's cache and lists its account.
		b.proc.Kill()
		phone.do("leave the app", chromedp.Navigate("about:blank"))
		phone.openApp(b.base + "/app/")
		phone.do("see the accounts", chromedp.WaitVisible(chromedp.CSS(viewHome)))
		if u := phone.text(`[data-testid="account"] .account-user`); u != "alice" {
			t.Errorf("offline the app lists %q", u)
		}
		// The long-poll's failed requests are expected now; nothing else.
		for _, p := range phone.takeProblems() {
			if !strings.Contains(p, "ERR_CONNECTION_REFUSED") && !strings.Contains(p, "Failed to fetch") {
				t.Errorf("browser console: %s", p)
			}
		}
	})
}

// checkIcon fetches an icon and checks it is a PNG of w×h pixels.
func checkIcon(t *testing.T, u string, w, h int) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("%s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
		return
	}
	cfg, format, err := image.DecodeConfig(resp.Body)
	if err != nil || format != "png" || cfg.Width != w || cfg.Height != h {
		t.Errorf("%s: %s %dx%d (%v), want a %dx%d PNG", u, format, cfg.Width, cfg.Height, err, w, h)
	}
}
