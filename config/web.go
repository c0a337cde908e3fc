package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Web is the browser sign-in pages that the OIDC (and later SAML) front ends
// share: how long a sign-in page and a browser session last, how many
// failed sign-ins are allowed, and an optional CAPTCHA.
type Web struct {
	// SessionLifetime is how long a browser session, made at a login with
	// the push approved, lets a later login to an application that allows
	// it (session_reuse) skip the push: from 0 (no sessions) to 24h. Above
	// 8h is logged as a warning: a stolen cookie would skip the push that
	// long. Default 1h.
	SessionLifetime time.Duration `yaml:"session_lifetime"`
	// LoginTimeout is how long a sign-in page stays usable, from the
	// application's request to the approved push: from 1m to 1h, and not
	// shorter than push.challenge_ttl. Default 10m.
	LoginTimeout time.Duration `yaml:"login_timeout"`
	// FailuresPerIP is how many failed sign-ins from one client IP address
	// (IPv6 addresses counted per /64) in 15 minutes are allowed before
	// further attempts from it are refused: from 1 to 100000. Default 20.
	FailuresPerIP int `yaml:"failures_per_ip"`
	// FailuresPerUser is how many failed sign-ins for one user name in 15
	// minutes are allowed before further attempts for it are refused: from
	// 1 to 100000. Default 10.
	FailuresPerUser int `yaml:"failures_per_user"`
	// Captcha asks for a CAPTCHA on the sign-in page; off by default.
	Captcha Captcha `yaml:"captcha"`
}

// Captcha is a CAPTCHA service asked on sign-in pages: always for the OIDC
// clients with captcha: true, and for every sign-in from an address after
// after_failures failures from it. Enabled when provider is set; site_key
// and secret (or secret_file) are then required.
type Captcha struct {
	// Provider is turnstile (Cloudflare Turnstile), hcaptcha or recaptcha
	// (Google reCAPTCHA). Empty (default): no CAPTCHA.
	Provider string `yaml:"provider"`
	// SiteKey is the public key the widget is shown with, from the
	// provider's console (letters, digits, - and _).
	SiteKey string `yaml:"site_key"`
	// Secret is the key the answers are verified with. Write ${ENV} or use
	// secret_file, not both; one is required with a provider. After Load
	// Secret holds the secret read from secret_file too (one trailing
	// newline trimmed).
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// VerifyURL is where answers are verified (the provider's siteverify
	// endpoint): an absolute https:// URL, or http:// to a loopback host
	// (127.0.0.0/8, ::1, localhost; for tests, logged as a warning).
	// Default per provider: https://challenges.cloudflare.com/turnstile/v0/siteverify,
	// https://api.hcaptcha.com/siteverify or
	// https://www.google.com/recaptcha/api/siteverify.
	VerifyURL string `yaml:"verify_url"`
	// ScriptURL is the widget's script, loaded by the sign-in page: the
	// same rule as verify_url. Default per provider:
	// https://challenges.cloudflare.com/turnstile/v0/api.js,
	// https://js.hcaptcha.com/1/api.js or
	// https://www.google.com/recaptcha/api.js.
	ScriptURL string `yaml:"script_url"`
	// AfterFailures: 0 (default) asks only on the sign-ins of clients with
	// captcha: true; N > 0 asks on every sign-in from a client IP address
	// (IPv6 per /64) after N failed sign-ins from it in 15 minutes. From 0
	// to 1000; at or above web.failures_per_ip it is logged as a warning
	// (the address is refused before it is asked).
	AfterFailures int `yaml:"after_failures"`
	// Timeout bounds one verification request: from 1s to 30s. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
}

// Enabled reports whether a CAPTCHA is configured: provider is set.
func (c Captcha) Enabled() bool { return c.Provider != "" }

// captchaProvider is what the bridge knows of a CAPTCHA service.
type captchaProvider struct {
	verifyURL, scriptURL string
}

// captchaProviders are the providers of web.captcha.provider, with the
// default verify_url and script_url of each.
var captchaProviders = map[string]captchaProvider{
	"turnstile": {
		verifyURL: "https://challenges.cloudflare.com/turnstile/v0/siteverify",
		scriptURL: "https://challenges.cloudflare.com/turnstile/v0/api.js",
	},
	"hcaptcha": {
		verifyURL: "https://api.hcaptcha.com/siteverify",
		scriptURL: "https://js.hcaptcha.com/1/api.js",
	},
	"recaptcha": {
		verifyURL: "https://www.google.com/recaptcha/api/siteverify",
		scriptURL: "https://www.google.com/recaptcha/api.js",
	},
}

// captchaProviderNames lists the providers for messages, in this order.
const captchaProviderNames = "turnstile, hcaptcha or recaptcha"

// siteKey is the form of a CAPTCHA site key: the providers' keys are
// letters, digits, - and _ (hCaptcha's are UUIDs).
var siteKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// web checks the web section.
func (v *validator) web() {
	w := &v.c.Web
	if sl := w.SessionLifetime; sl < 0 || sl > 24*time.Hour {
		v.errorf("web.session_lifetime", "must be from 0 (no browser sessions) to 24h, got %s", v.c.plain("web.session_lifetime", sl))
	}
	lp := "web.login_timeout"
	v.durationIn(lp, w.LoginTimeout, time.Minute, time.Hour)
	if ttl := v.c.Push.ChallengeTTL; w.LoginTimeout >= time.Minute && w.LoginTimeout < ttl {
		v.errorf(lp, "%s is shorter than push.challenge_ttl (%s): the sign-in page would expire while the push waits",
			v.c.plain(lp, w.LoginTimeout), v.c.plain("push.challenge_ttl", ttl))
	}
	v.intIn("web.failures_per_ip", w.FailuresPerIP, 1, 100000)
	v.intIn("web.failures_per_user", w.FailuresPerUser, 1, 100000)
	v.captcha(&w.Captcha)
}

// captcha checks web.captcha.
func (v *validator) captcha(c *Captcha) {
	const path = "web.captcha"
	pp := path + ".provider"
	if c.Provider == "" {
		for _, k := range []string{"site_key", "secret", "secret_file", "verify_url", "script_url", "after_failures", "timeout"} {
			if v.c.has(path + "." + k) {
				v.errorf(pp, "is empty, which leaves the CAPTCHA off: set it (%s), or remove the other %s keys", captchaProviderNames, path)
				break
			}
		}
	} else if _, ok := captchaProviders[c.Provider]; !ok {
		v.errorf(pp, "unknown value %s (use %s, or leave it out for none)", v.c.show(pp, c.Provider), captchaProviderNames)
	}

	if sp := path + ".site_key"; c.SiteKey != "" {
		if !siteKey.MatchString(c.SiteKey) {
			v.errorf(sp, "%s is not a site key (letters, digits, - and _, as the provider's console shows it)", v.c.show(sp, c.SiteKey))
		}
	} else if c.Provider != "" {
		v.errorf(sp, "required with provider: the public site key from the provider's console")
	}

	// An unreadable or empty secret_file, or both keys set, was reported
	// when it was read.
	if c.Provider != "" && c.Secret == "" && c.SecretFile == "" && !v.c.has(path+".secret") && !v.c.has(path+".secret_file") {
		v.errorf(path+".secret_file", "required with provider: the secret key from the provider's console: "+
			"set secret_file to a file holding it, or secret: ${ENV}")
	}

	for _, k := range []string{"verify_url", "script_url"} {
		p := path + "." + k
		s := c.VerifyURL
		if k == "script_url" {
			s = c.ScriptURL
		}
		if s == "" {
			if v.c.has(p) {
				v.errorf(p, "must not be empty (leave it out for the provider's)")
			}
			continue
		}
		if _, err := checkCaptchaURL(s, v.c.fromEnv[p]); err != nil {
			v.errorf(p, "%v", err)
		}
	}
	v.intIn(path+".after_failures", c.AfterFailures, 0, 1000)
	v.durationIn(path+".timeout", c.Timeout, time.Second, 30*time.Second)
}

// checkCaptchaURL requires an absolute https:// URL, or http:// to a
// loopback host (for tests; plain reports it), without credentials or a
// fragment; a query is allowed (a script's ?render=explicit). A value from
// the environment (env.raw set) is named by its variables in the error.
func checkCaptchaURL(s string, env envUse) (plain bool, err error) {
	shown := quote(s)
	if env.raw != "" {
		shown = envRef(env.raw)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return false, fmt.Errorf("must be an absolute https:// URL, got %s", shown)
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(s, "#") {
		return false, fmt.Errorf("must not have credentials or a fragment, got %s", shown)
	}
	if u.Scheme == "http" {
		if !loopbackHost(u.Hostname()) {
			return false, fmt.Errorf("http:// is only allowed to a loopback host (for tests); use https://, got %s", shown)
		}
		return true, nil
	}
	return false, nil
}

// webWarnings adds the warnings of the web section.
func (c *Config) webWarnings(warn func(string, string, ...any)) {
	w := &c.Web
	if w.SessionLifetime > 8*time.Hour {
		warn("web.session_lifetime", "%s: long browser sessions let a stolen cookie skip the push (the default is 1h)",
			c.plain("web.session_lifetime", w.SessionLifetime))
	}
	cp := &w.Captcha
	if !cp.Enabled() {
		return
	}
	for _, e := range []struct{ key, value, what string }{
		{"verify_url", cp.VerifyURL, "verification"},
		{"script_url", cp.ScriptURL, "script"},
	} {
		if plain, err := checkCaptchaURL(e.value, envUse{}); err == nil && plain {
			warn("web.captcha."+e.key, "plain-HTTP CAPTCHA %s: for tests only", e.what)
		}
	}
	if c.has("web.captcha.secret") {
		if _, env := c.fromEnv["web.captcha.secret"]; !env {
			warn("web.captcha.secret", "the CAPTCHA secret is written in the config file; use secret_file or ${ENV}")
		}
	}
	if n := cp.AfterFailures; n > 0 && n >= w.FailuresPerIP {
		warn("web.captcha.after_failures", "%s is not below web.failures_per_ip (%s): an address is refused before it is asked for a CAPTCHA",
			c.plain("web.captcha.after_failures", n), c.plain("web.failures_per_ip", w.FailuresPerIP))
	}
}
