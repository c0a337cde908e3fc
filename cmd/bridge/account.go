package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web"
	"github.com/bridge-idp/bridge/web/account"
)

// openAccount builds the account page (/account) when the web
// authenticator is on: its sign-in is an application of the browser
// sign-in (registered in apps) with the first directory of the file.
func openAccount(cfg *config.Config, st store.Store, push *pushEngine, act pushauth.Activator, flow *web.Flow, dirs *directory.Set, apps browserApps, logger *slog.Logger) (*account.Page, error) {
	if !cfg.App.Enabled || flow == nil {
		return nil, nil
	}
	if len(cfg.Directory) == 0 {
		return nil, fmt.Errorf("account page: no directory configured")
	}
	dir, err := dirs.Get(cfg.Directory[0].Name)
	if err != nil {
		return nil, fmt.Errorf("account page: %w", err)
	}
	app := account.App(cfg.App.Name, dir)
	apps[account.Channel+"\x00"+account.AppID] = app
	return account.New(account.Config{SelfEnrollment: cfg.App.SelfEnrollment, DeviceKeys: cfg.StrictestDeviceKeys()}, account.Deps{
		Flow: flow, App: app, Store: st, Activator: act, Fraud: push.Engine, Audit: push.audit, Logger: logger, Now: time.Now,
		AppName: func(channel, id string) string {
			if a, ok := apps.lookup(channel, id); ok {
				return a.Name
			}
			return "" // RADIUS clients have no name but their id
		},
	})
}

// mountAccount puts the account page on the public listener.
func mountAccount(mux *http.ServeMux, p *account.Page) {
	if p == nil {
		return
	}
	mux.Handle("/account", p.Handler())
	mux.Handle("/account/", p.Handler())
}

// logAppSettings says at start what the web authenticator can do with
// this base URL.
func logAppSettings(cfg *config.Config, logger *slog.Logger) {
	if !cfg.App.Enabled {
		return
	}
	if cfg.App.RPID == "" {
		logger.Info("web authenticator: passkeys are off because the base URL's host is an IP address; "+
			"the web app makes software keys only. Use http://localhost:PORT (a trial on this machine) or a domain name for passkeys",
			"base_url", cfg.HTTP.Public.BaseURL)
	}
	if k := cfg.StrictestDeviceKeys(); cfg.App.SelfEnrollment && k != config.DeviceKeysAny {
		logger.Info("web authenticator: self-enrollment does nothing: an application has device_keys "+k+
			", so only a session opened with a device that meets it may add devices on /account", "device_keys", k)
	} else if cfg.App.SelfEnrollment {
		logger.Info("web authenticator: self-enrollment is on: users who sign in to /account with a password and a one-time code may add devices")
	}
}
