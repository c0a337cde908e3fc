package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/bridge-idp/bridge/store"
)

var activationColumns = columns("id", "user_name", "secret_hash", "created_by", "created_at", "expires_at", "used_at", "device_id")

func scanActivation(sc scanner) (store.Activation, error) {
	var (
		a                      store.Activation
		created, expires, used int64
	)
	err := sc.Scan(&a.ID, &a.User, &a.SecretHash, &a.CreatedBy, &created, &expires, &used, &a.DeviceID)
	a.CreatedAt, a.ExpiresAt, a.UsedAt = fromMicro(created), fromMicro(expires), fromMicro(used)
	return a, err
}

// CreateActivation implements store.Activations.
func (s *DB) CreateActivation(ctx context.Context, a store.Activation) error {
	if a.ID == "" || a.User == "" || len(a.SecretHash) == 0 || a.CreatedAt.IsZero() || a.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: incomplete device activation", store.ErrInvalid)
	}
	if !a.UsedAt.IsZero() || a.DeviceID != "" {
		return fmt.Errorf("%w: device activation %q is created unused", store.ErrInvalid, a.ID)
	}
	_, err := s.exec(ctx, "INSERT INTO device_activations ("+activationColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		a.ID, a.User, a.SecretHash, a.CreatedBy, micro(a.CreatedAt), micro(a.ExpiresAt), 0, "")
	return s.wrap(fmt.Sprintf("creating device activation %q", a.ID), err)
}

// GetActivation implements store.Activations.
func (s *DB) GetActivation(ctx context.Context, id string) (store.Activation, error) {
	a, err := scanActivation(s.queryRow(ctx, "SELECT "+activationColumns+" FROM device_activations WHERE id = $1", id))
	return a, s.wrap(fmt.Sprintf("device activation %q", id), err)
}

// ListActivations implements store.Activations.
func (s *DB) ListActivations(ctx context.Context, user string) ([]store.Activation, error) {
	rows, err := s.query(ctx, "SELECT "+activationColumns+" FROM device_activations WHERE user_name = $1 ORDER BY created_at DESC, id"+s.d.Collate, user)
	if err != nil {
		return nil, s.wrap("listing device activations", err)
	}
	defer rows.Close()
	var out []store.Activation
	for rows.Next() {
		a, err := scanActivation(rows)
		if err != nil {
			return nil, s.wrap("listing device activations", err)
		}
		out = append(out, a)
	}
	return out, s.wrap("listing device activations", rows.Err())
}

// ActivateDevice implements store.Activations. The activation row is locked
// for the transaction, so of concurrent attempts on any number of nodes the
// first marks it used and the others then read it used. d.User may be left
// empty: it is the activation's user; any other user is refused.
func (s *DB) ActivateDevice(ctx context.Context, id string, now time.Time, check func(store.Activation) error, d store.Device) (store.Activation, error) {
	if now.IsZero() {
		return store.Activation{}, fmt.Errorf("%w: activating device activation %q without a time", store.ErrInvalid, id)
	}
	var activated store.Activation
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := scanActivation(tx.QueryRowContext(ctx, "SELECT "+activationColumns+" FROM device_activations WHERE id = $1"+s.d.ForUpdate, id))
		if err != nil {
			return s.wrap(fmt.Sprintf("device activation %q", id), err)
		}
		switch {
		case !a.UsedAt.IsZero():
			return fmt.Errorf("device activation %q: %w", id, store.ErrUsed)
		case !now.Before(a.ExpiresAt):
			return fmt.Errorf("device activation %q: %w", id, store.ErrExpired)
		}
		if err := check(a); err != nil {
			return err
		}
		if d.User == "" {
			d.User = a.User
		}
		if d.User != a.User {
			return fmt.Errorf("%w: device activation %q is for %q, not %q", store.ErrInvalid, id, a.User, d.User)
		}
		if err := s.insertDevice(ctx, tx, d); err != nil {
			return err
		}
		a.UsedAt, a.DeviceID = fromMicro(micro(now)), d.ID
		if _, err := tx.ExecContext(ctx, "UPDATE device_activations SET used_at = $1, device_id = $2 WHERE id = $3", micro(a.UsedAt), a.DeviceID, id); err != nil {
			return s.wrap(fmt.Sprintf("using device activation %q", id), err)
		}
		activated = a
		return nil
	})
	return activated, err
}
