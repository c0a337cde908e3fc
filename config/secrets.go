package config

import (
	"fmt"
	"strings"
)

// resolver reads the secrets that the file names by *_file (kek_file,
// dsn_file, token_file, bind_password_file, fraud_webhook.secret_file, the
// RADIUS clients' secret_file, web.captcha.secret_file and the OIDC
// clients' secret_file) into their value keys, the OIDC clients'
// jwks_file into JWKS, the SAML service providers' metadata_file into
// Metadata, and app.attestation_roots into AttestationRootCerts.
type resolver struct {
	c    *Config
	read func(string) ([]byte, error)
	errs []*Error
	// files lists the secret files read, for the permission warning.
	files []secretFile
}

// secretFile is a *_file secret that was read: its key path and name.
type secretFile struct {
	path, file string
}

func (r *resolver) secrets() {
	f := &r.c.File
	r.secret("keys.kek", &f.Keys.KEK, "keys.kek_file", f.Keys.KEKFile)
	r.secret("storage.postgres.dsn", &f.Storage.Postgres.DSN, "storage.postgres.dsn_file", f.Storage.Postgres.DSNFile)
	r.secret("http.admin_api.token", &f.HTTP.AdminAPI.Token, "http.admin_api.token_file", f.HTTP.AdminAPI.TokenFile)
	w := &f.Push.FraudWebhook
	r.secret("push.fraud_webhook.secret", &w.Secret, "push.fraud_webhook.secret_file", w.SecretFile)
	for i := range f.Radius.Clients {
		c := &f.Radius.Clients[i]
		p := fmt.Sprintf("radius.clients[%d].", i)
		r.secret(p+"secret", &c.Secret, p+"secret_file", c.SecretFile)
	}
	wc := &f.Web.Captcha
	r.secret("web.captcha.secret", &wc.Secret, "web.captcha.secret_file", wc.SecretFile)
	for i := range f.OIDC.Clients {
		c := &f.OIDC.Clients[i]
		p := fmt.Sprintf("oidc.clients[%d].", i)
		r.secret(p+"secret", &c.Secret, p+"secret_file", c.SecretFile)
		r.jwks(p+"jwks_file", c)
	}
	r.attestationRoots()
	for i := range f.SAML.ServiceProviders {
		r.samlMetadata(fmt.Sprintf("saml.service_providers[%d].metadata_file", i), &f.SAML.ServiceProviders[i])
	}
	for i, d := range f.Directory {
		if d.LDAP == nil {
			continue
		}
		p := fmt.Sprintf("directories[%d].ldap.", i)
		if r.secret(p+"bind_password", &d.LDAP.BindPassword, p+"bind_password_file", d.LDAP.BindPasswordFile) {
			// Resolved: ldap.Config holds the password itself, and its
			// Validate rejects a password together with a file.
			d.LDAP.BindPasswordFile = ""
		}
	}
}

// secret resolves one value/_file pair: at most one may be set; a file must
// be readable and not empty (one trailing newline is trimmed); a value
// written in the file (usually as ${ENV}) must not be empty. It reports
// whether it read the file into value.
func (r *resolver) secret(valuePath string, value *string, filePath, file string) (fromFile bool) {
	c := r.c
	switch {
	case c.has(valuePath) && c.has(filePath):
		r.errs = append(r.errs, c.newError(filePath, "set either %s or %s, not both", lastKey(valuePath), lastKey(filePath)))
	case file != "":
		b, err := r.read(file)
		if err != nil {
			r.errs = append(r.errs, c.newError(filePath, "cannot read %s: %v", c.showFile(filePath, file), fileError(err)))
			return false
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if strings.TrimSpace(s) == "" {
			r.errs = append(r.errs, c.newError(filePath, "file %s is empty", c.showFile(filePath, file)))
			return false
		}
		*value = s
		r.files = append(r.files, secretFile{path: filePath, file: file})
		return true
	case c.has(valuePath) && *value == "":
		r.errs = append(r.errs, c.newError(valuePath, "is empty (an environment variable set to the empty string?)"))
	case c.has(filePath):
		r.errs = append(r.errs, c.newError(filePath, "is empty"))
	}
	return false
}

// lastKey is the last element of a path.
func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}
