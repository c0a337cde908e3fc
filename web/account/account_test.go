package account

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/store"
)

// Signing in with a push opens the account page: the user's devices,
// a session cookie that is HttpOnly, SameSite=Strict and (over TLS)
// __Host- prefixed and Secure, bound to the browser.
func TestSignInWithPush(t *testing.T) {
	for _, https := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[https], func(t *testing.T) {
			e := newEnv(t, envOptions{https: https})
			phone := e.enroll("alice")
			e.enroll("bob")
			b := e.browser()
			if p := b.get("/account"); p.status != http.StatusOK || p.find(func(n *html.Node) bool { return attr(n, "href") == "/account/signin" }) == nil {
				t.Fatalf("/account without a session: %d %s", p.status, p.text())
			}
			p := b.signInWithPush("alice", phone)
			if p.url.Path != "/account" || p.status != http.StatusOK {
				t.Fatalf("after the push: %s %d %s", p.url, p.status, p.text())
			}
			if got := p.devices(); !slices.Equal(got, []string{phone.ID()}) {
				t.Errorf("devices shown %v, want alice's phone %s only", got, phone.ID())
			}
			if !strings.Contains(p.text(), "alice's phone") || !strings.Contains(p.text(), "signed in with this") {
				t.Errorf("the page does not name the phone as the one signed in with: %s", p.text())
			}
			if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("CSP %q", csp)
			}
			name := "bridge_account"
			if https {
				name = "__Host-bridge_account"
			}
			var c *http.Cookie
			for _, s := range b.set {
				if s.Name == name {
					c = s
				}
			}
			if c == nil {
				t.Fatalf("no %s cookie set (set: %v)", name, b.set)
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != https || c.Domain != "" {
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, no Domain, Secure=%v", c, https)
			}
			if got := e.audited("account.signin", "alice"); len(got) != 1 || got[0].Details["device"] != phone.ID() || got[0].Channel != Channel {
				t.Errorf("account.signin audit: %+v", got)
			}

			// The cookie alone, in another browser (another binding
			// cookie), opens nothing.
			thief := e.browser()
			thief.SetCookies(nil, []*http.Cookie{{Name: name, Value: b.jar[name].Value}})
			if p := thief.get("/account"); p.devices() != nil || p.find(func(n *html.Node) bool { return attr(n, "href") == "/account/signin" }) == nil {
				t.Errorf("another browser with the session cookie sees: %s", p.text())
			}
			if p := thief.post("/account/devices/"+phone.ID()+"/remove", url.Values{"csrf": {p.csrf()}}); p.status != http.StatusForbidden {
				t.Errorf("another browser removing with the cookie and a token: %d", p.status)
			}
			if d, _ := e.st.GetDevice(e.ctx, phone.ID()); d.Status != store.DeviceActive {
				t.Error("the device was removed from another browser")
			}
		})
	}
}

// Every POST needs the session's CSRF token.
func TestCSRFRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	phone := e.enroll("alice")
	b := e.browser()
	p := b.signInWithPush("alice", phone)
	good := p.csrf()
	other := e.browser()
	otherPhone := e.enroll("bob")
	bobToken := other.signInWithPush("bob", otherPhone).csrf()
	for name, tok := range map[string]string{"none": "", "wrong": "x" + good[1:], "another session's": bobToken} {
		for _, path := range []string{"/account/devices/" + phone.ID() + "/rename", "/account/devices/" + phone.ID() + "/remove", "/account/devices/add", "/account/signout"} {
			f := url.Values{"name": {"stolen"}}
			if tok != "" {
				f.Set("csrf", tok)
			}
			if p := b.post(path, f); p.status != http.StatusForbidden {
				t.Errorf("%s token, POST %s: %d", name, path, p.status)
			}
		}
	}
	d, _ := e.st.GetDevice(e.ctx, phone.ID())
	if d.Name != "alice's phone" || d.Status != store.DeviceActive {
		t.Errorf("after refused posts the device is %q %s", d.Name, d.Status)
	}
	if n := len(e.audited("device.activation", "alice")); n != 0 {
		t.Errorf("%d activations made without a token", n)
	}
	if p := b.get("/account"); p.devices() == nil {
		t.Error("refused posts ended the session")
	}
}

// Rename and remove act on the user's own devices only, and are audited.
func TestRenameRemoveOwnDevicesOnly(t *testing.T) {
	e := newEnv(t, envOptions{})
	phone := e.enroll("alice")
	spare := e.enroll("alice")
	bobs := e.enroll("bob")
	b := e.browser()
	p := b.signInWithPush("alice", phone)
	tok := p.csrf()

	for _, id := range []string{bobs.ID(), "nosuchdevice", strings.Repeat("a", 200)} {
		if p := b.post("/account/devices/"+id+"/rename", url.Values{"csrf": {tok}, "name": {"mine now"}}); p.status != http.StatusNotFound {
			t.Errorf("rename %.20s: %d", id, p.status)
		}
		if p := b.get("/account/devices/" + id + "/remove"); p.status != http.StatusNotFound {
			t.Errorf("confirm removing %.20s: %d", id, p.status)
		}
		if p := b.post("/account/devices/"+id+"/remove", url.Values{"csrf": {tok}}); p.status != http.StatusNotFound {
			t.Errorf("remove %.20s: %d", id, p.status)
		}
	}
	if d, _ := e.st.GetDevice(e.ctx, bobs.ID()); d.Name != "bob's phone" || d.Status != store.DeviceActive {
		t.Errorf("bob's device is now %q %s", d.Name, d.Status)
	}

	for _, bad := range []string{"", "  ", strings.Repeat("x", 65), "tab\tname"} {
		if p := b.post("/account/devices/"+spare.ID()+"/rename", url.Values{"csrf": {tok}, "name": {bad}}); p.status != http.StatusBadRequest {
			t.Errorf("rename to %q: %d", bad, p.status)
		}
	}
	p = b.post("/account/devices/"+spare.ID()+"/rename", url.Values{"csrf": {tok}, "name": {"Tablet"}})
	if p.status != http.StatusOK || !strings.Contains(p.text(), "Tablet") {
		t.Fatalf("rename: %d %s", p.status, p.text())
	}
	if ev := e.audited("device.rename", "alice"); len(ev) != 1 || ev[0].Actor != "user:alice" || ev[0].Channel != "account" || ev[0].Details["name"] != "Tablet" || ev[0].Details["device"] != spare.ID() {
		t.Errorf("device.rename audit: %+v", ev)
	}

	c := b.get("/account/devices/" + spare.ID() + "/remove")
	if c.status != http.StatusOK || c.form("/account/devices/"+spare.ID()+"/remove") == nil {
		t.Fatalf("no confirmation form: %d %s", c.status, c.text())
	}
	if d, _ := e.st.GetDevice(e.ctx, spare.ID()); d.Status != store.DeviceActive {
		t.Fatal("the confirmation page removed the device")
	}
	p = b.post("/account/devices/"+spare.ID()+"/remove", url.Values{"csrf": {c.csrf()}})
	if p.status != http.StatusOK || slices.Contains(p.devices(), spare.ID()) {
		t.Fatalf("remove: %d, devices %v", p.status, p.devices())
	}
	if d, _ := e.st.GetDevice(e.ctx, spare.ID()); d.Status != store.DeviceRevoked || d.RevokedAt.IsZero() {
		t.Errorf("removed device is %s", d.Status)
	}
	if ev := e.audited("device.revoke", "alice"); len(ev) != 1 || ev[0].Actor != "user:alice" || ev[0].Channel != "account" || ev[0].Details["device"] != spare.ID() {
		t.Errorf("device.revoke audit: %+v", ev)
	}
	// A removed device cannot answer any more.
	if _, err := spare.Pending(e.ctx, 0); err == nil {
		t.Error("the removed device can still list challenges")
	}
}

// A GET changes nothing: the state-changing paths answer GET with 405,
// and the confirmation pages only ask.
func TestGETChangesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	phone := e.enroll("alice")
	b := e.browser()
	b.signInWithPush("alice", phone)
	seq := e.audited("login", "alice")[0].Seq
	for _, path := range []string{"/account/devices/add", "/account/signout", "/account/devices/" + phone.ID() + "/rename"} {
		if p := b.get(path); p.status != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d", path, p.status)
		}
	}
	b.get("/account/devices/" + phone.ID() + "/remove")
	b.get("/account/signins/" + itoa(seq) + "/report")
	if d, _ := e.st.GetDevice(e.ctx, phone.ID()); d.Status != store.DeviceActive || d.Name != "alice's phone" {
		t.Errorf("after GETs the device is %q %s", d.Name, d.Status)
	}
	if lim, _ := e.st.GetPushLimit(e.ctx, "alice"); lim.LockedUntil.After(e.clock.Now()) {
		t.Error("a GET locked pushes")
	}
	for _, a := range []string{"device.activation", "device.revoke", "device.rename", "push.fraud", "account.signout"} {
		if n := len(e.audited(a, "alice")); n != 0 {
			t.Errorf("%d %s events after GETs", n, a)
		}
	}
	if p := b.get("/account"); p.devices() == nil {
		t.Error("a GET ended the session")
	}
}

// Adding a device: after a push, always; after a code, only with
// self-enrollment. The link it shows enrolls a device.
func TestAddDeviceRule(t *testing.T) {
	t.Run("after a push", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		phone := e.enroll("alice")
		b := e.browser()
		p := b.signInWithPush("alice", phone)
		if p.form("/account/devices/add") == nil {
			t.Fatal("no add form after signing in with a device")
		}
		newPhone := addAndEnroll(t, e, b, p.csrf(), "alice")
		if p := b.get("/account"); !slices.Contains(p.devices(), newPhone.ID()) {
			t.Errorf("the new device is not listed: %v", p.devices())
		}
		if ev := e.audited("device.activation", "alice"); len(ev) != 1 || ev[0].Result != store.ResultSuccess || ev[0].Details["signed_in_with"] != "device" {
			t.Errorf("activation audit: %+v", ev)
		}
	})
	for _, self := range []bool{false, true} {
		t.Run("after a code, self-enrollment "+map[bool]string{false: "off", true: "on"}[self], func(t *testing.T) {
			e := newEnv(t, envOptions{selfEnrollment: self})
			code := e.totpCode("alice")
			b := e.browser()
			p := b.signInWithCode("alice", code)
			if p.url.Path != "/account" || p.status != http.StatusOK {
				t.Fatalf("after the code: %s %d %s", p.url, p.status, p.text())
			}
			if (p.form("/account/devices/add") != nil) != self {
				t.Errorf("add form shown: %v, want %v", p.form("/account/devices/add") != nil, self)
			}
			tok := p.csrf()
			if !self {
				if p := b.post("/account/devices/add", url.Values{"csrf": {tok}}); p.status != http.StatusForbidden || strings.Contains(p.body, "#enroll") {
					t.Errorf("add without self-enrollment: %d", p.status)
				}
				if ev := e.audited("device.activation", "alice"); len(ev) != 1 || ev[0].Result != store.ResultDenied {
					t.Errorf("refusal audit: %+v", ev)
				}
				return
			}
			addAndEnroll(t, e, b, tok, "alice")
			if ev := e.audited("device.activation", "alice"); len(ev) != 1 || ev[0].Details["signed_in_with"] != "self-enrollment" {
				t.Errorf("activation audit: %+v", ev)
			}
		})
	}
}

// Under a strict device_keys a device added on the page could meet the
// policy itself (a passkey meets hardware), so only a session opened with
// a device that meets it may add one: not a software key, not a code
// (self-enrollment or not).
func TestAddDeviceRuleStrict(t *testing.T) {
	refused := func(t *testing.T, e *env, b *browser, p *page, why string) {
		t.Helper()
		if p.form("/account/devices/add") != nil {
			t.Error("add form shown")
		}
		if q := b.post("/account/devices/add", url.Values{"csrf": {p.csrf()}}); q.status != http.StatusForbidden || strings.Contains(q.body, "#enroll") {
			t.Errorf("add: %d, want 403 without a link", q.status)
		} else if !strings.Contains(q.text(), "accept only passkeys or hardware keys") {
			t.Errorf("refusal page: %s", q.text())
		}
		if ev := e.audited("device.activation", "alice"); len(ev) != 1 || ev[0].Result != store.ResultDenied || !strings.Contains(ev[0].Reason, why) {
			t.Errorf("refusal audit: %+v", ev)
		}
	}
	t.Run("software key", func(t *testing.T) {
		e := newEnv(t, envOptions{deviceKeys: pushauth.KeysHardware})
		phone := e.enroll("alice")
		b := e.browser()
		refused(t, e, b, b.signInWithPush("alice", phone), "does not meet device_keys hardware")
	})
	t.Run("code with self-enrollment", func(t *testing.T) {
		e := newEnv(t, envOptions{deviceKeys: pushauth.KeysHardware, selfEnrollment: true})
		code := e.totpCode("alice")
		b := e.browser()
		refused(t, e, b, b.signInWithCode("alice", code), "signed in with a code and an application has device_keys hardware")
	})
	t.Run("hardware key", func(t *testing.T) {
		e := newEnv(t, envOptions{deviceKeys: pushauth.KeysHardware})
		phone := e.enrollWith("alice", map[string]bool{"hardware_key": true})
		b := e.browser()
		p := b.signInWithPush("alice", phone)
		if p.form("/account/devices/add") == nil {
			t.Fatal("no add form after signing in with a hardware key")
		}
		addAndEnroll(t, e, b, p.csrf(), "alice")
	})
	t.Run("hardware key under attested", func(t *testing.T) {
		e := newEnv(t, envOptions{deviceKeys: pushauth.KeysAttested})
		phone := e.enrollWith("alice", map[string]bool{"hardware_key": true})
		b := e.browser()
		refused(t, e, b, b.signInWithPush("alice", phone), "does not meet device_keys attested")
	})
}

// addAndEnroll adds a device on the page, checks the link and QR code,
// and enrolls a reference authenticator with the link's activation.
func addAndEnroll(t *testing.T, e *env, b *browser, tok, user string) *authenticator.Device {
	t.Helper()
	p := b.post("/account/devices/add", url.Values{"csrf": {tok}})
	if p.status != http.StatusOK {
		t.Fatalf("add: %d %s", p.status, p.text())
	}
	img := p.find(func(n *html.Node) bool { return n.Data == "img" })
	if img == nil || !strings.HasPrefix(attr(img, "src"), "data:image/png;base64,") || attr(img, "alt") == "" {
		t.Fatalf("no QR code image: %s", p.body)
	}
	a := p.find(func(n *html.Node) bool { return attr(n, "id") == "app-link" })
	if a == nil {
		t.Fatal("no app link")
	}
	native := nativeLink(t, attr(a, "href"), e.devURL, user)
	d, err := authenticator.Enroll(e.ctx, native, authenticator.EnrollOptions{Name: "new phone", Now: e.clock.Now})
	if err != nil {
		t.Fatalf("enrolling with the page's link: %v", err)
	}
	return d
}

// nativeLink checks an app link and returns the bridge:// URL of the same
// activation.
func nativeLink(t *testing.T, link, base, user string) string {
	t.Helper()
	prefix := base + "/app/#enroll?"
	if !strings.HasPrefix(link, prefix) {
		t.Fatalf("app link %q does not start with %q", link, prefix)
	}
	q, err := url.ParseQuery(strings.TrimPrefix(link, prefix))
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("v") != "1" || q.Get("url") != base || q.Get("user") != user || q.Get("code") == "" || q.Get("pk") == "" {
		t.Fatalf("app link parameters %v", q)
	}
	return "bridge://enroll?" + url.Values{"v": {"1"}, "url": {q.Get("url")}, "code": {q.Get("code")}, "pk": {q.Get("pk")}}.Encode()
}

// With a passwordless directory a code alone is one factor: the page
// stays shut; a push opens it.
func TestPasswordlessNeedsADevice(t *testing.T) {
	e := newEnv(t, envOptions{passwordless: true, selfEnrollment: true})
	code := e.totpCode("alice")
	b := e.browser()
	p := b.signInWithCode("alice", code)
	if p.status != http.StatusForbidden || p.heading() != "A second factor is needed" {
		t.Fatalf("code only, passwordless: %d %s", p.status, p.text())
	}
	if p := b.get("/account"); p.devices() != nil {
		t.Fatal("the page opened after a code alone")
	}
	if ev := e.audited("account.signin", "alice"); len(ev) != 1 || ev[0].Result != store.ResultDenied {
		t.Errorf("refusal audit: %+v", ev)
	}
	phone := e.enroll("alice")
	if p := b.signInWithPush("alice", phone); p.url.Path != "/account" || p.devices() == nil {
		t.Fatalf("push, passwordless: %s %d %s", p.url, p.status, p.text())
	}
}

// The session ends after 15 idle minutes, and after an hour however
// busy; signing out ends it at once.
func TestSessionLifetime(t *testing.T) {
	e := newEnv(t, envOptions{})
	phone := e.enroll("alice")
	b := e.browser()
	b.signInWithPush("alice", phone)
	e.clock.Add(IdleTimeout + time.Second)
	if p := b.get("/account"); p.devices() != nil {
		t.Fatal("the session outlived 15 idle minutes")
	}
	b.signInWithPush("alice", phone)
	for range 5 {
		e.clock.Add(10 * time.Minute)
		if p := b.get("/account"); p.devices() == nil {
			t.Fatalf("a busy session ended early, at %v", e.clock.Now())
		}
	}
	e.clock.Add(10*time.Minute + time.Second) // 1h and a second since the sign-in
	if p := b.get("/account"); p.devices() != nil {
		t.Fatal("the session outlived its hour")
	}
	p := b.signInWithPush("alice", phone)
	if s := b.post("/account/signout", url.Values{"csrf": {p.csrf()}}); s.status != http.StatusOK || s.heading() != "Signed out" {
		t.Fatalf("sign out: %d %s", s.status, s.text())
	}
	if p := b.get("/account"); p.devices() != nil {
		t.Fatal("still signed in after signing out")
	}
	if n, err := e.st.RevokeSubject(e.ctx, "alice", GrantKind); err != nil || n != 0 {
		t.Errorf("%d account sessions left after signing out (%v)", n, err)
	}
}

// Recent sign-ins list the user's own, with the device; "this wasn't
// me" locks pushes and audits push.fraud; another user's sign-in cannot
// be reported.
func TestRecentSignInsAndReport(t *testing.T) {
	reports := make(chan pushauth.FraudReport, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep pushauth.FraudReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		reports <- rep
	}))
	defer hook.Close()
	e := newEnv(t, envOptions{webhook: hook.URL})
	phone := e.enroll("alice")
	bob := e.enroll("bob")
	e.browser().signInWithPush("bob", bob)
	b := e.browser()
	b.signInWithPush("alice", phone)
	p := b.get("/account/signins")
	items := p.findAll(func(n *html.Node) bool { return n.Data == "li" && hasClass(n, "signin") })
	if len(items) != 1 {
		t.Fatalf("%d sign-ins listed, want alice's one: %s", len(items), p.text())
	}
	if txt := textOf(items[0]); !strings.Contains(txt, "alice's phone") || !strings.Contains(txt, "Bridge account") || !strings.Contains(txt, "Signed in") {
		t.Errorf("sign-in shows %q", txt)
	}
	seq := attr(items[0], "data-seq")
	bobSeq := itoa(e.audited("login", "bob")[0].Seq)
	for _, s := range []string{bobSeq, "0", "-1", "abc", "99999"} {
		if p := b.get("/account/signins/" + s + "/report"); p.status != http.StatusNotFound {
			t.Errorf("report page of %s: %d", s, p.status)
		}
		if p := b.post("/account/signins/"+s+"/report", url.Values{"csrf": {p.csrf()}}); p.status != http.StatusNotFound {
			t.Errorf("report %s: %d", s, p.status)
		}
	}
	if lim, _ := e.st.GetPushLimit(e.ctx, "bob"); lim.LockedUntil.After(e.clock.Now()) {
		t.Fatal("alice locked bob's pushes")
	}
	c := b.get("/account/signins/" + seq + "/report")
	if c.status != http.StatusOK || c.form("/account/signins/"+seq+"/report") == nil {
		t.Fatalf("confirmation: %d %s", c.status, c.text())
	}
	// A push waiting when the report comes is cancelled.
	e.clock.Add(time.Minute) // past the back-off of the sign-in's push
	waiting, err := e.eng.Start(e.ctx, pushauth.Request{User: "alice", AppID: "vpn", AppName: "VPN", Channel: "radius", ClientIP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := b.post("/account/signins/"+seq+"/report", url.Values{"csrf": {c.csrf()}})
	if r.status != http.StatusOK || r.heading() != "Reported" {
		t.Fatalf("report: %d %s", r.status, r.text())
	}
	lim, err := e.st.GetPushLimit(e.ctx, "alice")
	if err != nil || !lim.LockedUntil.After(e.clock.Now()) {
		t.Fatalf("pushes to alice are not locked: %+v %v", lim, err)
	}
	ev := e.audited("push.fraud", "alice")
	if len(ev) != 1 || ev[0].Actor != "user:alice" || ev[0].Channel != "account" || ev[0].Details["reported_seq"] != seq || ev[0].Details["app"] != AppID {
		t.Errorf("push.fraud audit: %+v", ev)
	}
	if ch, err := e.state.GetChallenge(e.ctx, waiting.ID); err != nil || ch.State != store.ChallengeCancelled {
		t.Errorf("the push waiting at the report is %s (%v), want cancelled", ch.State, err)
	}
	if _, err := e.eng.Start(e.ctx, pushauth.Request{User: "alice", AppID: "vpn", AppName: "VPN", Channel: "radius", ClientIP: "192.0.2.1"}); !errors.Is(err, pushauth.ErrLocked) {
		t.Errorf("a push after the report: %v, want locked", err)
	}
	select {
	case rep := <-reports:
		if rep.Event != "push.fraud_report" || rep.User != "alice" || rep.Application != AppID || rep.Channel != Channel || rep.ClientIP == "" {
			t.Errorf("webhook report %+v", rep)
		}
	case <-time.After(10 * time.Second):
		t.Error("the fraud webhook was not called")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
