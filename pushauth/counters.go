package pushauth

import (
	"context"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// windowLimiter counts events per key (an address: IPv6 per /64) in fixed
// windows, in the store's counters (store.Limits), so that the cap holds
// for all nodes on the store together.
type windowLimiter struct {
	l      *store.Limits
	prefix string // keeps the limiters' keys apart
	max    int
	window time.Duration
}

func newWindowLimiter(l *store.Limits, prefix string, max int, window time.Duration) *windowLimiter {
	return &windowLimiter{l: l, prefix: prefix, max: max, window: window}
}

func (w *windowLimiter) limit(key string) store.Limit {
	return store.Limit{Key: w.prefix + ipKey(key), Max: w.max, Window: w.window}
}

// allow counts one event for key and reports whether it was within the
// cap (an event over the cap is not counted).
func (w *windowLimiter) allow(ctx context.Context, key string) (bool, error) {
	v, err := w.l.Take(ctx, w.limit(key))
	return v.OK, err
}

// check reports whether key is under the cap, without counting.
func (w *windowLimiter) check(ctx context.Context, key string) (bool, error) {
	n, err := w.l.Count(ctx, w.limit(key))
	return n < w.max, err
}

// engineLimits returns the limits the engine counts in: Deps.Limits, or
// else its own front on the store's counters (on memory when the store
// has none), which the returned function closes.
func engineLimits(d Deps) (*store.Limits, func()) {
	if d.Limits != nil {
		return d.Limits, func() {}
	}
	var c store.Counters = store.NewMemCounters()
	if sc, ok := d.Store.(store.Counters); ok {
		c = sc
	}
	l := store.NewLimits(c, d.Now, d.Logger)
	return l, l.Close
}

// ipAllowed counts a push start against its address's cap; an empty
// address is not limited here.
func (e *Engine) ipAllowed(ctx context.Context, ip string) (bool, error) {
	if ip == "" {
		return true, nil
	}
	return e.ipLimit.allow(ctx, ip)
}
