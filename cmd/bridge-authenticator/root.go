package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/pushauth/authenticator"
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

// silentError has been reported already; it only sets the exit code.
type silentError struct{}

func (silentError) Error() string { return "" }

// cli is one invocation: its streams and global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	statePath      string
	now            func() time.Time
	// httpClient, if not nil, is what the device copies (tests).
	httpClient *http.Client
	// pollInterval paces the polls that must not long-poll: while a
	// challenge is on screen (to see it closed elsewhere), and while every
	// pending challenge has been seen already.
	pollInterval time.Duration
	// input holds the lines of stdin, read by one goroutine started on
	// first use; done ends it.
	input chan inputLine
	done  chan struct{}
}

func newCLI(stdin io.Reader, stdout, stderr io.Writer) *cli {
	return &cli{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now, pollInterval: 3 * time.Second}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newCLI(stdin, stdout, stderr).execute(ctx, args)
}

func (c *cli) execute(ctx context.Context, args []string) int {
	c.done = make(chan struct{})
	defer close(c.done)
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	err := root.ExecuteContext(ctx)
	var usage usageError
	if err != nil && isCobraUsage(err) {
		err = usageError{err}
	}
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(c.stderr, "bridge-authenticator: %v\nRun 'bridge-authenticator --help' for usage.\n", err)
		return exitUsage
	case errors.Is(err, silentError{}):
		return exitFailure
	default:
		fmt.Fprintf(c.stderr, "bridge-authenticator: %v\n", err)
		return exitFailure
	}
}

// isCobraUsage recognises cobra's own usage errors, which are untyped.
func isCobraUsage(err error) bool {
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "invalid argument", "accepts ", "flag needs an argument"} {
		if strings.HasPrefix(err.Error(), prefix) {
			return true
		}
	}
	return false
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "bridge-authenticator",
		Short: "Reference authenticator for the bridge's push approvals",
		Long: `bridge-authenticator is an authenticator device in a terminal: it enrolls
with the activation URL the bridge shows (as a QR code), then shows login
requests and sends your approve / deny / report decision.

The device, its private key included, is kept in a state file readable
only by you: --state, else $XDG_CONFIG_HOME/bridge-authenticator/device.json,
else ~/.config/bridge-authenticator/device.json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("%s needs a command (see %s --help)", cmd.CommandPath(), cmd.CommandPath())
		},
	}
	def, _ := defaultStatePath()
	root.PersistentFlags().StringVar(&c.statePath, "state", def, "device state file")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(c.enrollCommand(), c.waitCommand(), c.statusCommand())
	return root
}

// defaultStatePath is $XDG_CONFIG_HOME/bridge-authenticator/device.json,
// else ~/.config/bridge-authenticator/device.json.
func defaultStatePath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "bridge-authenticator", "device.json"), nil
}

// state is the state file to use.
func (c *cli) state() (string, error) {
	if c.statePath == "" {
		return "", usagef("no state file: name one with --state FILE (neither $XDG_CONFIG_HOME nor $HOME is set)")
	}
	return c.statePath, nil
}

// loadDevice loads the enrolled device.
func (c *cli) loadDevice() (*authenticator.Device, string, error) {
	path, err := c.state()
	if err != nil {
		return nil, "", err
	}
	opts := []authenticator.Option{authenticator.WithClock(c.now)}
	if c.httpClient != nil {
		opts = append(opts, authenticator.WithHTTPClient(c.httpClient))
	}
	dev, err := authenticator.Load(path, opts...)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("no device is enrolled: the state file %s does not exist\n(enroll with: bridge-authenticator enroll URL, or name another state file with --state FILE)", path)
	}
	if err != nil {
		return nil, "", err
	}
	return dev, path, nil
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
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			return "devel-" + s.Value[:min(12, len(s.Value))]
		}
	}
	return "devel"
}

// timeText formats a time for people; the zero time is "-".
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}
