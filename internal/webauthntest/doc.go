// Package webauthntest is a software WebAuthn authenticator for tests: it
// makes the registrations (attestation none, packed self attestation, or
// packed basic attestation under a CA the test makes and may configure as
// a trusted root, or under a throwaway one) and assertions that a
// browser with a platform authenticator would hand the web app, for a given
// challenge, origin and RP ID, so the engine's passkey path is tested with
// the bytes the real ceremony produces (CBOR attestation objects, COSE
// keys, DER ECDSA signatures) without a browser.
//
// Knobs make the cases a real authenticator or an attacker can produce:
// user presence or verification off, any sign counter, another origin, another
// credential (a second Authenticator).
//
// Data flow: New makes an ES256 credential key and id; Register builds the
// client data JSON and authenticator data for webauthn.create and signs the
// attestation; Assert does the same for webauthn.get and signs with the
// credential key. The encodings come from the go-webauthn packages the
// server verifies with only where they are plain codecs (CBOR).
package webauthntest
