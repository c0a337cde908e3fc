// Package pgbus is a pushauth.Bus for several bridge nodes sharing one
// PostgreSQL database: a Publish on any node wakes the subscribers of the
// topic on every node, through LISTEN/NOTIFY on the channel "bridge_push".
//
// Each node keeps one dedicated connection listening, and publishes through
// a small pool of others. A publish wakes the node's own subscribers
// directly; the payload names the sending node so that its listener skips
// the echo. When the listening connection drops, notifications may be lost
// until it is back: the bus reconnects with a short back-off (at most a
// second between attempts) and then wakes every subscriber, who re-read the
// store (wake-ups are hints, never the state). Ready reports the outage
// meanwhile, for the node's readiness check.
package pgbus
