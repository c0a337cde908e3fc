package none

import (
	"context"
	"errors"

	"github.com/bridge-idp/bridge/directory"
)

// Interface guards.
var (
	_ directory.Directory     = (*dir)(nil)
	_ directory.NeedsPassword = (*dir)(nil)
)

type dir struct {
	name       string
	identities directory.Looker
}

// Open returns the directory called name whose users are those identities
// knows.
func Open(name string, identities directory.Looker) (directory.Directory, error) {
	if name == "" {
		return nil, errors.New("none directory: name is empty")
	}
	if identities == nil {
		return nil, errors.New("none directory: no directory to look users up in")
	}
	return &dir{name: name, identities: identities}, nil
}

func (d *dir) Name() string        { return d.name }
func (d *dir) NeedsPassword() bool { return false }

// Authenticate ignores password and looks username up.
func (d *dir) Authenticate(ctx context.Context, username, _ string) (directory.Identity, error) {
	return d.Lookup(ctx, username)
}

// Lookup looks username up in the underlying directory; the identity says
// it was vouched for by this directory.
func (d *dir) Lookup(ctx context.Context, username string) (directory.Identity, error) {
	id, err := d.identities.Lookup(ctx, username)
	if err != nil {
		return directory.Identity{}, err
	}
	id.Directory = d.name
	return id, nil
}
