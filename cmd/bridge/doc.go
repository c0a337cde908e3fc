// Command bridge is the identity bridge: one binary that serves the login
// front ends and the push engine (`bridge serve`) and administers them
// (users, devices, keys, audit log). See `bridge --help`.
//
// Exit codes: 0 success, 1 failure (including a failed check such as an
// invalid config or a broken audit chain), 2 wrong usage.
package main
