package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bridge-idp/bridge/store"
)

var grantColumns = columns("kind", "id", "family", "subject", "data", "created_at", "expires_at", "used_at")

func scanGrant(sc scanner) (store.Grant, error) {
	var (
		g                      store.Grant
		created, expires, used int64
	)
	err := sc.Scan(&g.Kind, &g.ID, &g.Family, &g.Subject, &g.Data, &created, &expires, &used)
	if err != nil {
		return store.Grant{}, err
	}
	if len(g.Data) == 0 {
		g.Data = nil // the drivers differ on an empty blob: no data is nil on both
	}
	g.CreatedAt, g.ExpiresAt, g.UsedAt = fromMicro(created), fromMicro(expires), fromMicro(used)
	return g, nil
}

// grantText reports whether v fits a TEXT column of every backend:
// PostgreSQL refuses NUL bytes and invalid UTF-8 in text. A key that does
// not fit cannot name a stored grant, so lookups by it find nothing
// instead of failing in the driver.
func grantText(v string) bool { return utf8.ValidString(v) && strings.IndexByte(v, 0) < 0 }

// checkGrant enforces what every stored grant meets and returns g as it
// will be stored (times to the microsecond, in UTC).
func checkGrant(g store.Grant) (store.Grant, error) {
	switch {
	case g.Kind == "" || g.ID == "":
		return g, fmt.Errorf("%w: grant without kind or id", store.ErrInvalid)
	case g.ExpiresAt.IsZero():
		return g, fmt.Errorf("%w: %s grant without expiry", store.ErrInvalid, g.Kind)
	}
	for _, f := range []struct{ name, v string }{{"kind", g.Kind}, {"id", g.ID}, {"family", g.Family}, {"subject", g.Subject}} {
		if !grantText(f.v) {
			return g, fmt.Errorf("%w: grant %s is not NUL-free UTF-8", store.ErrInvalid, f.name)
		}
	}
	g.CreatedAt, g.ExpiresAt, g.UsedAt = fromMicro(micro(g.CreatedAt)), fromMicro(micro(g.ExpiresAt)), fromMicro(micro(g.UsedAt))
	return g, nil
}

// needNow refuses a zero time where the expiry rule needs one (a zero now
// would find every record unexpired, and ConsumeGrant would mark a record
// used at 0, which is "unused").
func needNow(what, kind string, now time.Time) error {
	if now.IsZero() {
		return fmt.Errorf("%w: %s %s grant without a time", store.ErrInvalid, what, kind)
	}
	return nil
}

// Errors name the kind of grant, never its id: ids are handles to
// sessions and tokens (or hashes of them).

// PutGrant implements store.Grants.
func (s *DB) PutGrant(ctx context.Context, g store.Grant) error {
	g, err := checkGrant(g)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, "INSERT INTO grants ("+grantColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		g.Kind, g.ID, g.Family, g.Subject, g.Data, micro(g.CreatedAt), micro(g.ExpiresAt), micro(g.UsedAt))
	return s.wrap(fmt.Sprintf("creating %s grant", g.Kind), err)
}

// GetGrant implements store.Grants.
func (s *DB) GetGrant(ctx context.Context, kind, id string, now time.Time) (store.Grant, error) {
	if err := needNow("reading", kind, now); err != nil {
		return store.Grant{}, err
	}
	if !grantText(kind) || !grantText(id) {
		return store.Grant{}, fmt.Errorf("grant: %w", store.ErrNotFound)
	}
	g, err := scanGrant(s.queryRow(ctx, "SELECT "+grantColumns+" FROM grants WHERE kind = $1 AND id = $2 AND expires_at > $3",
		kind, id, micro(now)))
	return g, s.wrap(fmt.Sprintf("%s grant", kind), err)
}

// UpdateGrant implements store.Grants: the row is read locked (FOR UPDATE
// on PostgreSQL; SQLite's write transaction locks the database), so
// concurrent updates on any number of nodes take turns.
func (s *DB) UpdateGrant(ctx context.Context, kind, id string, now time.Time, fn func(store.Grant) (store.Grant, error)) (store.Grant, error) {
	if err := needNow("updating", kind, now); err != nil {
		return store.Grant{}, err
	}
	if !grantText(kind) || !grantText(id) {
		return store.Grant{}, fmt.Errorf("grant: %w", store.ErrNotFound)
	}
	what := fmt.Sprintf("%s grant", kind)
	var updated store.Grant
	err := s.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanGrant(tx.QueryRowContext(ctx, "SELECT "+grantColumns+" FROM grants WHERE kind = $1 AND id = $2 AND expires_at > $3"+s.d.ForUpdate,
			kind, id, micro(now)))
		if err != nil {
			return s.wrap(what, err)
		}
		ng, err := fn(old)
		if err != nil {
			return err
		}
		ng.Kind, ng.ID, ng.CreatedAt, ng.UsedAt = old.Kind, old.ID, old.CreatedAt, old.UsedAt
		if ng, err = checkGrant(ng); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE grants SET family = $1, subject = $2, data = $3, expires_at = $4 WHERE kind = $5 AND id = $6",
			ng.Family, ng.Subject, ng.Data, micro(ng.ExpiresAt), kind, id)
		if err != nil {
			return s.wrap("updating "+what, err)
		}
		updated = ng
		return nil
	})
	return updated, err
}

// consumeAttempts bounds ConsumeGrant's retries. A retry follows an UPDATE
// that found no unused, unexpired row and a read just after it that did:
// the record was created, or renewed, in between.
const consumeAttempts = 4

// ConsumeGrant implements store.Grants with one conditional UPDATE: of
// concurrent calls on any number of nodes, only the one that still finds
// the row unused changes it (PostgreSQL re-checks the condition on the row
// a concurrent UPDATE committed; SQLite runs one writer at a time). The
// read that follows tells a used record from a missing or expired one.
func (s *DB) ConsumeGrant(ctx context.Context, kind, id string, now time.Time) (store.Grant, error) {
	if err := needNow("consuming", kind, now); err != nil {
		return store.Grant{}, err
	}
	if !grantText(kind) || !grantText(id) {
		return store.Grant{}, fmt.Errorf("grant: %w", store.ErrNotFound)
	}
	what := fmt.Sprintf("%s grant", kind)
	for attempt := 1; ; attempt++ {
		var g store.Grant
		err := s.writeRow(ctx, func(r *sql.Row) (err error) {
			g, err = scanGrant(r)
			return err
		}, "UPDATE grants SET used_at = $1 WHERE kind = $2 AND id = $3 AND used_at = 0 AND expires_at > $1 RETURNING "+grantColumns,
			micro(now), kind, id)
		if err == nil {
			return g, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return store.Grant{}, s.wrap("consuming "+what, err)
		}
		g, err = scanGrant(s.queryRow(ctx, "SELECT "+grantColumns+" FROM grants WHERE kind = $1 AND id = $2 AND expires_at > $3",
			kind, id, micro(now)))
		switch {
		case err != nil:
			return store.Grant{}, s.wrap(what, err)
		case !g.UsedAt.IsZero():
			return g, fmt.Errorf("%s: %w", what, store.ErrUsed)
		case attempt < consumeAttempts:
			continue
		default:
			return store.Grant{}, fmt.Errorf("consuming %s: changed under each of %d attempts: %w", what, attempt, store.ErrConflict)
		}
	}
}

// writeRow runs a write statement that returns a row (UPDATE … RETURNING)
// in this process's write turn, and scans the row before the turn ends.
func (s *DB) writeRow(ctx context.Context, scan func(*sql.Row) error, query string, args ...any) error {
	done, err := s.writeTurn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", s.d.Name, err)
	}
	defer done()
	return scan(s.queryRow(ctx, query, args...))
}

// DeleteGrant implements store.Grants.
func (s *DB) DeleteGrant(ctx context.Context, kind, id string) error {
	if !grantText(kind) || !grantText(id) {
		return fmt.Errorf("grant: %w", store.ErrNotFound)
	}
	n, err := s.deleteGrants(ctx, fmt.Sprintf("deleting %s grant", kind), "DELETE FROM grants WHERE kind = $1 AND id = $2", kind, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s grant: %w", kind, store.ErrNotFound)
	}
	return nil
}

// RevokeFamily implements store.Grants.
func (s *DB) RevokeFamily(ctx context.Context, family string) (int64, error) {
	if family == "" || !grantText(family) {
		return 0, nil
	}
	return s.deleteGrants(ctx, "revoking a grant family", "DELETE FROM grants WHERE family = $1", family)
}

// RevokeSubject implements store.Grants. An empty subject deletes nothing:
// it is "no user", not a user whose records could be revoked.
func (s *DB) RevokeSubject(ctx context.Context, subject string, kinds ...string) (int64, error) {
	if subject == "" || !grantText(subject) {
		return 0, nil
	}
	q, args := "DELETE FROM grants WHERE subject = $1", []any{subject}
	if len(kinds) > 0 {
		// Sorted and without duplicates, so that the statement cache holds
		// one text per number of kinds.
		kinds = slices.Clone(kinds)
		slices.Sort(kinds)
		var marks []string
		for _, k := range slices.Compact(kinds) {
			if grantText(k) {
				args = append(args, k)
				marks = append(marks, fmt.Sprintf("$%d", len(args)))
			}
		}
		if len(marks) == 0 {
			return 0, nil // only kinds no grant can have
		}
		q += " AND kind IN (" + strings.Join(marks, ", ") + ")"
	}
	return s.deleteGrants(ctx, "revoking grants of a subject", q, args...)
}

// deleteGrants runs a DELETE and returns how many rows it deleted.
func (s *DB) deleteGrants(ctx context.Context, what, query string, args ...any) (int64, error) {
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return 0, s.wrap(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap(what, err)
	}
	return n, nil
}
