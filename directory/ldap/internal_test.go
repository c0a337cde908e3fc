package ldap

import (
	"errors"
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
		err  error
		want error
	}{
		{goldap.NewError(goldap.LDAPResultInvalidCredentials, errors.New("")), directory.ErrInvalidCredentials},
		{ad("52e"), directory.ErrInvalidCredentials},
		{ad("533"), directory.ErrDisabled},
		{ad("775"), directory.ErrDisabled},
		{ad("701"), directory.ErrDisabled},
		{goldap.NewError(goldap.LDAPResultConfidentialityRequired, errors.New("")), directory.ErrUnavailable},
		{goldap.NewError(goldap.LDAPResultBusy, errors.New("")), directory.ErrUnavailable},
		{goldap.NewError(goldap.LDAPResultInsufficientAccessRights, errors.New("")), directory.ErrInvalidCredentials},
		{errors.New("something else"), directory.ErrUnavailable},
	} {
		got := d.userBindErr(t.Context(), "cn=x", tc.err)
		if !errors.Is(got, tc.want) {
			t.Errorf("userBindErr(%v) = %v, want %v", tc.err, got, tc.want)
		}
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
