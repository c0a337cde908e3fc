package none_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/none"
)

// looker is a fake directory.Looker knowing alice (active) and bob (disabled).
type looker struct{ calls int }

func (l *looker) Lookup(_ context.Context, username string) (directory.Identity, error) {
	l.calls++
	switch username {
	case "alice":
		return directory.Identity{Username: "alice", Email: "alice@example.org", Groups: []string{"staff"}, Directory: "local"}, nil
	case "bob":
		return directory.Identity{}, fmt.Errorf("%w: user status is \"disabled\"", directory.ErrDisabled)
	}
	return directory.Identity{}, fmt.Errorf("%w: unknown user", directory.ErrInvalidCredentials)
}

func TestNone(t *testing.T) {
	l := &looker{}
	d, err := none.Open("push-only", l)
	if err != nil {
		t.Fatal(err)
	}
	if directory.RequiresPassword(d) {
		t.Error("RequiresPassword = true, want false")
	}
	if d.Name() != "push-only" {
		t.Errorf("Name = %q", d.Name())
	}
	ctx := context.Background()
	for _, pw := range []string{"", "anything"} {
		id, err := d.Authenticate(ctx, "alice", pw)
		if err != nil {
			t.Fatalf("Authenticate(alice, %q): %v", pw, err)
		}
		if id.Username != "alice" || id.Email != "alice@example.org" || id.Directory != "push-only" {
			t.Errorf("Authenticate(alice, %q) = %+v", pw, id)
		}
	}
	if _, err := d.Authenticate(ctx, "bob", ""); !errors.Is(err, directory.ErrDisabled) {
		t.Errorf("bob: err = %v, want ErrDisabled", err)
	}
	if _, err := d.Authenticate(ctx, "carol", "x"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("carol: err = %v, want ErrInvalidCredentials", err)
	}
	if l.calls != 4 {
		t.Errorf("underlying Lookup called %d times, want 4", l.calls)
	}
}

func TestOpenRejects(t *testing.T) {
	if _, err := none.Open("", &looker{}); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := none.Open("x", nil); err == nil {
		t.Error("nil looker accepted")
	}
}
