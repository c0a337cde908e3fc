package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/internal/qrcode"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// enrollCommand is `bridge devices enroll USER`: a one-time activation a
// phone scans to enroll.
func (c *cli) enrollCommand() *cobra.Command {
	var (
		asJSON  bool
		pngFile string
		svgFile string
		ttl     time.Duration
		pinTLS  bool
	)
	cmd := &cobra.Command{
		Use:   "enroll USER",
		Short: "Create a one-time activation for a user's phone (QR code and URL)",
		Long: `Create a one-time, short-lived activation for USER and show it as a QR
code and a URL. The authenticator app scans it, generates its key and
enrolls. The code holds the bridge's base URL (http.public.base_url), the
activation secret and the fingerprint of the server's push key, which the
device pins. Anyone holding the code can enroll a device for USER until it
is used or expires: hand it to the user only.`,
		Args: args(1, "USER"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			name, err := userMustExist(cmd, ad, a[0])
			if err != nil {
				return err
			}
			if ttl == 0 {
				ttl = ad.cfg.File.Push.ActivationTTL
			}
			if ttl < time.Minute || ttl > 7*24*time.Hour {
				return usagef("--ttl must be between 1m and 168h, not %v", ttl)
			}
			km, err := ad.openKeys(cmd.Context())
			if err != nil {
				return err
			}
			pin := ""
			if pinTLS {
				if pin, err = tlsPin(ad.cfg.HTTP.Public.TLS.CertFile); err != nil {
					return err
				}
			}
			act, rec, err := pushauth.Activator{
				Store: ad.store, Keys: km, HMACKey: ad.sealer.DeriveKey(pushauth.ActivationKeyLabel),
				BaseURL: ad.cfg.HTTP.Public.BaseURL, TTL: ttl, Now: c.now,
			}.Create(cmd.Context(), name, actor(), pin)
			if err != nil {
				return err
			}
			if err := ad.audit(cmd.Context(), "device.activation", name, store.ResultSuccess, "",
				map[string]string{"activation": rec.ID, "expires_at": rec.ExpiresAt.Format(time.RFC3339)}); err != nil {
				return err
			}
			link := act.String()
			for _, out := range []struct {
				path string
				draw func(string) ([]byte, error)
			}{{pngFile, qrcode.PNG}, {svgFile, qrcode.SVG}} {
				if out.path == "" {
					continue
				}
				img, err := out.draw(link)
				if err != nil {
					return err
				}
				if err := os.WriteFile(out.path, img, 0o600); err != nil {
					return fmt.Errorf("writing the QR code: %w", err)
				}
			}
			if asJSON {
				return c.printJSON(struct {
					User       string    `json:"user"`
					Activation string    `json:"activation"`
					URL        string    `json:"url"`
					PushKey    string    `json:"push_key"`
					ExpiresAt  time.Time `json:"expires_at"`
				}{name, rec.ID, link, act.PushKey, rec.ExpiresAt})
			}
			if pngFile == "" && svgFile == "" {
				if err := qrcode.Terminal(link, c.stdout); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.stdout, "Scan the code with the authenticator app, or open:\n\n  %s\n\n", link)
			fmt.Fprintf(c.stdout, "user:      %s\nserver:    %s\npush key:  %s\nexpires:   %s (single use)\n",
				name, act.BaseURL, act.PushKey, timeText(rec.ExpiresAt))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a QR code")
	cmd.Flags().StringVar(&pngFile, "png", "", "also write the QR code as a PNG `file`")
	cmd.Flags().StringVar(&svgFile, "svg", "", "also write the QR code as an SVG `file`")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the activation is valid (default push.activation_ttl)")
	cmd.Flags().BoolVar(&pinTLS, "pin-tls", false, "also pin the public listener's TLS key (http.public.tls.cert_file): the phone then refuses any other key, so renew the certificate with the same key")
	return cmd
}

// tlsPin is the SPKI pin of the first certificate in certFile.
func tlsPin(certFile string) (string, error) {
	if certFile == "" {
		return "", usagef("--pin-tls needs http.public.tls.cert_file: the bridge must serve TLS itself to pin its key")
	}
	data, err := os.ReadFile(certFile)
	if err != nil {
		return "", fmt.Errorf("reading the TLS certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s: no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", certFile, err)
	}
	return protocol.SPKIPin(cert.RawSubjectPublicKeyInfo), nil
}
