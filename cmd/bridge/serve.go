package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/ldap"
	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/directory/none"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/server"
	"github.com/bridge-idp/bridge/store"
)

func (c *cli) serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the bridge",
		Long: `Run the bridge: open the store (migrating it), load or generate the server
keys, connect the directories and serve the public and admin listeners
until SIGINT or SIGTERM, then finish in-flight requests and stop.`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			logger := newLogger(c.stderr, cfg.Log)
			return serve(cmd.Context(), cfg, logger)
		},
	}
}

// serve wires the bridge together and runs it until ctx ends. What it opens,
// it closes, also when start fails halfway.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	logger.Info("starting bridge", "version", versionString(), "config", cfg.Source, "storage", cfg.Storage.Driver)

	sealer, err := sealerFor(cfg, logger)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, sealer, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkClusterBaseURL(ctx, cfg, st, time.Now, logger); err != nil {
		return err
	}
	km, err := keys.Open(ctx, st, sealer, keys.Options{
		RotationOverlap: cfg.Keys.RotationOverlap,
		RefreshInterval: cfg.Keys.RefreshInterval,
		RSABits:         cfg.Keys.RSABits,
		Specs:           keySpecs(cfg),
		Created:         auditKeyCreated(st, "system", "serve", time.Now, logger),
	}, logger)
	if err != nil {
		return err
	}

	dirs, err := openDirectories(ctx, cfg, st, logger)
	if err != nil {
		return err
	}
	defer dirs.Close()

	srv, err := server.New(serverConfig(cfg.HTTP), server.Deps{Ready: st.Ping}, logger)
	if err != nil {
		return err
	}

	push, err := openPush(ctx, cfg, st, km, sealer, srv.Registry(), logger)
	if err != nil {
		return err
	}
	defer push.Close()
	if push.busReady != nil {
		if err := srv.AddReadyCheck("push wake-up channel", push.busReady); err != nil {
			return err
		}
	}
	clientIP := server.ClientIP(cfg.HTTP.Public.Proxies())
	srv.PublicMux().Handle("/device/", push.Handler(clientIP))
	activator := pushauth.Activator{
		Store: st, Keys: km, HMACKey: sealer.DeriveKey(pushauth.ActivationKeyLabel),
		BaseURL: cfg.HTTP.Public.BaseURL, TTL: cfg.Push.ActivationTTL,
	}
	if cfg.HTTP.AdminAPI.Token != "" {
		newAdminAPI(cfg, st, activator, dirs, logger).routes(srv.AdminMux())
		logger.Info("admin API enabled on the admin listener")
	}
	logAppSettings(cfg, logger)

	apps := browserApps{}
	flow, err := openWeb(cfg, st, push, sealer, apps, clientIP, logger)
	if err != nil {
		return err
	}
	op, err := openOIDC(cfg, st, km, sealer, flow, dirs, apps, push.audit, logger)
	if err != nil {
		return err
	}
	idp, samlRefreshers, err := openSAML(ctx, cfg, st, km, sealer, flow, dirs, apps, push.audit, logger)
	if err != nil {
		return err
	}
	acct, err := openAccount(cfg, st, push, activator, flow, dirs, apps, logger)
	if err != nil {
		return err
	}
	mountBrowser(srv.PublicMux(), flow, op)
	mountAccount(srv.PublicMux(), acct)
	if err := mountApp(srv.PublicMux(), cfg, push.vapidKey(), logger); err != nil {
		return err
	}
	if idp != nil {
		srv.PublicMux().Handle("/saml/", idp.Handler())
		logger.Info("SAML identity provider enabled", "entity_id", idp.EntityID(), "service_providers", len(cfg.SAML.ServiceProviders))
	}
	if op != nil {
		logger.Info("OpenID Provider enabled", "issuer", cfg.OIDCIssuer(), "clients", len(cfg.OIDC.Clients))
	}
	rad, err := openRadius(cfg, dirs, push, st, sealer, srv.Registry(), logger)
	if err != nil {
		return err
	}

	// Background work stops, and is waited for, before the deferred closes
	// of the directories and the store run.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() { stopBG(); wg.Wait() }()
	wg.Go(func() { km.Run(bg) })
	wg.Go(func() { sweep(bg, st, cfg.Storage.SweepInterval, logger) })
	wg.Go(func() { push.Run(bg) })
	for _, refresh := range samlRefreshers {
		wg.Go(func() { refresh(bg) })
	}
	if push.memory {
		wg.Go(func() { sweep(bg, push.state, cfg.Storage.SweepInterval, logger) })
	}
	if rad != nil {
		// RADIUS keeps answering while the HTTP listeners drain, and stops
		// with the rest of the background work.
		wg.Go(func() { rad.Serve(bg) })
	}

	err = srv.Run(ctx)
	logger.Info("bridge stopped")
	return err
}

// auditKeyCreated records a key generated because none was active.
func auditKeyCreated(log store.AuditLog, actor, channel string, now func() time.Time, logger *slog.Logger) func(context.Context, store.SigningKey) {
	return func(ctx context.Context, k store.SigningKey) {
		_, err := log.AppendAudit(ctx, store.AuditEvent{Time: now(), Actor: actor, Action: "key.create", Subject: k.ID,
			Channel: channel, Result: store.ResultSuccess, Reason: "no active key",
			Details: map[string]string{"purpose": string(k.Purpose), "algorithm": k.Algorithm}})
		if err != nil {
			logger.ErrorContext(ctx, "recording key creation in the audit log failed", "kid", k.ID, "err", err)
		}
	}
}

// serverConfig maps the file's HTTP section onto the server package.
func serverConfig(h config.HTTP) server.Config {
	listener := func(l config.Listener) server.ListenerConfig {
		return server.ListenerConfig{Listen: l.Listen, BaseURL: l.BaseURL, CertFile: l.TLS.CertFile, KeyFile: l.TLS.KeyFile, AllowPlainHTTP: l.AllowPlainHTTP}
	}
	return server.Config{
		Public:            listener(h.Public),
		Admin:             listener(h.Admin),
		ReadHeaderTimeout: h.ReadHeaderTimeout,
		ReadTimeout:       h.ReadTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       h.IdleTimeout,
		ShutdownTimeout:   h.ShutdownTimeout,
		DrainDelay:        h.DrainDelay,
	}
}

// openDirectories builds the configured directories. "none" directories
// look users up in the directory they name, or the local users.
func openDirectories(ctx context.Context, cfg *config.Config, st store.Store, logger *slog.Logger) (_ *directory.Set, err error) {
	var opened []directory.Directory
	defer func() {
		if err != nil {
			s, _ := directory.NewSet(opened...)
			if s != nil {
				s.Close()
			}
		}
	}()
	byName := map[string]directory.Directory{}
	var firstLocal directory.Directory // what a none directory looks users up in by default
	// Directories that others refer to (local, ldap) first, then none.
	for _, pass := range []bool{false, true} {
		for _, d := range cfg.Directory {
			if (d.Type == "none") != pass {
				continue
			}
			var dir directory.Directory
			switch d.Type {
			case "local":
				dir, err = local.Open(d.Name, st, cfg.Passwords.Argon2id, logger)
				if err == nil && firstLocal == nil {
					firstLocal = dir
				}
			case "ldap":
				dir, err = ldap.Open(ctx, d.Name, *d.LDAP, logger)
			case "none":
				var ids directory.Looker
				switch {
				case d.Identities != "":
					ids = byName[d.Identities]
				case firstLocal != nil:
					ids = firstLocal
				default: // no local directory configured: one just for lookups
					ids, err = local.Open(d.Name+"-identities", st, cfg.Passwords.Argon2id, logger)
				}
				if err == nil {
					dir, err = none.Open(d.Name, ids)
				}
			default:
				err = fmt.Errorf("unknown directory type %q", d.Type)
			}
			if err != nil {
				return nil, fmt.Errorf("directory %q: %w", d.Name, err)
			}
			opened = append(opened, dir)
			byName[d.Name] = dir
			logger.Info("directory ready", "name", d.Name, "type", d.Type)
		}
	}
	return directory.NewSet(opened...)
}

// sweep deletes expired short-lived records every interval.
func sweep(ctx context.Context, st store.Janitor, every time.Duration, logger *slog.Logger) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := st.DeleteExpired(ctx, now)
			switch {
			case err != nil && !errors.Is(err, context.Canceled):
				logger.Warn("deleting expired records failed", "err", err)
			case n > 0:
				logger.Debug("deleted expired records", "count", n)
			}
		}
	}
}
