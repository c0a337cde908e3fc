package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"

	crewjam "github.com/crewjam/saml"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/saml"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
)

// samlNameIDLabel derives the key of persistent SAML NameIDs from the KEK.
const samlNameIDLabel = "bridge saml persistent nameid v1"

// openSAML builds the SAML identity provider; nil when no service
// providers are configured. What this build of the IdP does not do yet is
// refused here, not silently ignored.
func openSAML(cfg *config.Config, st store.Store, km *keys.Manager, sealer *keys.Sealer, flow *web.Flow, dirs *directory.Set, apps browserApps, audit saml.Auditor, logger *slog.Logger) (*saml.IdP, error) {
	sc := cfg.SAML
	if !sc.Enabled() {
		return nil, nil
	}
	pc := saml.Config{
		BaseURL: cfg.HTTP.Public.BaseURL, AssertionLifetime: sc.AssertionLifetime, ClockSkew: sc.ClockSkew,
		SignatureAlgorithm: sc.SignatureAlgorithm,
		NameIDKey:          sealer.DeriveKey(samlNameIDLabel),
	}
	for _, s := range sc.ServiceProviders {
		var unsupported []string
		if s.MetadataURL != "" {
			unsupported = append(unsupported, "metadata_url (use metadata_file)")
		}
		if !s.SignResponse || !s.SignAssertion {
			unsupported = append(unsupported, "sign_response or sign_assertion false (both are signed)")
		}
		if s.EncryptAssertion {
			unsupported = append(unsupported, "encrypt_assertion")
		}
		if len(unsupported) > 0 {
			return nil, fmt.Errorf("saml service provider %q: not supported yet: %v", s.Name, unsupported)
		}
		var md crewjam.EntityDescriptor
		if err := unmarshalMetadata(s.Metadata, &md); err != nil {
			return nil, fmt.Errorf("saml service provider %q: metadata: %w", s.Name, err)
		}
		dir, err := dirs.Get(s.Directory)
		if err != nil {
			return nil, fmt.Errorf("saml service provider %q: %w", s.Name, err)
		}
		app := web.App{ID: s.Name, Name: s.DisplayName, Channel: "saml", Directory: dir,
			NumberMatching: s.NumberMatching, SessionReuse: s.SessionReuse}
		apps["saml\x00"+s.Name] = app
		sp := &saml.ServiceProvider{Name: s.Name, Metadata: &md, App: app, NameIDFormat: s.NameIDFormat,
			AssertionLifetime: s.AssertionLifetime, RequireSignedRequests: s.RequireSignedRequests}
		for _, a := range s.Attributes {
			sp.Attributes = append(sp.Attributes, saml.Attribute{Name: a.Name, From: a.From, Value: a.Value, NameFormat: a.NameFormat})
		}
		pc.ServiceProviders = append(pc.ServiceProviders, sp)
	}
	return saml.New(pc, saml.Deps{Store: st, Replay: st, Keys: km, Flow: flow, Audit: audit, Logger: logger})
}

// unmarshalMetadata reads an SP's metadata: an EntityDescriptor, or an
// EntitiesDescriptor holding exactly one.
func unmarshalMetadata(b []byte, md *crewjam.EntityDescriptor) error {
	if err := xml.Unmarshal(b, md); err == nil && md.EntityID != "" {
		return nil
	}
	var set crewjam.EntitiesDescriptor
	if err := xml.Unmarshal(b, &set); err != nil {
		return err
	}
	if len(set.EntityDescriptors) != 1 {
		return errors.New("expected one EntityDescriptor")
	}
	*md = set.EntityDescriptors[0]
	return nil
}
