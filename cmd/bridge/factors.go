package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/ldap"
	"github.com/bridge-idp/bridge/internal/qrcode"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/otp"
	"github.com/bridge-idp/bridge/store"
)

func (c *cli) totpCommand() *cobra.Command {
	return groupCommand("totp", "Manage a user's TOTP soft token",
		c.totpEnrollCommand(),
		c.totpRemoveCommand(),
	)
}

// totpFor builds the TOTP service from the config.
func totpFor(cfg *config.Config, st store.OTP, sealer *keys.Sealer, now func() time.Time) (*otp.TOTP, error) {
	t := cfg.TOTP
	return otp.NewTOTP(st, sealer, otp.TOTPConfig{Issuer: t.Issuer, Algorithm: t.Algorithm, Digits: t.Digits, Period: t.Period, Skew: t.Skew}, now)
}

// bypassFor builds the bypass-code service from the config.
func bypassFor(cfg *config.Config, st store.OTP, sealer *keys.Sealer, now func() time.Time) (*otp.Bypass, error) {
	b := cfg.Bypass
	return otp.NewBypass(st, sealer, otp.BypassConfig{TTL: b.TTL, MaxTTL: b.MaxTTL, Digits: b.Digits}, now)
}

// userMustExist returns the normalised name of a user who is a local user
// or is known to one of the configured LDAP directories, or an error: second
// factors for a mistyped name would never be used.
func userMustExist(cmd *cobra.Command, ad *admin, raw string) (string, error) {
	ctx := cmd.Context()
	name, err := normalize(raw)
	if err != nil {
		return "", err
	}
	_, err = ad.store.GetUser(ctx, name)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return name, err
	}
	var searched []string
	for _, d := range ad.cfg.Directory {
		if d.Type != "ldap" {
			continue
		}
		dir, err := ldap.Open(ctx, d.Name, *d.LDAP, ad.logger)
		if err != nil {
			return "", fmt.Errorf("directory %q: %w", d.Name, err)
		}
		_, err = dir.Lookup(ctx, name)
		if c, ok := dir.(interface{ Close() error }); ok {
			c.Close()
		}
		switch {
		case err == nil:
			return name, nil
		case errors.Is(err, directory.ErrDisabled):
			return "", fmt.Errorf("user %q is disabled in directory %q", name, d.Name)
		case !errors.Is(err, directory.ErrInvalidCredentials):
			return "", fmt.Errorf("looking %q up in directory %q: %w", name, d.Name, err)
		}
		searched = append(searched, d.Name)
	}
	if len(searched) > 0 {
		return "", fmt.Errorf("no user %q among the local users or in %s", name, strings.Join(searched, ", "))
	}
	return "", fmt.Errorf("no user %q (add it with: bridge users add %s)", name, name)
}

func (c *cli) totpEnrollCommand() *cobra.Command {
	var asJSON, noQR bool
	cmd := &cobra.Command{
		Use:   "enroll NAME",
		Short: "Give a user a new TOTP token (replaces any existing one)",
		Long: `Give a user a new TOTP token and print it once: an otpauth:// URI, the
secret in base32 for typing in, and a QR code for authenticator apps. Any
token the user had before stops working.`,
		Args: args(1, "NAME"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			name, err := userMustExist(cmd, ad, a[0])
			if err != nil {
				return err
			}
			t, err := totpFor(ad.cfg, ad.store, ad.sealer, c.now)
			if err != nil {
				return err
			}
			en, err := t.Enroll(cmd.Context(), name)
			if err != nil {
				return err
			}
			// The old token is gone now: print the new one before anything
			// else can fail, or the user would be left with neither.
			if asJSON {
				err = c.printJSON(map[string]string{"user": name, "uri": en.URI, "secret": en.Secret})
			} else {
				fmt.Fprintf(c.stdout, "TOTP token for %s. Show this once to the user; it is not shown again.\n\nURI:    %s\nSecret: %s\n\n", name, en.URI, en.Secret)
				if !noQR {
					err = qrcode.Terminal(en.URI, c.stdout)
				}
			}
			return errors.Join(err, ad.audit(cmd.Context(), "totp.enroll", name, store.ResultSuccess, "", nil))
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (no QR code)")
	cmd.Flags().BoolVar(&noQR, "no-qr", false, "do not print a QR code")
	return cmd
}

func (c *cli) totpRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user's TOTP token",
		Args:  args(1, "NAME"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			name, err := normalize(a[0])
			if err != nil {
				return err
			}
			if err := ad.store.DeleteTOTP(cmd.Context(), name); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("user %q has no TOTP token", name)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "removed the TOTP token of %s\n", name)
			return ad.audit(cmd.Context(), "totp.remove", name, store.ResultSuccess, "", nil)
		}),
	}
}

func (c *cli) bypassCommand() *cobra.Command {
	var (
		ttl    time.Duration
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "bypass NAME",
		Short: "Issue a single-use bypass code (for a user who lost their phone)",
		Long: `Issue a temporary access code that replaces the phone approval once, for
example for a user who lost their phone. It is printed once; only a hash is
kept. It expires after --ttl (default from bypass_codes.ttl, at most
bypass_codes.max_ttl).`,
		Args: args(1, "NAME"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			name, err := userMustExist(cmd, ad, a[0])
			if err != nil {
				return err
			}
			bp, err := bypassFor(ad.cfg, ad.store, ad.sealer, c.now)
			if err != nil {
				return err
			}
			code, rec, err := bp.Issue(cmd.Context(), name, ttl, actor())
			if err != nil {
				return err
			}
			// Print the code before auditing: it exists now, and only this
			// output can hand it over.
			if asJSON {
				err = c.printJSON(map[string]any{"user": name, "code": code, "expires_at": rec.ExpiresAt})
			} else {
				fmt.Fprintf(c.stdout, "Bypass code for %s: %s\nSingle use; expires %s.\n", name, code, timeText(rec.ExpiresAt))
			}
			return errors.Join(err, ad.audit(cmd.Context(), "bypass.issue", name, store.ResultSuccess, "",
				map[string]string{"code_id": rec.ID, "expires": rec.ExpiresAt.UTC().Format(time.RFC3339)}))
		}),
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lifetime (default bypass_codes.ttl)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
