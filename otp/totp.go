package otp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	potp "github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/store"
)

// SecretSize is the size of a TOTP secret: 160 bits, as RFC 4226 recommends.
const SecretSize = 20

// MaxSkew bounds TOTPConfig.Skew.
const MaxSkew = 10

// TOTPConfig sets how new tokens are made and how codes are checked.
// Algorithm, Digits and Period apply to tokens enrolled from now on; a token
// keeps the parameters it was enrolled with (its authenticator app knows no
// others). Skew applies to every verification.
type TOTPConfig struct {
	// Issuer names the bridge in authenticator apps. Required; no colon.
	Issuer string
	// Algorithm is the HMAC hash: SHA1 (the default, what most apps
	// support), SHA256 or SHA512.
	Algorithm string
	// Digits is 6 (the default) or 8.
	Digits int
	// Period is the time step, in whole seconds; default 30s.
	Period time.Duration
	// Skew is how many time steps either side of now are accepted, for
	// clock drift; 0 accepts the current step only. DefaultTOTPConfig uses 1.
	Skew int
}

// DefaultTOTPConfig is the usual authenticator-app setting: SHA1, 6 digits,
// 30 s, one step of skew.
func DefaultTOTPConfig(issuer string) TOTPConfig {
	return TOTPConfig{Issuer: issuer, Algorithm: "SHA1", Digits: 6, Period: 30 * time.Second, Skew: 1}
}

func (c TOTPConfig) withDefaults() TOTPConfig {
	c.Algorithm = strings.ToUpper(c.Algorithm)
	if c.Algorithm == "" {
		c.Algorithm = "SHA1"
	}
	if c.Digits == 0 {
		c.Digits = 6
	}
	if c.Period == 0 {
		c.Period = 30 * time.Second
	}
	return c
}

// Validate reports every problem with the configuration at once (after
// defaults for the zero fields).
func (c TOTPConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if strings.TrimSpace(c.Issuer) == "" {
		errs = append(errs, errors.New("otp: TOTP issuer is empty"))
	}
	if strings.Contains(c.Issuer, ":") {
		errs = append(errs, errors.New("otp: TOTP issuer must not contain a colon"))
	}
	if _, err := hashAlgorithm(c.Algorithm); err != nil {
		errs = append(errs, err)
	}
	if c.Digits != 6 && c.Digits != 8 {
		errs = append(errs, fmt.Errorf("otp: TOTP digits must be 6 or 8, not %d", c.Digits))
	}
	if err := checkPeriod(c.Period); err != nil {
		errs = append(errs, err)
	}
	if c.Skew < 0 || c.Skew > MaxSkew {
		errs = append(errs, fmt.Errorf("otp: TOTP skew must be between 0 and %d steps, not %d", MaxSkew, c.Skew))
	}
	return errors.Join(errs...)
}

func hashAlgorithm(name string) (potp.Algorithm, error) {
	switch name {
	case "SHA1":
		return potp.AlgorithmSHA1, nil
	case "SHA256":
		return potp.AlgorithmSHA256, nil
	case "SHA512":
		return potp.AlgorithmSHA512, nil
	}
	return 0, fmt.Errorf("otp: TOTP algorithm must be SHA1, SHA256 or SHA512, not %q", name)
}

func checkPeriod(p time.Duration) error {
	if p < time.Second || p > 10*time.Minute || p%time.Second != 0 {
		return fmt.Errorf("otp: TOTP period must be whole seconds between 1s and 10m, not %v", p)
	}
	return nil
}

// TOTP enrolls and verifies RFC 6238 soft tokens. Secrets are sealed at
// rest; each code is single use across all nodes sharing the store.
type TOTP struct {
	st     store.OTP
	sealer *keys.Sealer
	cfg    TOTPConfig
	now    func() time.Time
}

// NewTOTP checks cfg and returns a TOTP. now nil means time.Now.
func NewTOTP(st store.OTP, sealer *keys.Sealer, cfg TOTPConfig, now func() time.Time) (*TOTP, error) {
	if st == nil || sealer == nil {
		return nil, errors.New("otp: NewTOTP needs a store and a sealer")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &TOTP{st: st, sealer: sealer, cfg: cfg.withDefaults(), now: now}, nil
}

// Enrollment is what the user copies into an authenticator app. Both fields
// hold the secret: show them to the user once, never log them.
type Enrollment struct {
	URI    string // otpauth://totp/... (for a QR code)
	Secret string // base32, for typing in by hand
}

func totpAD(user string) string { return "bridge-totp:v1:" + user }

// Enroll makes a new token for user, replacing any token the user had.
func (t *TOTP) Enroll(ctx context.Context, user string) (Enrollment, error) {
	name, err := store.NormalizeUsername(user)
	if err != nil {
		return Enrollment{}, err
	}
	alg, _ := hashAlgorithm(t.cfg.Algorithm) // checked by NewTOTP
	secret := make([]byte, SecretSize)
	defer clear(secret)
	if _, err := rand.Read(secret); err != nil {
		return Enrollment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      t.cfg.Issuer,
		AccountName: name,
		Period:      uint(t.cfg.Period / time.Second),
		Secret:      secret,
		Digits:      potp.Digits(t.cfg.Digits),
		Algorithm:   alg,
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("otp: build otpauth URI: %w", err)
	}
	sealed, err := t.sealer.Seal(secret, totpAD(name))
	if err != nil {
		return Enrollment{}, fmt.Errorf("otp: seal TOTP secret: %w", err)
	}
	err = t.st.PutTOTP(ctx, store.TOTP{
		User:         name,
		SealedSecret: sealed,
		Algorithm:    t.cfg.Algorithm,
		Digits:       t.cfg.Digits,
		Period:       t.cfg.Period,
		LastCounter:  -1,
		CreatedAt:    t.now().UTC(),
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("otp: store TOTP token: %w", err)
	}
	return Enrollment{URI: key.URL(), Secret: key.Secret()}, nil
}

// Verify checks code against user's token at steps now-Skew..now+Skew. A
// matching code is recorded as used (with every older step) in one atomic
// store update, so it is accepted once across all nodes: a second use gives
// ErrReplay, as does a code older than the last one used. A wrong code gives
// ErrInvalidCode; malformed input is refused before any store I/O. Spaces
// and dashes in code are ignored. Callers rate-limit attempts.
func (t *TOTP) Verify(ctx context.Context, user, code string) error {
	c, ok := normalizeCode(code, 6, 8)
	if !ok || len(c) == 7 {
		return fmt.Errorf("%w: not a 6 or 8 digit code", ErrInvalidCode)
	}
	name, err := store.NormalizeUsername(user)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoToken, err)
	}
	tok, err := t.st.GetTOTP(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoToken
	}
	if err != nil {
		return fmt.Errorf("otp: read TOTP token: %w", err)
	}
	if len(c) != tok.Digits {
		return fmt.Errorf("%w: want %d digits", ErrInvalidCode, tok.Digits)
	}
	if err := checkPeriod(tok.Period); err != nil {
		return fmt.Errorf("otp: stored token of %s: %w", name, err)
	}
	secret, err := t.sealer.Open(tok.SealedSecret, totpAD(name))
	if err != nil {
		return fmt.Errorf("otp: TOTP secret of %s does not decrypt (this node's KEK id is %s): %w", name, t.sealer.ID(), err)
	}
	defer clear(secret)

	step := int64(tok.Period / time.Second)
	now := t.now().Unix()
	if now < 0 {
		return ErrInvalidCode
	}
	cur := now / step
	match, stale := int64(-1), false
	for ctr := cur - int64(t.cfg.Skew); ctr <= cur+int64(t.cfg.Skew); ctr++ {
		if ctr < 0 {
			continue
		}
		want, err := generateCode(secret, uint64(ctr), tok.Algorithm, tok.Digits)
		if err != nil {
			return fmt.Errorf("otp: stored token of %s: %w", name, err)
		}
		// Every step is compared, match or not, so timing shows nothing.
		if subtle.ConstantTimeCompare([]byte(want), []byte(c)) == 1 {
			switch {
			case ctr <= tok.LastCounter:
				stale = true
			case match < 0:
				match = ctr
			}
		}
	}
	if match < 0 {
		if stale {
			return fmt.Errorf("%w: this code or a newer one was used already", ErrReplay)
		}
		return ErrInvalidCode
	}
	switch err := t.st.UseTOTPCounter(ctx, name, match); {
	case errors.Is(err, store.ErrUsed):
		return fmt.Errorf("%w: this code or a newer one was used already", ErrReplay)
	case errors.Is(err, store.ErrNotFound):
		return ErrNoToken
	case err != nil:
		return fmt.Errorf("otp: record TOTP use: %w", err)
	}
	return nil
}

// generateCode is the RFC 4226 / 6238 code of secret at counter.
func generateCode(secret []byte, counter uint64, algorithm string, digits int) (string, error) {
	alg, err := hashAlgorithm(algorithm)
	if err != nil {
		return "", err
	}
	if digits != 6 && digits != 8 {
		return "", fmt.Errorf("otp: %d digits", digits)
	}
	return hotp.GenerateCodeCustom(base32.StdEncoding.EncodeToString(secret), counter, hotp.ValidateOpts{
		Digits:    potp.Digits(digits),
		Algorithm: alg,
	})
}

// Remove deletes user's token; ErrNoToken if there is none.
func (t *TOTP) Remove(ctx context.Context, user string) error {
	name, err := store.NormalizeUsername(user)
	if err != nil {
		return err
	}
	err = t.st.DeleteTOTP(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoToken
	}
	if err != nil {
		return fmt.Errorf("otp: delete TOTP token: %w", err)
	}
	return nil
}

// Has reports whether user has a TOTP token.
func (t *TOTP) Has(ctx context.Context, user string) (bool, error) {
	name, err := store.NormalizeUsername(user)
	if err != nil {
		return false, err
	}
	_, err = t.st.GetTOTP(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("otp: read TOTP token: %w", err)
	}
	return true, nil
}
