package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// countingCounters counts the calls that reach the counters.
type countingCounters struct {
	store.Counters
	calls atomic.Int64
}

func (c *countingCounters) ApplyCounters(ctx context.Context, now time.Time, ops []store.CounterOp) ([]store.CounterResult, error) {
	c.calls.Add(1)
	return c.Counters.ApplyCounters(ctx, now, ops)
}

// TestLimitsRemembersKeysOverTheLimit: once a key is at its max, takes
// are refused from memory until its window ends, without a store call;
// a refund on this node forgets it.
func TestLimitsRemembersKeysOverTheLimit(t *testing.T) {
	for _, batched := range []bool{true, false} {
		clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		now := func() time.Time { return clock }
		c := &countingCounters{Counters: store.NewMemCounters()}
		l := store.NewUnbatchedLimits(c, now, nil)
		if batched {
			l = store.NewLimits(c, now, nil)
		}
		ctx := context.Background()
		lim := store.Limit{Key: "user/alice", Max: 2, Window: time.Minute}
		for i := range 2 {
			if v, err := l.Take(ctx, lim); err != nil || !v.OK {
				t.Fatalf("batched %v: take %d = %+v, %v", batched, i+1, v, err)
			}
		}
		calls := c.calls.Load()
		for range 3 {
			v, err := l.Take(ctx, store.Limit{Key: "ip/1", Max: 10, Window: time.Minute}, lim)
			if err != nil || v.OK || v.Refused != 1 || !v.Ends.Equal(clock.Add(time.Minute)) {
				t.Fatalf("batched %v: take over max = %+v, %v; want refused by the user limit, ending in a minute", batched, v, err)
			}
		}
		if got := c.calls.Load() - calls; got != 3 {
			t.Fatalf("batched %v: %d store calls for 3 takes whose second limit is known over, want 3 (the address only)", batched, got)
		}
		if n, err := l.Count(ctx, store.Limit{Key: "ip/1", Max: 10}); err != nil || n != 3 {
			t.Fatalf("batched %v: address counted %d (%v), want 3", batched, n, err)
		}
		calls = c.calls.Load()
		if v, _ := l.Take(ctx, lim); v.OK {
			t.Fatalf("batched %v: over-limit key let through", batched)
		}
		if c.calls.Load() != calls {
			t.Fatalf("batched %v: a take of a key known over went to the store", batched)
		}
		if err := l.Refund(ctx, lim); err != nil {
			t.Fatal(err)
		}
		if v, _ := l.Take(ctx, lim); !v.OK {
			t.Fatalf("batched %v: refused after a refund", batched)
		}
		clock = clock.Add(time.Minute)
		if v, _ := l.Take(ctx, lim); !v.OK {
			t.Fatalf("batched %v: refused after the window ended", batched)
		}
		l.Close()
		if _, err := l.Take(ctx, store.Limit{Key: "k", Max: 1}); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("batched %v: take after Close: %v", batched, err)
		}
	}
}

func TestLimitsRejectsInvalid(t *testing.T) {
	l := store.NewUnbatchedLimits(store.NewMemCounters(), nil, nil)
	for _, lim := range []store.Limit{{Key: "", Max: 1}, {Key: "k", Max: 0}, {Key: "k", Max: 1, Window: -time.Second}} {
		if _, err := l.Take(context.Background(), lim); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Take(%+v) = %v, want ErrInvalid", lim, err)
		}
	}
}

func TestMemCountersFlag(t *testing.T) {
	c := store.NewMemCounters()
	now := time.Now()
	out, err := c.ApplyCounters(context.Background(), now, []store.CounterOp{{Kind: store.CounterTake, Key: "f", Max: 1}})
	if err != nil || !out[0].Taken {
		t.Fatalf("flag: %+v, %v", out, err)
	}
	out, _ = c.ApplyCounters(context.Background(), now.Add(1000*time.Hour), []store.CounterOp{{Kind: store.CounterPeek, Key: "f", Max: 1}})
	if out[0].Count != 1 {
		t.Fatalf("flag forgotten: %+v", out)
	}
}
