package radius

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

// reqKey identifies a request as RFC 5080 §2.2.2 says a server must, to
// recognise a retransmission: where it came from, which socket it came to,
// its identifier and its request authenticator.
type reqKey struct {
	src  netip.AddrPort
	acct bool
	id   byte
	auth [16]byte
}

// Where a request stands in the answer cache.
type reqState int

const (
	reqNew      reqState = iota // first sight: handle it
	reqPending                  // being handled: drop the copy
	reqAnswered                 // answered: send the answer again
)

// answerCache remembers requests being handled and, for a while, the
// answers sent to them, so that a retransmission is never handled twice.
//
// Entries age out by generation: every ttl, each shard's current map
// becomes its previous one and the previous one is dropped, so an answer is
// kept between ttl and 2*ttl. Requests still pending are carried over at
// rotation: a request held for the phone longer than ttl must still absorb
// its copies.
type answerCache struct {
	seed   maphash.Seed
	shards [64]cacheShard
}

type cacheShard struct {
	mu        sync.Mutex
	cur, prev map[reqKey]*cacheEntry
}

type cacheEntry struct {
	answer []byte // nil while pending
}

func newAnswerCache() *answerCache {
	c := &answerCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].cur = map[reqKey]*cacheEntry{}
		c.shards[i].prev = map[reqKey]*cacheEntry{}
	}
	return c
}

func (c *answerCache) shard(k reqKey) *cacheShard {
	var h maphash.Hash
	h.SetSeed(c.seed)
	a := k.src.Addr().As16()
	h.Write(a[:])
	h.Write(k.auth[:])
	h.WriteByte(k.id)
	return &c.shards[h.Sum64()%uint64(len(c.shards))]
}

// begin looks k up and, if it is new, records it as pending. For an
// answered request it returns the answer to send again.
func (c *answerCache) begin(k reqKey) (reqState, []byte) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.cur[k]
	if !ok {
		e, ok = s.prev[k]
	}
	switch {
	case !ok:
		s.cur[k] = &cacheEntry{}
		return reqNew, nil
	case e.answer == nil:
		return reqPending, nil
	default:
		return reqAnswered, e.answer
	}
}

// finish records the answer sent to k. A nil answer (the request was
// dropped) forgets k, so that a retransmission is handled afresh.
func (c *answerCache) finish(k reqKey, answer []byte) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if answer == nil {
		delete(s.cur, k)
		delete(s.prev, k)
		return
	}
	if e, ok := s.cur[k]; ok {
		e.answer = answer
		return
	}
	// Pending entries are carried into cur at rotation, so k is here
	// only if it was forgotten; keep the answer anyway.
	delete(s.prev, k)
	s.cur[k] = &cacheEntry{answer: answer}
}

// rotate ages every shard by one generation.
func (c *answerCache) rotate() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		next := make(map[reqKey]*cacheEntry, len(s.cur))
		for k, e := range s.prev {
			if e.answer == nil {
				next[k] = e
			}
		}
		// Answered entries of cur live on for one more generation in prev;
		// pending ones move to the new cur.
		for k, e := range s.cur {
			if e.answer == nil {
				next[k] = e
				delete(s.cur, k)
			}
		}
		s.prev, s.cur = s.cur, next
		s.mu.Unlock()
	}
}

// len counts the entries, pending and answered (for tests and metrics).
func (c *answerCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return n
}
