package saml

import (
	"bytes"
	"compress/flate"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"

	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
)

// maxMessage bounds a SAML message, after base64 and after inflating.
const maxMessage = 64 << 10

// readMessage reads the SAMLRequest of a Redirect (deflated) or POST
// request, bounded: a deflate bomb or an oversized body is an error.
func readMessage(r *http.Request) ([]byte, error) {
	var raw string
	if r.Method == http.MethodGet {
		raw = r.URL.Query().Get("SAMLRequest")
	} else {
		raw = r.PostFormValue("SAMLRequest")
	}
	if raw == "" {
		return nil, errors.New("no SAMLRequest")
	}
	if len(raw) > maxMessage*2 {
		return nil, errors.New("SAMLRequest too long")
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("SAMLRequest is not base64: %w", err)
	}
	if r.Method == http.MethodGet {
		b, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), maxMessage+1))
		if err != nil {
			return nil, fmt.Errorf("SAMLRequest does not inflate: %w", err)
		}
	}
	if len(b) > maxMessage {
		return nil, errors.New("SAMLRequest too large")
	}
	return b, nil
}

// parseLogoutRequest parses untrusted XML into a LogoutRequest: no DTD,
// round-trip safe (crewjam's own check against XML that parses two ways),
// an Issuer, an ID. Errors, never panics.
func parseLogoutRequest(b []byte) (*saml.LogoutRequest, error) {
	if bytes.Contains(b, []byte("<!DOCTYPE")) || bytes.Contains(b, []byte("<!ENTITY")) {
		return nil, errors.New("DTDs are not allowed")
	}
	if err := xrv.Validate(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("unsafe XML: %w", err)
	}
	var lr saml.LogoutRequest
	if err := xml.Unmarshal(b, &lr); err != nil {
		return nil, fmt.Errorf("not a LogoutRequest: %w", err)
	}
	if lr.Issuer == nil || lr.Issuer.Value == "" {
		return nil, errors.New("no Issuer")
	}
	if lr.ID == "" || lr.Version != "2.0" {
		return nil, errors.New("no ID, or not SAML 2.0")
	}
	return &lr, nil
}

// slo answers an SP's LogoutRequest (SP-initiated Single Logout): it ends
// the browser's session at the bridge and answers with a signed
// LogoutResponse at the SP's SingleLogoutService.
func (i *IdP) slo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !i.allow(w, r) {
		return
	}
	b, err := readMessage(r)
	var lr *saml.LogoutRequest
	if err == nil {
		lr, err = parseLogoutRequest(b)
	}
	if err != nil {
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorSignOut, "The sign-out request could not be read.")
		return
	}
	sp := i.sp(lr.Issuer.Value)
	if sp == nil {
		i.audit(ctx, "", "saml.logout", lr.Issuer.Value, store.ResultFailure, "unknown service provider")
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorSignOut, "The sign-out request comes from an unknown application.")
		return
	}
	now := i.now()
	slo := i.url("/saml/slo")
	var signed bool
	switch {
	case lr.Destination != "" && lr.Destination != slo.String():
		err = errors.New("wrong Destination")
	case lr.IssueInstant.After(now.Add(i.cfg.ClockSkew)) || lr.IssueInstant.Before(now.Add(-saml.MaxIssueDelay-i.cfg.ClockSkew)):
		err = errors.New("IssueInstant out of range")
	default:
		signed, err = i.checkLogoutSignature(r, b, sp)
	}
	if err == nil {
		h := sha256.Sum256([]byte(sp.Metadata.EntityID + "\x00" + lr.ID))
		err = i.d.Replay.UseOnce(ctx, "saml-logout-request", base64.RawURLEncoding.EncodeToString(h[:]), now, now.Add(saml.MaxIssueDelay+2*i.cfg.ClockSkew))
	}
	if err != nil {
		i.audit(ctx, "", "saml.logout", sp.Name, store.ResultFailure, err.Error())
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorSignOut, "The sign-out request was refused.")
		return
	}
	target := sloEndpoint(sp)
	if target == nil {
		i.audit(ctx, "", "saml.logout", sp.Name, store.ResultFailure, "the SP has no HTTP-POST SingleLogoutService")
		i.errorPage(w, r, http.StatusBadRequest, web.ErrorSignOut, "The application has no sign-out address.")
		return
	}
	// The browser's session ends if the request names it: by the
	// SessionIndex the bridge gave this SP for it (an HMAC nobody else
	// can make), or, when signed by the SP, by the NameID. Anyone can
	// send a browser here with an unsigned request naming a guessable
	// NameID: that alone ends nothing.
	status, user := saml.StatusSuccess, ""
	if res, serr := i.d.Flow.SessionFor(r, sp.App); serr == nil {
		byIndex := lr.SessionIndex != nil && res.Session != "" &&
			hmac.Equal([]byte(lr.SessionIndex.Value), []byte(i.sessionIndex(sp, res.Session)))
		if byIndex || signed && i.namesUser(sp, lr.NameID, res) {
			user = res.User
			i.d.Flow.EndSession(w, r)
		} else {
			status = saml.StatusRequester
		}
	}
	reason := "unsigned request"
	if signed {
		reason = "signed request"
	}
	i.audit(ctx, user, "saml.logout", sp.Name, auditResult(status), reason)
	p, err := i.provider()
	if err != nil {
		i.fail(w, r, err)
		return
	}
	id, _ := randomString(20)
	resp := &saml.LogoutResponse{
		ID: "id-" + id, InResponseTo: lr.ID, Version: "2.0", IssueInstant: now, Destination: target.Location,
		Issuer: &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: p.MetadataURL.String()},
		Status: saml.Status{StatusCode: saml.StatusCode{Value: status}},
	}
	el, err := i.sign(p, resp.Element())
	if err != nil {
		i.fail(w, r, err)
		return
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	raw, err := doc.WriteToBytes()
	if err != nil {
		i.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	relay := r.FormValue("RelayState")
	if len(relay) > maxRelayState {
		relay = ""
	}
	if err := postForm.Execute(&buf, saml.IdpAuthnRequestForm{URL: target.Location, SAMLResponse: encodeStd(raw), RelayState: relay}); err != nil {
		i.fail(w, r, err)
		return
	}
	i.writePostPage(w, target.Location, buf.Bytes())
}

// checkLogoutSignature verifies a signed LogoutRequest, and demands one
// where the SP's AuthnRequests must be signed. signed reports whether a
// signature was there and verified.
func (i *IdP) checkLogoutSignature(r *http.Request, doc []byte, sp *ServiceProvider) (signed bool, err error) {
	required := sp.RequireSignedRequests
	for _, d := range sp.Metadata.SPSSODescriptors {
		if d.AuthnRequestsSigned != nil && *d.AuthnRequestsSigned {
			required = true
		}
	}
	certs := SPSigningCerts(sp.Metadata)
	if r.Method == http.MethodGet {
		err = VerifyRedirectSignature(r.URL.RawQuery, certs)
	} else {
		_, err = VerifyPOSTSignature(doc, certs)
	}
	if errors.Is(err, ErrUnsigned) && !required {
		return false, nil
	}
	return err == nil, err
}

// namesUser reports whether the LogoutRequest's NameID is the one the
// bridge gives res's user at sp (a transient one names nobody).
func (i *IdP) namesUser(sp *ServiceProvider, id *saml.NameID, res web.Result) bool {
	if id == nil {
		return false
	}
	format, value, err := i.nameID(sp, res)
	if err != nil {
		return false
	}
	return format != nameIDTransient && id.Value == value
}

// sloEndpoint is the SP's HTTP-POST SingleLogoutService.
func sloEndpoint(sp *ServiceProvider) *saml.Endpoint {
	for _, d := range sp.Metadata.SPSSODescriptors {
		for k := range d.SingleLogoutServices {
			e := d.SingleLogoutServices[k]
			if e.Binding == saml.HTTPPostBinding {
				if e.ResponseLocation != "" {
					e.Location = e.ResponseLocation
				}
				return &e
			}
		}
	}
	return nil
}

func auditResult(status string) store.AuditResult {
	if status == saml.StatusSuccess {
		return store.ResultSuccess
	}
	return store.ResultFailure
}
