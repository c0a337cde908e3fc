// Package keys holds the bridge's server keys and the sealing of secrets at
// rest.
//
// Sealer (seal.go) encrypts secrets under the operator's key-encryption key
// (KEK) with AES-256-GCM; the associated data names what each sealed value is,
// so a value copied onto another record does not open.
//
// Manager keeps the signing keys, one active key per Spec (purpose and
// algorithm): push challenges are signed with Ed25519 ("EdDSA"), OIDC tokens
// with ES256 (and RS256 for clients that need it), SAML with RS256, Web
// Push's VAPID JWTs with ES256 (when Web Push is on). Data flow:
//
//	Open:    store.ListSigningKeys -> for each spec with no active key,
//	         generate -> Seal(PKCS#8) -> store.CreateSigningKey (ErrConflict:
//	         another node won the race, use its key) -> load.
//	load:    for each active key of a spec, Open(sealed) -> parse -> check it
//	         matches the stored public key and kid -> an immutable keySet,
//	         published with an atomic pointer.
//	Signer / VerificationKeys / JWKS read the current keySet only: no store
//	         I/O and no unsealing on the signing path.
//	Rotate:  load (the key to retire is the store's active one) ->
//	         generate -> for push, the retiring key endorses the new one ->
//	         store.RotateSigningKey (old key retired, verifies until
//	         now+RotationOverlap; the endorsement stored with the new key in
//	         the same transaction) -> load.
//	Refresh / Run: re-read the store so a rotation made by the CLI or another
//	         node reaches this node.
//
// Key ids are RFC 7638 JWK thumbprints (SHA-256, base64url) of the public key
// rather than random strings: a kid then names exactly one public key, anyone
// holding the JWKS can recompute it, and load checks the stored public key
// against its kid, so a record whose public half was swapped is refused. The
// sealed private key is bound to the kid (and so to its public key), purpose
// and algorithm through the associated data
// "bridge-signing-key:v1:<kid>:<purpose>:<alg>".
//
// Only active keys are unsealed; retired keys are kept as public keys for
// verification until their VerifyUntil, then dropped. The exception is the
// Web Push VAPID key (purpose vapid, ES256): a browser subscription only
// accepts pushes signed with the key it was made with, so retired VAPID
// keys are unsealed too and keep signing, through Signers, for the
// subscriptions made with them until their VerifyUntil; after that such a
// subscription is stale and the app must resubscribe with the active key.
//
// Devices pin the push key, so a push rotation is endorsed: the retiring
// key signs a JWS (typ protocol.TypEndorsement, kid the retiring key's)
// whose payload is the successor's public JWK. Each endorsement is kept on
// the record of the key it endorses; Endorsements lists those of the keys
// still loaded, oldest first, for the device API to publish, and a device
// that trusts a key follows the chain from it to the active key.
package keys
