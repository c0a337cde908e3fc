package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ErrClosed is returned by an AuditBatcher that has been closed.
var ErrClosed = errors.New("store: closed")

// MaxAuditBatch bounds the events an AuditBatcher writes in one transaction.
const MaxAuditBatch = 256

// AuditBatcher is group commit for the audit log: concurrent Append calls
// that arrive while a transaction is being written are appended together in
// the next one, with one chain-head update, instead of each taking the head
// lock in turn. Append returns only once its event is committed, so an
// audited decision is durable before it is acted on.
type AuditBatcher struct {
	log    AuditLog
	logger *slog.Logger
	reqs   chan *auditReq
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type auditReq struct {
	e    AuditEvent
	out  AuditEvent
	err  error
	done chan struct{}
}

// NewAuditBatcher starts a batcher writing to log. Close stops it.
func NewAuditBatcher(log AuditLog, logger *slog.Logger) *AuditBatcher {
	b := &AuditBatcher{
		log:    log,
		logger: logger,
		reqs:   make(chan *auditReq, MaxAuditBatch),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go b.run()
	return b
}

// Append appends e and waits until it is committed. If ctx ends first the
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
	batch := make([]*auditReq, 0, MaxAuditBatch)
	for {
		select {
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
// retried alone so one bad event does not fail the others.
func (b *AuditBatcher) write(batch []*auditReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
	if len(batch) > 1 {
		b.logger.Warn("audit batch failed; appending its events one by one", "events", len(batch), "err", err)
	}
	for _, r := range batch {
		r.out, r.err = b.log.AppendAudit(ctx, r.e)
		if r.err != nil {
			b.logger.Error("audit append failed", "action", r.e.Action, "subject", r.e.Subject, "err", r.err)
		}
		close(r.done)
	}
}
