package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// captchaSecret is a valid CAPTCHA secret for tests (Turnstile's test
// secret that always passes).
const captchaSecret = "1x0000000000000000000000000000000AA"

// captchaSection is a web section with a CAPTCHA of provider: extra keys
// for it on line 3 of the section (line 8 after trial), then site_key and
// secret unless extra has them.
func captchaSection(provider, extra string) string {
	s := "web:\n  captcha:\n    provider: " + provider + "\n" + extra
	for _, kv := range []string{"site_key: 1x00000000000000000000AA", "secret: " + captchaSecret} {
		key, _, _ := strings.Cut(kv, ":")
		if !strings.Contains(extra, "    "+key+":") && !(key == "secret" && strings.Contains(extra, "    secret_file:")) {
			s += "    " + kv + "\n"
		}
	}
	return s
}

func TestWebDefaults(t *testing.T) {
	c := mustParse(t, trial(""))
	w := c.Web
	if w.SessionLifetime != time.Hour || w.LoginTimeout != 10*time.Minute || w.FailuresPerIP != 20 || w.FailuresPerUser != 10 {
		t.Errorf("web %+v", w)
	}
	if w.Captcha.Enabled() || w.Captcha != (Captcha{Timeout: 5 * time.Second}) {
		t.Errorf("captcha %+v", w.Captcha)
	}

	for _, tt := range []struct{ provider, verify, script string }{
		{"turnstile", "https://challenges.cloudflare.com/turnstile/v0/siteverify", "https://challenges.cloudflare.com/turnstile/v0/api.js"},
		{"hcaptcha", "https://api.hcaptcha.com/siteverify", "https://js.hcaptcha.com/1/api.js"},
		{"recaptcha", "https://www.google.com/recaptcha/api/siteverify", "https://www.google.com/recaptcha/api.js"},
	} {
		c := mustParse(t, trial(captchaSection(tt.provider, "")))
		cp := c.Web.Captcha
		want := Captcha{Provider: tt.provider, SiteKey: "1x00000000000000000000AA", Secret: captchaSecret,
			VerifyURL: tt.verify, ScriptURL: tt.script, Timeout: 5 * time.Second}
		if !cp.Enabled() || cp != want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.provider, cp, want)
		}
		if len(c.Warnings) != 2 { // dev_mode, and the secret written in the file
			t.Errorf("%s: warnings %q", tt.provider, c.Warnings)
		}
	}

	// Explicit values are kept, zero included.
	c = mustParse(t, trial("web:\n  session_lifetime: 0s\n"+captchaSection("hcaptcha",
		"    verify_url: https://relay.example.com/verify\n    script_url: https://relay.example.com/api.js?render=explicit\n")[len("web:\n"):]))
	if cp := c.Web.Captcha; c.Web.SessionLifetime != 0 || cp.VerifyURL != "https://relay.example.com/verify" ||
		cp.ScriptURL != "https://relay.example.com/api.js?render=explicit" {
		t.Errorf("explicit values: %+v", c.Web)
	}
}

func TestWebValidate(t *testing.T) {
	tests := []struct {
		name string
		src  string // completed by trial
		want string // "" means valid
	}{
		{"empty section", "web:\n", ""},
		{"session_lifetime 0", "web:\n  session_lifetime: 0s\n", ""},
		{"session_lifetime 24h", "web:\n  session_lifetime: 24h\n", ""},
		{"session_lifetime long", "web:\n  session_lifetime: 25h\n",
			"bridge.yaml:6: web.session_lifetime: must be from 0 (no browser sessions) to 24h, got 25h0m0s"},
		{"session_lifetime negative", "web:\n  session_lifetime: -1s\n", "web.session_lifetime: must be from 0 (no browser sessions) to 24h, got -1s"},
		{"login_timeout 1m", "web:\n  login_timeout: 1m\n", ""},
		{"login_timeout 1h", "web:\n  login_timeout: 1h\n", ""},
		{"login_timeout short", "web:\n  login_timeout: 59s\n", "bridge.yaml:6: web.login_timeout: must be from 1m to 1h, got 59s"},
		{"login_timeout long", "web:\n  login_timeout: 61m\n", "web.login_timeout: must be from 1m to 1h, got 1h1m0s"},
		{"login_timeout below challenge_ttl", "push:\n  challenge_ttl: 90s\nweb:\n  login_timeout: 1m\n",
			"bridge.yaml:8: web.login_timeout: 1m0s is shorter than push.challenge_ttl (1m30s): the sign-in page would expire while the push waits"},
		{"login_timeout equal to challenge_ttl", "push:\n  challenge_ttl: 2m\nweb:\n  login_timeout: 2m\n", ""},
		{"failures_per_ip", "web:\n  failures_per_ip: 0\n", "bridge.yaml:6: web.failures_per_ip: must be from 1 to 100000, got 0"},
		{"failures_per_ip high", "web:\n  failures_per_ip: 100001\n", "web.failures_per_ip: must be from 1 to 100000, got 100001"},
		{"failures_per_ip bounds", "web:\n  failures_per_ip: 100000\n  failures_per_user: 1\n", ""},
		{"failures_per_user", "web:\n  failures_per_user: -1\n", "bridge.yaml:6: web.failures_per_user: must be from 1 to 100000, got -1"},

		{"captcha section empty", "web:\n  captcha:\n", ""},
		{"captcha provider explicitly empty", "web:\n  captcha:\n    provider: ''\n", ""},
		{"captcha turnstile", captchaSection("turnstile", ""), ""},
		{"captcha hcaptcha UUID site key", captchaSection("hcaptcha", "    site_key: 10000000-ffff-ffff-ffff-000000000001\n"), ""},
		{"captcha provider unknown", captchaSection("friendlycaptcha", ""),
			`bridge.yaml:7: web.captcha.provider: unknown value "friendlycaptcha" (use turnstile, hcaptcha or recaptcha, or leave it out for none)`},
		{"captcha provider case", captchaSection("hCaptcha", ""), `web.captcha.provider: unknown value "hCaptcha"`},
		{"captcha keys without provider", "web:\n  captcha:\n    timeout: 3s\n",
			"bridge.yaml:6: web.captcha.provider: is empty, which leaves the CAPTCHA off: set it (turnstile, hcaptcha or recaptcha), or remove the other web.captcha keys"},
		{"captcha site_key without provider", "web:\n  captcha:\n    site_key: abc\n", "web.captcha.provider: is empty, which leaves the CAPTCHA off"},
		{"captcha site_key required", "web:\n  captcha:\n    provider: turnstile\n    secret: " + captchaSecret + "\n",
			"bridge.yaml:6: web.captcha.site_key: required with provider: the public site key from the provider's console"},
		{"captcha site_key form", captchaSection("turnstile", "    site_key: <script>\n"),
			`bridge.yaml:8: web.captcha.site_key: "<script>" is not a site key (letters, digits, - and _, as the provider's console shows it)`},
		{"captcha site_key long", captchaSection("turnstile", "    site_key: "+strings.Repeat("a", 257)+"\n"), "web.captcha.site_key: "},
		{"captcha secret required", "web:\n  captcha:\n    provider: turnstile\n    site_key: abc\n",
			"bridge.yaml:6: web.captcha.secret_file: required with provider: the secret key from the provider's console: set secret_file to a file holding it, or secret: ${ENV}"},
		{"captcha verify_url https", captchaSection("turnstile", "    verify_url: https://relay.example.com:8443/siteverify?x=1\n"), ""},
		{"captcha verify_url http loopback", captchaSection("turnstile", "    verify_url: http://127.0.0.1:8081/siteverify\n"), ""},
		{"captcha verify_url http loopback 127/8", captchaSection("turnstile", "    verify_url: http://127.1.2.3/siteverify\n"), ""},
		{"captcha verify_url http IPv6 loopback", captchaSection("turnstile", "    verify_url: http://[::1]:8081/siteverify\n"), ""},
		{"captcha verify_url http localhost", captchaSection("turnstile", "    verify_url: http://localhost:8081/siteverify\n"), ""},
		{"captcha verify_url http", captchaSection("turnstile", "    verify_url: http://captcha.example.com/siteverify\n"),
			`bridge.yaml:8: web.captcha.verify_url: http:// is only allowed to a loopback host (for tests); use https://, got "http://captcha.example.com/siteverify"`},
		{"captcha verify_url relative", captchaSection("turnstile", "    verify_url: /siteverify\n"),
			`web.captcha.verify_url: must be an absolute https:// URL, got "/siteverify"`},
		{"captcha verify_url scheme", captchaSection("turnstile", "    verify_url: ftp://captcha.example.com/\n"), "web.captcha.verify_url: must be an absolute https:// URL"},
		{"captcha verify_url credentials", captchaSection("turnstile", "    verify_url: https://u:p@captcha.example.com/\n"),
			"web.captcha.verify_url: must not have credentials or a fragment"},
		{"captcha verify_url fragment", captchaSection("turnstile", "    verify_url: 'https://captcha.example.com/#x'\n"),
			"web.captcha.verify_url: must not have credentials or a fragment"},
		{"captcha verify_url empty", captchaSection("turnstile", "    verify_url: ''\n"),
			"bridge.yaml:8: web.captcha.verify_url: must not be empty (leave it out for the provider's)"},
		{"captcha script_url http", captchaSection("turnstile", "    script_url: http://cdn.example.com/api.js\n"),
			"bridge.yaml:8: web.captcha.script_url: http:// is only allowed to a loopback host (for tests); use https://"},
		{"captcha script_url query", captchaSection("recaptcha", "    script_url: https://www.google.com/recaptcha/api.js?render=explicit&hl=en\n"), ""},
		{"captcha after_failures", captchaSection("turnstile", "    after_failures: 1001\n"),
			"bridge.yaml:8: web.captcha.after_failures: must be from 0 to 1000, got 1001"},
		{"captcha after_failures negative", captchaSection("turnstile", "    after_failures: -1\n"), "web.captcha.after_failures: must be from 0 to 1000, got -1"},
		{"captcha after_failures 1000", "web:\n  failures_per_ip: 2000\n" + captchaSection("turnstile", "    after_failures: 1000\n")[len("web:\n"):], ""},
		{"captcha timeout", captchaSection("turnstile", "    timeout: 500ms\n"), "bridge.yaml:8: web.captcha.timeout: must be from 1s to 30s, got 500ms"},
		{"captcha timeout long", captchaSection("turnstile", "    timeout: 31s\n"), "web.captcha.timeout: must be from 1s to 30s, got 31s"},
		{"captcha timeout bounds", captchaSection("turnstile", "    timeout: 30s\n"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(tt.src), "", nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v\nconfig:\n%s", err, trial(tt.src))
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("Validate after Parse: %v", err)
				}
				return
			}
			wantErr(t, err, tt.want)
			if err != nil && strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("want exactly one problem, got:\n%v", err)
			}
		})
	}
}

func TestWebWarnings(t *testing.T) {
	env := map[string]string{"S": captchaSecret}
	tests := []struct {
		name string
		src  string
		want string // substring of the one warning besides dev_mode; "" means none
	}{
		{"defaults", "web:\n  captcha:\n", ""},
		{"session_lifetime 8h", "web:\n  session_lifetime: 8h\n", ""},
		{"session_lifetime above 8h", "web:\n  session_lifetime: 8h1m\n",
			"bridge.yaml:6: web.session_lifetime: 8h1m0s: long browser sessions let a stolen cookie skip the push (the default is 1h)"},
		{"captcha from the environment", captchaSection("turnstile", "    secret: ${S}\n"), ""},
		{"captcha secret in the file", captchaSection("turnstile", ""),
			"bridge.yaml:9: web.captcha.secret: the CAPTCHA secret is written in the config file; use secret_file or ${ENV}"},
		{"captcha verify_url over http", captchaSection("turnstile", "    secret: ${S}\n    verify_url: http://127.0.0.1:9/siteverify\n"),
			"bridge.yaml:9: web.captcha.verify_url: plain-HTTP CAPTCHA verification: for tests only"},
		{"captcha script_url over http", captchaSection("turnstile", "    secret: ${S}\n    script_url: http://localhost:9/api.js\n"),
			"bridge.yaml:9: web.captcha.script_url: plain-HTTP CAPTCHA script: for tests only"},
		{"captcha after_failures below failures_per_ip", captchaSection("turnstile", "    secret: ${S}\n    after_failures: 19\n"), ""},
		{"captcha after_failures at failures_per_ip", captchaSection("turnstile", "    secret: ${S}\n    after_failures: 20\n"),
			"bridge.yaml:9: web.captcha.after_failures: 20 is not below web.failures_per_ip (20): an address is refused before it is asked for a CAPTCHA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(tt.src), "", env)
			if err != nil {
				t.Fatal(err)
			}
			var others []string
			for _, w := range c.Warnings {
				if !strings.Contains(w, "dev_mode") {
					others = append(others, w)
				}
			}
			switch {
			case tt.want == "" && len(others) != 0:
				t.Errorf("warnings: %q", others)
			case tt.want != "" && (len(others) != 1 || !strings.HasPrefix(others[0], tt.want)):
				t.Errorf("warnings %q, want one starting with %q", others, tt.want)
			}
		})
	}
}

func TestCaptchaSecrets(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "captcha", captchaSecret+"\n")
	writeFile(t, dir, "empty", "")
	env := map[string]string{"CAPTCHA": "0x4AAAAAAAenv-captcha-secret", "EMPTY": ""}
	tests := []struct {
		name, extra string
		want        string // an error; "" means success
		secret      string
	}{
		{name: "secret_file", extra: "    secret_file: captcha\n", secret: captchaSecret},
		{name: "secret from env", extra: "    secret: ${CAPTCHA}\n", secret: "0x4AAAAAAAenv-captcha-secret"},
		{name: "secret and secret_file", extra: "    secret: ${CAPTCHA}\n    secret_file: captcha\n",
			want: "bridge.yaml:9: web.captcha.secret_file: set either secret or secret_file, not both"},
		{name: "secret_file missing", extra: "    secret_file: nope\n",
			want: `bridge.yaml:8: web.captcha.secret_file: cannot read "` + filepath.Join(dir, "nope") + `": no such file or directory`},
		{name: "secret_file empty", extra: "    secret_file: empty\n", want: "bridge.yaml:8: web.captcha.secret_file: file"},
		{name: "secret_file without a value", extra: "    secret_file:\n", want: "bridge.yaml:8: web.captcha.secret_file: is empty"},
		{name: "secret empty variable", extra: "    secret: ${EMPTY}\n", want: "bridge.yaml:8: web.captcha.secret: is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(captchaSection("turnstile", tt.extra)), dir, env)
			if tt.want != "" {
				wantErr(t, err, tt.want)
				if err != nil && strings.Count(err.Error(), "\n") != 0 {
					t.Errorf("want exactly one problem, got:\n%v", err)
				}
				if err != nil && strings.Contains(err.Error(), env["CAPTCHA"]) {
					t.Errorf("error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Web.Captcha.Secret != tt.secret {
				t.Errorf("secret %q, want %q", c.Web.Captcha.Secret, tt.secret)
			}
		})
	}
}
