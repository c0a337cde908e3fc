package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Counters are fixed-window attempt counters shared by every node on the
// store: the limits that must hold for the bridge as a whole (wrong
// passwords, wrong codes, pushes per address) and flags that must outlive a
// restart (a RADIUS client seen sending Message-Authenticator).
//
// A key's window opens with its first counted attempt and lasts the
// window given then; an expired window counts as empty and the next take
// opens a new one. A zero window never ends (a flag). The janitor
// (DeleteExpired) removes expired windows.
type Counters interface {
	// ApplyCounters applies ops in order in one transaction and returns one
	// result per op. Front ends use it through a Limits, which batches the
	// ops of concurrent callers into one call (group commit).
	ApplyCounters(ctx context.Context, now time.Time, ops []CounterOp) ([]CounterResult, error)
}

// CounterOpKind says what a CounterOp does.
type CounterOpKind uint8

// Counter operations.
const (
	// CounterTake counts one attempt if the key is under Max in its
	// window (Taken), and otherwise counts nothing. Attempts are taken
	// before they are checked, so concurrent attempts on any number of
	// nodes cannot outrun the limit.
	CounterTake CounterOpKind = iota + 1
	// CounterRefund takes back one attempt counted in the current window
	// (one that turned out right, or failed for the store's sake).
	CounterRefund
	// CounterReset forgets the key.
	CounterReset
	// CounterPeek reads the key's count without changing it.
	CounterPeek
)

// CounterOp is one operation on one key.
type CounterOp struct {
	Kind CounterOpKind
	Key  string
	// Max is the most attempts a window takes (Take, Refund); at least 1.
	Max int
	// Window is how long a window opened by this Take lasts; 0 never ends.
	Window time.Duration
	// IfTaken skips the op (Skipped) unless the op before it in the same
	// call was a Take that was Taken: "count the user only if the address
	// was under its limit".
	IfTaken bool
}

// CounterResult is the key's state after the op.
type CounterResult struct {
	// Count is the attempts counted in the current window (at most Max).
	Count int
	// Ends is when the current window ends; zero if it never does, or if
	// there is none.
	Ends time.Time
	// Taken: a Take counted its attempt.
	Taken bool
	// Skipped: an IfTaken op was not applied.
	Skipped bool
}

// MaxCounterKey bounds a counter key, in bytes.
const MaxCounterKey = 512

// Check reports what is wrong with op, as an ErrInvalid.
func (op CounterOp) Check() error {
	switch {
	case op.Key == "" || len(op.Key) > MaxCounterKey:
		return fmt.Errorf("counter key of %d bytes: %w", len(op.Key), ErrInvalid)
	case op.Kind < CounterTake || op.Kind > CounterPeek:
		return fmt.Errorf("counter op %d: %w", op.Kind, ErrInvalid)
	case (op.Kind == CounterTake || op.Kind == CounterRefund) && op.Max < 1:
		return fmt.Errorf("counter %q: max %d: %w", op.Key, op.Max, ErrInvalid)
	case op.Window < 0:
		return fmt.Errorf("counter %q: negative window: %w", op.Key, ErrInvalid)
	}
	return nil
}

// CheckCounterOps checks a whole call.
func CheckCounterOps(ops []CounterOp) error {
	var errs []error
	for i, op := range ops {
		if err := op.Check(); err != nil {
			errs = append(errs, err)
		}
		if op.IfTaken && (i == 0 || ops[i-1].Kind != CounterTake) {
			errs = append(errs, fmt.Errorf("counter %q: IfTaken without a Take before it: %w", op.Key, ErrInvalid))
		}
	}
	return errors.Join(errs...)
}
