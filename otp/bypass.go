package otp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bridge-idp/bridge/keys"
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

// Bypass issues and verifies single-use bypass codes. Only a salted MAC of
// each code, keyed with a subkey of the KEK, is stored.
type Bypass struct {
	st  store.OTP
	key []byte // sealer.DeriveKey(BypassKeyLabel), bypassKeySize bytes
	cfg BypassConfig
	now func() time.Time
}

// BypassKeyLabel is the purpose label of the KEK subkey (keys.Sealer.DeriveKey)
// that keys the stored bypass-code MACs. Every node verifying the codes must
// have the same KEK.
const BypassKeyLabel = "bypass-code"

const bypassKeySize = 32

// NewBypass checks cfg and returns a Bypass whose code hashes are keyed with
// sealer.DeriveKey(BypassKeyLabel). now nil means time.Now.
func NewBypass(st store.OTP, sealer *keys.Sealer, cfg BypassConfig, now func() time.Time) (*Bypass, error) {
	if st == nil || sealer == nil {
		return nil, errors.New("otp: NewBypass needs a store and a sealer")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key := sealer.DeriveKey(BypassKeyLabel)
	if len(key) != bypassKeySize {
		return nil, fmt.Errorf("otp: bypass key is %d bytes, want %d", len(key), bypassKeySize)
	}
	if now == nil {
		now = time.Now
	}
	return &Bypass{st: st, key: key, cfg: cfg.withDefaults(), now: now}, nil
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
		Hash:      hashBypass(b.key, salt, name, code),
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
		if !checkBypass(b.key, r.Hash, name, c) {
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

// randomDigits returns n uniformly random decimal digits from crypto/rand.
func randomDigits(n int) (string, error) {
	return randomDigitsFrom(rand.Reader, n)
}

// digitRejectFrom is the first byte value randomDigitsFrom throws away:
// 250 = 25*10 is the largest multiple of 10 that fits in a byte, so the
// bytes kept, 0 to 249, map to each digit (v%10) exactly 25 times.
const digitRejectFrom = 250

// randomDigitsFrom returns n decimal digits made from the bytes of r, in
// order: a byte v < 250 gives the digit v%10, a byte of 250 or more is
// skipped, so uniform bytes give uniform digits (byte%10 alone would favour
// 0 to 5). It reads only as many bytes as it still needs digits, so it
// consumes exactly the bytes it looks at; a read error (io.EOF included)
// is returned.
func randomDigitsFrom(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n)
	for len(out) < n {
		b := buf[:n-len(out)]
		if _, err := io.ReadFull(r, b); err != nil {
			return "", fmt.Errorf("otp: random digits: %w", err)
		}
		for _, v := range b {
			if v < digitRejectFrom {
				out = append(out, '0'+v%10)
			}
		}
	}
	return string(out), nil
}

// Stored hash format, owned by this package:
//
//	version (1 byte, 2) || salt (16 bytes) ||
//	HMAC-SHA256(key, "bridge-bypass:v2\x00" || salt || len(user) (4 bytes, big endian) || user || code)
//
// key is the KEK subkey for BypassKeyLabel, so the stored bytes cannot be
// checked against candidate codes without the KEK. The code is the last
// field and the MAC fixes the length of the message, so only the user needs
// a length prefix. Version 1 (an unkeyed SHA-256) was never deployed; it and
// any other version are rejected.
const (
	bypassHashVersion = 2
	bypassSaltSize    = 16
	bypassHashSize    = 1 + bypassSaltSize + sha256.Size
	bypassMACLabel    = "bridge-bypass:v2\x00"
)

// bypassMAC is the MAC part of a stored hash.
func bypassMAC(key, salt []byte, user, code string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(bypassMACLabel))
	m.Write(salt)
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(user))))
	m.Write([]byte(user))
	m.Write([]byte(code))
	return m.Sum(nil)
}

// hashBypass returns the stored form of code for user.
func hashBypass(key, salt []byte, user, code string) []byte {
	out := make([]byte, 0, bypassHashSize)
	out = append(out, bypassHashVersion)
	out = append(out, salt...)
	return append(out, bypassMAC(key, salt, user, code)...)
}

// checkBypass reports, in constant time for a well-formed stored hash,
// whether code is the code stored as stored. A stored hash of another
// length or version never matches.
func checkBypass(key, stored []byte, user, code string) bool {
	if len(stored) != bypassHashSize || stored[0] != bypassHashVersion {
		return false
	}
	salt, mac := stored[1:1+bypassSaltSize], stored[1+bypassSaltSize:]
	return hmac.Equal(bypassMAC(key, salt, user, code), mac)
}
