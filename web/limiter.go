package web

import (
	"sync"
	"time"
)

// limiter counts failures per key in a fixed window (this node's memory).
// A key is refused once it reaches max failures in the window.
type limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*limitEntry
	swept   time.Time
}

type limitEntry struct {
	n     int
	since time.Time
}

// maxLimiterKeys bounds the memory a flood of distinct keys can take; past
// it, expired windows and then counters below their limit are dropped.
const maxLimiterKeys = 200000

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, now: now, entries: map[string]*limitEntry{}}
}

func (l *limiter) entry(key string, create bool) *limitEntry {
	now := l.now()
	if now.Sub(l.swept) > l.window || len(l.entries) > maxLimiterKeys {
		for k, e := range l.entries {
			if now.Sub(e.since) >= l.window {
				delete(l.entries, k)
			}
		}
		// Still full (a flood of distinct keys): drop the counters that
		// block nothing yet. Keys at their limit stay, so a flood cannot
		// buy a blocked address or user fresh attempts.
		if len(l.entries) > maxLimiterKeys {
			for k, e := range l.entries {
				if e.n < l.max {
					delete(l.entries, k)
				}
			}
		}
		l.swept = now
	}
	e := l.entries[key]
	if e != nil && now.Sub(e.since) >= l.window {
		delete(l.entries, key)
		e = nil
	}
	if e == nil && create {
		e = &limitEntry{since: now}
		l.entries[key] = e
	}
	return e
}

// take counts one attempt for key if key is under its limit, and reports
// whether it was. Attempts are counted before they are checked, so that
// parallel guesses cannot outrun the limit; a success is refunded.
func (l *limiter) take(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(key, true)
	if e.n >= l.max {
		return false
	}
	e.n++
	return true
}

// count is key's failures in the current window.
func (l *limiter) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entry(key, false); e != nil {
		return e.n
	}
	return 0
}

// refund takes back one failure counted ahead of a check that succeeded.
func (l *limiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entry(key, false); e != nil && e.n > 0 {
		e.n--
	}
}
