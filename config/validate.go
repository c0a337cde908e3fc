package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bridge-idp/bridge/keys"
)

// validator collects the problems of one Config.
type validator struct {
	c    *Config
	read func(string) ([]byte, error)
	errs []*Error
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, v.c.newError(path, format, args...))
}

// oneOf checks an enumerated value.
func (v *validator) oneOf(path, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		v.errorf(path, "unknown value %s (use %s)", v.c.show(path, value), strings.Join(allowed, ", "))
	}
}

// positive checks a duration that must be above zero.
func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.errorf(path, "must be a positive duration, got %s", v.c.plain(path, d))
	}
}

// validate returns every problem of the completed config.
func (c *Config) validate(read func(string) ([]byte, error)) []*Error {
	v := &validator{c: c, read: read}
	f := &c.File

	if f.DataDir == "" {
		v.errorf("data_dir", "must not be empty")
	}
	v.oneOf("log.level", f.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", f.Log.Format, "text", "json")

	v.storage()
	v.keys()
	v.http()

	a := f.Passwords.Argon2id
	if a.MemoryKiB < 19456 {
		v.errorf("passwords.argon2id.memory_kib", "must be at least 19456 (19 MiB, OWASP's minimum), got %s",
			v.c.plain("passwords.argon2id.memory_kib", a.MemoryKiB))
	} else if a.MemoryKiB > 4<<20 {
		v.errorf("passwords.argon2id.memory_kib", "must be at most %d (4 GiB), got %s", 4<<20,
			v.c.plain("passwords.argon2id.memory_kib", a.MemoryKiB))
	}
	if a.Time < 1 {
		v.errorf("passwords.argon2id.time", "must be at least 1")
	}
	if a.Threads < 1 {
		v.errorf("passwords.argon2id.threads", "must be at least 1")
	}

	t := f.TOTP
	if t.Issuer == "" || strings.Contains(t.Issuer, ":") {
		v.errorf("totp.issuer", "must be a non-empty name without ':'")
	}
	v.oneOf("totp.algorithm", t.Algorithm, "SHA1", "SHA256", "SHA512")
	if t.Digits != 6 && t.Digits != 8 {
		v.errorf("totp.digits", "must be 6 or 8, got %s", v.c.plain("totp.digits", t.Digits))
	}
	if t.Period < time.Second || t.Period > 10*time.Minute || t.Period%time.Second != 0 {
		v.errorf("totp.period", "must be whole seconds from 1s to 10m, got %s", v.c.plain("totp.period", t.Period))
	}
	if t.Skew < 0 || t.Skew > 10 {
		v.errorf("totp.skew", "must be from 0 to 10 time steps, got %s", v.c.plain("totp.skew", t.Skew))
	}

	b := f.Bypass
	v.positive("bypass_codes.ttl", b.TTL)
	v.positive("bypass_codes.max_ttl", b.MaxTTL)
	if b.TTL > b.MaxTTL && b.MaxTTL > 0 {
		v.errorf("bypass_codes.ttl", "%s is longer than max_ttl (%s)",
			v.c.plain("bypass_codes.ttl", b.TTL), v.c.plain("bypass_codes.max_ttl", b.MaxTTL))
	}
	if b.Digits < 8 || b.Digits > 20 {
		v.errorf("bypass_codes.digits", "must be from 8 to 20, got %s", v.c.plain("bypass_codes.digits", b.Digits))
	}

	v.push()
	v.radius()
	v.web()
	v.oidc()
	v.saml()
	v.app()
	v.directories()
	return v.errs
}

func (v *validator) storage() {
	s := &v.c.Storage
	v.oneOf("storage.driver", s.Driver, "sqlite", "postgres")
	v.positive("storage.sweep_interval", s.SweepInterval)
	if s.Driver == "sqlite" {
		if s.SQLite.Path == "" {
			v.errorf("storage.sqlite.path", "must not be empty")
		}
		v.positive("storage.sqlite.busy_timeout", s.SQLite.BusyTimeout)
	}
	if s.Driver == "postgres" {
		// An unreadable dsn_file was reported when it was read.
		if s.Postgres.DSN == "" && s.Postgres.DSNFile == "" {
			v.errorf("storage.postgres.dsn", "required when storage.driver is postgres (write dsn: ${BRIDGE_POSTGRES_DSN} or use dsn_file)")
		}
		if s.Postgres.MaxConns < 1 {
			v.errorf("storage.postgres.max_conns", "must be at least 1, got %s",
				v.c.plain("storage.postgres.max_conns", s.Postgres.MaxConns))
		}
		v.sharedBaseURL()
	}
	switch sp := s.AuditSpool; {
	case sp.Path == "":
		v.errorf("storage.audit_spool.path", "must not be empty: the node keeps audit events there while the store is down")
	case s.Driver == "sqlite" && sp.Path == s.SQLite.Path:
		v.errorf("storage.audit_spool.path", "must not be the SQLite database file")
	default:
		if fi, err := os.Stat(sp.Path); err == nil && !fi.Mode().IsRegular() {
			v.errorf("storage.audit_spool.path", "%s is not a regular file", sp.Path)
		}
	}
	if s.AuditSpool.MaxMB < 1 || s.AuditSpool.MaxMB > 1<<16 {
		v.errorf("storage.audit_spool.max_mb", "must be between 1 and 65536, got %s",
			v.c.plain("storage.audit_spool.max_mb", s.AuditSpool.MaxMB))
	}
}

// sharedBaseURL requires http.public.base_url to be written when nodes
// can share the database: a base_url derived from listen differs from
// node to node, and phones refuse challenges from a bridge whose issuer is
// not the one they enrolled with.
func (v *validator) sharedBaseURL() {
	const path = "http.public.base_url"
	if v.c.has(path) {
		return
	}
	e := v.c.newError(path, "must be set when storage.driver is postgres: every node sharing the database must use "+
		"the same base_url, the address phones enrolled with (such as https://mfa.example.com); "+
		"without it each node derives its own from its listen address")
	if e.Line == 0 {
		e.Line = v.c.lineOf("storage.driver") // no http section to point at
	}
	v.errs = append(v.errs, e)
}

func (v *validator) keys() {
	k := &v.c.Keys
	switch {
	case k.KEK != "":
		path := "keys.kek"
		if k.KEKFile != "" {
			path = "keys.kek_file"
		}
		if _, err := keys.ParseKEK(k.KEK); err != nil {
			v.errorf(path, "%v", err)
		}
	case k.KEKFile != "" || v.c.has("keys.kek") || v.c.has("keys.kek_file"):
		// Unreadable or empty: reported when it was read.
	case !v.c.DevMode:
		v.errorf("keys.kek_file", "a key-encryption key is required: make one with "+
			"`openssl rand -base64 32 > kek && chmod 600 kek` and set keys.kek_file to its path "+
			"(or keys.kek: ${BRIDGE_KEK}); for a trial, set dev_mode: true instead")
	}
	v.positive("keys.rotation_overlap", k.RotationOverlap)
	v.positive("keys.refresh_interval", k.RefreshInterval)
	if k.RSABits != 2048 && k.RSABits != 3072 && k.RSABits != 4096 {
		v.errorf("keys.rsa_bits", "must be 2048, 3072 or 4096, got %s", v.c.plain("keys.rsa_bits", k.RSABits))
	}
}

// minAPIToken is the shortest admin API token accepted.
const minAPIToken = 32

func (v *validator) http() {
	h := &v.c.HTTP
	pubHost, pubPort, pubOK := v.listener("http.public", &h.Public, true)
	if h.Admin.Listen != "" {
		adHost, adPort, adOK := v.listener("http.admin", &h.Admin, false)
		if pubOK && adOK && pubPort == adPort && pubPort != 0 &&
			(pubHost == adHost || unspecifiedHost(pubHost) || unspecifiedHost(adHost)) {
			v.errorf("http.admin.listen", "%s overlaps http.public.listen (%s): the admin listener needs its own address",
				v.c.plain("http.admin.listen", h.Admin.Listen), v.c.plain("http.public.listen", h.Public.Listen))
		}
	} else if v.c.has("http.admin") && !reflect.DeepEqual(h.Admin, Listener{}) {
		v.errorf("http.admin.listen", "is empty, which disables the admin listener: set it, or remove the other http.admin keys")
	}
	if api := h.AdminAPI; api.Token != "" {
		both := v.c.has("http.admin_api.token") && v.c.has("http.admin_api.token_file")
		key := "http.admin_api.token"
		if api.TokenFile != "" {
			key = "http.admin_api.token_file"
		}
		if len(api.Token) < minAPIToken && !both {
			v.errorf(key, "the token must be at least %d bytes: make one with `openssl rand -hex 32`", minAPIToken)
		}
		if h.Admin.Listen == "" {
			v.errorf(key, "the admin API is served on the admin listener: set http.admin.listen")
		}
	}
	v.positive("http.shutdown_timeout", h.ShutdownTimeout)
	switch {
	case h.DrainDelay < 0:
		v.errorf("http.drain_delay", "must not be negative, got %s", v.c.plain("http.drain_delay", h.DrainDelay))
	case h.ShutdownTimeout > 0 && h.DrainDelay >= h.ShutdownTimeout:
		v.errorf("http.drain_delay", "%s must be shorter than http.shutdown_timeout (%s), which it is part of",
			v.c.plain("http.drain_delay", h.DrainDelay), v.c.plain("http.shutdown_timeout", h.ShutdownTimeout))
	}
	v.positive("http.read_header_timeout", h.ReadHeaderTimeout)
	v.positive("http.read_timeout", h.ReadTimeout)
	v.positive("http.write_timeout", h.WriteTimeout)
	v.positive("http.idle_timeout", h.IdleTimeout)
}

// listener checks one listener and returns its parsed address.
func (v *validator) listener(path string, l *Listener, public bool) (host string, port int, ok bool) {
	host, port, err := splitListen(l.Listen, v.c.fromEnv[path+".listen"])
	if err != nil {
		v.errorf(path+".listen", "%v", err)
	}
	ok = err == nil

	if public {
		// An empty base_url that was not written was not derived, because
		// listen is wrong: that is reported already.
		if err := checkBaseURL(l.BaseURL, v.c.fromEnv[path+".base_url"]); err != nil && (l.BaseURL != "" || v.c.has(path+".base_url")) {
			v.errorf(path+".base_url", "%v", err)
		}
	} else if l.BaseURL != "" {
		v.errorf(path+".base_url", "only the public listener has a base_url")
	}
	if !public && len(l.TrustedProxies) > 0 {
		v.errorf(path+".trusted_proxies", "only the public listener has trusted_proxies")
	}
	for i, s := range l.TrustedProxies {
		p, err := parseClientAddress(s)
		switch {
		case err != nil:
			v.errorf(fmt.Sprintf("%s.trusted_proxies[%d]", path, i), "%v", err)
		case p.Bits() == 0:
			v.errorf(fmt.Sprintf("%s.trusted_proxies[%d]", path, i), "%s trusts every address: anyone could choose the address they are seen with", s)
		}
	}

	cert, key := l.TLS.CertFile, l.TLS.KeyFile
	switch {
	case cert != "" && key == "":
		v.errorf(path+".tls.key_file", "required with tls.cert_file")
	case cert == "" && key != "":
		v.errorf(path+".tls.cert_file", "required with tls.key_file")
	case cert != "":
		certPEM, err1 := v.read(cert)
		if err1 != nil {
			v.errorf(path+".tls.cert_file", "cannot read %s: %v", v.c.showFile(path+".tls.cert_file", cert), fileError(err1))
		}
		keyPEM, err2 := v.read(key)
		if err2 != nil {
			v.errorf(path+".tls.key_file", "cannot read %s: %v", v.c.showFile(path+".tls.key_file", key), fileError(err2))
		}
		if err1 == nil && err2 == nil {
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				v.errorf(path+".tls.cert_file", "cannot use the certificate and key: %v", err)
			}
		}
	case !l.AllowPlainHTTP:
		v.errorf(path+".listen", "would serve plain HTTP: set tls.cert_file and tls.key_file, "+
			"or allow_plain_http: true (behind a TLS-terminating proxy, or on loopback for a trial)")
	}
	return host, port, ok
}

// splitListen parses a host:port listen address. The port may be 0 (any
// free port). A value from the environment (env.raw set) is named by its
// variables in the error, and not quoted, nor any part of it.
func splitListen(addr string, env envUse) (host string, port int, err error) {
	shown, secret := quote(addr), env.raw != ""
	if secret {
		shown = envRef(env.raw)
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("invalid address %s: want host:port, such as 127.0.0.1:8080 or :8443", shown)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		if secret {
			return "", 0, fmt.Errorf("invalid port in %s: want a number from 0 to 65535", shown)
		}
		return "", 0, fmt.Errorf("invalid port %s in %s: want a number from 0 to 65535", quote(p), shown)
	}
	if strings.ContainsAny(host, " /\t") {
		if secret {
			return "", 0, fmt.Errorf("invalid host in %s", shown)
		}
		return "", 0, fmt.Errorf("invalid host %s in %s", quote(host), shown)
	}
	return host, port, nil
}

// checkBaseURL requires an absolute http(s) URL with a host and without
// query, fragment or credentials. A value from the environment (env.raw
// set) is named by its variables in the error.
func checkBaseURL(s string, env envUse) error {
	shown := quote(s)
	if env.raw != "" {
		shown = envRef(env.raw)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("must be an absolute http:// or https:// URL such as https://mfa.example.com, got %s", shown)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return fmt.Errorf("must not have credentials, a query or a fragment, got %s", shown)
	}
	return nil
}

var directoryName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (v *validator) directories() {
	dirs := v.c.Directory
	byName := map[string]int{}
	for i, d := range dirs {
		p := fmt.Sprintf("directories[%d]", i)
		switch {
		case d.Name == "":
			v.errorf(p+".name", "required")
		case !directoryName.MatchString(d.Name):
			v.errorf(p+".name", "%s: use lower-case letters, digits, - and _, starting with a letter or digit", v.c.show(p+".name", d.Name))
		default:
			if j, dup := byName[d.Name]; dup {
				v.errorf(p+".name", "duplicate directory name %s (also directories[%d])", v.c.showFile(p+".name", d.Name), j)
			} else {
				byName[d.Name] = i
			}
		}
		v.oneOf(p+".type", d.Type, "local", "ldap", "none")
		switch {
		case d.Type == "ldap" && d.LDAP == nil:
			v.errorf(p+".ldap", "required for type ldap")
		case d.Type != "ldap" && d.LDAP != nil:
			v.errorf(p+".ldap", "only for type ldap (this directory is type %s)", v.c.show(p+".type", d.Type))
		case d.LDAP != nil:
			v.ldap(p+".ldap", d.LDAP)
		}
		if d.Identities != "" && d.Type != "none" {
			v.errorf(p+".identities", "only for type none")
		}
	}
	for i, d := range dirs {
		if d.Type != "none" || d.Identities == "" {
			continue
		}
		p := fmt.Sprintf("directories[%d].identities", i)
		j, ok := byName[d.Identities]
		switch {
		case !ok:
			v.errorf(p, "no directory is named %s", v.c.show(p, d.Identities))
		case dirs[j].Type == "none":
			v.errorf(p, "directory %s is itself of type none: name a local or ldap directory", v.c.showFile(p, d.Identities))
		}
	}
}
