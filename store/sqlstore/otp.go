package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bridge-idp/bridge/store"
)

var totpColumns = columns("user_name", "sealed_secret", "algorithm", "digits", "period_ms", "last_counter", "created_at")

// PutTOTP implements store.OTP.
func (s *DB) PutTOTP(ctx context.Context, t store.TOTP) error {
	if t.User == "" || len(t.SealedSecret) == 0 || t.Digits <= 0 || t.Period <= 0 {
		return fmt.Errorf("%w: incomplete TOTP token", store.ErrInvalid)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM totp WHERE user_name = $1", t.User); err != nil {
			return s.wrap("replacing TOTP token", err)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO totp ("+totpColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7)",
			t.User, t.SealedSecret, t.Algorithm, t.Digits, t.Period.Milliseconds(), t.LastCounter, micro(t.CreatedAt))
		return s.wrap("storing TOTP token", err)
	})
}

// GetTOTP implements store.OTP.
func (s *DB) GetTOTP(ctx context.Context, user string) (store.TOTP, error) {
	var (
		t                 store.TOTP
		periodMS, created int64
	)
	err := s.queryRow(ctx, "SELECT "+totpColumns+" FROM totp WHERE user_name = $1", user).
		Scan(&t.User, &t.SealedSecret, &t.Algorithm, &t.Digits, &periodMS, &t.LastCounter, &created)
	t.Period, t.CreatedAt = time.Duration(periodMS)*time.Millisecond, fromMicro(created)
	return t, s.wrap(fmt.Sprintf("TOTP token of %q", user), err)
}

// UseTOTPCounter implements store.OTP: one conditional UPDATE, so of two
// nodes checking the same code only one sees its row change.
func (s *DB) UseTOTPCounter(ctx context.Context, user string, counter int64) error {
	res, err := s.exec(ctx, "UPDATE totp SET last_counter = $1 WHERE user_name = $2 AND last_counter < $1", counter, user)
	if err != nil {
		return s.wrap("using TOTP code", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap("using TOTP code", err)
	}
	if n == 1 {
		return nil
	}
	var exists int
	err = s.queryRow(ctx, "SELECT 1 FROM totp WHERE user_name = $1", user).Scan(&exists)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("TOTP token of %q: %w", user, store.ErrNotFound)
	}
	if err != nil {
		return s.wrap("using TOTP code", err)
	}
	return fmt.Errorf("TOTP time step %d of %q: %w", counter, user, store.ErrUsed)
}

// DeleteTOTP implements store.OTP.
func (s *DB) DeleteTOTP(ctx context.Context, user string) error {
	res, err := s.exec(ctx, "DELETE FROM totp WHERE user_name = $1", user)
	if err != nil {
		return s.wrap("deleting TOTP token", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("TOTP token of %q: %w", user, store.ErrNotFound)
	}
	return nil
}

var bypassColumns = columns("id", "user_name", "hash", "created_by", "created_at", "expires_at", "used_at")

func scanBypass(sc scanner) (store.BypassCode, error) {
	var (
		c                      store.BypassCode
		created, expires, used int64
	)
	err := sc.Scan(&c.ID, &c.User, &c.Hash, &c.CreatedBy, &created, &expires, &used)
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromMicro(created), fromMicro(expires), fromMicro(used)
	return c, err
}

// CreateBypassCode implements store.OTP.
func (s *DB) CreateBypassCode(ctx context.Context, c store.BypassCode) error {
	if c.ID == "" || c.User == "" || len(c.Hash) == 0 || c.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: incomplete bypass code", store.ErrInvalid)
	}
	_, err := s.exec(ctx, "INSERT INTO bypass_codes ("+bypassColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7)",
		c.ID, c.User, c.Hash, c.CreatedBy, micro(c.CreatedAt), micro(c.ExpiresAt), micro(c.UsedAt))
	return s.wrap("creating bypass code", err)
}

// UseBypassCode implements store.OTP.
func (s *DB) UseBypassCode(ctx context.Context, id string, now time.Time) (store.BypassCode, error) {
	c, err := scanBypass(s.queryRow(ctx, "UPDATE bypass_codes SET used_at = $1 WHERE id = $2 AND used_at = 0 AND expires_at > $1 RETURNING "+bypassColumns, micro(now), id))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return c, s.wrap("using bypass code", err)
	}
	c, err = scanBypass(s.queryRow(ctx, "SELECT "+bypassColumns+" FROM bypass_codes WHERE id = $1", id))
	switch {
	case err != nil:
		return c, s.wrap(fmt.Sprintf("bypass code %q", id), err)
	case !c.UsedAt.IsZero():
		return c, fmt.Errorf("bypass code %q: %w", id, store.ErrUsed)
	default:
		return c, fmt.Errorf("bypass code %q expired: %w", id, store.ErrNotFound)
	}
}

// ListBypassCodes implements store.OTP.
func (s *DB) ListBypassCodes(ctx context.Context, user string) ([]store.BypassCode, error) {
	rows, err := s.query(ctx, "SELECT "+bypassColumns+" FROM bypass_codes WHERE user_name = $1 ORDER BY created_at, id"+s.d.Collate, user)
	if err != nil {
		return nil, s.wrap("listing bypass codes", err)
	}
	defer rows.Close()
	var out []store.BypassCode
	for rows.Next() {
		c, err := scanBypass(rows)
		if err != nil {
			return nil, s.wrap("listing bypass codes", err)
		}
		out = append(out, c)
	}
	return out, s.wrap("listing bypass codes", rows.Err())
}

// UseOnce implements store.Replay: one upsert that succeeds for a new pair
// or an expired one, and changes nothing for a live one.
func (s *DB) UseOnce(ctx context.Context, namespace, key string, now, expires time.Time) error {
	if namespace == "" || key == "" {
		return fmt.Errorf("%w: replay entry needs a namespace and a key", store.ErrInvalid)
	}
	res, err := s.exec(ctx, `INSERT INTO replay (namespace, key, expires_at) VALUES ($1, $2, $3)
	ON CONFLICT (namespace, key) DO UPDATE SET expires_at = excluded.expires_at WHERE replay.expires_at <= $4`,
		namespace, key, micro(expires), micro(now))
	if err != nil {
		return s.wrap("recording single-use value", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap("recording single-use value", err)
	}
	if n == 0 {
		return fmt.Errorf("%s value: %w", namespace, store.ErrUsed)
	}
	return nil
}

// activationKeep is how long an unused device activation is kept after
// it expired, so that a late attempt still reads as "expired", not
// "unknown". Used ones stay (with the user) as the record of an enrollment.
const activationKeep = 24 * time.Hour

// DeleteExpired implements store.Janitor. Used bypass codes are kept until
// they expire, so that a replay still reads as "used", not "unknown".
// Push challenges go at their PurgeAt; grants, used or not, at their
// ExpiresAt; counters when their window ends (never for flags).
func (s *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []struct {
		sql string
		arg time.Time
	}{
		{"DELETE FROM replay WHERE expires_at <= $1", now},
		{"DELETE FROM bypass_codes WHERE expires_at <= $1", now},
		{"DELETE FROM push_challenges WHERE purge_at <= $1", now},
		{"DELETE FROM device_activations WHERE used_at = 0 AND expires_at < $1", now.Add(-activationKeep)},
		{"DELETE FROM grants WHERE expires_at <= $1", now},
		{"DELETE FROM counters WHERE expires_at <> 0 AND expires_at <= $1", now},
	} {
		res, err := s.exec(ctx, q.sql, micro(q.arg))
		if err != nil {
			return total, s.wrap("deleting expired records", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, s.wrap("deleting expired records", err)
		}
		total += n
	}
	return total, nil
}
