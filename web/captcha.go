package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Captcha configures the optional bot protection on the sign-in form: a
// widget from the provider's script, whose token the server verifies at
// VerifyURL (the reCAPTCHA / hCaptcha / Turnstile "siteverify" protocol).
type Captcha struct {
	Provider  string // turnstile, hcaptcha, recaptcha; empty: off
	SiteKey   string
	Secret    string
	VerifyURL string
	ScriptURL string
	// AfterFailures, when above 0, asks every sign-in from an address
	// with that many failures in the window.
	AfterFailures int
	Timeout       time.Duration
}

// Enabled reports whether a provider is set.
func (c Captcha) Enabled() bool { return c.Provider != "" }

// field is the form field the provider's widget puts its token in, and
// widget the class of the element it renders into.
func (c Captcha) field() string {
	switch c.Provider {
	case "hcaptcha":
		return "h-captcha-response"
	case "recaptcha":
		return "g-recaptcha-response"
	default:
		return "cf-turnstile-response"
	}
}

func (c Captcha) widget() string {
	switch c.Provider {
	case "hcaptcha":
		return "h-captcha"
	case "recaptcha":
		return "g-recaptcha"
	default:
		return "cf-turnstile"
	}
}

// origins are what the sign-in page's CSP must allow for the widget.
func (c Captcha) origins() []string {
	u, err := url.Parse(c.ScriptURL)
	if err != nil || u.Host == "" {
		return nil
	}
	out := []string{u.Scheme + "://" + u.Host}
	switch c.Provider {
	case "hcaptcha":
		out = append(out, "https://*.hcaptcha.com")
	case "recaptcha":
		out = append(out, "https://www.gstatic.com")
	}
	return out
}

type captchaVerifier struct {
	cfg    Captcha
	client *http.Client
}

func newCaptchaVerifier(cfg Captcha, client *http.Client) *captchaVerifier {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	return &captchaVerifier{cfg: cfg, client: client}
}

var errNoCaptcha = errors.New("no CAPTCHA token")

// verify checks the token the form carries with the provider.
func (v *captchaVerifier) verify(ctx context.Context, r *http.Request, ip string) error {
	token := r.PostFormValue(v.cfg.field())
	if token == "" {
		return errNoCaptcha
	}
	if len(token) > 4096 {
		return errors.New("CAPTCHA token too long")
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	form := url.Values{"secret": {v.cfg.Secret}, "response": {token}, "remoteip": {ip}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.VerifyURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("CAPTCHA verification: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CAPTCHA verification: HTTP %d", resp.StatusCode)
	}
	var out struct {
		Success    bool     `json:"success"`
		ErrorCodes []string `json:"error-codes"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return fmt.Errorf("CAPTCHA verification: %w", err)
	}
	if !out.Success {
		return fmt.Errorf("CAPTCHA rejected: %s", strings.Join(out.ErrorCodes, ", "))
	}
	return nil
}
