package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by an AuditBatcher that has been closed.
var ErrClosed = errors.New("store: closed")

// MaxAuditBatch bounds the events an AuditBatcher writes in one transaction.
const MaxAuditBatch = 256

// AuditBatcher is group commit for the audit log: concurrent Append calls
// that arrive while a transaction is being written are appended together in
// the next one, with one chain-head update, instead of each taking the head
// lock in turn. Append returns only once its event is durable, so an
// audited decision is durable before it is acted on.
//
// With a spool (AuditBatcherOptions.Spool), an event whose append failed
// because the store did not answer is written to the node's spool file
// instead, and Append succeeds once that is synced. While the spool holds
// events, later events go there too, so this node's events keep their
// order; the batcher appends the spool to the store, oldest first, one
// batch per transaction, as soon as the store answers again (at start as
// well). The store assigns sequence numbers and hashes then, so the chain
// stays unbroken. An event appended from the spool may be appended twice
// if the store committed a transaction whose answer was lost.
type AuditBatcher struct {
	log    AuditLog
	logger *slog.Logger
	opts   AuditBatcherOptions
	spool  *AuditSpool
	reqs   chan *auditReq
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	spooled atomic.Int64
	retryAt time.Time // next flush of the spool
	now     func() time.Time
}

// AuditBatcherOptions tune an AuditBatcher. Zero values take the defaults.
type AuditBatcherOptions struct {
	// Spool, if set, keeps events the store could not take; the batcher
	// owns it from then on (Close closes it).
	Spool *AuditSpool
	// StoreTimeout bounds one transaction. Default 10s.
	StoreTimeout time.Duration
	// Retry is how often a spool that holds events is tried against the
	// store. Default 1s.
	Retry time.Duration
	// Flushed, if set, is called after the spool was emptied into the
	// store (the store answers again), from the batcher's goroutine.
	Flushed func()
}

type auditReq struct {
	e    AuditEvent
	out  AuditEvent
	err  error
	done chan struct{}
}

// NewAuditBatcher starts a batcher writing to log. Close stops it.
func NewAuditBatcher(log AuditLog, logger *slog.Logger) *AuditBatcher {
	return NewAuditBatcherWith(log, logger, AuditBatcherOptions{})
}

// NewAuditBatcherWith starts a batcher with options. Close stops it.
func NewAuditBatcherWith(log AuditLog, logger *slog.Logger, o AuditBatcherOptions) *AuditBatcher {
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 10 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &AuditBatcher{
		log:    log,
		logger: logger,
		opts:   o,
		spool:  o.Spool,
		reqs:   make(chan *auditReq, MaxAuditBatch),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		now:    time.Now,
	}
	if b.spool != nil {
		b.spooled.Store(int64(b.spool.Len()))
	}
	go b.run()
	return b
}

// Spooled is the number of events waiting in the spool for the store, as
// of the batcher's last write or flush.
func (b *AuditBatcher) Spooled() int {
	if b.spool == nil {
		return 0
	}
	return int(b.spooled.Load())
}

// Append appends e and waits until it is committed, or synced to the
// spool (then the returned event has no Seq yet). If ctx ends first the
// event may still be written; the error says the caller did not wait.
func (b *AuditBatcher) Append(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	select {
	case <-b.stop:
		return AuditEvent{}, ErrClosed
	default:
	}
	r := &auditReq{e: e, done: make(chan struct{})}
	select {
	case b.reqs <- r:
	case <-b.stop:
		return AuditEvent{}, ErrClosed
	case <-ctx.Done():
		return AuditEvent{}, ctx.Err()
	}
	select {
	case <-r.done:
		return r.out, r.err
	case <-b.done:
		// Stopped: the request was written in the final drain, or it was
		// queued after the drain and never will be.
		select {
		case <-r.done:
			return r.out, r.err
		default:
			return AuditEvent{}, ErrClosed
		}
	case <-ctx.Done():
		return AuditEvent{}, ctx.Err()
	}
}

// Close writes what is queued and stops the batcher.
func (b *AuditBatcher) Close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

func (b *AuditBatcher) run() {
	defer close(b.done)
	if b.spool != nil {
		defer b.spool.Close()
	}
	retry := time.NewTimer(0)
	defer retry.Stop()
	batch := make([]*auditReq, 0, MaxAuditBatch)
	for {
		var retryC <-chan time.Time
		if b.spool != nil && b.spool.Len() > 0 {
			retry.Reset(max(time.Until(b.retryAt), 0))
			retryC = retry.C
		}
		select {
		case <-retryC:
			b.flush()
			continue
		case r := <-b.reqs:
			batch = append(batch[:0], r)
		case <-b.stop:
			// Drain what was queued before Close.
			for {
				select {
				case r := <-b.reqs:
					b.write([]*auditReq{r})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < MaxAuditBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.write(batch)
	}
}

// write appends the batch in one transaction. If that fails, each event is
// retried alone so one bad event does not fail the others. Events the
// store could not take for want of an answer go to the spool, and so do
// all events while the spool holds some.
func (b *AuditBatcher) write(batch []*auditReq) {
	if b.spool != nil && b.spool.Len() > 0 && !b.now().Before(b.retryAt) {
		b.flush()
	}
	if b.spool != nil && b.spool.Len() > 0 {
		b.toSpool(batch)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.StoreTimeout)
	defer cancel()
	events := make([]AuditEvent, len(batch))
	for i, r := range batch {
		events[i] = r.e
	}
	out, err := b.log.AppendAuditBatch(ctx, events)
	if err == nil && len(out) == len(batch) {
		for i, r := range batch {
			r.out = out[i]
			close(r.done)
		}
		return
	}
	if b.spool != nil && Unavailable(err) {
		b.unavailable(err)
		b.toSpool(batch)
		return
	}
	if len(batch) > 1 {
		b.logger.Warn("audit batch failed; appending its events one by one", "events", len(batch), "err", err)
	}
	for i, r := range batch {
		r.out, r.err = b.log.AppendAudit(ctx, r.e)
		if b.spool != nil && Unavailable(r.err) {
			b.unavailable(r.err)
			b.toSpool(batch[i:])
			return
		}
		if r.err != nil {
			b.logger.Error("audit append failed", "action", r.e.Action, "subject", r.e.Subject, "err", r.err)
		}
		close(r.done)
	}
}

// unavailable notes that the store did not answer: the spool is tried
// again after the retry interval.
func (b *AuditBatcher) unavailable(err error) {
	if b.spool.Len() == 0 {
		b.logger.Warn("the store does not take audit events; keeping them in this node's spool until it answers",
			"spool", b.spool.Path(), "err", err)
	}
	b.retryAt = b.now().Add(b.opts.Retry)
}

// toSpool writes the batch's events to the spool and answers their callers.
func (b *AuditBatcher) toSpool(batch []*auditReq) {
	events := make([]AuditEvent, len(batch))
	for i, r := range batch {
		events[i] = r.e
	}
	err := b.spool.add(events)
	if err != nil {
		b.logger.Error("audit event neither in the store nor in the spool", "events", len(batch), "err", err)
	}
	b.spooled.Store(int64(b.spool.Len()))
	for _, r := range batch {
		r.out, r.err = r.e, err
		if err == nil {
			r.out.Seq, r.out.PrevHash, r.out.Hash = 0, nil, nil
		}
		close(r.done)
	}
}

// flush appends the spool to the store, oldest first, one batch per
// transaction, until it is empty or the store stops answering.
func (b *AuditBatcher) flush() {
	start := b.spool.Len()
	for b.spool.Len() > 0 {
		events := b.spool.peek(MaxAuditBatch)
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.StoreTimeout)
		_, err := b.log.AppendAuditBatch(ctx, events)
		n := len(events)
		if err != nil {
			n = 0
		}
		if err != nil && !Unavailable(err) {
			// One of them breaks a rule of the store: one by one, and
			// the one that can never be appended is logged and dropped.
			n = 0
			for _, e := range events {
				_, err = b.log.AppendAudit(ctx, e)
				if Unavailable(err) {
					break
				}
				if err != nil {
					b.logger.Error("audit event in the spool refused by the store; dropped", "time", e.Time, "action", e.Action,
						"subject", e.Subject, "result", e.Result, "reason", e.Reason, "details", e.Details, "err", err)
					err = nil
				}
				n++
			}
		}
		cancel()
		if n > 0 {
			if aerr := b.spool.ack(n); aerr != nil {
				b.logger.Error("audit spool: recording a flush failed; its events may be appended twice", "err", aerr)
				err = aerr
			}
		}
		if err != nil {
			b.retryAt = b.now().Add(b.opts.Retry)
			break
		}
	}
	b.spooled.Store(int64(b.spool.Len()))
	if b.spool.Len() == 0 {
		b.logger.Info("audit spool appended to the store", "events", start)
		if b.opts.Flushed != nil {
			b.opts.Flushed()
		}
	}
}
