// Package fcm delivers push wakes to Android devices through Firebase Cloud
// Messaging HTTP v1, using the Firebase Admin SDK (firebase.google.com/go/v4
// and its messaging package).
//
// Data flow:
//
//	New:  service-account JSON file -> checked here (type service_account,
//	      client_email, RSA private_key, project_id, https token_uri) ->
//	      oauth2 credentials scoped to firebase.messaging -> firebase App ->
//	      messaging.Client talking to Config.Endpoint.
//	Send: wake -> data-only message {"t": kind, "cid": challenge id},
//	      android priority high, ttl until the challenge expires, collapse
//	      key = challenge id -> POST {Endpoint}/projects/{p}/messages:send
//	      with a bearer token the SDK gets (and reuses for its hour) from the
//	      file's token_uri with a signed JWT.
//
// The push is opaque: Google sees a challenge id and nothing about the
// user, the application, the IP or the number; the app fetches those from
// the bridge. Errors that say the device token is dead (UNREGISTERED,
// SENDER_ID_MISMATCH, INVALID_ARGUMENT about message.token) wrap
// pushauth.ErrTokenInvalid.
package fcm
