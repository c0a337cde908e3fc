package pushtest

import (
	"context"
	"slices"
	"sync"
)

// recorder keeps what a fake received, in order, and lets tests wait for
// the next item without sleeping. Nothing is dropped.
type recorder[T any] struct {
	mu    sync.Mutex
	items []T
	next  int           // index of the item Next returns
	added chan struct{} // closed (and replaced) on every add
}

func newRecorder[T any]() *recorder[T] {
	return &recorder[T]{added: make(chan struct{})}
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, v)
	close(r.added)
	r.added = make(chan struct{})
}

func (r *recorder[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.items)
}

// wait returns the oldest item not yet returned by wait, waiting for one
// until ctx is done.
func (r *recorder[T]) wait(ctx context.Context) (T, error) {
	for {
		r.mu.Lock()
		if r.next < len(r.items) {
			v := r.items[r.next]
			r.next++
			r.mu.Unlock()
			return v, nil
		}
		added := r.added
		r.mu.Unlock()
		select {
		case <-added:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}
