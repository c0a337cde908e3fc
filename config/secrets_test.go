package config

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "kek", testKEK+"\n")
	writeFile(t, dir, "kek.crlf", testKEK+"\r\n")
	writeFile(t, dir, "empty", "")
	writeFile(t, dir, "blank", "\n")
	writeFile(t, dir, "dsn", "postgres://bridge:s3cret@db/bridge\n")
	writeFile(t, dir, "password", "  pass word \n")
	writeFile(t, dir, "webhook", "0123456789abcdef0123\n")
	writeFile(t, dir, "webhook-short", "0123456789\n")
	writeFile(t, dir, "radius", "radius-file-secret-01\n")
	writeFile(t, dir, "radius-short", "0123456789abcde\n")
	env := map[string]string{"EMPTY": "", "PW": "from-env", "HOOK": "env-webhook-secret-0123", "RADIUS": "radius-env-secret-012"}
	webhook := func(extra string) string {
		return "push:\n  fraud_webhook:\n    url: https://siem.example.com/hook\n" + extra
	}
	radius := func(extra string) string {
		return "radius:\n  clients:\n    - name: vpn\n      address: 192.0.2.10\n" + extra
	}

	ldap := func(extra string) string {
		return ("directories:\n  - name: corp\n    type: ldap\n    ldap:\n      url: ldaps://dc.example.com\n" +
			"      user_base_dn: dc=example,dc=com\n      bind_dn: cn=svc,dc=example,dc=com\n" + extra)
	}
	tests := []struct {
		name  string
		src   string
		want  []string // error substrings; none means success
		check func(t *testing.T, c *Config)
	}{
		{name: "kek_file relative to the config, newline trimmed",
			src: "keys:\n  kek_file: kek\n",
			check: func(t *testing.T, c *Config) {
				if len(c.KEK) != 32 || c.Keys.KEKFile != filepath.Join(dir, "kek") || c.Keys.KEK != testKEK {
					t.Errorf("KEK %x, kek_file %q, kek %q", c.KEK, c.Keys.KEKFile, c.Keys.KEK)
				}
			}},
		{name: "kek_file with CRLF", src: "keys:\n  kek_file: kek.crlf\n",
			check: func(t *testing.T, c *Config) {
				if len(c.KEK) != 32 {
					t.Errorf("KEK %x", c.KEK)
				}
			}},
		{name: "kek_file absolute", src: "keys:\n  kek_file: " + filepath.Join(dir, "kek") + "\n"},
		{name: "kek_file missing", src: "keys:\n  kek_file: nope\n",
			want: []string{`bridge.yaml:6: keys.kek_file: cannot read "` + filepath.Join(dir, "nope") + `": no such file or directory`}},
		{name: "kek_file is a directory", src: "keys:\n  kek_file: .\n", want: []string{"keys.kek_file: cannot read"}},
		{name: "kek_file empty", src: "keys:\n  kek_file: empty\n", want: []string{`bridge.yaml:6: keys.kek_file: file "` + filepath.Join(dir, "empty") + `" is empty`}},
		{name: "kek_file blank", src: "keys:\n  kek_file: blank\n", want: []string{"keys.kek_file: file", "is empty"}},
		{name: "kek and kek_file", src: "keys:\n  kek: " + testKEK + "\n  kek_file: kek\n",
			want: []string{"bridge.yaml:7: keys.kek_file: set either kek or kek_file, not both"}},
		{name: "kek from an empty variable", src: "keys:\n  kek: ${EMPTY}\n", want: []string{"bridge.yaml:6: keys.kek: is empty"}},
		{name: "kek_file key without a value", src: "keys:\n  kek_file:\n", want: []string{"bridge.yaml:6: keys.kek_file: is empty"}},
		{name: "dsn_file", src: "storage:\n  driver: postgres\n  postgres:\n    dsn_file: dsn\n",
			check: func(t *testing.T, c *Config) {
				if c.Storage.Postgres.DSN != "postgres://bridge:s3cret@db/bridge" {
					t.Errorf("DSN %q", c.Storage.Postgres.DSN)
				}
			}},
		{name: "dsn_file missing", src: "storage:\n  driver: postgres\n  postgres:\n    dsn_file: nope\n",
			want: []string{"bridge.yaml:8: storage.postgres.dsn_file: cannot read"}},
		{name: "dsn and dsn_file", src: "storage:\n  postgres:\n    dsn: x\n    dsn_file: dsn\n",
			want: []string{"storage.postgres.dsn_file: set either dsn or dsn_file, not both"}},
		{name: "fraud webhook secret_file", src: webhook("    secret_file: webhook\n"),
			check: func(t *testing.T, c *Config) {
				w := c.Push.FraudWebhook
				if w.Secret != "0123456789abcdef0123" || w.SecretFile != filepath.Join(dir, "webhook") {
					t.Errorf("secret %q, secret_file %q", w.Secret, w.SecretFile)
				}
			}},
		{name: "fraud webhook secret from env", src: webhook("    secret: ${HOOK}\n"),
			check: func(t *testing.T, c *Config) {
				if c.Push.FraudWebhook.Secret != "env-webhook-secret-0123" {
					t.Errorf("secret %q", c.Push.FraudWebhook.Secret)
				}
			}},
		{name: "fraud webhook secret_file missing", src: webhook("    secret_file: nope\n"),
			want: []string{`bridge.yaml:8: push.fraud_webhook.secret_file: cannot read "` + filepath.Join(dir, "nope") + `"`}},
		{name: "fraud webhook secret_file too short", src: webhook("    secret_file: webhook-short\n"),
			want: []string{"bridge.yaml:8: push.fraud_webhook.secret_file: the secret must be at least 16 bytes"}},
		{name: "fraud webhook secret and secret_file", src: webhook("    secret: ${HOOK}\n    secret_file: webhook\n"),
			want: []string{"bridge.yaml:9: push.fraud_webhook.secret_file: set either secret or secret_file, not both"}},
		{name: "fraud webhook secret empty variable", src: webhook("    secret: ${EMPTY}\n"),
			want: []string{"bridge.yaml:8: push.fraud_webhook.secret: is empty"}},
		{name: "radius secret_file", src: radius("      secret_file: radius\n"),
			check: func(t *testing.T, c *Config) {
				rc := c.Radius.Clients[0]
				if rc.Secret != "radius-file-secret-01" || rc.SecretFile != filepath.Join(dir, "radius") {
					t.Errorf("secret %q, secret_file %q", rc.Secret, rc.SecretFile)
				}
			}},
		{name: "radius secret from env", src: radius("      secret: ${RADIUS}\n"),
			check: func(t *testing.T, c *Config) {
				if c.Radius.Clients[0].Secret != "radius-env-secret-012" {
					t.Errorf("secret %q", c.Radius.Clients[0].Secret)
				}
			}},
		{name: "radius secret_file missing", src: radius("      secret_file: nope\n"),
			want: []string{`bridge.yaml:9: radius.clients[0].secret_file: cannot read "` + filepath.Join(dir, "nope") + `"`}},
		{name: "radius secret_file empty", src: radius("      secret_file: empty\n"),
			want: []string{`bridge.yaml:9: radius.clients[0].secret_file: file "` + filepath.Join(dir, "empty") + `" is empty`}},
		{name: "radius secret_file too short", src: radius("      secret_file: radius-short\n"),
			want: []string{"bridge.yaml:9: radius.clients[0].secret_file: the shared secret must be at least 16 bytes"}},
		{name: "radius secret and secret_file", src: radius("      secret: ${RADIUS}\n      secret_file: radius\n"),
			want: []string{"bridge.yaml:10: radius.clients[0].secret_file: set either secret or secret_file, not both"}},
		{name: "radius secret empty variable", src: radius("      secret: ${EMPTY}\n"),
			want: []string{"bridge.yaml:9: radius.clients[0].secret: is empty"}},
		{name: "radius secret_file key without a value", src: radius("      secret_file:\n"),
			want: []string{"bridge.yaml:9: radius.clients[0].secret_file: is empty"}},
		{name: "bind_password_file", src: ldap("      bind_password_file: password\n"),
			check: func(t *testing.T, c *Config) {
				l := c.Directory[0].LDAP
				if l.BindPassword != "  pass word " || l.BindPasswordFile != "" {
					t.Errorf("bind password %q, file %q", l.BindPassword, l.BindPasswordFile)
				}
			}},
		{name: "bind_password from env", src: ldap("      bind_password: ${PW}\n"),
			check: func(t *testing.T, c *Config) {
				if c.Directory[0].LDAP.BindPassword != "from-env" {
					t.Errorf("bind password %q", c.Directory[0].LDAP.BindPassword)
				}
			}},
		{name: "bind_password_file missing", src: ldap("      bind_password_file: nope\n"),
			want: []string{"bridge.yaml:12: directories[0].ldap.bind_password_file: cannot read"}},
		{name: "bind_password and file", src: ldap("      bind_password: x\n      bind_password_file: password\n"),
			want: []string{"bridge.yaml:13: directories[0].ldap.bind_password_file: set either bind_password or bind_password_file, not both"}},
		{name: "bind_password empty variable", src: ldap("      bind_password: ${EMPTY}\n"),
			want: []string{"bridge.yaml:12: directories[0].ldap.bind_password: is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(tt.src), dir, env)
			if len(tt.want) > 0 {
				wantErr(t, err, tt.want...)
				if err != nil && strings.Count(err.Error(), "\n") != 0 {
					t.Errorf("want exactly one problem, got:\n%v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "kek", "not-a-valid-kek-but-secret\n")
	_, err := parseString(t, "keys:\n  kek_file: kek\n", dir, nil)
	wantErr(t, err, "keys.kek_file: key-encryption key")
	if bytes.Contains([]byte(err.Error()), []byte("secret")) {
		t.Errorf("error shows the secret: %v", err)
	}
}

// TestSecretFileMode warns (without failing) about a kek_file, dsn_file,
// bind_password_file or RADIUS secret_file that other users can read.
func TestSecretFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	src := trial("keys:\n  kek_file: kek\nstorage:\n  driver: postgres\n  postgres:\n    dsn_file: dsn\n" +
		"directories:\n  - name: corp\n    type: ldap\n    ldap:\n      url: ldaps://dc.example.com\n" +
		"      user_base_dn: dc=example,dc=com\n      bind_dn: cn=svc,dc=example,dc=com\n      bind_password_file: password\n" +
		"radius:\n  clients:\n    - name: vpn\n      address: 192.0.2.10\n      secret_file: radius\n")
	for _, tt := range []struct {
		mode fs.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o644, true}, {0o640, true}, {0o604, true}} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"kek": testKEK + "\n", "dsn": "host=db password=pw\n", "password": "pw\n", "radius": radiusSecret + "\n"}
			for name, content := range files {
				p := writeFile(t, dir, name, content)
				if err := os.Chmod(p, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			c, err := parseString(t, src, dir, nil)
			if err != nil {
				t.Fatal(err) // a warning, never an error
			}
			want := map[string]string{
				"keys.kek_file":                          fmt.Sprintf("bridge.yaml:6: keys.kek_file: %s is readable by other users (mode %04o); chmod 600 it", filepath.Join(dir, "kek"), tt.mode),
				"storage.postgres.dsn_file":              fmt.Sprintf("bridge.yaml:10: storage.postgres.dsn_file: %s is readable by other users (mode %04o); chmod 600 it", filepath.Join(dir, "dsn"), tt.mode),
				"directories[0].ldap.bind_password_file": fmt.Sprintf("bridge.yaml:18: directories[0].ldap.bind_password_file: %s is readable by other users (mode %04o); chmod 600 it", filepath.Join(dir, "password"), tt.mode),
				"radius.clients[0].secret_file":          fmt.Sprintf("bridge.yaml:23: radius.clients[0].secret_file: %s is readable by other users (mode %04o); chmod 600 it", filepath.Join(dir, "radius"), tt.mode),
			}
			for key, w := range want {
				found := slices.Contains(c.Warnings, w)
				if found != tt.warn {
					t.Errorf("%s: warned %v, want %v:\n%s\nwarnings: %q", key, found, tt.warn, w, c.Warnings)
				}
			}
			for _, w := range c.Warnings {
				if strings.Contains(w, "readable by other users") && !tt.warn {
					t.Errorf("unexpected warning %q", w)
				}
			}
		})
	}
}
