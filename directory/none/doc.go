// Package none is the directory for passwordless (push-only) logins: it
// asks for no password, and Authenticate only looks the user up in another
// directory (the local store or LDAP), so who may log in and their groups
// still come from there. The second factor is then the only factor: use it
// only where that is the intended policy.
package none
