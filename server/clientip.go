package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns how a handler learns a request's client address: the
// peer's address, or, when the peer is one of the trusted proxies, the
// address the proxies recorded in X-Forwarded-For (the nearest one that is
// not itself a trusted proxy). Without trusted proxies the header is never
// read: anyone can write it.
func ClientIP(trusted []netip.Prefix) func(*http.Request) string {
	return func(r *http.Request) string {
		peer := peerAddr(r)
		if !within(peer, trusted) {
			return addrString(peer, r.RemoteAddr)
		}
		hops := forwardedFor(r)
		for i := len(hops) - 1; i >= 0; i-- {
			if !within(hops[i], trusted) {
				return hops[i].String()
			}
		}
		if len(hops) > 0 {
			return hops[0].String()
		}
		return addrString(peer, r.RemoteAddr)
	}
}

func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func addrString(a netip.Addr, raw string) string {
	if a.IsValid() {
		return a.String()
	}
	return raw
}

func within(a netip.Addr, prefixes []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor lists the addresses of every X-Forwarded-For header, in
// order; it stops at the first entry that is not an address, since
// nothing to its left can be trusted either.
func forwardedFor(r *http.Request) []netip.Addr {
	var out []netip.Addr
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for _, part := range strings.Split(h, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(part))
			if err != nil {
				out = out[:0]
				continue
			}
			out = append(out, a.Unmap())
		}
	}
	return out
}
