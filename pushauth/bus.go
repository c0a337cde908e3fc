package pushauth

import (
	"context"
	"sync"
)

// Bus carries "something changed for this topic: re-read the store" between
// goroutines and, with a shared store, between nodes. Messages are hints; a
// subscriber always re-reads the state after a wake-up.
type Bus interface {
	Publish(ctx context.Context, topic string) error
	// Subscribe returns a channel that receives (non-blocking, capacity 1,
	// coalesced) a value after every Publish of topic, on any node, until
	// cancel is called.
	Subscribe(topic string) (wake <-chan struct{}, cancel func())
}

// LocalBus is a Bus within one process. It is safe for concurrent use; the
// zero value is not usable, call NewLocalBus.
type LocalBus struct {
	mu   sync.RWMutex
	subs map[string]map[*subscription]struct{}
}

type subscription struct{ wake chan struct{} }

// interface guards
var _ Bus = (*LocalBus)(nil)

// NewLocalBus returns a bus without subscribers.
func NewLocalBus() *LocalBus {
	return &LocalBus{subs: map[string]map[*subscription]struct{}{}}
}

// Publish wakes topic's subscribers before it returns. It never blocks and
// never fails.
func (b *LocalBus) Publish(_ context.Context, topic string) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs[topic] {
		s.notify()
	}
	return nil
}

// Subscribe implements Bus. cancel may be called more than once; the
// channel is not closed by it.
func (b *LocalBus) Subscribe(topic string) (<-chan struct{}, func()) {
	s := &subscription{wake: make(chan struct{}, 1)}
	b.mu.Lock()
	set := b.subs[topic]
	if set == nil {
		set = map[*subscription]struct{}{}
		b.subs[topic] = set
	}
	set[s] = struct{}{}
	b.mu.Unlock()
	return s.wake, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if set := b.subs[topic]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(b.subs, topic)
			}
		}
	}
}

// WakeAll wakes every subscriber of every topic (used after a lost
// connection, when notifications may have been missed).
func (b *LocalBus) WakeAll() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, set := range b.subs {
		for s := range set {
			s.notify()
		}
	}
}

// notify leaves a wake-up unless one is already waiting.
func (s *subscription) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
