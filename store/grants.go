package store

import (
	"context"
	"time"
)

// Grant kinds used by the browser login flow and the OIDC and SAML front
// ends. A kind is a namespace: the same ID under two kinds is two records.
const (
	GrantLogin        = "login"        // a browser sign-in in progress (web)
	GrantSession      = "session"      // a browser session (web)
	GrantAuthRequest  = "oidc_request" // an OIDC authorization request
	GrantCode         = "oidc_code"    // an OIDC authorization code
	GrantAccessToken  = "oidc_access"  // an OIDC access token
	GrantRefreshToken = "oidc_refresh" // an OIDC refresh token
	GrantSAMLRequest  = "saml_request" // a SAML AuthnRequest being answered
	GrantRADIUSState  = "radius_state" // a RADIUS Access-Challenge awaiting its State
)

// Grant is one short-lived record of a login or of what it issued: a
// sign-in in progress, a browser session, an authorization code, a token.
// The store does not look inside Data. Records whose secret is handed out
// (codes, tokens, session cookies) are stored under a hash of the secret,
// never the secret itself: ID is that hash.
type Grant struct {
	Kind string
	ID   string
	// Family groups the records one login issued (its code, the tokens
	// issued for the code, their refresh tokens), so that all can be
	// revoked at once when one of them is replayed. Empty: no family.
	Family string
	// Subject is the user the record is about, if any (for revoking a
	// user's sessions and tokens).
	Subject   string
	Data      []byte
	CreatedAt time.Time
	// ExpiresAt is when the record stops being returned; the janitor
	// deletes it after that.
	ExpiresAt time.Time
	// UsedAt is when ConsumeGrant used the record; zero while unused.
	UsedAt time.Time
}

// Grants holds Grant records. Every node sees the same records, so the
// next request of a login can land on any node.
type Grants interface {
	// PutGrant inserts g. ErrConflict if a record of g.Kind with g.ID
	// exists (expired or not), ErrInvalid if Kind or ID is empty or
	// ExpiresAt is zero.
	PutGrant(ctx context.Context, g Grant) error
	// GetGrant returns the record if it exists and has not expired at
	// now (ErrNotFound otherwise). A used record is returned too, with
	// UsedAt set.
	GetGrant(ctx context.Context, kind, id string, now time.Time) (Grant, error)
	// UpdateGrant reads the unexpired record, calls fn and writes what fn
	// returns (Data, Subject, Family, ExpiresAt; Kind, ID, CreatedAt and
	// UsedAt are kept), all in one transaction, so concurrent updates
	// are not lost. fn's error aborts the update and is returned as is.
	// ErrNotFound if there is no unexpired record.
	UpdateGrant(ctx context.Context, kind, id string, now time.Time, fn func(Grant) (Grant, error)) (Grant, error)
	// ConsumeGrant marks the unexpired, unused record as used at now and
	// returns it. If it was used already it returns the record (so the
	// caller can revoke its family) with ErrUsed. Of any number of
	// concurrent calls on any number of nodes, exactly one succeeds.
	// ErrNotFound if there is no unexpired record.
	ConsumeGrant(ctx context.Context, kind, id string, now time.Time) (Grant, error)
	// DeleteGrant deletes one record, expired or not. ErrNotFound if there
	// was none.
	DeleteGrant(ctx context.Context, kind, id string) error
	// RevokeFamily deletes every record of the family, of every kind, and
	// returns how many it deleted. An empty family deletes nothing.
	RevokeFamily(ctx context.Context, family string) (int64, error)
	// RevokeSubject deletes every record of the given kinds (all kinds if
	// none are given) whose Subject is subject, and returns how many.
	RevokeSubject(ctx context.Context, subject string, kinds ...string) (int64, error)
}
