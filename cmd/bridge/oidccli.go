package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/oidc"
	"github.com/bridge-idp/bridge/store"
)

// oidcCommand lists the OIDC clients of the config and signs users out.
func (c *cli) oidcCommand() *cobra.Command {
	var asJSON bool
	clients := &cobra.Command{
		Use:   "clients",
		Short: "List the OIDC clients of the config (never their secrets)",
		Args:  args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			type clientJSON struct {
				ID                     string   `json:"id"`
				Name                   string   `json:"name"`
				AuthMethod             string   `json:"auth_method"`
				RedirectURIs           []string `json:"redirect_uris"`
				PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
				Directory              string   `json:"directory"`
				Scopes                 []string `json:"scopes"`
				SigningAlgorithm       string   `json:"signing_algorithm"`
				NumberMatching         bool     `json:"number_matching"`
				SessionReuse           bool     `json:"session_reuse"`
				Captcha                bool     `json:"captcha"`
			}
			out := make([]clientJSON, 0, len(cfg.OIDC.Clients))
			for _, k := range cfg.OIDC.Clients {
				out = append(out, clientJSON{
					ID: k.ID, Name: k.Name, AuthMethod: k.AuthMethod, RedirectURIs: k.RedirectURIs,
					PostLogoutRedirectURIs: k.PostLogoutRedirectURIs, Directory: k.Directory, Scopes: k.Scopes,
					SigningAlgorithm: k.SigningAlgorithm, NumberMatching: k.NumberMatching, SessionReuse: k.SessionReuse, Captcha: k.Captcha,
				})
			}
			if asJSON {
				return c.printJSON(out)
			}
			if len(out) == 0 {
				fmt.Fprintln(c.stdout, "no OIDC clients configured (oidc.clients)")
				return nil
			}
			fmt.Fprintf(c.stdout, "issuer: %s\n", cfg.OIDCIssuer())
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tAUTH\tALG\tDIRECTORY\tSCOPES\tREDIRECT URIS")
			for _, k := range out {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.AuthMethod, k.SigningAlgorithm, k.Directory,
					strings.Join(k.Scopes, " "), strings.Join(k.RedirectURIs, " "))
			}
			return w.Flush()
		},
	}
	clients.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	signout := &cobra.Command{
		Use:   "signout USER",
		Short: "End a user's browser sessions and revoke their OIDC tokens",
		Long: `End every browser session of USER (the next sign-in asks the phone again)
and revoke their OIDC access and refresh tokens and sign-ins in progress, on
every node. Audited.`,
		Args: args(1, "USER"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			name, err := store.NormalizeUsername(a[0])
			if err != nil {
				return usagef("%q is not a valid user name: %v", a[0], err)
			}
			n, err := oidc.SignOut(cmd.Context(), ad.store, name, c.now())
			if err != nil {
				return err
			}
			if err := ad.audit(cmd.Context(), "user.signout", name, store.ResultSuccess, "",
				map[string]string{"revoked": fmt.Sprint(n)}); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "signed %s out: %d sessions, sign-ins and tokens revoked\n", name, n)
			return nil
		}),
	}
	return groupCommand("oidc", "OpenID Connect: clients and sign-outs", clients, signout)
}
