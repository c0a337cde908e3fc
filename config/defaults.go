package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/keys"
)

// Default values, also written in the comments of file.go.
const (
	defaultPublicListen = "127.0.0.1:8080"
	defaultDirectory    = "local"
	defaultRadiusListen = "127.0.0.1:1812"
	defaultHoldTimeout  = 25 * time.Second
)

// defaults fills every key that the file leaves out (set reports whether a
// path was given a value), in one place. Keys written with a value, even
// zero, are kept as written so that Validate can object to them.
func defaults(f *File, set func(path string) bool) {
	str := func(path string, p *string, v string) {
		if !set(path) {
			*p = v
		}
	}
	dur := func(path string, p *time.Duration, v time.Duration) {
		if !set(path) {
			*p = v
		}
	}
	num := func(path string, p *int, v int) {
		if !set(path) {
			*p = v
		}
	}
	flag := func(path string, p *bool, v bool) {
		if !set(path) {
			*p = v
		}
	}

	str("data_dir", &f.DataDir, ".")

	str("log.level", &f.Log.Level, "info")
	str("log.format", &f.Log.Format, "text")

	str("storage.driver", &f.Storage.Driver, "sqlite")
	dur("storage.sweep_interval", &f.Storage.SweepInterval, time.Minute)
	str("storage.sqlite.path", &f.Storage.SQLite.Path, filepath.Join(f.DataDir, "bridge.db"))
	dur("storage.sqlite.busy_timeout", &f.Storage.SQLite.BusyTimeout, 5*time.Second)
	num("storage.postgres.max_conns", &f.Storage.Postgres.MaxConns, 10)
	spool := filepath.Join(f.DataDir, "audit.spool")
	if f.Storage.Driver == "sqlite" {
		spool = f.Storage.SQLite.Path + ".audit-spool"
	}
	str("storage.audit_spool.path", &f.Storage.AuditSpool.Path, spool)
	num("storage.audit_spool.max_mb", &f.Storage.AuditSpool.MaxMB, 64)

	dur("keys.rotation_overlap", &f.Keys.RotationOverlap, 7*24*time.Hour)
	dur("keys.refresh_interval", &f.Keys.RefreshInterval, time.Minute)
	num("keys.rsa_bits", &f.Keys.RSABits, 3072)

	str("http.public.listen", &f.HTTP.Public.Listen, defaultPublicListen)
	str("http.public.base_url", &f.HTTP.Public.BaseURL, derivedBaseURL(f.HTTP.Public))
	dur("http.shutdown_timeout", &f.HTTP.ShutdownTimeout, 15*time.Second)
	dur("http.drain_delay", &f.HTTP.DrainDelay, 0)
	dur("http.read_header_timeout", &f.HTTP.ReadHeaderTimeout, 5*time.Second)
	dur("http.read_timeout", &f.HTTP.ReadTimeout, 30*time.Second)
	dur("http.write_timeout", &f.HTTP.WriteTimeout, 60*time.Second)
	dur("http.idle_timeout", &f.HTTP.IdleTimeout, 120*time.Second)

	a, def := &f.Passwords.Argon2id, local.DefaultArgon2()
	if !set("passwords.argon2id.time") {
		a.Time = def.Time
	}
	if !set("passwords.argon2id.memory_kib") {
		a.MemoryKiB = def.MemoryKiB
	}
	if !set("passwords.argon2id.threads") {
		a.Threads = def.Threads
	}

	str("totp.issuer", &f.TOTP.Issuer, "Bridge")
	str("totp.algorithm", &f.TOTP.Algorithm, "SHA1")
	num("totp.digits", &f.TOTP.Digits, 6)
	dur("totp.period", &f.TOTP.Period, 30*time.Second)
	num("totp.skew", &f.TOTP.Skew, 1)

	dur("bypass_codes.ttl", &f.Bypass.TTL, time.Hour)
	dur("bypass_codes.max_ttl", &f.Bypass.MaxTTL, 72*time.Hour)
	num("bypass_codes.digits", &f.Bypass.Digits, 10)

	p := &f.Push
	dur("push.challenge_ttl", &p.ChallengeTTL, 60*time.Second)
	num("push.number_digits", &p.NumberDigits, 2)
	dur("push.proof_max_age", &p.ProofMaxAge, 60*time.Second)
	dur("push.long_poll", &p.LongPoll, 30*time.Second)
	dur("push.activation_ttl", &p.ActivationTTL, 10*time.Minute)
	dur("push.backoff_base", &p.BackoffBase, 5*time.Second)
	dur("push.backoff_max", &p.BackoffMax, 15*time.Minute)
	num("push.max_per_hour", &p.MaxPerHour, 20)
	num("push.max_per_ip_minute", &p.MaxPerIPMinute, 30)
	dur("push.fraud_lock", &p.FraudLock, time.Hour)
	dur("push.delivery_timeout", &p.DeliveryTimeout, 10*time.Second)
	num("push.delivery_workers", &p.DeliveryWorkers, 32)
	dur("push.retention", &p.Retention, 24*time.Hour)
	num("push.enroll_per_ip_minute", &p.EnrollPerIPMinute, 10)
	dur("push.sweep_interval", &p.SweepInterval, 5*time.Second)
	str("push.state", &p.State, "auto")
	dur("push.fraud_webhook.timeout", &p.FraudWebhook.Timeout, 5*time.Second)
	str("push.apns.environment", &p.APNs.Environment, "production")

	if len(f.Directory) == 0 {
		f.Directory = []Directory{{Name: defaultDirectory, Type: "local"}}
	}
	for i := range f.Directory {
		if l := f.Directory[i].LDAP; l != nil {
			applyLDAPDefaults(l)
		}
	}

	r := &f.Radius
	str("radius.listen", &r.Listen, defaultRadiusListen)
	str("radius.accounting_listen", &r.AccountingListen, defaultAccountingListen(r.Listen))
	num("radius.read_buffer", &r.ReadBuffer, 4<<20)
	dur("radius.answer_cache", &r.AnswerCache, 30*time.Second)
	num("radius.max_pending", &r.MaxPending, 10000)
	// After push and directories: a held request cannot outlast its push,
	// and a client's directory is the first one.
	hold := defaultHoldTimeout
	if ttl := p.ChallengeTTL; ttl > 0 && ttl < hold {
		hold = ttl
	}
	for i := range r.Clients {
		c := &r.Clients[i]
		cp := fmt.Sprintf("radius.clients[%d].", i)
		str(cp+"device_keys", &c.DeviceKeys, DeviceKeysAny)
		str(cp+"directory", &c.Directory, f.Directory[0].Name)
		str(cp+"message_authenticator", &c.MessageAuthenticator, "always")
		str(cp+"wait", &c.Wait, "hold")
		dur(cp+"hold_timeout", &c.HoldTimeout, hold)
		str(cp+"second_factor", &c.SecondFactor, "push")
		flag(cp+"number_matching", &c.NumberMatching, c.Wait == "challenge" && c.SecondFactor == "push")
		flag(cp+"password_suffix", &c.PasswordSuffix, true)
		str(cp+"failmode", &c.Failmode, "secure")
		str(cp+"reply.class", &c.Reply.Class, "bridge:{id}")
		num(cp+"failures_per_user", &c.FailuresPerUser, 10)
		num(cp+"failures_per_ip", &c.FailuresPerIP, 20)
		num(cp+"failures_per_client", &c.FailuresPerClient, 100)
	}

	w := &f.Web
	dur("web.session_lifetime", &w.SessionLifetime, time.Hour)
	dur("web.login_timeout", &w.LoginTimeout, 10*time.Minute)
	num("web.failures_per_ip", &w.FailuresPerIP, 20)
	num("web.failures_per_user", &w.FailuresPerUser, 10)
	wc := &w.Captcha
	if prov, ok := captchaProviders[wc.Provider]; ok {
		str("web.captcha.verify_url", &wc.VerifyURL, prov.verifyURL)
		str("web.captcha.script_url", &wc.ScriptURL, prov.scriptURL)
	}
	dur("web.captcha.timeout", &wc.Timeout, 5*time.Second)

	o := &f.OIDC
	str("oidc.signing_algorithm", &o.SigningAlgorithm, keys.AlgES256)
	dur("oidc.code_lifetime", &o.CodeLifetime, time.Minute)
	dur("oidc.access_token_lifetime", &o.AccessTokenLifetime, 10*time.Minute)
	dur("oidc.id_token_lifetime", &o.IDTokenLifetime, 10*time.Minute)
	dur("oidc.refresh_token_lifetime", &o.RefreshTokenLifetime, 8*time.Hour)
	for i := range o.Clients {
		c := &o.Clients[i]
		cp := fmt.Sprintf("oidc.clients[%d].", i)
		str(cp+"device_keys", &c.DeviceKeys, DeviceKeysAny)
		str(cp+"name", &c.Name, c.ID)
		secret := c.Secret != "" || c.SecretFile != "" || set(cp+"secret") || set(cp+"secret_file")
		str(cp+"auth_method", &c.AuthMethod, defaultAuthMethod(secret, c.JWKSFile != "" || set(cp+"jwks_file")))
		str(cp+"directory", &c.Directory, f.Directory[0].Name)
		flag(cp+"number_matching", &c.NumberMatching, true)
		flag(cp+"session_reuse", &c.SessionReuse, true)
		flag(cp+"captcha", &c.Captcha, false)
		if !set(cp + "scopes") {
			c.Scopes = defaultScopes(o.RefreshTokenLifetime)
		}
		str(cp+"signing_algorithm", &c.SigningAlgorithm, o.SigningAlgorithm)
	}

	sa := &f.SAML
	dur("saml.assertion_lifetime", &sa.AssertionLifetime, defaultSAMLAssertionLifetime)
	dur("saml.clock_skew", &sa.ClockSkew, 90*time.Second)
	str("saml.signature_algorithm", &sa.SignatureAlgorithm, "rsa-sha256")
	for i := range sa.ServiceProviders {
		sp := &sa.ServiceProviders[i]
		cp := fmt.Sprintf("saml.service_providers[%d].", i)
		str(cp+"display_name", &sp.DisplayName, sp.Name)
		if sp.MetadataURL != "" || set(cp+"metadata_url") {
			dur(cp+"metadata_refresh", &sp.MetadataRefresh, defaultSAMLMetadataRefresh)
		}
		str(cp+"directory", &sp.Directory, f.Directory[0].Name)
		flag(cp+"number_matching", &sp.NumberMatching, true)
		str(cp+"device_keys", &sp.DeviceKeys, DeviceKeysAny)
		flag(cp+"session_reuse", &sp.SessionReuse, true)
		str(cp+"name_id_format", &sp.NameIDFormat, "persistent")
		flag(cp+"sign_response", &sp.SignResponse, true)
		flag(cp+"sign_assertion", &sp.SignAssertion, true)
		flag(cp+"encrypt_assertion", &sp.EncryptAssertion, false)
		flag(cp+"require_signed_requests", &sp.RequireSignedRequests, false)
		flag(cp+"allow_idp_initiated", &sp.AllowIDPInitiated, false)
		dur(cp+"assertion_lifetime", &sp.AssertionLifetime, sa.AssertionLifetime)
		if !set(cp + "attributes") {
			sp.Attributes = defaultSAMLAttributes()
		}
		for j := range sp.Attributes {
			str(fmt.Sprintf("%sattributes[%d].name_format", cp, j), &sp.Attributes[j].NameFormat, "basic")
		}
	}
	appDefaults(f, set)
}

// derivedBaseURL is the public base URL implied by the listener: its scheme
// and address, with an unspecified host (all interfaces) written as
// localhost. Empty if listen does not parse (Validate reports it).
func derivedBaseURL(l Listener) string {
	host, port, err := net.SplitHostPort(l.Listen)
	if err != nil {
		return ""
	}
	if unspecifiedHost(host) {
		host = "localhost"
	}
	scheme := "http"
	if l.TLS.CertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// defaultAccountingListen is listen's host with port 1813, or port 0 when
// listen's port is 0; empty if listen does not parse (Validate reports it).
func defaultAccountingListen(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if port != "0" {
		port = "1813"
	}
	return net.JoinHostPort(host, port)
}

// unspecifiedHost reports whether a listen host means all interfaces.
func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// loopbackHost reports whether a host is only reachable from this machine.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// makeAbsolute makes every path in the file absolute against base (the
// config file's directory), and trims a trailing slash from base_url.
func (c *Config) makeAbsolute(base string) {
	abs := func(p *string) {
		if *p == "" {
			return
		}
		if filepath.IsAbs(*p) {
			*p = filepath.Clean(*p)
			return
		}
		*p = filepath.Join(base, *p)
	}
	f := &c.File
	// data_dir first: the default SQLite path was built from it, and is
	// relative to base the same way.
	abs(&f.DataDir)
	abs(&f.Storage.SQLite.Path)
	abs(&f.Storage.Postgres.DSNFile)
	abs(&f.Storage.AuditSpool.Path)
	abs(&f.Keys.KEKFile)
	abs(&f.HTTP.AdminAPI.TokenFile)
	for _, l := range []*Listener{&f.HTTP.Public, &f.HTTP.Admin} {
		abs(&l.TLS.CertFile)
		abs(&l.TLS.KeyFile)
	}
	abs(&f.Push.FraudWebhook.SecretFile)
	abs(&f.Push.FCM.CredentialsFile)
	abs(&f.Push.APNs.KeyFile)
	abs(&f.Push.APNs.CAFile)
	for i := range f.Radius.Clients {
		abs(&f.Radius.Clients[i].SecretFile)
	}
	abs(&f.Web.Captcha.SecretFile)
	for i := range f.App.AttestationRoots {
		abs(&f.App.AttestationRoots[i])
	}
	for i := range f.OIDC.Clients {
		abs(&f.OIDC.Clients[i].SecretFile)
		abs(&f.OIDC.Clients[i].JWKSFile)
	}
	for i := range f.SAML.ServiceProviders {
		abs(&f.SAML.ServiceProviders[i].MetadataFile)
	}
	for _, d := range f.Directory {
		if d.LDAP != nil {
			abs(&d.LDAP.CAFile)
			abs(&d.LDAP.BindPasswordFile)
		}
	}
	f.HTTP.Public.BaseURL = strings.TrimRight(f.HTTP.Public.BaseURL, "/")
}
