package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testSPMetadata is a valid service provider's metadata.
const testSPMetadata = `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.com/saml/metadata">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example.com/saml/acs" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
`

// samlSP is a saml section with one valid service provider: extra keys for
// it on line 3 of the section (line 8 after trial), then metadata_file
// sp.xml unless extra has metadata_file or metadata_url.
func samlSP(extra string) string {
	s := "saml:\n  service_providers:\n    - name: wiki\n" + extra
	if !strings.Contains(extra, "      metadata_file:") && !strings.Contains(extra, "      metadata_url:") {
		s += "      metadata_file: sp.xml\n"
	}
	return s
}

// samlDir is a directory with sp.xml, a valid metadata file.
func samlDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "sp.xml", testSPMetadata)
	return dir
}

func TestSAMLDefaults(t *testing.T) {
	c := mustParse(t, trial(""))
	if s := c.SAML; s.Enabled() || s.AssertionLifetime != 5*time.Minute || s.ClockSkew != 90*time.Second || s.SignatureAlgorithm != "rsa-sha256" {
		t.Errorf("saml %+v", s)
	}

	dir := samlDir(t)
	c, err := parseString(t, trial(samlSP("")), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := SAMLServiceProvider{
		Name: "wiki", DisplayName: "wiki", MetadataFile: filepath.Join(dir, "sp.xml"), Metadata: []byte(testSPMetadata),
		Directory: "local", NumberMatching: true, DeviceKeys: DeviceKeysAny, SessionReuse: true, NameIDFormat: "persistent",
		SignResponse: true, SignAssertion: true, EncryptAssertion: false, RequireSignedRequests: false,
		AssertionLifetime: 5 * time.Minute,
		Attributes: []SAMLAttribute{
			{Name: "email", From: "email", NameFormat: "basic"},
			{Name: "displayName", From: "name", NameFormat: "basic"},
			{Name: "groups", From: "groups", NameFormat: "basic"},
			{Name: "uid", From: "username", NameFormat: "basic"},
		},
	}
	if !c.SAML.Enabled() || !reflect.DeepEqual(c.SAML.ServiceProviders[0], want) {
		t.Errorf("service provider defaults:\n got %+v\nwant %+v", c.SAML.ServiceProviders, want)
	}

	tests := []struct {
		name  string
		src   string
		check func(sp *SAMLServiceProvider) bool
	}{
		{"display_name", samlSP("      display_name: The Wiki\n"), func(sp *SAMLServiceProvider) bool { return sp.DisplayName == "The Wiki" }},
		{"metadata_url", samlSP("      metadata_url: https://wiki.example.com/saml/metadata\n"), func(sp *SAMLServiceProvider) bool {
			return sp.MetadataRefresh == 24*time.Hour && sp.MetadataFile == "" && sp.Metadata == nil
		}},
		{"metadata_refresh", samlSP("      metadata_url: https://wiki.example.com/saml/metadata\n      metadata_refresh: 1h\n"),
			func(sp *SAMLServiceProvider) bool { return sp.MetadataRefresh == time.Hour }},
		{"no metadata_refresh with metadata_file", samlSP(""), func(sp *SAMLServiceProvider) bool { return sp.MetadataRefresh == 0 }},
		{"number_matching off", samlSP("      number_matching: false\n"), func(sp *SAMLServiceProvider) bool { return !sp.NumberMatching }},
		{"session_reuse off", samlSP("      session_reuse: false\n"), func(sp *SAMLServiceProvider) bool { return !sp.SessionReuse && sp.NumberMatching }},
		{"number_matching empty value", samlSP("      number_matching:\n"), func(sp *SAMLServiceProvider) bool { return sp.NumberMatching }},
		{"sign_response off", samlSP("      sign_response: false\n"), func(sp *SAMLServiceProvider) bool { return !sp.SignResponse && sp.SignAssertion }},
		{"sign_assertion off", samlSP("      sign_assertion: false\n"), func(sp *SAMLServiceProvider) bool { return sp.SignResponse && !sp.SignAssertion }},
		{"encrypt_assertion", samlSP("      encrypt_assertion: true\n"), func(sp *SAMLServiceProvider) bool { return sp.EncryptAssertion }},
		{"require_signed_requests", samlSP("      require_signed_requests: true\n"), func(sp *SAMLServiceProvider) bool { return sp.RequireSignedRequests }},
		{"first directory", "directories:\n  - {name: corp, type: local}\n  - {name: other, type: local}\n" + samlSP(""),
			func(sp *SAMLServiceProvider) bool { return sp.Directory == "corp" }},
		{"assertion_lifetime from saml", "saml:\n  assertion_lifetime: 10m\n" + samlSP("")[len("saml:\n"):],
			func(sp *SAMLServiceProvider) bool { return sp.AssertionLifetime == 10*time.Minute }},
		{"assertion_lifetime of the service provider", "saml:\n  assertion_lifetime: 10m\n" + samlSP("      assertion_lifetime: 1m\n")[len("saml:\n"):],
			func(sp *SAMLServiceProvider) bool { return sp.AssertionLifetime == time.Minute }},
		{"attributes", samlSP("      attributes:\n        - {name: mail, from: email}\n"), func(sp *SAMLServiceProvider) bool {
			return reflect.DeepEqual(sp.Attributes, []SAMLAttribute{{Name: "mail", From: "email", NameFormat: "basic"}})
		}},
		{"no attributes", samlSP("      attributes: []\n"), func(sp *SAMLServiceProvider) bool { return len(sp.Attributes) == 0 }},
		{"attributes empty value", samlSP("      attributes:\n"), func(sp *SAMLServiceProvider) bool { return len(sp.Attributes) == 4 }},
	}
	for _, tt := range tests {
		c, err := parseString(t, trial(tt.src), dir, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !tt.check(&c.SAML.ServiceProviders[0]) {
			t.Errorf("%s: service provider %+v", tt.name, c.SAML.ServiceProviders[0])
		}
	}
}

func TestSAMLEndpoints(t *testing.T) {
	c := mustParse(t, "dev_mode: true\nhttp:\n  public:\n    base_url: https://mfa.example.com/bridge/\n    allow_plain_http: true\n")
	for got, want := range map[string]string{
		c.SAMLEntityID(): "https://mfa.example.com/bridge/saml/metadata",
		c.SAMLSSOURL():   "https://mfa.example.com/bridge/saml/sso",
		c.SAMLSLOURL():   "https://mfa.example.com/bridge/saml/slo",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestSAMLValidate(t *testing.T) {
	sp := func(extra string) string { return samlSP(extra)[len("saml:\n"):] }
	attr := func(a string) string { return samlSP("      attributes:\n        - " + a + "\n") }
	tests := []struct {
		name string
		src  string // completed by trial
		want string // "" means valid
	}{
		{"empty section", "saml:\n", ""},
		{"keys without service providers", "saml:\n  clock_skew: 1m\n",
			"bridge.yaml:5: saml.service_providers: no service providers, which leaves the SAML identity provider off: add service_providers, or remove the other saml keys"},
		{"empty service providers", "saml:\n  service_providers: []\n", "saml.service_providers: no service providers"},
		{"assertion_lifetime short", "saml:\n  assertion_lifetime: 59s\n" + sp(""), "bridge.yaml:6: saml.assertion_lifetime: must be from 1m to 30m, got 59s"},
		{"assertion_lifetime long", "saml:\n  assertion_lifetime: 31m\n" + sp(""), "saml.assertion_lifetime: must be from 1m to 30m, got 31m0s"},
		{"assertion_lifetime bounds", "saml:\n  assertion_lifetime: 30m\n" + sp("      assertion_lifetime: 1m\n"), ""},
		{"clock_skew 0", "saml:\n  clock_skew: 0s\n" + sp(""), ""},
		{"clock_skew long", "saml:\n  clock_skew: 5m1s\n" + sp(""), "bridge.yaml:6: saml.clock_skew: must be from 0s to 5m, got 5m1s"},
		{"clock_skew negative", "saml:\n  clock_skew: -1s\n" + sp(""), "saml.clock_skew: must be from 0s to 5m, got -1s"},
		{"signature_algorithm", "saml:\n  signature_algorithm: rsa-sha1\n" + sp(""),
			`bridge.yaml:6: saml.signature_algorithm: unknown value "rsa-sha1" (use rsa-sha256, rsa-sha512, ecdsa-sha256)`},
		{"signature_algorithm rsa-sha512", "saml:\n  signature_algorithm: rsa-sha512\n" + sp(""), ""},

		{"name required", "saml:\n  service_providers:\n    - metadata_file: sp.xml\n",
			"bridge.yaml:7: saml.service_providers[0].name: required: a name for the application"},
		{"name form", "saml:\n  service_providers:\n    - name: Wiki\n      metadata_file: sp.xml\n",
			`bridge.yaml:7: saml.service_providers[0].name: "Wiki": use lower-case letters, digits, - and _, starting with a letter or digit`},
		{"name duplicate", samlSP("") + "    - name: wiki\n      metadata_url: https://b.example.com/md\n",
			`bridge.yaml:9: saml.service_providers[1].name: duplicate service provider name "wiki" (also saml.service_providers[0])`},
		{"display_name empty", samlSP("      display_name: ''\n"), "bridge.yaml:8: saml.service_providers[0].display_name: must not be empty (leave it out for the name)"},
		{"display_name control", samlSP("      display_name: \"Wiki\\nApprove\"\n"),
			`saml.service_providers[0].display_name: "Wiki\nApprove": must not contain control characters`},
		{"display_name long", samlSP("      display_name: " + strings.Repeat("x", 129) + "\n"), "saml.service_providers[0].display_name: \"xxxx"},
		{"display_name unicode", samlSP("      display_name: Café Wiki ✓\n"), ""},

		{"metadata required", "saml:\n  service_providers:\n    - name: wiki\n",
			"bridge.yaml:7: saml.service_providers[0].metadata_file: required: the service provider's SAML metadata"},
		{"metadata both", samlSP("      metadata_file: sp.xml\n      metadata_url: https://wiki.example.com/md\n"),
			"bridge.yaml:9: saml.service_providers[0].metadata_url: set either metadata_file or metadata_url, not both"},
		{"metadata_file empty", samlSP("      metadata_file:\n"), "bridge.yaml:8: saml.service_providers[0].metadata_file: is empty"},
		{"metadata_url http", samlSP("      metadata_url: http://wiki.example.com/md\n"),
			`bridge.yaml:8: saml.service_providers[0].metadata_url: "http://wiki.example.com/md": http:// is only allowed to a loopback host`},
		{"metadata_url http loopback", samlSP("      metadata_url: http://127.0.0.1:8000/md\n"), ""},
		{"metadata_url relative", samlSP("      metadata_url: /md\n"), `"/md": must be an absolute https:// URL`},
		{"metadata_url ftp", samlSP("      metadata_url: ftp://wiki.example.com/md\n"), "must be an absolute https:// URL"},
		{"metadata_url credentials", samlSP("      metadata_url: https://me:pw@wiki.example.com/md\n"), "must not have credentials"},
		{"metadata_url empty", samlSP("      metadata_url: ''\n"), "bridge.yaml:8: saml.service_providers[0].metadata_url: must not be empty"},
		{"metadata_refresh short", samlSP("      metadata_url: https://wiki.example.com/md\n      metadata_refresh: 59s\n"),
			"bridge.yaml:9: saml.service_providers[0].metadata_refresh: must be from 1m to 168h, got 59s"},
		{"metadata_refresh long", samlSP("      metadata_url: https://wiki.example.com/md\n      metadata_refresh: 169h\n"),
			"saml.service_providers[0].metadata_refresh: must be from 1m to 168h, got 169h0m0s"},
		{"metadata_refresh with metadata_file", samlSP("      metadata_refresh: 1h\n"),
			"bridge.yaml:8: saml.service_providers[0].metadata_refresh: only with metadata_url"},
		{"entityID duplicate", samlSP("") + "    - name: other\n      metadata_file: sp.xml\n",
			`bridge.yaml:10: saml.service_providers[1].metadata_file: "` + "DIR" + `/sp.xml": entityID "https://sp.example.com/saml/metadata" is also that of saml.service_providers[0]`},

		{"directory", "directories:\n  - {name: corp, type: local}\n" + samlSP("      directory: corp\n"), ""},
		{"directory unknown", samlSP("      directory: corp\n"), `bridge.yaml:8: saml.service_providers[0].directory: no directory is named "corp"`},
		{"directory empty", samlSP("      directory: ''\n"), "saml.service_providers[0].directory: must not be empty (leave it out for the first directory)"},

		{"name_id_format", samlSP("      name_id_format: email\n"),
			`bridge.yaml:8: saml.service_providers[0].name_id_format: unknown value "email" (use persistent, emailAddress, transient, unspecified)`},
		{"name_id_format transient", samlSP("      name_id_format: transient\n"), ""},
		{"unsigned", samlSP("      sign_response: false\n      sign_assertion: false\n"),
			"bridge.yaml:9: saml.service_providers[0].sign_assertion: sign_response and sign_assertion are both false"},
		{"unsigned response", samlSP("      sign_assertion: false\n      sign_response: false\n"),
			"bridge.yaml:8: saml.service_providers[0].sign_assertion: sign_response and sign_assertion are both false"},
		{"response signed only", samlSP("      sign_assertion: false\n"), ""},
		{"assertion_lifetime", samlSP("      assertion_lifetime: 31m\n"),
			"bridge.yaml:8: saml.service_providers[0].assertion_lifetime: must be from 1m to 30m, got 31m0s"},

		{"attribute name required", attr("{from: email}"), "bridge.yaml:9: saml.service_providers[0].attributes[0].name: required"},
		{"attribute name long", attr("{name: " + strings.Repeat("a", 257) + ", from: email}"), "attributes[0].name: \"aaaa"},
		{"attribute name 256", attr("{name: " + strings.Repeat("a", 256) + ", from: email}"), ""},
		{"attribute name control", attr("{name: \"a\\tb\", from: email}"), "must be valid UTF-8 without control characters"},
		{"attribute name uri", attr("{name: mail, from: email, name_format: uri}"),
			`bridge.yaml:9: saml.service_providers[0].attributes[0].name: "mail": name_format uri needs a URI such as urn:oid:0.9.2342.19200300.100.1.3`},
		{"attribute name urn", attr("{name: 'urn:oid:0.9.2342.19200300.100.1.3', from: email, name_format: uri}"), ""},
		{"attribute duplicate", samlSP("      attributes:\n        - {name: mail, from: email}\n        - {name: mail, from: username}\n"),
			`bridge.yaml:10: saml.service_providers[0].attributes[1].name: duplicate attribute name "mail" (also saml.service_providers[0].attributes[0])`},
		{"attribute from required", attr("{name: mail}"),
			"bridge.yaml:9: saml.service_providers[0].attributes[0].from: required: one of username, email, name, groups, value"},
		{"attribute from", attr("{name: mail, from: mail}"),
			`saml.service_providers[0].attributes[0].from: unknown value "mail" (use username, email, name, groups, value)`},
		{"attribute value", attr("{name: dept, from: value, value: IT}"), ""},
		{"attribute value required", attr("{name: dept, from: value}"),
			"bridge.yaml:9: saml.service_providers[0].attributes[0].value: required with from: value"},
		{"attribute value only with from value", attr("{name: dept, from: email, value: IT}"),
			"bridge.yaml:9: saml.service_providers[0].attributes[0].value: only with from: value"},
		{"attribute name_format", attr("{name: mail, from: email, name_format: URI}"),
			`saml.service_providers[0].attributes[0].name_format: unknown value "URI" (use basic, uri, unspecified)`},
	}
	dir := samlDir(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(tt.src), dir, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v\nconfig:\n%s", err, trial(tt.src))
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("Validate after Parse: %v", err)
				}
				return
			}
			wantErr(t, err, strings.ReplaceAll(tt.want, "DIR", dir))
			if err != nil && strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("want exactly one problem, got:\n%v", err)
			}
		})
	}
}

// TestSAMLMetadata checks metadata_file: it is read into Metadata, and
// must be SAML metadata of one entity.
func TestSAMLMetadata(t *testing.T) {
	const ns = `xmlns="urn:oasis:names:tc:SAML:2.0:metadata"`
	tests := []struct {
		name, xml string
		want      string // an error; "" means success
	}{
		{name: "prefixed", xml: testSPMetadata},
		{name: "default namespace", xml: `<!-- an SP --><EntityDescriptor ` + ns + ` entityID="urn:sp"><SPSSODescriptor/></EntityDescriptor>`},
		{name: "not XML", xml: "entityID: x\n", want: "holds no XML element: want the service provider's SAML metadata (an EntityDescriptor)"},
		{name: "JSON", xml: `{"entityID": "x"}`, want: "holds no XML element"},
		{name: "broken", xml: `<EntityDescriptor ` + ns + ` entityID="x"><SPSSODescriptor></EntityDescriptor>`,
			want: "not well-formed XML: line 1: element <SPSSODescriptor> closed by </EntityDescriptor>"},
		{name: "truncated", xml: `<EntityDescriptor ` + ns + ` entityID="x"><SPSSODescriptor>`, want: "not well-formed XML: "},
		{name: "other root", xml: `<html><body/></html>`, want: `the root element is "html": want an EntityDescriptor (SAML 2.0 metadata)`},
		{name: "no namespace", xml: `<EntityDescriptor entityID="x"/>`,
			want: "the EntityDescriptor is not in the SAML 2.0 metadata namespace (urn:oasis:names:tc:SAML:2.0:metadata)"},
		{name: "aggregate", xml: `<EntitiesDescriptor ` + ns + `><EntityDescriptor entityID="x"/></EntitiesDescriptor>`,
			want: "holds an EntitiesDescriptor (metadata of several entities): give the metadata of this one service provider"},
		{name: "no entityID", xml: `<EntityDescriptor ` + ns + `/>`, want: "the EntityDescriptor has no entityID"},
		{name: "blank entityID", xml: `<EntityDescriptor ` + ns + ` entityID=" "/>`, want: "the EntityDescriptor has no entityID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := writeFile(t, dir, "sp.xml", tt.xml)
			c, err := parseString(t, trial(samlSP("")), dir, nil)
			if tt.want != "" {
				wantErr(t, err, `bridge.yaml:8: saml.service_providers[0].metadata_file: "`+file+`": `+tt.want)
				if err != nil && strings.Count(err.Error(), "\n") != 0 {
					t.Errorf("want exactly one problem, got:\n%v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(c.SAML.ServiceProviders[0].Metadata); got != tt.xml {
				t.Errorf("Metadata %q", got)
			}
		})
	}

	dir := t.TempDir()
	writeFile(t, dir, "empty.xml", " \n")
	for _, tt := range []struct{ file, want string }{
		{"missing.xml", `bridge.yaml:8: saml.service_providers[0].metadata_file: cannot read "` + filepath.Join(dir, "missing.xml") + `": no such file or directory`},
		{"empty.xml", `bridge.yaml:8: saml.service_providers[0].metadata_file: file "` + filepath.Join(dir, "empty.xml") + `" is empty`},
	} {
		_, err := parseString(t, trial(samlSP("      metadata_file: "+tt.file+"\n")), dir, nil)
		wantErr(t, err, tt.want)
		if err != nil && strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("want exactly one problem, got:\n%v", err)
		}
	}

	// A config built in code may set Metadata instead of metadata_file.
	c := mustParse(t, trial(""))
	c.SAML.ServiceProviders = []SAMLServiceProvider{{Name: "wiki", DisplayName: "Wiki", Directory: "local", NumberMatching: true,
		NameIDFormat: "persistent", SignAssertion: true, AssertionLifetime: c.SAML.AssertionLifetime}}
	s := &c.SAML.ServiceProviders[0]
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "metadata_file: required") {
		t.Errorf("Validate without metadata: %v", err)
	}
	s.Metadata = []byte(testSPMetadata)
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with Metadata set in code: %v", err)
	}
	s.Metadata = []byte("<x/>")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `metadata_file: the metadata: the root element is "x"`) {
		t.Errorf("Validate with bad Metadata: %v", err)
	}
}

func TestSAMLAllProblemsAtOnce(t *testing.T) {
	dir := samlDir(t)
	src := trial("saml:\n  clock_skew: 1h\n  service_providers:\n" +
		"    - name: A\n      metadata_refresh: 1h\n      directory: nope\n      sign_response: false\n      sign_assertion: false\n" +
		"      attributes:\n        - {name: x, from: y}\n")
	_, err := parseString(t, src, dir, nil)
	wantErr(t, err,
		"bridge.yaml:6: saml.clock_skew:",
		"bridge.yaml:8: saml.service_providers[0].name:",
		"saml.service_providers[0].metadata_file: required",
		"bridge.yaml:9: saml.service_providers[0].metadata_refresh:",
		"bridge.yaml:10: saml.service_providers[0].directory:",
		"bridge.yaml:12: saml.service_providers[0].sign_assertion:",
		"bridge.yaml:14: saml.service_providers[0].attributes[0].from:")
}

func TestSAMLWarnings(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // substring of the one warning besides dev_mode; "" means none
	}{
		{"defaults", samlSP(""), ""},
		{"https metadata_url", samlSP("      metadata_url: https://wiki.example.com/md\n"), ""},
		{"http loopback metadata_url", samlSP("      metadata_url: http://localhost:8000/md\n"),
			`bridge.yaml:8: saml.service_providers[0].metadata_url: service provider "wiki": plain HTTP: its metadata`},
		{"not encrypted, unsigned requests", samlSP("      encrypt_assertion: false\n      require_signed_requests: false\n"), ""},
		{"response unsigned", samlSP("      sign_response: false\n"), ""},
		{"session_reuse off", samlSP("      session_reuse: false\n"), ""},
		{"number_matching off", samlSP("      number_matching: false\n"),
			`bridge.yaml:8: saml.service_providers[0].number_matching: service provider "wiki": false: a user who approves every push lets in anyone who has the password (push fatigue)`},
	}
	dir := samlDir(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(tt.src), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			var others []string
			for _, w := range c.Warnings {
				if !strings.Contains(w, "dev_mode") {
					others = append(others, w)
				}
			}
			switch {
			case tt.want == "" && len(others) != 0:
				t.Errorf("warnings: %q", others)
			case tt.want != "" && (len(others) != 1 || !strings.HasPrefix(others[0], tt.want)):
				t.Errorf("warnings %q, want one starting with %q", others, tt.want)
			}
		})
	}
}

// TestSAMLGoodMetadata checks the entityID of testdata/good/sp-metadata.xml,
// which full.yaml uses.
func TestSAMLGoodMetadata(t *testing.T) {
	b, err := os.ReadFile("testdata/good/sp-metadata.xml")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := samlEntityID(b); err != nil || id != "https://sp.example.com/saml/metadata" {
		t.Errorf("entityID %q, %v", id, err)
	}
}

// TestExampleSAML uncomments the SAML example in examples/bridge.yaml and
// checks that it is valid, with its metadata file moved to a test file,
// and that the values it shows are the defaults.
func TestExampleSAML(t *testing.T) {
	const metadataFile = "/etc/bridge/saml/helpdesk.xml"
	data := uncommentExample(t, "SAML")
	if !strings.Contains(string(data), "\nsaml:\n") || !strings.Contains(string(data), metadataFile) {
		t.Fatalf("no saml section with metadata_file %s in the uncommented example:\n%s", metadataFile, data)
	}
	file := writeFile(t, t.TempDir(), "helpdesk.xml", testSPMetadata)
	data = []byte(strings.ReplaceAll(string(data), metadataFile, file))
	abs, _ := filepath.Abs("../examples")
	c, err := Parse(data, "bridge.yaml", abs, envOf(nil))
	if err != nil {
		t.Fatalf("the SAML example does not load:\n%v\n%s", err, data)
	}
	s := c.SAML
	if !s.Enabled() || len(s.ServiceProviders) != 2 {
		t.Fatalf("saml %+v", s)
	}
	dir := samlDir(t)
	def, err := parseString(t, trial(samlSP("")), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	top := func(s SAML) SAML { s.ServiceProviders = nil; return s }
	if !reflect.DeepEqual(top(s), top(def.SAML)) {
		t.Errorf("the SAML example shows other values than the defaults:\n got %+v\nwant %+v", top(s), top(def.SAML))
	}
	helpdesk, crm := s.ServiceProviders[0], s.ServiceProviders[1]
	want := def.SAML.ServiceProviders[0]
	want.Name, want.DisplayName, want.MetadataFile = "helpdesk", "Help Desk", file
	if !reflect.DeepEqual(helpdesk, want) {
		t.Errorf("helpdesk:\n got %+v\nwant %+v", helpdesk, want)
	}
	want = def.SAML.ServiceProviders[0]
	want.Name, want.DisplayName, want.MetadataFile, want.Metadata = "crm", "crm", "", nil
	want.MetadataURL, want.MetadataRefresh = "https://crm.example.com/saml/metadata", 24*time.Hour
	if !reflect.DeepEqual(crm, want) {
		t.Errorf("crm:\n got %+v\nwant %+v", crm, want)
	}
	if got := c.SAMLEntityID(); got != "http://localhost:8080/saml/metadata" {
		t.Errorf("entity id %q", got)
	}
	if len(c.Warnings) != 1 {
		t.Errorf("warnings %q, want just dev_mode", c.Warnings)
	}
}
