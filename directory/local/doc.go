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
// Each argon2id run allocates MemoryKiB of memory, so the number of runs at
// once is capped by a semaphore (2×GOMAXPROCS); a login waits for a slot as
// long as its context allows, and a burst of logins cannot exhaust memory.
// Hashes read from the store are parsed strictly and their cost parameters
// are bounded, so a tampered record cannot make one verification run for
// minutes or allocate gigabytes.
package local
