package saml

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
)

// Config is the runtime configuration of the identity provider.
type Config struct {
	// BaseURL is the public listener's URL: the entity id is
	// BaseURL/saml/metadata.
	BaseURL           string
	AssertionLifetime time.Duration
	// ClockSkew is how far an AuthnRequest's IssueInstant may be from the
	// bridge's clock.
	ClockSkew time.Duration
	// SignatureAlgorithm is rsa-sha256 (default) or rsa-sha512.
	SignatureAlgorithm string
	ServiceProviders   []*ServiceProvider
	// NameIDKey keys the persistent NameIDs (the same on every node).
	NameIDKey []byte
}

// ServiceProvider is a registered SP.
type ServiceProvider struct {
	Name     string
	Metadata *saml.EntityDescriptor
	// App is the application as the sign-in pages know it.
	App               web.App
	NameIDFormat      string // persistent, emailAddress, transient, unspecified
	AssertionLifetime time.Duration
	// SignResponse and SignAssertion say what is signed: the Response,
	// the Assertion, or both (at least one).
	SignResponse, SignAssertion bool
	// AllowIDPInitiated lets sign-ins to this SP start at the bridge.
	AllowIDPInitiated bool
	// EncryptAssertion encrypts the assertion to the encryption
	// certificate of the SP's metadata (crewjam's XML Encryption 1.0:
	// AES-128-CBC with RSA-OAEP), inside the signed Response.
	EncryptAssertion bool
	// RequireSignedRequests demands signed AuthnRequests (also demanded
	// when the metadata says AuthnRequestsSigned="true"), verified against
	// the signing certificates of the SP's metadata.
	RequireSignedRequests bool
	Attributes            []Attribute
}

// Attribute maps a user property to an assertion attribute.
type Attribute struct {
	Name       string
	From       string // username, email, name, groups, value
	Value      string // with From value
	NameFormat string // basic, uri, unspecified
}

// Keys is the key manager as the IdP uses it.
type Keys interface {
	Signer(purpose store.KeyPurpose, alg string) (keys.Key, error)
}

// Auditor records audit events (a store.AuditBatcher).
type Auditor interface {
	Append(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Deps are the IdP's collaborators.
type Deps struct {
	Store  store.Grants
	Replay store.Replay
	Keys   Keys
	Flow   *web.Flow
	Audit  Auditor
	Logger *slog.Logger
	Now    func() time.Time
}

// IdP is the bridge's SAML identity provider.
type IdP struct {
	cfg   Config
	d     Deps
	log   *slog.Logger
	now   func() time.Time
	base  *url.URL
	mu    sync.Mutex
	certs map[string]*x509.Certificate // by key id
	// spMu guards sps: metadata fetched from a URL is swapped in while
	// requests are served.
	spMu sync.RWMutex
	sps  map[string]*ServiceProvider // by entity id
	// limit bounds the unauthenticated requests an address can make the
	// bridge store (requests, sign-ins) and audit.
	limit *web.Limiter
}

// requestsPerMinute is how many SSO, IdP-initiated and logout requests an
// address may send per minute.
const requestsPerMinute = 300

// allow counts a request from r's address and reports whether it is under
// the limit; if not, it has answered.
func (i *IdP) allow(w http.ResponseWriter, r *http.Request) bool {
	if i.limit.Take(web.AddressKey(i.d.Flow.ClientIP(r))) {
		return true
	}
	i.errorPage(w, r, http.StatusTooManyRequests, web.ErrorBusy, "Too many sign-in requests from this address.")
	return false
}

// New builds the identity provider.
func New(cfg Config, d Deps) (*IdP, error) {
	if d.Store == nil || d.Replay == nil || d.Keys == nil || d.Flow == nil || d.Audit == nil {
		return nil, errors.New("saml: store, replay cache, keys, sign-in flow and auditor are required")
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("saml: base URL %q is not absolute", cfg.BaseURL)
	}
	if len(cfg.NameIDKey) < 32 {
		return nil, errors.New("saml: a 32-byte NameID key is required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	i := &IdP{cfg: cfg, d: d, log: d.Logger, now: d.Now, sps: map[string]*ServiceProvider{}, base: base, certs: map[string]*x509.Certificate{},
		limit: web.NewLimiter(requestsPerMinute, time.Minute, d.Now)}
	for _, sp := range cfg.ServiceProviders {
		if sp.Metadata == nil || sp.Metadata.EntityID == "" {
			return nil, fmt.Errorf("saml: service provider %q has no entity id", sp.Name)
		}
		if _, dup := i.sps[sp.Metadata.EntityID]; dup {
			return nil, fmt.Errorf("saml: entity id %q is registered twice", sp.Metadata.EntityID)
		}
		if len(sp.Metadata.SPSSODescriptors) == 0 {
			return nil, fmt.Errorf("saml: service provider %q: no SPSSODescriptor in its metadata", sp.Name)
		}
		if !sp.SignResponse && !sp.SignAssertion {
			return nil, fmt.Errorf("saml: service provider %q: neither the Response nor the Assertion would be signed", sp.Name)
		}
		if sp.EncryptAssertion {
			if !hasEncryptionKey(sp.Metadata) {
				return nil, fmt.Errorf("saml: service provider %q: encrypt_assertion, but its metadata has no encryption certificate", sp.Name)
			}
		} else {
			sp.Metadata = signingKeysOnly(sp.Metadata)
		}
		i.sps[sp.Metadata.EntityID] = sp
	}
	if _, err := i.provider(); err != nil {
		return nil, err
	}
	return i, nil
}

// EntityID is the IdP's entity id (its metadata URL).
func (i *IdP) EntityID() string { u := i.url("/saml/metadata"); return u.String() }

func (i *IdP) url(path string) url.URL {
	u := *i.base
	u.Path = u.Path + path
	return u
}

// provider is crewjam's IdP with the current signing key.
func (i *IdP) provider() (*saml.IdentityProvider, error) {
	alg := keys.AlgRS256
	if i.cfg.SignatureAlgorithm == "ecdsa-sha256" {
		alg = keys.AlgES256
	}
	k, err := i.d.Keys.Signer(store.PurposeSAML, alg)
	if err != nil {
		return nil, fmt.Errorf("saml: no %s signing key: %w", alg, err)
	}
	cert, err := i.certificate(context.Background(), k)
	if err != nil {
		return nil, err
	}
	lifetime := i.cfg.AssertionLifetime
	return &saml.IdentityProvider{
		Signer:                  k.Signer,
		Certificate:             cert,
		Logger:                  logAdapter{i.log},
		MetadataURL:             i.url("/saml/metadata"),
		SSOURL:                  i.url("/saml/sso"),
		LogoutURL:               i.url("/saml/slo"),
		ServiceProviderProvider: registry{i},
		SignatureMethod:         i.signatureMethod(),
		ValidDuration:           &lifetime,
		ResponseFormTemplate:    postForm,
	}, nil
}

// signatureMethod is the XML signature method: RSA-SHA256 unless the
// config says RSA-SHA512 (crewjam's own default is RSA-SHA1).
func (i *IdP) signatureMethod() string {
	switch i.cfg.SignatureAlgorithm {
	case "rsa-sha512":
		return dsig.RSASHA512SignatureMethod
	case "ecdsa-sha256":
		return dsig.ECDSASHA256SignatureMethod
	}
	return dsig.RSASHA256SignatureMethod
}

// certificate is the self-signed certificate of the signing key, which the
// metadata publishes and SPs pin. It is made once and kept in the store
// (an ECDSA-signed certificate differs each time it is made), so every
// node and every restart publishes the same one.
func (i *IdP) certificate(ctx context.Context, k keys.Key) (*x509.Certificate, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if c := i.certs[k.ID]; c != nil {
		return c, nil
	}
	now := i.now()
	g, err := i.d.Store.GetGrant(ctx, grantCertificate, k.ID, now)
	if errors.Is(err, store.ErrNotFound) {
		der, cerr := newCertificate(k)
		if cerr != nil {
			return nil, cerr
		}
		err = i.d.Store.PutGrant(ctx, store.Grant{Kind: grantCertificate, ID: k.ID, Data: der, CreatedAt: now,
			ExpiresAt: k.CreatedAt.AddDate(certYears, 0, 0)})
		if errors.Is(err, store.ErrConflict) { // another node made it first
			g, err = i.d.Store.GetGrant(ctx, grantCertificate, k.ID, now)
		} else {
			g.Data = der
		}
	}
	if err != nil {
		return nil, fmt.Errorf("saml: certificate of the signing key: %w", err)
	}
	c, err := x509.ParseCertificate(g.Data)
	if err != nil {
		return nil, fmt.Errorf("saml: stored certificate of key %s: %w", k.ID, err)
	}
	i.certs[k.ID] = c
	return c, nil
}

// grantCertificate keeps the signing keys' certificates (ID the key id).
const grantCertificate = "saml_certificate"

// certYears is how long a signing key's certificate is valid.
const certYears = 20

func newCertificate(k keys.Key) ([]byte, error) {
	h := sha256.Sum256([]byte(k.ID))
	start := k.CreatedAt.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(h[:16]),
		Subject:      pkix.Name{CommonName: "bridge SAML signing key " + k.ID[:min(12, len(k.ID))]},
		NotBefore:    start,
		NotAfter:     start.AddDate(certYears, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public, k.Signer)
	if err != nil {
		return nil, fmt.Errorf("saml: certificate of the signing key: %w", err)
	}
	return der, nil
}

// hasEncryptionKey reports whether md has a certificate crewjam would
// encrypt to (use encryption, or no use).
func hasEncryptionKey(md *saml.EntityDescriptor) bool {
	for _, d := range md.SPSSODescriptors {
		for _, k := range d.KeyDescriptors {
			if (k.Use == "encryption" || k.Use == "") && len(k.KeyInfo.X509Data.X509Certificates) > 0 &&
				k.KeyInfo.X509Data.X509Certificates[0].Data != "" {
				return true
			}
		}
	}
	return false
}

// signingKeysOnly copies md without the SP's encryption keys: crewjam
// encrypts the assertion to any it finds (a key without a use counts), and
// encryption is not offered yet. Keys without a use are kept for
// signing.
func signingKeysOnly(md *saml.EntityDescriptor) *saml.EntityDescriptor {
	out := *md
	out.SPSSODescriptors = make([]saml.SPSSODescriptor, len(md.SPSSODescriptors))
	for i, d := range md.SPSSODescriptors {
		var kept []saml.KeyDescriptor
		for _, k := range d.KeyDescriptors {
			switch k.Use {
			case "signing":
				kept = append(kept, k)
			case "":
				k.Use = "signing"
				kept = append(kept, k)
			}
		}
		d.KeyDescriptors = kept
		out.SPSSODescriptors[i] = d
	}
	return &out
}

// sp returns the SP registered under entity id, or nil.
func (i *IdP) sp(entityID string) *ServiceProvider {
	i.spMu.RLock()
	defer i.spMu.RUnlock()
	return i.sps[entityID]
}

// UpdateMetadata replaces the metadata of the SP called name (fetched
// again from its URL). The entity id must stay the same: a changed one
// would hand the SP's sign-ins to whoever now controls the document.
func (i *IdP) UpdateMetadata(name string, md *saml.EntityDescriptor) error {
	if md == nil || len(md.SPSSODescriptors) == 0 {
		return fmt.Errorf("saml: %s: metadata without an SPSSODescriptor", name)
	}
	i.spMu.Lock()
	defer i.spMu.Unlock()
	for id, sp := range i.sps {
		if sp.Name != name {
			continue
		}
		if md.EntityID != id {
			return fmt.Errorf("saml: %s: the metadata's entity id changed from %q to %q; not taken", name, id, md.EntityID)
		}
		next := *sp
		next.Metadata = md
		if !sp.EncryptAssertion {
			next.Metadata = signingKeysOnly(md)
		} else if !hasEncryptionKey(md) {
			return fmt.Errorf("saml: %s: the new metadata has no encryption certificate; not taken", name)
		}
		i.sps[id] = &next
		return nil
	}
	return fmt.Errorf("saml: no service provider called %q", name)
}

// registry is crewjam's ServiceProviderProvider over the configured SPs.
type registry struct{ i *IdP }

func (r registry) GetServiceProvider(_ *http.Request, id string) (*saml.EntityDescriptor, error) {
	sp := r.i.sp(id)
	if sp == nil {
		return nil, os.ErrNotExist
	}
	return sp.Metadata, nil
}

// Handler serves /saml/metadata, /saml/sso and /saml/login/done.
func (i *IdP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /saml/metadata", i.metadata)
	mux.HandleFunc("GET /saml/sso", i.sso)
	mux.HandleFunc("POST /saml/sso", i.sso)
	mux.HandleFunc("GET /saml/login/done", i.loginDone)
	mux.HandleFunc("GET /saml/idp/{sp}", i.idpInitiated)
	mux.HandleFunc("GET /saml/slo", i.slo)
	mux.HandleFunc("POST /saml/slo", i.slo)
	return mux
}

func (i *IdP) metadata(w http.ResponseWriter, r *http.Request) {
	p, err := i.provider()
	if err != nil {
		i.fail(w, r, err)
		return
	}
	// crewjam lists Single Logout over HTTP-Redirect only; the bridge
	// takes HTTP-POST too.
	md := p.Metadata()
	slo := i.url("/saml/slo")
	md.IDPSSODescriptors[0].SingleLogoutServices = []saml.Endpoint{
		{Binding: saml.HTTPRedirectBinding, Location: slo.String()},
		{Binding: saml.HTTPPostBinding, Location: slo.String()},
	}
	b, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		i.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(b)
}

// request is an AuthnRequest kept while the user signs in (Buffer nil for
// an IdP-initiated sign-in).
type request struct {
	SP         string    `json:"sp"`
	Buffer     []byte    `json:"buf,omitempty"`
	RelayState string    `json:"relay,omitempty"`
	Received   time.Time `json:"received"`
	Binding    string    `json:"binding"`
}

// requestLifetime bounds a sign-in for an AuthnRequest.
const requestLifetime = 15 * time.Minute

func (i *IdP) sso(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !i.allow(w, r) {
		return
	}
	p, err := i.provider()
	if err != nil {
		i.fail(w, r, err)
		return
	}
	// Bounded first (64 KiB inflated): crewjam would inflate up to 10 MiB.
	if _, err := readMessage(r); err != nil {
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The sign-in request could not be read.")
		return
	}
	req, err := saml.NewIdpAuthnRequest(p, r)
	if err != nil {
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The sign-in request could not be read.")
		return
	}
	now := i.now()
	req.Now = now
	if err := validate(req); err != nil {
		issuer := ""
		if req.Request.Issuer != nil {
			issuer = req.Request.Issuer.Value
		}
		i.audit(ctx, "", "saml.sso", issuer, store.ResultFailure, truncate(err.Error(), 200))
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The AuthnRequest comes from an unknown service provider, or names an AssertionConsumerService the SP's metadata does not list.")
		return
	}
	sp := i.sp(req.ServiceProviderMetadata.EntityID)
	if len(req.RelayState) > maxRelayState {
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The RelayState is longer than 80 bytes.")
		return
	}
	if err := i.checkSignature(r, req, sp); err != nil {
		i.audit(ctx, "", "saml.sso", sp.Name, store.ResultFailure, "AuthnRequest signature: "+err.Error())
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The sign-in request's signature is missing or not valid.")
		return
	}
	if req.Request.IssueInstant.After(now.Add(i.cfg.ClockSkew)) {
		i.audit(ctx, "", "saml.sso", sp.Name, store.ResultFailure, "IssueInstant in the future")
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The sign-in request is dated in the future; check the clocks.")
		return
	}
	if req.Request.ID == "" {
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The sign-in request has no ID.")
		return
	}
	// crewjam keeps no record of the requests it answered: a replayed
	// request (same SP, same ID) is refused here, on every node.
	h := sha256.Sum256([]byte(sp.Metadata.EntityID + "\x00" + req.Request.ID))
	if err := i.d.Replay.UseOnce(ctx, "saml-authn-request", base64.RawURLEncoding.EncodeToString(h[:]), now,
		now.Add(saml.MaxIssueDelay+i.cfg.ClockSkew+requestLifetime)); err != nil {
		i.audit(ctx, "", "saml.sso", sp.Name, store.ResultFailure, "AuthnRequest ID used before")
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "This sign-in request was used before.")
		return
	}
	id, err := randomString(16)
	if err != nil {
		i.fail(w, r, err)
		return
	}
	data, _ := json.Marshal(request{SP: sp.Metadata.EntityID, Buffer: req.RequestBuffer, RelayState: req.RelayState,
		Received: now, Binding: i.d.Flow.Bind(w, r)})
	if err := i.d.Store.PutGrant(ctx, store.Grant{Kind: store.GrantSAMLRequest, ID: id, Data: data, CreatedAt: now,
		ExpiresAt: now.Add(requestLifetime)}); err != nil {
		i.fail(w, r, err)
		return
	}
	fresh := req.Request.ForceAuthn != nil && *req.Request.ForceAuthn
	if req.Request.IsPassive != nil && *req.Request.IsPassive {
		// No page may be shown: a usable session answers, else NoPassive.
		if res, err := i.d.Flow.SessionFor(r, sp.App); err != nil || fresh || !sp.App.SessionReuse || !i.d.Flow.SessionMeetsKeys(ctx, sp.App, res) {
			i.audit(ctx, "", "saml.sso", sp.Name, store.ResultFailure, "IsPassive without a usable session")
			i.errorResponse(w, r, req, saml.StatusNoPassive)
			return
		}
	}
	i.d.Flow.Begin(w, r, web.Login{App: sp.App, Fresh: fresh, Return: returnPath(id)})
}

// checkSignature verifies a signed AuthnRequest (crewjam cannot), and
// demands a signature where the SP's metadata (AuthnRequestsSigned) or the
// config says so. A signature that is there is checked even where none is
// demanded.
func (i *IdP) checkSignature(r *http.Request, req *saml.IdpAuthnRequest, sp *ServiceProvider) error {
	required := sp.RequireSignedRequests
	for _, d := range sp.Metadata.SPSSODescriptors {
		if d.AuthnRequestsSigned != nil && *d.AuthnRequestsSigned {
			required = true
		}
	}
	certs := SPSigningCerts(sp.Metadata)
	var (
		err      error
		verified *etree.Element
	)
	if r.Method == http.MethodGet {
		err = VerifyRedirectSignature(r.URL.RawQuery, certs)
	} else {
		verified, err = VerifyPOSTSignature(req.RequestBuffer, certs)
	}
	if errors.Is(err, ErrUnsigned) && !required {
		return nil
	}
	if err != nil {
		return err
	}
	// A signed request must name where it was sent (SAML bindings
	// 3.4.5.2, 3.5.5.2); crewjam checks the value when it is there.
	if req.Request.Destination == "" {
		return errors.New("a signed request without a Destination")
	}
	if verified != nil {
		// From here on only what the signature covers is used: the
		// request is read again from the verified element.
		doc := etree.NewDocument()
		doc.SetRoot(verified)
		b, err := doc.WriteToBytes()
		if err != nil {
			return err
		}
		req.RequestBuffer = b
		if err := validate(req); err != nil {
			return err
		}
	}
	return nil
}

// idpInitiated starts a sign-in to an SP without a request from it (a
// link on an intranet page): /saml/idp/{name}?RelayState=... The answer
// is an unsolicited Response to the SP's POST ACS; the SP decides whether
// it takes those.
func (i *IdP) idpInitiated(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !i.allow(w, r) {
		return
	}
	var sp *ServiceProvider
	i.spMu.RLock()
	for _, s := range i.sps {
		if s.Name == r.PathValue("sp") {
			sp = s
		}
	}
	i.spMu.RUnlock()
	if sp == nil || !sp.AllowIDPInitiated {
		i.errorPage(w, r, http.StatusNotFound, web.ErrorRequest, "There is no service provider of that name that allows IdP-initiated sign-in.")
		return
	}
	// The RelayState comes from whoever made the link: a path on the SP
	// only, so that it cannot turn the SP into an open redirect.
	relay := r.URL.Query().Get("RelayState")
	if !safeRelayState(relay) {
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorRequest, "The RelayState must be a path on the service provider of at most 80 bytes, without control characters.")
		return
	}
	id, err := randomString(16)
	if err != nil {
		i.fail(w, r, err)
		return
	}
	now := i.now()
	data, _ := json.Marshal(request{SP: sp.Metadata.EntityID, RelayState: relay, Received: now, Binding: i.d.Flow.Bind(w, r)})
	if err := i.d.Store.PutGrant(ctx, store.Grant{Kind: store.GrantSAMLRequest, ID: id, Data: data, CreatedAt: now,
		ExpiresAt: now.Add(requestLifetime)}); err != nil {
		i.fail(w, r, err)
		return
	}
	i.d.Flow.Begin(w, r, web.Login{App: sp.App, Return: returnPath(id)})
}

// unsolicited fills req for an IdP-initiated answer: the SP's default
// POST ACS (or its first).
func unsolicited(req *saml.IdpAuthnRequest, sp *ServiceProvider) error {
	req.ServiceProviderMetadata = sp.Metadata
	for d := range sp.Metadata.SPSSODescriptors {
		desc := &sp.Metadata.SPSSODescriptors[d]
		for k := range desc.AssertionConsumerServices {
			acs := &desc.AssertionConsumerServices[k]
			if acs.Binding != saml.HTTPPostBinding {
				continue
			}
			if req.ACSEndpoint == nil || acs.IsDefault != nil && *acs.IsDefault {
				req.SPSSODescriptor, req.ACSEndpoint = desc, acs
			}
		}
	}
	if req.ACSEndpoint == nil {
		return fmt.Errorf("saml: %s has no HTTP-POST AssertionConsumerService", sp.Name)
	}
	return nil
}

// maxRelayState is the longest RelayState (SAML bindings 3.4.3, 3.5.3).
const maxRelayState = 80

// safeRelayState reports whether relay may be an IdP-initiated
// RelayState: empty, or a path on the SP of at most maxRelayState bytes.
// Not "//host" or "/\host" (another host to a browser), and no control
// characters anywhere: browsers drop TAB, CR and LF from URLs, so
// "/\t/evil.example/" would become "//evil.example/" after the check.
func safeRelayState(relay string) bool {
	if relay == "" {
		return true
	}
	if len(relay) > maxRelayState || !strings.HasPrefix(relay, "/") || strings.HasPrefix(relay, "//") || strings.HasPrefix(relay, "/\\") {
		return false
	}
	for i := 0; i < len(relay); i++ {
		if relay[i] < 0x20 || relay[i] == 0x7f {
			return false
		}
	}
	return true
}

func returnPath(id string) string { return "/saml/login/done?id=" + url.QueryEscape(id) }

// loginDone answers the SP once the user has signed in.
func (i *IdP) loginDone(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	g, err := i.d.Store.GetGrant(ctx, store.GrantSAMLRequest, id, i.now())
	var st request
	if err == nil {
		err = json.Unmarshal(g.Data, &st)
	}
	bound := err == nil && st.Binding != "" && hmac.Equal([]byte(st.Binding), []byte(i.d.Flow.BindingHash(r)))
	sp := i.sp(st.SP)
	if !bound || sp == nil || !g.UsedAt.IsZero() {
		i.audit(ctx, "", "saml.sso", st.SP, store.ResultFailure, "the sign-in's answer was asked for by another browser, or twice")
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The SAML request is unknown, expired, or was started in another browser.")
		return
	}
	res, err := i.d.Flow.Finish(r, r.URL.Query().Get("login"), returnPath(id))
	if err != nil || sp.App.Directory == nil || res.Directory != sp.App.Directory.Name() {
		i.audit(ctx, res.User, "saml.sso", sp.Name, store.ResultFailure, "no finished sign-in of this request in this browser")
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "The SAML request is unknown, expired, or was started in another browser.")
		return
	}
	if _, err := i.d.Store.ConsumeGrant(ctx, store.GrantSAMLRequest, id, i.now()); err != nil {
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorExpired, "This sign-in was answered already.")
		return
	}
	p, err := i.provider()
	if err != nil {
		i.fail(w, r, err)
		return
	}
	req := &saml.IdpAuthnRequest{IDP: p, HTTPRequest: r, RelayState: st.RelayState, RequestBuffer: st.Buffer, Now: st.Received}
	if st.Buffer == nil {
		if err := unsolicited(req, sp); err != nil {
			i.fail(w, r, err)
			return
		}
	} else if err := validate(req); err != nil { // as when it was received
		i.fail(w, r, fmt.Errorf("revalidating a stored AuthnRequest: %w", err))
		return
	}
	req.Now = i.now()
	ac, ok := authnContext(&req.Request, res)
	if !ok {
		i.audit(ctx, res.User, "saml.sso", sp.Name, store.ResultFailure, "the requested authentication context cannot be met")
		i.errorResponse(w, r, req, saml.StatusNoAuthnContext)
		return
	}
	if err := i.makeAssertion(req, sp, res, i.d.Flow.ClientIP(r), ac); err != nil {
		i.fail(w, r, err)
		return
	}
	el, err := i.response(req, sp)
	if err != nil {
		i.fail(w, r, err)
		return
	}
	i.audit(ctx, res.User, "saml.sso", sp.Name, store.ResultSuccess, "")
	i.writeForm(w, req, el)
}

// Name ID formats.
const (
	nameIDPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	nameIDTransient   = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	nameIDEmail       = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	nameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
)

// Authentication contexts: REFEDS MFA when a password and a second factor
// were checked, else what was.
const (
	acMFA      = "https://refeds.org/profile/mfa"
	acPassword = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	acMobile   = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileOneFactorContract"
)

// makeAssertion builds the assertion for the signed-in user.
func (i *IdP) makeAssertion(req *saml.IdpAuthnRequest, sp *ServiceProvider, res web.Result, clientIP, ac string) error {
	now := req.Now
	lifetime := sp.AssertionLifetime
	if lifetime <= 0 {
		lifetime = i.cfg.AssertionLifetime
	}
	format, value, err := i.nameID(sp, res)
	if err != nil {
		return err
	}
	idpID := req.IDP.Metadata().EntityID
	id, err := randomString(20)
	if err != nil {
		return err
	}
	req.Assertion = &saml.Assertion{
		ID:           "id-" + id,
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: idpID},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: format, NameQualifier: idpID, SPNameQualifier: sp.Metadata.EntityID, Value: value},
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					Address: clientIP, InResponseTo: req.Request.ID, NotOnOrAfter: now.Add(lifetime), Recipient: req.ACSEndpoint.Location,
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:            now.Add(-i.cfg.ClockSkew),
			NotOnOrAfter:         now.Add(lifetime),
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: sp.Metadata.EntityID}}},
		},
		AuthnStatements: []saml.AuthnStatement{{
			AuthnInstant:    res.AuthTime,
			SessionIndex:    i.sessionIndex(sp, res.Session),
			SubjectLocality: &saml.SubjectLocality{Address: clientIP},
			AuthnContext:    saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{Value: ac}},
		}},
		AttributeStatements: []saml.AttributeStatement{{Attributes: attributes(sp, res)}},
	}
	return nil
}

// nameID is the subject's NameID for sp: a persistent one is an opaque
// value per user and SP (an HMAC), stable across nodes and restarts.
func (i *IdP) nameID(sp *ServiceProvider, res web.Result) (format, value string, err error) {
	switch sp.NameIDFormat {
	case "emailAddress":
		if res.Email == "" {
			return "", "", fmt.Errorf("saml: %s wants an emailAddress NameID, and %s has no e-mail address", sp.Name, res.User)
		}
		return nameIDEmail, res.Email, nil
	case "transient":
		v, err := randomString(20)
		return nameIDTransient, "_" + v, err
	case "unspecified":
		return nameIDUnspecified, res.User, nil
	default:
		m := hmac.New(sha256.New, i.cfg.NameIDKey)
		m.Write([]byte(sp.Metadata.EntityID + "\x00" + res.Directory + "\x00" + res.User))
		return nameIDPersistent, base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
	}
}

// sessionIndex is the SessionIndex the SP gets for a browser session: an
// HMAC per SP, so SPs cannot link a user through it and it is not the
// session's key in the store; "" without a session.
func (i *IdP) sessionIndex(sp *ServiceProvider, session string) string {
	if session == "" {
		return ""
	}
	m := hmac.New(sha256.New, i.cfg.NameIDKey)
	m.Write([]byte("session-index\x00" + sp.Metadata.EntityID + "\x00" + session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func attributes(sp *ServiceProvider, res web.Result) []saml.Attribute {
	var out []saml.Attribute
	for _, a := range sp.Attributes {
		var vals []string
		switch a.From {
		case "username":
			vals = []string{res.User}
		case "email":
			vals = []string{res.Email}
		case "name":
			vals = []string{res.DisplayName}
		case "groups":
			vals = res.Groups
		case "value":
			vals = []string{a.Value}
		}
		attr := saml.Attribute{Name: a.Name, NameFormat: nameFormat(a.NameFormat)}
		for _, v := range vals {
			if v != "" {
				attr.Values = append(attr.Values, saml.AttributeValue{Type: "xs:string", Value: v})
			}
		}
		if len(attr.Values) > 0 {
			out = append(out, attr)
		}
	}
	return out
}

func nameFormat(f string) string {
	switch f {
	case "uri":
		return "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
	case "unspecified":
		return "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
	default:
		return "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
	}
}

func (i *IdP) audit(ctx context.Context, user, action, sp string, res store.AuditResult, reason string) {
	actor := "system"
	if user != "" {
		actor = "user:" + user
	}
	_, err := i.d.Audit.Append(ctx, store.AuditEvent{Time: i.now(), Actor: actor, Action: action, Subject: user,
		Channel: "saml", Result: res, Reason: reason, Details: map[string]string{"service_provider": truncate(sp, 200)}})
	if err != nil {
		i.log.ErrorContext(ctx, "audit append failed", "err", err)
	}
}

func (i *IdP) fail(w http.ResponseWriter, r *http.Request, err error) {
	i.log.ErrorContext(r.Context(), "SAML sign-in failed", "err", err)
	i.errorPage(w, r, http.StatusInternalServerError, web.ErrorInternal, "")
}

// errorPage answers a request that cannot be answered to the SP (an
// unknown SP or ACS must not get a redirect).
func (i *IdP) errorPage(w http.ResponseWriter, r *http.Request, status int, kind web.ErrorKind, detail string) {
	if i.d.Flow == nil {
		web.SimplePage(w, status, "Sign-in error", detail, nil)
		return
	}
	i.d.Flow.ErrorPage(w, r, status, kind, detail)
}

// postScript submits the response form; the page's CSP allows exactly it
// by its hash.
const postScript = `document.getElementById("SAMLResponseForm").submit();`

var postScriptHash = func() string {
	h := sha256.Sum256([]byte(postScript))
	return base64.StdEncoding.EncodeToString(h[:])
}()

var postForm = template.Must(template.New("saml-post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in</title></head>
<body><form method="post" action="{{.URL}}" id="SAMLResponseForm">
<input type="hidden" name="SAMLResponse" value="{{.SAMLResponse}}">
<input type="hidden" name="RelayState" value="{{.RelayState}}">
<noscript><button type="submit">Continue</button></noscript>
</form><script>` + postScript + `</script></body></html>
`))

func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "'none'"
	}
	return p.Scheme + "://" + p.Host
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// logAdapter is crewjam's logger over slog.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Printf(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a logAdapter) Print(v ...any)                 { a.l.Debug(fmt.Sprint(v...)) }
func (a logAdapter) Println(v ...any)               { a.l.Debug(fmt.Sprint(v...)) }
func (a logAdapter) Fatal(v ...any)                 { a.l.Error(fmt.Sprint(v...)) }
func (a logAdapter) Fatalf(format string, v ...any) { a.l.Error(fmt.Sprintf(format, v...)) }
func (a logAdapter) Fatalln(v ...any)               { a.l.Error(fmt.Sprint(v...)) }
func (a logAdapter) Panic(v ...any)                 { a.l.Error(fmt.Sprint(v...)) }
func (a logAdapter) Panicf(format string, v ...any) { a.l.Error(fmt.Sprintf(format, v...)) }
func (a logAdapter) Panicln(v ...any)               { a.l.Error(fmt.Sprint(v...)) }

func encodeStd(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
