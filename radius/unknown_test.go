package radius

import (
	"net/netip"
	"testing"
	"time"
)

func TestUnknownSourcesOncePerMinuteAndBounded(t *testing.T) {
	u := newUnknownSources()
	now := time.Now()
	a := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name      string
		addr      netip.Addr
		at        time.Duration
		log, full bool
	}{
		{"first packet", a, 0, true, false},
		{"again within the minute", a, 30 * time.Second, false, false},
		{"another address", netip.MustParseAddr("192.0.2.2"), 30 * time.Second, true, false},
		{"a minute later", a, time.Minute, true, false},
		{"then quiet again", a, time.Minute + time.Second, false, false},
	} {
		log, full := u.allow(tc.addr, now.Add(tc.at))
		if log != tc.log || full != tc.full {
			t.Errorf("%s: log %v full %v, want %v %v", tc.name, log, full, tc.log, tc.full)
		}
	}

	// A flood of spoofed sources: the table stays bounded, one line says
	// so, the rest are only counted.
	u = newUnknownSources()
	spoof := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	logged, fullLines := 0, 0
	for i := range 100 * maxUnknownSources {
		log, full := u.allow(spoof(i), now)
		if log {
			logged++
		}
		if log && full {
			fullLines++
		}
	}
	if len(u.last) > maxUnknownSources {
		t.Fatalf("%d addresses remembered, over %d", len(u.last), maxUnknownSources)
	}
	if logged != maxUnknownSources+1 || fullLines != 1 {
		t.Fatalf("%d lines (%d saying the table is full), want %d and 1", logged, fullLines, maxUnknownSources+1)
	}
	// A minute on, old entries make room again.
	if log, full := u.allow(netip.MustParseAddr("198.51.100.1"), now.Add(unknownEvery)); !log || full {
		t.Fatalf("after a minute: log %v full %v, want a line for the new address", log, full)
	}
}
