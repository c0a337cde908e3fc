package saml

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
)

// response builds the Response to req (its Assertion made) as sp asks:
// the Assertion signed, the Response signed, or both (crewjam's own
// always signs both), and the Assertion encrypted to the SP if it asks.
func (i *IdP) response(req *saml.IdpAuthnRequest, sp *ServiceProvider) (*etree.Element, error) {
	p := req.IDP
	if sp.SignAssertion {
		signed, err := i.sign(p, req.Assertion.Element())
		if err != nil {
			return nil, err
		}
		req.Assertion.Signature = lastChild(signed)
	}
	assertionEl := req.Assertion.Element()
	if sp.EncryptAssertion {
		var err error
		if assertionEl, err = encrypt(assertionEl, sp.Metadata); err != nil {
			return nil, err
		}
	}
	id, err := randomString(20)
	if err != nil {
		return nil, err
	}
	resp := &saml.Response{
		Destination: req.ACSEndpoint.Location, ID: "id-" + id, InResponseTo: req.Request.ID,
		IssueInstant: req.Now, Version: "2.0",
		Issuer: &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: p.MetadataURL.String()},
		Status: saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
	}
	if sp.SignResponse {
		el := resp.Element()
		el.AddChild(assertionEl)
		signed, err := i.sign(p, el)
		if err != nil {
			return nil, err
		}
		// The signature goes after the Issuer, as the schema wants; the
		// enveloped-signature transform leaves it out of the digest.
		resp.Signature = lastChild(signed)
	}
	el := resp.Element()
	el.AddChild(assertionEl)
	return el, nil
}

func lastChild(el *etree.Element) *etree.Element {
	c := el.ChildElements()
	return c[len(c)-1]
}

// encrypt encrypts a signed assertion to the SP's encryption certificate,
// as crewjam does (XML Encryption 1.0: AES-128-CBC, RSA-OAEP).
func encrypt(assertionEl *etree.Element, md *saml.EntityDescriptor) (*etree.Element, error) {
	cert, err := encryptionCert(md)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.SetRoot(assertionEl)
	buf, err := doc.WriteToBytes()
	if err != nil {
		return nil, err
	}
	enc := xmlenc.OAEP()
	enc.BlockCipher = xmlenc.AES128CBC
	enc.DigestMethod = &xmlenc.SHA1
	data, err := enc.Encrypt(cert, buf, nil)
	if err != nil {
		return nil, fmt.Errorf("saml: encrypting the assertion: %w", err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	out := etree.NewElement("saml:EncryptedAssertion")
	out.AddChild(data)
	return out, nil
}

// encryptionCert is the SP's encryption certificate (use encryption, else
// one without a use).
func encryptionCert(md *saml.EntityDescriptor) (*x509.Certificate, error) {
	for _, use := range []string{"encryption", ""} {
		for _, d := range md.SPSSODescriptors {
			for _, k := range d.KeyDescriptors {
				if k.Use != use || len(k.KeyInfo.X509Data.X509Certificates) == 0 {
					continue
				}
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(k.KeyInfo.X509Data.X509Certificates[0].Data), ""))
				if err != nil {
					continue
				}
				if c, err := x509.ParseCertificate(der); err == nil {
					return c, nil
				}
			}
		}
	}
	return nil, errors.New("saml: the SP's metadata has no encryption certificate")
}
