// Package pushauth is the push approval engine: it enrolls devices, sends
// server-signed challenges to them (FCM, APNs, or the device's own
// long-poll), verifies their signed answers and wakes the login that is
// waiting.
//
// A front end (RADIUS, OIDC, SAML) calls Start with who is logging in to
// what from where, shows Handle.Number when number matching is on, and calls
// Wait. Everything a device sends is verified here against the key it
// enrolled; the wire format is in package protocol and docs/device-protocol.md.
//
// Devices answer in one of two formats: a JWS by the device key (native
// apps, the terminal authenticator, the web app without a passkey), or a
// WebAuthn assertion by the passkey the web app registered at enrollment
// (passkey.go). Both yield the same answer claims, which one decision
// (answer.go) turns into the challenge's close. An application's
// device-key policy (Request.DeviceKeys, policy.go) travels in the
// challenge's "keys" claim and decides which devices are asked and may
// answer.
package pushauth
