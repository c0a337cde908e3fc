package saml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/bridge-idp/bridge/web"
)

// Authentication context classes the bridge can vouch for, by strength: 1
// for one factor, 2 for two.
const (
	acUnspecified   = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
	acPasswordPlain = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
	acMobileTwo     = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"
	acMSMultiple    = "http://schemas.microsoft.com/claims/multipleauthn"
)

var acStrength = map[string]int{
	acUnspecified: 0, acPassword: 1, acPasswordPlain: 1, acMobile: 1,
	acMFA: 2, acMobileTwo: 2, acMSMultiple: 2,
}

// authnContext is the AuthnContextClassRef to answer a request with, for
// the sign-in res; ok is false when the request asks for a context the
// sign-in does not meet (the SP then gets NoAuthnContext).
func authnContext(req *saml.AuthnRequest, res web.Result) (ref string, ok bool) {
	issued := acMobile
	switch {
	case res.MFA():
		issued = acMFA
	case len(res.AMR) == 1 && res.AMR[0] == "pwd":
		issued = acPassword
	}
	rac := req.RequestedAuthnContext
	if rac == nil || strings.TrimSpace(rac.AuthnContextClassRef) == "" {
		return issued, true
	}
	want := strings.TrimSpace(rac.AuthnContextClassRef)
	have, wanted := acStrength[issued], -1
	if s, known := acStrength[want]; known {
		wanted = s
	}
	if wanted < 0 {
		return "", false // a context the bridge does not know
	}
	switch rac.Comparison {
	case "", "exact":
		// A class is answered by that name when it is true of the
		// sign-in: a password checked (with more or not) is
		// PasswordProtectedTransport; SPs compare the value they asked for.
		switch {
		case want == acUnspecified:
			return issued, true
		case want == acPassword || want == acPasswordPlain:
			return want, hasPassword(res)
		case wanted == 2:
			return want, res.MFA()
		default:
			return want, want == issued
		}
	case "minimum":
		return issued, have >= wanted
	case "better":
		return issued, have > wanted
	case "maximum":
		return issued, have <= wanted
	}
	return "", false
}

// errorResponse answers the SP with a signed Response that carries a
// status and no assertion (NoPassive, NoAuthnContext), by the POST form.
func (i *IdP) errorResponse(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest, sub string) {
	p := req.IDP
	id, err := randomString(20)
	if err != nil {
		i.fail(w, r, err)
		return
	}
	resp := &saml.Response{
		Destination: req.ACSEndpoint.Location, ID: "id-" + id, InResponseTo: req.Request.ID,
		IssueInstant: i.now(), Version: "2.0",
		Issuer: &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: p.MetadataURL.String()},
		Status: saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusResponder, StatusCode: &saml.StatusCode{Value: sub}}},
	}
	el, err := i.sign(p, resp.Element())
	if err != nil {
		i.fail(w, r, err)
		return
	}
	i.writeForm(w, req, el)
}

// sign signs el (enveloped) with the IdP's key.
func (i *IdP) sign(p *saml.IdentityProvider, el *etree.Element) (*etree.Element, error) {
	ctx, err := dsig.NewSigningContext(p.Signer, [][]byte{p.Certificate.Raw})
	if err != nil {
		return nil, err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(p.SignatureMethod); err != nil {
		return nil, err
	}
	return ctx.SignEnveloped(el)
}

// writeForm posts a signed Response element to the request's ACS.
func (i *IdP) writeForm(w http.ResponseWriter, req *saml.IdpAuthnRequest, el *etree.Element) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	raw, err := doc.WriteToBytes()
	if err != nil {
		i.fail(w, req.HTTPRequest, err)
		return
	}
	var buf bytes.Buffer
	form := saml.IdpAuthnRequestForm{URL: req.ACSEndpoint.Location, SAMLResponse: encodeStd(raw), RelayState: req.RelayState}
	if err := postForm.Execute(&buf, form); err != nil {
		i.fail(w, req.HTTPRequest, err)
		return
	}
	i.writePostPage(w, req.ACSEndpoint.Location, buf.Bytes())
}

// writePostPage sends an auto-posting form page to target's origin.
func (i *IdP) writePostPage(w http.ResponseWriter, target string, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", fmt.Sprintf("default-src 'none'; script-src 'sha256-%s'; form-action %s; frame-ancestors 'none'; base-uri 'none'",
		postScriptHash, originOf(target)))
	_, _ = w.Write(page)
}

func hasPassword(res web.Result) bool {
	for _, m := range res.AMR {
		if m == "pwd" {
			return true
		}
	}
	return false
}

// validate is crewjam's Validate behind the checks it lacks: crewjam
// dereferences the Issuer without looking (a request without one panics
// it), so a request is parsed here first and must have an Issuer, an ID
// and version 2.0, in round-trip-safe XML without a DTD.
func validate(req *saml.IdpAuthnRequest) error {
	b := req.RequestBuffer
	if bytes.Contains(b, []byte("<!DOCTYPE")) || bytes.Contains(b, []byte("<!ENTITY")) {
		return errors.New("DTDs are not allowed")
	}
	if err := xrv.Validate(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("unsafe XML: %w", err)
	}
	var ar saml.AuthnRequest
	if err := xml.Unmarshal(b, &ar); err != nil {
		return fmt.Errorf("not an AuthnRequest: %w", err)
	}
	if ar.Issuer == nil || strings.TrimSpace(ar.Issuer.Value) == "" {
		return errors.New("no Issuer")
	}
	if ar.ID == "" || ar.Version != "2.0" {
		return errors.New("no ID, or not SAML 2.0")
	}
	// The answer goes by HTTP-POST only: crewjam picks an ACS by index
	// or URL whatever its binding, and would post a bearer assertion to
	// an artifact or PAOS endpoint.
	if ar.ProtocolBinding != "" && ar.ProtocolBinding != saml.HTTPPostBinding {
		return fmt.Errorf("ProtocolBinding %s is not supported (HTTP-POST only)", ar.ProtocolBinding)
	}
	if ar.AssertionConsumerServiceIndex != "" && ar.AssertionConsumerServiceURL != "" {
		return errors.New("both AssertionConsumerServiceIndex and AssertionConsumerServiceURL")
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if req.ACSEndpoint == nil || req.ACSEndpoint.Binding != saml.HTTPPostBinding {
		return errors.New("the AssertionConsumerService asked for is not an HTTP-POST one")
	}
	return nil
}
