// Package radius is the bridge's RADIUS front end (RFC 2865, 2866, 3579,
// 5997): VPN concentrators, firewalls and Wi-Fi controllers send an
// Access-Request, the bridge checks the first factor against the client's
// directory and then asks the user's phone through the push engine, and
// answers Access-Accept, Access-Reject or Access-Challenge.
//
// It parses and encodes packets with layeh.com/radius but runs its own UDP
// loop, because that library does none of what a NAS-facing server needs
// beyond the wire format:
//
//   - Message-Authenticator (HMAC-MD5, RFC 3579) is verified on every request
//     that carries it and required per client (always, auto, never), and
//     every response carries one as its first attribute (BlastRADIUS,
//     CVE-2024-3596). A request whose Message-Authenticator does not verify
//     was sent with another shared secret: it is dropped and logged, never
//     answered as a wrong password.
//   - A retransmitted request (same source, identifier and request
//     authenticator) never starts a second approval: while the first is in
//     progress the copies are absorbed, and once it is answered the same
//     answer is sent again for a while.
//   - Waiting for the phone never ties up a thread: a held request is a
//     goroutine blocked on the engine's wake-up channel.
//
// A client waits for the phone in one of two ways. With hold, the request is
// answered when the phone answers (or at hold_timeout, with a reject), so
// the NAS's timeout must be longer. With challenge, the bridge answers at
// once with Access-Challenge: the Reply-Message tells the user what to do
// (and shows the number to type on the phone, with number matching), and the
// NAS comes back with the State when the user presses Enter, or with a
// one-time code typed instead.
package radius
