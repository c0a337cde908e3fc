// Package webapp serves the web authenticator: the installable web app
// (PWA) at /app/ with which a user approves sign-ins on a phone with
// nothing installed from an app store. It is a device of the push engine
// like any phone app, on the same device API (docs/device-protocol.md):
// this package only serves its files; everything it sends is checked by
// package pushauth.
//
// Every asset is embedded (assets/): the page, its ES modules (no build
// step), the service worker (/app/sw.js, scope /app/), the manifest, icons
// (made once by `go generate`, see icons_gen.go) and the style sheet.
// Beside them the handler serves what depends on the bridge's settings:
// /app/config.json (name, base URL, WebAuthn RP ID and attestation, the
// current VAPID key), /app/manifest.webmanifest (the configured name) and
// /app/strings.json (the app.* strings of web/locales in the browser's
// language). Every response carries a strict Content-Security-Policy: the
// app loads and talks to nothing but its own origin.
//
// Data flow in the browser: an activation link (/app/#enroll?…, from the
// QR code) makes a request key (WebCrypto P-256, not extractable, kept in
// IndexedDB) and, where the phone has a platform authenticator, a passkey;
// the app enrolls with POST /device/v1/enroll and pins the push key. While
// open it long-polls each account's challenges; the service worker wakes
// on a Web Push message ({"t":"challenge","cid"}), fetches and verifies
// the challenge with the same key and shows a notification naming only the
// application. Answers are signed by the passkey (a WebAuthn assertion over
// the canonical answer) or, for a software key, by the request key (JWS).
package webapp
