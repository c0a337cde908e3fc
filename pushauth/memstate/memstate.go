package memstate

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// State is store.PushState in memory, for one node. It is safe for
// concurrent use. Nothing in it waits, so contexts are not consulted.
type State struct {
	mu sync.Mutex
	// byID holds every challenge until the janitor purges it.
	byID map[string]*store.Challenge
	// pending is each user's pending challenge (at most one).
	pending map[string]*store.Challenge
	// byUser lists each user's challenges in creation order, for counting.
	byUser map[string][]*store.Challenge
	replay map[replayKey]time.Time // expiry of each single-use value
}

type replayKey struct{ namespace, key string }

// interface guards
var _ store.PushState = (*State)(nil)

// New returns an empty state.
func New() *State {
	return &State{
		byID:    map[string]*store.Challenge{},
		pending: map[string]*store.Challenge{},
		byUser:  map[string][]*store.Challenge{},
		replay:  map[replayKey]time.Time{},
	}
}

// out copies a stored challenge for a caller.
func out(c *store.Challenge) store.Challenge {
	o := *c
	o.Hash = bytes.Clone(c.Hash)
	return o
}

// expired reports whether c has expired at now.
func expired(c *store.Challenge, now time.Time) bool { return !now.Before(c.ExpiresAt) }

// close moves c, pending, to state; the caller holds s.mu.
func (s *State) close(c *store.Challenge, state store.ChallengeState, deviceID, reason string, now time.Time) {
	c.State, c.DeviceID, c.Reason, c.ClosedAt = state, deviceID, reason, now
	if s.pending[c.User] == c {
		delete(s.pending, c.User)
	}
}

// CreateChallenge implements store.PushState. join is called with the
// state locked: it must not call s.
func (s *State) CreateChallenge(_ context.Context, c store.Challenge, now, closedSince time.Time, join func(store.Challenge) bool) (store.Challenge, bool, []store.Challenge, error) {
	switch {
	case c.ID == "" || c.User == "":
		return c, false, nil, fmt.Errorf("%w: challenge without id or user", store.ErrInvalid)
	case c.State != store.ChallengePending && c.State != "":
		return c, false, nil, fmt.Errorf("%w: challenge %q: a new challenge is pending, not %q", store.ErrInvalid, c.ID, c.State)
	case c.CreatedAt.IsZero() || c.ExpiresAt.IsZero() || c.PurgeAt.IsZero():
		return c, false, nil, fmt.Errorf("%w: challenge %q: creation, expiry and purge times are required", store.ErrInvalid, c.ID)
	case c.PurgeAt.Before(c.ExpiresAt):
		return c, false, nil, fmt.Errorf("%w: challenge %q: purged before it expires", store.ErrInvalid, c.ID)
	}
	c.State, c.ClosedAt, c.DeviceID, c.Reason = store.ChallengePending, time.Time{}, "", ""

	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[c.User]
	if p != nil && !expired(p, now) && join(out(p)) {
		return out(p), true, nil, nil
	}
	if (p == nil || expired(p, now)) && !closedSince.IsZero() {
		mine := s.byUser[c.User]
		for i := len(mine) - 1; i >= 0; i-- {
			o := mine[i]
			if o.State.Closed() && !o.ClosedAt.Before(closedSince) && join(out(o)) {
				return out(o), true, nil, nil
			}
		}
	}
	// Refuse before changing anything, as a rolled-back transaction would.
	if _, dup := s.byID[c.ID]; dup {
		return c, false, nil, fmt.Errorf("creating challenge %q: %w", c.ID, store.ErrConflict)
	}
	var closed []store.Challenge
	if p != nil {
		if expired(p, now) {
			s.close(p, store.ChallengeExpired, "", "expired", now)
		} else {
			s.close(p, store.ChallengeSuperseded, "", "superseded", now)
		}
		closed = []store.Challenge{out(p)}
	}
	n := new(store.Challenge)
	*n = c
	n.Hash = bytes.Clone(c.Hash)
	s.byID[n.ID] = n
	s.pending[n.User] = n
	s.byUser[n.User] = append(s.byUser[n.User], n)
	return out(n), false, closed, nil
}

// GetChallenge implements store.PushState.
func (s *State) GetChallenge(_ context.Context, id string) (store.Challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[id]
	if c == nil {
		return store.Challenge{}, fmt.Errorf("challenge %q: %w", id, store.ErrNotFound)
	}
	return out(c), nil
}

// PendingChallenges implements store.PushState.
func (s *State) PendingChallenges(_ context.Context, user string, now time.Time) ([]store.Challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[user]
	if p == nil || expired(p, now) {
		return nil, nil
	}
	return []store.Challenge{out(p)}, nil
}

// RecentChallenges implements store.PushState.
func (s *State) RecentChallenges(_ context.Context, user string, since time.Time) ([]store.Challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []store.Challenge
	mine := s.byUser[user]
	for i := len(mine) - 1; i >= 0; i-- {
		if !mine[i].CreatedAt.Before(since) {
			list = append(list, out(mine[i]))
		}
	}
	slices.SortStableFunc(list, func(a, b store.Challenge) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return list, nil
}

// CloseChallenge implements store.PushState.
func (s *State) CloseChallenge(_ context.Context, id string, how store.ChallengeClose, now time.Time) (store.Challenge, error) {
	if !how.State.Closed() {
		return store.Challenge{}, fmt.Errorf("%w: challenge %q: closing into %q, not a final state", store.ErrInvalid, id, how.State)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[id]
	switch {
	case c == nil:
		return store.Challenge{}, fmt.Errorf("challenge %q: %w", id, store.ErrNotFound)
	case c.State != store.ChallengePending:
		return out(c), fmt.Errorf("challenge %q is already %s: %w", id, c.State, store.ErrUsed)
	case !how.AllowExpired && expired(c, now):
		s.close(c, store.ChallengeExpired, "", "expired", now)
		return out(c), fmt.Errorf("challenge %q: %w", id, store.ErrExpired)
	}
	s.close(c, how.State, how.DeviceID, how.Reason, now)
	return out(c), nil
}

// ExpireChallenges implements store.PushState. It closes the earliest
// expired first, as the SQL store does.
func (s *State) ExpireChallenges(_ context.Context, now time.Time, limit int) ([]store.Challenge, error) {
	if limit <= 0 {
		limit = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*store.Challenge
	for _, p := range s.pending {
		if expired(p, now) {
			due = append(due, p)
		}
	}
	if len(due) == 0 {
		return nil, nil
	}
	slices.SortFunc(due, func(a, b *store.Challenge) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	due = due[:min(limit, len(due))]
	closed := make([]store.Challenge, len(due))
	for i, p := range due {
		s.close(p, store.ChallengeExpired, "", "expired", now)
		closed[i] = out(p)
	}
	return closed, nil
}

// CountChallenges implements store.PushState.
func (s *State) CountChallenges(_ context.Context, user string, since time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.byUser[user] {
		if !c.CreatedAt.Before(since) {
			n++
		}
	}
	return n, nil
}

// UseOnce implements store.Replay.
func (s *State) UseOnce(_ context.Context, namespace, key string, now, expires time.Time) error {
	if namespace == "" || key == "" {
		return fmt.Errorf("%w: replay entry needs a namespace and a key", store.ErrInvalid)
	}
	k := replayKey{namespace, key}
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.replay[k]; ok && now.Before(exp) {
		return fmt.Errorf("%s value: %w", namespace, store.ErrUsed)
	}
	s.replay[k] = expires
	return nil
}

// DeleteExpired implements store.Janitor: challenges at their PurgeAt and
// expired replay entries.
func (s *State) DeleteExpired(_ context.Context, now time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	touched := map[string]bool{}
	for id, c := range s.byID {
		if !now.Before(c.PurgeAt) {
			delete(s.byID, id)
			if s.pending[c.User] == c {
				delete(s.pending, c.User)
			}
			touched[c.User] = true
			n++
		}
	}
	for user := range touched {
		kept := slices.DeleteFunc(s.byUser[user], func(c *store.Challenge) bool { return s.byID[c.ID] != c })
		if len(kept) == 0 {
			delete(s.byUser, user)
		} else {
			s.byUser[user] = kept
		}
	}
	for k, exp := range s.replay {
		if !now.Before(exp) {
			delete(s.replay, k)
			n++
		}
	}
	return n, nil
}
