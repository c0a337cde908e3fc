package saml

// Signature verification of SAML requests sent by service providers.
//
// crewjam/saml's IdP does not check the signature of an AuthnRequest (or
// LogoutRequest) at all, so the IdP does it here, for both bindings:
//
//   - HTTP-Redirect (SAML bindings §3.4.4.1): the signature travels in the
//     query string and covers the URL-encoded octets of
//     SAMLRequest=...&RelayState=...&SigAlg=... exactly as they appear in
//     the raw query. VerifyRedirectSignature.
//   - HTTP-POST: an enveloped XML signature on the root element, checked
//     with goxmldsig (>= v1.6.1, see version_test.go). VerifyPOSTSignature
//     returns the element goxmldsig verified; callers must use only that
//     element, never their own parse of the document.
//
// SHA-1 based algorithms are refused in both bindings.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

var (
	// ErrUnsigned is returned when the message carries no signature at all
	// (no Signature query parameter; no ds:Signature child of the root).
	ErrUnsigned = errors.New("saml: message is not signed")
	// ErrBadSignature is returned (possibly wrapped) when a signature is
	// present but does not verify with any of the trusted certificates, or
	// does not cover what it has to cover.
	ErrBadSignature = errors.New("saml: bad signature")
	// ErrUnsupportedSigAlg is returned (possibly wrapped) for signature or
	// digest algorithms that are refused (SHA-1, DSA, unknown).
	ErrUnsupportedSigAlg = errors.New("saml: unsupported signature algorithm")
	// ErrMalformedSignedMessage is returned (possibly wrapped) for messages
	// whose shape is refused before any signature check: repeated query
	// parameters, DOCTYPE declarations, unexpected root elements, ...
	ErrMalformedSignedMessage = errors.New("saml: malformed signed message")
)

const (
	verifySAMLProtocolNS = "urn:oasis:names:tc:SAML:2.0:protocol"

	verifyParamSAMLRequest  = "SAMLRequest"
	verifyParamSAMLResponse = "SAMLResponse"
	verifyParamRelayState   = "RelayState"
	verifyParamSigAlg       = "SigAlg"
	verifyParamSignature    = "Signature"

	verifyDigestSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
	verifyDigestSHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	verifyDigestSHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
)

// redirectSigAlg describes one SigAlg accepted for the HTTP-Redirect binding.
type redirectSigAlg struct {
	hash  crypto.Hash
	ecdsa bool // false: RSA PKCS#1 v1.5
}

// redirectSigAlgs are the SigAlg values accepted for the HTTP-Redirect
// binding. rsa-sha1, dsa-sha1 and ecdsa-sha1 are deliberately absent.
var redirectSigAlgs = map[string]redirectSigAlg{
	dsig.RSASHA256SignatureMethod:   {hash: crypto.SHA256},
	dsig.RSASHA512SignatureMethod:   {hash: crypto.SHA512},
	dsig.ECDSASHA256SignatureMethod: {hash: crypto.SHA256, ecdsa: true},
}

// postSigAlgs are the ds:SignatureMethod algorithms accepted in XML
// signatures (HTTP-POST binding). No SHA-1.
var postSigAlgs = map[string]bool{
	dsig.RSASHA256SignatureMethod:   true,
	dsig.RSASHA384SignatureMethod:   true,
	dsig.RSASHA512SignatureMethod:   true,
	dsig.ECDSASHA256SignatureMethod: true,
	dsig.ECDSASHA384SignatureMethod: true,
	dsig.ECDSASHA512SignatureMethod: true,
}

// postDigestAlgs are the ds:DigestMethod algorithms accepted. No SHA-1.
var postDigestAlgs = map[string]bool{
	verifyDigestSHA256: true,
	verifyDigestSHA384: true,
	verifyDigestSHA512: true,
}

// postTransforms are the ds:Transform algorithms accepted in the Reference.
// The enveloped-signature transform is additionally required.
var postTransforms = map[string]bool{
	string(dsig.EnvelopedSignatureAltorithmId):      true,
	string(dsig.CanonicalXML10ExclusiveAlgorithmId): true,
	string(dsig.CanonicalXML10RecAlgorithmId):       true,
	string(dsig.CanonicalXML11AlgorithmId):          true,
}

// VerifyRedirectSignature checks the signature of a message received with
// the HTTP-Redirect binding (SAML bindings §3.4.4.1). rawQuery is the raw,
// still URL-encoded query string of the request (r.URL.RawQuery).
//
// The signed octets are rebuilt from the raw query, not from decoded and
// re-encoded values: SAMLRequest (or SAMLResponse), then RelayState if
// present, then SigAlg, joined with '&'. Any repeated protocol parameter is
// refused, so that what was verified is what url.ParseQuery later yields.
//
// The signature must verify with one of certs (RSA PKCS#1 v1.5 for the rsa
// algorithms, ASN.1 ECDSA for ecdsa-sha256). It returns ErrUnsigned when
// there is no Signature parameter, an error wrapping ErrUnsupportedSigAlg
// for a refused SigAlg, and an error wrapping ErrBadSignature when the
// signature does not verify.
func VerifyRedirectSignature(rawQuery string, certs []*x509.Certificate) error {
	if strings.Contains(rawQuery, ";") {
		return fmt.Errorf("%w: ';' in query string", ErrMalformedSignedMessage)
	}
	raw := map[string]string{} // decoded key -> raw (still encoded) value
	for _, seg := range strings.Split(rawQuery, "&") {
		if seg == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(seg, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return fmt.Errorf("%w: bad query parameter name: %v", ErrMalformedSignedMessage, err)
		}
		if _, err := url.QueryUnescape(rawValue); err != nil {
			return fmt.Errorf("%w: bad query parameter %q: %v", ErrMalformedSignedMessage, key, err)
		}
		switch key {
		case verifyParamSAMLRequest, verifyParamSAMLResponse, verifyParamRelayState,
			verifyParamSigAlg, verifyParamSignature:
			if _, dup := raw[key]; dup {
				return fmt.Errorf("%w: repeated query parameter %s", ErrMalformedSignedMessage, key)
			}
			raw[key] = rawValue
		}
	}

	rawSig, signed := raw[verifyParamSignature]
	if !signed {
		return ErrUnsigned
	}

	msgKey := verifyParamSAMLRequest
	rawMsg, hasReq := raw[verifyParamSAMLRequest]
	if rawResp, hasResp := raw[verifyParamSAMLResponse]; hasResp {
		if hasReq {
			return fmt.Errorf("%w: both SAMLRequest and SAMLResponse", ErrMalformedSignedMessage)
		}
		msgKey, rawMsg = verifyParamSAMLResponse, rawResp
	}
	if rawMsg == "" {
		return fmt.Errorf("%w: no SAMLRequest", ErrMalformedSignedMessage)
	}

	rawAlg, ok := raw[verifyParamSigAlg]
	if !ok {
		return fmt.Errorf("%w: Signature without SigAlg", ErrUnsupportedSigAlg)
	}
	sigAlg, _ := url.QueryUnescape(rawAlg) // checked above
	alg, ok := redirectSigAlgs[sigAlg]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnsupportedSigAlg, sigAlg)
	}

	sigB64, _ := url.QueryUnescape(rawSig) // checked above
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: Signature is not base64", ErrBadSignature)
	}

	var signedOctets strings.Builder
	signedOctets.WriteString(msgKey + "=" + rawMsg)
	if rs, ok := raw[verifyParamRelayState]; ok {
		signedOctets.WriteString("&" + verifyParamRelayState + "=" + rs)
	}
	signedOctets.WriteString("&" + verifyParamSigAlg + "=" + rawAlg)

	digest := verifyHash(alg.hash, []byte(signedOctets.String()))
	for _, cert := range certs {
		if cert == nil {
			continue
		}
		switch pub := cert.PublicKey.(type) {
		case *rsa.PublicKey:
			if !alg.ecdsa && rsa.VerifyPKCS1v15(pub, alg.hash, digest, sig) == nil {
				return nil
			}
		case *ecdsa.PublicKey:
			if alg.ecdsa && ecdsa.VerifyASN1(pub, digest, sig) {
				return nil
			}
		}
	}
	return ErrBadSignature
}

func verifyHash(h crypto.Hash, b []byte) []byte {
	switch h {
	case crypto.SHA512:
		s := sha512.Sum512(b)
		return s[:]
	default:
		s := sha256.Sum256(b)
		return s[:]
	}
}

// VerifyPOSTSignature checks the enveloped XML signature of a SAML
// AuthnRequest or LogoutRequest received with the HTTP-POST binding. doc is
// the XML document (already base64-decoded).
//
// On success it returns the element goxmldsig verified (the canonicalised
// root, without its signature). Callers must use only the returned element:
// anything else in doc is unauthenticated.
//
// It refuses documents with a DOCTYPE (or any other directive), more than
// one top-level element, a root other than samlp:AuthnRequest or
// samlp:LogoutRequest, and any signature but exactly one ds:Signature
// child of the root whose single Reference has URI "#"+root ID and the
// enveloped-signature transform (the signed element must be the root
// itself: XML signature wrapping). SHA-1 signature and digest algorithms
// are refused. It returns ErrUnsigned when the root has no ds:Signature
// child.
func VerifyPOSTSignature(doc []byte, certs []*x509.Certificate) (*etree.Element, error) {
	if bytes.Contains(doc, []byte("<!DOCTYPE")) || bytes.Contains(doc, []byte("<!ENTITY")) {
		return nil, fmt.Errorf("%w: DOCTYPE not allowed", ErrMalformedSignedMessage)
	}
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedSignedMessage, err)
	}
	var root *etree.Element
	for _, tok := range d.Child {
		switch t := tok.(type) {
		case *etree.Directive:
			return nil, fmt.Errorf("%w: DOCTYPE not allowed", ErrMalformedSignedMessage)
		case *etree.Element:
			if root != nil {
				return nil, fmt.Errorf("%w: more than one top-level element", ErrMalformedSignedMessage)
			}
			root = t
		case *etree.CharData:
			if strings.TrimSpace(t.Data) != "" {
				return nil, fmt.Errorf("%w: text outside the root element", ErrMalformedSignedMessage)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", ErrMalformedSignedMessage)
	}
	if err := verifyNoDirectives(root); err != nil {
		return nil, err
	}
	if root.NamespaceURI() != verifySAMLProtocolNS || (root.Tag != "AuthnRequest" && root.Tag != "LogoutRequest") {
		return nil, fmt.Errorf("%w: root is not samlp:AuthnRequest or samlp:LogoutRequest", ErrMalformedSignedMessage)
	}

	// The ID goxmldsig will look at (SelectAttr) must be the only one.
	id, nID := "", 0
	for _, a := range root.Attr {
		if a.Key == dsig.DefaultIdAttr {
			nID++
			if a.Space == "" {
				id = a.Value
			}
		}
	}
	if nID != 1 || id == "" || root.SelectAttrValue(dsig.DefaultIdAttr, "") != id {
		return nil, fmt.Errorf("%w: root needs exactly one unprefixed ID attribute", ErrMalformedSignedMessage)
	}

	// Exactly one signature element in the whole document, and it is a
	// direct child of the root: an enveloped signature over the root.
	var sigEl *etree.Element
	for _, c := range root.ChildElements() {
		if c.Tag == dsig.SignatureTag && c.NamespaceURI() == dsig.Namespace {
			if sigEl != nil {
				return nil, fmt.Errorf("%w: more than one signature", ErrBadSignature)
			}
			sigEl = c
		}
	}
	if sigEl == nil {
		return nil, ErrUnsigned
	}
	if n := verifyCountTag(root, dsig.SignatureTag); n != 1 {
		return nil, fmt.Errorf("%w: %d Signature elements in the document", ErrBadSignature, n)
	}
	if err := verifySignatureShape(sigEl, id); err != nil {
		return nil, err
	}

	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no trusted certificate", ErrBadSignature)
	}
	// One certificate per attempt: goxmldsig only falls back to "the"
	// trusted certificate when the signature has no KeyInfo and the store
	// holds exactly one.
	var lastErr error
	for _, cert := range certs {
		if cert == nil {
			continue
		}
		vctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{
			Roots: []*x509.Certificate{cert},
		})
		verified, err := vctx.Validate(root)
		if err != nil {
			lastErr = err
			continue
		}
		// Belt and braces: the verified element is the root we checked.
		if verified == nil || verified.Tag != root.Tag || verified.NamespaceURI() != verifySAMLProtocolNS ||
			verified.SelectAttrValue(dsig.DefaultIdAttr, "") != id {
			lastErr = errors.New("verified element is not the root element")
			continue
		}
		if verifyCountTag(verified, dsig.SignatureTag) != 0 {
			lastErr = errors.New("verified element still holds a signature")
			continue
		}
		return verified, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no trusted certificate")
	}
	return nil, fmt.Errorf("%w: %v", ErrBadSignature, lastErr)
}

// verifySignatureShape checks the ds:Signature before goxmldsig sees it:
// one SignedInfo whose single Reference points at "#"+id, carries the
// enveloped-signature transform and uses no SHA-1.
func verifySignatureShape(sigEl *etree.Element, id string) error {
	var signedInfo *etree.Element
	for _, c := range sigEl.ChildElements() {
		if c.Tag == dsig.SignedInfoTag {
			if signedInfo != nil {
				return fmt.Errorf("%w: more than one SignedInfo", ErrBadSignature)
			}
			signedInfo = c
		}
	}
	if signedInfo == nil || signedInfo.NamespaceURI() != dsig.Namespace {
		return fmt.Errorf("%w: no SignedInfo", ErrBadSignature)
	}

	var sigMethod, ref *etree.Element
	for _, c := range signedInfo.ChildElements() {
		switch c.Tag {
		case dsig.SignatureMethodTag:
			if sigMethod != nil {
				return fmt.Errorf("%w: more than one SignatureMethod", ErrBadSignature)
			}
			sigMethod = c
		case dsig.ReferenceTag:
			if ref != nil {
				return fmt.Errorf("%w: more than one Reference", ErrBadSignature)
			}
			ref = c
		}
	}
	if sigMethod == nil || ref == nil {
		return fmt.Errorf("%w: no SignatureMethod or Reference", ErrBadSignature)
	}
	if alg := sigMethod.SelectAttrValue(dsig.AlgorithmAttr, ""); !postSigAlgs[alg] {
		return fmt.Errorf("%w: signature method %q", ErrUnsupportedSigAlg, alg)
	}
	if uri := ref.SelectAttr(dsig.URIAttr); uri == nil || uri.Value != "#"+id {
		return fmt.Errorf("%w: Reference does not point at the root element", ErrBadSignature)
	}

	var digestMethod, transforms *etree.Element
	for _, c := range ref.ChildElements() {
		switch c.Tag {
		case dsig.DigestMethodTag:
			if digestMethod != nil {
				return fmt.Errorf("%w: more than one DigestMethod", ErrBadSignature)
			}
			digestMethod = c
		case dsig.TransformsTag:
			if transforms != nil {
				return fmt.Errorf("%w: more than one Transforms", ErrBadSignature)
			}
			transforms = c
		}
	}
	if digestMethod == nil {
		return fmt.Errorf("%w: no DigestMethod", ErrBadSignature)
	}
	if alg := digestMethod.SelectAttrValue(dsig.AlgorithmAttr, ""); !postDigestAlgs[alg] {
		return fmt.Errorf("%w: digest method %q", ErrUnsupportedSigAlg, alg)
	}
	if transforms == nil {
		return fmt.Errorf("%w: not an enveloped signature", ErrBadSignature)
	}
	enveloped := false
	for _, t := range transforms.ChildElements() {
		alg := t.SelectAttrValue(dsig.AlgorithmAttr, "")
		if !postTransforms[alg] {
			return fmt.Errorf("%w: transform %q", ErrUnsupportedSigAlg, alg)
		}
		if alg == string(dsig.EnvelopedSignatureAltorithmId) {
			enveloped = true
		}
	}
	if !enveloped {
		return fmt.Errorf("%w: not an enveloped signature", ErrBadSignature)
	}
	return nil
}

// verifyCountTag counts the elements in el's subtree (el included) whose
// local name is tag, whatever their namespace.
func verifyCountTag(el *etree.Element, tag string) int {
	n := 0
	if el.Tag == tag {
		n++
	}
	for _, c := range el.ChildElements() {
		n += verifyCountTag(c, tag)
	}
	return n
}

// verifyNoDirectives refuses any <!...> directive inside the tree.
func verifyNoDirectives(el *etree.Element) error {
	for _, tok := range el.Child {
		switch t := tok.(type) {
		case *etree.Directive:
			return fmt.Errorf("%w: directive not allowed", ErrMalformedSignedMessage)
		case *etree.Element:
			if err := verifyNoDirectives(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// SPSigningCerts returns the certificates a service provider signs its
// requests with, from its metadata: the X509Certificates of the
// KeyDescriptors of its SPSSODescriptors whose use is "signing" or empty
// (usable for both). Entries that do not parse are skipped. When an entry
// holds a concatenated chain (crewjam's ServiceProvider.Metadata appends
// the intermediates to the leaf) only the first certificate, the leaf, is
// taken.
func SPSigningCerts(ed *crewjam.EntityDescriptor) []*x509.Certificate {
	if ed == nil {
		return nil
	}
	var out []*x509.Certificate
	for _, spsso := range ed.SPSSODescriptors {
		for _, kd := range spsso.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				data := strings.Join(strings.Fields(xc.Data), "")
				der, err := base64.StdEncoding.DecodeString(data)
				if err != nil {
					continue
				}
				certs, err := x509.ParseCertificates(der)
				if err != nil || len(certs) == 0 {
					continue
				}
				dup := false
				for _, c := range out {
					if c.Equal(certs[0]) {
						dup = true
						break
					}
				}
				if !dup {
					out = append(out, certs[0])
				}
			}
		}
	}
	return out
}
