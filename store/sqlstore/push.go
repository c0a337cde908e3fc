package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bridge-idp/bridge/store"
)

var challengeColumns = columns("id", "user_name", "app_id", "app_name", "channel", "client_ip", "user_agent", "location",
	"number", "signed", "hash", "state", "created_at", "expires_at", "purge_at", "closed_at", "device_id", "reason", "station")

func scanChallenge(sc scanner) (store.Challenge, error) {
	var (
		c                                 store.Challenge
		state                             string
		created, expires, purge, closedAt int64
	)
	err := sc.Scan(&c.ID, &c.User, &c.AppID, &c.AppName, &c.Channel, &c.ClientIP, &c.UserAgent, &c.Location,
		&c.Number, &c.Signed, &c.Hash, &state, &created, &expires, &purge, &closedAt, &c.DeviceID, &c.Reason, &c.Station)
	c.State = store.ChallengeState(state)
	c.CreatedAt, c.ExpiresAt, c.PurgeAt, c.ClosedAt = fromMicro(created), fromMicro(expires), fromMicro(purge), fromMicro(closedAt)
	return c, err
}

// queryChallenges runs a query returning challengeColumns.
func (s *DB) queryChallenges(ctx context.Context, q querier, what, query string, args ...any) ([]store.Challenge, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(what, err)
	}
	defer rows.Close()
	var out []store.Challenge
	for rows.Next() {
		c, err := scanChallenge(rows)
		if err != nil {
			return nil, s.wrap(what, err)
		}
		out = append(out, c)
	}
	return out, s.wrap(what, rows.Err())
}

// checkChallenge enforces what every stored challenge meets and returns c
// as it will be stored (pending, times to the microsecond, in UTC).
func checkChallenge(c store.Challenge) (store.Challenge, error) {
	switch {
	case c.ID == "" || c.User == "":
		return c, fmt.Errorf("%w: challenge without id or user", store.ErrInvalid)
	case c.State != store.ChallengePending && c.State != "":
		return c, fmt.Errorf("%w: challenge %q: a new challenge is pending, not %q", store.ErrInvalid, c.ID, c.State)
	case c.CreatedAt.IsZero() || c.ExpiresAt.IsZero() || c.PurgeAt.IsZero():
		return c, fmt.Errorf("%w: challenge %q: creation, expiry and purge times are required", store.ErrInvalid, c.ID)
	case c.PurgeAt.Before(c.ExpiresAt):
		return c, fmt.Errorf("%w: challenge %q: purged before it expires", store.ErrInvalid, c.ID)
	}
	c.State = store.ChallengePending
	c.CreatedAt, c.ExpiresAt, c.PurgeAt = fromMicro(micro(c.CreatedAt)), fromMicro(micro(c.ExpiresAt)), fromMicro(micro(c.PurgeAt))
	c.ClosedAt, c.DeviceID, c.Reason = time.Time{}, "", ""
	return c, nil
}

// createAttempts bounds CreateChallenge's retries. Each retry follows an
// insert that lost the one-pending index to another caller's committed
// challenge, so every retry means another caller succeeded: with n
// callers creating for one user at once, none retries more than n-1 times.
const createAttempts = 32

// errPendingRace is an insert that lost the one-pending index to a
// concurrent transaction; the whole transaction is tried again.
var errPendingRace = errors.New("another node made a pending challenge for the user at the same time")

// CreateChallenge implements store.PushState: one transaction closes the
// user's expired pending challenge, reads the live one (locked), lets join
// decide and inserts. The partial unique index on pending challenges keeps
// it to one per user across nodes: an insert that loses to a concurrent one
// retries, and join is then asked about the winner.
func (s *DB) CreateChallenge(ctx context.Context, c store.Challenge, now, closedSince time.Time, join func(store.Challenge) bool) (store.Challenge, bool, []store.Challenge, error) {
	c, err := checkChallenge(c)
	if err != nil {
		return c, false, nil, err
	}
	for attempt := 1; ; attempt++ {
		var (
			got    store.Challenge
			joined bool
			closed []store.Challenge
		)
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var err error
			closed, err = s.closePending(ctx, tx, c.User, "AND expires_at <= $2", now, store.ChallengeExpired, "expired")
			if err != nil {
				return err
			}
			pending, err := s.queryChallenges(ctx, tx, "reading the pending challenge",
				"SELECT "+challengeColumns+" FROM push_challenges WHERE user_name = $1 AND state = 'pending'"+s.d.ForUpdate, c.User)
			if err != nil {
				return err
			}
			if len(pending) > 0 {
				if join(pending[0]) {
					got, joined = pending[0], true
					return nil
				}
				sup, err := s.closePending(ctx, tx, c.User, "", now, store.ChallengeSuperseded, "superseded")
				if err != nil {
					return err
				}
				closed = append(closed, sup...)
			} else if !closedSince.IsZero() {
				// Read after the locking read above: a close that raced it
				// has committed by now, so the closed challenge is seen here.
				recent, err := s.queryChallenges(ctx, tx, "reading recently closed challenges",
					"SELECT "+challengeColumns+" FROM push_challenges WHERE user_name = $1 AND state <> 'pending' AND closed_at >= $2 ORDER BY created_at DESC, id DESC",
					c.User, micro(closedSince))
				if err != nil {
					return err
				}
				for _, o := range recent {
					if join(o) {
						got, joined = o, true
						return nil
					}
				}
			}
			return s.insertChallenge(ctx, tx, c)
		})
		switch {
		case err == nil:
			if !joined {
				got = c
			}
			return got, joined, closed, nil
		case errors.Is(err, errPendingRace) && attempt < createAttempts:
			continue
		case errors.Is(err, errPendingRace):
			return c, false, nil, fmt.Errorf("creating challenge %q for %q: gave up after %d attempts: %w", c.ID, c.User, attempt, store.ErrConflict)
		default:
			return c, false, nil, err
		}
	}
}

// RecentChallenges implements store.PushState.
func (s *DB) RecentChallenges(ctx context.Context, user string, since time.Time) ([]store.Challenge, error) {
	return s.queryChallenges(ctx, s.db, fmt.Sprintf("listing the recent challenges of %q", user),
		"SELECT "+challengeColumns+" FROM push_challenges WHERE user_name = $1 AND created_at >= $2 ORDER BY created_at DESC, id DESC",
		user, micro(since))
}

// closePending closes the user's pending challenge, if cond (with $2 = now)
// holds, as state for reason.
func (s *DB) closePending(ctx context.Context, tx *sql.Tx, user, cond string, now time.Time, state store.ChallengeState, reason string) ([]store.Challenge, error) {
	return s.queryChallenges(ctx, tx, fmt.Sprintf("closing the pending challenge of %q", user),
		`UPDATE push_challenges SET state = $3, reason = $4, closed_at = $2
	WHERE user_name = $1 AND state = 'pending' `+cond+` RETURNING `+challengeColumns,
		user, micro(now), string(state), reason)
}

// insertChallenge inserts c, or returns errPendingRace if the user's pending
// slot was taken by a concurrent transaction. ON CONFLICT DO NOTHING keeps
// the transaction usable (PostgreSQL aborts it on a failed insert), so a
// duplicate id can be told from a lost race.
func (s *DB) insertChallenge(ctx context.Context, tx *sql.Tx, c store.Challenge) error {
	res, err := tx.ExecContext(ctx, "INSERT INTO push_challenges ("+challengeColumns+`)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT DO NOTHING`,
		c.ID, c.User, c.AppID, c.AppName, c.Channel, c.ClientIP, c.UserAgent, c.Location, c.Number, c.Signed, c.Hash,
		string(c.State), micro(c.CreatedAt), micro(c.ExpiresAt), micro(c.PurgeAt), micro(c.ClosedAt), c.DeviceID, c.Reason, c.Station)
	if err != nil {
		return s.wrap(fmt.Sprintf("creating challenge %q", c.ID), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(fmt.Sprintf("creating challenge %q", c.ID), err)
	}
	if n == 1 {
		return nil
	}
	var exists int
	err = tx.QueryRowContext(ctx, "SELECT 1 FROM push_challenges WHERE id = $1", c.ID).Scan(&exists)
	switch {
	case err == nil:
		return fmt.Errorf("creating challenge %q: %w", c.ID, store.ErrConflict)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("creating challenge %q for %q: %w", c.ID, c.User, errPendingRace)
	default:
		return s.wrap(fmt.Sprintf("creating challenge %q", c.ID), err)
	}
}

// GetChallenge implements store.PushState.
func (s *DB) GetChallenge(ctx context.Context, id string) (store.Challenge, error) {
	c, err := scanChallenge(s.queryRow(ctx, "SELECT "+challengeColumns+" FROM push_challenges WHERE id = $1", id))
	return c, s.wrap(fmt.Sprintf("challenge %q", id), err)
}

// PendingChallenges implements store.PushState.
func (s *DB) PendingChallenges(ctx context.Context, user string, now time.Time) ([]store.Challenge, error) {
	return s.queryChallenges(ctx, s.db, "listing pending challenges",
		"SELECT "+challengeColumns+" FROM push_challenges WHERE user_name = $1 AND state = 'pending' AND expires_at > $2 ORDER BY created_at, id"+s.d.Collate,
		user, micro(now))
}

// CloseChallenge implements store.PushState with one conditional UPDATE:
// of concurrent closes, only the one that still finds the row pending
// changes it. The expiry rule is decided in the same statement.
func (s *DB) CloseChallenge(ctx context.Context, id string, how store.ChallengeClose, now time.Time) (store.Challenge, error) {
	if !how.State.Closed() {
		return store.Challenge{}, fmt.Errorf("%w: challenge %q: closing into %q, not a final state", store.ErrInvalid, id, how.State)
	}
	// $5 = 1 closes as asked even past the expiry.
	cs, err := s.queryChallenges(ctx, s.db, fmt.Sprintf("closing challenge %q", id),
		`UPDATE push_challenges SET
	state     = CASE WHEN $5 = 0 AND expires_at <= $4 THEN 'expired' ELSE $2 END,
	device_id = CASE WHEN $5 = 0 AND expires_at <= $4 THEN '' ELSE $3 END,
	reason    = CASE WHEN $5 = 0 AND expires_at <= $4 THEN 'expired' ELSE $6 END,
	closed_at = $4
	WHERE id = $1 AND state = 'pending' RETURNING `+challengeColumns,
		id, string(how.State), how.DeviceID, micro(now), boolInt(how.AllowExpired), how.Reason)
	if err != nil {
		return store.Challenge{}, err
	}
	if len(cs) == 1 {
		c := cs[0]
		// The same comparison as the UPDATE's, in stored microseconds.
		if !how.AllowExpired && micro(now) >= micro(c.ExpiresAt) {
			return c, fmt.Errorf("challenge %q: %w", id, store.ErrExpired)
		}
		return c, nil
	}
	c, err := s.GetChallenge(ctx, id)
	if err != nil {
		return c, err
	}
	return c, fmt.Errorf("challenge %q is already %s: %w", id, c.State, store.ErrUsed)
}

// ExpireChallenges implements store.PushState. The row condition is checked
// again by the UPDATE, so janitors on several nodes close each challenge once.
func (s *DB) ExpireChallenges(ctx context.Context, now time.Time, limit int) ([]store.Challenge, error) {
	if limit <= 0 {
		limit = 100
	}
	cs, err := s.queryChallenges(ctx, s.db, "expiring challenges",
		`UPDATE push_challenges SET state = 'expired', reason = 'expired', closed_at = $1
	WHERE state = 'pending' AND expires_at <= $1 AND id IN (
		SELECT id FROM push_challenges WHERE state = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2)
	RETURNING `+challengeColumns, micro(now), limit)
	slices.SortFunc(cs, func(a, b store.Challenge) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return cs, err
}

// CountChallenges implements store.PushState.
func (s *DB) CountChallenges(ctx context.Context, user string, since time.Time) (int, error) {
	var n int
	err := s.queryRow(ctx, "SELECT COUNT(*) FROM push_challenges WHERE user_name = $1 AND created_at >= $2", user, micro(since)).Scan(&n)
	return n, s.wrap(fmt.Sprintf("counting challenges of %q", user), err)
}

var limitColumns = columns("user_name", "failures", "next_at", "locked_until", "lock_reason", "updated_at")

func scanLimit(sc scanner) (store.PushLimit, error) {
	var (
		l                    store.PushLimit
		next, locked, update int64
	)
	err := sc.Scan(&l.User, &l.Failures, &next, &locked, &l.LockReason, &update)
	l.NextAt, l.LockedUntil, l.UpdatedAt = fromMicro(next), fromMicro(locked), fromMicro(update)
	return l, err
}

// GetPushLimit implements store.PushLimits.
func (s *DB) GetPushLimit(ctx context.Context, user string) (store.PushLimit, error) {
	l, err := scanLimit(s.queryRow(ctx, "SELECT "+limitColumns+" FROM push_limits WHERE user_name = $1", user))
	if errors.Is(err, sql.ErrNoRows) {
		return store.PushLimit{User: user}, nil
	}
	return l, s.wrap(fmt.Sprintf("push limit of %q", user), err)
}

// UpdatePushLimit implements store.PushLimits. A missing row is inserted
// (empty) and then locked like an existing one, so two nodes updating a
// new limit at once both see each other's write.
func (s *DB) UpdatePushLimit(ctx context.Context, user string, fn func(store.PushLimit) (store.PushLimit, error)) (store.PushLimit, error) {
	if user == "" {
		return store.PushLimit{}, fmt.Errorf("%w: push limit without user", store.ErrInvalid)
	}
	what := fmt.Sprintf("push limit of %q", user)
	var updated store.PushLimit
	err := s.tx(ctx, func(tx *sql.Tx) error {
		sel := "SELECT " + limitColumns + " FROM push_limits WHERE user_name = $1" + s.d.ForUpdate
		old, err := scanLimit(tx.QueryRowContext(ctx, sel, user))
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := tx.ExecContext(ctx, "INSERT INTO push_limits (user_name) VALUES ($1) ON CONFLICT (user_name) DO NOTHING", user); err != nil {
				return s.wrap(what, err)
			}
			old, err = scanLimit(tx.QueryRowContext(ctx, sel, user))
		}
		if err != nil {
			return s.wrap(what, err)
		}
		nl, err := fn(old)
		if err != nil {
			return err
		}
		if nl.User != user {
			return fmt.Errorf("%w: %s cannot move to %q", store.ErrInvalid, what, nl.User)
		}
		if nl.Failures < 0 {
			return fmt.Errorf("%w: %s: negative failure count", store.ErrInvalid, what)
		}
		_, err = tx.ExecContext(ctx, "UPDATE push_limits SET failures = $1, next_at = $2, locked_until = $3, lock_reason = $4, updated_at = $5 WHERE user_name = $6",
			nl.Failures, micro(nl.NextAt), micro(nl.LockedUntil), nl.LockReason, micro(nl.UpdatedAt), user)
		if err != nil {
			return s.wrap("updating "+what, err)
		}
		updated = nl
		return nil
	})
	return updated, err
}
