package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/oidc"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
)

// Labels of the keys derived from the KEK for the browser front ends.
const (
	webKeyLabel        = "bridge web csrf v1"
	oidcCryptoKeyLabel = "bridge oidc token crypto v1"
)

// browserApps holds the applications the sign-in pages serve, by channel
// and id; the OIDC (and later SAML) front ends fill it.
type browserApps map[string]web.App

func (a browserApps) lookup(channel, id string) (web.App, bool) {
	app, ok := a[channel+"\x00"+id]
	return app, ok
}

// openWeb builds the shared browser sign-in when a browser front end (OIDC,
// SAML, the account page of the web authenticator) is configured; nil
// otherwise.
func openWeb(cfg *config.Config, st store.Store, push *pushEngine, sealer *keys.Sealer, apps browserApps, clientIP func(*http.Request) string, logger *slog.Logger) (*web.Flow, error) {
	if !cfg.OIDC.Enabled() && !cfg.SAML.Enabled() && !cfg.App.Enabled {
		return nil, nil
	}
	totp, err := totpFor(cfg, st, sealer, time.Now)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	w := cfg.Web
	return web.New(web.Config{
		BaseURL:         cfg.HTTP.Public.BaseURL,
		SessionLifetime: w.SessionLifetime,
		LoginTimeout:    w.LoginTimeout,
		FailuresPerIP:   w.FailuresPerIP,
		FailuresPerUser: w.FailuresPerUser,
		Captcha: web.Captcha{
			Provider: w.Captcha.Provider, SiteKey: w.Captcha.SiteKey, Secret: w.Captcha.Secret,
			VerifyURL: w.Captcha.VerifyURL, ScriptURL: w.Captcha.ScriptURL,
			AfterFailures: w.Captcha.AfterFailures, Timeout: w.Captcha.Timeout,
		},
		Key: sealer.DeriveKey(webKeyLabel),
	}, apps.lookup, web.Deps{
		Store: st, Push: push, TOTP: totp, Audit: push.audit, Logger: logger, ClientIP: clientIP, Limits: push.limits,
		HasTOTP: func(ctx context.Context, user string) (bool, error) {
			_, err := st.GetTOTP(ctx, user)
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		},
	})
}

// openOIDC builds the OpenID Provider; nil when no clients are configured.
func openOIDC(cfg *config.Config, st store.Store, km *keys.Manager, sealer *keys.Sealer, flow *web.Flow, dirs *directory.Set, apps browserApps, audit oidc.Auditor, logger *slog.Logger) (*oidc.Provider, error) {
	oc := cfg.OIDC
	if !oc.Enabled() {
		return nil, nil
	}
	var key [32]byte
	copy(key[:], sealer.DeriveKey(oidcCryptoKeyLabel))
	pc := oidc.Config{
		Issuer:               cfg.OIDCIssuer(),
		SigningAlgorithm:     oc.SigningAlgorithm,
		CodeLifetime:         oc.CodeLifetime,
		AccessTokenLifetime:  oc.AccessTokenLifetime,
		IDTokenLifetime:      oc.IDTokenLifetime,
		RefreshTokenLifetime: oc.RefreshTokenLifetime,
		CryptoKey:            key,
	}
	for _, c := range oc.Clients {
		dir, err := dirs.Get(c.Directory)
		if err != nil {
			return nil, fmt.Errorf("oidc client %q: %w", c.ID, err)
		}
		app := web.App{
			ID: c.ID, Name: c.Name, Channel: "oidc", Directory: dir,
			NumberMatching: c.NumberMatching, SessionReuse: c.SessionReuse, Captcha: c.Captcha, DeviceKeys: c.DeviceKeys,
		}
		apps["oidc\x00"+c.ID] = app
		pc.Clients = append(pc.Clients, &oidc.Client{
			ID: c.ID, Secret: c.Secret, AuthMethod: zoidc.AuthMethod(c.AuthMethod), JWKS: c.JWKS,
			RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			Scopes: c.Scopes, SigningAlgorithm: c.SigningAlgorithm, App: app,
		})
	}
	return oidc.New(pc, oidc.Deps{Store: st, Replay: st, Keys: km, Flow: flow, Audit: audit, Logger: logger})
}

// keySpecs are the signing keys this config needs: the defaults, plus an
// Ed25519 OIDC key when a client signs with EdDSA, a P-256 SAML key for
// ecdsa-sha256, and the VAPID key when Web Push is on.
func keySpecs(cfg *config.Config) []keys.Spec {
	specs := keys.DefaultSpecs()
	var want []keys.Spec
	for _, a := range cfg.OIDC.Algorithms() {
		want = append(want, keys.Spec{Purpose: store.PurposeOIDC, Algorithm: a})
	}
	if cfg.SAML.SignatureAlgorithm == "ecdsa-sha256" {
		want = append(want, keys.Spec{Purpose: store.PurposeSAML, Algorithm: keys.AlgES256})
	}
	want = append(want, vapidKeySpecs(cfg)...)
	for _, s := range want {
		if !slices.Contains(specs, s) {
			specs = append(specs, s)
		}
	}
	return specs
}

// mountBrowser puts the sign-in pages and the OpenID Provider on the public
// listener.
func mountBrowser(mux *http.ServeMux, flow *web.Flow, op *oidc.Provider) {
	if flow != nil {
		mux.Handle("/login/", flow.Handler())
		mux.Handle("/assets/", flow.Handler())
	}
	if op != nil {
		mux.Handle(op.Prefix()+"/", op.Handler())
	}
}
