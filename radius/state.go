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
