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
			a, err := parseHop(hops[i])
			if err != nil {
				// Not an address (an obfuscated identifier, garbage):
				// nothing to its left can be trusted, and the proxy's own
				// address would put every client in one bucket. The entry
				// itself stands for the client.
				return truncateHop(hops[i])
			}
			if !within(a, trusted) {
				return a.String()
			}
		}
		if len(hops) > 0 {
			if a, err := parseHop(hops[0]); err == nil {
				return a.String()
			}
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

// forwardedFor lists the entries of every X-Forwarded-For header, in
// order.
func forwardedFor(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for _, part := range strings.Split(h, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// parseHop reads one X-Forwarded-For entry: an address, possibly quoted,
// with a port ("192.0.2.1:4711", "[2001:db8::1]:4711") or in brackets.
func parseHop(s string) (netip.Addr, error) {
	s = strings.Trim(s, `"`)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return a.Unmap(), err
}

// truncateHop bounds an entry that is not an address, used as the
// client's name.
func truncateHop(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
