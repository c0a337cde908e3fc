// Package fakebridge is a fake of the bridge's device endpoints for tests
// of the authenticator and its command. TEST SUPPORT ONLY: shipped code
// never imports it. The real server is package pushauth; this fake
// implements just enough of the protocol (package protocol) to drive a
// device, and checks what the device sends as strictly as the protocol
// says:
//
//	POST enroll                 TypEnroll JWS with the device key in "jwk",
//	                            one-time activation code, htu, iat
//	                            -> 201 EnrollResponse (push keys, endorsements)
//	every other request         Device-Proof: TypProof by the device key, kid,
//	                            htm, htu without query, iat, unused jti, bh
//	GET challenges?wait=N       long-poll -> PendingResponse
//	GET challenges/{id}         -> ChallengeItem
//	POST challenges/{id}/answer TypAnswer by the device key: cid, chash,
//	                            decision, number -> AnswerResponse or 409
//	PUT device                  DeviceUpdate -> 204
//	GET push-keys               -> PushKeysResponse
//
// Challenges are signed with a real Ed25519 push key; tests add forged ones
// with AddChallenge. It listens on 127.0.0.1 only and is closed by
// t.Cleanup. Tests wait with WaitPolls instead of sleeping.
package fakebridge
