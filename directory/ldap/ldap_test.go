package ldap_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

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
}

// TestDisabledNeedsThePassword: a disabled or locked account shows as
// disabled only to whoever has its password.
func TestDisabledNeedsThePassword(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	d := open(t, config(srv, ldap.GroupsSearch))
	onlyInvalid := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, directory.ErrInvalidCredentials) || errors.Is(err, directory.ErrDisabled) || errors.Is(err, directory.ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrInvalidCredentials only", what, err)
		}
	}
	_, err := d.Authenticate(t.Context(), slapdtest.BobUID, "wrong")
	onlyInvalid("disabled bob, wrong password", err)
	if _, err := d.Authenticate(t.Context(), slapdtest.BobUID, slapdtest.BobPassword); !errors.Is(err, directory.ErrDisabled) {
		t.Errorf("disabled bob, right password: err = %v, want ErrDisabled", err)
	}
	if !srv.PPolicy {
		return
	}
	// slapd refuses a locked account's binds and answers a right password
	// exactly as a wrong one (result 49, the same ppolicy control): the
	// bridge cannot tell them apart, so neither is ErrDisabled.
	_, err = d.Authenticate(t.Context(), slapdtest.LarryUID, "wrong")
	onlyInvalid("locked larry, wrong password", err)
	_, err = d.Authenticate(t.Context(), slapdtest.LarryUID, slapdtest.LarryPassword)
	onlyInvalid("locked larry, right password", err)
	// The openldap preset's filter names the permanent lock for lookups.
	cfg := config(srv, ldap.GroupsSearch)
	cfg.DisabledFilter = ""
	d = open(t, cfg)
	if _, err := d.Lookup(t.Context(), slapdtest.LarryUID); !errors.Is(err, directory.ErrDisabled) {
		t.Errorf("Lookup(locked larry) with the preset's disabled_filter: err = %v, want ErrDisabled", err)
	}
}

// TestTemporaryLockoutEnds: a ppolicy lock-out after wrong passwords ends
// after pwdLockoutDuration through the bridge too (with the openldap
// preset's disabled_filter), so that a few wrong passwords cannot lock
// someone out for good.
func TestTemporaryLockoutEnds(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	if !srv.PPolicy {
		t.Skip("slapd has no ppolicy overlay")
	}
	cfg := config(srv, ldap.GroupsSearch)
	cfg.DisabledFilter = "" // the preset's
	d := open(t, cfg)
	for range slapdtest.CarolMaxFailure {
		if _, err := d.Authenticate(t.Context(), slapdtest.CarolUID, "wrong"); !errors.Is(err, directory.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	_, err := d.Authenticate(t.Context(), slapdtest.CarolUID, slapdtest.CarolPassword)
	if !errors.Is(err, directory.ErrInvalidCredentials) || errors.Is(err, directory.ErrDisabled) {
		t.Fatalf("right password while locked out: err = %v, want ErrInvalidCredentials only (slapd refuses it)", err)
	}
	time.Sleep(slapdtest.CarolLockoutDuration + time.Second)
	if _, err := d.Authenticate(t.Context(), slapdtest.CarolUID, slapdtest.CarolPassword); err != nil {
		t.Fatalf("right password after the lock-out ended: %v", err)
	}
}

// TestMultiValuedUsername: an entry with two uid values logs in under the
// one that matched, never the other (uid: admin must not make mallory
// admin), and that name is {username} in the group filter.
func TestMultiValuedUsername(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	srv.Add(t, `dn: uid=mallory,`+slapdtest.PeopleDN+`
objectClass: inetOrgPerson
uid: admin
uid: mallory
cn: Mallory
sn: M
userPassword: mallory-pw

dn: cn=admins-posix,`+slapdtest.GroupsDN+`
objectClass: posixGroup
cn: admins-posix
gidNumber: 1000
memberUid: admin

dn: cn=mallory-posix,`+slapdtest.GroupsDN+`
objectClass: posixGroup
cn: mallory-posix
gidNumber: 1001
memberUid: mallory
`)
	d := open(t, config(srv, ldap.GroupsSearch))
	for _, login := range []string{"mallory", "MALLORY"} {
		id, err := d.Authenticate(t.Context(), login, "mallory-pw")
		if err != nil {
			t.Fatal(err)
		}
		if id.Username != "mallory" || !slices.Equal(id.Groups, []string{"mallory-posix"}) {
			t.Errorf("login %s: Username %q, Groups %q; want mallory, [mallory-posix]", login, id.Username, id.Groups)
		}
	}
	id, err := d.Authenticate(t.Context(), "admin", "mallory-pw")
	if err != nil {
		t.Fatal(err)
	}
	if id.Username != "admin" || !slices.Equal(id.Groups, []string{"admins-posix"}) {
		t.Errorf("login admin: Username %q, Groups %q; want admin, [admins-posix]", id.Username, id.Groups)
	}
	// A filter that matched on another attribute: the login name.
	cfg := config(srv, ldap.GroupsSearch)
	cfg.UserFilter = "(&(objectClass=inetOrgPerson)(|(uid={username})(cn={username})))"
	d = open(t, cfg)
	if id, err := d.Lookup(t.Context(), "Mallory"); err != nil || id.Username != "mallory" {
		t.Errorf("Lookup by cn: %+v, %v; want Username mallory", id, err)
	}
	srv.Modify(t, "dn: uid=mallory,"+slapdtest.PeopleDN+"\nchangetype: modify\nreplace: cn\ncn: Mal Lory\n")
	if id, err := d.Lookup(t.Context(), "mal lory"); err != nil || id.Username != "mal lory" {
		t.Errorf("Lookup by cn: %+v, %v; want Username %q, the login name", id, err, "mal lory")
	}
}

// TestGroupsForSpecialDN: a user whose DN has characters special in
// filters ( ( * \ ) still finds their groups by {dn}.
func TestGroupsForSpecialDN(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	const dn = `cn=Ops\, Dave (contractor) *,` + slapdtest.PeopleDN
	srv.Add(t, `dn: `+dn+`
objectClass: inetOrgPerson
uid: dave
cn: Ops, Dave (contractor) *
sn: Dave
userPassword: dave-pw

dn: cn=night (shift) *,`+slapdtest.GroupsDN+`
objectClass: groupOfNames
cn: night (shift) *
member: `+dn+`
`)
	d := open(t, config(srv, ldap.GroupsSearch))
	id, err := d.Authenticate(t.Context(), "dave", "dave-pw")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id.Groups, []string{"night (shift) *"}) {
		t.Errorf("Groups = %q, want [night (shift) *]", id.Groups)
	}
}

// TestGroupNames: search mode names a group once, by its RDN value, however
// many cn values it has; member_of mode keeps only groups under
// groups.base_dn when it is set.
func TestGroupNames(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	srv.Add(t, `dn: ou=elsewhere,`+slapdtest.BaseDN+`
objectClass: organizationalUnit
ou: elsewhere

dn: cn=outside,ou=elsewhere,`+slapdtest.BaseDN+`
objectClass: groupOfNames
cn: outside
member: `+slapdtest.AliceDN+`

dn: cn=ops,`+slapdtest.GroupsDN+`
objectClass: groupOfNames
cn: admins-too
cn: root
cn: ops
member: `+slapdtest.AliceDN+`

dn: ou=team,`+slapdtest.GroupsDN+`
objectClass: groupOfNames
ou: team
cn: team-first
cn: team-second
member: `+slapdtest.AliceDN+`
`)
	cfg := config(srv, ldap.GroupsSearch)
	cfg.Groups.BaseDN = slapdtest.BaseDN
	id, err := open(t, cfg).Authenticate(t.Context(), slapdtest.AliceUID, slapdtest.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"admins", "ops", "outside", "staff", "team-first"}; !slices.Equal(id.Groups, want) {
		t.Errorf("search mode: Groups = %q, want %q", id.Groups, want)
	}
	if !srv.MemberOf {
		t.Skip("slapd has no memberof overlay")
	}
	cfg = config(srv, ldap.GroupsMemberOf)
	cfg.Groups.BaseDN = slapdtest.GroupsDN
	id, err = open(t, cfg).Authenticate(t.Context(), slapdtest.AliceUID, slapdtest.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"admins", "ops", "staff"}; !slices.Equal(id.Groups, want) {
		t.Errorf("member_of under %s: Groups = %q, want %q", cfg.Groups.BaseDN, id.Groups, want)
	}
	cfg.Groups.BaseDN = ""
	id, err = open(t, cfg).Authenticate(t.Context(), slapdtest.AliceUID, slapdtest.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"admins", "ops", "outside", "staff"}; !slices.Equal(id.Groups, want) {
		t.Errorf("member_of without base_dn: Groups = %q, want %q", id.Groups, want)
	}
}

// TestServerACLs: the test server lets only the service account read
// users and groups, so a connection left bound as a user shows.
func TestServerACLs(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	cfg := config(srv, ldap.GroupsSearch)
	cfg.BindDN, cfg.BindPassword = slapdtest.AliceDN, slapdtest.AlicePassword
	d := open(t, cfg)
	for _, user := range []string{slapdtest.BobUID, slapdtest.AliceUID} {
		if id, err := d.Lookup(t.Context(), user); err == nil || errors.Is(err, directory.ErrDisabled) {
			t.Errorf("bound as alice, Lookup(%s) = %+v, %v; want a failure (alice cannot search ou=people)", user, id, err)
		}
	}
}

func TestAnonymousBindWarns(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	cfg := config(srv, ldap.GroupsSearch)
	cfg.BindDN, cfg.BindPassword = "", ""
	if _, err := ldap.Open(t.Context(), "corp", cfg, nil); err == nil || !strings.Contains(err.Error(), "anonymous_bind") {
		t.Fatalf("Open without bind_dn: err = %v, want a bind_dn/anonymous_bind error", err)
	}
	cfg.AnonymousBind = true
	var logs logBuffer
	d, err := ldap.Open(t.Context(), "corp", cfg, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer d.(interface{ Close() error }).Close()
	if !slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(l string) bool {
		return strings.Contains(l, "level=WARN") && strings.Contains(l, "anonymous")
	}) {
		t.Errorf("no warning for anonymous_bind:\n%s", logs.String())
	}
	// The server lets anonymous read nothing: the bind was anonymous.
	if _, err := d.Lookup(t.Context(), slapdtest.AliceUID); err == nil {
		t.Errorf("anonymous Lookup succeeded; the test server lets anonymous read nothing")
	}
}

// BenchmarkAuthenticate: a full LDAP login (search, disabled check, user
// bind, service rebind, groups) against a local slapd.
func BenchmarkAuthenticate(b *testing.B) {
	srv := slapdtest.Start(b, slapdtest.Options{})
	dirtest.Bench(b, fixture(open(b, config(srv, ldap.GroupsSearch))))
}
