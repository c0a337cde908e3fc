package config

import (
	"github.com/bridge-idp/bridge/directory/ldap"
)

// applyLDAPDefaults fills an LDAP directory's preset defaults.
func applyLDAPDefaults(l *ldap.Config) { l.ApplyDefaults() }

// ldap validates an LDAP directory with the ldap package's own rules, and
// gives each problem (whose text starts with the yaml key under ldap) its
// full path and line.
func (v *validator) ldap(path string, l *ldap.Config) {
	cfg := *l
	if cfg.BindPasswordFile != "" || (cfg.BindPassword == "" && v.c.has(path+".bind_password")) {
		// A password file still named here was set together with
		// bind_password, unreadable or empty; a bind_password written
		// empty: the resolver reported each already.
		cfg.BindPasswordFile = ""
		if cfg.BindPassword == "" {
			cfg.BindPassword = "(reported)"
		}
	}
	for _, err := range flatten(cfg.Validate()) {
		key, msg := splitKey(err.Error())
		p := path
		if key != "" {
			p = joinPath(path, key)
		}
		// The ldap package quotes values: name those from the environment
		// by their variables instead.
		redacted := v.c.redact(path, msg, true)
		e := v.c.newError(p, "%s", redacted)
		if redacted == msg {
			e.Err = err // else it would still hold the value
		}
		v.errs = append(v.errs, e)
	}
}
