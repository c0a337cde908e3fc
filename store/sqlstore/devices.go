package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/bridge-idp/bridge/store"
)

var deviceColumns = columns("id", "user_name", "name", "platform", "key_alg", "public_jwk", "push_provider", "push_token",
	"push_token_stale", "app_version", "posture", "status", "created_at", "last_seen_at", "revoked_at", "kind", "webauthn")

func scanDevice(sc scanner) (store.Device, error) {
	var (
		d                        store.Device
		stale                    int
		status                   string
		created, seen, revokedAt int64
		wa                       []byte
	)
	err := sc.Scan(&d.ID, &d.User, &d.Name, &d.Platform, &d.KeyAlg, &d.PublicJWK, &d.PushProvider, &d.PushToken,
		&stale, &d.AppVersion, &d.Posture, &status, &created, &seen, &revokedAt, &d.Kind, &wa)
	if err == nil && len(wa) > 0 {
		d.WebAuthn = new(store.WebAuthnCredential)
		if jerr := json.Unmarshal(wa, d.WebAuthn); jerr != nil {
			err = fmt.Errorf("device %q: stored passkey: %w", d.ID, jerr)
		}
	}
	d.PushTokenStale = stale != 0
	d.Status = store.DeviceStatus(status)
	d.CreatedAt, d.LastSeenAt, d.RevokedAt = fromMicro(created), fromMicro(seen), fromMicro(revokedAt)
	return d, err
}

func checkDevice(d store.Device) error {
	switch {
	case d.ID == "":
		return fmt.Errorf("%w: device without id", store.ErrInvalid)
	case d.User == "":
		return fmt.Errorf("%w: device %q without user", store.ErrInvalid, d.ID)
	case len(d.PublicJWK) == 0:
		return fmt.Errorf("%w: device %q without public key", store.ErrInvalid, d.ID)
	}
	switch d.Status {
	case store.DeviceActive, store.DeviceRevoked:
	default:
		return fmt.Errorf("%w: device %q: unknown status %q", store.ErrInvalid, d.ID, d.Status)
	}
	switch {
	case d.Kind == store.DeviceKindJWS && d.WebAuthn != nil:
		return fmt.Errorf("%w: device %q: a passkey on a device that answers with JWS", store.ErrInvalid, d.ID)
	case d.Kind == store.DeviceKindWebAuthn && (d.WebAuthn == nil || len(d.WebAuthn.CredentialID) == 0 || len(d.WebAuthn.PublicKey) == 0):
		return fmt.Errorf("%w: device %q: a webauthn device without its passkey", store.ErrInvalid, d.ID)
	case d.Kind != store.DeviceKindJWS && d.Kind != store.DeviceKindWebAuthn:
		return fmt.Errorf("%w: device %q: unknown kind %q", store.ErrInvalid, d.ID, d.Kind)
	}
	return nil
}

// encodeWebAuthn is the webauthn column: the passkey as JSON, NULL for none.
func encodeWebAuthn(c *store.WebAuthnCredential) ([]byte, error) {
	if c == nil {
		return nil, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding passkey: %w", err)
	}
	return b, nil
}

// CreateDevice implements store.Devices.
func (s *DB) CreateDevice(ctx context.Context, d store.Device) error {
	return s.insertDevice(ctx, s.db, d)
}

// insertDevice checks and inserts d with ex (the database or a transaction).
func (s *DB) insertDevice(ctx context.Context, ex execer, d store.Device) error {
	if err := checkDevice(d); err != nil {
		return err
	}
	wa, err := encodeWebAuthn(d.WebAuthn)
	if err != nil {
		return err
	}
	_, err = ex.ExecContext(ctx, "INSERT INTO devices ("+deviceColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
		d.ID, d.User, d.Name, d.Platform, d.KeyAlg, d.PublicJWK, d.PushProvider, d.PushToken, boolInt(d.PushTokenStale),
		d.AppVersion, d.Posture, string(d.Status), micro(d.CreatedAt), micro(d.LastSeenAt), micro(d.RevokedAt), d.Kind, wa)
	return s.wrap(fmt.Sprintf("creating device %q", d.ID), err)
}

// GetDevice implements store.Devices.
func (s *DB) GetDevice(ctx context.Context, id string) (store.Device, error) {
	d, err := scanDevice(s.queryRow(ctx, "SELECT "+deviceColumns+" FROM devices WHERE id = $1", id))
	return d, s.wrap(fmt.Sprintf("device %q", id), err)
}

// ListDevices implements store.Devices.
func (s *DB) ListDevices(ctx context.Context, user string) ([]store.Device, error) {
	rows, err := s.query(ctx, "SELECT "+deviceColumns+" FROM devices WHERE user_name = $1 ORDER BY created_at, id"+s.d.Collate, user)
	if err != nil {
		return nil, s.wrap("listing devices", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, s.wrap("listing devices", err)
		}
		out = append(out, d)
	}
	return out, s.wrap("listing devices", rows.Err())
}

// UpdateDevice implements store.Devices.
func (s *DB) UpdateDevice(ctx context.Context, id string, fn func(store.Device) (store.Device, error)) (store.Device, error) {
	var updated store.Device
	err := s.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanDevice(tx.QueryRowContext(ctx, "SELECT "+deviceColumns+" FROM devices WHERE id = $1"+s.d.ForUpdate, id))
		if err != nil {
			return s.wrap(fmt.Sprintf("device %q", id), err)
		}
		nd, err := fn(old)
		if err != nil {
			return err
		}
		if nd.ID != old.ID || nd.User != old.User {
			return fmt.Errorf("%w: device %q: id and user cannot change", store.ErrInvalid, id)
		}
		if err := checkDevice(nd); err != nil {
			return err
		}
		wa, err := encodeWebAuthn(nd.WebAuthn)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE devices SET name = $1, platform = $2, key_alg = $3, public_jwk = $4,
	push_provider = $5, push_token = $6, push_token_stale = $7, app_version = $8, posture = $9, status = $10,
	last_seen_at = $11, revoked_at = $12, kind = $13, webauthn = $14 WHERE id = $15`,
			nd.Name, nd.Platform, nd.KeyAlg, nd.PublicJWK, nd.PushProvider, nd.PushToken, boolInt(nd.PushTokenStale),
			nd.AppVersion, nd.Posture, string(nd.Status), micro(nd.LastSeenAt), micro(nd.RevokedAt), nd.Kind, wa, id)
		if err != nil {
			return s.wrap(fmt.Sprintf("updating device %q", id), err)
		}
		nd.CreatedAt = old.CreatedAt
		updated = nd
		return nil
	})
	return updated, err
}
