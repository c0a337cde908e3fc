package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// FuzzParse checks that no input makes Parse panic or hang, and that every
// failure is a list of *Error. Files named in the config are served from
// memory, never from disk. Seeds: testdata/fuzz/FuzzParse, the example, the
// golden files.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	seeds = append(seeds, examplePath, "testdata/good/full.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("dev_mode: true\nhttp: {public: {allow_plain_http: true}}\nkeys: {kek_file: kek}\n"))
	f.Add([]byte("log: {level: ${A}$${B}$$}\n"))
	f.Add([]byte(trial(samlSP("      attributes: [{name: x, from: value, value: y}]\n") + "    - {name: b, metadata_file: sp.xml}\n")))

	apns := testenv.SelfSigned(f, 1)
	files := map[string]string{"kek": testKEK + "\n", "password": "pw\n", "empty": "",
		"fcm.json": fcmCredentials, "apns.p8": string(apns.KeyPEM), "ca.pem": string(apns.CertPEM),
		"radius-secret": radiusSecret + "\n", "oidc-secret": oidcSecret + "\n", "jwks.json": testJWKS,
		"sp.xml": testSPMetadata, "saml-sp.xml": testSPMetadata, "sp-metadata.xml": testSPMetadata}
	read := func(path string) ([]byte, error) {
		if s, ok := files[filepath.Base(path)]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	mode := func(path string) (fs.FileMode, error) {
		if _, ok := files[filepath.Base(path)]; ok {
			return 0o600, nil
		}
		return 0, os.ErrNotExist
	}
	env := envOf(map[string]string{"A": "x", "KEK": testKEK, "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		type result struct {
			c   *Config
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, err := parse(data, "fuzz.yaml", "/nonexistent", env, read, mode)
			done <- result{c, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("HANG on %q", data)
		}
		c, err := r.c, r.err
		if err != nil {
			if c != nil {
				t.Fatal("config and error")
			}
			for _, e := range flatten(err) {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Fatalf("%T %q is not a *config.Error", e, e)
				}
				if !strings.HasPrefix(e.Error(), "fuzz.yaml") {
					t.Fatalf("error without the source: %q", e)
				}
			}
			return
		}
		if c.DevMode == (c.KEK != nil) && !c.DevMode {
			t.Fatal("valid config without a KEK outside dev mode")
		}
		if len(c.Directory) == 0 {
			t.Fatal("valid config without directories")
		}
	})
}
