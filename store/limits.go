package store

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Limit is one fixed-window limit on one key.
type Limit struct {
	Key string
	// Max is the attempts a window takes (at least 1).
	Max int
	// Window is how long a window lasts from its first attempt; 0 never
	// ends (a flag: Max 1, taken once).
	Window time.Duration
}

// Verdict is the answer to a Take.
type Verdict struct {
	// OK: every limit took its attempt.
	OK bool
	// Refused is the index of the limit that was at its max, -1 if OK.
	// The limits before it took their attempt; it and those after it did
	// not.
	Refused int
	// Ends is when the refusing limit's window ends (zero: never).
	Ends time.Time
}

// MaxLimitBatch bounds the counter ops a Limits writes in one transaction.
const MaxLimitBatch = 512

// maxOverKeys bounds the keys a Limits remembers as over their limit.
const maxOverKeys = 100000

// Limits is the front of the shared counters on one node. It does two
// things for speed without giving up strictness:
//
//   - group commit: the takes of concurrent callers that arrive while a
//     transaction is being written go together into the next one (each
//     caller still gets its own answer, and only once it is committed);
//   - a memory of keys known to be at their max: until that key's window
//     ends, a take is refused here without asking the store. Memory only
//     ever refuses, never lets an attempt through, so N nodes still take
//     at most max attempts per key and window between them. (A refund on
//     another node is then seen here only when the window ends: an
//     over-refusal, never an under-count.)
//
// It is safe for concurrent use; Close stops it.
type Limits struct {
	c      Counters
	now    func() time.Time
	logger *slog.Logger
	reqs   chan *limitReq
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	mu   sync.Mutex
	over map[string]time.Time // key → end of its window (zero: never)
}

type limitReq struct {
	ops  []CounterOp
	out  []CounterResult
	err  error
	done chan struct{}
}

// NewLimits starts a front on c. now is the clock (nil: time.Now).
func NewLimits(c Counters, now func() time.Time, logger *slog.Logger) *Limits {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Limits{
		c: c, now: now, logger: logger,
		reqs: make(chan *limitReq, MaxLimitBatch),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		over: map[string]time.Time{},
	}
	go l.run()
	return l
}

// NewUnbatchedLimits is a front on c that sends each call on its own, with
// no goroutine of its own (Close is not needed): for components built
// without a shared front, such as a front end in a unit test.
func NewUnbatchedLimits(c Counters, now func() time.Time, logger *slog.Logger) *Limits {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Limits{c: c, now: now, logger: logger, stop: make(chan struct{}), over: map[string]time.Time{}}
}

// Take counts one attempt against each limit in order, stopping at the
// first that is at its max: "count the address, and the user only if the
// address was under its limit". The attempt is counted before the caller
// checks it, so that parallel attempts cannot outrun the limit; the caller
// refunds the attempts that turn out right.
func (l *Limits) Take(ctx context.Context, limits ...Limit) (Verdict, error) {
	now := l.now()
	// A limit known to be over ends the chain here; only those before it
	// go to the store.
	n, refusedEnds := len(limits), time.Time{}
	for i, lim := range limits {
		if ends, over := l.knownOver(lim.Key, now); over {
			n, refusedEnds = i, ends
			break
		}
	}
	if n == 0 {
		return Verdict{Refused: 0, Ends: refusedEnds}, nil
	}
	ops := make([]CounterOp, n)
	for i, lim := range limits[:n] {
		ops[i] = CounterOp{Kind: CounterTake, Key: lim.Key, Max: lim.Max, Window: lim.Window, IfTaken: i > 0}
	}
	out, err := l.do(ctx, ops)
	if err != nil {
		return Verdict{}, err
	}
	for i, r := range out {
		if r.Taken && r.Count >= ops[i].Max || !r.Taken && !r.Skipped {
			l.markOver(ops[i].Key, r.Ends, now)
		}
		if !r.Taken {
			return Verdict{Refused: i, Ends: r.Ends}, nil
		}
	}
	if n < len(limits) {
		return Verdict{Refused: n, Ends: refusedEnds}, nil
	}
	return Verdict{OK: true, Refused: -1}, nil
}

// Refund takes back one attempt of each limit.
func (l *Limits) Refund(ctx context.Context, limits ...Limit) error {
	ops := make([]CounterOp, len(limits))
	for i, lim := range limits {
		ops[i] = CounterOp{Kind: CounterRefund, Key: lim.Key, Max: lim.Max}
		l.forget(lim.Key)
	}
	_, err := l.do(ctx, ops)
	return err
}

// Reset forgets the keys' counts.
func (l *Limits) Reset(ctx context.Context, keys ...string) error {
	ops := make([]CounterOp, len(keys))
	for i, k := range keys {
		ops[i] = CounterOp{Kind: CounterReset, Key: k}
		l.forget(k)
	}
	_, err := l.do(ctx, ops)
	return err
}

// Count is lim's attempts in its current window. It reads the store
// directly (no transaction), unless lim is known to be at its max.
func (l *Limits) Count(ctx context.Context, lim Limit) (int, error) {
	now := l.now()
	if _, over := l.knownOver(lim.Key, now); over {
		return lim.Max, nil
	}
	op := CounterOp{Kind: CounterPeek, Key: lim.Key, Max: lim.Max}
	if err := op.Check(); err != nil {
		return 0, fmt.Errorf("counters: %w", err)
	}
	out, err := l.c.ApplyCounters(ctx, now, []CounterOp{op})
	if err != nil {
		return 0, err
	}
	return out[0].Count, nil
}

// Close writes what is queued and stops the front.
func (l *Limits) Close() {
	l.once.Do(func() { close(l.stop) })
	if l.done != nil {
		<-l.done
	}
}

func (l *Limits) knownOver(key string, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ends, ok := l.over[key]
	if ok && !ends.IsZero() && !now.Before(ends) {
		delete(l.over, key)
		return time.Time{}, false
	}
	return ends, ok
}

func (l *Limits) markOver(key string, ends, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.over) >= maxOverKeys {
		for k, e := range l.over {
			if !e.IsZero() && !now.Before(e) {
				delete(l.over, k)
			}
		}
		if len(l.over) >= maxOverKeys {
			return // the store still refuses it; this is only a shortcut
		}
	}
	l.over[key] = ends
}

func (l *Limits) forget(key string) {
	l.mu.Lock()
	delete(l.over, key)
	l.mu.Unlock()
}

// do queues ops as one request and waits for its commit.
func (l *Limits) do(ctx context.Context, ops []CounterOp) ([]CounterResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	if err := CheckCounterOps(ops); err != nil {
		return nil, fmt.Errorf("counters: %w", err)
	}
	select {
	case <-l.stop:
		return nil, ErrClosed
	default:
	}
	if l.reqs == nil {
		return l.c.ApplyCounters(ctx, l.now(), ops)
	}
	r := &limitReq{ops: ops, done: make(chan struct{})}
	select {
	case l.reqs <- r:
	case <-l.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
		return r.out, r.err
	case <-l.done:
		select {
		case <-r.done:
			return r.out, r.err
		default:
			return nil, ErrClosed
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *Limits) run() {
	defer close(l.done)
	var batch []*limitReq
	for {
		select {
		case r := <-l.reqs:
			batch = append(batch[:0], r)
		case <-l.stop:
			for {
				select {
				case r := <-l.reqs:
					l.write([]*limitReq{r})
				default:
					return
				}
			}
		}
		ops := len(batch[0].ops)
	fill:
		for ops < MaxLimitBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
				ops += len(r.ops)
			default:
				break fill
			}
		}
		l.write(batch)
	}
}

// write applies the batch in one transaction. If that fails, each request
// is retried alone, so that one cannot fail the others.
func (l *Limits) write(batch []*limitReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := l.now()
	if len(batch) == 1 {
		r := batch[0]
		r.out, r.err = l.c.ApplyCounters(ctx, now, r.ops)
		close(r.done)
		return
	}
	var ops []CounterOp
	for _, r := range batch {
		ops = append(ops, r.ops...)
	}
	out, err := l.c.ApplyCounters(ctx, now, ops)
	if err == nil && len(out) == len(ops) {
		for _, r := range batch {
			r.out, out = out[:len(r.ops):len(r.ops)], out[len(r.ops):]
			close(r.done)
		}
		return
	}
	l.logger.Warn("counter batch failed; applying its requests one by one", "requests", len(batch), "err", err)
	for _, r := range batch {
		r.out, r.err = l.c.ApplyCounters(ctx, now, r.ops)
		close(r.done)
	}
}

// AddressKey is the key under which a limit counts an address: IPv6
// addresses count per /64, as one host usually holds a whole /64; what is
// not an address is its own key.
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// NameKey is the key under which a limit counts a typed user name:
// normalised as user names are stored, so that spellings of one name
// share a count, or lower case if it is no valid name.
func NameKey(s string) string {
	s = strings.TrimSpace(s)
	if n, err := NormalizeUsername(s); err == nil {
		return n
	}
	return strings.ToLower(s)
}
