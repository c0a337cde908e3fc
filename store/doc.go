// Package store defines what the bridge keeps and the contract every storage
// backend meets: users, enrolled devices, server keys (sealed), second
// factors, the hash-chained audit log and short-lived single-use records.
//
// The core owns the interfaces (Store is the sum of small ones); backends
// live in subpackages: sqlite (the embedded default) and postgres (for
// several nodes), both built on sqlstore, which holds the SQL they share.
// storetest is the conformance suite both run.
//
// Data flow: callers pass plain values in and get copies out. State that must
// change once changes through one atomic call (UpdateUser, UseTOTPCounter,
// UseBypassCode, UseOnce, RotateSigningKey), each one transaction, so nodes
// sharing a PostgreSQL database never lose an update.
package store
