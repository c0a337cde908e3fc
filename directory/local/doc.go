// Package local is the directory of users kept in the bridge's own store.
//
// Authenticate normalises the login name, reads the user from store.Users
// and verifies the password against the user's argon2id hash (a PHC string,
// see HashPassword). An unknown user, or one without a local password, costs
// the same: the password is verified against a dummy hash made at Open with
// the configured parameters, so timing does not tell whether a name exists.
// A disabled user gets ErrDisabled only after the password was checked and
// found right. After a successful login a hash made with other parameters
// is replaced through store.Users.UpdateUser (only if it has not changed in
// the meantime).
//
// Each argon2id run allocates its hash's memory parameter, so runs share a
// memory budget of 2×GOMAXPROCS runs at the configured parameters: a login
// waits for its share as long as its context allows, and a burst of logins
// cannot exhaust memory. Hashes read from the store are parsed strictly and
// their cost parameters bounded (at most 1 GiB, 16 passes); one that asks
// for more than the whole budget runs alone, so even a tampered record can
// raise peak memory to at most the larger of the budget and 1 GiB, never a
// multiple of it.
package local
