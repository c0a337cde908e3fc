// Package sqlite is the embedded storage backend: one database file, WAL
// mode, created and migrated on first start, no cgo (modernc.org/sqlite).
// It suits a single bridge node; several nodes share PostgreSQL instead.
//
// Writers take the database's write lock at BEGIN (BEGIN IMMEDIATE) and
// wait up to BusyTimeout for it, so every read-modify-write in sqlstore is
// serialised and no update is lost.
package sqlite
