package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestSealRoundTrip(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	pt := []byte("secret material")
	sealed, err := s.Seal(pt, "ad:1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, pt) {
		t.Error("sealed value contains the plaintext")
	}
	again, _ := s.Seal(pt, "ad:1")
	if bytes.Equal(sealed, again) {
		t.Error("two seals of one plaintext are equal (nonce reuse?)")
	}
	got, err := s.Open(sealed, "ad:1")
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	empty, _ := s.Seal(nil, "ad")
	if got, err := s.Open(empty, "ad"); err != nil || len(got) != 0 {
		t.Errorf("empty plaintext: %q, %v", got, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	s, other := newSealer(t), newSealer(t)
	sealed, err := s.Seal([]byte("secret"), "ad:1")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x80
		return b
	}
	tests := []struct {
		name   string
		sealer *Sealer
		in     []byte
		ad     string
	}{
		{"other KEK", other, sealed, "ad:1"},
		{"other ad", s, sealed, "ad:2"},
		{"empty ad", s, sealed, ""},
		{"version byte", s, flip(0), "ad:1"},
		{"nonce byte", s, flip(5), "ad:1"},
		{"ciphertext byte", s, flip(14), "ad:1"},
		{"tag byte", s, flip(len(sealed) - 1), "ad:1"},
		{"truncated", s, sealed[:len(sealed)-1], "ad:1"},
		{"too short", s, sealed[:10], "ad:1"},
		{"nil", s, nil, "ad:1"},
		{"appended", s, append(bytes.Clone(sealed), 0), "ad:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.sealer.Open(tc.in, tc.ad); !errors.Is(err, ErrUnseal) {
				t.Errorf("Open = %v, want ErrUnseal", err)
			}
		})
	}
}

func TestNewSealer(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte KEK", n)
		}
	}
	kek := bytes.Repeat([]byte{7}, KEKSize)
	a, _ := NewSealer(kek)
	b, _ := NewSealer(bytes.Clone(kek))
	c, _ := NewSealer(bytes.Repeat([]byte{8}, KEKSize))
	if a.ID() != b.ID() || a.ID() == c.ID() || len(a.ID()) != 12 {
		t.Errorf("IDs %q %q %q: want equal for one KEK, different for another", a.ID(), b.ID(), c.ID())
	}
	if strings.Contains(hex.EncodeToString(kek), a.ID()) {
		t.Error("ID reveals the KEK")
	}
}

func TestParseKEK(t *testing.T) {
	t.Parallel()
	kek := make([]byte, KEKSize)
	for i := range kek {
		kek[i] = byte(i * 7)
	}
	good := map[string]string{
		"hex":             hex.EncodeToString(kek),
		"hex upper":       strings.ToUpper(hex.EncodeToString(kek)),
		"base64":          base64.StdEncoding.EncodeToString(kek),
		"base64 raw":      base64.RawStdEncoding.EncodeToString(kek),
		"base64url":       base64.URLEncoding.EncodeToString(kek),
		"base64url raw":   base64.RawURLEncoding.EncodeToString(kek),
		"trailing space":  base64.StdEncoding.EncodeToString(kek) + "\n",
		"leading space":   "  " + hex.EncodeToString(kek),
		"base64 of 0xff…": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, KEKSize)),
	}
	for name, text := range good {
		t.Run(name, func(t *testing.T) {
			got, err := ParseKEK(text)
			if err != nil {
				t.Fatalf("ParseKEK: %v", err)
			}
			if len(got) != KEKSize {
				t.Fatalf("got %d bytes", len(got))
			}
			if name != "base64 of 0xff…" && !bytes.Equal(got, kek) {
				t.Errorf("got %x", got)
			}
		})
	}
	bad := map[string]string{
		"empty":       "",
		"short hex":   hex.EncodeToString(kek[:16]),
		"long base64": base64.StdEncoding.EncodeToString(append(bytes.Clone(kek), 1)),
		"16 bytes":    base64.StdEncoding.EncodeToString(kek[:16]),
		"garbage":     "not a key at all!",
		"passphrase":  "correct horse battery staple",
	}
	for name, text := range bad {
		t.Run("bad "+name, func(t *testing.T) {
			if got, err := ParseKEK(text); err == nil {
				t.Errorf("ParseKEK accepted %q as %x", text, got)
			}
		})
	}
}

func TestGenerateKEK(t *testing.T) {
	t.Parallel()
	kek, text, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseKEK(text)
	if err != nil || !bytes.Equal(parsed, kek) || len(kek) != KEKSize {
		t.Fatalf("ParseKEK(GenerateKEK text) = %x, %v; want %x", parsed, err, kek)
	}
	other, _, _ := GenerateKEK()
	if bytes.Equal(kek, other) {
		t.Error("two generated KEKs are equal")
	}
	if _, err := NewSealer(kek); err != nil {
		t.Error(err)
	}
}

func TestDeriveKey(t *testing.T) {
	kek1, _, _ := GenerateKEK()
	kek2, _, _ := GenerateKEK()
	s1, _ := NewSealer(kek1)
	s1again, _ := NewSealer(kek1)
	s2, _ := NewSealer(kek2)
	a := s1.DeriveKey("audit-chain")
	if len(a) != 32 {
		t.Fatalf("derived key is %d bytes", len(a))
	}
	if !bytes.Equal(a, s1again.DeriveKey("audit-chain")) {
		t.Fatal("same KEK and label gave different keys")
	}
	if bytes.Equal(a, s1.DeriveKey("bypass-code")) {
		t.Fatal("different labels gave the same key")
	}
	if bytes.Equal(a, s2.DeriveKey("audit-chain")) {
		t.Fatal("different KEKs gave the same key")
	}
	if bytes.Equal(a, kek1) {
		t.Fatal("derived key is the KEK itself")
	}
}
