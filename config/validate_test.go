package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		src  string // completed by trial unless it sets http
		want []string
	}{
		{"data_dir empty", `data_dir: ""`, []string{"bridge.yaml:5: data_dir: must not be empty"}},
		{"log level", "log:\n  level: verbose\n", []string{`bridge.yaml:6: log.level: unknown value "verbose" (use debug, info, warn, error)`}},
		{"log format", "log:\n  format: xml\n", []string{`log.format: unknown value "xml" (use text, json)`}},
		{"storage driver", "storage:\n  driver: mysql\n", []string{`bridge.yaml:6: storage.driver: unknown value "mysql" (use sqlite, postgres)`}},
		{"postgres without dsn", "storage:\n  driver: postgres\n", []string{"bridge.yaml:5: storage.postgres.dsn: required when storage.driver is postgres"}},
		{"postgres max_conns", "storage:\n  driver: postgres\n  postgres:\n    dsn: host=db\n    max_conns: 0\n", []string{"bridge.yaml:9: storage.postgres.max_conns: must be at least 1"}},
		{"zero sweep", "storage:\n  sweep_interval: 0s\n", []string{"bridge.yaml:6: storage.sweep_interval: must be a positive duration, got 0s"}},
		{"negative duration", "http:\n  public:\n    allow_plain_http: true\n  read_timeout: -5s\n", []string{"bridge.yaml:5: http.read_timeout: must be a positive duration, got -5s"}},
		{"busy timeout", "storage:\n  sqlite:\n    busy_timeout: -1s\n", []string{"storage.sqlite.busy_timeout: must be a positive duration"}},
		{"sqlite path empty", "storage:\n  sqlite:\n    path: \"\"\n", []string{"storage.sqlite.path: must not be empty"}},
		{"audit spool empty", "storage:\n  audit_spool:\n    path: \"\"\n", []string{"storage.audit_spool.path: must not be empty"}},
		{"audit spool is the database", "storage:\n  sqlite:\n    path: /tmp/b.db\n  audit_spool:\n    path: /tmp/b.db\n", []string{"storage.audit_spool.path: must not be the SQLite database file"}},
		{"audit spool a directory", "storage:\n  audit_spool:\n    path: /\n", []string{"storage.audit_spool.path: / is not a regular file"}},
		{"audit spool size", "storage:\n  audit_spool:\n    max_mb: 0\n", []string{"storage.audit_spool.max_mb: must be between 1 and 65536, got 0"}},
		{"rsa bits", "keys:\n  rsa_bits: 1024\n", []string{"bridge.yaml:6: keys.rsa_bits: must be 2048, 3072 or 4096, got 1024"}},
		{"bad kek", "keys:\n  kek: c2hvcnQ=\n", []string{"bridge.yaml:6: keys.kek: key-encryption key decodes to 5 bytes, want 32"}},
		{"garbage kek", "keys:\n  kek: \"not a key!\"\n", []string{"keys.kek: key-encryption key must be 32 bytes", "openssl rand -base64 32"}},
		{"kek intervals", "keys:\n  rotation_overlap: 0s\n  refresh_interval: -1m\n", []string{"keys.rotation_overlap: must be a positive", "keys.refresh_interval: must be a positive"}},
		{"listen without port", "http:\n  public:\n    listen: localhost\n    allow_plain_http: true\n", []string{`bridge.yaml:4: http.public.listen: invalid address "localhost": want host:port`}},
		{"listen bad port", "http:\n  public:\n    listen: :99999\n    allow_plain_http: true\n", []string{`http.public.listen: invalid port "99999"`}},
		{"listen named port", "http:\n  public:\n    listen: :http\n    allow_plain_http: true\n", []string{`http.public.listen: invalid port "http"`}},
		{"base_url not absolute", "http:\n  public:\n    base_url: mfa.example.com\n    allow_plain_http: true\n", []string{`bridge.yaml:4: http.public.base_url: must be an absolute http:// or https:// URL`}},
		{"base_url scheme", "http:\n  public:\n    base_url: ftp://x\n    allow_plain_http: true\n", []string{"http.public.base_url: must be an absolute http:// or https:// URL"}},
		{"base_url query", "http:\n  public:\n    base_url: https://x/?a=b\n    allow_plain_http: true\n", []string{"http.public.base_url: must not have credentials, a query or a fragment"}},
		{"base_url credentials", "http:\n  public:\n    base_url: https://u:p@x/\n    allow_plain_http: true\n", []string{"http.public.base_url: must not have credentials"}},
		{"admin base_url", "http:\n  public:\n    allow_plain_http: true\n  admin:\n    listen: 127.0.0.1:9090\n    base_url: https://x\n    allow_plain_http: true\n", []string{"bridge.yaml:7: http.admin.base_url: only the public listener has a base_url"}},
		{"cert without key", "http:\n  public:\n    tls:\n      cert_file: cert.pem\n", []string{"bridge.yaml:4: http.public.tls.key_file: required with tls.cert_file"}},
		{"key without cert", "http:\n  public:\n    tls:\n      key_file: key.pem\n", []string{"bridge.yaml:4: http.public.tls.cert_file: required with tls.key_file"}},
		{"tls files unreadable", "http:\n  public:\n    tls:\n      cert_file: /nonexistent/cert.pem\n      key_file: /nonexistent/key.pem\n",
			[]string{`bridge.yaml:5: http.public.tls.cert_file: cannot read "/nonexistent/cert.pem"`, `bridge.yaml:6: http.public.tls.key_file: cannot read "/nonexistent/key.pem"`}},
		{"plain http", "http:\n  public:\n    listen: 127.0.0.1:8080\n", []string{"bridge.yaml:4: http.public.listen: would serve plain HTTP: set tls.cert_file and tls.key_file, or allow_plain_http: true"}},
		{"plain http on default listener", "http: {}\n", []string{"bridge.yaml:2: http.public.listen: would serve plain HTTP"}},
		{"plain http admin", "http:\n  public:\n    allow_plain_http: true\n  admin:\n    listen: 127.0.0.1:9090\n", []string{"bridge.yaml:6: http.admin.listen: would serve plain HTTP"}},
		{"admin same as public", "http:\n  public:\n    listen: 127.0.0.1:8080\n    allow_plain_http: true\n  admin:\n    listen: 127.0.0.1:8080\n    allow_plain_http: true\n", []string{"bridge.yaml:7: http.admin.listen: 127.0.0.1:8080 overlaps http.public.listen"}},
		{"admin on all interfaces, same port", "http:\n  public:\n    allow_plain_http: true\n  admin:\n    listen: :8080\n    allow_plain_http: true\n", []string{"http.admin.listen: :8080 overlaps"}},
		{"admin keys without listen", "http:\n  public:\n    allow_plain_http: true\n  admin:\n    allow_plain_http: true\n", []string{"bridge.yaml:5: http.admin.listen: is empty, which disables the admin listener"}},
		{"argon2 memory", "passwords:\n  argon2id:\n    memory_kib: 1024\n", []string{"bridge.yaml:7: passwords.argon2id.memory_kib: must be at least 19456"}},
		{"argon2 memory huge", "passwords:\n  argon2id:\n    memory_kib: 4000000000\n", []string{"passwords.argon2id.memory_kib: must be at most"}},
		{"argon2 time and threads", "passwords:\n  argon2id:\n    time: 0\n    threads: 0\n", []string{"bridge.yaml:7: passwords.argon2id.time: must be at least 1", "bridge.yaml:8: passwords.argon2id.threads: must be at least 1"}},
		{"totp algorithm", "totp:\n  algorithm: md5\n", []string{`bridge.yaml:6: totp.algorithm: unknown value "md5" (use SHA1, SHA256, SHA512)`}},
		{"totp digits", "totp:\n  digits: 7\n", []string{"bridge.yaml:6: totp.digits: must be 6 or 8, got 7"}},
		{"totp period", "totp:\n  period: 1500ms\n", []string{"totp.period: must be whole seconds from 1s to 10m, got 1.5s"}},
		{"totp skew", "totp:\n  skew: -1\n", []string{"totp.skew: must be from 0 to 10"}},
		{"totp issuer", "totp:\n  issuer: \"a:b\"\n", []string{"totp.issuer: must be a non-empty name without ':'"}},
		{"bypass ttl over max", "bypass_codes:\n  ttl: 100h\n", []string{"bridge.yaml:6: bypass_codes.ttl: 100h0m0s is longer than max_ttl (72h0m0s)"}},
		{"bypass digits", "bypass_codes:\n  digits: 6\n", []string{"bridge.yaml:6: bypass_codes.digits: must be from 8 to 20, got 6"}},
		{"bypass zero ttl", "bypass_codes:\n  ttl: 0s\n  max_ttl: 0s\n", []string{"bypass_codes.ttl: must be a positive", "bypass_codes.max_ttl: must be a positive"}},
		{"directory type", "directories:\n  - name: x\n    type: radius\n", []string{`bridge.yaml:7: directories[0].type: unknown value "radius" (use local, ldap, none)`}},
		{"directory without name", "directories:\n  - type: local\n", []string{"bridge.yaml:6: directories[0].name: required"}},
		{"directory name", "directories:\n  - name: Corp AD\n    type: local\n", []string{`bridge.yaml:6: directories[0].name: "Corp AD": use lower-case letters`}},
		{"duplicate directory names", "directories:\n  - name: a\n    type: local\n  - name: a\n    type: none\n", []string{`bridge.yaml:8: directories[1].name: duplicate directory name "a" (also directories[0])`}},
		{"ldap section on local", "directories:\n  - name: a\n    type: local\n    ldap:\n      url: ldaps://x\n", []string{`bridge.yaml:8: directories[0].ldap: only for type ldap (this directory is type "local")`}},
		{"ldap directory without ldap", "directories:\n  - name: a\n    type: ldap\n", []string{"bridge.yaml:6: directories[0].ldap: required for type ldap"}},
		{"identities on local", "directories:\n  - name: a\n    type: local\n    identities: b\n", []string{"bridge.yaml:8: directories[0].identities: only for type none"}},
		{"identities unknown", "directories:\n  - name: p\n    type: none\n    identities: corp\n", []string{`bridge.yaml:8: directories[0].identities: no directory is named "corp"`}},
		{"identities of none", "directories:\n  - name: p\n    type: none\n    identities: q\n  - name: q\n    type: none\n", []string{`directories[0].identities: directory "q" is itself of type none`}},
		{"ldap preset", ldapDir("      preset: freeipa\n"), []string{`bridge.yaml:9: directories[0].ldap.preset: must be openldap or active_directory, not "freeipa"`}},
		{"ldap groups mode", ldapDir("      groups:\n        mode: nested\n"), []string{`bridge.yaml:10: directories[0].ldap.groups.mode: must be member_of, search or none, not "nested"`}},
		{"ldap user filter", ldapDir("      user_filter: (uid=alice)\n"), []string{"bridge.yaml:9: directories[0].ldap.user_filter: must contain {username}"}},
		{"ldap url missing", "directories:\n  - name: corp\n    type: ldap\n    ldap:\n      user_base_dn: dc=x\n", []string{"bridge.yaml:8: directories[0].ldap.url: is required"}},
		{"ldap plaintext", "directories:\n  - name: corp\n    type: ldap\n    ldap:\n      url: ldap://x\n      user_base_dn: dc=x\n", []string{"bridge.yaml:9: directories[0].ldap.url: ldap:// without start_tls"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, trial(tt.src), "", nil)
			wantErr(t, err, tt.want...)
		})
	}
}

// ldapDir is a valid LDAP directory section with extra keys appended.
func ldapDir(extra string) string {
	if !strings.Contains(extra, "bind_dn") && !strings.Contains(extra, "anonymous_bind") {
		extra += "      bind_dn: cn=svc,dc=example,dc=com\n      bind_password: svc-password\n"
	}
	return "directories:\n  - name: corp\n    type: ldap\n    ldap:\n" + extra +
		"      url: ldaps://dc.example.com\n      user_base_dn: dc=example,dc=com\n"
}

func TestValidLDAP(t *testing.T) {
	for _, extra := range []string{"", "      preset: active_directory\n", "      groups:\n        mode: none\n"} {
		c := mustParse(t, trial(ldapDir(extra)))
		if l := c.Directory[0].LDAP; l.UserFilter == "" || l.Timeout == 0 {
			t.Errorf("LDAP defaults not applied: %+v", l)
		}
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	src := `log:
  level: loud
storage:
  driver: mysql
http:
  public:
    listen: nowhere
  admin:
    listen: 127.0.0.1:9090
totp:
  digits: 9
directories:
  - name: A
    type: ldap
`
	_, err := parseString(t, src, "", nil)
	if err == nil {
		t.Fatal("no error")
	}
	var lines []int
	for _, e := range flatten(err) {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("%T is not *Error", e)
		}
		lines = append(lines, ce.Line)
	}
	if !slices.IsSorted(lines) {
		t.Errorf("not sorted by line: %v", lines)
	}
	for _, w := range []string{
		"bridge.yaml: keys.kek_file: a key-encryption key is required",
		"bridge.yaml:2: log.level",
		"bridge.yaml:4: storage.driver",
		"bridge.yaml:7: http.public.listen: invalid address",
		"bridge.yaml:7: http.public.listen: would serve plain HTTP",
		"bridge.yaml:9: http.admin.listen: would serve plain HTTP",
		"bridge.yaml:11: totp.digits",
		"bridge.yaml:13: directories[0].name",
		"bridge.yaml:13: directories[0].ldap: required",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	if n := len(lines); n != 9 {
		t.Errorf("%d problems, want 9:\n%v", n, err)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir)
	writeFile(t, dir, "other.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	c := mustParse(t, "dev_mode: true\nhttp:\n  public:\n    listen: :8443\n    tls:\n      cert_file: "+dir+"/cert.pem\n      key_file: "+dir+"/key.pem\n")
	if c.HTTP.Public.BaseURL != "https://localhost:8443" {
		t.Errorf("derived base_url %q", c.HTTP.Public.BaseURL)
	}
	_, err := parseString(t, "dev_mode: true\nhttp:\n  public:\n    tls:\n      cert_file: other.pem\n      key_file: key.pem\n", dir, nil)
	wantErr(t, err, "bridge.yaml:5: http.public.tls.cert_file: cannot use the certificate and key")
}

func TestValidateAfterChange(t *testing.T) {
	c := mustParse(t, trial(""))
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate of a parsed config: %v", err)
	}
	c.TOTP.Digits = 7
	wantErr(t, c.Validate(), "bridge.yaml: totp.digits: must be 6 or 8")
}

func TestDrainDelay(t *testing.T) {
	http := func(keys string) string {
		return "http:\n  public:\n    allow_plain_http: true\n" + keys
	}
	if c := mustParse(t, trial(http(""))); c.HTTP.DrainDelay != 0 {
		t.Errorf("default drain_delay %s, want 0", c.HTTP.DrainDelay)
	}
	if c := mustParse(t, trial(http("  drain_delay: 0s\n"))); c.HTTP.DrainDelay != 0 {
		t.Errorf("drain_delay %s, want 0", c.HTTP.DrainDelay)
	}
	if c := mustParse(t, trial(http("  drain_delay: 5s\n  shutdown_timeout: 20s\n"))); c.HTTP.DrainDelay != 5*time.Second {
		t.Errorf("drain_delay %s, want 5s", c.HTTP.DrainDelay)
	}
	if c := mustParse(t, trial(http("  drain_delay: 14s\n"))); c.HTTP.DrainDelay != 14*time.Second {
		t.Errorf("drain_delay %s, want 14s (under the default shutdown_timeout)", c.HTTP.DrainDelay)
	}
	for _, tt := range []struct{ keys, want string }{
		{"  drain_delay: -1s\n", "bridge.yaml:5: http.drain_delay: must not be negative, got -1s"},
		{"  drain_delay: 15s\n", "bridge.yaml:5: http.drain_delay: 15s must be shorter than http.shutdown_timeout (15s), which it is part of"},
		{"  shutdown_timeout: 10s\n  drain_delay: 1m\n", "bridge.yaml:6: http.drain_delay: 1m0s must be shorter than http.shutdown_timeout (10s)"},
	} {
		_, err := parseString(t, trial(http(tt.keys)), "", nil)
		wantErr(t, err, tt.want)
		if err != nil && strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("want exactly one problem, got:\n%v", err)
		}
	}
	// An invalid shutdown_timeout is reported alone.
	_, err := parseString(t, trial(http("  shutdown_timeout: 0s\n  drain_delay: 5s\n")), "", nil)
	wantErr(t, err, "http.shutdown_timeout: must be a positive duration")
	if strings.Contains(err.Error(), "drain_delay") {
		t.Errorf("drain_delay reported against an invalid shutdown_timeout:\n%v", err)
	}
}

// TestSharedBaseURL: with PostgreSQL (nodes may share the database) a
// base_url derived from listen is an error, in or out of dev mode, at the
// public listener's line or, without an http section, the driver's; with
// SQLite it stays derived.
func TestSharedBaseURL(t *testing.T) {
	const pg = "storage:\n  driver: postgres\n  postgres:\n    dsn: host=db\n"
	const msg = "http.public.base_url: must be set when storage.driver is postgres: every node sharing the database must use the same base_url"
	bad := []struct {
		name, src, want string
		problems        int
	}{
		{"listen only", "dev_mode: true\nhttp:\n  public:\n    listen: 10.0.0.5:8443\n    allow_plain_http: true\n" + pg, "bridge.yaml:3: " + msg, 1},
		{"not dev mode", "keys:\n  kek: ${KEK}\nhttp:\n  public:\n    allow_plain_http: true\n" + pg, "bridge.yaml:4: " + msg, 1},
		// and plain HTTP on the default listener
		{"no http section", "dev_mode: true\n" + pg, "bridge.yaml:3: " + msg, 2},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, tt.src, "", map[string]string{"KEK": testKEK})
			wantErr(t, err, tt.want)
			if n := len(flatten(err)); n != tt.problems {
				t.Errorf("want %d problems, got %d:\n%v", tt.problems, n, err)
			}
		})
	}
	good := []struct{ name, src, want string }{
		{"postgres with base_url", "dev_mode: true\nhttp:\n  public:\n    listen: 10.0.0.5:8443\n    base_url: https://mfa.example.com/\n    allow_plain_http: true\n" + pg, "https://mfa.example.com"},
		{"postgres with base_url from env", "dev_mode: true\nhttp:\n  public:\n    base_url: ${URL}\n    allow_plain_http: true\n" + pg, "https://mfa.example.com"},
		{"sqlite derives", "dev_mode: true\nhttp:\n  public:\n    listen: 10.0.0.5:8443\n    allow_plain_http: true\n", "http://10.0.0.5:8443"},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, tt.src, "", map[string]string{"URL": "https://mfa.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			if c.HTTP.Public.BaseURL != tt.want {
				t.Errorf("base_url = %q, want %q", c.HTTP.Public.BaseURL, tt.want)
			}
		})
	}
}
