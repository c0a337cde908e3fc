package server

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name, peer string
		xff        []string
		trusted    []netip.Prefix
		want       string
	}{
		{"no proxies: the header is ignored", "203.0.113.5:1234", []string{"198.51.100.7"}, nil, "203.0.113.5"},
		{"untrusted peer: the header is ignored", "203.0.113.5:1234", []string{"198.51.100.7"}, proxies, "203.0.113.5"},
		{"trusted peer: the client it names", "10.1.2.3:1234", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"a spoofed entry left of the real one is skipped", "10.1.2.3:1234", []string{"1.2.3.4, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"chained proxies are walked past", "10.1.2.3:1234", []string{"198.51.100.7, 10.9.9.9"}, proxies, "198.51.100.7"},
		{"several headers read in order", "10.1.2.3:1234", []string{"1.2.3.4", "198.51.100.7, 10.9.9.9"}, proxies, "198.51.100.7"},
		{"an entry that is not an address stands for the client", "10.1.2.3:1234", []string{"198.51.100.7, nonsense, 10.9.9.9"}, proxies, "nonsense"},
		{"ports, brackets and quotes", "10.1.2.3:1234", []string{`"[2001:db8::7]:4711", 10.9.9.9`}, proxies, "2001:db8::7"},
		{"an IPv4 address with a port", "10.1.2.3:1234", []string{"198.51.100.7:4711"}, proxies, "198.51.100.7"},
		{"trusted peer without the header", "10.1.2.3:1234", nil, proxies, "10.1.2.3"},
		{"IPv6 and mapped addresses", "[::1]:1234", []string{"::ffff:198.51.100.7"}, proxies, "198.51.100.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, h := range tc.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			if got := ClientIP(tc.trusted)(r); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
