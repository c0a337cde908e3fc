// Package postgres is the storage backend for several bridge nodes sharing
// one PostgreSQL database (pgx). Migrations run on start (or with
// `bridge migrate`) inside one transaction holding an advisory lock, so
// nodes starting at once apply each version exactly once. Read-modify-write
// calls lock the rows they change (SELECT ... FOR UPDATE).
package postgres
