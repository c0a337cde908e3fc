package otp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/store"
)

func newBypass(t *testing.T, st store.OTP, s *keys.Sealer, clock *testenv.Clock, cfg BypassConfig) *Bypass {
	t.Helper()
	b, err := NewBypass(st, s, cfg, clock.Now)
	if err != nil {
		t.Fatalf("NewBypass: %v", err)
	}
	return b
}

func TestBypassSingleUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, clock := openStore(t), newClock()
	b := newBypass(t, st, newSealer(t), clock, BypassConfig{})
	code, rec, err := b.Issue(ctx, "Alice", 0, "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != DefaultBypassDigits || strings.Trim(code, "0123456789") != "" {
		t.Errorf("code %q is not %d digits", code, DefaultBypassDigits)
	}
	if rec.User != "alice" || rec.CreatedBy != "cli:root" || rec.ID == "" || !rec.ExpiresAt.Equal(clock.Now().Add(DefaultBypassTTL)) {
		t.Errorf("record %+v", rec)
	}
	if bytes.Contains(rec.Hash, []byte(code)) {
		t.Error("the hash holds the code")
	}

	if err := b.Verify(ctx, "alice", "00000000"); !errors.Is(err, ErrInvalidCode) && code != "00000000" {
		t.Errorf("wrong code = %v, want ErrInvalidCode", err)
	}
	if err := b.Verify(ctx, "bob", code); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("alice's code for bob = %v, want ErrInvalidCode", err)
	}
	if err := b.Verify(ctx, "alice", code); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := b.Verify(ctx, "alice", code); !errors.Is(err, ErrReplay) {
		t.Errorf("second use = %v, want ErrReplay", err)
	}
}

func TestBypassSeparatorsAccepted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, clock := openStore(t), newClock()
	b := newBypass(t, st, newSealer(t), clock, BypassConfig{Digits: 12})
	for _, format := range []func(string) string{
		func(c string) string { return c[:4] + " " + c[4:8] + " " + c[8:] },
		func(c string) string { return c[:4] + "-" + c[4:8] + "-" + c[8:] },
		func(c string) string { return "  " + c + "\r\n" },
	} {
		code, _, err := b.Issue(ctx, "alice", 0, "cli:root")
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != 12 {
			t.Fatalf("code %q is not 12 digits", code)
		}
		if err := b.Verify(ctx, "alice", format(code)); err != nil {
			t.Errorf("Verify(%q): %v", format(code), err)
		}
	}
}

func TestBypassExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, clock := openStore(t), newClock()
	b := newBypass(t, st, newSealer(t), clock, BypassConfig{})
	early, _, err := b.Issue(ctx, "alice", 10*time.Minute, "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	late, _, err := b.Issue(ctx, "alice", 10*time.Minute, "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(10*time.Minute - time.Second)
	if err := b.Verify(ctx, "alice", early); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	clock.Add(time.Second)
	if err := b.Verify(ctx, "alice", late); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("at expiry = %v, want ErrInvalidCode", err)
	}
}

func TestBypassTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, clock := openStore(t), newClock()
	b := newBypass(t, st, newSealer(t), clock, BypassConfig{TTL: 2 * time.Hour, MaxTTL: 24 * time.Hour})
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration // 0: refused
	}{
		{"default", 0, 2 * time.Hour},
		{"short", time.Minute, time.Minute},
		{"at the cap", 24 * time.Hour, 24 * time.Hour},
		{"over the cap", 24*time.Hour + time.Second, 0},
		{"negative", -time.Minute, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, rec, err := b.Issue(ctx, "alice", tc.ttl, "cli:root")
			if tc.want == 0 {
				if err == nil || code != "" {
					t.Errorf("Issue accepted ttl %v", tc.ttl)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.ExpiresAt.Sub(rec.CreatedAt); got != tc.want {
				t.Errorf("lifetime %v, want %v", got, tc.want)
			}
		})
	}
	// A refused Issue stores nothing.
	recs, err := st.ListBypassCodes(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Errorf("%d codes stored, want 3", len(recs))
	}
}

func TestBypassConcurrentVerifiersOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, clock := openStore(t), newClock()
	s := newSealer(t)
	b := newBypass(t, st, s, clock, BypassConfig{})
	other := newBypass(t, st, s, clock, BypassConfig{}) // a second node, same KEK
	code, _, err := b.Issue(ctx, "alice", 0, "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		v := b
		if i%2 == 1 {
			v = other
		}
		wg.Go(func() {
			<-start
			errs <- v.Verify(ctx, "alice", code)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	ok, replays := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrReplay):
			replays++
		default:
			t.Errorf("loser got %v, want ErrReplay", err)
		}
	}
	if ok != 1 || replays != n-1 {
		t.Errorf("%d verifiers accepted the code and %d got ErrReplay, want 1 and %d", ok, replays, n-1)
	}
}

func TestBypassMalformedInputNoStoreIO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := &countingStore{OTP: openStore(t)}
	b := newBypass(t, cs, newSealer(t), newClock(), BypassConfig{})
	inputs := append([]string{"1234567", "123456789012345678901"}, malformedCodes...)
	for _, in := range inputs {
		if len(strings.Trim(in, "0123456789")) == 0 && len(in) >= MinBypassDigits && len(in) <= MaxBypassDigits {
			continue // well formed for bypass codes (8 to 20 digits)
		}
		if err := b.Verify(ctx, "alice", in); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("Verify(%q) = %v, want ErrInvalidCode", in, err)
		}
	}
	if n := cs.n.Load(); n != 0 {
		t.Errorf("malformed input made %d store calls", n)
	}
}

func TestBypassHashFormat(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, bypassKeySize)
	salt := bytes.Repeat([]byte{1}, bypassSaltSize)
	h := hashBypass(key, salt, "alice", "12345678")
	if len(h) != bypassHashSize || h[0] != 2 || !bytes.Equal(h[1:1+bypassSaltSize], salt) {
		t.Fatalf("hash %x", h)
	}
	// The documented format, computed independently.
	m := hmac.New(sha256.New, key)
	m.Write([]byte("bridge-bypass:v2\x00"))
	m.Write(salt)
	m.Write([]byte{0, 0, 0, 5})
	m.Write([]byte("alice12345678"))
	if !bytes.Equal(h[1+bypassSaltSize:], m.Sum(nil)) {
		t.Errorf("MAC %x is not HMAC-SHA256(key, label||salt||len(user)||user||code)", h[1+bypassSaltSize:])
	}
	if !checkBypass(key, h, "alice", "12345678") {
		t.Error("hash does not check")
	}
	for _, tc := range []struct{ user, code string }{
		{"bob", "12345678"},
		{"alice", "12345679"},
		{"alice", "012345678"},
		{"alice1", "2345678"}, // the same bytes, split differently
		{"alic", "e12345678"},
	} {
		if checkBypass(key, h, tc.user, tc.code) {
			t.Errorf("hash checks for %s/%s", tc.user, tc.code)
		}
	}
	v1 := append([]byte{1}, h[1:]...)
	for _, bad := range [][]byte{nil, {}, {2}, h[:1+bypassSaltSize], h[:len(h)-1], append(bytes.Clone(h), 0), v1, append([]byte{3}, h[1:]...)} {
		if checkBypass(key, bad, "alice", "12345678") {
			t.Errorf("malformed stored hash %x checks", bad)
		}
	}
	if bytes.Equal(hashBypass(key, bytes.Repeat([]byte{2}, bypassSaltSize), "alice", "12345678"), h) {
		t.Error("the salt does not change the hash")
	}
	if bytes.Equal(hashBypass(bytes.Repeat([]byte{8}, bypassKeySize), salt, "alice", "12345678"), h) {
		t.Error("the key does not change the hash")
	}
}

// TestBypassNeedsKey: what is stored cannot be checked against a candidate
// code without the KEK. A Bypass with another KEK (another deployment, or
// an attacker with the database only) rejects a valid code, and the stored
// bytes hold neither the code nor any unkeyed hash of it.
func TestBypassNeedsKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, clock := openStore(t), newClock()
	s := newSealer(t)
	b := newBypass(t, st, s, clock, BypassConfig{})
	code, rec, err := b.Issue(ctx, "alice", 0, "cli:root")
	if err != nil {
		t.Fatal(err)
	}

	stranger := newBypass(t, st, newSealer(t), clock, BypassConfig{})
	if err := stranger.Verify(ctx, "alice", code); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("Verify with another KEK = %v, want ErrInvalidCode", err)
	}

	salt := rec.Hash[1 : 1+bypassSaltSize]
	// Candidates an offline attacker could compute without the key.
	var unkeyed [][]byte
	for _, msg := range [][]byte{
		[]byte(code),
		append(append([]byte("bridge-bypass:v1\x00"), salt...), "alice\x00"+code...), // the version 1 hash
		append(append([]byte(bypassMACLabel), salt...), append([]byte{0, 0, 0, 5}, "alice"+code...)...),
	} {
		sum := sha256.Sum256(msg)
		unkeyed = append(unkeyed, sum[:])
	}
	m := hmac.New(sha256.New, nil) // HMAC with an empty key
	m.Write([]byte(bypassMACLabel))
	m.Write(salt)
	m.Write([]byte{0, 0, 0, 5})
	m.Write([]byte("alice" + code))
	unkeyed = append(unkeyed, m.Sum(nil))
	if bytes.Contains(rec.Hash, []byte(code)) {
		t.Error("the stored hash holds the code")
	}
	for _, u := range unkeyed {
		if bytes.Contains(rec.Hash, u) {
			t.Errorf("the stored hash %x holds the unkeyed hash %x", rec.Hash, u)
		}
	}
	if checkBypass(nil, rec.Hash, "alice", code) {
		t.Error("the stored hash checks with an empty key")
	}
	// And it is exactly what the KEK's bypass subkey gives.
	if !bytes.Equal(rec.Hash, hashBypass(s.DeriveKey(BypassKeyLabel), salt, "alice", code)) {
		t.Errorf("stored hash %x is not keyed with DeriveKey(%q)", rec.Hash, BypassKeyLabel)
	}

	// The failed attempt used nothing up: the right key still accepts it once.
	if err := b.Verify(ctx, "alice", code); err != nil {
		t.Fatalf("Verify with the issuing KEK: %v", err)
	}
	if err := stranger.Verify(ctx, "alice", code); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("used code with another KEK = %v, want ErrInvalidCode (not a replay: it cannot tell)", err)
	}
}

// TestBypassUnknownVersionRejected: stored hashes of version 1 (unkeyed
// SHA-256, never deployed), other versions or lengths never verify, and
// do not panic.
func TestBypassUnknownVersionRejected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, clock := openStore(t), newClock()
	b := newBypass(t, st, newSealer(t), clock, BypassConfig{})
	code := "12345678"
	salt := bytes.Repeat([]byte{1}, bypassSaltSize)
	v1 := sha256.New()
	v1.Write([]byte("bridge-bypass:v1\x00"))
	v1.Write(salt)
	v1.Write([]byte("alice\x00" + code))
	good := hashBypass(b.key, salt, "alice", code)
	for i, h := range [][]byte{
		v1.Sum(append([]byte{1}, salt...)),
		append([]byte{1}, good[1:]...),
		append([]byte{0}, good[1:]...),
		append([]byte{255}, good[1:]...),
		good[:len(good)-1],
		append(bytes.Clone(good), 0),
		{2},
	} {
		err := st.CreateBypassCode(ctx, store.BypassCode{
			ID: fmt.Sprintf("bad-%d", i), User: "alice", Hash: h, CreatedBy: "test",
			CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Verify(ctx, "alice", code); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("Verify against malformed or old-version hashes = %v, want ErrInvalidCode", err)
	}
}

func TestNewBypassNeedsSealer(t *testing.T) {
	t.Parallel()
	if _, err := NewBypass(openStore(t), nil, BypassConfig{}, nil); err == nil {
		t.Error("NewBypass accepted a nil sealer")
	}
	if _, err := NewBypass(nil, newSealer(t), BypassConfig{}, nil); err == nil {
		t.Error("NewBypass accepted a nil store")
	}
}

// TestRandomDigitsFrom feeds chosen bytes: those of 250 and up are skipped,
// every other byte v gives the digit v%10, in order, and no byte is read
// beyond the ones needed.
func TestRandomDigitsFrom(t *testing.T) {
	t.Parallel()
	if digitRejectFrom != 250 {
		t.Fatalf("rejection threshold %d, want 250 (the largest multiple of 10 <= 256)", digitRejectFrom)
	}
	// Each kept byte value 0..249 maps to v%10.
	all := make([]byte, 250)
	want := make([]byte, 250)
	for v := range 250 {
		all[v] = byte(v)
		want[v] = '0' + byte(v%10)
	}
	if got, err := randomDigitsFrom(bytes.NewReader(all), 250); err != nil || got != string(want) {
		t.Fatalf("bytes 0..249 gave %q, %v; want %q", got, err, want)
	}

	tests := []struct {
		name string
		in   []byte
		n    int
		want string
	}{
		{"no rejects", []byte{0, 9, 10, 19, 99, 100, 199, 249}, 8, "09099099"},
		{"every rejected value", []byte{250, 251, 252, 253, 254, 255, 1, 2, 3, 4, 5, 6, 7, 8}, 8, "12345678"},
		{"rejects between", []byte{7, 250, 255, 3, 249, 250, 0, 254, 248, 251, 252, 253, 240, 5, 6}, 8, "73908056"},
		{"rejects at the end of a read", []byte{1, 2, 3, 4, 5, 6, 7, 255, 8}, 8, "12345678"},
		{"only what is needed", []byte{255, 255, 42, 43, 44, 45, 46, 47, 48, 49}, 8, "23456789"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(append(bytes.Clone(tc.in), 0xAA, 0xBB)) // trailing bytes must stay unread
			got, err := randomDigitsFrom(r, tc.n)
			if err != nil || got != tc.want {
				t.Fatalf("randomDigitsFrom(% x) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if r.Len() != 2 {
				t.Errorf("%d trailing bytes left unread, want 2", r.Len())
			}
		})
	}

	// Only rejected bytes, then the end: an error, not a hang or a short code.
	if got, err := randomDigitsFrom(bytes.NewReader(bytes.Repeat([]byte{250, 255}, 100)), 8); err == nil {
		t.Errorf("rejected-only stream gave %q, want an error", got)
	}
	if got, err := randomDigitsFrom(iotest.ErrReader(errors.New("boom")), 8); err == nil {
		t.Errorf("failing reader gave %q, want an error", got)
	}
}

// chiSquareDigits is Pearson's statistic of counts against the uniform
// distribution over the 10 digits (9 degrees of freedom).
func chiSquareDigits(counts [10]int) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	e := float64(total) / 10
	x := 0.0
	for _, c := range counts {
		d := float64(c) - e
		x += d * d / e
	}
	return x
}

// chiSquareLimit is the 9-degree-of-freedom chi-square value exceeded with
// probability 1.4e-10 by a uniform generator.
const chiSquareLimit = 65.0

// TestRandomDigitsUniform draws 10^6 digits from crypto/rand and checks them
// with a chi-square test. byte%10 without rejection gives digits 0-5 a
// probability of 26/256 and 6-9 of 25/256: over 10^6 digits that is a
// statistic of about 375 (standard deviation about 39), far above the
// limit, which a correct generator exceeds with probability 1.4e-10. The
// biased case is checked too, with an exact byte%10 distribution.
func TestRandomDigitsUniform(t *testing.T) {
	t.Parallel()
	const n = 1_000_000
	code, err := randomDigits(n)
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != n {
		t.Fatalf("%d digits, want %d", len(code), n)
	}
	var counts [10]int
	for i := range len(code) {
		c := code[i]
		if c < '0' || c > '9' {
			t.Fatalf("byte %q at %d", c, i)
		}
		counts[c-'0']++
	}
	if x := chiSquareDigits(counts); x > chiSquareLimit {
		t.Errorf("chi-square %.1f > %.0f for counts %v", x, chiSquareLimit, counts)
	}

	// The test's power: byte%10 over uniform bytes, exactly (n/256 of each
	// byte value), fails it.
	var biased [10]int
	for v := range 256 {
		biased[v%10] += n / 256
	}
	if x := chiSquareDigits(biased); x < 4*chiSquareLimit {
		t.Errorf("byte%%10 bias gives chi-square %.1f only; the test cannot tell it from uniform", x)
	}
}

func TestBypassConfigValidate(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]BypassConfig{
		"short digits":  {Digits: 6},
		"long digits":   {Digits: 21},
		"ttl over max":  {TTL: 2 * time.Hour, MaxTTL: time.Hour},
		"negative ttl":  {TTL: -1},
		"negative max":  {MaxTTL: -1},
		"default > max": {MaxTTL: time.Minute},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, cfg)
		}
	}
	if err := (BypassConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}
