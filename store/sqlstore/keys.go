package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/bridge-idp/bridge/store"
)

var keyColumns = columns("id", "purpose", "algorithm", "public_der", "sealed_priv", "status", "created_at", "retired_at", "verify_until", "endorsement")

func scanKey(sc scanner) (store.SigningKey, error) {
	var (
		k                             store.SigningKey
		purpose, status               string
		created, retired, verifyUntil int64
		endorsement                   sql.NullString
	)
	err := sc.Scan(&k.ID, &purpose, &k.Algorithm, &k.PublicDER, &k.SealedPriv, &status, &created, &retired, &verifyUntil, &endorsement)
	k.Purpose, k.Status, k.Endorsement = store.KeyPurpose(purpose), store.KeyStatus(status), endorsement.String
	k.CreatedAt, k.RetiredAt, k.VerifyUntil = fromMicro(created), fromMicro(retired), fromMicro(verifyUntil)
	return k, err
}

func checkKey(k store.SigningKey) error {
	if k.ID == "" || k.Purpose == "" || k.Algorithm == "" || len(k.PublicDER) == 0 || len(k.SealedPriv) == 0 {
		return fmt.Errorf("%w: signing key %q is incomplete", store.ErrInvalid, k.ID)
	}
	if k.Status != store.KeyActive && k.Status != store.KeyRetired {
		return fmt.Errorf("%w: signing key %q: unknown status %q", store.ErrInvalid, k.ID, k.Status)
	}
	return nil
}

func (s *DB) insertKey(ctx context.Context, ex execer, k store.SigningKey) error {
	if err := checkKey(k); err != nil {
		return err
	}
	// No endorsement is NULL, not "".
	endorsement := sql.NullString{String: k.Endorsement, Valid: k.Endorsement != ""}
	_, err := ex.ExecContext(ctx, "INSERT INTO signing_keys ("+keyColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
		k.ID, string(k.Purpose), k.Algorithm, k.PublicDER, k.SealedPriv, string(k.Status), micro(k.CreatedAt), micro(k.RetiredAt), micro(k.VerifyUntil), endorsement)
	return s.wrap(fmt.Sprintf("creating %s %s key %q", k.Purpose, k.Algorithm, k.ID), err)
}

// CreateSigningKey implements store.SigningKeys. The partial unique index
// on active keys turns a second active key into store.ErrConflict.
func (s *DB) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	return s.insertKey(ctx, s.db, k)
}

// RotateSigningKey implements store.SigningKeys.
func (s *DB) RotateSigningKey(ctx context.Context, next store.SigningKey, verifyUntil time.Time) ([]store.SigningKey, error) {
	if next.Status != store.KeyActive {
		return nil, fmt.Errorf("%w: the next key must be active", store.ErrInvalid)
	}
	var retired []store.SigningKey
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE signing_keys SET status = $1, retired_at = $2, verify_until = $3
	WHERE purpose = $4 AND algorithm = $5 AND status = $6 RETURNING `+keyColumns,
			string(store.KeyRetired), micro(next.CreatedAt), micro(verifyUntil), string(next.Purpose), next.Algorithm, string(store.KeyActive))
		if err != nil {
			return s.wrap("retiring the active key", err)
		}
		for rows.Next() {
			k, err := scanKey(rows)
			if err != nil {
				rows.Close()
				return s.wrap("retiring the active key", err)
			}
			retired = append(retired, k)
		}
		if err := rows.Close(); err != nil {
			return s.wrap("retiring the active key", err)
		}
		return s.insertKey(ctx, tx, next)
	})
	return retired, err
}

// ListSigningKeys implements store.SigningKeys.
func (s *DB) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.query(ctx, "SELECT "+keyColumns+" FROM signing_keys ORDER BY created_at DESC, id"+s.d.Collate)
	if err != nil {
		return nil, s.wrap("listing signing keys", err)
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, s.wrap("listing signing keys", err)
		}
		out = append(out, k)
	}
	return out, s.wrap("listing signing keys", rows.Err())
}
