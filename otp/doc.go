// Package otp verifies the second factors that need no push: RFC 6238 TOTP
// soft tokens and operator-issued bypass codes.
//
// TOTP data flow:
//
//	Enroll: 20 random bytes (160 bits, RFC 4226) -> otpauth URI built with
//	        pquerna/otp -> secret sealed under the KEK (keys.Sealer, ad
//	        "bridge-totp:v1:<user>") -> store.PutTOTP (LastCounter -1).
//	Verify: normalise the typed code (no store I/O when malformed) ->
//	        GetTOTP -> unseal -> compare in constant time against the codes
//	        of steps now-Skew..now+Skew (generated with pquerna/otp's hotp) ->
//	        store.UseTOTPCounter(step), one atomic update, so a code (and any
//	        older one) is accepted once across every node; a second use is
//	        ErrReplay.
//
// Bypass codes: Issue draws uniformly random digits from crypto/rand and
// stores only version||salt||HMAC-SHA256(key, label||salt||user||code) under
// a random record id, key being the KEK subkey for "bypass-code"
// (keys.Sealer.DeriveKey); Verify compares against each of the user's codes
// in constant time and marks the match used with store.UseBypassCode, which
// lets one concurrent verifier win.
//
// Why a keyed MAC and not argon2 for bypass codes: a code has 8 to 20
// digits, usually 8 to 10, a space of 10^8 to 10^10. No argon2 cost that
// Verify can afford (it hashes once per outstanding code of the user on
// every attempt, so a high cost is itself a denial-of-service lever) makes
// an offline search of that space impossible; it only delays it, and an
// unkeyed salted hash falls in seconds. The MAC key is derived from the
// KEK, which is not in the database, so a database dump or backup alone is
// useless: without the key no candidate code can be checked against the
// stored bytes. The salt and the user in the MAC stop one guess matching
// the codes of several users. What is left is online guessing through
// Verify, bounded by single use, the short lifetime (1h by default, 72h at
// most) and the front ends' rate limits. Every node verifying codes needs
// the same KEK; rotating the KEK invalidates outstanding bypass codes.
//
// Neither factor rate-limits by itself: callers (the front ends) count
// failures per user and per IP.
package otp
