package main

import (
	"log/slog"
	"net/http"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/pushauth/webapp"
	"github.com/bridge-idp/bridge/web"
)

// mountApp serves the web authenticator at /app/ when app.enabled.
// vapidKey returns the active VAPID public key (nil: Web Push is off).
func mountApp(mux *http.ServeMux, cfg *config.Config, vapidKey func() string, logger *slog.Logger) error {
	if !cfg.App.Enabled {
		return nil
	}
	strs, err := web.Strings("app.")
	if err != nil {
		return err
	}
	h, err := webapp.New(webapp.Config{
		Name: cfg.App.Name, BaseURL: cfg.HTTP.Public.BaseURL, RPID: cfg.App.RPID,
		Attestation: cfg.File.AppAttestation(), VAPIDKey: vapidKey, Strings: strs,
	})
	if err != nil {
		return err
	}
	mux.Handle(webapp.Prefix, h)
	if cfg.App.RPID == "" {
		logger.Warn("the web app makes software keys only: passkeys need a domain name in http.public.base_url (use http://localhost:PORT for a trial)", "base_url", cfg.HTTP.Public.BaseURL)
	}
	logger.Info("web app enabled", "url", cfg.HTTP.Public.BaseURL+webapp.Prefix, "rp_id", cfg.App.RPID, "web_push", vapidKey != nil)
	return nil
}

// vapidKey is the web app's current VAPID key, or nil when Web Push is
// off.
func (p *pushEngine) vapidKey() func() string {
	if p.webpush == nil {
		return nil
	}
	return p.webpush.PublicKey
}
