package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlstore"
	"github.com/bridge-idp/bridge/web/account"
)

func (c *cli) configCommand() *cobra.Command {
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a configuration file without starting",
		Long: `Validate a configuration file (default: --config) without starting:
every problem is reported with its key and line, and warnings name every
setting weaker than the default. Exit code 0 if valid, 1 if not.`,
		Args: maxArgs(1, "[FILE]"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) == 1 {
				c.configPath = a[0]
			}
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintf(c.stderr, "warning: %s\n", w)
			}
			fmt.Fprintf(c.stdout, "%s: valid\n", cfg.Source)
			return nil
		},
	}
	return groupCommand("config", "Work with the configuration file", check)
}

func (c *cli) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the storage schema, then exit",
		Long: `Create or upgrade the storage schema, then exit. serve does this too at
start; run it by hand to upgrade ahead of a rollout. Safe to run on several
nodes at once.`,
		Args: args(0),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, _ []string) error {
			fmt.Fprintf(c.stdout, "%s schema is at version %d\n", ad.cfg.Storage.Driver, sqlstore.SchemaVersion())
			return nil
		}),
	}
}

func (c *cli) devicesCommand() *cobra.Command {
	var asJSON bool
	list := &cobra.Command{
		Use:   "list USER",
		Short: "List a user's enrolled devices",
		Args:  args(1, "USER"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			name, err := normalize(a[0])
			if err != nil {
				return err
			}
			devices, err := ad.store.ListDevices(cmd.Context(), name)
			if err != nil {
				return err
			}
			if asJSON {
				type deviceJSON struct {
					ID       string `json:"id"`
					User     string `json:"user"`
					Name     string `json:"name"`
					Platform string `json:"platform"`
					Kind     string `json:"kind"` // jws or webauthn
					KeyAlg   string `json:"key_alg"`
					// Attestation is a passkey's attestation format
					// (none, packed, ...), whether it verified and whether
					// it chained to a trusted root (device_keys attested).
					Attestation         string    `json:"attestation,omitempty"`
					AttestationVerified bool      `json:"attestation_verified,omitempty"`
					AttestationTrusted  bool      `json:"attestation_trusted,omitempty"`
					PushProvider        string    `json:"push_provider"`
					PushStale           bool      `json:"push_token_stale"`
					AppVersion          string    `json:"app_version"`
					Status              string    `json:"status"`
					CreatedAt           time.Time `json:"created_at"`
					LastSeenAt          time.Time `json:"last_seen_at"`
					RevokedAt           time.Time `json:"revoked_at"`
				}
				out := make([]deviceJSON, 0, len(devices))
				for _, d := range devices {
					dj := deviceJSON{ID: d.ID, User: d.User, Name: d.Name, Platform: d.Platform, Kind: deviceKind(d), KeyAlg: d.KeyAlg,
						PushProvider: d.PushProvider, PushStale: d.PushTokenStale, AppVersion: d.AppVersion, Status: string(d.Status),
						CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt, RevokedAt: d.RevokedAt}
					if d.WebAuthn != nil {
						dj.Attestation, dj.AttestationVerified = d.WebAuthn.AttestationFormat, d.WebAuthn.AttestationVerified
						dj.AttestationTrusted = pushauth.Qualifies(d, pushauth.KeysAttested)
					}
					out = append(out, dj)
				}
				return c.printJSON(out)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tPLATFORM\tKIND\tKEY\tPUSH\tSTATUS\tENROLLED\tLAST SEEN")
			for _, d := range devices {
				push := dash(d.PushProvider)
				if d.PushTokenStale {
					push += " (stale)"
				}
				kind := deviceKind(d)
				switch pk := d.WebAuthn; {
				case pk == nil:
				case pushauth.Qualifies(d, pushauth.KeysAttested):
					kind += " (attested: " + pk.AttestationFormat + ")"
				case pk.AttestationVerified:
					// Consistent, but not under a root the bridge trusts.
					kind += " (" + pk.AttestationFormat + ", untrusted root)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, dash(d.Name), dash(d.Platform), kind, d.KeyAlg, push, d.Status, timeText(d.CreatedAt), timeText(d.LastSeenAt))
			}
			return w.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a device: it can no longer answer challenges",
		Args:  args(1, "ID"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			d, err := ad.store.UpdateDevice(cmd.Context(), a[0], func(d store.Device) (store.Device, error) {
				if d.Status == store.DeviceRevoked {
					return d, fmt.Errorf("device %s is already revoked", d.ID)
				}
				d.Status, d.RevokedAt = store.DeviceRevoked, c.now()
				return d, nil
			})
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no device %q", a[0])
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "revoked device %s of %s\n", d.ID, d.User)
			details := map[string]string{"device": d.ID}
			// The account page's sessions opened with the device end too
			// (the page would refuse them anyway: a stolen phone's session
			// must not go on adding devices).
			if n, err := account.EndDeviceSessions(cmd.Context(), ad.store, d.ID); err != nil {
				fmt.Fprintf(c.stderr, "warning: ending the account sessions opened with the device failed (the account page refuses them anyway): %v\n", err)
			} else if n > 0 {
				fmt.Fprintf(c.stdout, "ended %d account session(s) opened with it\n", n)
				details["account_sessions"] = strconv.FormatInt(n, 10)
			}
			return ad.audit(cmd.Context(), "device.revoke", d.User, store.ResultSuccess, "", details)
		}),
	}
	return groupCommand("devices", "Manage enrolled devices", c.enrollCommand(), list, revoke)
}

// deviceKind is how a device answers: webauthn (a passkey) or jws.
func deviceKind(d store.Device) string {
	if d.Kind == store.DeviceKindJWS {
		return "jws"
	}
	return d.Kind
}

func (c *cli) keysCommand() *cobra.Command {
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the server's signing keys (public metadata only)",
		Args:  args(0),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, _ []string) error {
			ks, err := ad.store.ListSigningKeys(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				type keyJSON struct {
					ID          string     `json:"id"`
					Purpose     string     `json:"purpose"`
					Algorithm   string     `json:"algorithm"`
					Status      string     `json:"status"`
					CreatedAt   time.Time  `json:"created_at"`
					RetiredAt   *time.Time `json:"retired_at,omitempty"`
					VerifyUntil *time.Time `json:"verify_until,omitempty"`
				}
				out := make([]keyJSON, 0, len(ks))
				for _, k := range ks {
					j := keyJSON{ID: k.ID, Purpose: string(k.Purpose), Algorithm: k.Algorithm, Status: string(k.Status), CreatedAt: k.CreatedAt}
					if !k.RetiredAt.IsZero() {
						j.RetiredAt, j.VerifyUntil = &k.RetiredAt, &k.VerifyUntil
					}
					out = append(out, j)
				}
				return c.printJSON(out)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tPURPOSE\tALG\tSTATUS\tCREATED\tVERIFIES UNTIL")
			for _, k := range ks {
				until := "-"
				if k.Status == store.KeyRetired {
					until = timeText(k.VerifyUntil)
					if !k.VerifyUntil.After(c.now()) {
						until += " (expired)"
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Purpose, k.Algorithm, k.Status, timeText(k.CreatedAt), until)
			}
			return w.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var purpose string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate signing keys; the old ones keep verifying for keys.rotation_overlap",
		Long: `Generate new signing keys and make them active. The keys they replace
keep verifying for keys.rotation_overlap, so challenges and tokens already
signed stay valid; running nodes pick the new keys up within
keys.refresh_interval. A retired VAPID key (Web Push) keeps signing the
pushes to the subscriptions made with it for keys.rotation_overlap; the app
resubscribes with the new key when it next opens.`,
		Args: args(0),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, _ []string) error {
			var purposes []store.KeyPurpose
			switch purpose {
			case "all":
				purposes = []store.KeyPurpose{store.PurposePush, store.PurposeOIDC, store.PurposeSAML}
				if webPushOn(ad.cfg) {
					purposes = append(purposes, store.PurposeVAPID)
				}
			case string(store.PurposePush), string(store.PurposeOIDC), string(store.PurposeSAML), string(store.PurposeVAPID):
				purposes = []store.KeyPurpose{store.KeyPurpose(purpose)}
			default:
				return usagef("--purpose must be push, oidc, saml, vapid or all, not %q", purpose)
			}
			km, err := ad.openKeys(cmd.Context())
			if err != nil {
				return err
			}
			retiredBy := map[string]string{} // purpose/alg -> the key this run retired
			for _, p := range purposes {
				retired, err := km.Rotate(cmd.Context(), p)
				if err != nil {
					return fmt.Errorf("rotating %s keys: %w", p, err)
				}
				for _, k := range retired {
					retiredBy[string(p)+"/"+k.Algorithm] = k.ID
					fmt.Fprintf(c.stdout, "%s %s: retired %s (verifies until %s)\n", p, k.Algorithm, k.ID, timeText(k.VerifyUntil))
					if err := ad.audit(cmd.Context(), "key.rotate", k.ID, store.ResultSuccess, "",
						map[string]string{"purpose": string(p), "algorithm": k.Algorithm}); err != nil {
						return err
					}
				}
			}
			active, err := km.List(cmd.Context())
			if err != nil {
				return err
			}
			for _, k := range active {
				if k.Status == store.KeyActive {
					fmt.Fprintf(c.stdout, "%s %s: active %s\n", k.Purpose, k.Algorithm, k.ID)
					if old := retiredBy[string(k.Purpose)+"/"+k.Algorithm]; old != "" && k.Endorsement != "" {
						fmt.Fprintf(c.stdout, "%s %s: %s endorsed %s: enrolled devices follow the rotation through this endorsement, no re-enrollment needed\n", k.Purpose, k.Algorithm, old, k.ID)
					}
				}
			}
			return nil
		}),
	}
	rotate.Flags().StringVar(&purpose, "purpose", "all", "which keys: push, oidc, saml, vapid (Web Push) or all")
	return groupCommand("keys", "Manage the server's signing keys", list, rotate)
}

func (c *cli) versionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				info, _ := debug.ReadBuildInfo()
				goVersion := ""
				if info != nil {
					goVersion = info.GoVersion
				}
				return c.printJSON(map[string]any{"version": versionString(), "go": goVersion, "schema": sqlstore.SchemaVersion()})
			}
			fmt.Fprintf(c.stdout, "bridge %s\n", versionString())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// versionString is the module version, or the VCS revision of a source
// build, or "devel".
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		return "devel-" + rev[:min(12, len(rev))] + dirty
	}
	return "devel"
}

// shortHash shows the first 8 bytes of a hash, in hex.
func shortHash(b []byte) string { return hex.EncodeToString(b[:min(8, len(b))]) }
