package ldap

import "time"

// Config is an LDAP / Active Directory directory as written in bridge.yaml
// (under directories[].ldap). The config package decodes and validates it;
// Open checks what only a connection can tell.
type Config struct {
	// Preset fills defaults for a known server: "active_directory" or
	// "openldap" (the default). Explicit keys override it.
	Preset string `yaml:"preset"`

	// URL is ldap://host:port or ldaps://host:port.
	URL string `yaml:"url"`
	// StartTLS upgrades an ldap:// connection before binding. Plain LDAP
	// without StartTLS sends passwords in clear: it needs
	// AllowInsecurePlaintext and is logged as a warning.
	StartTLS bool `yaml:"start_tls"`
	// CAFile is a PEM bundle of CAs to trust for ldaps:// and StartTLS
	// (default: the system roots).
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the TLS server name (default: the URL's host).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns off certificate checks. Never in production;
	// logged as a warning.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// AllowInsecurePlaintext permits ldap:// without StartTLS.
	AllowInsecurePlaintext bool `yaml:"allow_insecure_plaintext"`

	// BindDN and BindPassword are the service account used to search.
	// BindPasswordFile reads the password from a file instead (trailing
	// newline trimmed); ${ENV} expansion works in BindPassword.
	BindDN           string `yaml:"bind_dn"`
	BindPassword     string `yaml:"bind_password"`
	BindPasswordFile string `yaml:"bind_password_file"`
	// AnonymousBind searches without a service account (an anonymous
	// bind) instead of bind_dn. It must be asked for: an empty bind_dn
	// alone is an error. Logged as a warning; the server must then let
	// anyone read users and groups.
	AnonymousBind bool `yaml:"anonymous_bind"`

	// UserBaseDN is where users are searched (subtree).
	UserBaseDN string `yaml:"user_base_dn"`
	// UserFilter finds one user; {username} is replaced by the escaped login
	// name. Default (openldap): (&(objectClass=inetOrgPerson)(uid={username}));
	// (active_directory):
	// (&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username}))),
	// so that both "jdoe" and "jdoe@corp.example" log in, and computer
	// accounts (HOST$, objectCategory=computer) never match.
	UserFilter string `yaml:"user_filter"`
	// DisabledFilter, if set, is matched against the user's entry; a match
	// means the account is disabled or locked. It is reported
	// (ErrDisabled) only when the password is proven right (the user bind
	// succeeded); with a refused bind it is audit detail of
	// ErrInvalidCredentials. Default (active_directory):
	// (userAccountControl:1.2.840.113556.1.4.803:=2);
	// (openldap): (pwdAccountLockedTime=000001010000Z), the permanent
	// administrative lock. Temporary ppolicy lock-outs (a time stamp in
	// pwdAccountLockedTime) are left to slapd, which refuses the binds
	// until pwdLockoutDuration has passed and clears the attribute at the
	// next successful bind: a filter such as (pwdAccountLockedTime=*)
	// would turn every temporary lock-out into a permanent one.
	DisabledFilter string `yaml:"disabled_filter"`

	// Attributes maps identity fields to LDAP attribute names.
	Attributes Attributes `yaml:"attributes"`

	// Groups says how group membership is read.
	Groups Groups `yaml:"groups"`

	// Timeout bounds each network operation (dial, bind, search). Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize is the number of idle service-bound connections kept. Default 4.
	PoolSize int `yaml:"pool_size"`
	// MaxConnections bounds connections open at once (pooled plus in use);
	// callers beyond it wait (bounded by their context). Default 16.
	MaxConnections int `yaml:"max_connections"`
}

// Attributes maps identity fields to LDAP attributes.
type Attributes struct {
	Username    string `yaml:"username"`     // default uid (AD: sAMAccountName)
	DisplayName string `yaml:"display_name"` // default cn (AD: displayName)
	Email       string `yaml:"email"`        // default mail
}

// Groups configures group lookup.
type Groups struct {
	// Mode is "member_of" (read the user's memberOf attribute; AD's and
	// OpenLDAP's memberof overlay), "search" (search groups whose member
	// attribute names the user), or "none". Default member_of for
	// active_directory, search for openldap.
	Mode string `yaml:"mode"`
	// Attribute read in member_of mode. Default memberOf.
	Attribute string `yaml:"attribute"`
	// BaseDN: in search mode, where groups are searched (subtree; default
	// the parent of user_base_dn). In member_of mode, if set, only groups
	// at or below it count; default empty: every memberOf value counts.
	BaseDN string `yaml:"base_dn"`
	// Filter for search mode; it may use {dn} (the user's DN) and
	// {username} (the user's name as in the identity: the username
	// attribute's value that matched the login). Default:
	// (|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=posixGroup)(memberUid={username}))).
	Filter string `yaml:"filter"`
	// NameAttribute is the group attribute used as the group's name, or
	// the RDN attribute taken from a memberOf DN. Default cn. In search
	// mode a group has one name however many values the attribute has: its
	// RDN value when the RDN is of this attribute, else the first value.
	NameAttribute string `yaml:"name_attribute"`
}
