package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/store"
)

// The bridge's identity is its public base_url: phones enrolled with it
// check every challenge's issuer against it, and OIDC and SAML name the
// bridge by it. Every node sharing a PostgreSQL database must use the same
// one, so the first node to start records it in the database and every
// later start compares. It is kept as a Grant record (kind
// bridge_identity) that never expires: the grants table is shared by every
// node, has an atomic first-writer-wins insert (PutGrant's ErrConflict) and
// an atomic update, and needs no migration; no revocation path touches it
// (it has no subject and no family). SQLite has one node, and records
// nothing.
const (
	identityKind    = "bridge_identity"
	identityBaseURL = "base_url"
)

// identityForever is the expiry of the identity record: never, in effect.
var identityForever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// identityStore is what the identity check needs from the store.
type identityStore interface {
	store.Grants
	store.AuditLog
}

// errBaseURLMismatch marks a node whose base_url is not the database's.
var errBaseURLMismatch = errors.New("base_url mismatch")

// checkClusterBaseURL records this node's base_url in a PostgreSQL database
// that has none yet, and otherwise refuses a node whose base_url differs
// from the recorded one. SQLite: nothing to check.
func checkClusterBaseURL(ctx context.Context, cfg *config.Config, st identityStore, now func() time.Time, logger *slog.Logger) error {
	if cfg.Storage.Driver != "postgres" {
		return nil
	}
	base := cfg.HTTP.Public.BaseURL
	// Twice: a node that loses the race to record first compares with
	// the winner's.
	for range 2 {
		g, err := st.GetGrant(ctx, identityKind, identityBaseURL, now())
		switch {
		case err == nil:
			if recorded := string(g.Data); recorded != base {
				return fmt.Errorf("%w: this database's bridge is %s; this node says %s (http.public.base_url in %s); "+
					"every node must use the same base_url: set it to %s here, or, to move every node to %s on purpose, "+
					"set it in every node's config and run `bridge cluster set-base-url %s` "+
					"(phones enrolled under the old address then refuse challenges until enrolled again)",
					errBaseURLMismatch, recorded, base, cfg.Source, recorded, base, base)
			}
			return nil
		case errors.Is(err, store.ErrNotFound):
			t := now()
			err := st.PutGrant(ctx, store.Grant{Kind: identityKind, ID: identityBaseURL, Data: []byte(base), CreatedAt: t, ExpiresAt: identityForever})
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			if err != nil {
				return fmt.Errorf("recording the bridge's base_url in the database: %w", err)
			}
			logger.InfoContext(ctx, "recorded the bridge's base_url in the database; every node must use it", "base_url", base)
			if _, err := st.AppendAudit(ctx, store.AuditEvent{Time: t, Actor: "system", Action: "cluster.base_url.record",
				Subject: base, Channel: "serve", Result: store.ResultSuccess, Reason: "first start on this database"}); err != nil {
				logger.ErrorContext(ctx, "recording the base_url in the audit log failed", "err", err)
			}
			return nil
		default:
			return fmt.Errorf("reading the bridge's base_url from the database: %w", err)
		}
	}
	return errors.New("reading the bridge's base_url from the database: recorded and gone again")
}

func (c *cli) clusterCommand() *cobra.Command {
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the base_url the database's nodes share",
		Args:  args(0),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, _ []string) error {
			if err := needShared(ad.cfg); err != nil {
				return err
			}
			recorded := "(none yet: the first node to start records its own)"
			g, err := ad.store.GetGrant(cmd.Context(), identityKind, identityBaseURL, c.now())
			switch {
			case err == nil:
				recorded = string(g.Data)
			case !errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("reading the bridge's base_url: %w", err)
			}
			fmt.Fprintf(c.stdout, "database: %s\nthis node: %s\n", recorded, ad.cfg.HTTP.Public.BaseURL)
			return nil
		}),
	}
	set := &cobra.Command{
		Use:   "set-base-url URL",
		Short: "Move every node to a new base_url, on purpose",
		Long: `Record URL as the base_url every node sharing the database must use. A node
whose http.public.base_url differs from the recorded one refuses to start,
so set URL in every node's config first; this command checks that its own
config says URL too. Phones enrolled under the old address refuse the
bridge's challenges until they are enrolled again. Audited.`,
		Args: args(1, "URL"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			if err := needShared(ad.cfg); err != nil {
				return err
			}
			next := strings.TrimRight(a[0], "/")
			if u, err := url.Parse(next); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usagef("%q is not an absolute http:// or https:// URL", a[0])
			}
			if mine := ad.cfg.HTTP.Public.BaseURL; next != mine {
				return fmt.Errorf("this node's http.public.base_url is %s, not %s: set it in every node's config (%s here) first", mine, next, ad.cfg.Source)
			}
			ctx, now := cmd.Context(), c.now()
			old := ""
			_, err := ad.store.UpdateGrant(ctx, identityKind, identityBaseURL, now, func(g store.Grant) (store.Grant, error) {
				old = string(g.Data)
				g.Data = []byte(next)
				return g, nil
			})
			if errors.Is(err, store.ErrNotFound) {
				err = ad.store.PutGrant(ctx, store.Grant{Kind: identityKind, ID: identityBaseURL, Data: []byte(next), CreatedAt: now, ExpiresAt: identityForever})
			}
			if err != nil {
				return fmt.Errorf("recording the base_url: %w", err)
			}
			if old == next {
				fmt.Fprintf(c.stdout, "the base_url is %s already\n", next)
				return nil
			}
			details := map[string]string{"new": next}
			if old != "" {
				details["old"] = old
			}
			if err := ad.audit(ctx, "cluster.base_url.set", next, store.ResultSuccess, "", details); err != nil {
				return err
			}
			if old == "" {
				old = "(none)"
			}
			fmt.Fprintf(c.stdout, "base_url changed from %s to %s; nodes still configured with the old one will refuse to start\n", old, next)
			return nil
		}),
	}
	return groupCommand("cluster", "Work with what the nodes sharing a database agree on", show, set)
}

// needShared refuses cluster commands on SQLite, which has one node.
func needShared(cfg *config.Config) error {
	if cfg.Storage.Driver != "postgres" {
		return errors.New("only nodes sharing a PostgreSQL database record a base_url; with SQLite the config's base_url is the bridge's")
	}
	return nil
}
