package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migrations are the schema versions, in order; migration i+1 is version
// i+1. Append new versions; never edit one that has shipped. {{blob}} is
// replaced by the dialect's byte column type, {{without_rowid}} by
// Dialect.WithoutRowID.
var migrations = []string{
	// 1: users, devices, keys, audit log, second factors, replay cache.
	`
CREATE TABLE users (
	name          TEXT PRIMARY KEY,
	display_name  TEXT NOT NULL DEFAULT '',
	email         TEXT NOT NULL DEFAULT '',
	groups_json   TEXT NOT NULL DEFAULT '[]',
	status        TEXT NOT NULL,
	password_hash TEXT NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);

CREATE TABLE devices (
	id               TEXT PRIMARY KEY,
	user_name        TEXT NOT NULL,
	name             TEXT NOT NULL DEFAULT '',
	platform         TEXT NOT NULL DEFAULT '',
	key_alg          TEXT NOT NULL,
	public_jwk       {{blob}} NOT NULL,
	push_provider    TEXT NOT NULL DEFAULT '',
	push_token       TEXT NOT NULL DEFAULT '',
	push_token_stale SMALLINT NOT NULL DEFAULT 0,
	app_version      TEXT NOT NULL DEFAULT '',
	posture          {{blob}},
	status           TEXT NOT NULL,
	created_at       BIGINT NOT NULL,
	last_seen_at     BIGINT NOT NULL DEFAULT 0,
	revoked_at       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX devices_by_user ON devices (user_name);

CREATE TABLE signing_keys (
	id           TEXT PRIMARY KEY,
	purpose      TEXT NOT NULL,
	algorithm    TEXT NOT NULL,
	public_der   {{blob}} NOT NULL,
	sealed_priv  {{blob}} NOT NULL,
	status       TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	retired_at   BIGINT NOT NULL DEFAULT 0,
	verify_until BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (purpose, algorithm) WHERE status = 'active';

CREATE TABLE audit_events (
	seq          BIGINT PRIMARY KEY,
	occurred_at  BIGINT NOT NULL,
	actor        TEXT NOT NULL,
	action       TEXT NOT NULL,
	subject      TEXT NOT NULL,
	channel      TEXT NOT NULL,
	client_ip    TEXT NOT NULL,
	result       TEXT NOT NULL,
	reason       TEXT NOT NULL,
	details_json TEXT NOT NULL,
	prev_hash    {{blob}} NOT NULL,
	hash         {{blob}} NOT NULL
);

CREATE TABLE audit_head (
	id   SMALLINT PRIMARY KEY CHECK (id = 1),
	seq  BIGINT NOT NULL,
	hash {{blob}}
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, NULL);

CREATE TABLE totp (
	user_name     TEXT PRIMARY KEY,
	sealed_secret {{blob}} NOT NULL,
	algorithm     TEXT NOT NULL,
	digits        INTEGER NOT NULL,
	period_ms     BIGINT NOT NULL,
	last_counter  BIGINT NOT NULL,
	created_at    BIGINT NOT NULL
);

CREATE TABLE bypass_codes (
	id         TEXT PRIMARY KEY,
	user_name  TEXT NOT NULL,
	hash       {{blob}} NOT NULL,
	created_by TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX bypass_codes_by_user ON bypass_codes (user_name);
CREATE INDEX bypass_codes_by_expiry ON bypass_codes (expires_at);

CREATE TABLE replay (
	namespace  TEXT NOT NULL,
	key        TEXT NOT NULL,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (namespace, key)
);
CREATE INDEX replay_by_expiry ON replay (expires_at);
`,
	// 2: push challenges, push throttles, device activations.
	`
CREATE TABLE push_challenges (
	id         TEXT PRIMARY KEY,
	user_name  TEXT NOT NULL,
	app_id     TEXT NOT NULL DEFAULT '',
	app_name   TEXT NOT NULL DEFAULT '',
	channel    TEXT NOT NULL DEFAULT '',
	client_ip  TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	location   TEXT NOT NULL DEFAULT '',
	number     TEXT NOT NULL DEFAULT '',
	signed     TEXT NOT NULL DEFAULT '',
	hash       {{blob}},
	state      TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	purge_at   BIGINT NOT NULL,
	closed_at  BIGINT NOT NULL DEFAULT 0,
	device_id  TEXT NOT NULL DEFAULT '',
	reason     TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX push_challenges_one_pending ON push_challenges (user_name) WHERE state = 'pending';
CREATE INDEX push_challenges_by_user ON push_challenges (user_name, created_at);
CREATE INDEX push_challenges_by_expiry ON push_challenges (state, expires_at);
CREATE INDEX push_challenges_by_purge ON push_challenges (purge_at);

CREATE TABLE push_limits (
	user_name    TEXT PRIMARY KEY,
	failures     INTEGER NOT NULL DEFAULT 0,
	next_at      BIGINT NOT NULL DEFAULT 0,
	locked_until BIGINT NOT NULL DEFAULT 0,
	lock_reason  TEXT NOT NULL DEFAULT '',
	updated_at   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE device_activations (
	id          TEXT PRIMARY KEY,
	user_name   TEXT NOT NULL,
	secret_hash {{blob}} NOT NULL,
	created_by  TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	used_at     BIGINT NOT NULL DEFAULT 0,
	device_id   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX device_activations_by_user ON device_activations (user_name);
CREATE INDEX device_activations_by_expiry ON device_activations (expires_at);
`,
	// 3: push-key endorsements: the JWS by the retired key that names this
	// row's key as its successor (NULL when there is none).
	`
ALTER TABLE signing_keys ADD COLUMN endorsement TEXT;
`,
	// 4: the station a push challenge's login comes from (joins are per
	// station).
	`
ALTER TABLE push_challenges ADD COLUMN station TEXT NOT NULL DEFAULT '';
`,
	// 5: grants: sign-ins in progress, browser sessions, OIDC and SAML
	// requests, codes and tokens (store.Grants). used_at 0 is unused.
	`
CREATE TABLE grants (
	kind       TEXT NOT NULL,
	id         TEXT NOT NULL,
	family     TEXT NOT NULL DEFAULT '',
	subject    TEXT NOT NULL DEFAULT '',
	data       {{blob}},
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, id)
);
CREATE INDEX grants_by_family ON grants (family);
CREATE INDEX grants_by_subject ON grants (subject);
CREATE INDEX grants_by_expiry ON grants (expires_at);
`,
	// 6: attempt counters shared by the nodes (store.Counters): n attempts
	// in the window ending at expires_at (0: never, a flag); lim is the max
	// of the last take (it lets one statement take many keys). Written on
	// every failed login, so kept to one B-tree: clustered on the key
	// ({{without_rowid}}), and no index on expires_at (the janitor scans
	// the table once a sweep instead).
	`
CREATE TABLE counters (
	key        TEXT PRIMARY KEY,
	n          INTEGER NOT NULL,
	expires_at BIGINT NOT NULL,
	lim        INTEGER NOT NULL DEFAULT 0
){{without_rowid}};
`,
	// 7: how a device answers (kind: '' JWS, 'webauthn' a passkey) and its
	// passkey as JSON (store.WebAuthnCredential; NULL for JWS devices).
	// One column, not one per field: it is read and written whole, with
	// the device row locked (the sign counter changes inside UpdateDevice).
	`
ALTER TABLE devices ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN webauthn {{blob}};
`,
	// 8: a user's audit events, newest first (the account page's recent
	// sign-ins: ListAuditBySubject).
	`
CREATE INDEX audit_events_by_subject ON audit_events (subject, seq);
`,
}

// SchemaVersion is the schema version this build creates and understands.
func SchemaVersion() int { return len(migrations) }

// Migrate brings the schema up to SchemaVersion in one transaction. Nodes
// starting at once are serialised (Dialect.MigrationLock, or the database's
// write lock), so each version is applied exactly once. A database whose
// schema is newer than this build is refused rather than touched.
func (s *DB) Migrate(ctx context.Context) (applied int, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if s.d.MigrationLock != "" {
			if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
				return fmt.Errorf("%s: taking the migration lock: %w", s.d.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`); err != nil {
			return fmt.Errorf("%s: creating schema_migrations: %w", s.d.Name, err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return fmt.Errorf("%s: reading schema version: %w", s.d.Name, err)
		}
		if current > len(migrations) {
			return fmt.Errorf("%s: the database schema is version %d but this bridge knows versions up to %d: run a newer bridge", s.d.Name, current, len(migrations))
		}
		for v := current + 1; v <= len(migrations); v++ {
			script := strings.ReplaceAll(migrations[v-1], "{{blob}}", s.d.Blob)
			script = strings.ReplaceAll(script, "{{without_rowid}}", s.d.WithoutRowID)
			for _, stmt := range splitStatements(script) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: migration %d: %w", s.d.Name, v, err)
				}
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", v, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("%s: recording migration %d: %w", s.d.Name, v, err)
			}
			applied++
		}
		return nil
	})
	if err == nil && applied > 0 {
		s.logger.Info("storage schema migrated", "backend", s.d.Name, "applied", applied, "version", len(migrations))
	}
	return applied, err
}

// splitStatements splits a migration script on semicolons at line ends.
// Migrations hold no semicolons inside statements.
func splitStatements(script string) []string {
	var out []string
	for _, part := range strings.Split(script, ";\n") {
		if p := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(part), ";")); p != "" {
			out = append(out, p)
		}
	}
	return out
}
