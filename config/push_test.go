package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// fcmCredentials is a service-account key file as the config checks it
// (the fcm package checks the key itself).
const fcmCredentials = `{"type": "service_account", "project_id": "acme-mfa", "client_email": "bridge@acme-mfa.iam.gserviceaccount.com", "private_key": "(test)"}`

func TestPushState(t *testing.T) {
	tests := []struct{ src, want string }{
		{"", "memory"},
		{"push:\n  state: auto\n", "memory"},
		{"storage:\n  driver: postgres\n  postgres:\n    dsn: host=db\n", "store"},
		{"storage:\n  driver: postgres\n  postgres:\n    dsn: host=db\npush:\n  state: auto\n", "store"},
		{"storage:\n  driver: postgres\n  postgres:\n    dsn: host=db\npush:\n  state: memory\n", "memory"},
		{"push:\n  state: store\n", "store"},
		{"push:\n  state: memory\n", "memory"},
	}
	for _, tt := range tests {
		c := mustParse(t, trial(tt.src))
		if got := c.PushState(); got != tt.want {
			t.Errorf("PushState() = %q, want %q for:\n%s", got, tt.want, tt.src)
		}
	}
}

func TestPushValidate(t *testing.T) {
	tests := []struct {
		name string
		src  string // under push:, completed by trial
		want string // "" means valid
	}{
		{"challenge_ttl lowest", "  challenge_ttl: 10s\n", ""},
		{"challenge_ttl highest", "  challenge_ttl: 5m\n", ""},
		{"challenge_ttl too short", "  challenge_ttl: 9s\n", "bridge.yaml:6: push.challenge_ttl: must be from 10s to 5m, got 9s"},
		{"challenge_ttl too long", "  challenge_ttl: 301s\n", "push.challenge_ttl: must be from 10s to 5m, got 5m1s"},
		{"number_digits 8", "  number_digits: 8\n", ""},
		{"number_digits 1", "  number_digits: 1\n", "bridge.yaml:6: push.number_digits: must be from 2 to 8, got 1"},
		{"number_digits 9", "  number_digits: 9\n", "push.number_digits: must be from 2 to 8, got 9"},
		{"proof_max_age too short", "  proof_max_age: 4s\n", "push.proof_max_age: must be from 5s to 10m, got 4s"},
		{"proof_max_age too long", "  proof_max_age: 11m\n", "push.proof_max_age: must be from 5s to 10m, got 11m0s"},
		{"long_poll zero", "  long_poll: 0s\n", "push.long_poll: must be from 1s to 5m, got 0s"},
		{"long_poll too long", "  long_poll: 6m\n", "push.long_poll: must be from 1s to 5m"},
		{"activation_ttl 7 days", "  activation_ttl: 168h\n", ""},
		{"activation_ttl too short", "  activation_ttl: 30s\n", "push.activation_ttl: must be from 1m to 168h, got 30s"},
		{"activation_ttl too long", "  activation_ttl: 169h\n", "push.activation_ttl: must be from 1m to 168h, got 169h0m0s"},
		{"backoff_base zero", "  backoff_base: 0s\n", "push.backoff_base: must be a positive duration, got 0s"},
		{"backoff_max equal to base", "  backoff_base: 1m\n  backoff_max: 1m\n", ""},
		{"backoff_max below base", "  backoff_base: 1m\n  backoff_max: 59s\n", "bridge.yaml:7: push.backoff_max: 59s is shorter than backoff_base (1m0s)"},
		{"backoff_max below default base", "  backoff_max: 1s\n", "bridge.yaml:6: push.backoff_max: 1s is shorter than backoff_base (5s)"},
		{"max_per_hour zero", "  max_per_hour: 0\n", "bridge.yaml:6: push.max_per_hour: must be at least 1, got 0"},
		{"max_per_ip_minute negative", "  max_per_ip_minute: -1\n", "push.max_per_ip_minute: must be at least 1, got -1"},
		{"fraud_lock zero", "  fraud_lock: 0s\n", ""},
		{"fraud_lock negative", "  fraud_lock: -1h\n", "bridge.yaml:6: push.fraud_lock: must not be negative, got -1h0m0s"},
		{"delivery_timeout too short", "  delivery_timeout: 500ms\n", "push.delivery_timeout: must be from 1s to 2m, got 500ms"},
		{"delivery_timeout too long", "  delivery_timeout: 3m\n", "push.delivery_timeout: must be from 1s to 2m"},
		{"delivery_workers 1024", "  delivery_workers: 1024\n", ""},
		{"delivery_workers zero", "  delivery_workers: 0\n", "push.delivery_workers: must be from 1 to 1024, got 0"},
		{"delivery_workers too many", "  delivery_workers: 1025\n", "push.delivery_workers: must be from 1 to 1024, got 1025"},
		{"retention 1h", "  retention: 1h\n", ""},
		{"retention too short", "  retention: 59m\n", "bridge.yaml:6: push.retention: must be at least 1h, got 59m0s"},
		{"enroll_per_ip_minute zero", "  enroll_per_ip_minute: 0\n", "push.enroll_per_ip_minute: must be at least 1, got 0"},
		{"sweep_interval too short", "  sweep_interval: 100ms\n", "push.sweep_interval: must be from 1s to 1m, got 100ms"},
		{"sweep_interval too long", "  sweep_interval: 2m\n", "push.sweep_interval: must be from 1s to 1m"},
		{"state", "  state: Memory\n", `bridge.yaml:6: push.state: unknown value "Memory" (use auto, memory, store)`},

		{"webhook", "  fraud_webhook:\n    url: https://siem.example.com/hook?tenant=acme\n    timeout: 1m\n", ""},
		{"webhook on loopback", "  fraud_webhook:\n    url: http://127.0.0.1:9000/hook\n", ""},
		{"webhook not a URL", "  fraud_webhook:\n    url: siem.example.com/hook\n", `bridge.yaml:7: push.fraud_webhook.url: must be an absolute http:// or https:// URL such as https://siem.example.com/bridge, got "siem.example.com/hook"`},
		{"webhook scheme", "  fraud_webhook:\n    url: ftp://siem.example.com/\n", "push.fraud_webhook.url: must be an absolute http:// or https:// URL"},
		{"webhook fragment", "  fraud_webhook:\n    url: https://siem.example.com/#x\n", "push.fraud_webhook.url: must not have a fragment"},
		{"webhook timeout", "  fraud_webhook:\n    url: https://siem.example.com/\n    timeout: 2m\n", "bridge.yaml:8: push.fraud_webhook.timeout: must be from 1s to 1m, got 2m0s"},
		{"webhook secret", "  fraud_webhook:\n    url: https://siem.example.com/\n    secret: 0123456789abcdef\n", ""},
		{"webhook secret too short", "  fraud_webhook:\n    url: https://siem.example.com/\n    secret: 0123456789abcde\n",
			"bridge.yaml:8: push.fraud_webhook.secret: the secret must be at least 16 bytes"},
		{"webhook keys without url", "  fraud_webhook:\n    timeout: 3s\n",
			"bridge.yaml:6: push.fraud_webhook.url: is empty, which disables the fraud webhook: set it, or remove the other push.fraud_webhook keys"},
		{"webhook secret without url", "  fraud_webhook:\n    secret: 0123456789abcdef\n", "push.fraud_webhook.url: is empty"},

		{"fcm endpoint on loopback", fcmSection("    endpoint: http://localhost:8081/v1\n"), ""},
		{"fcm endpoint https", fcmSection("    endpoint: https://fcm.example.com/v1/\n"), ""},
		{"fcm endpoint http", fcmSection("    endpoint: http://10.0.0.1/v1\n"),
			`bridge.yaml:8: push.fcm.endpoint: http:// is only allowed to a loopback host (for tests); use https://, got "http://10.0.0.1/v1"`},
		{"fcm endpoint scheme", fcmSection("    endpoint: grpc://fcm.example.com\n"), `push.fcm.endpoint: must be an absolute https:// URL, got "grpc://fcm.example.com"`},
		{"fcm endpoint relative", fcmSection("    endpoint: /v1\n"), "push.fcm.endpoint: must be an absolute https:// URL"},
		{"fcm endpoint query", fcmSection("    endpoint: https://fcm.example.com/v1?key=x\n"), "push.fcm.endpoint: must not have credentials, a query or a fragment"},
		{"fcm project id", fcmSection("    project_id: Acme MFA\n"), `bridge.yaml:8: push.fcm.project_id: "Acme MFA" is not a Google Cloud project id`},
		{"fcm legacy project id", fcmSection("    project_id: example.com:acme-mfa\n"), ""},
		{"fcm keys without credentials", "  fcm:\n    project_id: acme-mfa\n",
			"bridge.yaml:6: push.fcm.credentials_file: is empty, which disables FCM: set it, or remove the other push.fcm keys"},

		{"apns", apnsSection(""), ""},
		{"apns sandbox", apnsSection("    environment: sandbox\n"), ""},
		{"apns environment", apnsSection("    environment: development\n"), `bridge.yaml:11: push.apns.environment: unknown value "development" (use production, sandbox)`},
		{"apns key_id", apnsSection("    key_id: abcde12345\n"), `bridge.yaml:10: push.apns.key_id: "abcde12345" is not the key's 10-character id`},
		{"apns team_id short", apnsSection("    team_id: TEAM12345\n"), `push.apns.team_id: "TEAM12345" is not the developer team's 10-character id`},
		{"apns topic", apnsSection("    topic: com.example/bridge\n"), `bridge.yaml:10: push.apns.topic: "com.example/bridge" is not a bundle id`},
		{"apns endpoint", apnsSection("    endpoint: https://127.0.0.1:8443\n"), ""},
		{"apns endpoint http", apnsSection("    endpoint: http://127.0.0.1:8443\n"), `bridge.yaml:11: push.apns.endpoint: must be https://, got "http://127.0.0.1:8443"`},
		{"apns endpoint path", apnsSection("    endpoint: https://relay.example.com/3/device\n"), "push.apns.endpoint: must be a base URL without a path, such as https://api.push.apple.com"},
		{"apns endpoint credentials", apnsSection("    endpoint: https://u:p@relay.example.com\n"), "push.apns.endpoint: must not have credentials"},
		{"apns keys without key_file", "  apns:\n    topic: com.example.bridge\n    environment: sandbox\n",
			"bridge.yaml:6: push.apns.key_file: is empty, which disables APNs: set it, or remove the other push.apns keys"},
		{"apns without key_file", "  apns:\n    environment: production\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "fcm.json", fcmCredentials)
			writeAPNsKey(t, dir, "apns.p8")
			c, err := parseString(t, trial("push:\n"+tt.src), dir, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
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

// fcmSection is push.fcm with the credentials in dir/fcm.json and extra
// keys.
func fcmSection(extra string) string {
	return "  fcm:\n    credentials_file: fcm.json\n" + extra
}

// apnsSection is a valid push.apns with its key in dir/apns.p8 and extra
// keys (which may repeat none of the others).
func apnsSection(extra string) string {
	s := "  apns:\n    key_file: apns.p8\n"
	for _, kv := range []string{"key_id: ABCDE12345", "team_id: TEAM123456", "topic: com.example.bridge"} {
		key, _, _ := strings.Cut(kv, ":")
		if !strings.Contains(extra, key+":") {
			s += "    " + kv + "\n"
		}
	}
	return s + extra
}

func TestPushFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "fcm.json", fcmCredentials)
	writeFile(t, dir, "fcm-no-project.json", `{"type": "service_account", "client_email": "a@b", "private_key": "k"}`)
	writeFile(t, dir, "fcm-partial.json", `{"type": "service_account", "project_id": "acme-mfa"}`)
	writeFile(t, dir, "fcm-user.json", `{"type": "authorized_user", "client_id": "x"}`)
	writeFile(t, dir, "not-json", "project_id = acme\n")
	writeAPNsKey(t, dir, "AuthKey.p8")
	writeFile(t, dir, "rsa.p8", string(pkcs8PEM(t, mustRSA(t))))
	writeFile(t, dir, "p384.p8", string(pkcs8PEM(t, mustEC(t, elliptic.P384()))))
	writeFile(t, dir, "garbage.p8", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
	writeFile(t, dir, "ec.pem", "-----BEGIN EC PRIVATE KEY-----\nbm90IGEga2V5\n-----END EC PRIVATE KEY-----\n")
	writeFile(t, dir, "ca.pem", string(testenv.SelfSigned(t, 1).CertPEM))

	fcm := func(file string, extra ...string) string {
		return "push:\n  fcm:\n    credentials_file: " + file + "\n" + strings.Join(extra, "")
	}
	apns := func(keyFile string, extra ...string) string {
		return "push:\n  apns:\n    key_file: " + keyFile + "\n    key_id: ABCDE12345\n    team_id: TEAM123456\n    topic: com.example.bridge\n" + strings.Join(extra, "")
	}
	tests := []struct {
		name  string
		src   string
		want  []string // error substrings; none means success
		check func(t *testing.T, c *Config)
	}{
		{name: "fcm credentials relative to the config", src: fcm("fcm.json"),
			check: func(t *testing.T, c *Config) {
				f := c.Push.FCM
				if !f.Enabled() || f.CredentialsFile != filepath.Join(dir, "fcm.json") || f.ProjectID != "" {
					t.Errorf("fcm %+v", f)
				}
			}},
		{name: "fcm credentials absolute", src: fcm(filepath.Join(dir, "fcm.json"))},
		{name: "fcm credentials missing", src: fcm("nope.json"),
			want: []string{`bridge.yaml:7: push.fcm.credentials_file: cannot read "` + filepath.Join(dir, "nope.json") + `": no such file or directory`}},
		{name: "fcm credentials not JSON", src: fcm("not-json"),
			want: []string{`bridge.yaml:7: push.fcm.credentials_file: "` + filepath.Join(dir, "not-json") + `" is not a JSON service-account key`}},
		{name: "fcm credentials of a user", src: fcm("fcm-user.json"),
			want: []string{`push.fcm.credentials_file: "` + filepath.Join(dir, "fcm-user.json") + `" is not a service-account key: its type is "authorized_user", want "service_account"`}},
		{name: "fcm credentials incomplete", src: fcm("fcm-partial.json"),
			want: []string{`push.fcm.credentials_file: "` + filepath.Join(dir, "fcm-partial.json") + `" has no client_email and no private_key`}},
		{name: "fcm credentials without project", src: fcm("fcm-no-project.json"),
			want: []string{`bridge.yaml:6: push.fcm.project_id: required: the credentials file "` + filepath.Join(dir, "fcm-no-project.json") + `" has no project_id`}},
		{name: "fcm project in the config", src: fcm("fcm-no-project.json", "    project_id: acme-mfa\n"),
			check: func(t *testing.T, c *Config) {
				if c.Push.FCM.ProjectID != "acme-mfa" {
					t.Errorf("project_id %q", c.Push.FCM.ProjectID)
				}
			}},
		{name: "apns key relative to the config", src: apns("AuthKey.p8"),
			check: func(t *testing.T, c *Config) {
				a := c.Push.APNs
				if !a.Enabled() || a.KeyFile != filepath.Join(dir, "AuthKey.p8") || a.Environment != "production" || a.URL() != "https://api.push.apple.com" {
					t.Errorf("apns %+v, URL %q", a, a.URL())
				}
			}},
		{name: "apns key missing", src: apns("nope.p8"),
			want: []string{`bridge.yaml:7: push.apns.key_file: cannot read "` + filepath.Join(dir, "nope.p8") + `": no such file or directory`}},
		{name: "apns key is RSA", src: apns("rsa.p8"),
			want: []string{`bridge.yaml:7: push.apns.key_file: "` + filepath.Join(dir, "rsa.p8") + `": holds an RSA key, want the .p8 file from Apple (PEM "PRIVATE KEY", an EC P-256 key)`}},
		{name: "apns key on P-384", src: apns("p384.p8"), want: []string{"push.apns.key_file:", "holds an EC P-384 key, want the .p8 file"}},
		{name: "apns key not PKCS#8", src: apns("garbage.p8"), want: []string{"push.apns.key_file:", "cannot parse the key: want the .p8 file"}},
		{name: "apns key is SEC 1", src: apns("ec.pem"), want: []string{"push.apns.key_file:", "not an APNs auth key: want the .p8 file"}},
		{name: "apns key is JSON", src: apns("fcm.json"), want: []string{"push.apns.key_file:", "not an APNs auth key"}},
		{name: "apns sandbox", src: apns("AuthKey.p8", "    environment: sandbox\n"),
			check: func(t *testing.T, c *Config) {
				if u := c.Push.APNs.URL(); u != "https://api.sandbox.push.apple.com" {
					t.Errorf("URL %q", u)
				}
			}},
		{name: "apns endpoint overrides environment", src: apns("AuthKey.p8", "    environment: sandbox\n    endpoint: https://relay.example.com\n"),
			check: func(t *testing.T, c *Config) {
				if u := c.Push.APNs.URL(); u != "https://relay.example.com" {
					t.Errorf("URL %q", u)
				}
			}},
		{name: "apns ca_file", src: apns("AuthKey.p8", "    ca_file: ca.pem\n"),
			check: func(t *testing.T, c *Config) {
				if c.Push.APNs.CAFile != filepath.Join(dir, "ca.pem") {
					t.Errorf("ca_file %q", c.Push.APNs.CAFile)
				}
			}},
		{name: "apns ca_file missing", src: apns("AuthKey.p8", "    ca_file: nope.pem\n"),
			want: []string{`bridge.yaml:11: push.apns.ca_file: cannot read "` + filepath.Join(dir, "nope.pem") + `"`}},
		{name: "apns ca_file without certificates", src: apns("AuthKey.p8", "    ca_file: AuthKey.p8\n"),
			want: []string{`bridge.yaml:11: push.apns.ca_file: "` + filepath.Join(dir, "AuthKey.p8") + `" holds no PEM certificate`}},
		{name: "nothing enabled by default", src: "",
			check: func(t *testing.T, c *Config) {
				p := c.Push
				if p.FCM.Enabled() || p.APNs.Enabled() || p.FraudWebhook.Enabled() {
					t.Errorf("enabled by default: %+v", p)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(tt.src), dir, nil)
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

// TestPushKeyFileMode warns (without failing) about an FCM credentials
// file or an APNs key that other users can read, as about other secrets.
func TestPushKeyFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	src := trial("push:\n  fcm:\n    credentials_file: fcm.json\n  apns:\n    key_file: AuthKey.p8\n" +
		"    key_id: ABCDE12345\n    team_id: TEAM123456\n    topic: com.example.bridge\n")
	for _, tt := range []struct {
		mode fs.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o644, true}, {0o640, true}} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			for _, p := range []string{writeFile(t, dir, "fcm.json", fcmCredentials), writeAPNsKey(t, dir, "AuthKey.p8")} {
				if err := os.Chmod(p, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			c, err := parseString(t, src, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{
				fmt.Sprintf("bridge.yaml:7: push.fcm.credentials_file: %s is readable by other users (mode %04o); chmod 600 it", filepath.Join(dir, "fcm.json"), tt.mode),
				fmt.Sprintf("bridge.yaml:9: push.apns.key_file: %s is readable by other users (mode %04o); chmod 600 it", filepath.Join(dir, "AuthKey.p8"), tt.mode),
			} {
				if found := slices.Contains(c.Warnings, w); found != tt.warn {
					t.Errorf("warned %v, want %v:\n%s\nwarnings: %q", found, tt.warn, w, c.Warnings)
				}
			}
		})
	}
}

// TestPushWarningsNone checks that the push defaults, with either storage
// driver, are warned about in no way.
func TestPushWarningsNone(t *testing.T) {
	for _, src := range []string{
		"",
		"storage:\n  driver: postgres\n  postgres:\n    dsn: host=db\n",
		"push:\n  state: store\n  fraud_lock: 1s\n  fraud_webhook:\n    url: http://localhost:9000/hook\n    secret: ${SECRET}\n",
	} {
		c, err := parseString(t, trial(src), "", map[string]string{"SECRET": "0123456789abcdef"})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.Warnings {
			if strings.Contains(w, "push.") {
				t.Errorf("warning %q for:\n%s", w, src)
			}
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second:           "10s",
		5 * time.Minute:            "5m",
		90 * time.Second:           "1m30s",
		time.Hour:                  "1h",
		7 * 24 * time.Hour:         "168h",
		time.Hour + 10*time.Minute: "1h10m",
		time.Hour + time.Second:    "1h0m1s",
		500 * time.Millisecond:     "500ms",
		2 * time.Minute:            "2m",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEC(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pkcs8PEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
