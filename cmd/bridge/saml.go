package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

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
// providers are configured. The metadata of a service provider
// with a metadata_url is fetched now (failing the start when it cannot be);
// the returned refreshers fetch it again every metadata_refresh, and are
// to be run in the background until their context ends.
func openSAML(ctx context.Context, cfg *config.Config, st store.Store, km *keys.Manager, sealer *keys.Sealer, flow *web.Flow, dirs *directory.Set, apps browserApps, audit saml.Auditor, logger *slog.Logger) (*saml.IdP, []func(context.Context), error) {
	sc := cfg.SAML
	if !sc.Enabled() {
		return nil, nil, nil
	}
	pc := saml.Config{
		BaseURL: cfg.HTTP.Public.BaseURL, AssertionLifetime: sc.AssertionLifetime, ClockSkew: sc.ClockSkew,
		SignatureAlgorithm: sc.SignatureAlgorithm,
		NameIDKey:          sealer.DeriveKey(samlNameIDLabel),
	}
	var (
		idp        *saml.IdP // set below, before a refresher runs
		refreshers []func(context.Context)
	)
	for _, s := range sc.ServiceProviders {
		md := new(crewjam.EntityDescriptor)
		var err error
		if s.MetadataURL != "" {
			fetched, err := saml.FetchMetadata(ctx, nil, s.MetadataURL)
			if err != nil {
				return nil, nil, fmt.Errorf("saml service provider %q: fetching its metadata from %s: %w", s.Name, redactURL(s.MetadataURL), err)
			}
			md = fetched
			logger.Info("fetched SAML service provider metadata", "service_provider", s.Name, "url", redactURL(s.MetadataURL),
				"entity_id", md.EntityID, "refresh", s.MetadataRefresh)
			name, u, every := s.Name, s.MetadataURL, s.MetadataRefresh
			refreshers = append(refreshers, func(ctx context.Context) {
				saml.RefreshMetadata(ctx, idp, name, u, every, nil, logger)
			})
		} else if md, err = saml.ParseSPMetadata(s.Metadata); err != nil {
			return nil, nil, fmt.Errorf("saml service provider %q: metadata: %w", s.Name, err)
		}
		dir, err := dirs.Get(s.Directory)
		if err != nil {
			return nil, nil, fmt.Errorf("saml service provider %q: %w", s.Name, err)
		}
		app := web.App{ID: s.Name, Name: s.DisplayName, Channel: "saml", Directory: dir,
			NumberMatching: s.NumberMatching, SessionReuse: s.SessionReuse, DeviceKeys: s.DeviceKeys}
		apps["saml\x00"+s.Name] = app
		sp := &saml.ServiceProvider{Name: s.Name, Metadata: md, App: app, NameIDFormat: s.NameIDFormat,
			AssertionLifetime: s.AssertionLifetime, RequireSignedRequests: s.RequireSignedRequests,
			EncryptAssertion: s.EncryptAssertion, AllowIDPInitiated: s.AllowIDPInitiated, SignResponse: s.SignResponse, SignAssertion: s.SignAssertion}
		for _, a := range s.Attributes {
			sp.Attributes = append(sp.Attributes, saml.Attribute{Name: a.Name, From: a.From, Value: a.Value, NameFormat: a.NameFormat})
		}
		pc.ServiceProviders = append(pc.ServiceProviders, sp)
	}
	var err error
	idp, err = saml.New(pc, saml.Deps{Store: st, Replay: st, Keys: km, Flow: flow, Audit: audit, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	return idp, refreshers, nil
}

// redactURL is a URL for messages: without its password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}
