// Package dirtest is the conformance suite every password directory passes:
// Run(t, setup) drives the directory that setup returns through the cases a
// front end relies on (right and wrong password, unknown and disabled users,
// empty password, lookups, cancelled contexts, case-insensitive names) and
// checks the error classes with errors.Is against the directory package's
// sentinels.
package dirtest
