package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/radius"
	"github.com/bridge-idp/bridge/store"
)

// openRadius builds the RADIUS front end from the config and binds its
// sockets; nil when no clients are configured.
func openRadius(cfg *config.Config, dirs *directory.Set, push *pushEngine, st store.Store, sealer *keys.Sealer, reg prometheus.Registerer, logger *slog.Logger) (*radius.Server, error) {
	rc := cfg.Radius
	if !rc.Enabled() {
		return nil, nil
	}
	totp, err := totpFor(cfg, st, sealer, time.Now)
	if err != nil {
		return nil, fmt.Errorf("radius: %w", err)
	}
	bypass, err := bypassFor(cfg, st, sealer, time.Now)
	if err != nil {
		return nil, fmt.Errorf("radius: %w", err)
	}
	rcfg := radius.Config{
		Listen:      rc.Listen,
		ReadBuffer:  rc.ReadBuffer,
		AnswerCache: rc.AnswerCache,
		MaxPending:  rc.MaxPending,
	}
	if rc.AccountingEnabled() {
		rcfg.AccountingListen = rc.AccountingListen
	}
	for _, c := range rc.Clients {
		client, err := radiusClient(c, dirs)
		if err != nil {
			return nil, fmt.Errorf("radius client %q: %w", c.Name, err)
		}
		rcfg.Clients = append(rcfg.Clients, client)
	}
	return radius.New(rcfg, radius.Deps{Push: push, TOTP: totp, Bypass: bypass, Audit: push.audit, Sessions: st, Limits: push.limits, Metrics: reg, Logger: logger})
}

// radiusClient maps one configured client onto the radius package; Load
// has validated it.
func radiusClient(c config.RadiusClient, dirs *directory.Set) (*radius.Client, error) {
	prefix, err := c.Prefix()
	if err != nil {
		return nil, err
	}
	dir, err := dirs.Get(c.Directory)
	if err != nil {
		return nil, err
	}
	attrs, err := c.Reply.Values()
	if err != nil {
		return nil, err
	}
	out := &radius.Client{
		Name: c.Name, Prefix: prefix, Secret: []byte(c.Secret), Directory: dir,
		MessageAuthenticator: radius.MAPolicy(c.MessageAuthenticator),
		Wait:                 radius.WaitMode(c.Wait),
		HoldTimeout:          c.HoldTimeout,
		NumberMatching:       c.NumberMatching,
		DeviceKeys:           c.DeviceKeys,
		SecondFactor:         c.SecondFactor,
		PasswordSuffix:       c.PasswordSuffix,
		Failmode:             c.Failmode,
		Class:                c.Reply.Class,
		FailuresPerUser:      c.FailuresPerUser,
		FailuresPerIP:        c.FailuresPerIP,
		FailuresPerClient:    c.FailuresPerClient,
		SessionTimeout:       c.Reply.SessionTimeout,
		Attributes:           attrs,
	}
	for _, g := range c.Reply.Groups {
		vals, err := g.Values()
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", g.Group, err)
		}
		out.Groups = append(out.Groups, radius.GroupReply{Group: g.Group, Attributes: vals})
	}
	return out, nil
}
