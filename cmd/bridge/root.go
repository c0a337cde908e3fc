package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/sqlite"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is wrong usage: a missing argument, an unknown flag. It exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// silentError has been reported already (for example a failed check whose
// report was printed); it only sets the exit code.
type silentError struct{}

func (silentError) Error() string { return "" }

// cli is one invocation: its streams and global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
	now            func() time.Time
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var usage usageError
	if err != nil && isCobraUsage(err) {
		err = usageError{err}
	}
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "bridge: %v\nRun 'bridge --help' for usage.\n", err)
		return exitUsage
	case errors.Is(err, silentError{}):
		return exitFailure
	default:
		fmt.Fprintf(stderr, "bridge: %v\n", err)
		return exitFailure
	}
}

// isCobraUsage recognises cobra's own usage errors, which are untyped.
func isCobraUsage(err error) bool {
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "invalid argument", "accepts "} {
		if strings.HasPrefix(err.Error(), prefix) {
			return true
		}
	}
	return false
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "bridge",
		Short: "Identity bridge: RADIUS, SAML and OIDC logins with phone approval",
		Long: `bridge checks a first factor (local users, LDAP/Active Directory, or none)
and gets the user's approval on their enrolled phone, for VPNs (RADIUS),
SaaS apps (SAML 2.0) and web apps (OpenID Connect).

The configuration file is taken from --config, else $BRIDGE_CONFIG, else
./bridge.yaml.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("BRIDGE_CONFIG")
	if def == "" {
		def = "bridge.yaml"
	}
	root.PersistentFlags().StringVarP(&c.configPath, "config", "c", def, "configuration file")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		c.serveCommand(),
		c.configCommand(),
		c.migrateCommand(),
		c.usersCommand(),
		c.devicesCommand(),
		c.keysCommand(),
		c.oidcCommand(),
		c.auditCommand(),
		c.clusterCommand(),
		c.versionCommand(),
	)
	return root
}

// args checks the number of positional arguments, as a usage error.
func args(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			return usagef("%s takes %d argument(s): %s (got %d)", cmd.CommandPath(), n, strings.Join(names, " "), len(a))
		}
		return nil
	}
}

// maxArgs accepts up to n positional arguments, as a usage error beyond.
func maxArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) > n {
			return usagef("%s takes at most %d argument(s): %s (got %d)", cmd.CommandPath(), n, strings.Join(names, " "), len(a))
		}
		return nil
	}
}

// groupCommand is a command that only holds subcommands.
func groupCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, a []string) error {
			return usagef("%s needs a subcommand (see %s --help)", cmd.CommandPath(), cmd.CommandPath())
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// loadConfig loads and validates the configuration file.
func (c *cli) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(c.configPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w\n(name the configuration file with --config FILE or $BRIDGE_CONFIG; examples/bridge.yaml is a quick start)", err)
	}
	return cfg, err
}

// logger builds the process logger from the config.
func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// admin is what administrative commands work with: the config, the sealer
// (secrets at rest under the KEK) and the store.
type admin struct {
	cli    *cli
	cfg    *config.Config
	logger *slog.Logger
	sealer *keys.Sealer
	store  store.Store
}

// openAdmin loads the config and opens the store (migrating it if needed).
// Admin commands log only warnings, to stderr, so their output stays clean.
func (c *cli) openAdmin(ctx context.Context) (*admin, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	logger := newLogger(c.stderr, config.Log{Level: "warn", Format: cfg.Log.Format})
	sealer, err := sealerFor(cfg, logger)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, sealer, logger)
	if err != nil {
		return nil, err
	}
	return &admin{cli: c, cfg: cfg, logger: logger, sealer: sealer, store: st}, nil
}

func (a *admin) Close() { a.store.Close() }

// auditKeyLabel names the KEK subkey that keys the audit chain.
const auditKeyLabel = "audit-chain"

// openStore opens the configured storage backend, with the audit chain
// key derived from the KEK.
func openStore(ctx context.Context, cfg *config.Config, sealer *keys.Sealer, logger *slog.Logger) (store.Store, error) {
	auditKey := sealer.DeriveKey(auditKeyLabel)
	switch cfg.Storage.Driver {
	case "postgres":
		return postgres.Open(ctx, postgres.Config{DSN: cfg.Storage.Postgres.DSN, MaxConns: cfg.Storage.Postgres.MaxConns, AuditKey: auditKey}, logger)
	default:
		return sqlite.Open(ctx, sqlite.Config{Path: cfg.Storage.SQLite.Path, BusyTimeout: cfg.Storage.SQLite.BusyTimeout, AuditKey: auditKey}, logger)
	}
}

// sealer returns the sealer for secrets at rest: from the configured KEK,
// or in dev mode from the dev KEK file, created on first use.
func sealerFor(cfg *config.Config, logger *slog.Logger) (*keys.Sealer, error) {
	kek := cfg.KEK
	if kek == nil {
		if !cfg.DevMode {
			return nil, errors.New("no key-encryption key configured (keys.kek or keys.kek_file)")
		}
		var err error
		if kek, err = devKEK(cfg.DevKEKPath(), logger); err != nil {
			return nil, err
		}
	}
	return keys.NewSealer(kek)
}

// devKEK reads the dev-mode KEK, creating it (0600) if it does not exist.
func devKEK(path string, logger *slog.Logger) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		kek, err := keys.ParseKEK(string(b))
		if err != nil {
			return nil, fmt.Errorf("dev key-encryption key %s: %w", path, err)
		}
		return kek, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("dev key-encryption key: %w", err)
	}
	kek, text, err := keys.GenerateKEK()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("dev key-encryption key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process made it first
			return devKEK(path, logger)
		}
		return nil, fmt.Errorf("dev key-encryption key: %w", err)
	}
	if _, err := fmt.Fprintln(f, text); err != nil {
		f.Close()
		return nil, fmt.Errorf("dev key-encryption key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("dev key-encryption key: %w", err)
	}
	logger.Warn("dev mode: generated a key-encryption key; set keys.kek_file for production", "path", path)
	return kek, nil
}

// actor names the person running the CLI in the audit log.
func actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli:uid-" + fmt.Sprint(os.Getuid())
}

// audit records an administrative change made from the CLI.
func (a *admin) audit(ctx context.Context, action, subject string, result store.AuditResult, reason string, details map[string]string) error {
	_, err := a.store.AppendAudit(ctx, store.AuditEvent{
		Time: a.cli.now(), Actor: actor(), Action: action, Subject: subject, Channel: "cli",
		Result: result, Reason: reason, Details: details,
	})
	if err != nil {
		return fmt.Errorf("recording the audit event (the change itself was made): %w", err)
	}
	return nil
}

// printJSON writes v as indented JSON.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// timeText formats a time for tables; the zero time is "-".
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// jsonLine writes v as one line of JSON.
func jsonLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// withAdmin makes a command body that runs with the config loaded and the
// store open, closing it afterwards.
func (c *cli) withAdmin(fn func(cmd *cobra.Command, ad *admin, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ad, err := c.openAdmin(cmd.Context())
		if err != nil {
			return err
		}
		defer ad.Close()
		return fn(cmd, ad, args)
	}
}

// openKeys opens the key manager as admin commands need it: a key that is
// missing is generated and its creation audited as done from the CLI.
func (ad *admin) openKeys(ctx context.Context) (*keys.Manager, error) {
	c := ad.cli
	return keys.Open(ctx, ad.store, ad.sealer, keys.Options{
		RotationOverlap: ad.cfg.Keys.RotationOverlap, RSABits: ad.cfg.Keys.RSABits, Now: c.now, Specs: keySpecs(ad.cfg),
		Created: auditKeyCreated(ad.store, actor(), "cli", c.now, ad.logger),
	}, ad.logger)
}
