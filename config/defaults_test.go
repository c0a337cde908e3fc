package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/directory/local"
)

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := parseString(t, "dev_mode: true\nhttp:\n  public:\n    allow_plain_http: true\n", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := File{
		DevMode: true,
		DataDir: dir,
		Log:     Log{Level: "info", Format: "text"},
		Storage: Storage{
			Driver:        "sqlite",
			SQLite:        SQLite{Path: filepath.Join(dir, "bridge.db"), BusyTimeout: 5 * time.Second},
			Postgres:      Postgres{MaxConns: 10},
			SweepInterval: time.Minute,
			AuditSpool:    AuditSpool{Path: filepath.Join(dir, "bridge.db.audit-spool"), MaxMB: 64},
		},
		Keys: Keys{RotationOverlap: 168 * time.Hour, RefreshInterval: time.Minute, RSABits: 3072},
		HTTP: HTTP{
			Public:            Listener{Listen: "127.0.0.1:8080", BaseURL: "http://127.0.0.1:8080", AllowPlainHTTP: true},
			ShutdownTimeout:   15 * time.Second,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
		},
		Passwords: Passwords{Argon2id: local.DefaultArgon2()},
		TOTP:      TOTP{Issuer: "Bridge", Algorithm: "SHA1", Digits: 6, Period: 30 * time.Second, Skew: 1},
		Bypass:    Bypass{TTL: time.Hour, MaxTTL: 72 * time.Hour, Digits: 10},
		Push: Push{
			ChallengeTTL:      60 * time.Second,
			NumberDigits:      2,
			ProofMaxAge:       60 * time.Second,
			LongPoll:          30 * time.Second,
			ActivationTTL:     10 * time.Minute,
			BackoffBase:       5 * time.Second,
			BackoffMax:        15 * time.Minute,
			MaxPerHour:        20,
			MaxPerIPMinute:    30,
			FraudLock:         time.Hour,
			DeliveryTimeout:   10 * time.Second,
			DeliveryWorkers:   32,
			Retention:         24 * time.Hour,
			EnrollPerIPMinute: 10,
			SweepInterval:     5 * time.Second,
			State:             "auto",
			FraudWebhook:      FraudWebhook{Timeout: 5 * time.Second},
			APNs:              APNs{Environment: "production"},
		},
		Radius: Radius{
			Listen:           "127.0.0.1:1812",
			AccountingListen: "127.0.0.1:1813",
			ReadBuffer:       4 << 20,
			AnswerCache:      30 * time.Second,
			MaxPending:       10000,
		},
		Web: Web{
			SessionLifetime: time.Hour,
			LoginTimeout:    10 * time.Minute,
			FailuresPerIP:   20,
			FailuresPerUser: 10,
			Captcha:         Captcha{Timeout: 5 * time.Second},
		},
		OIDC: OIDC{
			SigningAlgorithm:     "ES256",
			CodeLifetime:         time.Minute,
			AccessTokenLifetime:  10 * time.Minute,
			IDTokenLifetime:      10 * time.Minute,
			RefreshTokenLifetime: 8 * time.Hour,
		},
		SAML: SAML{
			AssertionLifetime:  5 * time.Minute,
			ClockSkew:          90 * time.Second,
			SignatureAlgorithm: "rsa-sha256",
		},
		// 127.0.0.1 cannot be a passkey RP ID: rp_id stays empty.
		App: App{Enabled: true, Name: "Bridge", WebPush: WebPush{
			Enabled: true, Subject: "https://127.0.0.1", AllowedHosts: DefaultWebPushHosts,
		}},
		Directory: []Directory{{Name: "local", Type: "local"}},
	}
	if !reflect.DeepEqual(c.File, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c.File, want)
	}
	if c.KEK != nil {
		t.Errorf("KEK = %x, want nil in dev mode without a key", c.KEK)
	}
	if c.DevKEKPath() != filepath.Join(dir, "dev.kek") {
		t.Errorf("DevKEKPath = %q", c.DevKEKPath())
	}
	if c.Source != "bridge.yaml" {
		t.Errorf("Source = %q", c.Source)
	}
}

func TestExplicitValuesKept(t *testing.T) {
	c := mustParse(t, trial("totp:\n  skew: 0\n  issuer: ACME\nkeys:\n  rsa_bits: 4096\n"))
	if c.TOTP.Skew != 0 || c.TOTP.Issuer != "ACME" || c.TOTP.Digits != 6 || c.Keys.RSABits != 4096 {
		t.Errorf("explicit values: %+v %+v", c.TOTP, c.Keys)
	}
	// An empty value ("key:" or "~") means the default.
	c = mustParse(t, trial("totp:\n  skew:\n  digits: ~\nlog:\n"))
	if c.TOTP.Skew != 1 || c.TOTP.Digits != 6 || c.Log.Level != "info" {
		t.Errorf("empty values: %+v %+v", c.TOTP, c.Log)
	}
	// An explicit empty directory list still gets the local directory.
	c = mustParse(t, trial("directories: []\n"))
	if len(c.Directory) != 1 || c.Directory[0].Name != "local" {
		t.Errorf("directories: %+v", c.Directory)
	}
}

func TestPaths(t *testing.T) {
	dir := t.TempDir()
	c, err := parseString(t, trial("data_dir: state\nstorage:\n  sqlite:\n    path: ../db/b.db\n"), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(dir, "state") || c.Storage.SQLite.Path != filepath.Join(filepath.Dir(dir), "db", "b.db") {
		t.Errorf("data_dir %q sqlite.path %q", c.DataDir, c.Storage.SQLite.Path)
	}
	c, err = parseString(t, trial("data_dir: /var/lib/bridge/\n"), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/bridge" || c.Storage.SQLite.Path != "/var/lib/bridge/bridge.db" || c.DevKEKPath() != "/var/lib/bridge/dev.kek" {
		t.Errorf("data_dir %q sqlite.path %q", c.DataDir, c.Storage.SQLite.Path)
	}
}

// TestAuditSpoolPath: the spool defaults to beside the SQLite file, or to
// data_dir with PostgreSQL, and a relative path is taken from the config
// file's directory like every other path.
func TestAuditSpoolPath(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, yaml, want string }{
		{"sqlite", "storage:\n  sqlite:\n    path: db/b.db\n", filepath.Join(dir, "db", "b.db.audit-spool")},
		{"postgres", "data_dir: /var/lib/bridge\nstorage:\n  driver: postgres\n  postgres:\n    dsn: host=db\n", "/var/lib/bridge/audit.spool"},
		{"set", "storage:\n  audit_spool:\n    path: spool/a\n", filepath.Join(dir, "spool", "a")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseString(t, trial(tc.yaml), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Storage.AuditSpool.Path; got != tc.want {
				t.Errorf("audit_spool.path %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct{ name, http, want string }{
		{"derived from loopback", "  public:\n    listen: 127.0.0.1:8081\n", "http://127.0.0.1:8081"},
		{"derived from all interfaces", "  public:\n    listen: :8081\n", "http://localhost:8081"},
		{"derived from IPv6", "  public:\n    listen: \"[::1]:8081\"\n", "http://[::1]:8081"},
		{"trailing slash trimmed", "  public:\n    base_url: https://mfa.example.com/bridge/\n", "https://mfa.example.com/bridge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, "dev_mode: true\nhttp:\n"+strings.Replace(tt.http, "  public:\n", "  public:\n    allow_plain_http: true\n", 1))
			if c.HTTP.Public.BaseURL != tt.want {
				t.Errorf("base_url = %q, want %q", c.HTTP.Public.BaseURL, tt.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // substring of one warning; "" means no warnings but dev mode
	}{
		{"dev mode", "", "bridge.yaml:1: dev_mode: dev mode is on: stored secrets are encrypted under a generated key"},
		{"plain http on all interfaces", "http:\n  public:\n    listen: 0.0.0.0:8080\n    base_url: https://mfa.example.com\n    allow_plain_http: true\n",
			"bridge.yaml:6: http.public.allow_plain_http: serving plain HTTP on 0.0.0.0:8080"},
		{"plain http admin", "http:\n  public:\n    allow_plain_http: true\n  admin:\n    listen: 10.0.0.1:9090\n    allow_plain_http: true\n",
			"http.admin.allow_plain_http: serving plain HTTP on 10.0.0.1:9090"},
		{"plain http base_url", "http:\n  public:\n    base_url: http://mfa.example.com\n    allow_plain_http: true\n", "http.public.base_url: http://mfa.example.com is plain HTTP"},
		{"underived base_url", "http:\n  public:\n    listen: :8080\n    allow_plain_http: true\n", "http.public.base_url: not set: derived http://localhost:8080"},
		{"kek in file", "keys:\n  kek: " + testKEK + "\n", "bridge.yaml:6: keys.kek: the key-encryption key is written in the config file"},
		{"dsn password in file", "storage:\n  driver: postgres\n  postgres:\n    dsn: postgres://u:pw@db/bridge\n", "storage.postgres.dsn: the database password is written"},
		{"rsa 2048", "keys:\n  rsa_bits: 2048\n", "keys.rsa_bits: 2048-bit RSA keys are weaker"},
		{"weak argon2", "passwords:\n  argon2id:\n    memory_kib: 19456\n    time: 2\n", "passwords.argon2id: argon2id time=2 memory_kib=19456 is weaker"},
		{"totp skew", "totp:\n  skew: 3\n", "totp.skew: 3 steps of skew accept codes up to 1m30s old"},
		{"bypass digits", "bypass_codes:\n  digits: 8\n", "bypass_codes.digits: 8-digit codes are weaker"},
		{"ldap skip verify", ldapDir("      insecure_skip_verify: true\n"), "directories[0].ldap.insecure_skip_verify: LDAP server certificates are not checked"},
		{"ldap plaintext", "directories:\n  - name: corp\n    type: ldap\n    ldap:\n      url: ldap://dc.example.com\n      allow_insecure_plaintext: true\n      user_base_dn: dc=example,dc=com\n      bind_dn: cn=svc,dc=example,dc=com\n      bind_password: svc-password\n",
			"bridge.yaml:10: directories[0].ldap.allow_insecure_plaintext: passwords go to ldap://dc.example.com unencrypted"},
		{"push fraud_lock 0", "push:\n  fraud_lock: 0s\n", "bridge.yaml:6: push.fraud_lock: 0s: a fraud report does not stop further pushes to the user (the default locks them for 1h)"},
		{"push state memory with postgres", "storage:\n  driver: postgres\n  postgres:\n    dsn: host=db\npush:\n  state: memory\n",
			"bridge.yaml:10: push.state: memory with storage.driver postgres: challenges are not shared between nodes, so each node must answer its own"},
		{"push long_poll not below write_timeout", "http:\n  public:\n    allow_plain_http: true\n  write_timeout: 30s\n",
			"bridge.yaml: push.long_poll: 30s is not below http.write_timeout (30s): the server would cut long-polls off"},
		{"push long_poll over write_timeout", "push:\n  long_poll: 2m\n", "bridge.yaml:6: push.long_poll: 2m0s is not below http.write_timeout (1m0s)"},
		{"push webhook plain http", "push:\n  fraud_webhook:\n    url: http://siem.example.com:8080/hook?token=abc\n",
			"bridge.yaml:7: push.fraud_webhook.url: plain HTTP to siem.example.com:8080: fraud reports"},
		{"push webhook secret in file", "push:\n  fraud_webhook:\n    url: https://siem.example.com/hook\n    secret: 0123456789abcdef\n",
			"bridge.yaml:8: push.fraud_webhook.secret: the webhook secret is written in the config file; use secret_file or ${ENV}"},
		{"ldap password in file", ldapDir("      bind_dn: cn=svc,dc=example,dc=com\n      bind_password: hunter2\n"), "directories[0].ldap.bind_password: the service account password is written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, trial(tt.src))
			found := false
			for _, w := range c.Warnings {
				found = found || strings.Contains(w, tt.want)
			}
			if !found {
				t.Errorf("no warning %q in %q", tt.want, c.Warnings)
			}
		})
	}
	t.Run("none for a production config", func(t *testing.T) {
		dir := t.TempDir()
		certFile, keyFile := writeCert(t, dir)
		src := "keys:\n  kek: ${KEK}\nhttp:\n  public:\n    listen: :8443\n    base_url: https://mfa.example.com\n    tls:\n      cert_file: " +
			certFile + "\n      key_file: " + keyFile + "\n" + ldapDir("      bind_dn: cn=svc,dc=x\n      bind_password: ${PW}\n")
		c, err := parseString(t, src, dir, map[string]string{"KEK": testKEK, "PW": "x"})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("warnings: %q", c.Warnings)
		}
	})
}
