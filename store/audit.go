package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
)

// AuditKeySize is the size of the audit chain key.
const AuditKeySize = 32

// ChainHash is the hash that links e into the audit chain: HMAC-SHA256,
// under the chain key, over a versioned, length-prefixed encoding of every
// field of e except Hash, with prev (the previous event's hash) included.
// Any change to a stored field, any reordering and any deletion breaks the
// chain at that point. The key is derived from the operator's
// key-encryption key, which is not in the database: someone who can write
// to the database but lacks the key cannot recompute the chain after
// changing it.
func ChainHash(key, prev []byte, e AuditEvent) []byte {
	h := hmac.New(sha256.New, key)
	var buf [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(b)))
		h.Write(buf[:])
		h.Write(b)
	}
	str := func(s string) { field([]byte(s)) }
	num := func(n int64) {
		binary.BigEndian.PutUint64(buf[:], uint64(n))
		field(buf[:])
	}
	str("bridge-audit-v1-hmac-sha256")
	field(prev)
	num(e.Seq)
	num(e.Time.UnixMicro())
	str(e.Actor)
	str(e.Action)
	str(e.Subject)
	str(e.Channel)
	str(e.ClientIP)
	str(string(e.Result))
	str(e.Reason)
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	num(int64(len(keys)))
	for _, k := range keys {
		str(k)
		str(e.Details[k])
	}
	return h.Sum(nil)
}

// ChainProblem is one place where the audit chain does not hold.
type ChainProblem struct {
	Seq    int64
	Reason string
}

func (p ChainProblem) String() string { return fmt.Sprintf("seq %d: %s", p.Seq, p.Reason) }

// ChainReport is the result of VerifyChain.
type ChainReport struct {
	Events   int64 // events read
	Head     AuditHead
	Problems []ChainProblem
}

// OK reports whether the chain verified without a problem.
func (r ChainReport) OK() bool { return len(r.Problems) == 0 }

// VerifyChain reads the whole audit log in order and checks that sequence
// numbers are contiguous from 1, that every event carries its predecessor's
// hash, that every hash matches the event's content, and that the last event
// is the recorded head. It reports every problem it finds (up to max; 0 means
// 100), not just the first. key is the chain key the events were appended
// under.
//
// The chain cannot show a log cut short with its head rewound to an earlier
// event by someone with write access to the database: compare the head with
// one recorded elsewhere for that.
func VerifyChain(ctx context.Context, log AuditLog, key []byte, max int) (ChainReport, error) {
	if len(key) != AuditKeySize {
		return ChainReport{}, fmt.Errorf("%w: the audit chain key must be %d bytes", ErrInvalid, AuditKeySize)
	}
	if max <= 0 {
		max = 100
	}
	var rep ChainReport
	head, err := log.AuditHead(ctx)
	if err != nil {
		return rep, fmt.Errorf("reading audit head: %w", err)
	}
	rep.Head = head
	problem := func(seq int64, format string, args ...any) {
		if len(rep.Problems) < max {
			rep.Problems = append(rep.Problems, ChainProblem{Seq: seq, Reason: fmt.Sprintf(format, args...)})
		}
	}
	var (
		after    int64
		prevHash []byte
	)
	const page = 1000
	for {
		events, err := log.ListAudit(ctx, after, page)
		if err != nil {
			return rep, fmt.Errorf("reading audit events after %d: %w", after, err)
		}
		for _, e := range events {
			rep.Events++
			if e.Seq != after+1 {
				problem(after+1, "events %d to %d are missing (deleted?)", after+1, e.Seq-1)
				// Continue from what is there, so later tampering still shows.
				prevHash = e.PrevHash
			}
			if !bytes.Equal(e.PrevHash, prevHash) {
				problem(e.Seq, "does not carry the previous event's hash (inserted, deleted or reordered)")
			}
			if !hmac.Equal(ChainHash(key, e.PrevHash, e), e.Hash) {
				problem(e.Seq, "content does not match its hash (modified)")
			}
			after, prevHash = e.Seq, e.Hash
		}
		if len(events) < page {
			break
		}
	}
	switch {
	case after < head.Seq:
		problem(after+1, "the log ends at %d but the recorded head is %d (events deleted from the end)", after, head.Seq)
	case after > head.Seq:
		problem(head.Seq+1, "events after the recorded head %d (appended outside the bridge)", head.Seq)
	case !bytes.Equal(prevHash, head.Hash):
		problem(after, "last event's hash differs from the recorded head")
	}
	return rep, nil
}
