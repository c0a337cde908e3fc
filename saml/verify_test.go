package saml

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"html"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

const (
	sigTestIdPSSO   = "https://idp.example.com/saml/sso"
	sigTestSPEntity = "https://sp.example.com/saml/metadata"
)

type sigKeys struct {
	rsaKey    *rsa.PrivateKey
	rsaCert   *x509.Certificate
	ecKey     *ecdsa.PrivateKey
	ecCert    *x509.Certificate
	otherKey  *rsa.PrivateKey
	otherCert *x509.Certificate
}

var (
	sigTestKeysOnce sync.Once
	sigTestKeysVal  *sigKeys
)

func sigTestKeys(tb testing.TB) *sigKeys {
	tb.Helper()
	sigTestKeysOnce.Do(func() {
		k := &sigKeys{}
		var err error
		if k.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if k.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if k.otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		k.rsaCert = sigSelfSigned(k.rsaKey, "sp-rsa")
		k.ecCert = sigSelfSigned(k.ecKey, "sp-ecdsa")
		k.otherCert = sigSelfSigned(k.otherKey, "other")
		sigTestKeysVal = k
	})
	return sigTestKeysVal
}

func sigSelfSigned(key crypto.Signer, cn string) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return cert
}

// sigTestSP is a crewjam service provider signing its requests with key/cert
// and method (no signing when method is "").
func sigTestSP(key crypto.Signer, cert *x509.Certificate, method string) *crewjam.ServiceProvider {
	mustURL := func(s string) url.URL {
		u, err := url.Parse(s)
		if err != nil {
			panic(err)
		}
		return *u
	}
	return &crewjam.ServiceProvider{
		EntityID:    sigTestSPEntity,
		Key:         key,
		Certificate: cert,
		MetadataURL: mustURL(sigTestSPEntity),
		AcsURL:      mustURL("https://sp.example.com/saml/acs"),
		IDPMetadata: &crewjam.EntityDescriptor{
			EntityID: "https://idp.example.com/saml/metadata",
			IDPSSODescriptors: []crewjam.IDPSSODescriptor{{
				SingleSignOnServices: []crewjam.Endpoint{
					{Binding: crewjam.HTTPRedirectBinding, Location: sigTestIdPSSO},
					{Binding: crewjam.HTTPPostBinding, Location: sigTestIdPSSO},
				},
			}},
		},
		SignatureMethod: method,
	}
}

func sigRedirectQuery(tb testing.TB, sp *crewjam.ServiceProvider, relayState string) string {
	tb.Helper()
	u, err := sp.MakeRedirectAuthenticationRequest(relayState)
	if err != nil {
		tb.Fatal(err)
	}
	return u.RawQuery
}

var sigSAMLRequestInput = regexp.MustCompile(`name="SAMLRequest" value="([^"]*)"`)

// sigPostDoc returns the XML document a crewjam SP posts (taken from its
// auto-submit HTML form).
func sigPostDoc(tb testing.TB, sp *crewjam.ServiceProvider) []byte {
	tb.Helper()
	form, err := sp.MakePostAuthenticationRequest("state")
	if err != nil {
		tb.Fatal(err)
	}
	m := sigSAMLRequestInput.FindSubmatch(form)
	if m == nil {
		tb.Fatalf("no SAMLRequest in %s", form)
	}
	doc, err := base64.StdEncoding.DecodeString(html.UnescapeString(string(m[1])))
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// sigQueryParam returns the raw value of param in rawQuery.
func sigQueryParam(rawQuery, param string) string {
	for _, seg := range strings.Split(rawQuery, "&") {
		if k, v, _ := strings.Cut(seg, "="); k == param {
			return v
		}
	}
	return ""
}

func sigReplaceParam(rawQuery, param, value string) string {
	segs := strings.Split(rawQuery, "&")
	for i, seg := range segs {
		if k, _, _ := strings.Cut(seg, "="); k == param {
			segs[i] = param + "=" + value
		}
	}
	return strings.Join(segs, "&")
}

func TestVerifyRedirectSignature(t *testing.T) {
	k := sigTestKeys(t)
	rsaSP := sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod)
	rsa512SP := sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA512SignatureMethod)
	ecSP := sigTestSP(k.ecKey, k.ecCert, dsig.ECDSASHA256SignatureMethod)
	both := []*x509.Certificate{k.otherCert, k.ecCert, k.rsaCert}

	good := sigRedirectQuery(t, rsaSP, "state-123")
	other := sigRedirectQuery(t, rsaSP, "state-123") // another request, other ID

	for _, tc := range []struct {
		name  string
		query string
		certs []*x509.Certificate
		want  error // nil: must verify
	}{
		{"rsa-sha256", good, []*x509.Certificate{k.rsaCert}, nil},
		{"rsa-sha256 among several certs", good, both, nil},
		{"rsa-sha256 no RelayState", sigRedirectQuery(t, rsaSP, ""), []*x509.Certificate{k.rsaCert}, nil},
		{"rsa-sha512", sigRedirectQuery(t, rsa512SP, "x"), []*x509.Certificate{k.rsaCert}, nil},
		{"ecdsa-sha256", sigRedirectQuery(t, ecSP, "state-123"), []*x509.Certificate{k.ecCert}, nil},
		{"ecdsa-sha256 among several certs", sigRedirectQuery(t, ecSP, "s"), both, nil},

		{"tampered SAMLRequest", sigReplaceParam(good, "SAMLRequest", sigQueryParam(other, "SAMLRequest")),
			both, ErrBadSignature},
		{"tampered RelayState", sigReplaceParam(good, "RelayState", "state-124"), both, ErrBadSignature},
		{"RelayState added", good + "&RelayState=evil", both, ErrMalformedSignedMessage},
		{"RelayState removed", strings.Replace(good, "&RelayState=state-123", "", 1), both, ErrBadSignature},
		{"wrong cert", good, []*x509.Certificate{k.otherCert, k.ecCert}, ErrBadSignature},
		{"no certs", good, nil, ErrBadSignature},
		{"ecdsa wrong cert", sigRedirectQuery(t, ecSP, "s"), []*x509.Certificate{k.rsaCert}, ErrBadSignature},
		{"missing signature", strings.Split(good, "&Signature=")[0], both, ErrUnsigned},
		{"unsigned SP", sigRedirectQuery(t, sigTestSP(k.rsaKey, k.rsaCert, ""), "s"), both, ErrUnsigned},
		{"rsa-sha1 refused", sigRedirectQuery(t, sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA1SignatureMethod), "s"),
			both, ErrUnsupportedSigAlg},
		{"ecdsa-sha1 refused", sigRedirectQuery(t, sigTestSP(k.ecKey, k.ecCert, dsig.ECDSASHA1SignatureMethod), "s"),
			both, ErrUnsupportedSigAlg},
		{"dsa-sha1 refused", sigReplaceParam(good, "SigAlg", url.QueryEscape("http://www.w3.org/2000/09/xmldsig#dsa-sha1")),
			both, ErrUnsupportedSigAlg},
		{"SigAlg swapped to rsa-sha512", sigReplaceParam(good, "SigAlg", url.QueryEscape(dsig.RSASHA512SignatureMethod)),
			both, ErrBadSignature},
		{"SigAlg missing", strings.Replace(good, "&SigAlg="+sigQueryParam(good, "SigAlg"), "", 1), both, ErrUnsupportedSigAlg},
		{"repeated SAMLRequest", good + "&SAMLRequest=" + sigQueryParam(other, "SAMLRequest"), both, ErrMalformedSignedMessage},
		{"repeated SAMLRequest first", "SAMLRequest=" + sigQueryParam(other, "SAMLRequest") + "&" + good, both, ErrMalformedSignedMessage},
		{"repeated Signature", good + "&Signature=" + sigQueryParam(good, "Signature"), both, ErrMalformedSignedMessage},
		{"repeated SigAlg", good + "&SigAlg=" + sigQueryParam(good, "SigAlg"), both, ErrMalformedSignedMessage},
		{"percent-encoded repeated key", good + "&SAML%52equest=" + sigQueryParam(other, "SAMLRequest"), both, ErrMalformedSignedMessage},
		{"SAMLRequest and SAMLResponse", good + "&SAMLResponse=abc", both, ErrMalformedSignedMessage},
		{"semicolon", good + ";SAMLRequest=x", both, ErrMalformedSignedMessage},
		{"bad escape", good + "&foo=%zz", both, ErrMalformedSignedMessage},
		{"signature not base64", sigReplaceParam(good, "Signature", "%%%"), both, ErrMalformedSignedMessage},
		{"signature not base64 2", sigReplaceParam(good, "Signature", "not-base64!"), both, ErrBadSignature},
		{"empty", "", both, ErrUnsigned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyRedirectSignature(tc.query, tc.certs)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
		})
	}

	// Unrelated parameters (e.g. an IdP-side one in the SSO URL) do not
	// matter.
	if err := VerifyRedirectSignature("tenant=a&"+good+"&x=1", both); err != nil {
		t.Errorf("extra parameters: %v", err)
	}
}

// The signature covers the octets as sent, not a re-encoding of the
// decoded values: an SP that escapes differently from Go (lower-case hex,
// %20 for space, an escaped '-') must still verify, and a re-encoding of
// the same values must not.
func TestVerifyRedirectSignatureRawOctets(t *testing.T) {
	k := sigTestKeys(t)
	signed := "SAMLRequest=fZ%2bQ%3d%3d&RelayState=a%20b%2dc&SigAlg=" +
		strings.ToLower(url.QueryEscape(dsig.RSASHA256SignatureMethod))
	h := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.rsaKey, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	q := signed + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	if err := VerifyRedirectSignature(q, []*x509.Certificate{k.rsaCert}); err != nil {
		t.Fatalf("raw octets: %v", err)
	}

	vals, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	reencoded := "SAMLRequest=" + url.QueryEscape(vals.Get("SAMLRequest")) +
		"&RelayState=" + url.QueryEscape(vals.Get("RelayState")) +
		"&SigAlg=" + url.QueryEscape(vals.Get("SigAlg")) +
		"&Signature=" + url.QueryEscape(vals.Get("Signature"))
	if err := VerifyRedirectSignature(reencoded, []*x509.Certificate{k.rsaCert}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("re-encoded query: want ErrBadSignature, got %v", err)
	}
}

func TestVerifyPOSTSignature(t *testing.T) {
	k := sigTestKeys(t)
	both := []*x509.Certificate{k.otherCert, k.ecCert, k.rsaCert}
	for _, tc := range []struct {
		name  string
		sp    *crewjam.ServiceProvider
		certs []*x509.Certificate
	}{
		{"rsa-sha256", sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod), []*x509.Certificate{k.rsaCert}},
		{"rsa-sha256 among several certs", sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod), both},
		{"rsa-sha512", sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA512SignatureMethod), both},
		{"ecdsa-sha256", sigTestSP(k.ecKey, k.ecCert, dsig.ECDSASHA256SignatureMethod), both},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := sigPostDoc(t, tc.sp)
			el, err := VerifyPOSTSignature(doc, tc.certs)
			if err != nil {
				t.Fatalf("want success, got %v", err)
			}
			var req crewjam.AuthnRequest
			d := etree.NewDocument()
			if err := d.ReadFromBytes(doc); err != nil {
				t.Fatal(err)
			}
			if el.Tag != "AuthnRequest" || el.SelectAttrValue("ID", "") != d.Root().SelectAttrValue("ID", "") {
				t.Fatalf("verified element %s ID=%s", el.Tag, el.SelectAttrValue("ID", ""))
			}
			if el.FindElement(".//Signature") != nil {
				t.Fatal("verified element still has its signature")
			}
			// The verified element is usable by callers.
			vd := etree.NewDocument()
			vd.SetRoot(el)
			b, err := vd.WriteToBytes()
			if err != nil {
				t.Fatal(err)
			}
			if err := xml.Unmarshal(b, &req); err != nil {
				t.Fatal(err)
			}
			if req.Issuer == nil || req.Issuer.Value != sigTestSPEntity {
				t.Fatalf("issuer %+v", req.Issuer)
			}
		})
	}

	t.Run("wrong cert", func(t *testing.T) {
		doc := sigPostDoc(t, sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod))
		if _, err := VerifyPOSTSignature(doc, []*x509.Certificate{k.otherCert, k.ecCert}); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("want ErrBadSignature, got %v", err)
		}
		if _, err := VerifyPOSTSignature(doc, nil); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("no certs: want ErrBadSignature, got %v", err)
		}
	})

	t.Run("expired cert", func(t *testing.T) {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(7),
			Subject:      pkix.Name{CommonName: "expired"},
			NotBefore:    time.Now().Add(-48 * time.Hour),
			NotAfter:     time.Now().Add(-24 * time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.rsaKey.Public(), k.rsaKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		doc := sigPostDoc(t, sigTestSP(k.rsaKey, cert, dsig.RSASHA256SignatureMethod))
		if _, err := VerifyPOSTSignature(doc, []*x509.Certificate{cert}); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("want ErrBadSignature, got %v", err)
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		doc := sigPostDoc(t, sigTestSP(k.rsaKey, k.rsaCert, ""))
		if _, err := VerifyPOSTSignature(doc, both); !errors.Is(err, ErrUnsigned) {
			t.Fatalf("want ErrUnsigned, got %v", err)
		}
	})

	t.Run("rsa-sha1 refused", func(t *testing.T) {
		doc := sigPostDoc(t, sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA1SignatureMethod))
		if _, err := VerifyPOSTSignature(doc, both); !errors.Is(err, ErrUnsupportedSigAlg) {
			t.Fatalf("want ErrUnsupportedSigAlg, got %v", err)
		}
	})

	t.Run("sha1 digest refused", func(t *testing.T) {
		doc := sigSignRoot(t, k, sigUnsignedRequest(t, k, "id-sha1"), crypto.SHA1)
		if _, err := VerifyPOSTSignature(doc, both); !errors.Is(err, ErrUnsupportedSigAlg) {
			t.Fatalf("want ErrUnsupportedSigAlg, got %v", err)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		doc := sigPostDoc(t, sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod))
		tampered := bytes.Replace(doc, []byte("https://sp.example.com/saml/acs"), []byte("https://evil.example/saml/acs"), 1)
		if bytes.Equal(doc, tampered) {
			t.Fatal("nothing tampered")
		}
		if _, err := VerifyPOSTSignature(tampered, both); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("want ErrBadSignature, got %v", err)
		}
	})

	t.Run("DOCTYPE refused", func(t *testing.T) {
		doc := sigPostDoc(t, sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod))
		for _, prefix := range []string{
			`<!DOCTYPE samlp:AuthnRequest>`,
			`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "evil">]>`,
		} {
			if _, err := VerifyPOSTSignature(append([]byte(prefix), doc...), both); !errors.Is(err, ErrMalformedSignedMessage) {
				t.Fatalf("%s: want ErrMalformedSignedMessage, got %v", prefix, err)
			}
		}
	})

	t.Run("not XML", func(t *testing.T) {
		for _, doc := range []string{"", "junk", "<a>", `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="a"/>`} {
			if _, err := VerifyPOSTSignature([]byte(doc), both); !errors.Is(err, ErrMalformedSignedMessage) {
				t.Fatalf("%q: want ErrMalformedSignedMessage, got %v", doc, err)
			}
		}
	})
}

// XML signature wrapping: a validly signed request is moved around and an
// unsigned forged one takes the place the IdP reads. All must fail.
func TestVerifyPOSTSignatureWrapping(t *testing.T) {
	k := sigTestKeys(t)
	certs := []*x509.Certificate{k.rsaCert}
	signedDoc := sigPostDoc(t, sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod))
	parse := func() *etree.Element {
		d := etree.NewDocument()
		if err := d.ReadFromBytes(signedDoc); err != nil {
			t.Fatal(err)
		}
		return d.Root()
	}
	signedID := parse().SelectAttrValue("ID", "")

	// forged returns an unsigned AuthnRequest with the given ID and an
	// attacker's ACS URL, with a samlp:Extensions child.
	forged := func(id string) (*etree.Element, *etree.Element) {
		f := parse()
		f.RemoveChild(f.SelectElement("Signature"))
		f.CreateAttr("ID", id)
		f.CreateAttr("AssertionConsumerServiceURL", "https://evil.example/acs")
		ext := etree.NewElement("samlp:Extensions")
		f.InsertChildAt(1, ext) // after Issuer
		return f, ext
	}
	serialize := func(root *etree.Element) []byte {
		d := etree.NewDocument()
		d.SetRoot(root)
		b, err := d.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	cases := map[string][]byte{}

	// 1. signed request under the forged root's Extensions, other ID.
	{
		f, ext := forged("id-forged")
		ext.AddChild(parse())
		cases["signed under Extensions, forged root other ID"] = serialize(f)
	}
	// 1b. same, and the signature copied as the forged root's child.
	{
		f, ext := forged("id-forged")
		orig := parse()
		f.InsertChildAt(1, orig.SelectElement("Signature").Copy())
		ext.AddChild(orig)
		cases["signed under Extensions, signature copied to forged root"] = serialize(f)
	}
	// 1c. forged root with the signed ID, signed request (and its
	// signature) moved under Extensions.
	{
		f, ext := forged(signedID)
		ext.AddChild(parse())
		cases["signed under Extensions, forged root same ID"] = serialize(f)
	}
	// 1d. forged root with the signed ID and the signature moved to it.
	{
		f, _ := forged(signedID)
		f.InsertChildAt(1, parse().SelectElement("Signature").Copy())
		cases["forged root same ID, signature moved"] = serialize(f)
	}
	// 2. a second AuthnRequest as sibling of the signed one.
	{
		f, _ := forged("id-forged")
		cases["forged sibling after"] = append(append([]byte{}, signedDoc...), serialize(f)...)
		cases["forged sibling before"] = append(serialize(f), signedDoc...)
		wrapper := etree.NewElement("samlp:Wrapper")
		wrapper.CreateAttr("xmlns:samlp", "urn:oasis:names:tc:SAML:2.0:protocol")
		wrapper.AddChild(f)
		wrapper.AddChild(parse())
		cases["siblings in a wrapper"] = serialize(wrapper)
	}
	// 3. a genuine signature (by the trusted key) whose Reference points at
	// another element (the Extensions), placed on the root.
	{
		root := sigUnsignedRequest(t, k, "id-root")
		ext := root.SelectElement("Extensions")
		ext.CreateAttr("ID", "id-ext")
		sctx := sigSigningContext(t, k, crypto.SHA256)
		signedExt, err := sctx.SignEnveloped(ext)
		if err != nil {
			t.Fatal(err)
		}
		sig := signedExt.ChildElements()[len(signedExt.ChildElements())-1]
		root.InsertChildAt(ext.Index(), signedExt)
		root.RemoveChild(ext)
		cases["Reference to another element, signature inside it"] = serialize(root.Copy())
		signedExt.RemoveChild(sig)
		root.InsertChildAt(1, sig)
		cases["Reference to another element, signature on root"] = serialize(root)
	}
	// 4. an empty Reference URI (whole document) is not "#"+ID.
	{
		d := etree.NewDocument()
		if err := d.ReadFromBytes(signedDoc); err != nil {
			t.Fatal(err)
		}
		d.FindElement("//Reference").CreateAttr("URI", "")
		b, _ := d.WriteToBytes()
		cases["empty Reference URI"] = b
	}
	// 5. two signatures on the root.
	{
		r := parse()
		r.InsertChildAt(1, r.SelectElement("Signature").Copy())
		cases["two signatures"] = serialize(r)
	}

	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			el, err := VerifyPOSTSignature(doc, certs)
			if err == nil {
				t.Fatalf("wrapped document verified; element ID=%s ACS=%s",
					el.SelectAttrValue("ID", ""), el.SelectAttrValue("AssertionConsumerServiceURL", ""))
			}
			t.Log(err)
		})
	}

	// The untouched document still verifies (the cases above are not
	// failing for some unrelated reason).
	if _, err := VerifyPOSTSignature(signedDoc, certs); err != nil {
		t.Fatal(err)
	}
}

// sigUnsignedRequest returns a crewjam AuthnRequest element with the given ID
// and an empty samlp:Extensions after the Issuer.
func sigUnsignedRequest(t testing.TB, k *sigKeys, id string) *etree.Element {
	t.Helper()
	sp := sigTestSP(k.rsaKey, k.rsaCert, "")
	req, err := sp.MakeAuthenticationRequest(sigTestIdPSSO, crewjam.HTTPPostBinding, crewjam.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	req.ID = id
	el := req.Element()
	ext := etree.NewElement("samlp:Extensions")
	ext.CreateAttr("xmlns:samlp", "urn:oasis:names:tc:SAML:2.0:protocol")
	el.InsertChildAt(1, ext)
	return el
}

func sigSigningContext(t testing.TB, k *sigKeys, h crypto.Hash) *dsig.SigningContext {
	t.Helper()
	sctx, err := dsig.NewSigningContext(k.rsaKey, [][]byte{k.rsaCert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	sctx.Hash = h
	sctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	return sctx
}

// sigSignRoot signs root (RSA, digest and signature hash h) and serializes it.
func sigSignRoot(t testing.TB, k *sigKeys, root *etree.Element, h crypto.Hash) []byte {
	t.Helper()
	signed, err := sigSigningContext(t, k, h).SignEnveloped(root)
	if err != nil {
		t.Fatal(err)
	}
	d := etree.NewDocument()
	d.SetRoot(signed)
	b, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSPSigningCerts(t *testing.T) {
	k := sigTestKeys(t)
	sp := sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod)
	sp.Intermediates = []*x509.Certificate{k.otherCert} // crewjam concatenates the chain
	ed := sp.Metadata()
	got := SPSigningCerts(ed)
	if len(got) != 1 || !got[0].Equal(k.rsaCert) {
		t.Fatalf("got %d certs, want the SP's signing cert only", len(got))
	}

	b64 := func(c *x509.Certificate) string {
		s := base64.StdEncoding.EncodeToString(c.Raw)
		return s[:10] + "\n  " + s[10:] // line breaks as in real metadata
	}
	kd := func(use string, c *x509.Certificate) crewjam.KeyDescriptor {
		return crewjam.KeyDescriptor{Use: use, KeyInfo: crewjam.KeyInfo{X509Data: crewjam.X509Data{
			X509Certificates: []crewjam.X509Certificate{{Data: b64(c)}},
		}}}
	}
	ed = &crewjam.EntityDescriptor{SPSSODescriptors: []crewjam.SPSSODescriptor{{
		SSODescriptor: crewjam.SSODescriptor{RoleDescriptor: crewjam.RoleDescriptor{KeyDescriptors: []crewjam.KeyDescriptor{
			kd("encryption", k.otherCert),
			kd("", k.ecCert),
			kd("signing", k.rsaCert),
			kd("signing", k.rsaCert), // duplicate
			{Use: "signing", KeyInfo: crewjam.KeyInfo{X509Data: crewjam.X509Data{
				X509Certificates: []crewjam.X509Certificate{{Data: "not base64!"}, {Data: "AAAA"}},
			}}},
		}}},
	}}}
	got = SPSigningCerts(ed)
	if len(got) != 2 || !got[0].Equal(k.ecCert) || !got[1].Equal(k.rsaCert) {
		t.Fatalf("got %d certs", len(got))
	}
	if SPSigningCerts(nil) != nil {
		t.Fatal("nil metadata")
	}
}

func FuzzVerifyRedirect(f *testing.F) {
	k := sigTestKeys(f)
	certs := []*x509.Certificate{k.rsaCert, k.ecCert}
	good := sigRedirectQuery(f, sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod), "state")
	f.Add(good)
	f.Add(sigRedirectQuery(f, sigTestSP(k.ecKey, k.ecCert, dsig.ECDSASHA256SignatureMethod), ""))
	f.Add(sigRedirectQuery(f, sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA1SignatureMethod), "s"))
	f.Add(good + "&SAMLRequest=x")
	f.Add("SAMLRequest=&Signature=&SigAlg=")
	f.Add("Signature=%")
	f.Add("")
	f.Fuzz(func(t *testing.T, q string) {
		_ = VerifyRedirectSignature(q, certs)
	})
}

func FuzzVerifyPOST(f *testing.F) {
	k := sigTestKeys(f)
	certs := []*x509.Certificate{k.rsaCert, k.ecCert}
	good := sigPostDoc(f, sigTestSP(k.rsaKey, k.rsaCert, dsig.RSASHA256SignatureMethod))
	f.Add(good)
	f.Add(sigPostDoc(f, sigTestSP(k.ecKey, k.ecCert, dsig.ECDSASHA256SignatureMethod)))
	f.Add(sigPostDoc(f, sigTestSP(k.rsaKey, k.rsaCert, "")))
	f.Add(append([]byte("<!DOCTYPE x>"), good...))
	f.Add([]byte(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="a"><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></samlp:AuthnRequest>`))
	f.Add([]byte("<a"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		el, err := VerifyPOSTSignature(doc, certs)
		if err == nil && (el == nil || el.SelectAttrValue("ID", "") == "") {
			t.Fatalf("verified without an element with an ID")
		}
	})
}
