package radius

import (
	"net/netip"
	"sync"
	"time"
)

// unknownEvery is how often a packet from one unknown source address is
// logged: enough to find a NAS whose address is not in radius.clients,
// little enough that a flood does not flood the log.
const unknownEvery = time.Minute

// maxUnknownSources bounds the addresses remembered: spoofed sources cannot
// grow memory beyond it. When it is full (after dropping the entries older
// than unknownEvery) one more line a minute says so and the rest are only
// counted.
const maxUnknownSources = 1024

// unknownSources decides which packets from addresses of no client are
// logged: once per address per minute, bounded.
type unknownSources struct {
	mu       sync.Mutex
	last     map[netip.Addr]time.Time
	overflow time.Time // last "too many unknown sources" line
}

func newUnknownSources() *unknownSources {
	return &unknownSources{last: map[netip.Addr]time.Time{}}
}

// allow reports whether to log a packet from addr at now, and whether the
// table is full (the line should say that others are not logged).
func (u *unknownSources) allow(addr netip.Addr, now time.Time) (log, full bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if t, ok := u.last[addr]; ok {
		if now.Sub(t) < unknownEvery {
			return false, false
		}
		u.last[addr] = now
		return true, false
	}
	if len(u.last) >= maxUnknownSources {
		for a, t := range u.last {
			if now.Sub(t) >= unknownEvery {
				delete(u.last, a)
			}
		}
	}
	if len(u.last) >= maxUnknownSources {
		if now.Sub(u.overflow) < unknownEvery {
			return false, true
		}
		u.overflow = now
		return true, true
	}
	u.last[addr] = now
	return true, false
}
