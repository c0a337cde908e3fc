// Package authenticator is a device of the bridge's push protocol (package
// protocol): the reference authenticator, used by the bridge-authenticator
// command, by tests of the server, and as a model for phone apps.
//
// Data flows like this:
//
//   - Enroll reads an activation URL (the QR code), makes a new device key,
//     posts an enrollment signed by it and pins the server's push key named
//     in the URL (and, if the URL has one, the TLS certificate's key);
//   - Save and Load keep the device (its private key included) in a 0600
//     JSON state file;
//   - Pending (a long-poll) and Fetch (after a push) get challenges; every
//     challenge is verified against the pinned push keys before it is
//     returned, so nothing the device shows can come from anyone but the
//     bridge it enrolled with;
//   - Answer signs the user's decision over the challenge exactly as
//     received and posts it;
//   - RefreshPushKeys follows push-key rotations through endorsements
//     chained from a trusted key; a key the server merely lists is never
//     trusted.
//
// Every request but the enrollment carries a fresh proof (protocol.TypProof)
// signed by the device key. Errors the server returns are *ServerError;
// challenges the device refuses are *ChallengeError (errors.Is
// ErrInvalidChallenge).
package authenticator
