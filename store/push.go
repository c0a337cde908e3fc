package store

import (
	"context"
	"time"
)

// ChallengeState is the life stage of a push challenge. A challenge is
// created pending and closed exactly once, into one of the other states.
type ChallengeState string

const (
	ChallengePending    ChallengeState = "pending"
	ChallengeApproved   ChallengeState = "approved"
	ChallengeDenied     ChallengeState = "denied"     // the user said no, or typed the wrong number
	ChallengeFraud      ChallengeState = "fraud"      // the user said "this wasn't me"
	ChallengeExpired    ChallengeState = "expired"    // nobody answered in time
	ChallengeSuperseded ChallengeState = "superseded" // a newer login replaced it
	ChallengeCancelled  ChallengeState = "cancelled"  // the login side gave up
)

// Closed reports whether s is a final state.
func (s ChallengeState) Closed() bool { return s != ChallengePending && s != "" }

// Challenge is one push approval: a user's login to an application waiting
// for their phone. It lives a minute or two; PurgeAt says when the janitor
// may delete it (kept a while after closing for rate limits and support).
type Challenge struct {
	ID        string // 160 random bits, base64url
	User      string
	AppID     string
	AppName   string
	Channel   string // radius, oidc, saml, cli
	ClientIP  string
	UserAgent string // browser user agent or NAS identifier
	Location  string
	// Station is where the login comes from as its front end identifies
	// it (a RADIUS Calling-Station-Id, a browser session); not shown to
	// the user. A login joins a pending challenge only from the same
	// station.
	Station string
	// Number is what the login side shows and the user must type on the
	// phone; empty when number matching is off.
	Number string
	// Signed is the challenge as the devices receive it: a compact JWS
	// signed with the server's push key. Hash is SHA-256 of its bytes;
	// answers name it.
	Signed    string
	Hash      []byte
	State     ChallengeState
	CreatedAt time.Time
	ExpiresAt time.Time
	PurgeAt   time.Time
	// Set when the challenge is closed.
	ClosedAt time.Time
	DeviceID string // the device that answered, if one did
	Reason   string // why it closed, for the audit and the login side
}

// ChallengeClose is how a pending challenge is closed.
type ChallengeClose struct {
	State    ChallengeState // a final state
	DeviceID string
	Reason   string
	// AllowExpired closes the challenge even if it expired at now (used to
	// record an expiry). Without it, closing an expired challenge closes it
	// as ChallengeExpired instead and returns ErrExpired.
	AllowExpired bool
}

// PushState is the short-lived state of push approvals. sqlstore keeps it
// in the database, shared by every node; pushauth has an in-memory version
// for a single node.
type PushState interface {
	// CreateChallenge makes c (State pending) its user's pending challenge.
	// A pending challenge of the user that expired at now is first closed
	// as expired. If one is still pending, join decides: true returns it
	// with joined set and inserts nothing; false closes it as superseded
	// and inserts c. closed lists what this call closed, so the caller can
	// audit it and dismiss it on the devices. At most one challenge per
	// user is ever pending, whatever the number of nodes.
	//
	// When none is pending and closedSince is set, the user's challenges
	// closed at or after closedSince are offered to join, newest first,
	// and the first it takes is returned with joined set (nothing is
	// inserted): a login that arrived while a challenge was pending gets
	// that challenge's answer even if the answer came before the login
	// was ready to ask. Offering them in the same transaction as the
	// insert means a challenge closing meanwhile cannot make a second.
	CreateChallenge(ctx context.Context, c Challenge, now, closedSince time.Time, join func(Challenge) bool) (got Challenge, joined bool, closed []Challenge, err error)
	// RecentChallenges lists the user's challenges created at or after
	// since, in any state, newest first.
	RecentChallenges(ctx context.Context, user string, since time.Time) ([]Challenge, error)
	// GetChallenge returns a challenge in any state; ErrNotFound once purged.
	GetChallenge(ctx context.Context, id string) (Challenge, error)
	// PendingChallenges lists the user's challenges pending and unexpired at now.
	PendingChallenges(ctx context.Context, user string, now time.Time) ([]Challenge, error)
	// CloseChallenge moves a pending challenge to how.State, atomically:
	// of several concurrent closes (two devices answering, an answer and
	// an expiry) exactly one succeeds and the others get ErrUsed. A
	// challenge past its expiry is closed as expired and ErrExpired is
	// returned unless how.AllowExpired.
	CloseChallenge(ctx context.Context, id string, how ChallengeClose, now time.Time) (Challenge, error)
	// ExpireChallenges closes up to limit challenges pending past their
	// expiry at now, as expired, and returns them.
	ExpireChallenges(ctx context.Context, now time.Time, limit int) ([]Challenge, error)
	// CountChallenges counts the user's challenges created at or after since.
	CountChallenges(ctx context.Context, user string, since time.Time) (int, error)
	// UseOnce is the replay cache for device request proofs.
	Replay
	// PurgeChallenges deletes challenges whose PurgeAt is at or before now
	// and expired replay entries.
	Janitor
}

// PushLimit is a user's push throttle, kept durably: a fraud lock must
// survive a restart.
type PushLimit struct {
	User string
	// Failures counts denials and timeouts since the last approval; the
	// back-off grows with it.
	Failures int
	// NextAt: no push before this time (back-off).
	NextAt time.Time
	// LockedUntil: no push at all before this time (fraud report).
	LockedUntil time.Time
	LockReason  string
	UpdatedAt   time.Time
}

// PushLimits holds per-user push throttles.
type PushLimits interface {
	// GetPushLimit returns the user's limit, or a zero PushLimit with User
	// set when none is recorded.
	GetPushLimit(ctx context.Context, user string) (PushLimit, error)
	// UpdatePushLimit reads the limit (zero if none), calls fn and writes
	// what it returns, in one transaction (no lost updates across nodes).
	UpdatePushLimit(ctx context.Context, user string, fn func(PushLimit) (PushLimit, error)) (PushLimit, error)
}

// Activation is a one-time, short-lived permission to enroll a device for
// a user. Only an HMAC of its secret is kept.
type Activation struct {
	ID         string // public half of the activation code
	User       string
	SecretHash []byte // HMAC-SHA256 of the secret half, under a KEK subkey
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time // zero while unused
	DeviceID   string    // the device it enrolled
}

// Activations holds device activations.
type Activations interface {
	CreateActivation(ctx context.Context, a Activation) error
	GetActivation(ctx context.Context, id string) (Activation, error)
	// ActivateDevice, in one transaction: reads activation id, calls check
	// (which verifies the secret and returns an error to refuse), marks the
	// activation used by d and creates d. An activation already used gives
	// ErrUsed, one past its expiry at now ErrExpired: a code enrolls one
	// device, once, even with concurrent attempts on several nodes.
	ActivateDevice(ctx context.Context, id string, now time.Time, check func(Activation) error, d Device) (Activation, error)
	// ListActivations lists the user's activations, newest first.
	ListActivations(ctx context.Context, user string) ([]Activation, error)
}
