package directory

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/bridge-idp/bridge/store"
)

// Errors every directory returns, wrapped with detail for the audit log
// (for example "unknown user" or "wrong password"). Front ends must show
// ErrInvalidCredentials the same way whatever the detail, so that a login
// form does not reveal whether a user exists.
var (
	// ErrInvalidCredentials: unknown user or wrong password.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrDisabled: the user exists and the password may be right, but the
	// account is disabled or locked.
	ErrDisabled = errors.New("account disabled")
	// ErrUnavailable: the directory could not answer (server down, timeout,
	// misconfigured service account). Not the user's fault.
	ErrUnavailable = errors.New("directory unavailable")
)

// Identity is who a user is, as the directory knows them.
type Identity struct {
	Username    string // normalised login name
	DisplayName string
	Email       string
	Groups      []string // group names, sorted
	Directory   string   // name of the directory that vouched for the user
	// DN is the user's distinguished name for LDAP directories, empty for others.
	DN string
}

// Authenticator checks a password. Implementations run in constant time with
// respect to whether the user exists, as far as the backend allows.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (Identity, error)
}

// Looker finds a user without a password (passwordless logins, and
// re-reading attributes). It returns ErrInvalidCredentials for an unknown
// user and ErrDisabled for a disabled one.
type Looker interface {
	Lookup(ctx context.Context, username string) (Identity, error)
}

// Directory is what the front ends hold: a named authenticator that can also
// look users up.
type Directory interface {
	Authenticator
	Looker
	Name() string
}

// NeedsPassword is implemented by directories that do not need a password
// (none): login pages ask for one only when a directory does.
type NeedsPassword interface {
	NeedsPassword() bool
}

// RequiresPassword reports whether d checks a password.
func RequiresPassword(d Directory) bool {
	if n, ok := d.(NeedsPassword); ok {
		return n.NeedsPassword()
	}
	return true
}

// Set is the directories configured on this bridge, by name.
type Set struct {
	byName map[string]Directory
}

// NewSet builds a Set; names must be unique.
func NewSet(dirs ...Directory) (*Set, error) {
	s := &Set{byName: make(map[string]Directory, len(dirs))}
	for _, d := range dirs {
		if _, dup := s.byName[d.Name()]; dup {
			return nil, fmt.Errorf("directory %q is defined twice", d.Name())
		}
		s.byName[d.Name()] = d
	}
	return s, nil
}

// Get returns the directory called name.
func (s *Set) Get(name string) (Directory, error) {
	d, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("no directory called %q (have %v)", name, s.Names())
	}
	return d, nil
}

// Names lists the directory names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close closes every directory that holds resources (LDAP pools).
func (s *Set) Close() error {
	var errs []error
	for _, d := range s.byName {
		if c, ok := d.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// CheckName is the first step of every Lookup: a cancelled context is
// ErrUnavailable, a name that does not normalise is ErrInvalidCredentials.
// It returns the normalised name.
func CheckName(ctx context.Context, username string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	name, err := store.NormalizeUsername(username)
	if err != nil {
		return "", fmt.Errorf("%w: invalid user name", ErrInvalidCredentials)
	}
	return name, nil
}

// CheckLogin is the first step of every password check: CheckName, and an
// empty password is ErrInvalidCredentials before any work. (For LDAP this is
// what stops an empty-password simple bind, which servers treat as an
// unauthenticated bind and answer with success.)
func CheckLogin(ctx context.Context, username, password string) (string, error) {
	name, err := CheckName(ctx, username)
	if err != nil {
		return "", err
	}
	if password == "" {
		return "", fmt.Errorf("%w: empty password", ErrInvalidCredentials)
	}
	return name, nil
}
