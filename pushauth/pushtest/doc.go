// Package pushtest holds fakes of the push providers for tests: Firebase
// Cloud Messaging (HTTP v1 with its OAuth2 service-account token exchange)
// and Apple Push Notification service (HTTP/2 over TLS with ES256 provider
// tokens). TEST SUPPORT ONLY: shipped code never imports it.
//
// The fakes speak the real wire formats, so the senders in pushauth/fcm and
// pushauth/apns are tested over loopback exactly as they talk to Google and
// Apple:
//
//	StartFCM: POST /token           jwt-bearer grant, assertion checked (RS256,
//	                                iss, aud, scope) -> access token
//	          POST /v1/projects/{p}/messages:send
//	                                bearer token checked, JSON parsed strictly,
//	                                message recorded -> {"name": ...} or the
//	                                real FCM error body
//	StartAPNs: POST /3/device/{hex} HTTP/2 only, provider JWT checked (ES256,
//	                                kid, iss, iat), apns-* headers checked,
//	                                request recorded -> 200 + apns-id or the
//	                                real {"reason": ...} error body
//
// Each fake listens on 127.0.0.1 only and is closed by t.Cleanup. Tests wait
// for a delivery with Next(ctx) instead of sleeping; SetDelay makes a fake
// provider slow, to test deadlines.
package pushtest
