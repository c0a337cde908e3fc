package pushauth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// ErrUnavailable is returned (by Wait) when the store did not answer for
// longer than the grace: the front end applies its failmode, as for a new
// login, instead of waiting for an answer it could not read.
var ErrUnavailable = errors.New("pushauth: the store does not answer")

// unavailableError wraps the store's error for ErrUnavailable. It does not
// unwrap to it: a read that timed out must not look like the caller's own
// deadline (context.DeadlineExceeded) to the front end.
type unavailableError struct{ err error }

func (u *unavailableError) Error() string        { return ErrUnavailable.Error() + ": " + u.err.Error() }
func (u *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// How Wait reads a challenge besides the bus wake-up: every waitPoll (a
// wake-up missed while the bus was down is found then), each read bounded
// by waitPoll; after storeGrace of failed reads it gives up with
// ErrUnavailable.
const (
	waitPoll   = 2 * time.Second
	waitRetry  = 500 * time.Millisecond
	storeGrace = 3 * time.Second
)

// The retry queue of closes (Cancel, Resolve) the store did not take.
const (
	maxQueuedCloses = 10000
	retryFirst      = 250 * time.Millisecond
	retryMax        = 2 * time.Second
)

// closeQueue holds closes of challenges whose login ended while the store
// did not answer. They are retried with back-off until the store takes
// them; an entry dies at the challenge's latest expiry, after which it
// cannot be answered anyway. While a challenge is queued this node refuses
// answers to it and does not list it to devices.
type closeQueue struct {
	mu    sync.Mutex
	items map[string]*queuedClose
	kick  chan struct{}
}

type queuedClose struct {
	id, reason string
	expires    time.Time // the challenge's expiry at the latest
	next       time.Time
	wait       time.Duration
}

func newCloseQueue() *closeQueue {
	return &closeQueue{items: map[string]*queuedClose{}, kick: make(chan struct{}, 1)}
}

// add queues a close; false if the queue is full.
func (q *closeQueue) add(id, reason string, now, expires time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.items[id]; !ok && len(q.items) >= maxQueuedCloses {
		return false
	}
	q.items[id] = &queuedClose{id: id, reason: reason, expires: expires, next: now.Add(retryFirst), wait: retryFirst}
	return true
}

// queued reports whether the close of challenge id waits for the store.
func (q *closeQueue) queued(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.items[id]
	return ok
}

// due returns the entries to try now (all of them with all set), drops the
// ones that expired, and says when the next one is due.
func (q *closeQueue) due(now time.Time, all bool) (out []queuedClose, next time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, it := range q.items {
		switch {
		case !now.Before(it.expires):
			delete(q.items, id)
			continue
		case all || !now.Before(it.next):
			out = append(out, *it)
			it.wait = min(2*it.wait, retryMax)
			it.next = now.Add(it.wait)
		}
		if next.IsZero() || it.next.Before(next) {
			next = it.next
		}
	}
	return out, next
}

func (q *closeQueue) done(id string) {
	q.mu.Lock()
	delete(q.items, id)
	q.mu.Unlock()
}

func (q *closeQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// RetryNow tries the queued closes at once: call it when the store is known
// to answer again (the audit spool was flushed), so they run before the
// node's other work reaches the store where possible.
func (e *Engine) RetryNow() {
	select {
	case e.closes.kick <- struct{}{}:
	default:
	}
}

// close closes a challenge the login side ended (Cancel, Resolve). If the
// store does not answer, the close is queued and retried; the caller sees
// success, since the close will happen.
func (e *Engine) close(ctx context.Context, id, reason string) error {
	c, err := e.state.CloseChallenge(ctx, id, store.ChallengeClose{State: store.ChallengeCancelled, Reason: reason, AllowExpired: true}, e.now())
	if err == nil {
		e.closes.done(id)
		e.closed(ctx, c, nil)
		return nil
	}
	if !store.Unavailable(err) {
		return err
	}
	now := e.now()
	if !e.closes.add(id, reason, now, now.Add(e.cfg.ChallengeTTL)) {
		e.log.Error("closing a push challenge failed and the retry queue is full; the phone may show it until it expires", "challenge", id, "err", err)
		return err
	}
	e.log.Warn("closing a push challenge failed; retrying until the store answers (this node refuses answers to it meanwhile)",
		"challenge", id, "reason", reason, "err", err)
	e.RetryNow()
	return nil
}

// retryCloses runs the close queue until the engine closes.
func (e *Engine) retryCloses() {
	defer e.workers.Done()
	timer := time.NewTimer(retryMax)
	defer timer.Stop()
	all := false
	for {
		items, next := e.closes.due(e.now(), all)
		all = false
		for _, it := range items {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := e.state.CloseChallenge(ctx, it.id, store.ChallengeClose{State: store.ChallengeCancelled, Reason: it.reason, AllowExpired: true}, e.now())
			switch {
			case err == nil:
				e.closes.done(it.id)
				e.closed(ctx, c, nil)
				e.log.Info("queued close of a push challenge done", "challenge", it.id)
			case !store.Unavailable(err):
				// Closed already (answered, expired) or gone: nothing to do.
				e.closes.done(it.id)
			}
			cancel()
		}
		wait := retryMax
		if !next.IsZero() {
			wait = max(next.Sub(e.now()), 10*time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-e.closing:
			return
		case <-e.closes.kick:
			all = true
		case <-timer.C:
		}
	}
}
