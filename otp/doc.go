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
// stores only version||salt||SHA-256(domain||salt||user||code) under a random
// record id; Verify compares against each of the user's codes in constant
// time and marks the match used with store.UseBypassCode, which lets one
// concurrent verifier win.
//
// Why a salted SHA-256 and not argon2 for bypass codes: a code has 8 to 20
// digits, usually 8 to 10, a space of 10^8 to 10^10. No argon2 cost that
// Verify can afford (it hashes once per outstanding code of the user on
// every attempt, so a high cost is itself a denial-of-service lever) makes
// an offline search of that space impossible; it only delays it. What
// protects a bypass code is that it expires (1h by default, 72h at most),
// is single use, and that online guessing is rate limited by the front
// ends. The hash keeps codes out of plain sight (backups, database
// consoles); the salt and the user in the hash stop precomputed tables and
// one guess matching the codes of several users. A MAC keyed from the KEK
// would also stop an offline search by someone holding only the database;
// that would need a Sealer (or a derived key) in NewBypass.
//
// Neither factor rate-limits by itself: callers (the front ends) count
// failures per user and per IP.
package otp
