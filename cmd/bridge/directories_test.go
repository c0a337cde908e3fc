package main

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/directory"
)

// TestOpenDirectories: serve builds every configured directory by name, and
// a passwordless directory finds users in the local users (by default) or in
// the directory it names.
func TestOpenDirectories(t *testing.T) {
	e := newEnv(t)
	text := testConfig + `
directories:
  - name: staff
    type: local
  - name: push-only
    type: none
  - name: push-staff
    type: none
    identities: staff
`
	if err := os.WriteFile(e.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("", "users", "add", "alice", "--no-password", "--email", "alice@example.org")
	e.ok("", "users", "add", "bob", "--no-password", "--disabled")

	cfg, err := config.Load(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	set, err := openDirectories(context.Background(), cfg, e.store(), discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	if got := set.Names(); len(got) != 3 {
		t.Fatalf("directories %v, want staff, push-only, push-staff", got)
	}
	for _, name := range []string{"push-only", "push-staff"} {
		d, err := set.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if directory.RequiresPassword(d) {
			t.Errorf("%s asks for a password", name)
		}
		id, err := d.Authenticate(context.Background(), "Alice", "")
		if err != nil || id.Email != "alice@example.org" {
			t.Errorf("%s: alice = %+v, %v", name, id, err)
		}
		if _, err := d.Authenticate(context.Background(), "bob", ""); !errors.Is(err, directory.ErrDisabled) {
			t.Errorf("%s: disabled bob: err = %v, want ErrDisabled", name, err)
		}
		if _, err := d.Authenticate(context.Background(), "nobody", ""); !errors.Is(err, directory.ErrInvalidCredentials) {
			t.Errorf("%s: unknown user: err = %v, want ErrInvalidCredentials", name, err)
		}
	}
}
