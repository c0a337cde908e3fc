package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/oidc"
	"github.com/bridge-idp/bridge/store"
)

func (c *cli) usersCommand() *cobra.Command {
	return groupCommand("users", "Manage local users and their second factors",
		c.usersAddCommand(),
		c.usersListCommand(),
		c.usersShowCommand(),
		c.usersStatusCommand("disable", store.UserDisabled),
		c.usersStatusCommand("enable", store.UserActive),
		c.usersDeleteCommand(),
		c.usersSetPasswordCommand(),
		c.usersImportCommand(),
		c.totpCommand(),
		c.bypassCommand(),
	)
}

// userJSON is a user as --json prints it. The password hash never leaves
// the store.
type userJSON struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	Email       string    `json:"email"`
	Groups      []string  `json:"groups"`
	Status      string    `json:"status"`
	HasPassword bool      `json:"has_password"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Filled by show only.
	Devices     *int  `json:"devices,omitempty"`
	TOTP        *bool `json:"totp,omitempty"`
	BypassCodes *int  `json:"active_bypass_codes,omitempty"`
}

func toUserJSON(u store.User) userJSON {
	return userJSON{Name: u.Name, DisplayName: u.DisplayName, Email: u.Email, Groups: u.Groups, Status: string(u.Status),
		HasPassword: u.PasswordHash != "", CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// readNewPassword reads a new password: from standard input with
// --password-stdin (first line), else by prompting twice on a terminal.
func (c *cli) readNewPassword(fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("the password on standard input is empty")
		}
		return pw, nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !isTerminal(c.stdin) {
		return "", usagef("standard input is not a terminal: pass the password with --password-stdin, or use --no-password")
	}
	fmt.Fprint(c.stderr, "New password: ")
	a, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(c.stderr, "Repeat password: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords differ")
	}
	if len(a) == 0 {
		return "", errors.New("empty password")
	}
	return string(a), nil
}

func normalize(name string) (string, error) {
	n, err := store.NormalizeUsername(name)
	if err != nil {
		return "", usageError{err}
	}
	return n, nil
}

func (c *cli) usersAddCommand() *cobra.Command {
	var (
		u                    store.User
		disabled, noPassword bool
		passwordStdin        bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a local user",
		Long: `Add a local user. The password is asked for twice on a terminal, read
from the first line of standard input with --password-stdin, or left unset
with --no-password (for users who log in with a passwordless directory).`,
		Args: args(1, "NAME"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			if noPassword && passwordStdin {
				return usagef("--no-password and --password-stdin exclude each other")
			}
			name, err := normalize(a[0])
			if err != nil {
				return err
			}
			u.Name, u.Status, u.CreatedAt, u.UpdatedAt = name, store.UserActive, c.now(), c.now()
			if disabled {
				u.Status = store.UserDisabled
			}
			if !noPassword {
				pw, err := c.readNewPassword(passwordStdin)
				if err != nil {
					return err
				}
				if u.PasswordHash, err = local.HashPassword(ad.cfg.Passwords.Argon2id, pw); err != nil {
					return err
				}
			}
			if err := ad.store.CreateUsers(cmd.Context(), u); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return fmt.Errorf("user %q exists already", name)
				}
				return err
			}
			fmt.Fprintf(c.stdout, "added user %s\n", name)
			return ad.audit(cmd.Context(), "user.create", name, store.ResultSuccess, "", nil)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&u.DisplayName, "display-name", "", "full name")
	f.StringVar(&u.Email, "email", "", "e-mail address")
	f.StringSliceVar(&u.Groups, "group", nil, "group (repeat, or separate with commas)")
	f.BoolVar(&disabled, "disabled", false, "create the user disabled")
	f.BoolVar(&noPassword, "no-password", false, "set no password")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func (c *cli) usersListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List local users",
		Args:  args(0),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			users, err := ad.store.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]userJSON, 0, len(users))
				for _, u := range users {
					out = append(out, toUserJSON(u))
				}
				return c.printJSON(out)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tDISPLAY NAME\tEMAIL\tGROUPS\tSTATUS\tPASSWORD")
			for _, u := range users {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, dash(u.DisplayName), dash(u.Email), dash(strings.Join(u.Groups, ",")), u.Status, yesNo(u.PasswordHash != ""))
			}
			return w.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (c *cli) usersShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a local user with their devices and second factors",
		Args:  args(1, "NAME"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			ctx := cmd.Context()
			name, err := normalize(a[0])
			if err != nil {
				return err
			}
			u, err := ad.store.GetUser(ctx, name)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no user %q", name)
			} else if err != nil {
				return err
			}
			devices, err := ad.store.ListDevices(ctx, name)
			if err != nil {
				return err
			}
			_, terr := ad.store.GetTOTP(ctx, name)
			if terr != nil && !errors.Is(terr, store.ErrNotFound) {
				return terr
			}
			codes, err := ad.store.ListBypassCodes(ctx, name)
			if err != nil {
				return err
			}
			active := 0
			for _, bc := range codes {
				if bc.UsedAt.IsZero() && bc.ExpiresAt.After(c.now()) {
					active++
				}
			}
			activeDevices := 0
			for _, d := range devices {
				if d.Status == store.DeviceActive {
					activeDevices++
				}
			}
			hasTOTP := terr == nil
			if asJSON {
				j := toUserJSON(u)
				j.Devices, j.TOTP, j.BypassCodes = &activeDevices, &hasTOTP, &active
				return c.printJSON(j)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Name:\t%s\nDisplay name:\t%s\nEmail:\t%s\nGroups:\t%s\nStatus:\t%s\nPassword:\t%s\n",
				u.Name, dash(u.DisplayName), dash(u.Email), dash(strings.Join(u.Groups, ", ")), u.Status, yesNo(u.PasswordHash != ""))
			fmt.Fprintf(w, "Active devices:\t%d\nTOTP:\t%s\nActive bypass codes:\t%d\nCreated:\t%s\nUpdated:\t%s\n",
				activeDevices, yesNo(hasTOTP), active, timeText(u.CreatedAt), timeText(u.UpdatedAt))
			return w.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (c *cli) usersStatusCommand(verb string, status store.UserStatus) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a local user",
		Args:  args(1, "NAME"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := c.updateUser(cmd.Context(), a[0], "user."+verb, func(u store.User) (store.User, error) {
				u.Status = status
				return u, nil
			}); err != nil {
				return err
			}
			if status != store.UserDisabled {
				return nil
			}
			// A disabled user is signed out: browser sessions and tokens
			// go too (refreshes and session reuse re-check the directory
			// as well, for users disabled elsewhere).
			return c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
				name, _ := normalize(a[0])
				n, err := oidc.SignOut(cmd.Context(), ad.store, name, c.now())
				if err == nil && n > 0 {
					fmt.Fprintf(c.stdout, "signed %s out: %d sessions, sign-ins and tokens revoked\n", name, n)
				}
				return err
			})(cmd, a)
		},
	}
}

// updateUser changes one user atomically and audits it.
func (c *cli) updateUser(ctx context.Context, rawName, action string, fn func(store.User) (store.User, error)) error {
	name, err := normalize(rawName)
	if err != nil {
		return err
	}
	ad, err := c.openAdmin(ctx)
	if err != nil {
		return err
	}
	defer ad.Close()
	_, err = ad.store.UpdateUser(ctx, name, func(u store.User) (store.User, error) {
		u, err := fn(u)
		u.UpdatedAt = c.now()
		return u, err
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", name)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: %s\n", action, name)
	return ad.audit(ctx, action, name, store.ResultSuccess, "", nil)
}

func (c *cli) usersDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a local user with their devices, TOTP token and bypass codes",
		Args:  args(1, "NAME"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			name, err := normalize(a[0])
			if err != nil {
				return err
			}
			if err := ad.store.DeleteUser(cmd.Context(), name); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no user %q", name)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "deleted user %s\n", name)
			return ad.audit(cmd.Context(), "user.delete", name, store.ResultSuccess, "", nil)
		}),
	}
}

func (c *cli) usersSetPasswordCommand() *cobra.Command {
	var passwordStdin, clear bool
	cmd := &cobra.Command{
		Use:   "set-password NAME",
		Short: "Set (or with --clear remove) a local user's password",
		Args:  args(1, "NAME"),
		RunE: func(cmd *cobra.Command, a []string) error {
			var hash string
			if !clear {
				cfg, err := c.loadConfig()
				if err != nil {
					return err
				}
				pw, err := c.readNewPassword(passwordStdin)
				if err != nil {
					return err
				}
				if hash, err = local.HashPassword(cfg.Passwords.Argon2id, pw); err != nil {
					return err
				}
			}
			return c.updateUser(cmd.Context(), a[0], "user.password", func(u store.User) (store.User, error) {
				u.PasswordHash = hash
				return u, nil
			})
		},
	}
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	cmd.Flags().BoolVar(&clear, "clear", false, "remove the password")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
