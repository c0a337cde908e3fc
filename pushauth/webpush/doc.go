// Package webpush delivers push wakes to the web authenticator (the PWA at
// /app/) through the browser's push service: Web Push (RFC 8030) with the
// payload encrypted for the browser (RFC 8291, aes128gcm) and the request
// signed with the bridge's own VAPID key (RFC 8292). No vendor account or
// relay is involved.
//
// Data flow:
//
//	CheckToken (enrollment, PUT /device/v1/device): the push token is the
//	      JSON {"endpoint","keys":{"p256dh","auth"},"vapid"}: endpoint on
//	      the allow-list (so a device cannot aim the bridge's POSTs at
//	      internal hosts), keys and vapid valid P-256 points, auth 16 bytes.
//	Send: dismiss -> dropped (browsers require a notification for every
//	      push; the app dismisses through its long-poll) ->
//	      the VAPID key the subscription was made with (active, or retired
//	      and still kept: keys.Manager.Signers; none: ErrTokenInvalid) ->
//	      {"t":"challenge","cid":…} sealed for keys.p256dh/auth with a
//	      fresh ephemeral key and salt, padded ->
//	      POST endpoint with TTL (seconds to expiry), Urgency: high,
//	      Topic (the challenge id when it fits), Content-Encoding:
//	      aes128gcm, Authorization: vapid t=<ES256 JWT: aud the endpoint's
//	      origin, exp 12h, sub the operator's contact>, k=<public key>
//	      (the JWT is reused for an hour per origin and key) ->
//	      201/200/202 ok; 404/410 ErrTokenInvalid (the engine marks the
//	      token stale); 429/5xx/network retried with back-off, honouring
//	      Retry-After, while Send's context and the challenge last; other
//	      answers are permanent errors. Redirects are never followed.
//
// Why not github.com/SherClockHolmes/webpush-go (v1.4.0): it takes the
// VAPID private key only as a base64 string of the raw scalar, so the
// sealed key would have to be exported from the key manager as text; it
// signs a new JWT for every push and ignores Options.VapidExpiration (exp
// is always now+12h); it turns a subject "mailto:x" into "mailto:mailto:x"
// (it prefixes mailto: to anything not starting with https:); it uses the
// deprecated crypto/elliptic point arithmetic and brings in
// golang-jwt/jwt. RFC 8291 and RFC 8292 are small on the standard library
// (crypto/ecdh, crypto/hkdf, crypto/aes, crypto/cipher) and go-jose,
// already a dependency; the RFC 8291 Appendix A example pins the result.
//
// The test push service, checking requests as strictly as the real ones,
// is in webpushtest.
package webpush
