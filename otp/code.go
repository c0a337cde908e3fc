package otp

import (
	"errors"
)

// Sentinel errors of Verify. Front ends map all of them to a plain denial;
// they differ for logs and the audit trail.
var (
	// ErrInvalidCode: the code is wrong, malformed or expired.
	ErrInvalidCode = errors.New("otp: invalid code")
	// ErrReplay: the code is right but was used already (or, for TOTP, a
	// newer code was).
	ErrReplay = errors.New("otp: code already used")
	// ErrNoToken: the user has no TOTP token.
	ErrNoToken = errors.New("otp: no token enrolled")
)

// maxCodeInput bounds what normalizeCode looks at: anything longer is not a
// code a person typed.
const maxCodeInput = 64

// normalizeCode turns a typed code into its digits: ASCII spaces, tabs, line
// ends and dashes (as in "123 456" or "1234-5678") are dropped and the rest
// must be ASCII digits, between minLen and maxLen of them. ok is false for
// anything else.
func normalizeCode(s string, minLen, maxLen int) (code string, ok bool) {
	if len(s) > maxCodeInput {
		return "", false
	}
	buf := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			buf = append(buf, c)
		case c == ' ' || c == '-' || c == '\t' || c == '\r' || c == '\n':
			// separator or surrounding white space
		default:
			return "", false
		}
	}
	if len(buf) < minLen || len(buf) > maxLen {
		return "", false
	}
	return string(buf), true
}
