package radius

import (
	"strings"
	"sync"
	"time"

	"github.com/bridge-idp/bridge/directory"
)

// session is an Access-Challenge waiting for the NAS to come back with its
// State. Sessions live in this node's memory: a NAS sends the answer to a
// challenge to the server that sent it.
type session struct {
	id        string // the State
	client    *Client
	typed     string // User-Name as first sent, lower case
	user      string // normalised by the directory
	ident     directory.Identity
	kind      string // FactorPush or FactorOTP
	challenge string // push challenge id
	number    string // number to type on the phone
	expires   time.Time

	mu       sync.Mutex // held while a request works on the session
	attempts int        // wrong codes so far
	done     bool
}

// Bounds on challenge sessions: per user (a fourth login replaces the
// oldest, so that opening sessions cannot multiply code guesses) and in
// all (a flood of first factors cannot grow memory without bound).
const (
	maxSessionsPerUser = 3
	maxSessions        = 100000
)

type sessions struct {
	mu     sync.Mutex
	m      map[string]*session
	byUser map[string][]*session // oldest first
}

func newSessions() *sessions {
	return &sessions{m: map[string]*session{}, byUser: map[string][]*session{}}
}

// put adds sess and returns the session it displaced, if any: the user's
// oldest beyond maxSessionsPerUser, or any one beyond maxSessions.
func (s *sessions) put(sess *session) (dropped *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mine := s.byUser[sess.user]; len(mine) >= maxSessionsPerUser {
		dropped = mine[0]
	} else if len(s.m) >= maxSessions {
		for _, o := range s.m {
			dropped = o
			break
		}
	}
	if dropped != nil {
		s.removeLocked(dropped.id)
	}
	s.m[sess.id] = sess
	s.byUser[sess.user] = append(s.byUser[sess.user], sess)
	return dropped
}

func (s *sessions) removeLocked(id string) {
	sess, ok := s.m[id]
	if !ok {
		return
	}
	delete(s.m, id)
	mine := s.byUser[sess.user]
	for i, o := range mine {
		if o == sess {
			mine = append(mine[:i:i], mine[i+1:]...)
			break
		}
	}
	if len(mine) == 0 {
		delete(s.byUser, sess.user)
	} else {
		s.byUser[sess.user] = mine
	}
}

// take returns the unexpired session of id, locked (a user pressing Enter
// twice waits for the first answer), and the function that unlocks it.
func (s *sessions) take(id string, now time.Time) (*session, func()) {
	s.mu.Lock()
	sess := s.m[id]
	s.mu.Unlock()
	if sess == nil || !now.Before(sess.expires) {
		return nil, nil
	}
	sess.mu.Lock()
	return sess, sess.mu.Unlock
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	s.removeLocked(id)
	s.mu.Unlock()
}

func (s *sessions) expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sess := range s.m {
		if !now.Before(sess.expires) {
			s.removeLocked(id)
		}
	}
}

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
