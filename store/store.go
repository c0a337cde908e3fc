package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors shared by every backend. Backends wrap them with %w;
// callers test them with errors.Is.
var (
	// ErrNotFound: the record does not exist (or has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a record with the same identity already exists, or an
	// atomic update lost its precondition.
	ErrConflict = errors.New("store: conflict")
	// ErrInvalid: the record breaks a rule of the store (for example an
	// unnormalised user name).
	ErrInvalid = errors.New("store: invalid record")
	// ErrUsed: a single-use record (bypass code, nonce) was already used.
	ErrUsed = errors.New("store: already used")
	// ErrExpired: the record exists but expired.
	ErrExpired = errors.New("store: expired")
)

// Store is everything the bridge keeps. It is the sum of small interfaces;
// code that needs one part asks for that part only.
type Store interface {
	Users
	Devices
	SigningKeys
	AuditLog
	OTP
	Replay
	Janitor
	PushState
	PushLimits
	Activations
	Grants
	Counters

	// Ping reports whether the backend answers (used by /readyz).
	Ping(ctx context.Context) error
	// Close releases the backend's connections.
	Close() error
}

// Users holds the local user records.
type Users interface {
	// CreateUsers inserts all users in one transaction: either all are
	// created or none (ErrConflict names the first duplicate).
	CreateUsers(ctx context.Context, users ...User) error
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser reads the user, calls fn and writes what fn returns, all in
	// one transaction; fn's error aborts the update and is returned as is.
	UpdateUser(ctx context.Context, name string, fn func(User) (User, error)) (User, error)
	// DeleteUser removes the user with its devices and second factors; for a
	// user without a local record (LDAP), just the devices and factors.
	// ErrNotFound if there was nothing under the name.
	DeleteUser(ctx context.Context, name string) error
}

// Devices holds enrolled authenticator devices.
type Devices interface {
	CreateDevice(ctx context.Context, d Device) error
	GetDevice(ctx context.Context, id string) (Device, error)
	ListDevices(ctx context.Context, user string) ([]Device, error)
	UpdateDevice(ctx context.Context, id string, fn func(Device) (Device, error)) (Device, error)
}

// SigningKeys holds the server's keys, private halves sealed by the caller.
type SigningKeys interface {
	// CreateSigningKey inserts k. If k is active and an active key of the same
	// purpose and algorithm exists already, it returns ErrConflict (two nodes
	// starting at once generate one key, not two).
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// RotateSigningKey, in one transaction, retires the active key of
	// next's purpose and algorithm (valid for verification until
	// verifyUntil) and makes next the active one, storing
	// next.Endorsement with it. A retired key keeps its own endorsement.
	RotateSigningKey(ctx context.Context, next SigningKey, verifyUntil time.Time) (retired []SigningKey, err error)
	// ListSigningKeys lists all keys, newest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
}

// AuditLog is the append-only, hash-chained event log.
type AuditLog interface {
	// AppendAudit assigns the event its sequence number and chain hashes
	// inside one transaction with the chain head, so concurrent writers on
	// any number of nodes produce one unbroken chain.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// AppendAuditBatch appends events in order in one transaction with one
	// chain-head update (group commit): all are appended or none.
	AppendAuditBatch(ctx context.Context, events []AuditEvent) ([]AuditEvent, error)
	// ListAudit returns up to limit events with Seq > afterSeq, in order.
	ListAudit(ctx context.Context, afterSeq int64, limit int) ([]AuditEvent, error)
	// ListAuditBySubject returns up to limit events whose Subject is
	// subject and whose Seq is below beforeSeq (0: no bound), newest
	// first: a user's own history (the account page's recent sign-ins),
	// paged backwards by passing the last Seq returned.
	ListAuditBySubject(ctx context.Context, subject string, beforeSeq int64, limit int) ([]AuditEvent, error)
	// AuditHead returns the chain head: the last sequence number and hash as
	// recorded when it was appended (kept apart from the rows, so a deleted
	// last row shows).
	AuditHead(ctx context.Context) (AuditHead, error)
}

// OTP holds second factors that need no push: TOTP soft tokens and
// operator-issued bypass codes.
type OTP interface {
	// PutTOTP creates or replaces the user's TOTP token.
	PutTOTP(ctx context.Context, t TOTP) error
	GetTOTP(ctx context.Context, user string) (TOTP, error)
	// UseTOTPCounter records counter as used if it is newer than the last
	// used one, atomically; otherwise ErrUsed. This is what makes a code
	// single use across nodes.
	UseTOTPCounter(ctx context.Context, user string, counter int64) error
	DeleteTOTP(ctx context.Context, user string) error

	CreateBypassCode(ctx context.Context, c BypassCode) error
	// UseBypassCode marks the code whose ID is id as used if it is unused and
	// unexpired; otherwise ErrUsed / ErrNotFound.
	UseBypassCode(ctx context.Context, id string, now time.Time) (BypassCode, error)
	ListBypassCodes(ctx context.Context, user string) ([]BypassCode, error)
}

// Replay is a cache of single-use values (request ids, nonces, proofs) with
// an expiry. Namespaces keep unrelated users of the cache apart.
type Replay interface {
	// UseOnce records (namespace, key) until expires. It returns ErrUsed if
	// the pair is already recorded and has not expired at now.
	UseOnce(ctx context.Context, namespace, key string, now, expires time.Time) error
}

// Janitor removes short-lived records (replay entries, expired bypass codes,
// later challenges) once they have expired.
type Janitor interface {
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
}
