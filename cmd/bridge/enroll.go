package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/internal/qrcode"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web/account"
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
		qrWhich string
	)
	cmd := &cobra.Command{
		Use:   "enroll USER",
		Short: "Create a one-time activation for a user's phone (QR code and URL)",
		Long: `Create a one-time, short-lived activation for USER and show it as a QR
code and a URL. The authenticator app scans it, generates its key and
enrolls. The code holds the bridge's base URL (http.public.base_url), the
activation secret and the fingerprint of the server's push key, which the
device pins. Anyone holding the code can enroll a device for USER until it
is used or expires: hand it to the user only.

With the web authenticator on (app.enabled), the same activation is also
printed as the web app's link (<base URL>/app/#enroll?...), which a phone
opens in its browser: nothing to install. --qr says which of the two the
terminal's QR code (and --png, --svg) shows: "app" by default when the
base URL is https (a phone can open it), else "native" (the bridge://
link of an authenticator app; the web app needs a secure context, which
plain http is only on the machine itself).`,
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
			qrApp, err := qrChoice(qrWhich, ad.cfg)
			if err != nil {
				return err
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
			link, appLink := act.String(), ""
			if ad.cfg.App.Enabled {
				appLink = account.AppLink(act, name)
			}
			qrText := link
			if qrApp {
				qrText = appLink
			}
			for _, out := range []struct {
				path string
				draw func(string) ([]byte, error)
			}{{pngFile, qrcode.PNG}, {svgFile, qrcode.SVG}} {
				if out.path == "" {
					continue
				}
				img, err := out.draw(qrText)
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
					AppURL     string    `json:"app_url,omitempty"`
					PushKey    string    `json:"push_key"`
					ExpiresAt  time.Time `json:"expires_at"`
				}{name, rec.ID, link, appLink, act.PushKey, rec.ExpiresAt})
			}
			if pngFile == "" && svgFile == "" {
				if err := qrcode.Terminal(qrText, c.stdout); err != nil {
					return err
				}
			}
			if qrApp {
				fmt.Fprintf(c.stdout, "Scan the code with the phone's camera to open the web app, or open:\n\n  %s\n\n", appLink)
				fmt.Fprintf(c.stdout, "An authenticator app enrolls with:\n\n  %s\n\n", link)
			} else {
				fmt.Fprintf(c.stdout, "Scan the code with the authenticator app, or open:\n\n  %s\n\n", link)
				if appLink != "" {
					fmt.Fprintf(c.stdout, "The web app (%s/app/) enrolls with:\n\n  %s\n\n", act.BaseURL, appLink)
				}
			}
			fmt.Fprintf(c.stdout, "user:      %s\nserver:    %s\npush key:  %s\nexpires:   %s (single use)\n",
				name, act.BaseURL, act.PushKey, timeText(rec.ExpiresAt))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a QR code")
	cmd.Flags().StringVar(&pngFile, "png", "", "also write the QR code as a PNG `file`")
	cmd.Flags().StringVar(&svgFile, "svg", "", "also write the QR code as an SVG `file`")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the activation is valid (default push.activation_ttl)")
	cmd.Flags().StringVar(&qrWhich, "qr", "", "which link the QR code shows: app (the web app's, default with an https base URL and app.enabled) or native (bridge://)")
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

// qrChoice decides which link the QR code shows (true: the web app's).
// The web app's by default only where a phone can open it: the app on and
// an https base URL. Plain http is a secure context only on the machine
// itself (localhost), and a phone cannot reach that machine's localhost.
func qrChoice(flag string, cfg *config.Config) (bool, error) {
	switch flag {
	case "":
		u, err := url.Parse(cfg.HTTP.Public.BaseURL)
		return cfg.App.Enabled && err == nil && u.Scheme == "https", nil
	case "native":
		return false, nil
	case "app":
		if !cfg.App.Enabled {
			return false, usagef("--qr app needs the web authenticator (app.enabled)")
		}
		return true, nil
	}
	return false, usagef("--qr must be app or native, not %q", flag)
}
