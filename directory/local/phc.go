package local

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Bounds on argon2id parameters, both for configuration and for hashes read
// from the store.
const (
	MinMemoryKiB = 8 * 1024    // 8 MiB
	MaxMemoryKiB = 1024 * 1024 // 1 GiB
	MaxTime      = 16
	MaxThreads   = 16
	// maxWork bounds memory × passes (KiB·passes): 4 GiB-passes, e.g.
	// 64 MiB × 64 or 1 GiB × 4.
	maxWork = 4 * 1024 * 1024
	// MaxPasswordLen bounds the passwords hashed or verified (bytes).
	MaxPasswordLen = 1024

	saltLen   = 16
	keyLen    = 32
	minSalt   = 8
	maxSalt   = 64
	minKey    = 16
	maxKey    = 64
	phcPrefix = "$argon2id$v=19$"
)

// errMalformed is returned for stored hashes that are not a valid argon2id
// PHC string within bounds.
var errMalformed = errors.New("malformed argon2id hash")

var b64 = base64.RawStdEncoding.Strict()

// phc is a parsed argon2id PHC string.
type phc struct {
	params Argon2
	salt   []byte
	key    []byte
}

func (p phc) String() string {
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", phcPrefix, p.params.MemoryKiB, p.params.Time,
		p.params.Threads, b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

// Validate reports whether the parameters are usable and within bounds.
func (a Argon2) Validate() error {
	var errs []error
	if a.Time < 1 || a.Time > MaxTime {
		errs = append(errs, fmt.Errorf("time: must be between 1 and %d", MaxTime))
	}
	if a.MemoryKiB < MinMemoryKiB || a.MemoryKiB > MaxMemoryKiB {
		errs = append(errs, fmt.Errorf("memory_kib: must be between %d and %d", MinMemoryKiB, MaxMemoryKiB))
	}
	if a.Threads < 1 || a.Threads > MaxThreads {
		errs = append(errs, fmt.Errorf("threads: must be between 1 and %d", MaxThreads))
	}
	if uint64(a.MemoryKiB)*uint64(a.Time) > maxWork {
		errs = append(errs, fmt.Errorf("time: memory_kib × time must be at most %d", maxWork))
	}
	return errors.Join(errs...)
}

// HashPassword hashes password with argon2id and params, with a fresh
// 16-byte salt, and returns the PHC string
// $argon2id$v=19$m=…,t=…,p=…$<salt>$<hash> (unpadded standard base64).
func HashPassword(params Argon2, password string) (string, error) {
	if err := params.Validate(); err != nil {
		return "", fmt.Errorf("argon2 parameters: %w", err)
	}
	if password == "" {
		return "", errors.New("password is empty")
	}
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("password is longer than %d bytes", MaxPasswordLen)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, params.Time, params.MemoryKiB, params.Threads, keyLen)
	return phc{params: params, salt: salt, key: key}.String(), nil
}

// VerifyPassword checks password against a PHC hash made by HashPassword.
// needsRehash is true when the hash was not made with DefaultArgon2 and the
// current salt and key lengths (the directory compares with its configured
// parameters instead). err is set for a hash that is malformed or out of
// bounds; a wrong password is ok == false with a nil err.
func VerifyPassword(hash, password string) (ok bool, needsRehash bool, err error) {
	return verify(hash, password, DefaultArgon2())
}

func verify(hash, password string, want Argon2) (ok, needsRehash bool, err error) {
	p, err := parsePHC(hash)
	if err != nil {
		return false, false, err
	}
	if len(password) > MaxPasswordLen {
		return false, false, nil
	}
	key := argon2.IDKey([]byte(password), p.salt, p.params.Time, p.params.MemoryKiB, p.params.Threads, uint32(len(p.key)))
	if subtle.ConstantTimeCompare(key, p.key) != 1 {
		return false, false, nil
	}
	return true, p.params != want || len(p.salt) != saltLen || len(p.key) != keyLen, nil
}

// parsePHC parses an argon2id PHC string strictly: version 19 only, the
// parameters in the order m, t, p as canonical decimals, unpadded canonical
// base64, and every value within bounds. Whatever it accepts, String gives
// back unchanged.
func parsePHC(s string) (phc, error) {
	rest, found := strings.CutPrefix(s, phcPrefix)
	if !found {
		return phc{}, fmt.Errorf("%w: not $argon2id$v=19$", errMalformed)
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return phc{}, fmt.Errorf("%w: want parameters, salt and hash", errMalformed)
	}
	params := strings.Split(fields[0], ",")
	if len(params) != 3 {
		return phc{}, fmt.Errorf("%w: want m, t and p", errMalformed)
	}
	var vals [3]uint32
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return phc{}, fmt.Errorf("%w: parameter %d is not %s", errMalformed, i+1, name)
		}
		n, err := parseDecimal(v)
		if err != nil {
			return phc{}, fmt.Errorf("%w: %s: %v", errMalformed, name, err)
		}
		vals[i] = n
	}
	if vals[2] > MaxThreads {
		return phc{}, fmt.Errorf("%w: p is more than %d", errMalformed, MaxThreads)
	}
	a := Argon2{MemoryKiB: vals[0], Time: vals[1], Threads: uint8(vals[2])}
	if err := a.Validate(); err != nil {
		return phc{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	// The decoder skips \r and \n: refuse anything outside the alphabet first.
	if !isB64(fields[1]) || !isB64(fields[2]) {
		return phc{}, fmt.Errorf("%w: salt and hash must be unpadded base64", errMalformed)
	}
	salt, err := b64.DecodeString(fields[1])
	if err != nil || len(salt) < minSalt || len(salt) > maxSalt {
		return phc{}, fmt.Errorf("%w: salt must be %d to %d bytes of unpadded base64", errMalformed, minSalt, maxSalt)
	}
	key, err := b64.DecodeString(fields[2])
	if err != nil || len(key) < minKey || len(key) > maxKey {
		return phc{}, fmt.Errorf("%w: hash must be %d to %d bytes of unpadded base64", errMalformed, minKey, maxKey)
	}
	return phc{params: a, salt: salt, key: key}, nil
}

// parseDecimal accepts 1 to 10 ASCII digits without a leading zero.
func parseDecimal(s string) (uint32, error) {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, errors.New("not a canonical decimal")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a canonical decimal")
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return uint32(n), nil
}

// isB64 reports whether s has only characters of the standard base64
// alphabet (no padding, no white space).
func isB64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}
