// Package protocol is the wire format between the bridge and an
// authenticator device (a phone app, or the reference authenticator):
// messages, paths, and the signatures over them. The server (package
// pushauth) and the reference authenticator both use it; docs/device-
// protocol.md describes the same thing for app developers.
//
// Every signed message is a compact JWS (RFC 7515) whose "typ" header names
// the message, so that no signature made for one message can be presented
// as another:
//
//   - the server signs challenges (TypChallenge) and push-key endorsements
//     (TypEndorsement) with its Ed25519 push key, which the device pinned at
//     enrollment;
//   - the device signs its enrollment (TypEnroll, with its public key in the
//     "jwk" header: proof of possession), every request it makes
//     (TypProof, a DPoP-like proof bound to method, URL, body and time) and
//     its answers (TypAnswer), with a key that never leaves it.
//
// Device keys are ECDSA P-256 (ES256, required of every server and the
// form phone keystores make) or Ed25519 (EdDSA). ES256 signatures are the
// JWS form, R||S as two 32-byte big-endian integers (RFC 7518 §3.4); the
// ASN.1 DER form that Android Keystore and the Secure Enclave return must be
// converted by the app and is refused.
package protocol
