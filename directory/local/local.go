package local

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"

	"golang.org/x/sync/semaphore"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/store"
)

// Interface guards.
var (
	_ directory.Directory     = (*dir)(nil)
	_ directory.NeedsPassword = (*dir)(nil)
)

// dir is the local directory.
type dir struct {
	name   string
	users  store.Users
	params Argon2
	logger *slog.Logger
	// dummy is verified for unknown users so that they cost as much as
	// known ones.
	dummy string
	// mem is the memory budget (KiB) of the argon2id runs in progress;
	// budget is its size.
	mem    *semaphore.Weighted
	budget int64
}

// Open returns the directory called name over users; new hashes use params.
func Open(name string, users store.Users, params Argon2, logger *slog.Logger) (directory.Directory, error) {
	if name == "" {
		return nil, errors.New("local directory: name is empty")
	}
	if users == nil {
		return nil, errors.New("local directory: no user store")
	}
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("local directory %q: argon2: %w", name, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dummy, err := HashPassword(params, rand.Text())
	if err != nil {
		return nil, fmt.Errorf("local directory %q: dummy hash: %w", name, err)
	}
	return &dir{
		name:   name,
		users:  users,
		params: params,
		logger: logger.With("directory", name),
		dummy:  dummy,
		mem:    semaphore.NewWeighted(budget(params)),
		budget: budget(params),
	}, nil
}

func (d *dir) Name() string        { return d.name }
func (d *dir) NeedsPassword() bool { return true }

// Authenticate checks username's password against the stored hash.
func (d *dir) Authenticate(ctx context.Context, username, password string) (directory.Identity, error) {
	name, err := directory.CheckLogin(ctx, username, password)
	if err != nil {
		return directory.Identity{}, err
	}
	if len(password) > MaxPasswordLen {
		return directory.Identity{}, fmt.Errorf("%w: password longer than %d bytes", directory.ErrInvalidCredentials, MaxPasswordLen)
	}
	u, err := d.users.GetUser(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return directory.Identity{}, d.burn(ctx, password, "unknown user")
	case err != nil:
		return directory.Identity{}, d.storeErr(ctx, err)
	case u.PasswordHash == "":
		return directory.Identity{}, d.burn(ctx, password, "user has no local password")
	}
	ok, rehash, err := d.verify(ctx, u.PasswordHash, password)
	if err != nil {
		if ctx.Err() != nil {
			return directory.Identity{}, fmt.Errorf("%w: %w", directory.ErrUnavailable, ctx.Err())
		}
		d.logger.ErrorContext(ctx, "stored password hash is unusable", "user", name, "err", err)
		return directory.Identity{}, fmt.Errorf("%w: stored password hash of %q is unusable: %w", directory.ErrUnavailable, name, err)
	}
	if !ok {
		return directory.Identity{}, fmt.Errorf("%w: wrong password", directory.ErrInvalidCredentials)
	}
	if u.Status != store.UserActive {
		return directory.Identity{}, fmt.Errorf("%w: user status is %q", directory.ErrDisabled, u.Status)
	}
	if rehash {
		d.rehash(ctx, u, password)
	}
	return d.identity(u), nil
}

// Lookup returns the user's identity without checking a password.
func (d *dir) Lookup(ctx context.Context, username string) (directory.Identity, error) {
	name, err := directory.CheckName(ctx, username)
	if err != nil {
		return directory.Identity{}, err
	}
	u, err := d.users.GetUser(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return directory.Identity{}, fmt.Errorf("%w: unknown user", directory.ErrInvalidCredentials)
	case err != nil:
		return directory.Identity{}, d.storeErr(ctx, err)
	case u.Status != store.UserActive:
		return directory.Identity{}, fmt.Errorf("%w: user status is %q", directory.ErrDisabled, u.Status)
	}
	return d.identity(u), nil
}

func (d *dir) identity(u store.User) directory.Identity {
	groups := append([]string(nil), u.Groups...)
	slices.Sort(groups)
	return directory.Identity{
		Username:    u.Name,
		DisplayName: u.DisplayName,
		Email:       u.Email,
		Groups:      slices.Compact(groups),
		Directory:   d.name,
	}
}

func (d *dir) storeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: store: %w", directory.ErrUnavailable, ctx.Err())
	}
	return fmt.Errorf("%w: store: %w", directory.ErrUnavailable, err)
}

// burn verifies password against the dummy hash, so that a login for a user
// without a hash takes as long as one with, and returns the invalid
// credentials error with detail.
func (d *dir) burn(ctx context.Context, password, detail string) error {
	if _, _, err := d.verify(ctx, d.dummy, password); err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", directory.ErrUnavailable, ctx.Err())
	}
	return fmt.Errorf("%w: %s", directory.ErrInvalidCredentials, detail)
}

// budget is the memory (KiB) all argon2id runs at once may use: 2×GOMAXPROCS
// runs at the configured parameters.
func budget(p Argon2) int64 { return int64(2*runtime.GOMAXPROCS(0)) * int64(p.MemoryKiB) }

// acquire reserves memKiB of the budget, waiting as long as ctx allows. A
// hash that asks for more than the whole budget (a stored hash with other
// parameters) waits until it can run alone.
func (d *dir) acquire(ctx context.Context, memKiB uint32) (release func(), err error) {
	w := min(int64(memKiB), d.budget)
	if err := d.mem.Acquire(ctx, w); err != nil {
		return nil, fmt.Errorf("waiting for password hashing memory: %w", err)
	}
	return func() { d.mem.Release(w) }, nil
}

func (d *dir) verify(ctx context.Context, hash, password string) (ok, rehash bool, err error) {
	p, err := parsePHC(hash)
	if err != nil {
		return false, false, err
	}
	release, err := d.acquire(ctx, p.params.MemoryKiB)
	if err != nil {
		return false, false, err
	}
	defer release()
	return verify(hash, password, d.params)
}

// errHashChanged aborts a rehash when the stored hash changed since it was
// read (the password was set meanwhile).
var errHashChanged = errors.New("password hash changed meanwhile")

// rehash stores a hash of password made with the configured parameters, if
// the user's hash is still old. Failures are logged: the login succeeded.
func (d *dir) rehash(ctx context.Context, u store.User, password string) {
	release, err := d.acquire(ctx, d.params.MemoryKiB)
	if err != nil {
		return
	}
	h, err := HashPassword(d.params, password)
	release()
	if err != nil {
		d.logger.ErrorContext(ctx, "rehash password", "user", u.Name, "err", err)
		return
	}
	_, err = d.users.UpdateUser(ctx, u.Name, func(cur store.User) (store.User, error) {
		if cur.PasswordHash != u.PasswordHash {
			return cur, errHashChanged
		}
		cur.PasswordHash = h
		return cur, nil
	})
	switch {
	case errors.Is(err, errHashChanged):
		d.logger.InfoContext(ctx, "password changed during login, not rehashed", "user", u.Name)
	case err != nil:
		d.logger.WarnContext(ctx, "rehash password", "user", u.Name, "err", err)
	default:
		d.logger.InfoContext(ctx, "password rehashed with current parameters", "user", u.Name)
	}
}
