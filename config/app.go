package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// App is the web authenticator: the installable web app (PWA) served at
// /app/ on the public listener, with which users approve sign-ins on a
// phone with nothing installed from an app store, and the account page
// (/account) where they manage their devices.
type App struct {
	// Enabled serves the app, the account page and Web Push. Default true.
	// Browsers allow passkeys, service workers and Web Push only in a secure
	// context: https, or http on localhost for trials; see the warning of
	// `bridge config check`.
	Enabled bool `yaml:"enabled"`
	// Name is what the app, its notifications and the passkey prompt call
	// the bridge ("Example Corp sign-in"). At most 64 characters. Default
	// "Bridge".
	Name string `yaml:"name"`
	// RPID is the WebAuthn relying party id passkeys are bound to: the host
	// of http.public.base_url (default) or a registrable suffix of it (a
	// parent domain, so that bridges on several subdomains share passkeys).
	// Passkeys need a domain name: when the base URL's host is an IP
	// address RPID stays empty and the app makes software keys only
	// (logged at start; use http://localhost:PORT for a trial).
	RPID string `yaml:"rp_id"`
	// Origins are more origins (scheme://host[:port]) besides the base
	// URL's whose passkey assertions are accepted, for bridges on sibling
	// subdomains that share rp_id. Default none.
	Origins []string `yaml:"origins"`
	// SelfEnrollment lets a user who signed in to the account page with a
	// first factor and a second factor that is not a device (a TOTP code, a
	// bypass code) enroll their first device there. Without it the first
	// device comes from an operator's activation; adding more devices after
	// signing in with one is always allowed. Default false.
	SelfEnrollment bool `yaml:"self_enrollment"`
	// WebPush wakes the app through the browser's push service.
	WebPush WebPush `yaml:"webpush"`
	// AttestationRoots are PEM files of the root certificates the operator
	// trusts for passkey attestation in the packed, tpm and fido-u2f
	// formats (a security-key maker's attestation root, an enterprise's
	// own CA). A passkey meets device_keys attested only when its
	// attestation chained to one of them at enrollment, or to a root the
	// WebAuthn library pins for the apple and android-key formats. Default
	// none. After Load AttestationRootCerts holds the certificates.
	AttestationRoots     []string            `yaml:"attestation_roots"`
	AttestationRootCerts []*x509.Certificate `yaml:"-"`
}

// WebPush is Web Push (RFC 8030) with VAPID (RFC 8292), sent by the bridge
// straight to the browser's push service with the bridge's own VAPID key
// (generated at first start, sealed under the KEK, rotated like the other
// keys). No vendor account is needed.
type WebPush struct {
	// Enabled sends Web Push to the app's subscriptions. Default true (with
	// app.enabled).
	Enabled bool `yaml:"enabled"`
	// Subject is the contact the push services may write to about the
	// bridge's traffic: a mailto: or https: URL. Default https:// and the
	// host of http.public.base_url.
	Subject string `yaml:"subject"`
	// AllowedHosts are the push-service hosts the bridge sends to; a
	// subscription naming another host is refused at enrollment, so that a
	// device cannot aim the bridge's requests at internal hosts. A leading
	// "*." matches any subdomain. Default the push services of Chrome,
	// Firefox, Safari and Edge.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// DefaultWebPushHosts are the push services of the browsers people use:
// Google's (Chrome, Edge on Android, Samsung Internet), Mozilla's, Apple's
// and Microsoft's.
var DefaultWebPushHosts = []string{
	"fcm.googleapis.com",
	"updates.push.services.mozilla.com",
	"*.push.apple.com",
	"*.notify.windows.com",
}

// Device key policies of an application (device_keys).
const (
	DeviceKeysAny      = "any"      // every enrolled device
	DeviceKeysHardware = "hardware" // no software keys
	DeviceKeysAttested = "attested" // only keys whose attestation was verified
)

// AppAttestation is the WebAuthn attestation the app asks for at
// enrollment: "direct" when some application accepts only attested device
// keys, else "none" (nothing to verify, nothing about the phone's maker
// disclosed).
func (f *File) AppAttestation() string {
	for _, c := range f.Radius.Clients {
		if c.DeviceKeys == DeviceKeysAttested {
			return "direct"
		}
	}
	for _, c := range f.OIDC.Clients {
		if c.DeviceKeys == DeviceKeysAttested {
			return "direct"
		}
	}
	for _, sp := range f.SAML.ServiceProviders {
		if sp.DeviceKeys == DeviceKeysAttested {
			return "direct"
		}
	}
	return "none"
}

// StrictestDeviceKeys is the strictest device_keys of the applications
// (any when none is stricter): what a device must meet before the
// account page lets a session opened with it add another device.
func (f *File) StrictestDeviceKeys() string {
	rank := map[string]int{DeviceKeysHardware: 1, DeviceKeysAttested: 2}
	best := DeviceKeysAny
	for _, k := range f.deviceKeys() {
		if rank[k] > rank[best] {
			best = k
		}
	}
	return best
}

// deviceKeys lists the device_keys of every application.
func (f *File) deviceKeys() []string {
	var out []string
	for _, c := range f.Radius.Clients {
		out = append(out, c.DeviceKeys)
	}
	for _, c := range f.OIDC.Clients {
		out = append(out, c.DeviceKeys)
	}
	for _, sp := range f.SAML.ServiceProviders {
		out = append(out, sp.DeviceKeys)
	}
	return out
}

// appDefaults fills the app section's values derived from the base URL.
func appDefaults(f *File, set func(path string) bool) {
	host := ""
	if u, err := url.Parse(f.HTTP.Public.BaseURL); err == nil {
		host = u.Hostname()
	}
	if !set("app.enabled") {
		f.App.Enabled = true
	}
	if !set("app.name") {
		f.App.Name = "Bridge"
	}
	if !set("app.rp_id") && net.ParseIP(host) == nil {
		// An IP address cannot be a WebAuthn RP ID: the app then makes
		// software keys only (see the warning).
		f.App.RPID = host
	}
	if !set("app.webpush.enabled") {
		f.App.WebPush.Enabled = true
	}
	if !set("app.webpush.subject") && host != "" {
		f.App.WebPush.Subject = (&url.URL{Scheme: "https", Host: bracketed(host)}).String()
	}
	if !set("app.webpush.allowed_hosts") {
		f.App.WebPush.AllowedHosts = append([]string(nil), DefaultWebPushHosts...)
	}
}

// app checks the app section.
func (v *validator) app() {
	a := &v.c.App
	if n := len([]rune(a.Name)); n == 0 || n > 64 || strings.ContainsFunc(a.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		v.errorf("app.name", "must be 1 to 64 characters without control characters")
	}
	host := ""
	if u, err := url.Parse(v.c.HTTP.Public.BaseURL); err == nil {
		host = strings.ToLower(u.Hostname())
	}
	rp := strings.ToLower(a.RPID)
	switch {
	case rp == "" && v.c.has("app.rp_id"):
		v.errorf("app.rp_id", "must not be empty")
	case rp == "":
		// Derived from a base URL on an IP address: no passkeys (logged at start).
	case net.ParseIP(rp) != nil:
		v.errorf("app.rp_id", "%s is an IP address; passkeys need a domain name (use localhost for trials)", v.c.show("app.rp_id", a.RPID))
	case host != "" && rp != host && !strings.HasSuffix(host, "."+rp):
		v.errorf("app.rp_id", "%s is not %s or a parent domain of it: browsers bind passkeys to the page's own domain", v.c.show("app.rp_id", a.RPID), host)
	}
	for i, o := range a.Origins {
		path := fmt.Sprintf("app.origins[%d]", i)
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname()))) || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			v.errorf(path, "%s is not an origin: write scheme://host[:port] (https, or http on a loopback host)", v.c.show(path, o))
			continue
		}
		if h := strings.ToLower(u.Hostname()); rp != "" && h != rp && !strings.HasSuffix(h, "."+rp) {
			v.errorf(path, "%s is not within app.rp_id %s: its passkeys could not be used", v.c.show(path, o), a.RPID)
		}
	}
	w := &a.WebPush
	if w.Enabled && a.Enabled && (w.Subject != "" || v.c.has("app.webpush.subject")) {
		if u, err := url.Parse(w.Subject); err != nil || !(u.Scheme == "mailto" && u.Opaque != "" || u.Scheme == "https" && u.Host != "") {
			v.errorf("app.webpush.subject", "must be a mailto: or https: URL, got %s", v.c.show("app.webpush.subject", w.Subject))
		}
		if len(w.AllowedHosts) == 0 {
			v.errorf("app.webpush.allowed_hosts", "is empty: no push service could be reached (leave it out for the browsers' services)")
		}
		for i, h := range w.AllowedHosts {
			name := strings.TrimPrefix(h, "*.")
			if name == "" || strings.ContainsAny(name, "/:*@ ") {
				v.errorf(fmt.Sprintf("app.webpush.allowed_hosts[%d]", i), "%q is not a host name (optionally starting with *.)", h)
			}
		}
	}
}

// deviceKeys checks an application's device_keys.
func (v *validator) deviceKeys(path, value string) {
	if value != "" { // "" (set in code, not in a file) is any
		v.oneOf(path, value, DeviceKeysAny, DeviceKeysHardware, DeviceKeysAttested)
	}
}

// bracketed writes an IPv6 address as a URL host ([::1]).
func bracketed(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// attestationRoots reads app.attestation_roots into AttestationRootCerts.
func (r *resolver) attestationRoots() {
	rc, a := r.c, &r.c.App
	a.AttestationRootCerts = nil
	for i, file := range a.AttestationRoots {
		path := fmt.Sprintf("app.attestation_roots[%d]", i)
		if file == "" {
			r.errs = append(r.errs, rc.newError(path, "is empty"))
			continue
		}
		shown := rc.showFile(path, file)
		b, err := r.read(file)
		if err != nil {
			r.errs = append(r.errs, rc.newError(path, "cannot read %s: %v", shown, fileError(err)))
			continue
		}
		certs, errs := parseRoots(b, time.Now())
		for _, e := range errs {
			r.errs = append(r.errs, rc.newError(path, "%s: %v", shown, e))
		}
		if len(errs) == 0 {
			a.AttestationRootCerts = append(a.AttestationRootCerts, certs...)
		}
	}
}

// parseRoots parses a PEM file of root certificates: at least one
// CERTIFICATE block, no other kind (a private key is refused unread), each
// a CA certificate valid at now. Text between blocks (comments in a
// bundle) is ignored.
func parseRoots(b []byte, now time.Time) ([]*x509.Certificate, []error) {
	var certs []*x509.Certificate
	var errs []error
	for n := 1; ; n++ {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			errs = append(errs, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE: the file holds root certificates only", n, clipType(block.Type)))
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("certificate %d does not parse: %v", n, err))
		case !c.BasicConstraintsValid || !c.IsCA:
			errs = append(errs, fmt.Errorf("certificate %d (%s) is not a CA certificate (basic constraints CA:TRUE): it cannot be a root", n, c.Subject))
		case now.After(c.NotAfter):
			errs = append(errs, fmt.Errorf("certificate %d (%s) expired on %s", n, c.Subject, c.NotAfter.UTC().Format(time.DateOnly)))
		default:
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("holds no PEM certificate"))
	}
	return certs, errs
}

// clipType shortens a PEM block type for a message.
func clipType(t string) string {
	if len(t) > 40 {
		return t[:40] + "..."
	}
	return t
}
