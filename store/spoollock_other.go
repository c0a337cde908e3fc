//go:build !unix

package store

import "os"

// lockSpool: this platform's files are not locked; every node must be
// given its own spool path.
func lockSpool(*os.File) error { return nil }
