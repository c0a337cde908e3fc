package main

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"
)

// samlSP is crewjam's own service-provider middleware (samlsp) in front of
// a page that shows who signed in.
type samlSP struct {
	url  *url.URL
	opts samlsp.Options
	l    net.Listener
}

// newSAMLSP makes the SP's key and certificate and writes its metadata
// to dir/sp.xml, before the bridge (which reads it) starts. With
// signRequests the SP signs its AuthnRequests (with RSA-SHA256) and its
// metadata says so.
func newSAMLSP(t *testing.T, dir string, signRequests bool) *samlSP {
	t.Helper()
	l := listenLoopback(t)
	u, _ := url.Parse("http://" + l.Addr().String())
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test SP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	sp := &samlSP{url: u, l: l, opts: samlsp.Options{URL: *u, Key: key, Certificate: cert, SignRequest: signRequests, AllowIDPInitiated: true}}
	def := samlsp.DefaultServiceProvider(sp.opts)
	md := def.Metadata()
	b, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sp.xml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return sp
}

// serve fetches the bridge's IdP metadata and serves the SP.
func (sp *samlSP) serve(t *testing.T, idpMetadataURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, _ := url.Parse(idpMetadataURL)
	md, err := samlsp.FetchMetadata(ctx, http.DefaultClient, *u)
	if err != nil {
		t.Fatal(err)
	}
	sp.opts.IDPMetadata = md
	mw, err := samlsp.New(sp.opts)
	if err != nil {
		t.Fatal(err)
	}
	if sp.opts.SignRequest {
		// samlsp signs with RSA-SHA1 by default, which the bridge refuses.
		mw.ServiceProvider.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	mux := http.NewServeMux()
	mux.Handle("/saml/", mw)
	mux.Handle("/", mw.RequireAccount(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s <%s>", samlsp.AttributeFromContext(r.Context(), "uid"), samlsp.AttributeFromContext(r.Context(), "email"))
	})))
	srv := &http.Server{Handler: mux}
	go srv.Serve(sp.l)
	t.Cleanup(func() { srv.Close() })
}

var (
	formActionRe = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRe     = regexp.MustCompile(`<input type="hidden" name="(SAMLResponse|RelayState)" value="([^"]*)">`)
)

// postForm submits the auto-posting response form of page p, as the
// page's script would, and returns where the browser lands.
func postSAMLForm(t *testing.T, br *browser, p page) (page, string) {
	t.Helper()
	m := formActionRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no response form at %s (%d):\n%s", p.url, p.status, p.body)
	}
	form := url.Values{}
	for _, f := range hiddenRe.FindAllStringSubmatch(p.body, -1) {
		form.Set(f[1], html.UnescapeString(f[2]))
	}
	req, _ := http.NewRequest(http.MethodPost, html.UnescapeString(m[1]), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	raw, _ := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	return br.do(req), string(raw)
}

func TestSAMLWithCrewjamSP(t *testing.T) {
	b, sp := startSAMLBridge(t, false, `saml:
  service_providers:
    - name: wiki
      display_name: Team wiki
      metadata_file: sp.xml
      allow_idp_initiated: true
`)
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com")
	phone := b.enroll("alice")
	md := newBrowser(t).get(b.baseURL() + "/saml/metadata")
	for _, want := range []string{"SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\"",
		"SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\"", "X509Certificate"} {
		if !strings.Contains(md.body, want) {
			t.Errorf("the IdP metadata lacks %s:\n%s", want, md.body)
		}
	}

	br := newBrowser(t)
	wait := signIn(t, br, sp.url.String()+"/", "alice")
	done := approve(t, b, br, wait, phone)
	if done.url.Path != "/saml/login/done" {
		t.Fatalf("after approval: %s (%d)", done.url, done.status)
	}
	if csp := done.status; csp != http.StatusOK {
		t.Fatalf("response page: %d", csp)
	}
	landed, response := postSAMLForm(t, br, done)
	if landed.status != http.StatusOK || landed.body != "hello alice <alice@example.com>" {
		t.Fatalf("the SP did not accept the assertion: %d %s\n%s", landed.status, landed.body, response)
	}
	// What the SP accepted: signed with RSA-SHA256 (crewjam's default
	// would be RSA-SHA1), both the Response and the Assertion; MFA as
	// the authentication context; the SP as the audience.
	for _, want := range []string{
		`Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"`,
		"https://refeds.org/profile/mfa",
		"<saml:Audience>" + sp.url.String() + "/saml/metadata</saml:Audience>",
		`Recipient="` + sp.url.String() + `/saml/acs"`,
	} {
		if !strings.Contains(response, want) {
			t.Errorf("the response lacks %s:\n%s", want, response)
		}
	}
	if strings.Contains(response, "rsa-sha1") || strings.Count(response, "<ds:SignatureValue>") != 2 {
		t.Errorf("want two RSA-SHA256 signatures:\n%s", response)
	}
	if auditCount(t, b, "saml.sso", "alice") != 1 {
		t.Error("the SAML sign-in was not audited")
	}

	// The same AuthnRequest again (a replay) is refused, on the bridge's
	// own page.
	var sso string
	for _, v := range br.visits {
		if strings.Contains(v, "/saml/sso?") {
			sso = v
		}
	}
	if sso == "" {
		t.Fatalf("no Redirect-binding request seen: %v", br.visits)
	}
	if p := newBrowser(t).get(sso); p.status != http.StatusBadRequest || !strings.Contains(p.body, "used before") {
		t.Errorf("a replayed AuthnRequest: %d\n%s", p.status, p.body)
	}

	// The HTTP-POST binding: a fresh request posted to the SSO endpoint.
	// The browser's session stands in for the push (session reuse is on
	// by default), and the answer goes to the SP as before.
	postReq := samlPOST(t, b, sp)
	req, _ := http.NewRequest(http.MethodPost, b.baseURL()+"/saml/sso", strings.NewReader(postReq.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p := br.do(req); p.url.Path != "/saml/login/done" || p.status != http.StatusOK {
		t.Fatalf("POST binding with a session: %s (%d)\n%s", p.url, p.status, p.body)
	} else if _, resp := postSAMLForm(t, br, p); !strings.Contains(resp, "InResponseTo=") {
		t.Errorf("POST binding response:\n%s", resp)
	}

	// IdP-initiated: a link the operator puts on an intranet page. The
	// session stands in for the push; the SP takes the unsolicited
	// Response.
	if p := br.get(b.baseURL() + "/saml/idp/wiki?RelayState=%2F"); p.url.Path != "/saml/login/done" {
		t.Fatalf("IdP-initiated: %s (%d)\n%s", p.url, p.status, p.body)
	} else if landed, resp := postSAMLForm(t, br, p); landed.body != "hello alice <alice@example.com>" || strings.Contains(resp, "InResponseTo") {
		t.Errorf("IdP-initiated: the SP answered %d %s\n%s", landed.status, landed.body, resp)
	}
	// A RelayState that leaves the SP (an open redirect through it) is
	// refused.
	for _, relay := range []string{"https://evil.example.com/", "//evil.example.com/", "/\t/evil.example.com/", strings.Repeat("/a", 41)} {
		if p := newBrowser(t).get(b.baseURL() + "/saml/idp/wiki?RelayState=" + url.QueryEscape(relay)); p.status != http.StatusBadRequest {
			t.Errorf("IdP-initiated with RelayState %q: %d", relay, p.status)
		}
	}

	// IsPassive from a browser without a session: no page may be shown,
	// so the SP gets NoPassive at once. A context the sign-in cannot meet
	// gets NoAuthnContext after it.
	passive := samlRedirect(t, b, sp, func(r *crewjam.AuthnRequest) { yes := true; r.IsPassive = &yes })
	if p := newBrowser(t).get(passive); !strings.Contains(p.body, "SAMLResponse") {
		t.Fatalf("IsPassive without a session: %d\n%s", p.status, p.body)
	} else if _, resp := postSAMLForm(t, newBrowser(t), p); !strings.Contains(resp, crewjam.StatusNoPassive) || strings.Contains(resp, "Assertion") {
		t.Errorf("IsPassive without a session:\n%s", resp)
	}
	better := samlRedirect(t, b, sp, func(r *crewjam.AuthnRequest) {
		r.RequestedAuthnContext = &crewjam.RequestedAuthnContext{Comparison: "better", AuthnContextClassRef: "https://refeds.org/profile/mfa"}
	})
	if p := br.get(better); !strings.Contains(p.body, "SAMLResponse") {
		t.Fatalf("an unmeetable context: %d\n%s", p.status, p.body)
	} else if _, resp := postSAMLForm(t, newBrowser(t), p); !strings.Contains(resp, crewjam.StatusNoAuthnContext) || strings.Contains(resp, "<saml:Assertion") {
		t.Errorf("an unmeetable context:\n%s", resp)
	}

	// SP-initiated Single Logout: the SP sends the browser with a
	// LogoutRequest naming the user; the bridge ends the session and
	// answers with a LogoutResponse the SP's own library validates. The
	// next sign-in asks again.
	nameID := regexp.MustCompile(`<saml:NameID[^>]*>([^<]+)</saml:NameID>`).FindStringSubmatch(response)
	if nameID == nil {
		t.Fatalf("no NameID in the response:\n%s", response)
	}
	sessionIndex := regexp.MustCompile(`SessionIndex="([^"]+)"`).FindStringSubmatch(response)
	if sessionIndex == nil {
		t.Fatalf("no SessionIndex in the response:\n%s", response)
	}
	spLib := samlsp.DefaultServiceProvider(sp.opts)
	logoutRequest := func(index string) *url.URL {
		lr, err := spLib.MakeLogoutRequest(b.baseURL()+"/saml/slo", nameID[1])
		if err != nil {
			t.Fatal(err)
		}
		if index != "" {
			lr.SessionIndex = &crewjam.SessionIndex{Value: index}
		}
		return lr.Redirect("bye")
	}
	// Unsigned and without the SessionIndex (anyone can send a browser
	// with that, the NameID guessed): the session stays.
	if p := br.get(logoutRequest("").String()); !strings.Contains(p.body, "SAMLResponse") {
		t.Fatalf("LogoutRequest without a SessionIndex: %d\n%s", p.status, p.body)
	}
	if p := br.get(samlRedirect(t, b, sp, func(*crewjam.AuthnRequest) {})); p.url.Path != "/saml/login/done" {
		t.Fatalf("an unsigned LogoutRequest naming only the NameID ended the session: %s", p.url)
	}
	// With the SessionIndex the bridge gave this SP: the session ends.
	logoutURL := logoutRequest(sessionIndex[1])
	lp := br.get(logoutURL.String())
	m := regexp.MustCompile(`name="SAMLResponse" value="([^"]+)"`).FindStringSubmatch(lp.body)
	if m == nil {
		t.Fatalf("no LogoutResponse: %d\n%s", lp.status, lp.body)
	}
	if err := spLib.ValidateLogoutResponseForm(html.UnescapeString(m[1])); err != nil {
		t.Errorf("crewjam's SP rejects the LogoutResponse: %v", err)
	}
	if auditCount(t, b, "saml.logout", "alice") != 1 {
		t.Error("the logout was not audited")
	}
	if p := br.get(samlRedirect(t, b, sp, func(*crewjam.AuthnRequest) {})); !strings.Contains(p.body, `name="username"`) {
		t.Errorf("after Single Logout the session still signs the browser in: %s\n%s", p.url, p.body)
	}
	// A replayed LogoutRequest is refused.
	if p := newBrowser(t).get(logoutURL.String()); p.status != http.StatusBadRequest {
		t.Errorf("a replayed LogoutRequest: %d", p.status)
	}

	// An AuthnRequest from an unknown SP, or asking for an ACS URL the SP
	// did not register, gets an error page and no redirect.
	for name, mutate := range map[string]func(*crewjam.AuthnRequest){
		"unknown SP":  func(r *crewjam.AuthnRequest) { r.Issuer.Value = "https://evil.example.com/metadata" },
		"foreign ACS": func(r *crewjam.AuthnRequest) { r.AssertionConsumerServiceURL = "https://evil.example.com/acs" },
		"no Issuer":   func(r *crewjam.AuthnRequest) { r.Issuer = nil },
		"the artifact ACS by index": func(r *crewjam.AuthnRequest) {
			r.AssertionConsumerServiceURL, r.ProtocolBinding, r.AssertionConsumerServiceIndex = "", "", "2"
		},
		"PAOS":    func(r *crewjam.AuthnRequest) { r.ProtocolBinding = "urn:oasis:names:tc:SAML:2.0:bindings:PAOS" },
		"expired": func(r *crewjam.AuthnRequest) { r.IssueInstant = time.Now().Add(-10 * time.Minute) },
	} {
		u := samlRedirect(t, b, sp, mutate)
		other := newBrowser(t)
		if p := other.get(u); p.status != http.StatusBadRequest || len(other.visits) != 0 {
			t.Errorf("%s: %d, redirects %v", name, p.status, other.visits)
		}
	}
	// A deflate bomb: a few KiB that inflate to 8 MiB.
	var bomb bytes.Buffer
	fw, _ := flate.NewWriter(&bomb, 9)
	fw.Write([]byte("<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">"))
	fw.Write(bytes.Repeat([]byte("<x/>"), 2<<20))
	fw.Close()
	if p := newBrowser(t).get(b.baseURL() + "/saml/sso?SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(bomb.Bytes()))); p.status != http.StatusBadRequest {
		t.Errorf("a deflate bomb: %d", p.status)
	}
}

// startSAMLBridge runs the bridge with the saml section samlYAML (its SP
// metadata_file sp.xml) in front of a crewjam SP whose metadata that file
// holds; the SP signs its requests with signRequests.
func startSAMLBridge(t *testing.T, signRequests bool, samlYAML string) (*liveBridge, *samlSP) {
	t.Helper()
	bin, phoneBin := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin, phone: phoneBin}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	sp := newSAMLSP(t, b.dir, signRequests)
	b.public = freePort(t)
	b.start(b.baseConfig(nil) + samlYAML)
	sp.serve(t, b.baseURL()+"/saml/metadata")
	return b, sp
}

// samlRedirect makes a fresh Redirect-binding AuthnRequest of the test SP,
// changed by mutate, and returns its URL.
func samlRedirect(t *testing.T, b *liveBridge, sp *samlSP, mutate func(*crewjam.AuthnRequest), sigMethod ...string) string {
	t.Helper()
	s := samlsp.DefaultServiceProvider(sp.opts)
	s.SignatureMethod = ""
	if len(sigMethod) > 0 {
		s.SignatureMethod = sigMethod[0]
	}
	req, err := s.MakeAuthenticationRequest(b.baseURL()+"/saml/sso", crewjam.HTTPRedirectBinding, crewjam.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	mutate(req)
	u, err := req.Redirect("relay", &s)
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// samlPOST makes a fresh POST-binding AuthnRequest of the test SP and
// returns its form.
func samlPOST(t *testing.T, b *liveBridge, sp *samlSP) url.Values {
	t.Helper()
	s := samlsp.DefaultServiceProvider(sp.opts)
	req, err := s.MakeAuthenticationRequest(b.baseURL()+"/saml/sso", crewjam.HTTPPostBinding, crewjam.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	doc := etreeDocument(req)
	return url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {"relay-1"}}
}

func etreeDocument(req *crewjam.AuthnRequest) []byte {
	b, err := xml.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

// sign_response and sign_assertion: what is signed is what the config
// says, and crewjam's SP accepts each.
func TestSAMLSigningOptions(t *testing.T) {
	for _, tc := range []struct {
		setting                   string
		responseSig, assertionSig bool
	}{
		{"sign_assertion: false", true, false},
		{"sign_response: false", false, true},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			b, sp := startSAMLBridge(t, false, "saml:\n  service_providers:\n    - name: wiki\n      metadata_file: sp.xml\n      "+tc.setting+"\n")
			b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com")
			phone := b.enroll("alice")
			br := newBrowser(t)
			landed, resp := postSAMLForm(t, br, approve(t, b, br, signIn(t, br, sp.url.String()+"/", "alice"), phone))
			if landed.body != "hello alice <alice@example.com>" {
				t.Fatalf("the SP answered %d %s\n%s", landed.status, landed.body, resp)
			}
			// The Response's signature comes right after its Issuer; the
			// Assertion's inside the Assertion.
			assertion := resp[strings.Index(resp, "<saml:Assertion"):]
			if got := strings.Count(resp, "<ds:SignatureValue>") - strings.Count(assertion, "<ds:SignatureValue>"); (got == 1) != tc.responseSig {
				t.Errorf("Response signatures: %d\n%s", got, resp)
			}
			if got := strings.Count(assertion, "<ds:SignatureValue>"); (got == 1) != tc.assertionSig {
				t.Errorf("Assertion signatures: %d\n%s", got, resp)
			}
		})
	}
}

// An SP that must sign its requests (require_signed_requests) gets a
// sign-in only for a request signed with a key of its metadata; unsigned,
// tampered and RSA-SHA1-signed requests are refused.
func TestSAMLSignedRequests(t *testing.T) {
	b, sp := startSAMLBridge(t, true, `saml:
  service_providers:
    - name: wiki
      metadata_file: sp.xml
      require_signed_requests: true
`)

	br := newBrowser(t)
	form := br.get(sp.url.String() + "/")
	if form.status != http.StatusOK || !strings.Contains(form.body, `name="username"`) {
		t.Fatalf("a signed request did not reach the sign-in form: %s (%d)\n%s", form.url, form.status, form.body)
	}
	var signed string
	for _, v := range br.visits {
		if strings.Contains(v, "/saml/sso?") {
			signed = v
		}
	}
	if !strings.Contains(signed, "Signature=") {
		t.Fatalf("the SP did not sign: %s", signed)
	}
	refused := func(name, u string) {
		t.Helper()
		other := newBrowser(t)
		if p := other.get(u); p.status != http.StatusBadRequest || !strings.Contains(p.body, "signature") {
			t.Errorf("%s: %d\n%s", name, p.status, p.body)
		}
	}
	refused("unsigned", samlRedirect(t, b, sp, func(*crewjam.AuthnRequest) {}, ""))
	// IdP-initiated sign-in is off unless the SP's config turns it on.
	if p := newBrowser(t).get(b.baseURL() + "/saml/idp/wiki"); p.status != http.StatusNotFound {
		t.Errorf("IdP-initiated without allow_idp_initiated: %d", p.status)
	}
	refused("RSA-SHA1", samlRedirect(t, b, sp, func(*crewjam.AuthnRequest) {}, dsig.RSASHA1SignatureMethod))
	u, _ := url.Parse(samlRedirect(t, b, sp, func(*crewjam.AuthnRequest) {}, dsig.RSASHA256SignatureMethod))
	q := u.RawQuery
	u.RawQuery = strings.Replace(q, "RelayState=", "RelayState=x", 1)
	if u.RawQuery == q {
		u.RawQuery = q + "&RelayState=forged"
	}
	refused("tampered", u.String())
}

// encrypt_assertion: the assertion goes to the SP encrypted to its
// metadata's certificate, and crewjam's SP decrypts it.
func TestSAMLEncryptedAssertion(t *testing.T) {
	b, sp := startSAMLBridge(t, false, `saml:
  service_providers:
    - name: wiki
      metadata_file: sp.xml
      encrypt_assertion: true
`)
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com")
	phone := b.enroll("alice")
	br := newBrowser(t)
	done := approve(t, b, br, signIn(t, br, sp.url.String()+"/", "alice"), phone)
	landed, response := postSAMLForm(t, br, done)
	if landed.body != "hello alice <alice@example.com>" {
		t.Fatalf("the SP did not accept the encrypted assertion: %d %s", landed.status, landed.body)
	}
	if !strings.Contains(response, "EncryptedAssertion") || strings.Contains(response, "alice@example.com") {
		t.Errorf("the assertion went in clear:\n%s", response)
	}
}

// signature_algorithm ecdsa-sha256: a P-256 key signs, crewjam's SP
// verifies; and a second node on the same store publishes the very same
// certificate (it is made once and kept in the store).
func TestSAMLECDSAAndOneCertificate(t *testing.T) {
	bin, phoneBin := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin, phone: phoneBin}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	sp := newSAMLSP(t, b.dir, false)
	b.public = freePort(t)
	samlSection := `saml:
  signature_algorithm: ecdsa-sha256
  service_providers:
    - name: wiki
      metadata_file: sp.xml
`
	b.start(b.baseConfig(nil) + samlSection)
	sp.serve(t, b.baseURL()+"/saml/metadata")
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com")
	phone := b.enroll("alice")
	br := newBrowser(t)
	landed, resp := postSAMLForm(t, br, approve(t, b, br, signIn(t, br, sp.url.String()+"/", "alice"), phone))
	if landed.body != "hello alice <alice@example.com>" {
		t.Fatalf("the SP did not accept the ECDSA-signed response: %d %s\n%s", landed.status, landed.body, resp)
	}
	if !strings.Contains(resp, "ecdsa-sha256") || strings.Contains(resp, "rsa-sha") {
		t.Errorf("not signed with ECDSA-SHA256:\n%s", resp)
	}

	// A second node: same data directory (the same SQLite store and KEK),
	// its own ports and its own audit spool (a spool is one process's).
	b2 := &liveBridge{t: t, dir: b.dir, bin: bin, phone: phoneBin, cfg: filepath.Join(b.dir, "node2.yaml"), public: freePort(t)}
	b2.start(b2.baseConfig(nil) + samlSection + "storage:\n  audit_spool: {path: ./data/node2.audit-spool}\n")
	cert := regexp.MustCompile(`<X509Certificate[^>]*>([^<]+)</`)
	m1 := cert.FindStringSubmatch(newBrowser(t).get(b.baseURL() + "/saml/metadata").body)
	m2 := cert.FindStringSubmatch(newBrowser(t).get(b2.baseURL() + "/saml/metadata").body)
	if m1 == nil || m2 == nil || m1[1] != m2[1] {
		t.Errorf("the nodes publish different certificates:\n%v\n%v", m1, m2)
	}
}
