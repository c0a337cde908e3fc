package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
)

func (c *cli) enrollCommand() *cobra.Command {
	var (
		alg, name, platform, provider, token, caFile string
		force                                        bool
	)
	cmd := &cobra.Command{
		Use:   "enroll URL",
		Short: "Enroll this device with the bridge's activation URL",
		Long: `enroll makes a new device key, enrolls it with the activation URL the bridge
shows (the bridge://enroll?... link of the QR code) and saves the device in
the state file. The server's push key named in the URL is pinned: only
challenges it signs (or keys it endorses) are ever shown. Give "-" as URL to
read it from stdin, keeping the one-time code out of the process list.`,
		Args: args(1, "URL"),
		RunE: func(cmd *cobra.Command, a []string) error {
			switch alg {
			case protocol.AlgES256, protocol.AlgEdDSA:
			default:
				return usagef("--alg must be %s or %s, not %q", protocol.AlgES256, protocol.AlgEdDSA, alg)
			}
			switch platform {
			case protocol.PlatformAndroid, protocol.PlatformIOS, protocol.PlatformOther:
			default:
				return usagef("--platform must be %s, %s or %s, not %q", protocol.PlatformAndroid, protocol.PlatformIOS, protocol.PlatformOther, platform)
			}
			switch {
			case provider != "" && provider != protocol.ProviderFCM && provider != protocol.ProviderAPNs:
				return usagef("--push-provider must be %s or %s, not %q", protocol.ProviderFCM, protocol.ProviderAPNs, provider)
			case (provider == "") != (token == ""):
				return usagef("--push-provider and --push-token go together")
			}
			path, err := c.state()
			if err != nil {
				return err
			}
			if !force {
				if err := refuseOverwrite(path); err != nil {
					return err
				}
			}
			url := a[0]
			if url == "-" {
				if url, err = readURL(c.stdin); err != nil {
					return err
				}
			}
			var caPEM []byte
			if caFile != "" {
				if caPEM, err = os.ReadFile(caFile); err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
			}
			if name == "" {
				if host, err := os.Hostname(); err == nil {
					name = host
				}
			}
			dev, err := authenticator.Enroll(cmd.Context(), url, authenticator.EnrollOptions{
				Algorithm:    alg,
				Platform:     platform,
				Name:         name,
				AppVersion:   "bridge-authenticator/" + versionString(),
				PushProvider: provider,
				PushToken:    token,
				CACertsPEM:   caPEM,
				HTTPClient:   c.httpClient,
				Now:          c.now,
			})
			if err != nil {
				return err
			}
			if err := dev.Save(path); err != nil {
				return fmt.Errorf("the device %s was enrolled but could not be saved, so it cannot be used (ask the administrator to remove it): %w", dev.ID(), err)
			}
			fmt.Fprintf(c.stdout, "Enrolled device %s for %s at %s.\n", dev.ID(), dev.User(), dev.BaseURL())
			fmt.Fprintf(c.stdout, "Pinned push key: %s\n", dev.PinnedPushKey())
			if pin := dev.TLSPin(); pin != "" {
				fmt.Fprintf(c.stdout, "Pinned TLS key:  %s\n", pin)
			}
			fmt.Fprintf(c.stdout, "State saved to %s. Run 'bridge-authenticator wait' to answer login requests.\n", path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&alg, "alg", protocol.AlgES256, "device key algorithm: ES256 or EdDSA")
	f.StringVar(&name, "name", "", "device name shown to the administrator (default: the host name)")
	f.StringVar(&platform, "platform", protocol.PlatformOther, "platform: android, ios or other")
	f.StringVar(&provider, "push-provider", "", "push provider of --push-token: fcm or apns (default: none, long-poll only)")
	f.StringVar(&token, "push-token", "", "push token to register")
	f.StringVar(&caFile, "ca-file", "", "PEM file of CA certificates to trust for the bridge's TLS, besides the system's (saved with the device)")
	f.BoolVar(&force, "force", false, "replace an existing state file")
	return cmd
}

// refuseOverwrite fails if a state file exists at path.
func refuseOverwrite(path string) error {
	_, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("the state file %s exists already: enrolling would replace the device it holds\n(use --force to replace it, or name another file with --state FILE)", path)
}

// readURL reads the activation URL from the first line of r.
func readURL(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", fmt.Errorf("reading the activation URL from stdin: %w", err)
		}
		return "", errors.New("no activation URL on stdin")
	}
	return strings.TrimSpace(sc.Text()), nil
}
