package config

import (
	"slices"
	"strings"
	"testing"
)

// TestAppDefaults: the app is on, its RP ID is the base URL's host (none on
// an IP address: passkeys need a domain name), and Web Push reaches the
// browsers' services with an https contact derived from the base URL.
func TestAppDefaults(t *testing.T) {
	tests := []struct {
		base, rpID, subject string
	}{
		{"http://localhost:8080", "localhost", "https://localhost"},
		{"https://mfa.example.com", "mfa.example.com", "https://mfa.example.com"},
		{"http://127.0.0.1:8080", "", "https://127.0.0.1"},
		{"http://[::1]:8080", "", "https://[::1]"},
	}
	for _, tt := range tests {
		c := mustParse(t, "dev_mode: true\nhttp:\n  public:\n    allow_plain_http: true\n    base_url: "+tt.base+"\n")
		a := c.App
		if !a.Enabled || a.Name != "Bridge" || a.RPID != tt.rpID || a.SelfEnrollment ||
			!a.WebPush.Enabled || a.WebPush.Subject != tt.subject || !slices.Equal(a.WebPush.AllowedHosts, DefaultWebPushHosts) {
			t.Errorf("%s: app %+v", tt.base, a)
		}
		if got := c.AppAttestation(); got != "none" {
			t.Errorf("%s: attestation %q without an application asking for attested keys", tt.base, got)
		}
	}
}

// TestAppSecureContext: `bridge config check` warns when the app is on and
// the base URL is plain HTTP on a host that is not loopback (browsers
// refuse passkeys, service workers and Web Push there), and not otherwise.
func TestAppSecureContext(t *testing.T) {
	tests := []struct {
		name, src string
		warn      bool
	}{
		{"loopback name", "http:\n  public:\n    allow_plain_http: true\n    base_url: http://localhost:8080\n", false},
		{"loopback address", "http:\n  public:\n    allow_plain_http: true\n    base_url: http://127.0.0.1:8080\n", false},
		{"https", "http:\n  public:\n    allow_plain_http: true\n    base_url: https://mfa.example.com\n", false},
		{"plain http on a network name", "http:\n  public:\n    allow_plain_http: true\n    base_url: http://mfa.example.com\n", true},
		{"plain http, app off", "http:\n  public:\n    allow_plain_http: true\n    base_url: http://mfa.example.com\napp:\n  enabled: false\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, "dev_mode: true\n"+tt.src)
			got := false
			for _, w := range c.Warnings {
				if strings.Contains(w, "app.enabled: the web authenticator needs a secure context") {
					got = true
				}
			}
			if got != tt.warn {
				t.Errorf("secure-context warning %v, want %v; warnings %q", got, tt.warn, c.Warnings)
			}
		})
	}
}

// TestAppErrors: each bad value of the app section is reported with its
// key; device_keys takes its three values only, and an attested application
// makes the app ask for direct attestation.
func TestAppErrors(t *testing.T) {
	base := "dev_mode: true\nhttp:\n  public:\n    allow_plain_http: true\n    base_url: https://mfa.example.com\n"
	tests := []struct{ name, src, want string }{
		{"rp_id an address", "app:\n  rp_id: 192.0.2.1\n", "app.rp_id: \"192.0.2.1\" is an IP address"},
		{"rp_id elsewhere", "app:\n  rp_id: example.org\n", "app.rp_id: \"example.org\" is not mfa.example.com or a parent domain"},
		{"rp_id empty", "app:\n  rp_id: \"\"\n", "app.rp_id: must not be empty"},
		{"origin with a path", "app:\n  rp_id: example.com\n  origins: [https://mfa2.example.com/x]\n", "app.origins[0]: \"https://mfa2.example.com/x\" is not an origin"},
		{"origin outside rp_id", "app:\n  origins: [https://mfa.example.org]\n", "app.origins[0]: \"https://mfa.example.org\" is not within app.rp_id"},
		{"origin plain http", "app:\n  rp_id: example.com\n  origins: [http://mfa2.example.com]\n", "app.origins[0]"},
		{"name too long", "app:\n  name: " + strings.Repeat("n", 65) + "\n", "app.name: must be 1 to 64 characters"},
		{"subject", "app:\n  webpush:\n    subject: security@example.com\n", "app.webpush.subject: must be a mailto: or https: URL"},
		{"no push hosts", "app:\n  webpush:\n    allowed_hosts: []\n", "app.webpush.allowed_hosts: is empty"},
		{"push host with a port", "app:\n  webpush:\n    allowed_hosts: [\"fcm.googleapis.com:443\"]\n", "app.webpush.allowed_hosts[0]"},
		{"device_keys", "radius:\n  clients:\n    - {name: vpn, address: 192.0.2.10, secret: 0123456789abcdef, device_keys: tpm}\n", "radius.clients[0].device_keys: unknown value \"tpm\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, base+tt.src, "", nil)
			wantErr(t, err, tt.want)
		})
	}
	c := mustParse(t, base+"radius:\n  clients:\n    - {name: vpn, address: 192.0.2.10, secret: 0123456789abcdef, device_keys: attested}\n")
	if got := c.AppAttestation(); got != "direct" {
		t.Errorf("attestation %q with an attested application, want direct", got)
	}
}

// TestSelfEnrollmentWithStrictKeys: self_enrollment does nothing when an
// application is stricter than any (the account page lets only a session
// opened with a qualifying device add devices), and check says so; and
// StrictestDeviceKeys is what the account page is given.
func TestSelfEnrollmentWithStrictKeys(t *testing.T) {
	base := "dev_mode: true\nhttp:\n  public:\n    allow_plain_http: true\n    base_url: https://mfa.example.com\n"
	client := func(keys string) string {
		return "    - {name: vpn" + keys + ", address: 192.0.2." + map[string]string{"any": "10", "hardware": "11", "attested": "12"}[keys] + ", secret: 0123456789abcdef, device_keys: " + keys + "}\n"
	}
	tests := []struct {
		name, src, strictest string
		warn                 bool
	}{
		{"any", "app:\n  self_enrollment: true\nradius:\n  clients:\n" + client("any"), "any", false},
		{"hardware", "app:\n  self_enrollment: true\nradius:\n  clients:\n" + client("any") + client("hardware"), "hardware", true},
		{"attested over hardware", "app:\n  self_enrollment: true\nradius:\n  clients:\n" + client("attested") + client("hardware"), "attested", true},
		{"hardware, self-enrollment off", "radius:\n  clients:\n" + client("hardware"), "hardware", false},
		{"hardware, app off", "app:\n  enabled: false\n  self_enrollment: true\nradius:\n  clients:\n" + client("hardware"), "hardware", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, base+tt.src)
			if c.App.SelfEnrollment != strings.Contains(tt.src, "self_enrollment: true") {
				t.Errorf("self_enrollment %v", c.App.SelfEnrollment)
			}
			if got := c.StrictestDeviceKeys(); got != tt.strictest {
				t.Errorf("strictest %q, want %q", got, tt.strictest)
			}
			got := false
			for _, w := range c.Warnings {
				if strings.Contains(w, "app.self_enrollment: has no effect: an application has device_keys "+tt.strictest) {
					got = true
				}
			}
			if got != tt.warn {
				t.Errorf("self-enrollment warning %v, want %v; warnings %q", got, tt.warn, c.Warnings)
			}
		})
	}
}
