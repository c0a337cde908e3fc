// Package dirtest is the conformance suite every password directory passes:
// Run(t, setup) drives the directory that setup returns through the cases a
// front end relies on (right and wrong password, unknown and disabled users,
// a disabled user with a wrong password, which must not show as disabled,
// empty password, lookups, an already-cancelled context, case-insensitive
// names) and checks the error classes with errors.Is against the directory
// package's sentinels.
package dirtest
