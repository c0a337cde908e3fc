package ldap_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/ldap"
	"github.com/bridge-idp/bridge/directory/ldap/slapdtest"
)

func TestTLS(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{TLS: true})
	tlsConfig := func(url string, startTLS bool) ldap.Config {
		c := config(srv, ldap.GroupsSearch)
		c.URL, c.StartTLS, c.AllowInsecurePlaintext, c.CAFile = url, startTLS, false, srv.CAFile
		return c
	}
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	other := slapdtest.Start(t, slapdtest.Options{TLS: true}) // a CA slapd's certificate is not from
	if b, err := os.ReadFile(other.CAFile); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(otherCA, b, 0o600); err != nil {
		t.Fatal(err)
	}

	for name, cfg := range map[string]ldap.Config{
		"ldaps":    tlsConfig(srv.LDAPSURL, false),
		"StartTLS": tlsConfig(srv.URL, true),
		"ldaps with localhost name": func() ldap.Config {
			c := tlsConfig(srv.LDAPSURL, false)
			c.ServerName = "localhost"
			return c
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			d := open(t, cfg)
			id, err := d.Authenticate(t.Context(), slapdtest.AliceUID, slapdtest.AlicePassword)
			if err != nil || id.Email != slapdtest.AliceMail {
				t.Fatalf("Authenticate = %+v, %v", id, err)
			}
		})
	}
	for name, cfg := range map[string]ldap.Config{
		"ldaps wrong CA":       func() ldap.Config { c := tlsConfig(srv.LDAPSURL, false); c.CAFile = otherCA; return c }(),
		"StartTLS wrong CA":    func() ldap.Config { c := tlsConfig(srv.URL, true); c.CAFile = otherCA; return c }(),
		"ldaps wrong name":     func() ldap.Config { c := tlsConfig(srv.LDAPSURL, false); c.ServerName = "ldap.example.org"; return c }(),
		"ldaps system roots":   func() ldap.Config { c := tlsConfig(srv.LDAPSURL, false); c.CAFile = ""; return c }(),
		"StartTLS system root": func() ldap.Config { c := tlsConfig(srv.URL, true); c.CAFile = ""; return c }(),
	} {
		t.Run(name, func(t *testing.T) {
			d := open(t, cfg)
			_, err := d.Authenticate(t.Context(), slapdtest.AliceUID, slapdtest.AlicePassword)
			if !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("err = %v, want ErrUnavailable about the certificate", err)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
	t.Run("insecure_skip_verify", func(t *testing.T) {
		cfg := tlsConfig(srv.LDAPSURL, false)
		cfg.CAFile, cfg.InsecureSkipVerify = otherCA, true
		var logs logBuffer
		d, err := ldap.Open(t.Context(), "corp", cfg, logs.logger())
		if err != nil {
			t.Fatal(err)
		}
		defer d.(interface{ Close() error }).Close()
		if _, err := d.Authenticate(t.Context(), slapdtest.AliceUID, slapdtest.AlicePassword); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "insecure_skip_verify") {
			t.Errorf("no warning logged:\n%s", logs.String())
		}
	})
}

func TestPlaintextWarning(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	var logs logBuffer
	d, err := ldap.Open(t.Context(), "corp", config(srv, ldap.GroupsSearch), logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer d.(interface{ Close() error }).Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "in clear") {
		t.Errorf("no warning for plaintext LDAP:\n%s", logs.String())
	}
	cfg := config(srv, ldap.GroupsSearch)
	cfg.AllowInsecurePlaintext = false
	if _, err := ldap.Open(t.Context(), "corp", cfg, nil); err == nil || !strings.Contains(err.Error(), "url: ldap:// without start_tls") {
		t.Errorf("plaintext without allow_insecure_plaintext: err = %v", err)
	}
}
