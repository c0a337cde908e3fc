// Package pushauth is the push approval engine: it enrolls devices, sends
// server-signed challenges to them (FCM, APNs, or the device's own
// long-poll), verifies their signed answers and wakes the login that is
// waiting.
//
// A front end (RADIUS, OIDC, SAML) calls Start with who is logging in to
// what from where, shows Handle.Number when number matching is on, and calls
// Wait. Everything a device sends is verified here against the key it
// enrolled; the wire format is in package protocol and docs/device-protocol.md.
package pushauth
