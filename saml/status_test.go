package saml

import (
	"testing"

	"github.com/crewjam/saml"

	"github.com/bridge-idp/bridge/web"
)

func TestAuthnContext(t *testing.T) {
	mfa := web.Result{AMR: []string{"pwd", "mfa", "hwk"}}
	pwdless := web.Result{AMR: []string{"swk"}}
	code := web.Result{AMR: []string{"otp"}}
	cases := []struct {
		name       string
		comparison string
		want       string
		res        web.Result
		ref        string
		ok         bool
	}{
		{"nothing asked: what was done", "", "", mfa, acMFA, true},
		{"nothing asked, passwordless", "", "", pwdless, acMobile, true},
		{"exact MFA after MFA", "exact", acMFA, mfa, acMFA, true},
		{"exact MFA, another name", "", acMSMultiple, mfa, acMSMultiple, true},
		{"exact MFA after a passwordless push", "exact", acMFA, pwdless, "", false},
		{"exact PasswordProtectedTransport after password and push", "exact", acPassword, mfa, acPassword, true},
		{"exact PasswordProtectedTransport without a password", "exact", acPassword, code, "", false},
		{"exact unspecified", "exact", acUnspecified, pwdless, acMobile, true},
		{"unknown class", "exact", "urn:example:retina-scan", mfa, "", false},
		{"minimum password, MFA done", "minimum", acPassword, mfa, acMFA, true},
		{"minimum MFA, one factor done", "minimum", acMFA, pwdless, "", false},
		{"better than password, MFA done", "better", acPassword, mfa, acMFA, true},
		{"better than MFA", "better", acMFA, mfa, "", false},
		{"maximum password, MFA done", "maximum", acPassword, mfa, "", false},
		{"maximum MFA, MFA done", "maximum", acMFA, mfa, acMFA, true},
		{"a comparison that does not exist", "sideways", acMFA, mfa, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &saml.AuthnRequest{}
			if tc.want != "" {
				req.RequestedAuthnContext = &saml.RequestedAuthnContext{Comparison: tc.comparison, AuthnContextClassRef: tc.want}
			}
			ref, ok := authnContext(req, tc.res)
			if ok != tc.ok || ok && ref != tc.ref {
				t.Errorf("got %q %v, want %q %v", ref, ok, tc.ref, tc.ok)
			}
		})
	}
}
