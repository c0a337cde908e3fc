package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/ldap/slapdtest"
)

func TestServicePasswordChangedAfterOpen(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	cfg := Config{
		URL: srv.URL, AllowInsecurePlaintext: true,
		BindDN: slapdtest.ServiceDN, BindPassword: slapdtest.ServicePassword,
		UserBaseDN: slapdtest.PeopleDN, DisabledFilter: srv.DisabledFilter,
	}
	dd, err := Open(t.Context(), "corp", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := dd.(*dir)
	defer d.Close()
	srv.Modify(t, "dn: "+slapdtest.ServiceDN+"\nchangetype: modify\nreplace: userPassword\nuserPassword: rotated\n")
	d.pool.drain() // the idle connection was bound before the change
	_, err = d.Authenticate(t.Context(), slapdtest.AliceUID, slapdtest.AlicePassword)
	if !errors.Is(err, directory.ErrUnavailable) || !errors.Is(err, errServiceAccount) {
		t.Fatalf("err = %v, want ErrUnavailable about the service account", err)
	}
	if !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("error %q does not name the server", err)
	}
}

func TestUserBindErr(t *testing.T) {
	d := &dir{cfg: Config{URL: "ldap://dc.example.org"}, logger: discard()}
	ad := func(data string) error {
		return goldap.NewError(goldap.LDAPResultInvalidCredentials,
			errors.New("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data "+data+", v4563"))
	}
	for _, tc := range []struct {
		err      error
		disabled bool   // the entry matched disabled_filter
		want     error  // the class
		detail   string // in the text
	}{
		{goldap.NewError(goldap.LDAPResultInvalidCredentials, errors.New("")), false, directory.ErrInvalidCredentials, "wrong password"},
		{goldap.NewError(goldap.LDAPResultInvalidCredentials, errors.New("")), true, directory.ErrInvalidCredentials, "matches disabled_filter"},
		{ad("52e"), false, directory.ErrInvalidCredentials, "wrong password"},
		{ad("52e"), true, directory.ErrInvalidCredentials, "wrong password"},
		{ad("533"), false, directory.ErrDisabled, "account disabled (AD 533)"},
		{ad("533"), true, directory.ErrDisabled, "account disabled (AD 533)"},
		{ad("701"), false, directory.ErrDisabled, "account expired (AD 701)"},
		// 775 comes whatever the password: not proof enough for ErrDisabled.
		{ad("775"), false, directory.ErrInvalidCredentials, "account locked out (AD 775)"},
		{ad("775"), true, directory.ErrInvalidCredentials, "account locked out (AD 775)"},
		{ad("532"), false, directory.ErrInvalidCredentials, "password expired (AD 532)"},
		{ad("773"), false, directory.ErrInvalidCredentials, "password must be changed (AD 773)"},
		{ad("530"), false, directory.ErrInvalidCredentials, "log on at this time (AD 530)"},
		{ad("531"), false, directory.ErrInvalidCredentials, "from this workstation (AD 531)"},
		{ad("5330"), false, directory.ErrInvalidCredentials, "wrong password"}, // not a sub-code of the table
		{goldap.NewError(goldap.LDAPResultConfidentialityRequired, errors.New("")), false, directory.ErrUnavailable, ""},
		{goldap.NewError(goldap.LDAPResultBusy, errors.New("")), false, directory.ErrUnavailable, ""},
		{goldap.NewError(goldap.LDAPResultInsufficientAccessRights, errors.New("")), false, directory.ErrInvalidCredentials, "refused"},
		{errors.New("something else"), false, directory.ErrUnavailable, ""},
	} {
		got := d.userBindErr(t.Context(), "cn=x", tc.err, "", tc.disabled)
		if !errors.Is(got, tc.want) || !strings.Contains(got.Error(), tc.detail) {
			t.Errorf("userBindErr(%v, disabled %t) = %v, want %v with %q", tc.err, tc.disabled, got, tc.want, tc.detail)
		}
		n := 0
		for _, class := range []error{directory.ErrInvalidCredentials, directory.ErrDisabled, directory.ErrUnavailable} {
			if errors.Is(got, class) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("userBindErr(%v) = %v is of %d classes", tc.err, got, n)
		}
	}
}

// TestUnavailableKeepsOneClass: a request that already failed as the
// user's fault and whose connection then broke (a timeout in the decoy or
// the rebind) is ErrUnavailable only.
func TestUnavailableKeepsOneClass(t *testing.T) {
	d := &dir{cfg: Config{URL: "ldap://ldap.example.org"}, logger: discard()}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, inner := range []error{
		fmt.Errorf("%w: %w", directory.ErrInvalidCredentials, errUnknownUser),
		fmt.Errorf("%w: wrong password", directory.ErrInvalidCredentials),
		fmt.Errorf("%w: entry cn=x matches disabled_filter", directory.ErrDisabled),
	} {
		for _, ctx := range []context.Context{t.Context(), cancelled} {
			err := d.unavailable(ctx, "connection", inner)
			if !errors.Is(err, directory.ErrUnavailable) {
				t.Errorf("unavailable(%v) = %v, not ErrUnavailable", inner, err)
			}
			if errors.Is(err, directory.ErrInvalidCredentials) || errors.Is(err, directory.ErrDisabled) || errors.Is(err, errUnknownUser) {
				t.Errorf("unavailable(%v) = %v is also the inner class", inner, err)
			}
			if !strings.Contains(err.Error(), inner.Error()) {
				t.Errorf("unavailable(%v) = %v lost the inner text", inner, err)
			}
		}
	}
	// Causes that are no class are still seen through.
	if err := d.unavailable(cancelled, "x", context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("unavailable(context.Canceled) = %v, not context.Canceled", err)
	}
	if err := d.unavailable(t.Context(), "x", errServiceAccount); !errors.Is(err, errServiceAccount) {
		t.Errorf("unavailable(errServiceAccount) = %v, not errServiceAccount", err)
	}
}

func TestADBindProblemTable(t *testing.T) {
	for code, want := range map[string]bool{"530": false, "531": false, "532": false, "533": true, "701": true, "773": false, "775": false, "52e": false, "525": false} {
		why, proves := adBindProblem(errors.New("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data " + code + ", v4563"))
		if proves != want || (code != "52e" && code != "525" && why == "") {
			t.Errorf("adBindProblem(data %s) = %q, %t; want proves password %t", code, why, proves, want)
		}
	}
}

// TestPooledConnIsServiceBound: whatever a login did (right password,
// wrong password, unknown user, disabled user), the connection that goes
// back to the pool is bound as the service account.
func TestPooledConnIsServiceBound(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	cfg := Config{
		URL: srv.URL, AllowInsecurePlaintext: true,
		BindDN: slapdtest.ServiceDN, BindPassword: slapdtest.ServicePassword,
		UserBaseDN: slapdtest.PeopleDN, DisabledFilter: srv.DisabledFilter,
		PoolSize: 1, MaxConnections: 1,
	}
	dd, err := Open(t.Context(), "corp", cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	d := dd.(*dir)
	defer d.Close()
	for _, tc := range []struct{ user, password string }{
		{slapdtest.AliceUID, slapdtest.AlicePassword},
		{slapdtest.AliceUID, "wrong"},
		{"nobody-here", "wrong"},
		{slapdtest.BobUID, slapdtest.BobPassword},
	} {
		_, _ = d.Authenticate(t.Context(), tc.user, tc.password)
		var c *goldap.Conn
		select {
		case c = <-d.pool.idle:
		default:
			t.Fatalf("after %s/%s: no connection back in the pool", tc.user, tc.password)
		}
		res, err := c.WhoAmI(nil)
		if err != nil {
			t.Fatalf("WhoAmI: %v", err)
		}
		if res.AuthzID != "dn:"+slapdtest.ServiceDN {
			t.Errorf("after %s/%s the pooled connection is %q, want the service account", tc.user, tc.password, res.AuthzID)
		}
		d.pool.put(c)
	}
}

func TestRDNValue(t *testing.T) {
	for dn, want := range map[string]string{
		"cn=admins,ou=groups,dc=example,dc=org":     "admins",
		"CN=Domain Admins,CN=Users,DC=corp,DC=test": "Domain Admins",
		`cn=a\,b,ou=groups,dc=example,dc=org`:       "a,b",
		"ou=admins,dc=example,dc=org":               "",
		"not a dn":                                  "",
		"":                                          "",
	} {
		if got := rdnValue(dn, "cn"); got != want {
			t.Errorf("rdnValue(%q) = %q, want %q", dn, got, want)
		}
	}
}
