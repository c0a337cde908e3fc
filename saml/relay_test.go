package saml

import (
	"strings"
	"testing"
)

// An IdP-initiated RelayState is a path on the SP: nothing a browser
// could read as another host, not even after it drops control
// characters from the URL (WHATWG URL parsing removes TAB, CR and LF).
func TestSafeRelayState(t *testing.T) {
	cases := []struct {
		name  string
		relay string
		ok    bool
	}{
		{"none", "", true},
		{"root", "/", true},
		{"a path with a query", "/wiki/Main?x=1#top", true},
		{"the longest", "/" + strings.Repeat("a", maxRelayState-1), true},
		{"too long", "/" + strings.Repeat("a", maxRelayState), false},
		{"absolute URL", "https://evil.example/", false},
		{"relative", "wiki", false},
		{"scheme-relative", "//evil.example/", false},
		{"backslash", "/\\evil.example/", false},
		{"TAB after the slash", "/\t/evil.example/", false},
		{"LF after the slash", "/\n/evil.example/", false},
		{"CR after the slash", "/\r/evil.example/", false},
		{"NUL", "/a\x00b", false},
		{"DEL", "/a\x7fb", false},
		{"control character at the end", "/wiki\x1f", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := safeRelayState(c.relay); got != c.ok {
				t.Errorf("safeRelayState(%q) = %v, want %v", c.relay, got, c.ok)
			}
		})
	}
}
