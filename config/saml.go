package config

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SAML is the SAML 2.0 identity provider, for web applications (service
// providers) that sign their users in with SAML (Web Browser SSO profile,
// HTTP-Redirect and HTTP-POST bindings). It is on when service_providers
// are configured. Its entity id, which is also the URL of its metadata, is
// the public base_url with /saml/metadata appended (see File.SAMLEntityID);
// single sign-on is at base_url/saml/sso and single logout at
// base_url/saml/slo.
type SAML struct {
	// AssertionLifetime is how long an assertion is valid after it is
	// issued (its NotOnOrAfter): from 1m to 30m. Default 5m.
	AssertionLifetime time.Duration `yaml:"assertion_lifetime"`
	// ClockSkew is how far the IssueInstant of a request may be from the
	// bridge's clock: from 0 to 5m. Default 90s.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// SignatureAlgorithm is how responses and assertions are signed, with
	// an RSA key of keys.rsa_bits: rsa-sha256 (default) or rsa-sha512; or
	// with a P-256 key: ecdsa-sha256 (for SPs that take it).
	SignatureAlgorithm string `yaml:"signature_algorithm"`
	// ServiceProviders are the applications allowed to sign users in.
	ServiceProviders []SAMLServiceProvider `yaml:"service_providers"`
}

// SAMLServiceProvider is one application (service provider).
type SAMLServiceProvider struct {
	// Name is required and unique, matching ^[a-z0-9][a-z0-9_-]*$ (like
	// the names of RADIUS clients). It is the application id of the logins
	// (push requests, audit).
	Name string `yaml:"name"`
	// DisplayName is shown on the sign-in page and on the phone: at most
	// 128 bytes, without control characters. Default the name.
	DisplayName string `yaml:"display_name"`
	// MetadataFile is the service provider's SAML metadata: an XML file
	// with an EntityDescriptor root, which names its entityID, its
	// AssertionConsumerService URLs and its certificates. Set exactly one
	// of metadata_file and metadata_url. After Load Metadata holds the
	// bytes read from metadata_file.
	MetadataFile string `yaml:"metadata_file"`
	Metadata     []byte `yaml:"-"`
	// MetadataURL is where the service provider publishes its metadata,
	// fetched at start and then every metadata_refresh: https://, or
	// http:// only to a loopback host (127.0.0.0/8, [::1], localhost;
	// logged as a warning).
	MetadataURL string `yaml:"metadata_url"`
	// MetadataRefresh is how often metadata_url is fetched again, only with
	// metadata_url: from 1m to 168h. Default 24h.
	MetadataRefresh time.Duration `yaml:"metadata_refresh"`
	// Directory is the first-factor directory: the name of one in
	// directories. Default the first directory of the file ("local" when
	// there are none).
	Directory string `yaml:"directory"`
	// NumberMatching makes the user type the number shown on the sign-in
	// page on the phone. Default true; false is logged as a warning.
	NumberMatching bool `yaml:"number_matching"`
	// DeviceKeys is which enrolled devices may approve sign-ins here: any
	// (default), hardware (not a software key: the web app without a
	// passkey, a terminal authenticator) or attested (only passkeys whose
	// attestation chained to a trusted root at enrollment, see
	// app.attestation_roots; the web app then asks for attestation).
	// Hardware and attested also refuse one-time codes, and browser
	// sessions that a qualifying device did not approve.
	DeviceKeys string `yaml:"device_keys"`
	// SessionReuse lets a browser session (web.session_lifetime) satisfy a
	// new login to this service provider without a push. Default true.
	SessionReuse bool `yaml:"session_reuse"`
	// NameIDFormat is the form of the NameID of the assertions: persistent
	// (default: an opaque id of the user, stable for this service
	// provider), emailAddress, transient (new at every login) or
	// unspecified (the user name).
	NameIDFormat string `yaml:"name_id_format"`
	// SignResponse signs the whole response, SignAssertion the assertion
	// in it. Both default true; at least one must be.
	SignResponse  bool `yaml:"sign_response"`
	SignAssertion bool `yaml:"sign_assertion"`
	// EncryptAssertion encrypts the assertion to the encryption certificate
	// of the service provider's metadata. Default false.
	EncryptAssertion bool `yaml:"encrypt_assertion"`
	// RequireSignedRequests refuses authentication and logout requests
	// that the service provider has not signed. Default false; requests
	// must be signed anyway when its metadata says
	// AuthnRequestsSigned="true".
	RequireSignedRequests bool `yaml:"require_signed_requests"`
	// AllowIDPInitiated lets a sign-in start at the bridge
	// (base_url/saml/idp/NAME, a link on an intranet page) and end in an
	// unsolicited Response to the service provider. Default false: any
	// web page could send a browser there and sign it in to the SP, so
	// turn it on only for SPs that need it.
	AllowIDPInitiated bool `yaml:"allow_idp_initiated"`
	// AssertionLifetime is saml.assertion_lifetime for this service
	// provider: from 1m to 30m. Default saml.assertion_lifetime.
	AssertionLifetime time.Duration `yaml:"assertion_lifetime"`
	// Attributes are the attributes of the assertions. Default email
	// (from email), displayName (from name), groups (from groups) and uid
	// (from username), each with name_format basic; [] sends none.
	Attributes []SAMLAttribute `yaml:"attributes"`
}

// SAMLAttribute is one attribute of the assertions.
type SAMLAttribute struct {
	// Name is the attribute's name as sent: required, at most 256 bytes,
	// without control characters; with name_format uri a URI such as
	// urn:oid:0.9.2342.19200300.100.1.3. Unique per service provider.
	Name string `yaml:"name"`
	// From is what the attribute holds: username, email, name (the display
	// name), groups (one value per group), or value (the fixed value
	// below). Required.
	From string `yaml:"from"`
	// Value is the fixed value of from: value, and only then.
	Value string `yaml:"value"`
	// NameFormat is the attribute's NameFormat: basic (default), uri or
	// unspecified.
	NameFormat string `yaml:"name_format"`
}

// Enabled reports whether the SAML identity provider is on: when service
// providers are configured.
func (s SAML) Enabled() bool { return len(s.ServiceProviders) > 0 }

// SAMLEntityID is the SAML identity provider's entity id and the URL of its
// metadata: the public base_url with /saml/metadata appended.
func (f *File) SAMLEntityID() string { return f.HTTP.Public.BaseURL + "/saml/metadata" }

// SAMLSSOURL is the SAML identity provider's single sign-on endpoint.
func (f *File) SAMLSSOURL() string { return f.HTTP.Public.BaseURL + "/saml/sso" }

// SAMLSLOURL is the SAML identity provider's single logout endpoint.
func (f *File) SAMLSLOURL() string { return f.HTTP.Public.BaseURL + "/saml/slo" }

// The values of the saml keys, in the order of messages.
var (
	samlSignatureAlgorithms = []string{"rsa-sha256", "rsa-sha512", "ecdsa-sha256"}
	samlNameIDFormats       = []string{"persistent", "emailAddress", "transient", "unspecified"}
	samlAttributeSources    = []string{"username", "email", "name", "groups", "value"}
	samlNameFormats         = []string{"basic", "uri", "unspecified"}
)

// samlMetadataNS is the namespace of SAML 2.0 metadata.
const samlMetadataNS = "urn:oasis:names:tc:SAML:2.0:metadata"

// maxSAMLAttributeName bounds an attribute's name, in bytes.
const maxSAMLAttributeName = 256

// Default values of the saml section.
const (
	defaultSAMLAssertionLifetime = 5 * time.Minute
	defaultSAMLMetadataRefresh   = 24 * time.Hour
)

// defaultSAMLAttributes are the attributes of a service provider that
// leaves attributes out.
func defaultSAMLAttributes() []SAMLAttribute {
	return []SAMLAttribute{
		{Name: "email", From: "email", NameFormat: "basic"},
		{Name: "displayName", From: "name", NameFormat: "basic"},
		{Name: "groups", From: "groups", NameFormat: "basic"},
		{Name: "uid", From: "username", NameFormat: "basic"},
	}
}

// saml checks the saml section.
func (v *validator) saml() {
	s := &v.c.SAML
	if len(s.ServiceProviders) == 0 && v.c.hasUnder("saml") {
		v.errorf("saml.service_providers", "no service providers, which leaves the SAML identity provider off: "+
			"add service_providers, or remove the other saml keys")
	}
	v.durationIn("saml.assertion_lifetime", s.AssertionLifetime, time.Minute, 30*time.Minute)
	v.durationIn("saml.clock_skew", s.ClockSkew, 0, 5*time.Minute)
	v.oneOf("saml.signature_algorithm", s.SignatureAlgorithm, samlSignatureAlgorithms...)
	names, entities := map[string]int{}, map[string]int{}
	for i := range s.ServiceProviders {
		v.samlServiceProvider(i, &s.ServiceProviders[i], names, entities)
	}
}

// samlServiceProvider checks service provider i; names and entities collect
// the names and metadata entityIDs of those before it, for duplicates.
func (v *validator) samlServiceProvider(i int, sp *SAMLServiceProvider, names, entities map[string]int) {
	p := fmt.Sprintf("saml.service_providers[%d]", i)
	switch np := p + ".name"; {
	case sp.Name == "":
		v.errorf(np, "required: a name for the application, such as wiki (its id in logs, audit and push requests)")
	case !directoryName.MatchString(sp.Name):
		v.errorf(np, "%s: use lower-case letters, digits, - and _, starting with a letter or digit", v.c.show(np, sp.Name))
	default:
		if j, dup := names[sp.Name]; dup {
			v.errorf(np, "duplicate service provider name %s (also saml.service_providers[%d])", v.c.showFile(np, sp.Name), j)
		} else {
			names[sp.Name] = i
		}
	}

	// A display name left out is the name, checked above.
	if dp := p + ".display_name"; sp.DisplayName == "" {
		if v.c.has(dp) {
			v.errorf(dp, "must not be empty (leave it out for the name)")
		}
	} else if err := checkAppName(sp.DisplayName); err != nil && (v.c.has(dp) || sp.DisplayName != sp.Name) {
		v.errorf(dp, "%s: %v", v.c.show(dp, sp.DisplayName), err)
	}

	v.samlMetadata(i, p, sp, entities)

	dp := p + ".directory"
	if sp.Directory == "" {
		if v.c.has(dp) {
			v.errorf(dp, "must not be empty (leave it out for the first directory)")
		}
	} else if !v.hasDirectory(sp.Directory) {
		v.errorf(dp, "no directory is named %s", v.c.show(dp, sp.Directory))
	}

	v.oneOf(p+".name_id_format", sp.NameIDFormat, samlNameIDFormats...)
	v.deviceKeys(p+".device_keys", sp.DeviceKeys)
	if !sp.SignResponse && !sp.SignAssertion {
		key := p + ".sign_assertion"
		if !v.c.has(key) {
			key = p + ".sign_response"
		}
		v.errorf(key, "sign_response and sign_assertion are both false: the service provider could not trust the assertion; "+
			"set at least one to true (the default signs both)")
	}
	// One left out is saml.assertion_lifetime, checked already.
	if ap := p + ".assertion_lifetime"; v.c.has(ap) || sp.AssertionLifetime != v.c.SAML.AssertionLifetime {
		v.durationIn(ap, sp.AssertionLifetime, time.Minute, 30*time.Minute)
	}

	ap := p + ".attributes"
	seen := map[string]int{}
	for j := range sp.Attributes {
		v.samlAttribute(fmt.Sprintf("%s[%d]", ap, j), j, &sp.Attributes[j], seen)
	}
}

// samlMetadata checks the metadata_file of service provider i (read into
// Metadata, or Metadata set in code), its metadata_url and
// metadata_refresh. An unreadable or empty metadata_file was reported
// when it was read.
func (v *validator) samlMetadata(i int, p string, sp *SAMLServiceProvider, entities map[string]int) {
	fk, uk, rk := p+".metadata_file", p+".metadata_url", p+".metadata_refresh"
	hasFile := sp.MetadataFile != "" || len(sp.Metadata) > 0 || v.c.has(fk)
	hasURL := sp.MetadataURL != "" || v.c.has(uk)
	switch {
	case hasFile && hasURL:
		v.errorf(uk, "set either metadata_file or metadata_url, not both")
	case !hasFile && !hasURL:
		v.errorf(fk, "required: the service provider's SAML metadata (an XML file with its EntityDescriptor), "+
			"or metadata_url where it publishes it")
	}

	if len(sp.Metadata) > 0 {
		shown := "the metadata"
		if sp.MetadataFile != "" {
			shown = v.c.showFile(fk, sp.MetadataFile)
		}
		id, err := samlEntityID(sp.Metadata)
		switch {
		case err != nil:
			v.errorf(fk, "%s: %v", shown, err)
		default:
			if j, dup := entities[id]; dup {
				v.errorf(fk, "%s: entityID %s is also that of saml.service_providers[%d]", shown, quote(id), j)
			} else {
				entities[id] = i
			}
		}
	}

	if sp.MetadataURL != "" {
		if err := checkMetadataURL(sp.MetadataURL); err != nil {
			v.errorf(uk, "%s: %v", v.c.show(uk, sp.MetadataURL), err)
		}
		v.durationIn(rk, sp.MetadataRefresh, time.Minute, 168*time.Hour)
	} else if v.c.has(uk) {
		v.errorf(uk, "must not be empty")
	} else if v.c.has(rk) || sp.MetadataRefresh != 0 {
		v.errorf(rk, "only with metadata_url")
	}
}

// samlAttribute checks attribute j of a service provider; seen collects
// the names before it, for duplicates.
func (v *validator) samlAttribute(p string, j int, a *SAMLAttribute, seen map[string]int) {
	np := p + ".name"
	switch {
	case a.Name == "":
		v.errorf(np, "required: the attribute's name as the service provider expects it, such as email")
	case len(a.Name) > maxSAMLAttributeName:
		v.errorf(np, "%s: is longer than %d bytes", v.c.show(np, a.Name), maxSAMLAttributeName)
	case !utf8.ValidString(a.Name) || strings.ContainsFunc(a.Name, unicode.IsControl):
		v.errorf(np, "%s: must be valid UTF-8 without control characters", v.c.show(np, a.Name))
	case a.NameFormat == "uri" && !isURI(a.Name):
		v.errorf(np, "%s: name_format uri needs a URI such as urn:oid:0.9.2342.19200300.100.1.3", v.c.show(np, a.Name))
	default:
		if k, dup := seen[a.Name]; dup {
			v.errorf(np, "duplicate attribute name %s (also %s[%d])", v.c.show(np, a.Name), parentPath(p), k)
		} else {
			seen[a.Name] = j
		}
	}
	fp := p + ".from"
	if a.From == "" {
		v.errorf(fp, "required: one of %s", strings.Join(samlAttributeSources, ", "))
	} else {
		v.oneOf(fp, a.From, samlAttributeSources...)
	}
	switch vp := p + ".value"; {
	case a.From == "value" && a.Value == "":
		v.errorf(vp, "required with from: value: the fixed value to send")
	case a.From != "value" && (a.Value != "" || v.c.has(vp)):
		v.errorf(vp, "only with from: value")
	}
	v.oneOf(p+".name_format", a.NameFormat, samlNameFormats...)
}

// isURI reports whether s is an absolute URI (a scheme, then something).
func isURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Opaque != "" || u.Host != "" || u.Path != "")
}

// checkMetadataURL checks a metadata_url: https://, or http:// to a
// loopback host. Its errors do not quote the URL: the caller does.
func checkMetadataURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute https:// URL such as https://sp.example.com/saml/metadata")
	}
	if u.User != nil || u.Fragment != "" {
		return errors.New("must not have credentials (user@) or a fragment (#...)")
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return errors.New("http:// is only allowed to a loopback host (127.0.0.1, [::1] or localhost); use https://")
	}
	return nil
}

// samlEntityID checks, lightly, that b is SAML metadata for one entity:
// well-formed XML with an EntityDescriptor root in the SAML 2.0 metadata
// namespace and a non-empty entityID, which it returns. The messages do
// not quote the document.
func samlEntityID(b []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return "", errors.New("holds no XML element: want the service provider's SAML metadata (an EntityDescriptor)")
		}
		if err != nil {
			return "", fmt.Errorf("not well-formed XML: %v", xmlError(err))
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case start.Name.Local == "EntitiesDescriptor" && start.Name.Space == samlMetadataNS:
			return "", errors.New("holds an EntitiesDescriptor (metadata of several entities): give the metadata of this one service provider")
		case start.Name.Local != "EntityDescriptor":
			return "", fmt.Errorf("the root element is %s: want an EntityDescriptor (SAML 2.0 metadata)", quote(start.Name.Local))
		case start.Name.Space != samlMetadataNS:
			return "", fmt.Errorf("the EntityDescriptor is not in the SAML 2.0 metadata namespace (%s)", samlMetadataNS)
		}
		var id string
		for _, a := range start.Attr {
			if a.Name.Space == "" && a.Name.Local == "entityID" {
				id = a.Value
			}
		}
		// The rest of the document must be well-formed too.
		if err := d.Skip(); err != nil {
			return "", fmt.Errorf("not well-formed XML: %v", xmlError(err))
		}
		if strings.TrimSpace(id) == "" {
			return "", errors.New("the EntityDescriptor has no entityID")
		}
		return id, nil
	}
}

// xmlError is an XML syntax error without its "XML syntax error on" prefix
// where it has one.
func xmlError(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("line %d: %s", se.Line, se.Msg)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of the document"
	}
	return err.Error()
}

// samlMetadata reads a service provider's metadata_file into Metadata
// (path is the metadata_file key); the validator checks what it holds.
func (r *resolver) samlMetadata(path string, sp *SAMLServiceProvider) {
	rc := r.c
	if sp.MetadataFile == "" {
		if rc.has(path) {
			r.errs = append(r.errs, rc.newError(path, "is empty"))
		}
		return
	}
	shown := rc.showFile(path, sp.MetadataFile)
	b, err := r.read(sp.MetadataFile)
	if err != nil {
		r.errs = append(r.errs, rc.newError(path, "cannot read %s: %v", shown, fileError(err)))
		return
	}
	if len(bytes.TrimSpace(b)) == 0 {
		r.errs = append(r.errs, rc.newError(path, "file %s is empty", shown))
		return
	}
	sp.Metadata = b
}

// samlWarnings adds the warnings of the saml section.
func (c *Config) samlWarnings(warn func(string, string, ...any)) {
	for i, sp := range c.SAML.ServiceProviders {
		p := fmt.Sprintf("saml.service_providers[%d]", i)
		name := c.show(p+".name", sp.Name)
		if u, err := url.Parse(sp.MetadataURL); err == nil && u.Scheme == "http" {
			warn(p+".metadata_url", "service provider %s: plain HTTP: its metadata (certificates, assertion consumer URLs) "+
				"could be changed on the way; use https:// outside tests", name)
		}
		if !sp.NumberMatching {
			warn(p+".number_matching", "service provider %s: false: a user who approves every push lets in anyone who has the password "+
				"(push fatigue); the default is true", name)
		}
	}
}
