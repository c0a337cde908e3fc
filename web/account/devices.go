package account

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bridge-idp/bridge/internal/qrcode"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
)

// deviceView is a device as the page shows it.
type deviceView struct {
	ID, Name string
	// Kind, Key are string keys: what the device is, what its key is.
	Kind, Key string
	Attested  bool
	Enrolled  string
	LastUsed  string // "" if never used since enrollment
	// Current is the device the user signed in with.
	Current bool
}

// Kinds of device and key (string keys).
const (
	kindPhone      = "account.kind_phone"       // a native app (bridge://)
	kindWebPasskey = "account.kind_web_passkey" // the web app, answers with a passkey
	kindWebKey     = "account.kind_web_key"     // the web app, a browser key
	keyHardware    = "account.key_hardware"
	keyPasskey     = "account.key_passkey"
	keySoftware    = "account.key_software"
)

// describe says what a device is from what enrollment recorded: the
// platform (web: the bridge's web app) and the posture's hardware_key
// (a passkey for the web app, a keystore key for a phone app).
// Attestation is what the enrollment verified (attested reports it).
func describe(d store.Device) (kind, key string) {
	switch {
	case d.Kind == store.DeviceKindWebAuthn:
		return kindWebPasskey, keyPasskey
	case d.Platform == "web":
		return kindWebKey, keySoftware
	case postureFlag(d.Posture, "hardware_key"):
		return kindPhone, keyHardware
	default:
		return kindPhone, keySoftware
	}
}

// attested reports whether the device's key attestation was verified at
// enrollment, by the rule the engine applies to device_keys: attested.
func attested(d store.Device) bool { return pushauth.Qualifies(d, pushauth.KeysAttested) }

func postureFlag(posture []byte, name string) bool {
	var p map[string]bool
	return len(posture) > 0 && json.Unmarshal(posture, &p) == nil && p[name]
}

func (p *Page) deviceViews(devs []store.Device, s session) []deviceView {
	// Newest first: a device just added is at the top.
	devs = slices.Clone(devs)
	slices.SortStableFunc(devs, func(a, b store.Device) int { return b.CreatedAt.Compare(a.CreatedAt) })
	var out []deviceView
	for _, d := range devs {
		if d.Status != store.DeviceActive {
			continue
		}
		kind, key := describe(d)
		v := deviceView{ID: d.ID, Name: d.Name, Kind: kind, Key: key, Attested: attested(d), Enrolled: when(d.CreatedAt), Current: d.ID == s.Device}
		if !d.LastSeenAt.IsZero() {
			v.LastUsed = when(d.LastSeenAt)
		}
		out = append(out, v)
	}
	return out
}

// when is a time as the pages show it.
func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// devices shows the user's devices (the account page's main page).
func (p *Page) devices(w http.ResponseWriter, r *http.Request, s session, notice string) {
	devs, err := p.d.Store.ListDevices(r.Context(), s.User)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	v := p.view(r, s, "account.title")
	v.Devices = p.deviceViews(devs, s)
	v.CanAdd = p.mayAdd(r.Context(), s)
	v.Notice = notice
	p.render(w, r, http.StatusOK, "devices", v)
}

// mayAdd is the rule for adding a device on this page. When every
// application takes any device: after signing in with one of the user's
// devices, always; after signing in with a code (no device answered),
// only when the operator allows self-enrollment. When some application
// is stricter (Config.DeviceKeys), only after signing in with a device
// that meets that policy, as the engine decides it: a device added here
// may meet the policy itself (any passkey meets hardware), so the one
// that vouches for it must too.
func (p *Page) mayAdd(ctx context.Context, s session) bool {
	if strict(p.cfg.DeviceKeys) {
		if !s.withDevice() {
			return false
		}
		d, err := p.d.Store.GetDevice(ctx, s.Device)
		return err == nil && d.User == s.User && d.Status == store.DeviceActive && pushauth.Qualifies(d, p.cfg.DeviceKeys)
	}
	return s.withDevice() || p.cfg.SelfEnrollment
}

// strict reports whether device-key policy k refuses some devices.
func strict(k string) bool { return k != "" && k != pushauth.KeysAny }

// userDevice returns the user's active device id, or false: another
// user's device, a revoked one and a made-up id are all "not found".
func (p *Page) userDevice(r *http.Request, s session) (store.Device, bool) {
	id := r.PathValue("id")
	if id == "" || len(id) > 64 {
		return store.Device{}, false
	}
	d, err := p.d.Store.GetDevice(r.Context(), id)
	if err != nil || d.User != s.User || d.Status != store.DeviceActive {
		return store.Device{}, false
	}
	return d, true
}

// maxDeviceName bounds a device's name, in characters.
const maxDeviceName = 64

var errNotYours = errors.New("account: not the user's active device")

// rename gives one of the user's devices a new name.
func (p *Page) rename(w http.ResponseWriter, r *http.Request, s session) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || utf8.RuneCountInString(name) > maxDeviceName || !utf8.ValidString(name) ||
		strings.ContainsFunc(name, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		p.devicesStatus(w, r, s, http.StatusBadRequest, "account.error_name")
		return
	}
	var old string
	d, err := p.d.Store.UpdateDevice(detached(r.Context()), r.PathValue("id"), func(d store.Device) (store.Device, error) {
		if d.User != s.User || d.Status != store.DeviceActive {
			return d, errNotYours
		}
		old, d.Name = d.Name, name
		return d, nil
	})
	if errors.Is(err, errNotYours) || errors.Is(err, store.ErrNotFound) || r.PathValue("id") == "" {
		p.message(w, r, http.StatusNotFound, "account.no_device_title", "account.no_device_body")
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.audit(r.Context(), r, s.User, "device.rename", store.ResultSuccess, "", map[string]string{"device": d.ID, "old_name": old, "name": name})
	p.devices(w, r, s, "account.renamed")
}

// devicesStatus is the devices page with an error and a status.
func (p *Page) devicesStatus(w http.ResponseWriter, r *http.Request, s session, status int, errKey string) {
	devs, err := p.d.Store.ListDevices(r.Context(), s.User)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	v := p.view(r, s, "account.title")
	v.Devices, v.CanAdd, v.Error = p.deviceViews(devs, s), p.mayAdd(r.Context(), s), errKey
	p.render(w, r, status, "devices", v)
}

// confirmRemove asks before removing a device.
func (p *Page) confirmRemove(w http.ResponseWriter, r *http.Request, s session) {
	d, ok := p.userDevice(r, s)
	if !ok {
		p.message(w, r, http.StatusNotFound, "account.no_device_title", "account.no_device_body")
		return
	}
	v := p.view(r, s, "account.remove_title")
	dv := p.deviceViews([]store.Device{d}, s)
	v.Device = &dv[0]
	p.render(w, r, http.StatusOK, "remove", v)
}

// remove revokes one of the user's devices: it can no longer answer.
func (p *Page) remove(w http.ResponseWriter, r *http.Request, s session) {
	now := p.now()
	d, err := p.d.Store.UpdateDevice(detached(r.Context()), r.PathValue("id"), func(d store.Device) (store.Device, error) {
		if d.User != s.User || d.Status != store.DeviceActive {
			return d, errNotYours
		}
		d.Status, d.RevokedAt = store.DeviceRevoked, now
		return d, nil
	})
	if errors.Is(err, errNotYours) || errors.Is(err, store.ErrNotFound) || r.PathValue("id") == "" {
		p.message(w, r, http.StatusNotFound, "account.no_device_title", "account.no_device_body")
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.audit(r.Context(), r, s.User, "device.revoke", store.ResultSuccess, "removed on the account page", map[string]string{"device": d.ID, "name": d.Name})
	// The sessions opened with the device end with it, this one too if
	// it was opened with it.
	n, err := EndDeviceSessions(detached(r.Context()), p.d.Store, d.ID)
	if err != nil {
		p.log.WarnContext(r.Context(), "ending the account sessions of a removed device failed", "user", s.User, "device", d.ID, "err", err)
	} else if n > 0 {
		p.audit(r.Context(), r, s.User, "account.signout", store.ResultSuccess, "the device the sessions were opened with was removed",
			map[string]string{"device": d.ID, "sessions": strconv.FormatInt(n, 10)})
	}
	if d.ID == s.Device {
		p.clearCookie(w)
		p.message(w, r, http.StatusOK, "account.removed_signed_out_title", "account.removed_signed_out_body")
		return
	}
	p.devices(w, r, s, "account.removed")
}

// addDevice makes an activation for another device and shows the web
// app's link as a QR code and as a link.
func (p *Page) addDevice(w http.ResponseWriter, r *http.Request, s session) {
	ctx := detached(r.Context())
	if !p.mayAdd(ctx, s) {
		why := "signed in with a code and self-enrollment is off"
		switch {
		case strict(p.cfg.DeviceKeys) && s.withDevice():
			why = "the device the session was opened with does not meet device_keys " + p.cfg.DeviceKeys
		case strict(p.cfg.DeviceKeys):
			why = "signed in with a code and an application has device_keys " + p.cfg.DeviceKeys
		}
		p.audit(ctx, r, s.User, "device.activation", store.ResultDenied, why, nil)
		body := "account.add_refused_body"
		if strict(p.cfg.DeviceKeys) {
			body = "account.add_refused_strict_body"
		}
		p.message(w, r, http.StatusForbidden, "account.add_refused_title", body)
		return
	}
	act, rec, err := p.d.Activator.Create(ctx, s.User, "account", "")
	if err != nil {
		p.fail(w, r, err)
		return
	}
	how := "device"
	if !s.withDevice() {
		how = "self-enrollment"
	}
	p.audit(ctx, r, s.User, "device.activation", store.ResultSuccess, "", map[string]string{
		"activation": rec.ID, "expires_at": rec.ExpiresAt.Format(time.RFC3339), "signed_in_with": how})
	link := AppLink(act, s.User)
	png, err := qrcode.PNG(link)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	v := p.view(r, s, "account.add_title")
	v.Link = link
	// A data: image, allowed by the pages' img-src.
	v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	v.Expires = when(rec.ExpiresAt)
	p.render(w, r, http.StatusOK, "add", v)
}
