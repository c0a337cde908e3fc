package saml

import (
	"crypto"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/url"
	"testing"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
)

// A signed LogoutRequest verifies; the wrapping shapes that would make the
// bridge act on an unsigned request carrying a signed one are refused,
// as for AuthnRequests.
func TestVerifyLogoutRequestSignature(t *testing.T) {
	k := sigTestKeys(t)
	certs := []*x509.Certificate{k.rsaCert}
	sp := sigTestSP(k.rsaKey, k.rsaCert, "")
	logout := func(id, user string) *etree.Element {
		lr, err := sp.MakeLogoutRequest(sigTestIdPSSO, user)
		if err != nil {
			t.Fatal(err)
		}
		lr.ID = id
		return lr.Element()
	}
	good := sigSignRoot(t, k, logout("id-good", "alice"), crypto.SHA256)
	el, err := VerifyPOSTSignature(good, certs)
	if err != nil {
		t.Fatalf("a signed LogoutRequest: %v", err)
	}
	if el.SelectAttrValue("ID", "") != "id-good" {
		t.Errorf("verified element %s", el.SelectAttrValue("ID", ""))
	}
	if lr, err := parseLogoutRequest(good); err != nil || lr.NameID == nil || lr.NameID.Value != "alice" {
		t.Errorf("parse: %+v %v", lr, err)
	}

	// The signed request (for alice) moved under a forged one (for bob).
	signedDoc := etree.NewDocument()
	if err := signedDoc.ReadFromBytes(good); err != nil {
		t.Fatal(err)
	}
	forged := logout("id-forged", "bob")
	forged.AddChild(signedDoc.Root())
	d := etree.NewDocument()
	d.SetRoot(forged)
	wrapped, _ := d.WriteToBytes()
	if _, err := VerifyPOSTSignature(wrapped, certs); err == nil {
		t.Error("a forged LogoutRequest wrapping a signed one verified")
	}
	// Unsigned.
	d = etree.NewDocument()
	d.SetRoot(logout("id-plain", "alice"))
	plain, _ := d.WriteToBytes()
	if _, err := VerifyPOSTSignature(plain, certs); !errors.Is(err, ErrUnsigned) {
		t.Errorf("an unsigned LogoutRequest: %v", err)
	}
	// Tampered after signing.
	tampered := []byte(string(good))
	for i := range len(tampered) - 5 {
		if string(tampered[i:i+5]) == "alice" {
			copy(tampered[i:], "mally")
			break
		}
	}
	if _, err := VerifyPOSTSignature(tampered, certs); err == nil {
		t.Error("a tampered LogoutRequest verified")
	}
}

// FuzzAuthnRequestParsing runs untrusted AuthnRequest documents through
// crewjam's parsing and validation with the bridge's registry, as /saml/sso
// does: errors, never a panic, and nothing accepted from an unknown SP.
func FuzzAuthnRequestParsing(f *testing.F) {
	k := sigTestKeys(f)
	sp := sigTestSP(k.rsaKey, k.rsaCert, "")
	req, err := sp.MakeAuthenticationRequest(sigTestIdPSSO, crewjam.HTTPPostBinding, crewjam.HTTPPostBinding)
	if err != nil {
		f.Fatal(err)
	}
	d := etree.NewDocument()
	d.SetRoot(req.Element())
	good, _ := d.WriteToBytes()
	f.Add(good)
	f.Add([]byte(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0"/>`))
	f.Add([]byte(`<AuthnRequest xmlns="urn:example"><Issuer/></AuthnRequest>`))
	md := sp.Metadata()
	i := &IdP{sps: map[string]*ServiceProvider{md.EntityID: {Name: "sp", Metadata: md}}}
	idp := &crewjam.IdentityProvider{ServiceProviderProvider: registry{i}, SSOURL: mustURL(sigTestIdPSSO), Logger: logAdapter{discard},
		Certificate: k.otherCert, Signer: k.otherKey, MetadataURL: mustURL("https://idp.example.com/saml/metadata")}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &crewjam.IdpAuthnRequest{IDP: idp, RequestBuffer: b, Now: req.IssueInstant}
		if err := validate(r); err == nil {
			if r.Request.Issuer == nil || i.sp(r.Request.Issuer.Value) == nil || r.ACSEndpoint == nil {
				t.Fatalf("accepted a request without a known SP or ACS: %q", b)
			}
		}
	})
}

var discard = slog.New(slog.DiscardHandler)

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}
