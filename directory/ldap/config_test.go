package ldap

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestApplyDefaults(t *testing.T) {
	c := Config{URL: "ldaps://dc.corp.test", Preset: PresetActiveDirectory, UserBaseDN: "CN=Users,DC=corp,DC=test",
		BindDN: "CN=svc,CN=Users,DC=corp,DC=test", BindPassword: "x", Attributes: Attributes{Email: "userPrincipalName"}}
	c.ApplyDefaults()
	if c.UserFilter != "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))" || c.Attributes.Username != "sAMAccountName" ||
		c.Attributes.Email != "userPrincipalName" || c.Groups.Mode != GroupsMemberOf || c.Groups.Attribute != "memberOf" ||
		c.DisabledFilter != "(userAccountControl:1.2.840.113556.1.4.803:=2)" || c.Timeout != 5*time.Second ||
		c.PoolSize != 4 || c.MaxConnections != 16 {
		t.Errorf("active_directory defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	o := Config{URL: "ldap://ldap.example.org", StartTLS: true, UserBaseDN: "ou=people,dc=example,dc=org", AnonymousBind: true}
	o.ApplyDefaults()
	if o.Preset != PresetOpenLDAP || o.Attributes.Username != "uid" || o.Groups.Mode != GroupsSearch ||
		o.Groups.BaseDN != "dc=example,dc=org" || o.Groups.Filter != DefaultGroupFilter || o.DisabledFilter != "(pwdAccountLockedTime=000001010000Z)" {
		t.Errorf("openldap defaults: %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	base := func() Config {
		c := Config{URL: "ldaps://ldap.example.org", UserBaseDN: "ou=people,dc=example,dc=org",
			BindDN: "cn=svc,dc=example,dc=org", BindPassword: "pw"}
		c.ApplyDefaults()
		return c
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want []string // each error must start with one of these
	}{
		"preset":           {func(c *Config) { c.Preset = "novell" }, []string{"preset: "}},
		"no url":           {func(c *Config) { c.URL = "" }, []string{"url: is required"}},
		"http url":         {func(c *Config) { c.URL = "http://x" }, []string{"url: "}},
		"plaintext":        {func(c *Config) { c.URL = "ldap://x" }, []string{"url: ldap:// without start_tls"}},
		"ldaps starttls":   {func(c *Config) { c.StartTLS = true }, []string{"start_tls: "}},
		"path":             {func(c *Config) { c.URL = "ldaps://x/dc=example" }, []string{"url: "}},
		"filter":           {func(c *Config) { c.UserFilter = "(uid=alice)" }, []string{"user_filter: must contain {username}"}},
		"bad filter":       {func(c *Config) { c.UserFilter = "(uid={username}" }, []string{"user_filter: "}},
		"bad disabled":     {func(c *Config) { c.DisabledFilter = "((" }, []string{"disabled_filter: "}},
		"base dn":          {func(c *Config) { c.UserBaseDN = "" }, []string{"user_base_dn: is required"}},
		"bad base dn":      {func(c *Config) { c.UserBaseDN = "people" }, []string{"user_base_dn: "}},
		"both passwords":   {func(c *Config) { c.BindPasswordFile = "/x" }, []string{"bind_password_file: "}},
		"no password":      {func(c *Config) { c.BindPassword = "" }, []string{"bind_password: "}},
		"password no dn":   {func(c *Config) { c.BindDN = "" }, []string{"bind_dn: is required with a bind password"}},
		"no bind dn":       {func(c *Config) { c.BindDN = ""; c.BindPassword = "" }, []string{"bind_dn: required (or set anonymous_bind: true)"}},
		"anonymous and dn": {func(c *Config) { c.AnonymousBind = true }, []string{"anonymous_bind: "}},
		"groups mode":      {func(c *Config) { c.Groups.Mode = "nested" }, []string{"groups.mode: "}},
		"groups filter":    {func(c *Config) { c.Groups.Filter = "(objectClass=group)" }, []string{"groups.filter: must contain"}},
		"timeout":          {func(c *Config) { c.Timeout = -1 }, []string{"timeout: "}},
		"max connections":  {func(c *Config) { c.MaxConnections = -1 }, []string{"max_connections: "}},
		"several at once":  {func(c *Config) { c.URL = ""; c.UserBaseDN = "" }, []string{"url: ", "user_base_dn: "}},
	} {
		c := base()
		tc.mod(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tc.want) {
			t.Errorf("%s: %d errors %q, want %d", name, len(lines), lines, len(tc.want))
			continue
		}
		for i, l := range lines {
			if !strings.HasPrefix(l, tc.want[i]) {
				t.Errorf("%s: error %q does not start with %q", name, l, tc.want[i])
			}
		}
	}
}

func TestAnonymousBindExplicit(t *testing.T) {
	c := Config{URL: "ldaps://ldap.example.org", UserBaseDN: "ou=people,dc=example,dc=org", AnonymousBind: true}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("anonymous_bind without bind_dn: %v", err)
	}
}

// TestADUserFilter: the active_directory filter takes sAMAccountName and
// userPrincipalName logins and no computer accounts.
func TestADUserFilter(t *testing.T) {
	c := Config{Preset: PresetActiveDirectory}
	c.ApplyDefaults()
	f := strings.ReplaceAll(c.UserFilter, "{username}", "jdoe@corp.example")
	for _, want := range []string{"(objectCategory=person)", "(sAMAccountName=jdoe@corp.example)", "(userPrincipalName=jdoe@corp.example)"} {
		if !strings.Contains(f, want) {
			t.Errorf("AD user filter %s has no %s", f, want)
		}
	}
}
