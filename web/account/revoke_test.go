package account

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
)

// An account session opened with a device ends when the device is
// revoked by anyone (here straight in the store, as the CLI does): a
// stolen phone's session cannot go on adding devices.
func TestSessionEndsWhenItsDeviceIsRevoked(t *testing.T) {
	e := newEnv(t, envOptions{})
	phone := e.enroll("alice")
	b := e.browser()
	p := b.signInWithPush("alice", phone)
	tok := p.csrf()
	id := web.CookieTokenHash(b.jar[cookieName].Value)
	if _, err := e.st.UpdateDevice(e.ctx, phone.ID(), func(d store.Device) (store.Device, error) {
		d.Status, d.RevokedAt = store.DeviceRevoked, e.clock.Now()
		return d, nil
	}); err != nil {
		t.Fatal(err)
	}
	if p := b.post("/account/devices/add", url.Values{"csrf": {tok}}); p.status != http.StatusForbidden {
		t.Errorf("adding a device with the revoked device's session: %d %s", p.status, p.text())
	}
	if n := len(e.audited("device.activation", "alice")); n != 0 {
		t.Errorf("%d activations made by the revoked device's session", n)
	}
	if p := b.get("/account"); p.signedIn() {
		t.Error("the revoked device's session still opens the page")
	}
	if _, err := e.st.GetGrant(e.ctx, GrantKind, id, e.clock.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the revoked device's session is still stored: %v", err)
	}
}

// A session opened with a code does not depend on any device; one opened
// with a device that is then revoked, on the page in another session,
// ends at once (its grant is deleted); removing the device one signed in
// with signs one out.
func TestRemoveEndsTheSessionsOfTheDevice(t *testing.T) {
	e := newEnv(t, envOptions{})
	phone, tablet := e.enroll("alice"), e.enroll("alice")
	withPhone, withTablet, withCode := e.browser(), e.browser(), e.browser()
	withPhone.signInWithPush("alice", phone)
	e.clock.Add(time.Minute) // past the back-off of the first push
	p := withTablet.signInWithPush("alice", tablet)
	code := e.totpCode("alice")
	withCode.signInWithCode("alice", code)
	phoneSession := web.CookieTokenHash(withPhone.jar[cookieName].Value)

	if p := withTablet.post("/account/devices/"+phone.ID()+"/remove", url.Values{"csrf": {p.csrf()}}); p.status != http.StatusOK || slices.Contains(p.devices(), phone.ID()) {
		t.Fatalf("removing the phone: %d %s", p.status, p.text())
	}
	if _, err := e.st.GetGrant(e.ctx, GrantKind, phoneSession, e.clock.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the phone's session is still stored after removing the phone: %v", err)
	}
	if p := withPhone.get("/account"); p.signedIn() {
		t.Error("the phone's session still opens the page")
	}
	if p := withCode.get("/account"); !p.signedIn() {
		t.Error("removing a device ended a session opened with a code")
	}

	// Removing the tablet from the tablet's own session signs it out.
	p = withTablet.get("/account")
	r := withTablet.post("/account/devices/"+tablet.ID()+"/remove", url.Values{"csrf": {p.csrf()}})
	if r.status != http.StatusOK || r.heading() != "Signed out" {
		t.Errorf("removing the device signed in with: %d %q %s", r.status, r.heading(), r.text())
	}
	if _, ok := withTablet.jar[cookieName]; ok {
		t.Error("the session cookie was not cleared")
	}
	if d, _ := e.st.GetDevice(e.ctx, tablet.ID()); d.Status != store.DeviceRevoked {
		t.Errorf("the tablet is %s", d.Status)
	}
	if p := withTablet.get("/account"); p.signedIn() {
		t.Error("still signed in after removing the device signed in with")
	}
}

// signedIn reports whether the page is one of an account session (it has
// the sign-out form).
func (p *page) signedIn() bool { return p.form("/account/signout") != nil }
