package web

import (
	"context"
	"log/slog"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// failures counts failed sign-ins per key (an address bucket, a user
// name) in fixed windows, in the store's counters (store.Limits), so that
// web.failures_per_ip and web.failures_per_user hold for all nodes
// together. A key is refused once it reaches max in its window.
//
// The store failing is logged and answered as over the limit: the
// sign-in could not go on without the store anyway, and a limit must not
// open because its counter cannot be read.
type failures struct {
	l      *store.Limits
	prefix string
	max    int
	window time.Duration
	log    *slog.Logger
}

func (f *failures) limit(key string) store.Limit {
	return store.Limit{Key: f.prefix + key, Max: f.max, Window: f.window}
}

// take counts one attempt for key if key is under its limit, and reports
// whether it was. Attempts are counted before they are checked, so that
// parallel guesses cannot outrun the limit; a success is refunded.
func (f *failures) take(ctx context.Context, key string) bool {
	v, err := f.l.Take(ctx, f.limit(key))
	if err != nil {
		f.log.ErrorContext(ctx, "counting a sign-in attempt failed; refusing it", "err", err)
		return false
	}
	return v.OK
}

// count is key's failures in the current window (max when unknown).
func (f *failures) count(ctx context.Context, key string) int {
	n, err := f.l.Count(ctx, f.limit(key))
	if err != nil {
		f.log.ErrorContext(ctx, "reading a sign-in failure count failed", "err", err)
		return f.max
	}
	return n
}

// refund takes back one failure counted ahead of a check that succeeded.
func (f *failures) refund(ctx context.Context, key string) {
	if err := f.l.Refund(context.WithoutCancel(ctx), f.limit(key)); err != nil {
		f.log.WarnContext(ctx, "refunding a sign-in attempt failed", "err", err)
	}
}

// flowLimits returns Deps.Limits, or else a front on the store's counters
// (on memory when the store has none) that needs no closing.
func flowLimits(d Deps) *store.Limits {
	if d.Limits != nil {
		return d.Limits
	}
	var c store.Counters = store.NewMemCounters()
	if sc, ok := d.Store.(store.Counters); ok {
		c = sc
	}
	return store.NewUnbatchedLimits(c, d.Now, d.Logger)
}
