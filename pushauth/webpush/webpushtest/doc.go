// Package webpushtest is a local Web Push service for tests: the RFC 8030
// push resource of subscriptions it makes, checking what it receives as
// strictly as FCM and Mozilla's autopush do. TEST SUPPORT ONLY: shipped
// code never imports it.
//
//	Start(t)                  a service on 127.0.0.1, closed with the test;
//	                          put Host() on the sender's allow-list
//	NewSubscription(vapidKey) what pushManager.subscribe does in a browser:
//	                          an ECDH key pair, a 16-byte auth secret and an
//	                          endpoint -> the push token JSON
//	                          (protocol.WebPushSubscription) the app sends
//	POST /push/{id}           POST only; TTL required; Content-Encoding
//	                          aes128gcm; body at most 4096 bytes;
//	                          Authorization "vapid t=<JWT>, k=<key>": ES256
//	                          signature by k, aud this service's origin, exp
//	                          in the future and at most 24 h ahead, sub
//	                          mailto: or https: (401 otherwise); k the
//	                          subscription's applicationServerKey (403);
//	                          payload decrypted (RFC 8291) with the
//	                          subscription's keys (400) -> 201 + Location,
//	                          message recorded
//	Fail(token, Reply{…})     answer 404/410/429/500… for a subscription,
//	                          optionally for the next few pushes only
//	Next(ctx) / Messages()    the accepted messages: headers, claims,
//	                          plaintext; Refusals() the others
//	SetClock(now)             the clock exp is checked against
//	Decrypt(body, key, auth)  the browser's side of RFC 8291
//
// Tests wait for a push with Next(ctx) instead of sleeping.
package webpushtest
