// Package directory answers the first-factor question: is this the password
// of this user, and who is the user? Each kind of directory (local users in
// the store, LDAP / Active Directory, none for passwordless logins) lives in
// a subpackage with a Config and an Open; front ends pick one by name from a
// Set. dirtest is the conformance suite every implementation passes.
package directory
