package saml

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const goodLogout = `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-1" Version="2.0" IssueInstant="2026-11-22T10:00:00Z"><saml:Issuer>https://sp.example.com/saml/metadata</saml:Issuer><saml:NameID>alice</saml:NameID></samlp:LogoutRequest>`

func TestParseLogoutRequest(t *testing.T) {
	if lr, err := parseLogoutRequest([]byte(goodLogout)); err != nil || lr.Issuer.Value != "https://sp.example.com/saml/metadata" || lr.NameID.Value != "alice" {
		t.Fatalf("good request: %+v %v", lr, err)
	}
	for name, doc := range map[string]string{
		"no Issuer":         strings.Replace(goodLogout, "<saml:Issuer>https://sp.example.com/saml/metadata</saml:Issuer>", "", 1),
		"empty Issuer":      strings.Replace(goodLogout, "https://sp.example.com/saml/metadata", "", 1),
		"no ID":             strings.Replace(goodLogout, `ID="id-1" `, "", 1),
		"another namespace": strings.Replace(goodLogout, "urn:oasis:names:tc:SAML:2.0:protocol", "urn:example:other", 1),
		"a DOCTYPE":         `<!DOCTYPE x [<!ENTITY e "boom">]>` + goodLogout,
		"not XML":           "hello",
		"empty":             "",
	} {
		if _, err := parseLogoutRequest([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReadMessageBounds(t *testing.T) {
	deflate := func(b []byte) string {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, 9)
		w.Write(b)
		w.Close()
		return base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	get := func(v string) error {
		r := httptest.NewRequest("GET", "/saml/slo?SAMLRequest="+url.QueryEscape(v), nil)
		_, err := readMessage(r)
		return err
	}
	if err := get(deflate([]byte(goodLogout))); err != nil {
		t.Fatalf("a good Redirect message: %v", err)
	}
	// A deflate bomb: a few KiB that inflate to 10 MiB.
	if err := get(deflate(bytes.Repeat([]byte("A"), 10<<20))); err == nil {
		t.Error("a deflate bomb was read")
	}
	if err := get("%%%"); err == nil {
		t.Error("garbage was read")
	}
	post := httptest.NewRequest("POST", "/saml/slo", strings.NewReader("SAMLRequest="+url.QueryEscape(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("A"), maxMessage+1)))))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := readMessage(post); err == nil {
		t.Error("an oversized POST message was read")
	}
}

func FuzzParseLogoutRequest(f *testing.F) {
	f.Add([]byte(goodLogout))
	f.Add([]byte(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`))
	f.Add([]byte(`<x:LogoutRequest xmlns:x="urn:oasis:names:tc:SAML:2.0:protocol"><Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/></x:LogoutRequest>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lr, err := parseLogoutRequest(b)
		if err == nil && (lr.Issuer == nil || lr.Issuer.Value == "" || lr.ID == "") {
			t.Fatalf("accepted a request without Issuer or ID: %q", b)
		}
	})
}

// An SP's endpoints are where assertions and logout answers are posted:
// absolute https URLs, http only to loopback.
func TestParseSPMetadataEndpoints(t *testing.T) {
	md := func(acs string) []byte {
		return []byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.com/saml/metadata">` +
			`<SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
			`<AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + acs + `" index="1"/>` +
			`</SPSSODescriptor></EntityDescriptor>`)
	}
	for acs, ok := range map[string]bool{
		"https://sp.example.com/acs":   true,
		"http://127.0.0.1:8080/acs":    true,
		"http://sp.example.com/acs":    false,
		"javascript:alert(1)":          false,
		"/relative/acs":                false,
		"":                             false,
		"https:///no-host":             false,
		"ftp://sp.example.com/acs":     false,
		"http://localhost/saml/acs":    true,
		"https://sp.example.com:8443/": true,
	} {
		_, err := ParseSPMetadata(md(acs))
		if (err == nil) != ok {
			t.Errorf("ACS %q: %v", acs, err)
		}
	}
}
