//go:build unix

package store

import (
	"fmt"
	"os"
	"syscall"
)

// lockSpool takes the spool file for this process alone: two nodes given
// the same path would write over each other's records.
func lockSpool(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("store: audit spool %s is in use by another process (every node needs its own spool): %w", f.Name(), err)
	}
	return nil
}
