package dirtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/directory"
)

// Fixture is a directory with users the suite knows about.
type Fixture struct {
	Dir directory.Directory

	// User is an active user whose password is Password; the directory
	// knows their DisplayName, Email and Groups (sorted).
	User        string
	Password    string
	DisplayName string
	Email       string
	Groups      []string

	// Disabled is a disabled or locked user whose password is
	// DisabledPassword.
	Disabled         string
	DisabledPassword string

	// Unknown is a name the directory does not know.
	Unknown string
}

// Run runs the suite; setup is called once per case.
func Run(t *testing.T, setup func(t *testing.T) Fixture) {
	cases := []struct {
		name string
		run  func(t *testing.T, f Fixture)
	}{
		{"RightPassword", rightPassword},
		{"UsernameCaseInsensitive", caseInsensitive},
		{"WrongPassword", wrongPassword},
		{"UnknownUser", unknownUser},
		{"EmptyPassword", emptyPassword},
		{"Disabled", disabled},
		{"DisabledWrongPassword", disabledWrongPassword},
		{"LookupKnown", lookupKnown},
		{"LookupUnknown", lookupUnknown},
		{"LookupDisabled", lookupDisabled},
		{"AlreadyCancelledContext", alreadyCancelled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			c.run(t, f)
		})
	}
}

// ctx bounds every call: a directory that hangs fails the case instead of
// the whole test binary.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func checkIdentity(t *testing.T, f Fixture, id directory.Identity) {
	t.Helper()
	if id.Username != strings.ToLower(f.User) {
		t.Errorf("Username = %q, want %q", id.Username, strings.ToLower(f.User))
	}
	if id.DisplayName != f.DisplayName {
		t.Errorf("DisplayName = %q, want %q", id.DisplayName, f.DisplayName)
	}
	if id.Email != f.Email {
		t.Errorf("Email = %q, want %q", id.Email, f.Email)
	}
	if !slices.Equal(id.Groups, f.Groups) {
		t.Errorf("Groups = %q, want %q", id.Groups, f.Groups)
	}
	if id.Directory != f.Dir.Name() {
		t.Errorf("Directory = %q, want %q", id.Directory, f.Dir.Name())
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func rightPassword(t *testing.T, f Fixture) {
	id, err := f.Dir.Authenticate(ctx(t), f.User, f.Password)
	if err != nil {
		t.Fatalf("Authenticate(%q, right password): %v", f.User, err)
	}
	checkIdentity(t, f, id)
}

func caseInsensitive(t *testing.T, f Fixture) {
	upper := strings.ToUpper(f.User)
	if upper == f.User {
		t.Fatalf("fixture user %q has no lower-case letters to change", f.User)
	}
	id, err := f.Dir.Authenticate(ctx(t), "  "+upper+" ", f.Password)
	if err != nil {
		t.Fatalf("Authenticate(%q): %v", upper, err)
	}
	checkIdentity(t, f, id)
	id, err = f.Dir.Lookup(ctx(t), upper)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", upper, err)
	}
	checkIdentity(t, f, id)
}

func wrongPassword(t *testing.T, f Fixture) {
	_, err := f.Dir.Authenticate(ctx(t), f.User, f.Password+"x")
	wantErr(t, "wrong password", err, directory.ErrInvalidCredentials)
	if errors.Is(err, directory.ErrUnavailable) || errors.Is(err, directory.ErrDisabled) {
		t.Errorf("wrong password: err %v is also another class", err)
	}
}

func unknownUser(t *testing.T, f Fixture) {
	_, err := f.Dir.Authenticate(ctx(t), f.Unknown, f.Password)
	wantErr(t, "unknown user", err, directory.ErrInvalidCredentials)
	if errors.Is(err, directory.ErrDisabled) || errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("unknown user: err %v is also another class", err)
	}
}

func emptyPassword(t *testing.T, f Fixture) {
	for _, user := range []string{f.User, f.Unknown, f.Disabled} {
		_, err := f.Dir.Authenticate(ctx(t), user, "")
		wantErr(t, "empty password for "+user, err, directory.ErrInvalidCredentials)
		if errors.Is(err, directory.ErrDisabled) || errors.Is(err, directory.ErrUnavailable) {
			t.Errorf("empty password for %s: err %v is also another class", user, err)
		}
	}
}

func disabled(t *testing.T, f Fixture) {
	_, err := f.Dir.Authenticate(ctx(t), f.Disabled, f.DisabledPassword)
	wantErr(t, "disabled user", err, directory.ErrDisabled)
	if errors.Is(err, directory.ErrInvalidCredentials) || errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("disabled user: err %v is also another class", err)
	}
}

// disabledWrongPassword: ErrDisabled means "the password may be right", so
// a wrong password for a disabled account is an ordinary wrong password;
// anything else tells whoever guesses which accounts are disabled or
// locked, without the password.
func disabledWrongPassword(t *testing.T, f Fixture) {
	_, err := f.Dir.Authenticate(ctx(t), f.Disabled, f.DisabledPassword+"x")
	wantErr(t, "disabled user, wrong password", err, directory.ErrInvalidCredentials)
	if errors.Is(err, directory.ErrDisabled) || errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("disabled user, wrong password: err %v is also another class", err)
	}
}

func lookupKnown(t *testing.T, f Fixture) {
	id, err := f.Dir.Lookup(ctx(t), f.User)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", f.User, err)
	}
	checkIdentity(t, f, id)
}

func lookupUnknown(t *testing.T, f Fixture) {
	_, err := f.Dir.Lookup(ctx(t), f.Unknown)
	wantErr(t, "Lookup unknown", err, directory.ErrInvalidCredentials)
}

func lookupDisabled(t *testing.T, f Fixture) {
	_, err := f.Dir.Lookup(ctx(t), f.Disabled)
	wantErr(t, "Lookup disabled", err, directory.ErrDisabled)
}

// alreadyCancelled calls with a context cancelled before the call: the
// directory must not succeed, hang, or blame the user. It cannot tell
// whether a request in flight stops when its context ends (a directory
// that only checks ctx.Err() on entry passes); backends test that
// themselves where there is a request to interrupt (LDAP:
// TestBlackHoleCancel).
func alreadyCancelled(t *testing.T, f Fixture) {
	c, cancel := context.WithCancel(t.Context())
	cancel()
	done := make(chan error, 2)
	go func() {
		_, err := f.Dir.Authenticate(c, f.User, f.Password)
		done <- err
		_, err = f.Dir.Lookup(c, f.User)
		done <- err
	}()
	for _, what := range []string{"Authenticate", "Lookup"} {
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s with a cancelled context succeeded", what)
			} else if errors.Is(err, directory.ErrInvalidCredentials) {
				t.Errorf("%s with a cancelled context: %v; a cancelled login is not the user's fault", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s with a cancelled context still running after 10s", what)
		}
	}
}

// Bench measures Authenticate with the right password, a wrong password and
// an unknown user, in parallel as concurrent logins would. The three should
// cost about the same: a large gap tells an attacker which names exist.
func Bench(b *testing.B, f Fixture) {
	for _, c := range []struct{ name, user, password string }{
		{"RightPassword", f.User, f.Password},
		{"WrongPassword", f.User, f.Password + "x"},
		{"UnknownUser", f.Unknown, f.Password},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, err := f.Dir.Authenticate(context.Background(), c.user, c.password)
					if (err == nil) != (c.name == "RightPassword") {
						b.Errorf("%s: err = %v", c.name, err)
						return
					}
				}
			})
		})
	}
}
