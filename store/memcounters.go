package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemCounters are Counters in this process's memory: for a front end run
// without a store (unit tests, tools). Nodes do not share them.
type MemCounters struct {
	mu    sync.Mutex
	m     map[string]memCounter
	swept time.Time
}

type memCounter struct {
	n    int
	ends time.Time // zero: never
}

// interface guards
var _ Counters = (*MemCounters)(nil)

// maxMemCounters bounds the keys kept; past it, expired windows go.
const maxMemCounters = 200000

// NewMemCounters returns empty counters.
func NewMemCounters() *MemCounters { return &MemCounters{m: map[string]memCounter{}} }

// ApplyCounters implements Counters.
func (c *MemCounters) ApplyCounters(_ context.Context, now time.Time, ops []CounterOp) ([]CounterResult, error) {
	if err := CheckCounterOps(ops); err != nil {
		return nil, fmt.Errorf("counters: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > maxMemCounters || now.Sub(c.swept) > time.Minute {
		for k, e := range c.m {
			if !e.ends.IsZero() && !now.Before(e.ends) {
				delete(c.m, k)
			}
		}
		c.swept = now
	}
	out := make([]CounterResult, len(ops))
	for i, op := range ops {
		if op.IfTaken && !out[i-1].Taken {
			out[i].Skipped = true
			continue
		}
		e, ok := c.m[op.Key]
		if ok && !e.ends.IsZero() && !now.Before(e.ends) {
			e, ok = memCounter{}, false
		}
		switch op.Kind {
		case CounterTake:
			if !ok {
				e = memCounter{}
				if op.Window > 0 {
					e.ends = now.Add(op.Window)
				}
			}
			if e.n < op.Max {
				e.n++
				out[i].Taken = true
			}
			c.m[op.Key] = e
		case CounterRefund:
			if ok && e.n > 0 {
				e.n = min(e.n, op.Max) - 1
				c.m[op.Key] = e
			}
		case CounterReset:
			delete(c.m, op.Key)
			continue
		case CounterPeek:
		}
		if ok || op.Kind == CounterTake {
			out[i].Count, out[i].Ends = e.n, e.ends
			if op.Max > 0 && out[i].Count > op.Max {
				out[i].Count = op.Max
			}
		}
	}
	return out, nil
}
