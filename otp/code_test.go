package otp

import (
	"strings"
	"testing"
)

func TestNormalizeCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" means refused
	}{
		{"123456", "123456"},
		{"123 456", "123456"},
		{"123-456", "123456"},
		{" 123456\n", "123456"},
		{"\t12345678\r\n", "12345678"},
		{"1234-5678-9012", "123456789012"},
		{"12345", ""},
		{"12a456", ""},
		{"１２３４５６", ""},
		{"123456\x00", ""},
		{"123_456", ""},
		{"", ""},
		{"------", ""},
		{strings.Repeat(" ", 50) + "123456", "123456"},
		{strings.Repeat(" ", 70) + "123456", ""},
	}
	for _, tc := range tests {
		got, ok := normalizeCode(tc.in, 6, 12)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("normalizeCode(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

// FuzzNormalizeCode checks the parser of typed codes: it never panics, and
// what it accepts is digits only, within the bounds, and a fixed point.
func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", "1234-5678", " 12345678\n", "", "abc", "１２３", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, bounds := range [][2]int{{6, 8}, {MinBypassDigits, MaxBypassDigits}} {
			got, ok := normalizeCode(in, bounds[0], bounds[1])
			if !ok {
				if got != "" {
					t.Fatalf("refused %q but returned %q", in, got)
				}
				continue
			}
			if len(got) < bounds[0] || len(got) > bounds[1] || strings.Trim(got, "0123456789") != "" {
				t.Fatalf("normalizeCode(%q) = %q", in, got)
			}
			if again, ok := normalizeCode(got, bounds[0], bounds[1]); !ok || again != got {
				t.Fatalf("not a fixed point: %q -> %q -> %q", in, got, again)
			}
		}
	})
}
