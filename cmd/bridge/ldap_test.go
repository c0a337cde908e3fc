package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/directory/ldap/slapdtest"
)

// TestFactorsForLDAPUsers: users who live in LDAP have no local record, yet
// operators give them TOTP tokens and bypass codes, and delete them; names
// unknown to every directory, and locked users, are refused.
func TestFactorsForLDAPUsers(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	e := newEnv(t)
	cfg := testConfig + fmt.Sprintf(`
directories:
  - name: local
    type: local
  - name: corp
    type: ldap
    ldap:
      url: %s
      allow_insecure_plaintext: true
      bind_dn: %q
      bind_password: %q
      user_base_dn: %q
      disabled_filter: %q
      timeout: 5s
`, srv.URL, slapdtest.ServiceDN, slapdtest.ServicePassword, slapdtest.PeopleDN, srv.DisabledFilter)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	if out := e.ok("", "users", "totp", "enroll", slapdtest.AliceUID, "--json"); !strings.Contains(out, "otpauth://") {
		t.Fatalf("TOTP enrollment of an LDAP user: %q", out)
	}
	e.ok("", "users", "bypass", slapdtest.AliceUID)
	if r := e.run("", "users", "totp", "enroll", "nobody"); r.code != exitFailure || !strings.Contains(r.stderr, "in corp") {
		t.Fatalf("enrolling a name no directory knows: %+v", r)
	}
	if r := e.run("", "users", "bypass", slapdtest.BobUID); r.code != exitFailure || !strings.Contains(r.stderr, "disabled") {
		t.Fatalf("bypass code for a locked LDAP user: %+v", r)
	}
	// Deleting an LDAP user removes what the bridge holds for them.
	e.ok("", "users", "delete", slapdtest.AliceUID)
	if r := e.run("", "users", "delete", slapdtest.AliceUID); r.code != exitFailure {
		t.Fatalf("second delete: %+v", r)
	}
}
