package radius

import (
	"strings"
	"sync"
	"time"

	"github.com/bridge-idp/bridge/directory"
)

// holds counts the held requests waiting on each push challenge, so that
// the one that gives up last cancels it: a NAS that starts over with a new
// request joins the pending challenge, and the first request's timeout must
// not end it under the second.
type holds struct {
	mu sync.Mutex
	n  map[string]int
}

func newHolds() *holds { return &holds{n: map[string]int{}} }

// add records a waiter on id; the returned function removes it and reports
// whether it was the last.
func (h *holds) add(id string) (release func() bool) {
	h.mu.Lock()
	h.n[id]++
	h.mu.Unlock()
	return func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.n[id]--
		if h.n[id] > 0 {
			return false
		}
		delete(h.n, id)
		return true
	}
}

// Wrong one-time codes a user may send in codeWindow before codes are
// refused for the rest of it. With 3 accepted codes (skew 1) in a million,
// that keeps guessing a 6-digit code out of reach.
const (
	maxCodeFailures = 5
	codeWindow      = 15 * time.Minute
)

// codeLimiter counts wrong one-time codes per user on this node.
type codeLimiter struct {
	mu sync.Mutex
	m  map[string]codeFailures
}

type codeFailures struct {
	n     int
	since time.Time
}

func newCodeLimiter() *codeLimiter { return &codeLimiter{m: map[string]codeFailures{}} }

// reserve counts an attempt before the code is checked, so that attempts
// sent at once cannot all pass the check while the first is being
// verified; it reports false when the user has none left. A right code
// resets the count, an attempt that failed for the store's sake is
// refunded.
func (l *codeLimiter) reserve(user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := strings.ToLower(user)
	f := l.m[k]
	if f.n == 0 || now.Sub(f.since) >= codeWindow {
		f = codeFailures{since: now}
	}
	if f.n >= maxCodeFailures {
		return false
	}
	f.n++
	l.m[k] = f
	return true
}

func (l *codeLimiter) refund(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := strings.ToLower(user)
	if f, ok := l.m[k]; ok && f.n > 0 {
		f.n--
		l.m[k] = f
	}
}

func (l *codeLimiter) reset(user string) {
	l.mu.Lock()
	delete(l.m, strings.ToLower(user))
	l.mu.Unlock()
}

func (l *codeLimiter) expire(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, f := range l.m {
		if now.Sub(f.since) >= codeWindow {
			delete(l.m, k)
		}
	}
}

// logLimiter lets a log line through once per key and interval.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, last: map[string]time.Time{}}
}

func (l *logLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		return false
	}
	if len(l.last) > 10000 { // keys are client/reason pairs; this is a backstop
		clear(l.last)
	}
	l.last[key] = now
	return true
}

// inGroup reports whether the identity is in group, ignoring case as
// directories such as Active Directory do.
func inGroup(id directory.Identity, group string) bool {
	for _, g := range id.Groups {
		if strings.EqualFold(g, group) {
			return true
		}
	}
	return false
}
