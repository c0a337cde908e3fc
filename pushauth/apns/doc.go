// Package apns delivers push wakes to iOS devices through the Apple Push
// Notification service's HTTP/2 provider API with token-based (.p8)
// authentication, on net/http.
//
// Data flow:
//
//	New:  .p8 file (PEM PKCS#8 EC P-256 key) + key id + team id -> ES256
//	      signer; an HTTP/2-only client trusting the system roots (and
//	      Config.CAFile).
//	Send: wake -> hex-checked device token -> provider JWT (kid, iss, iat;
//	      signed once and reused for 40 minutes, re-signed once on 403
//	      ExpiredProviderToken) -> POST {Endpoint}/3/device/{token} with
//	      apns-topic, apns-push-type, apns-priority, apns-collapse-id and
//	      apns-expiration -> 200, or {"reason": ...} mapped to an *Error.
//
// A challenge wake is a time-sensitive alert with generic localised keys
// (BRIDGE_SIGNIN_TITLE, BRIDGE_SIGNIN_BODY) and mutable-content, so the
// app's notification service extension can fetch and show the details; a
// dismiss wake is a silent background push. Apple sees a challenge id and
// nothing about the user, the application, the IP or the number. 410 and
// 400 BadDeviceToken / DeviceTokenNotForTopic wrap pushauth.ErrTokenInvalid.
package apns
