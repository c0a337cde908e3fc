package main

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The account page in a real browser, on the real binary: sign in with a
// push (the terminal authenticator approves with the number the page
// shows), see the device, rename it, add another (the QR code is shown
// and the app link it encodes enrolls a Go authenticator), see the
// recent sign-ins, and say "this wasn't me" to one: pushes to the user
// are locked, so the next sign-in is refused. Phone-sized screenshots
// (390×844) of each page; no console errors, CSP violations or requests
// off loopback.
func TestAccountPageWithChromium(t *testing.T) {
	const width, height = 390, 844
	c := startChromium(t)
	bin, phoneBin := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin, phone: phoneBin, public: freePort(t)}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	b.start(b.baseConfig(nil))
	b.user("alice")
	phone := b.enroll("alice")
	shots := t.TempDir()
	shot := func(name string) {
		t.Helper()
		saveScreenshot(t, shots, name, tabRun(c, "screenshot "+name, chromedp.CaptureScreenshot()))
	}
	text := func(sel string) string {
		t.Helper()
		return strings.TrimSpace(tabRun(c, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
	}

	c.do("emulate a phone", chromedp.EmulateViewport(width, height, chromedp.EmulateMobile, chromedp.EmulateTouch))
	c.do("open the account page",
		chromedp.Navigate(b.baseURL()+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/account/signin"]`)),
	)
	shot("account-signin.png")
	c.do("sign in",
		chromedp.Click(chromedp.CSS(`a[href="/account/signin"]`)),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(numberSel)),
	)
	number := text(numberSel)
	if err := <-b.answer(phone, "--auto-approve", "--number", number); err != nil {
		t.Fatalf("phone: %v", err)
	}
	// The waiting page's script carries on to the account page.
	c.waitNavigation("/account", 90*time.Second)
	c.do("wait for the devices", chromedp.WaitVisible(chromedp.CSS("li.device")))
	if got := text("li.device h2"); !strings.HasSuffix(got, "signed in with this") {
		t.Errorf("the device is shown as %q, not as the one signed in with", got)
	}
	if w := tabRun(c, "measure the page", chromedp.Evaluate[float64](`document.documentElement.scrollWidth`)); w > width {
		t.Errorf("the account page is %v px wide, wider than the %d px viewport", w, width)
	}
	shot("account-devices.png")

	c.do("rename the device",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('form.rename input[name="name"]').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`form.rename input[name="name"]`), "Work phone"),
		chromedp.Click(chromedp.CSS(`form.rename button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice[role="status"]`)),
	)
	if got := text("li.device h2"); !strings.HasPrefix(got, "Work phone") {
		t.Errorf("after renaming the device is shown as %q", got)
	}
	if out := b.cli("", "devices", "list", "alice"); !strings.Contains(out, "Work phone") {
		t.Errorf("devices list after renaming:\n%s", out)
	}

	c.do("add a device",
		chromedp.Click(chromedp.CSS(`form[action="/account/devices/add"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#app-link`)),
		chromedp.WaitVisible(chromedp.CSS(`.qr img`)),
	)
	if ok := tabRun(c, "check the QR code", chromedp.Evaluate[bool](`(() => { const i = document.querySelector('.qr img'); return i.complete && i.naturalWidth > 100 && i.src.startsWith('data:image/png;base64,'); })()`)); !ok {
		t.Error("the QR code image is not a loaded PNG")
	}
	shot("account-add.png")
	link := tabRun(c, "read the app link", chromedp.Evaluate[string](`document.querySelector('#app-link').href`))
	prefix := b.baseURL() + "/app/#enroll?"
	if !strings.HasPrefix(link, prefix) {
		t.Fatalf("app link %q, want it under %s", link, prefix)
	}
	q, err := url.ParseQuery(strings.TrimPrefix(link, prefix))
	if err != nil || q.Get("v") != "1" || q.Get("url") != b.baseURL() || q.Get("user") != "alice" {
		t.Fatalf("app link parameters %v (%v)", q, err)
	}
	native := "bridge://enroll?" + url.Values{"v": {"1"}, "url": {q.Get("url")}, "code": {q.Get("code")}, "pk": {q.Get("pk")}}.Encode()
	second := filepath.Join(b.dir, "second.phone")
	if out, err := exec.Command(b.phone, "--state", second, "enroll", native, "--name", "Tablet").CombinedOutput(); err != nil {
		t.Fatalf("enrolling with the page's link: %v\n%s", err, out)
	}
	if _, err := os.Stat(second); err != nil {
		t.Fatal(err)
	}
	c.do("back to the devices",
		chromedp.Navigate(b.baseURL()+"/account"),
		chromedp.WaitVisible(chromedp.CSS("li.device")),
	)
	if n := tabRun(c, "count the devices", chromedp.Evaluate[int](`document.querySelectorAll('li.device').length`)); n != 2 {
		t.Errorf("%d devices listed after adding one, want 2", n)
	}

	c.do("open the recent sign-ins",
		chromedp.Click(chromedp.CSS(`nav a[href="/account/signins"]`)),
		chromedp.WaitVisible(chromedp.CSS("li.signin")),
	)
	first := text("li.signin")
	if !strings.Contains(first, "Work phone") || !strings.Contains(first, "Signed in") || !strings.Contains(first, "127.0.0.1") {
		t.Errorf("the newest sign-in reads %q: want the device, the result and the address", first)
	}
	shot("account-signins.png")
	c.do("this wasn't me",
		chromedp.Click(chromedp.CSS(`li.signin a[href$="/report"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/report"] button`)),
	)
	shot("account-report.png")
	c.do("report it",
		chromedp.Click(chromedp.CSS(`form[action$="/report"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`main p[role="alert"]`)),
	)
	if h := text("main h1"); h != "Reported" {
		t.Fatalf("after reporting the page says %q", h)
	}
	fraud := 0
	for _, e := range auditEvents(t, b, "alice") {
		if e.Action == "push.fraud" && e.Details["reported_seq"] != "" {
			fraud++
		}
	}
	if fraud != 1 {
		t.Errorf("%d push.fraud events from the account page, want 1", fraud)
	}

	// Pushes are locked now: the next sign-in gets no push.
	c.do("sign in again",
		chromedp.Navigate(b.baseURL()+"/account/signin"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/restart"] button`)),
	)
	if h := text("main h1"); h != "Approvals paused" {
		t.Errorf("the sign-in after the report shows %q, want the page of locked pushes", text("main"))
	}
	c.check()
}
