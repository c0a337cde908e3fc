package oidc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/web"
)

// A token response still being written when the user is signed out (it
// used up its code or refresh token before, and writes its new tokens
// after the sign-out deleted the user's records) does not leave a working
// token; a sign-in after the sign-out is unaffected.
func TestSignOutStopsTokensInFlight(t *testing.T) {
	p := newTestProvider(t)
	ctx := context.Background()
	now := p.now()
	before := grant{ClientID: "wiki", Scopes: []string{"openid"}, User: web.Result{User: "alice", AuthTime: now.Add(-time.Minute)}}

	if _, _, err := p.newAccessToken(ctx, before, "fam-1"); err != nil {
		t.Fatalf("before the sign-out: %v", err)
	}
	if _, err := SignOut(ctx, p.st, "alice", now); err != nil {
		t.Fatal(err)
	}
	// The response racing the sign-out writes after it.
	id, _, err := p.newAccessToken(ctx, before, "fam-2")
	if !errors.Is(err, errInvalidGrant) {
		t.Fatalf("a token of a sign-in before the sign-out was issued after it: %q %v", id, err)
	}
	if n, _ := p.st.RevokeFamily(ctx, "fam-2"); n != 0 {
		t.Errorf("%d records of the refused response remain", n)
	}
	// Signing out again (the record exists) moves the time on.
	later := now.Add(time.Hour)
	after := grant{ClientID: "wiki", Scopes: []string{"openid"}, User: web.Result{User: "alice", AuthTime: now.Add(time.Minute)}}
	if _, _, err := p.newAccessToken(ctx, after, "fam-3"); err != nil {
		t.Fatalf("a sign-in after the sign-out: %v", err)
	}
	if _, err := SignOut(ctx, p.st, "alice", later); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.newAccessToken(ctx, after, "fam-4"); !errors.Is(err, errInvalidGrant) {
		t.Fatalf("the second sign-out did not move the time on: %v", err)
	}
	// Another user is not affected.
	bob := grant{ClientID: "wiki", Scopes: []string{"openid"}, User: web.Result{User: "bob", AuthTime: now.Add(-time.Minute)}}
	if _, _, err := p.newAccessToken(ctx, bob, "fam-5"); err != nil {
		t.Fatalf("another user: %v", err)
	}
}
