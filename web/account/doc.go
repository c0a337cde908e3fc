// Package account is the account page (/account): where users help
// themselves with their devices and look at their recent sign-ins.
//
// A visit without an account session starts a browser sign-in (web.Flow)
// to an internal application, "account" on channel "account", with number
// matching and without session reuse. Its result must include a second
// factor: with a password directory, the password and a push or code
// (Result.MFA); with a passwordless directory, whose first factor is
// nothing at all, a push approved by one of the user's devices (the
// factor they already have). The Flow's result then opens an account
// session: a short-lived grant (15 minutes idle, an hour at most) bound
// to the browser's binding cookie, behind an HttpOnly, SameSite=Strict
// cookie (__Host- prefixed over TLS). A session opened with a device
// lasts only while that device is active and the user's: revoking the
// device ends it (EndDeviceSessions, by the grant family DeviceFamily),
// and loading a session checks the device.
//
// The pages list the user's devices (rename, remove after a
// confirmation), add another device (an activation shown as the web
// app's link and its QR code: allowed after signing in with a device, or
// with a code only when the operator turned on self-enrollment), and list
// the user's recent sign-ins from the audit log (store.AuditLog's
// ListAuditBySubject), each with "this wasn't me", which reports it to
// the push engine (Engine.ReportFraud: pushes locked; a sign-in counts
// once, a repeat is "already reported"). Every change is a
// POST with the CSRF token of the session and browser, and is audited
// with actor user:<name> and channel account. The strings are the
// sign-in's (web/locales, keys "account.…"); the style is its style
// sheet plus account.css; the CSP is its CSP.
package account
