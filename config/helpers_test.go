package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// testKEK is a valid KEK (32 bytes, base64) for tests only.
const testKEK = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// envOf returns an env lookup over m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// trial completes a snippet into a config that is valid on its own: dev
// mode, and plain HTTP allowed on the public listener unless the snippet
// has its own http section; with storage.driver postgres, a base_url too
// (a shared database requires one). The snippet starts on line 5 either way.
func trial(snippet string) string {
	s := "dev_mode: true\n"
	if !strings.Contains(snippet, "\nhttp:") && !strings.HasPrefix(snippet, "http:") {
		if strings.Contains(snippet, "driver: postgres") {
			s += "http:\n  public:\n    {allow_plain_http: true, base_url: \"http://127.0.0.1:8080\"}\n"
		} else {
			s += "http:\n  public:\n    allow_plain_http: true\n"
		}
	}
	return s + snippet
}

// parseString parses src as "bridge.yaml" in dir with env.
func parseString(t *testing.T, src, dir string, env map[string]string) (*Config, error) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return Parse([]byte(src), "bridge.yaml", dir, envOf(env))
}

// mustParse fails the test on an error.
func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := parseString(t, src, "", nil)
	if err != nil {
		t.Fatalf("unexpected error:\n%v\nconfig:\n%s", err, src)
	}
	return c
}

// wantErr checks that err contains every substring in want.
func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
	for _, e := range flatten(err) {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Errorf("error %q is not a *config.Error", e)
		}
	}
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeCert writes a self-signed certificate and its key into dir as
// cert.pem and key.pem.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	return testenv.SelfSigned(t, 1).Write(t, dir)
}

// writeAPNsKey writes a fresh APNs auth key (PEM PKCS#8, EC P-256, as Apple
// issues them) to name in dir and returns its path.
func writeAPNsKey(t *testing.T, dir, name string) string {
	t.Helper()
	return writeFile(t, dir, name, string(testenv.SelfSigned(t, 3).KeyPEM))
}
