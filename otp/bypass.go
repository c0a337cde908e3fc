package otp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// Bypass code limits and defaults.
const (
	DefaultBypassTTL    = time.Hour
	DefaultBypassMaxTTL = 72 * time.Hour
	DefaultBypassDigits = 8
	MinBypassDigits     = 8
	MaxBypassDigits     = 20
)

// BypassConfig sets how bypass codes are issued. Zero fields take the
// defaults.
type BypassConfig struct {
	TTL    time.Duration // lifetime when the operator names none; default 1h
	MaxTTL time.Duration // longest lifetime an operator may ask for; default 72h
	Digits int           // code length, 8 to 20; default 8
}

func (c BypassConfig) withDefaults() BypassConfig {
	if c.TTL == 0 {
		c.TTL = DefaultBypassTTL
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultBypassMaxTTL
	}
	if c.Digits == 0 {
		c.Digits = DefaultBypassDigits
	}
	return c
}

// Validate reports every problem with the configuration at once (after
// defaults for the zero fields).
func (c BypassConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("otp: bypass TTL %v is negative", c.TTL))
	}
	if c.MaxTTL < 0 {
		errs = append(errs, fmt.Errorf("otp: bypass max TTL %v is negative", c.MaxTTL))
	}
	if c.TTL > c.MaxTTL {
		errs = append(errs, fmt.Errorf("otp: bypass TTL %v is longer than the max TTL %v", c.TTL, c.MaxTTL))
	}
	if c.Digits < MinBypassDigits || c.Digits > MaxBypassDigits {
		errs = append(errs, fmt.Errorf("otp: bypass codes must have %d to %d digits, not %d", MinBypassDigits, MaxBypassDigits, c.Digits))
	}
	return errors.Join(errs...)
}

// Bypass issues and verifies single-use bypass codes. Only a salted hash of
// each code is stored.
type Bypass struct {
	st  store.OTP
	cfg BypassConfig
	now func() time.Time
}

// NewBypass checks cfg and returns a Bypass. now nil means time.Now.
func NewBypass(st store.OTP, cfg BypassConfig, now func() time.Time) (*Bypass, error) {
	if st == nil {
		return nil, errors.New("otp: NewBypass needs a store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Bypass{st: st, cfg: cfg.withDefaults(), now: now}, nil
}

// Issue makes a new code for user, valid for ttl (0: the configured
// default; more than MaxTTL is refused). createdBy names the operator for the
// audit trail. The code is returned once and not kept.
func (b *Bypass) Issue(ctx context.Context, user string, ttl time.Duration, createdBy string) (string, store.BypassCode, error) {
	name, err := store.NormalizeUsername(user)
	if err != nil {
		return "", store.BypassCode{}, err
	}
	switch {
	case ttl == 0:
		ttl = b.cfg.TTL
	case ttl < 0:
		return "", store.BypassCode{}, fmt.Errorf("otp: bypass code lifetime %v is negative", ttl)
	case ttl > b.cfg.MaxTTL:
		return "", store.BypassCode{}, fmt.Errorf("otp: bypass code lifetime %v is longer than the allowed %v", ttl, b.cfg.MaxTTL)
	}
	code, err := randomDigits(b.cfg.Digits)
	if err != nil {
		return "", store.BypassCode{}, err
	}
	salt := make([]byte, bypassSaltSize)
	idb := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", store.BypassCode{}, err
	}
	if _, err := rand.Read(idb); err != nil {
		return "", store.BypassCode{}, err
	}
	now := b.now().UTC()
	rec := store.BypassCode{
		ID:        base64.RawURLEncoding.EncodeToString(idb),
		User:      name,
		Hash:      hashBypass(salt, name, code),
		CreatedBy: createdBy,
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	}
	if err := b.st.CreateBypassCode(ctx, rec); err != nil {
		return "", store.BypassCode{}, fmt.Errorf("otp: store bypass code: %w", err)
	}
	return code, rec, nil
}

// Verify accepts an unused, unexpired code of user once, and records its
// use in one atomic store update: of any number of concurrent verifiers on
// any nodes, one succeeds. A used code gives ErrReplay, a wrong or expired
// code ErrInvalidCode. Spaces and dashes in code are ignored; malformed
// input is refused before any store I/O. Callers rate-limit attempts.
func (b *Bypass) Verify(ctx context.Context, user, code string) error {
	c, ok := normalizeCode(code, MinBypassDigits, MaxBypassDigits)
	if !ok {
		return fmt.Errorf("%w: not a bypass code", ErrInvalidCode)
	}
	name, err := store.NormalizeUsername(user)
	if err != nil {
		return ErrInvalidCode
	}
	recs, err := b.st.ListBypassCodes(ctx, name)
	if err != nil {
		return fmt.Errorf("otp: list bypass codes: %w", err)
	}
	now := b.now()
	var usable, used, expired *store.BypassCode
	// Every record is hashed and compared, match or not.
	for i := range recs {
		r := &recs[i]
		if !checkBypass(r.Hash, name, c) {
			continue
		}
		switch {
		case !r.UsedAt.IsZero():
			used = r
		case !now.Before(r.ExpiresAt):
			expired = r
		case usable == nil:
			usable = r
		}
	}
	switch {
	case usable != nil:
	case used != nil:
		return fmt.Errorf("%w: bypass code used at %s", ErrReplay, used.UsedAt.UTC().Format(time.RFC3339))
	case expired != nil:
		return fmt.Errorf("%w: bypass code expired", ErrInvalidCode)
	default:
		return ErrInvalidCode
	}
	switch _, err := b.st.UseBypassCode(ctx, usable.ID, now); {
	case errors.Is(err, store.ErrUsed):
		return fmt.Errorf("%w: bypass code used already", ErrReplay)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: bypass code expired", ErrInvalidCode)
	case err != nil:
		return fmt.Errorf("otp: record bypass code use: %w", err)
	}
	return nil
}

// randomDigits returns n uniformly random decimal digits: random bytes of
// 250 or more are thrown away, so byte%10 has no bias.
func randomDigits(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, v := range buf {
			if v < 250 && len(out) < n {
				out = append(out, '0'+v%10)
			}
		}
	}
	return string(out), nil
}

// Stored hash format, owned by this package:
//
//	version (1 byte, 1) || salt (16 bytes) || SHA-256("bridge-bypass:v1\x00" || salt || user || "\x00" || code)
const (
	bypassHashVersion = 1
	bypassSaltSize    = 16
	bypassHashSize    = 1 + bypassSaltSize + sha256.Size
)

func hashBypass(salt []byte, user, code string) []byte {
	h := sha256.New()
	h.Write([]byte("bridge-bypass:v1\x00"))
	h.Write(salt)
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(code))
	out := make([]byte, 0, bypassHashSize)
	out = append(out, bypassHashVersion)
	out = append(out, salt...)
	return h.Sum(out)
}

// checkBypass reports, in constant time for a well-formed stored hash,
// whether code is the code stored as stored.
func checkBypass(stored []byte, user, code string) bool {
	if len(stored) != bypassHashSize || stored[0] != bypassHashVersion {
		return false
	}
	return subtle.ConstantTimeCompare(hashBypass(stored[1:1+bypassSaltSize], user, code), stored) == 1
}
