package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/bridge-idp/bridge/store"
)

var userColumns = columns("name", "display_name", "email", "groups_json", "status", "password_hash", "created_at", "updated_at")

func scanUser(sc scanner) (store.User, error) {
	var (
		u                store.User
		groups, status   string
		created, updated int64
	)
	if err := sc.Scan(&u.Name, &u.DisplayName, &u.Email, &groups, &status, &u.PasswordHash, &created, &updated); err != nil {
		return u, err
	}
	if err := json.Unmarshal([]byte(groups), &u.Groups); err != nil {
		return u, fmt.Errorf("user %q: groups column: %w", u.Name, err)
	}
	u.Status = store.UserStatus(status)
	u.CreatedAt, u.UpdatedAt = fromMicro(created), fromMicro(updated)
	return u, nil
}

// checkUser enforces the rules every stored user meets.
func checkUser(u store.User) (store.User, error) {
	n, err := store.NormalizeUsername(u.Name)
	if err != nil {
		return u, err
	}
	if n != u.Name {
		return u, fmt.Errorf("%w: user name %q is not normalised (want %q)", store.ErrInvalid, u.Name, n)
	}
	switch u.Status {
	case store.UserActive, store.UserDisabled:
	default:
		return u, fmt.Errorf("%w: user %q: unknown status %q", store.ErrInvalid, u.Name, u.Status)
	}
	// Fields are printed by the CLI and put into tokens and assertions:
	// no control characters (terminal escapes, line breaks), bounded size.
	for field, v := range map[string]string{"display name": u.DisplayName, "email": u.Email} {
		if err := checkText(v, 1024); err != nil {
			return u, fmt.Errorf("%w: user %q: %s %v", store.ErrInvalid, u.Name, field, err)
		}
	}
	if len(u.Groups) > 1000 {
		return u, fmt.Errorf("%w: user %q: more than 1000 groups", store.ErrInvalid, u.Name)
	}
	for _, g := range u.Groups {
		if err := checkText(g, 1024); err != nil || g == "" {
			return u, fmt.Errorf("%w: user %q: group %q is empty or %v", store.ErrInvalid, u.Name, g, err)
		}
	}
	if u.Groups == nil {
		u.Groups = []string{}
	}
	u.Groups = slices.Clone(u.Groups)
	slices.Sort(u.Groups)
	u.Groups = slices.Compact(u.Groups)
	return u, nil
}

// checkText refuses invalid UTF-8, control characters and text over max bytes.
func checkText(v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("is longer than %d bytes", max)
	}
	if !utf8.ValidString(v) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return errors.New("contains a control character")
		}
	}
	return nil
}

func groupsJSON(groups []string) string {
	b, _ := json.Marshal(groups) // []string always marshals
	return string(b)
}

// CreateUsers implements store.Users.
func (s *DB) CreateUsers(ctx context.Context, users ...store.User) error {
	checked := make([]store.User, len(users))
	for i, u := range users {
		c, err := checkUser(u)
		if err != nil {
			return err
		}
		checked[i] = c
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, u := range checked {
			_, err := tx.ExecContext(ctx, "INSERT INTO users ("+userColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
				u.Name, u.DisplayName, u.Email, groupsJSON(u.Groups), string(u.Status), u.PasswordHash, micro(u.CreatedAt), micro(u.UpdatedAt))
			if err != nil {
				return s.wrap(fmt.Sprintf("creating user %q", u.Name), err)
			}
		}
		return nil
	})
}

// GetUser implements store.Users.
func (s *DB) GetUser(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(s.queryRow(ctx, "SELECT "+userColumns+" FROM users WHERE name = $1", name))
	return u, s.wrap(fmt.Sprintf("user %q", name), err)
}

// ListUsers implements store.Users.
func (s *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.query(ctx, "SELECT "+userColumns+" FROM users ORDER BY name"+s.d.Collate)
	if err != nil {
		return nil, s.wrap("listing users", err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.wrap("listing users", err)
		}
		out = append(out, u)
	}
	return out, s.wrap("listing users", rows.Err())
}

// UpdateUser implements store.Users.
func (s *DB) UpdateUser(ctx context.Context, name string, fn func(store.User) (store.User, error)) (store.User, error) {
	var updated store.User
	err := s.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanUser(tx.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE name = $1"+s.d.ForUpdate, name))
		if err != nil {
			return s.wrap(fmt.Sprintf("user %q", name), err)
		}
		nu, err := fn(old)
		if err != nil {
			return err
		}
		if nu.Name != old.Name {
			return fmt.Errorf("%w: a user cannot be renamed (%q to %q)", store.ErrInvalid, old.Name, nu.Name)
		}
		if nu, err = checkUser(nu); err != nil {
			return err
		}
		nu.CreatedAt = old.CreatedAt
		_, err = tx.ExecContext(ctx, `UPDATE users SET display_name = $1, email = $2, groups_json = $3, status = $4,
	password_hash = $5, updated_at = $6 WHERE name = $7`,
			nu.DisplayName, nu.Email, groupsJSON(nu.Groups), string(nu.Status), nu.PasswordHash, micro(nu.UpdatedAt), name)
		if err != nil {
			return s.wrap(fmt.Sprintf("updating user %q", name), err)
		}
		updated = nu
		return nil
	})
	return updated, err
}

// DeleteUser implements store.Users. The user's devices, TOTP token, bypass
// codes, push challenges, push limit and device activations go with it, in
// the same transaction. A user with no local record (an LDAP user) may
// still have those; they are deleted too, and ErrNotFound means there was
// nothing at all under that name.
func (s *DB) DeleteUser(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var deleted int64
		for _, q := range []string{
			"DELETE FROM users WHERE name = $1",
			"DELETE FROM devices WHERE user_name = $1",
			"DELETE FROM totp WHERE user_name = $1",
			"DELETE FROM bypass_codes WHERE user_name = $1",
			"DELETE FROM push_challenges WHERE user_name = $1",
			"DELETE FROM push_limits WHERE user_name = $1",
			"DELETE FROM device_activations WHERE user_name = $1",
			// Sessions, sign-ins and tokens: a deleted user is signed out.
			"DELETE FROM grants WHERE subject = $1",
		} {
			res, err := tx.ExecContext(ctx, q, name)
			if err != nil {
				return s.wrap(fmt.Sprintf("deleting user %q", name), err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return s.wrap(fmt.Sprintf("deleting user %q", name), err)
			}
			deleted += n
		}
		if deleted == 0 {
			return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
		}
		return nil
	})
}
