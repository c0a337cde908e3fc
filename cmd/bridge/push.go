package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/apns"
	"github.com/bridge-idp/bridge/pushauth/fcm"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/pushauth/pgbus"
	"github.com/bridge-idp/bridge/pushauth/webpush"
	"github.com/bridge-idp/bridge/store"
	"github.com/prometheus/client_golang/prometheus"
)

// pushEngine is the push engine with what it runs on.
type pushEngine struct {
	*pushauth.Engine
	state  store.PushState
	memory bool // state is this node's memory (swept here)
	// audit is the group-commit audit writer the engine uses; the front
	// ends share it.
	audit *store.AuditBatcher
	// busReady reports whether the wake-up channel between nodes is up;
	// nil on a single node.
	busReady func(context.Context) error
	// limits is the front of the store's attempt counters (group commit),
	// shared by the engine and the front ends: the limits hold for all
	// nodes on the store together.
	limits *store.Limits
	// webpush is the Web Push sender (nil when Web Push is off): its
	// PublicKey is the app's applicationServerKey (/app/config.json).
	webpush *webpush.Sender
	close   []func()
}

// Close stops the engine and releases what openPush opened, in reverse.
func (p *pushEngine) Close() {
	for i := len(p.close) - 1; i >= 0; i-- {
		p.close[i]()
	}
}

// openPush builds the push engine from the config: where challenges live
// (this node's memory with SQLite, the shared store with PostgreSQL), how
// nodes wake each other, and the push providers that are configured.
func openPush(ctx context.Context, cfg *config.Config, st store.Store, km *keys.Manager, sealer *keys.Sealer, reg prometheus.Registerer, logger *slog.Logger) (_ *pushEngine, err error) {
	p := &pushEngine{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	pc := cfg.Push
	deps := pushauth.Deps{
		Store:         st,
		Keys:          km,
		ActivationKey: sealer.DeriveKey(pushauth.ActivationKeyLabel),
		Senders:       map[string]pushauth.Sender{},
		Metrics:       reg,
		Logger:        logger,
	}
	switch cfg.PushState() {
	case "memory":
		p.state, p.memory = memstate.New(), true
	default:
		p.state = st
	}
	deps.State = p.state
	if cfg.Storage.Driver == "postgres" {
		bus, err := pgbus.Open(ctx, cfg.Storage.Postgres.DSN, logger)
		if err != nil {
			return nil, fmt.Errorf("push: wake-up channel: %w", err)
		}
		p.close = append(p.close, func() { _ = bus.Close() })
		deps.Bus = bus
		p.busReady = bus.Ready
	}
	if pc.FCM.Enabled() {
		s, err := fcm.New(ctx, fcm.Config{CredentialsFile: pc.FCM.CredentialsFile, ProjectID: pc.FCM.ProjectID, Endpoint: pc.FCM.Endpoint, Timeout: pc.DeliveryTimeout}, logger)
		if err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
		deps.Senders[s.Provider()] = s
	}
	if pc.APNs.Enabled() {
		s, err := apns.New(apns.Config{KeyFile: pc.APNs.KeyFile, KeyID: pc.APNs.KeyID, TeamID: pc.APNs.TeamID, Topic: pc.APNs.Topic, Endpoint: pc.APNs.URL(), CAFile: pc.APNs.CAFile, Timeout: pc.DeliveryTimeout}, logger)
		if err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
		p.close = append(p.close, func() { _ = s.Close() })
		deps.Senders[s.Provider()] = s
	}
	if webPushOn(cfg) {
		s, err := webpush.New(webpush.Config{
			Subject:      cfg.App.WebPush.Subject,
			AllowedHosts: cfg.App.WebPush.AllowedHosts,
		}, km, reg, logger)
		if err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
		deps.Senders[s.Provider()] = s
		p.webpush = s
	}
	p.limits = store.NewLimits(st, time.Now, logger)
	p.close = append(p.close, p.limits.Close)
	deps.Limits = p.limits
	spool, err := store.OpenAuditSpool(cfg.Storage.AuditSpool.Path, int64(cfg.Storage.AuditSpool.MaxMB)<<20, logger)
	if err != nil {
		return nil, fmt.Errorf("audit spool: %w", err)
	}
	// When the spool has been appended the store answers again: the
	// engine's queued cancels run then too.
	var engine atomic.Pointer[pushauth.Engine]
	audit := store.NewAuditBatcherWith(st, logger, store.AuditBatcherOptions{Spool: spool, Flushed: func() {
		if e := engine.Load(); e != nil {
			e.RetryNow()
		}
	}})
	p.close = append(p.close, audit.Close)
	deps.Audit = audit
	p.audit = audit
	eng, err := pushauth.New(pushauth.Config{
		BaseURL:         cfg.HTTP.Public.BaseURL,
		ChallengeTTL:    pc.ChallengeTTL,
		NumberDigits:    pc.NumberDigits,
		ProofMaxAge:     pc.ProofMaxAge,
		LongPoll:        pc.LongPoll,
		ActivationTTL:   pc.ActivationTTL,
		BackoffBase:     pc.BackoffBase,
		BackoffMax:      pc.BackoffMax,
		MaxPerHour:      pc.MaxPerHour,
		MaxPerIPMinute:  pc.MaxPerIPMinute,
		FraudLock:       pc.FraudLock,
		FraudWebhook:    pushauth.Webhook{URL: pc.FraudWebhook.URL, Secret: []byte(pc.FraudWebhook.Secret), Timeout: pc.FraudWebhook.Timeout},
		DeliveryTimeout: pc.DeliveryTimeout,
		DeliveryWorkers: pc.DeliveryWorkers,
		Retention:       pc.Retention,
		EnrollPerIP:     pc.EnrollPerIPMinute,
		SweepInterval:   pc.SweepInterval,
		// The web app's passkeys.
		WebAuthnRPID:        cfg.App.RPID,
		WebAuthnOrigins:     cfg.App.Origins,
		WebAuthnAttestation: cfg.AppAttestation(),
		AttestationRoots:    cfg.App.AttestationRootCerts,
	}, deps)
	if err != nil {
		return nil, errors.Join(errors.New("push"), err)
	}
	p.close = append(p.close, eng.Close)
	p.Engine = eng
	engine.Store(eng)
	providers := []string{}
	for name := range deps.Senders {
		providers = append(providers, name)
	}
	logger.Info("push engine ready", "state", cfg.PushState(), "providers", providers, "base_url", cfg.HTTP.Public.BaseURL)
	if cfg.AppAttestation() == "direct" {
		// device_keys attested somewhere: say which roots it rests on.
		logger.Info("passkey attestation is required by some application", "operator_roots", len(cfg.App.AttestationRootCerts), "built_in_roots", "apple, android-key")
	}
	if cfg.App.Enabled && cfg.App.RPID == "" {
		logger.Warn("passkeys are off: the public base URL's host is an IP address, so the web app enrolls software keys only (use a host name, or http://localhost:PORT for a trial)", "base_url", cfg.HTTP.Public.BaseURL)
	}
	return p, nil
}

// webPushOn reports whether the app's Web Push is configured on.
func webPushOn(cfg *config.Config) bool { return cfg.App.Enabled && cfg.App.WebPush.Enabled }

// vapidKeySpecs is the VAPID key when Web Push is on: generated at the first
// start with it, sealed and rotated like the other keys.
func vapidKeySpecs(cfg *config.Config) []keys.Spec {
	if !webPushOn(cfg) {
		return nil
	}
	return []keys.Spec{{Purpose: store.PurposeVAPID, Algorithm: keys.AlgES256}}
}
