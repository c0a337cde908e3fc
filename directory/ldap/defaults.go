package ldap

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Presets.
const (
	PresetOpenLDAP        = "openldap"
	PresetActiveDirectory = "active_directory"
)

// Group modes.
const (
	GroupsMemberOf = "member_of"
	GroupsSearch   = "search"
	GroupsNone     = "none"
)

// Defaults outside the presets.
const (
	DefaultTimeout        = 5 * time.Second
	DefaultPoolSize       = 4
	DefaultMaxConnections = 16
	// ADUserFilter is the active_directory preset's user filter: a person's
	// user object by sAMAccountName or userPrincipalName.
	ADUserFilter = "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))"
	// OpenLDAPDisabledFilter is the openldap preset's disabled filter: the
	// permanent lock of ppolicy (an administrator's), not the temporary
	// lock-outs slapd ends itself.
	OpenLDAPDisabledFilter = "(pwdAccountLockedTime=000001010000Z)"
	// DefaultGroupFilter finds groupOfNames and posixGroup groups.
	DefaultGroupFilter = "(|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=posixGroup)(memberUid={username})))"
)

// ApplyDefaults fills every key left empty from the preset (openldap when
// Preset is empty) and the general defaults. Explicit keys are kept. In
// search mode an empty groups.base_dn defaults to the parent of
// user_base_dn (so ou=people,dc=example,dc=org searches dc=example,dc=org).
func (c *Config) ApplyDefaults() {
	if c.Preset == "" {
		c.Preset = PresetOpenLDAP
	}
	var p Config
	switch c.Preset {
	case PresetActiveDirectory:
		p = Config{
			UserFilter:     ADUserFilter,
			DisabledFilter: "(userAccountControl:1.2.840.113556.1.4.803:=2)",
			Attributes:     Attributes{Username: "sAMAccountName", DisplayName: "displayName", Email: "mail"},
			Groups:         Groups{Mode: GroupsMemberOf},
		}
	case PresetOpenLDAP:
		p = Config{
			UserFilter:     "(&(objectClass=inetOrgPerson)(uid={username}))",
			DisabledFilter: OpenLDAPDisabledFilter,
			Attributes:     Attributes{Username: "uid", DisplayName: "cn", Email: "mail"},
			Groups:         Groups{Mode: GroupsSearch},
		}
	default:
		return // Validate reports the unknown preset
	}
	setDefault(&c.UserFilter, p.UserFilter)
	setDefault(&c.DisabledFilter, p.DisabledFilter)
	setDefault(&c.Attributes.Username, p.Attributes.Username)
	setDefault(&c.Attributes.DisplayName, p.Attributes.DisplayName)
	setDefault(&c.Attributes.Email, p.Attributes.Email)
	setDefault(&c.Groups.Mode, p.Groups.Mode)
	setDefault(&c.Groups.Attribute, "memberOf")
	setDefault(&c.Groups.NameAttribute, "cn")
	if c.Groups.Mode == GroupsSearch {
		setDefault(&c.Groups.Filter, DefaultGroupFilter)
		setDefault(&c.Groups.BaseDN, parentDN(c.UserBaseDN))
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PoolSize == 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// parentDN drops the first RDN of dn, if it has more than one.
func parentDN(dn string) string {
	d, err := goldap.ParseDN(dn)
	if err != nil || len(d.RDNs) < 2 {
		return dn
	}
	return (&goldap.DN{RDNs: d.RDNs[1:]}).String()
}

// Validate reports every problem in c (after ApplyDefaults); each error
// starts with the yaml key it is about.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch c.Preset {
	case "", PresetOpenLDAP, PresetActiveDirectory:
	default:
		bad("preset: must be %s or %s, not %q", PresetOpenLDAP, PresetActiveDirectory, c.Preset)
	}
	if u, err := url.Parse(c.URL); c.URL == "" {
		bad("url: is required (ldap://host:port or ldaps://host:port)")
	} else if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || u.Hostname() == "" {
		bad("url: %q is not ldap://host[:port] or ldaps://host[:port]", c.URL)
	} else {
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
			bad("url: %q must have no user, path or query", c.URL)
		}
		if u.Scheme == "ldaps" && c.StartTLS {
			bad("start_tls: not with ldaps:// (already TLS)")
		}
		if u.Scheme == "ldap" && !c.StartTLS && !c.AllowInsecurePlaintext {
			bad("url: ldap:// without start_tls sends passwords in clear; set start_tls, use ldaps://, or set allow_insecure_plaintext")
		}
	}
	if c.BindPassword != "" && c.BindPasswordFile != "" {
		bad("bind_password_file: not together with bind_password")
	}
	switch {
	case c.BindDN == "" && (c.BindPassword != "" || c.BindPasswordFile != ""):
		bad("bind_dn: is required with a bind password")
	case c.BindDN == "" && !c.AnonymousBind:
		bad("bind_dn: required (or set anonymous_bind: true)")
	case c.BindDN != "" && c.AnonymousBind:
		bad("anonymous_bind: not together with bind_dn")
	}
	if c.BindDN != "" && c.BindPassword == "" && c.BindPasswordFile == "" {
		bad("bind_password: is required with bind_dn (or bind_password_file)")
	}
	checkDN := func(key, dn string, required bool) {
		if dn == "" {
			if required {
				bad("%s: is required", key)
			}
			return
		}
		if _, err := goldap.ParseDN(dn); err != nil {
			bad("%s: %q is not a DN: %v", key, dn, err)
		}
	}
	checkDN("bind_dn", c.BindDN, false)
	checkDN("user_base_dn", c.UserBaseDN, true)
	checkFilter := func(key, f, placeholder string, required bool) {
		if f == "" {
			if required {
				bad("%s: is required", key)
			}
			return
		}
		if placeholder != "" && !strings.Contains(f, placeholder) {
			bad("%s: must contain %s", key, placeholder)
		}
		probe := strings.NewReplacer("{username}", "x", "{dn}", "cn=x").Replace(f)
		if _, err := goldap.CompileFilter(probe); err != nil {
			bad("%s: %q is not an LDAP filter: %v", key, f, err)
		}
	}
	checkFilter("user_filter", c.UserFilter, "{username}", true)
	checkFilter("disabled_filter", c.DisabledFilter, "", false)
	if c.Attributes.Username == "" {
		bad("attributes.username: is required")
	}
	switch c.Groups.Mode {
	case GroupsMemberOf:
		if c.Groups.Attribute == "" {
			bad("groups.attribute: is required in member_of mode")
		}
	case GroupsSearch:
		checkDN("groups.base_dn", c.Groups.BaseDN, true)
		checkFilter("groups.filter", c.Groups.Filter, "", true)
		if c.Groups.Filter != "" && !strings.Contains(c.Groups.Filter, "{dn}") && !strings.Contains(c.Groups.Filter, "{username}") {
			bad("groups.filter: must contain {dn} or {username}")
		}
	case GroupsNone:
	default:
		bad("groups.mode: must be %s, %s or %s, not %q", GroupsMemberOf, GroupsSearch, GroupsNone, c.Groups.Mode)
	}
	if c.Groups.Mode != GroupsNone && c.Groups.NameAttribute == "" {
		bad("groups.name_attribute: is required")
	}
	if c.Timeout <= 0 {
		bad("timeout: must be positive")
	}
	if c.PoolSize < 0 {
		bad("pool_size: must not be negative")
	}
	if c.MaxConnections < 1 {
		bad("max_connections: must be at least 1")
	}
	return errors.Join(errs...)
}
