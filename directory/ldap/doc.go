// Package ldap is the directory of users in an LDAP server or Active
// Directory.
//
// Authenticate takes a connection bound as the service account from a pool,
// searches the user under user_base_dn with user_filter ({username} is the
// normalised login name, escaped), requires exactly one entry (more than
// one is logged and refused), matches disabled_filter against that entry
// (a base-scope search; a match is ErrDisabled), then binds as the user's
// DN with the password. Empty passwords are refused before any network
// traffic: an empty simple bind is an "unauthenticated bind" that servers
// answer with success. After the user bind the connection is bound as the
// service account again (or discarded) before groups are read (from the
// member_of attribute, or by a search) and the connection goes back to the
// pool. A wrong password is the server's result code 49; Active Directory's
// sub-codes for disabled, expired and locked-out accounts map to
// ErrDisabled.
//
// Unlike the local directory, an unknown user costs one search less than a
// known one (no user bind): the server's own timing is out of our hands.
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
