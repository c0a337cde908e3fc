package ldap_test

import (
	"errors"
	"testing"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/dirtest"
	"github.com/bridge-idp/bridge/directory/ldap"
	"github.com/bridge-idp/bridge/directory/ldap/slapdtest"
)

func fixture(d directory.Directory) dirtest.Fixture {
	return dirtest.Fixture{
		Dir: d, User: slapdtest.AliceUID, Password: slapdtest.AlicePassword,
		DisplayName: slapdtest.AliceCN, Email: slapdtest.AliceMail, Groups: slapdtest.AliceGroups(),
		Disabled: slapdtest.BobUID, DisabledPassword: slapdtest.BobPassword, Unknown: "nobody",
	}
}

func TestConformance(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	t.Run("search", func(t *testing.T) {
		dirtest.Run(t, func(t *testing.T) dirtest.Fixture { return fixture(open(t, config(srv, ldap.GroupsSearch))) })
	})
	t.Run("member_of", func(t *testing.T) {
		if !srv.MemberOf {
			t.Skip("slapd has no memberof overlay")
		}
		dirtest.Run(t, func(t *testing.T) dirtest.Fixture { return fixture(open(t, config(srv, ldap.GroupsMemberOf))) })
	})
}

func TestIdentityDN(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	d := open(t, config(srv, ldap.GroupsSearch))
	id, err := d.Authenticate(t.Context(), "alice", slapdtest.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if id.DN != slapdtest.AliceDN {
		t.Errorf("DN = %q, want %q", id.DN, slapdtest.AliceDN)
	}
	if _, err := d.Authenticate(t.Context(), "bob", "wrong"); !errors.Is(err, directory.ErrDisabled) {
		t.Errorf("locked bob with a wrong password: err = %v, want ErrDisabled (checked before the bind)", err)
	}
}

// BenchmarkAuthenticate: a full LDAP login (search, disabled check, user
// bind, service rebind, groups) against a local slapd.
func BenchmarkAuthenticate(b *testing.B) {
	srv := slapdtest.Start(b, slapdtest.Options{})
	dirtest.Bench(b, fixture(open(b, config(srv, ldap.GroupsSearch))))
}
