// Package sqlstore is the SQL both storage backends share. The sqlite and
// postgres packages each supply a *sql.DB and a Dialect (column types,
// row locking, how to recognise a unique-key violation, how to serialise
// migrations); everything else — the schema's meaning, every query, every
// transaction — is written once here, so the two backends cannot drift apart.
//
// Times are stored as Unix microseconds (0 is the zero time), lists and maps
// as JSON text, booleans as 0/1: plain types both databases hold the same way.
package sqlstore
