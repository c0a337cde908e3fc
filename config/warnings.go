package config

import (
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bridge-idp/bridge/directory/local"
)

// warnings lists every setting weaker than the default, for serve to log at
// each start. files are the secret files read, and mode returns the
// permission bits of a file.
func (c *Config) warnings(files []secretFile, mode func(string) (fs.FileMode, error)) []string {
	var out []string
	warn := func(path, format string, args ...any) {
		out = append(out, c.newError(path, format, args...).Error())
	}
	f := &c.File

	if f.DevMode {
		if c.KEK == nil {
			warn("dev_mode", "dev mode is on: stored secrets are encrypted under a generated key in %s; "+
				"never run like this in production (set keys.kek_file and remove dev_mode)", c.DevKEKPath())
		} else {
			warn("dev_mode", "dev mode is on: never run like this in production")
		}
	}
	for _, sf := range slices.Concat(files, f.pushKeyFiles()) {
		// Stat after reading: a file that changed in between is at worst
		// warned about wrongly. Permission bits mean nothing on Windows.
		if m, err := mode(sf.file); err == nil && m&0o044 != 0 && runtime.GOOS != "windows" {
			warn(sf.path, "%s is readable by other users (mode %04o); chmod 600 it", sf.file, m.Perm())
		}
	}
	fromEnv := func(path string) bool { _, ok := c.fromEnv[path]; return ok }
	if c.has("keys.kek") && !fromEnv("keys.kek") {
		warn("keys.kek", "the key-encryption key is written in the config file: anyone who can read it can decrypt the stored secrets; use kek_file or ${ENV}")
	}
	if f.Storage.Driver == "postgres" && c.has("storage.postgres.dsn") && !fromEnv("storage.postgres.dsn") && dsnHasPassword(f.Storage.Postgres.DSN) {
		warn("storage.postgres.dsn", "the database password is written in the config file; use dsn_file or ${ENV}")
	}
	if f.Keys.RSABits < 3072 {
		warn("keys.rsa_bits", "%d-bit RSA keys are weaker than the default 3072", f.Keys.RSABits)
	}

	c.listenerWarnings(warn, "http.public", &f.HTTP.Public)
	if f.HTTP.Admin.Listen != "" {
		c.listenerWarnings(warn, "http.admin", &f.HTTP.Admin)
	}
	if u, err := url.Parse(f.HTTP.Public.BaseURL); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		warn("http.public.base_url", "%s is plain HTTP: phones and browsers would send credentials unencrypted", f.HTTP.Public.BaseURL)
	}
	if u, err := url.Parse(f.HTTP.Public.BaseURL); err == nil && f.App.Enabled && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		warn("app.enabled", "the web authenticator needs a secure context, and %s is plain HTTP: browsers allow passkeys, "+
			"service workers and Web Push only over https (or on a loopback address for a trial on the same machine); "+
			"serve the public listener over TLS, or set app.enabled: false", f.HTTP.Public.BaseURL)
	}
	if k := f.StrictestDeviceKeys(); f.App.Enabled && f.App.SelfEnrollment && k != DeviceKeysAny {
		// A device added after a code sign-in could meet the policy (a
		// passkey meets hardware) with nothing the policy trusts behind
		// it, so the account page refuses it: the setting does nothing.
		warn("app.self_enrollment", "has no effect: an application has device_keys %s, and a device added after signing in with a code "+
			"would get round it, so the account page lets only a session opened with a device that meets %s add devices; "+
			"give users their first device with an activation (bridge devices enroll), and set self_enrollment: false", k, k)
	}
	if !c.has("http.public.base_url") {
		if host, _, err := net.SplitHostPort(f.HTTP.Public.Listen); err == nil && unspecifiedHost(host) {
			warn("http.public.base_url", "not set: derived %s from listen, which phones cannot reach; set base_url", f.HTTP.Public.BaseURL)
		}
	}

	a, def := f.Passwords.Argon2id, local.DefaultArgon2()
	if a.MemoryKiB < def.MemoryKiB || a.Time < def.Time {
		warn("passwords.argon2id", "argon2id time=%d memory_kib=%d is weaker than the default time=%d memory_kib=%d",
			a.Time, a.MemoryKiB, def.Time, def.MemoryKiB)
	}
	if f.TOTP.Skew > 1 {
		warn("totp.skew", "%d steps of skew accept codes up to %s old", f.TOTP.Skew, f.TOTP.Period*time.Duration(f.TOTP.Skew))
	}
	if f.Bypass.Digits < 10 {
		warn("bypass_codes.digits", "%d-digit codes are weaker than the default 10", f.Bypass.Digits)
	}

	p := &f.Push
	if p.FraudLock == 0 {
		warn("push.fraud_lock", "0s: a fraud report does not stop further pushes to the user (the default locks them for 1h)")
	}
	if p.State == "memory" && f.Storage.Driver == "postgres" {
		warn("push.state", "memory with storage.driver postgres: challenges are not shared between nodes, "+
			"so each node must answer its own (sticky load balancing); use store (or auto) to share them")
	}
	if p.LongPoll >= f.HTTP.WriteTimeout {
		warn("push.long_poll", "%s is not below http.write_timeout (%s): the server would cut long-polls off; lower long_poll or raise write_timeout",
			p.LongPoll, f.HTTP.WriteTimeout)
	}
	if u, err := url.Parse(p.FraudWebhook.URL); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		// The host only: a webhook URL may hold a token.
		warn("push.fraud_webhook.url", "plain HTTP to %s: fraud reports (user names, addresses) and their signatures go unencrypted; use https://", u.Host)
	}
	if c.has("http.admin_api.token") && !fromEnv("http.admin_api.token") {
		warn("http.admin_api.token", "the admin API token is written in the config file; use token_file or ${ENV}")
	}
	if c.has("push.fraud_webhook.secret") && !fromEnv("push.fraud_webhook.secret") {
		warn("push.fraud_webhook.secret", "the webhook secret is written in the config file; use secret_file or ${ENV}")
	}

	if r := &f.Radius; r.Enabled() {
		if host, _, err := net.SplitHostPort(r.Listen); err == nil && loopbackHost(host) {
			for _, rc := range r.Clients {
				if pfx, err := rc.Prefix(); err == nil && !pfx.Addr().IsLoopback() {
					warn("radius.listen", "%s is a loopback address, which client %q (%s) cannot reach; listen on a NAS-facing address such as 0.0.0.0:1812",
						c.plain("radius.listen", r.Listen), rc.Name, pfx)
					break
				}
			}
		}
	}
	for i, rc := range f.Radius.Clients {
		p := fmt.Sprintf("radius.clients[%d]", i)
		if c.has(p+".secret") && !fromEnv(p+".secret") {
			warn(p+".secret", "client %q: the shared secret is written in the config file; use secret_file or ${ENV}", rc.Name)
		}
		if rc.MessageAuthenticator == "never" {
			warn(p+".message_authenticator", "client %q: never: requests without Message-Authenticator are answered, "+
				"so an attacker on the path can forge an Access-Accept (BlastRADIUS, CVE-2024-3596); update the NAS and use always (or auto meanwhile)", rc.Name)
		}
		if rc.MessageAuthenticator == "never" && f.directoryType(rc.Directory) == "none" {
			warn(p+".message_authenticator", "client %q: never with the passwordless directory %q: anyone who can send packets from the NAS's address "+
				"can push login requests to any user's phone without knowing the shared secret", rc.Name, rc.Directory)
		}
		if rc.Failmode == "safe" {
			warn(p+".failmode", "client %q: safe: when the push engine or the store fails, users get in on their password alone; use secure", rc.Name)
		}
		if pfx, err := rc.Prefix(); err == nil && pfx.Bits() == 0 {
			warn(p+".address", "client %q: %s is every address: anyone who learns the shared secret can send requests", rc.Name, pfx)
		}
	}

	c.webWarnings(warn)
	c.oidcWarnings(warn)
	c.samlWarnings(warn)

	for i, d := range f.Directory {
		l := d.LDAP
		if l == nil {
			continue
		}
		p := fmt.Sprintf("directories[%d].ldap", i)
		if l.InsecureSkipVerify {
			warn(p+".insecure_skip_verify", "LDAP server certificates are not checked: anyone on the path can read passwords")
		}
		if l.AllowInsecurePlaintext && strings.HasPrefix(strings.ToLower(l.URL), "ldap://") && !l.StartTLS {
			warn(p+".allow_insecure_plaintext", "passwords go to %s unencrypted", l.URL)
		}
		if c.has(p+".bind_password") && !fromEnv(p+".bind_password") {
			warn(p+".bind_password", "the service account password is written in the config file; use bind_password_file or ${ENV}")
		}
	}
	return out
}

func (c *Config) listenerWarnings(warn func(string, string, ...any), path string, l *Listener) {
	if l.TLS.CertFile != "" || !l.AllowPlainHTTP {
		return
	}
	host, _, err := net.SplitHostPort(l.Listen)
	if err == nil && !loopbackHost(host) {
		warn(path+".allow_plain_http", "serving plain HTTP on %s: only safe behind a TLS-terminating proxy", l.Listen)
	}
}

// dsnHasPassword reports whether a libpq DSN or postgres:// URL holds a
// password.
func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	return strings.Contains(strings.ToLower(dsn), "password=")
}
