// Package ldap is the directory of users in an LDAP server or Active
// Directory.
//
// Authenticate takes a connection bound as the service account from a pool,
// searches the user under user_base_dn with user_filter ({username} is the
// normalised login name, escaped), requires exactly one entry (more than
// one is logged and refused), matches disabled_filter against that entry
// (a base-scope search), then binds as the user's DN with the password
// (asking for the ppolicy response control) and binds the connection as
// the service account again (or discards it). Empty passwords are refused
// before any network traffic: an empty simple bind is an "unauthenticated
// bind" that servers answer with success. Groups are read after the
// rebind (from the member_of attribute, or by a search) and the connection
// goes back to the pool.
//
// The same requests go out whatever the outcome, and ErrDisabled needs the
// password: it is returned only when the user bind succeeded and the entry
// matches disabled_filter, or when Active Directory answers with a sub-code
// it gives only for a right password (533 disabled, 701 expired). A
// refused bind is otherwise ErrInvalidCredentials, with the disabled-filter
// match, AD's other sub-codes (530, 531, 532, 773, 775) and the ppolicy
// control's error as audit detail only: slapd answers a locked account the
// same way (result 49) whether the password is right or wrong, so a locked
// OpenLDAP user with the right password is "invalid credentials" too.
// Lookup, which has no password, returns ErrDisabled on a disabled_filter
// match. The openldap preset's disabled_filter is the permanent lock
// (pwdAccountLockedTime=000001010000Z); temporary ppolicy lock-outs are
// slapd's to enforce and to end (at the first successful bind after
// pwdLockoutDuration, which the bridge always sends).
//
// The username in the identity (and {username} in the group filter) is the
// value of the username attribute that normalises to the login name, or
// the login name when none does: never another value of a multi-valued
// attribute.
//
// An unknown user costs the same requests as a wrong password: a decoy
// disabled check and a decoy bind against a DN that does not exist, then
// the service rebind. Known limitation: that equalises the request
// sequence, not the server's work. A wrong password on a real entry costs
// the server a password hash verification (expensive with salted SHA-2
// iterations, PBKDF2, Argon2 or AD's), a bind to a DN that does not exist
// costs none; on servers that hash slowly an unknown user still answers
// measurably faster, and the bridge cannot hide that.
//
// Connections: ldaps://, or ldap:// with StartTLS, verified against ca_file
// or the system roots; plain ldap:// needs allow_insecure_plaintext and is
// logged as a warning, as is insecure_skip_verify. At most max_connections
// are open at once and up to pool_size idle ones are kept; a caller beyond
// the limit waits as long as its context allows. Every network step (dial,
// TLS, bind, search) is bounded by timeout and by the caller's context:
// either ends it by closing the connection. A pooled connection found broken
// is discarded and the request retried once on a new one, unless the user
// bind was already sent. Network failures, timeouts and a refused service
// account are ErrUnavailable, naming the server and the step that failed.
//
// slapdtest starts a throwaway OpenLDAP server for tests.
package ldap
