package otp

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

func newBypass(t *testing.T, st store.OTP, clock *testClock, cfg BypassConfig) *Bypass {
	t.Helper()
	b, err := NewBypass(st, cfg, clock.Now)
	if err != nil {
		t.Fatalf("NewBypass: %v", err)
	}
	return b
}

func TestBypassSingleUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, clock := openStore(t), newClock()
	b := newBypass(t, st, clock, BypassConfig{})
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
	b := newBypass(t, st, clock, BypassConfig{Digits: 12})
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
	b := newBypass(t, st, clock, BypassConfig{})
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
	b := newBypass(t, st, clock, BypassConfig{TTL: 2 * time.Hour, MaxTTL: 24 * time.Hour})
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
	b := newBypass(t, st, clock, BypassConfig{})
	other := newBypass(t, st, clock, BypassConfig{}) // a second node
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
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrReplay):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d verifiers accepted the code, want exactly 1", ok)
	}
}

func TestBypassMalformedInputNoStoreIO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := &countingStore{OTP: openStore(t)}
	b := newBypass(t, cs, newClock(), BypassConfig{})
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
	salt := bytes.Repeat([]byte{1}, bypassSaltSize)
	h := hashBypass(salt, "alice", "12345678")
	if len(h) != bypassHashSize || h[0] != bypassHashVersion {
		t.Fatalf("hash %x", h)
	}
	if !checkBypass(h, "alice", "12345678") {
		t.Error("hash does not check")
	}
	for _, tc := range []struct{ user, code string }{{"bob", "12345678"}, {"alice", "12345679"}, {"alice", "012345678"}} {
		if checkBypass(h, tc.user, tc.code) {
			t.Errorf("hash checks for %s/%s", tc.user, tc.code)
		}
	}
	for _, bad := range [][]byte{nil, h[:len(h)-1], append([]byte{2}, h[1:]...)} {
		if checkBypass(bad, "alice", "12345678") {
			t.Errorf("malformed stored hash %x checks", bad)
		}
	}
	if bytes.Equal(hashBypass(bytes.Repeat([]byte{2}, bypassSaltSize), "alice", "12345678"), h) {
		t.Error("the salt does not change the hash")
	}
}

func TestRandomDigitsUniform(t *testing.T) {
	t.Parallel()
	var counts [10]int
	for range 1000 {
		code, err := randomDigits(16)
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != 16 {
			t.Fatalf("code %q", code)
		}
		for _, c := range code {
			if c < '0' || c > '9' {
				t.Fatalf("code %q", code)
			}
			counts[c-'0']++
		}
	}
	// 16000 digits, 1600 expected per digit, standard deviation 38: a
	// bound of ±300 fails only for a broken generator.
	for d, n := range counts {
		if n < 1300 || n > 1900 {
			t.Errorf("digit %d drawn %d times of 16000", d, n)
		}
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
