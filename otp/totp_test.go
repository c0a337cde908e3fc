package otp

import (
	"bytes"
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	potp "github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/store"
)

func newTOTP(t *testing.T, st store.OTP, s *keys.Sealer, clock *testenv.Clock, cfg TOTPConfig) *TOTP {
	t.Helper()
	v, err := NewTOTP(st, s, cfg, clock.Now)
	if err != nil {
		t.Fatalf("NewTOTP: %v", err)
	}
	return v
}

// codeAt is the code of an enrollment at time at, computed by pquerna/otp's
// TOTP code (not by this package), with the enrollment's parameters.
func codeAt(t *testing.T, e Enrollment, at time.Time) string {
	t.Helper()
	k, err := potp.NewKeyFromURL(e.URI)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCodeCustom(e.Secret, at, totp.ValidateOpts{
		Period: uint(k.Period()), Digits: k.Digits(), Algorithm: k.Algorithm(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestTOTPReplayInSameWindowRejected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s, clock := openStore(t), newSealer(t), newClock()
	cfg := DefaultTOTPConfig("Bridge")
	node1 := newTOTP(t, st, s, clock, cfg)
	node2 := newTOTP(t, st, s, clock, cfg) // a second node on the same store
	e, err := node1.Enroll(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	code := codeAt(t, e, clock.Now())

	if err := node1.Verify(ctx, "alice", code); err != nil {
		t.Fatalf("first use of a good code: %v", err)
	}
	clock.Add(10 * time.Second) // still the same 30 s window
	if err := node1.Verify(ctx, "alice", code); !errors.Is(err, ErrReplay) {
		t.Errorf("second use on the same node = %v, want ErrReplay", err)
	}
	if err := node2.Verify(ctx, "alice", code); !errors.Is(err, ErrReplay) {
		t.Errorf("second use on another node = %v, want ErrReplay", err)
	}
	// The next window's code still works once.
	clock.Add(30 * time.Second)
	next := codeAt(t, e, clock.Now())
	if err := node2.Verify(ctx, "alice", next); err != nil {
		t.Errorf("next window's code: %v", err)
	}
}

func TestTOTPConcurrentVerifiersOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s, clock := openStore(t), newSealer(t), newClock()
	v := newTOTP(t, st, s, clock, DefaultTOTPConfig("Bridge"))
	e, err := v.Enroll(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	code := codeAt(t, e, clock.Now())
	const n = 10
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- v.Verify(ctx, "alice", code) })
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrReplay):
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d verifiers accepted the code, want 1", ok)
	}
}

func TestTOTPOlderCodeAfterNewerRejected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s, clock := openStore(t), newSealer(t), newClock()
	v := newTOTP(t, st, s, clock, DefaultTOTPConfig("Bridge")) // skew 1
	e, err := v.Enroll(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	older := codeAt(t, e, clock.Now().Add(-30*time.Second))
	newer := codeAt(t, e, clock.Now())
	if older == newer {
		t.Skip("the two steps happen to have one code")
	}
	if err := v.Verify(ctx, "alice", newer); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(ctx, "alice", older); !errors.Is(err, ErrReplay) {
		t.Errorf("older code after a newer one = %v, want ErrReplay", err)
	}
}

func TestTOTPSkew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s, clock := openStore(t), newSealer(t), newClock()
	for _, skew := range []int{0, 1, 2} {
		cfg := DefaultTOTPConfig("Bridge")
		cfg.Skew = skew
		v := newTOTP(t, st, s, clock, cfg)
		for steps := -skew - 2; steps <= skew+2; steps++ {
			t.Run(fmt.Sprintf("skew %d step %+d", skew, steps), func(t *testing.T) {
				user := fmt.Sprintf("user-%d-%d", skew, steps)
				e, err := v.Enroll(ctx, user)
				if err != nil {
					t.Fatal(err)
				}
				code := codeAt(t, e, clock.Now().Add(time.Duration(steps)*30*time.Second))
				if code == codeAt(t, e, clock.Now()) && steps != 0 {
					t.Skip("collision with the current step's code")
				}
				err = v.Verify(ctx, user, code)
				if want := steps >= -skew && steps <= skew; want != (err == nil) {
					t.Errorf("Verify = %v, want accepted %v", err, want)
				}
				if err != nil && !errors.Is(err, ErrInvalidCode) {
					t.Errorf("Verify = %v, want ErrInvalidCode", err)
				}
			})
		}
	}
}

// RFC 6238 Appendix B: seeds are the ASCII digits repeated to the hash size.
func TestRFC6238Vectors(t *testing.T) {
	t.Parallel()
	seeds := map[string][]byte{
		"SHA1":   []byte("12345678901234567890"),
		"SHA256": []byte("12345678901234567890123456789012"),
		"SHA512": []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	vectors := []struct {
		unix int64
		want map[string]string
	}{
		{59, map[string]string{"SHA1": "94287082", "SHA256": "46119246", "SHA512": "90693936"}},
		{1111111109, map[string]string{"SHA1": "07081804", "SHA256": "68084774", "SHA512": "25091201"}},
		{1111111111, map[string]string{"SHA1": "14050471", "SHA256": "67062674", "SHA512": "99943326"}},
		{1234567890, map[string]string{"SHA1": "89005924", "SHA256": "91819424", "SHA512": "93441116"}},
		{2000000000, map[string]string{"SHA1": "69279037", "SHA256": "90698825", "SHA512": "38618901"}},
		{20000000000, map[string]string{"SHA1": "65353130", "SHA256": "77737706", "SHA512": "47863826"}},
	}
	ctx := context.Background()
	st, s := openStore(t), newSealer(t)
	for _, vec := range vectors {
		for alg, want := range vec.want {
			t.Run(fmt.Sprintf("%s at %d", alg, vec.unix), func(t *testing.T) {
				got, err := generateCode(seeds[alg], uint64(vec.unix/30), alg, 8)
				if err != nil || got != want {
					t.Fatalf("generateCode = %q, %v; want %q", got, err, want)
				}
				// The same through Verify, with the seed as a stored token.
				user := fmt.Sprintf("rfc-%s-%d", strings.ToLower(alg), vec.unix)
				sealed, err := s.Seal(seeds[alg], totpAD(user))
				if err != nil {
					t.Fatal(err)
				}
				err = st.PutTOTP(ctx, store.TOTP{User: user, SealedSecret: sealed, Algorithm: alg, Digits: 8, Period: 30 * time.Second, LastCounter: -1})
				if err != nil {
					t.Fatal(err)
				}
				cfg := DefaultTOTPConfig("Bridge")
				cfg.Skew = 0
				at := testenv.NewClock(time.Unix(vec.unix, 0))
				v := newTOTP(t, st, s, at, cfg)
				if err := v.Verify(ctx, user, want); err != nil {
					t.Errorf("Verify of the RFC code: %v", err)
				}
			})
		}
	}
}

func TestTOTPMalformedInputNoStoreIO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := &countingStore{OTP: openStore(t)}
	s, clock := newSealer(t), newClock()
	v := newTOTP(t, cs, s, clock, DefaultTOTPConfig("Bridge"))
	if _, err := v.Enroll(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	before := cs.n.Load()
	for _, in := range malformedCodes {
		if err := v.Verify(ctx, "alice", in); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("Verify(%q) = %v, want ErrInvalidCode", in, err)
		}
	}
	if n := cs.n.Load() - before; n != 0 {
		t.Errorf("malformed input made %d store calls", n)
	}
	// Well-formed but wrong: an 8-digit code for a 6-digit token, a wrong code.
	for _, in := range []string{"12345678", "000000"} {
		if err := v.Verify(ctx, "alice", in); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("Verify(%q) = %v, want ErrInvalidCode", in, err)
		}
	}
}

func TestTOTPCodeWithSeparators(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s, clock := openStore(t), newSealer(t), newClock()
	v := newTOTP(t, st, s, clock, DefaultTOTPConfig("Bridge"))
	for i, format := range []func(string) string{
		func(c string) string { return c[:3] + " " + c[3:] },
		func(c string) string { return c[:3] + "-" + c[3:] },
		func(c string) string { return " " + c + "\n" },
	} {
		user := fmt.Sprintf("user%d", i)
		e, err := v.Enroll(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		in := format(codeAt(t, e, clock.Now()))
		if err := v.Verify(ctx, user, in); err != nil {
			t.Errorf("Verify(%q): %v", in, err)
		}
	}
}

func TestTOTPEnrollAndLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s, clock := openStore(t), newSealer(t), newClock()
	cfg := TOTPConfig{Issuer: "Example Bridge", Algorithm: "sha256", Digits: 8, Period: 60 * time.Second, Skew: 1}
	v := newTOTP(t, st, s, clock, cfg)

	if err := v.Verify(ctx, "alice", "12345678"); !errors.Is(err, ErrNoToken) {
		t.Errorf("Verify without a token = %v, want ErrNoToken", err)
	}
	if has, err := v.Has(ctx, "alice"); err != nil || has {
		t.Errorf("Has before enrolment = %v, %v", has, err)
	}
	if err := v.Remove(ctx, "alice"); !errors.Is(err, ErrNoToken) {
		t.Errorf("Remove without a token = %v, want ErrNoToken", err)
	}

	e, err := v.Enroll(ctx, " Alice ") // names are normalised
	if err != nil {
		t.Fatal(err)
	}
	k, err := potp.NewKeyFromURL(e.URI)
	if err != nil {
		t.Fatal(err)
	}
	if k.Type() != "totp" || k.Issuer() != "Example Bridge" || k.AccountName() != "alice" ||
		k.Algorithm() != potp.AlgorithmSHA256 || k.Digits() != 8 || k.Period() != 60 || k.Secret() != e.Secret {
		t.Errorf("URI %s does not carry the configuration", e.URI)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(secret) != SecretSize {
		t.Fatalf("secret %q: %d bytes, %v", e.Secret, len(secret), err)
	}
	if has, err := v.Has(ctx, "ALICE"); err != nil || !has {
		t.Errorf("Has after enrolment = %v, %v", has, err)
	}
	if err := v.Verify(ctx, "alice", codeAt(t, e, clock.Now())); err != nil {
		t.Errorf("Verify of an 8-digit SHA256 code: %v", err)
	}

	// Enrolling again replaces the token: the old secret stops working.
	clock.Add(time.Minute)
	e2, err := v.Enroll(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if e2.Secret == e.Secret {
		t.Fatal("re-enrolment kept the secret")
	}
	if old, cur := codeAt(t, e, clock.Now()), codeAt(t, e2, clock.Now()); old != cur {
		if err := v.Verify(ctx, "alice", old); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("old token's code after re-enrolment = %v", err)
		}
	}
	if err := v.Remove(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if has, _ := v.Has(ctx, "alice"); has {
		t.Error("Has after Remove")
	}
}

func TestTOTPSecretAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s, clock := openStore(t), newSealer(t), newClock()
	v := newTOTP(t, st, s, clock, DefaultTOTPConfig("Bridge"))
	e, err := v.Enroll(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	tok, err := st.GetTOTP(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(tok.SealedSecret, secret) || bytes.Contains(tok.SealedSecret, []byte(e.Secret)) {
		t.Error("the store holds the TOTP secret in the clear")
	}
	if tok.LastCounter != -1 || tok.Algorithm != "SHA1" || tok.Digits != 6 || tok.Period != 30*time.Second {
		t.Errorf("stored token %+v", tok)
	}
	if pt, err := s.Open(tok.SealedSecret, totpAD("alice")); err != nil || !bytes.Equal(pt, secret) {
		t.Errorf("sealed secret does not open to the secret: %v", err)
	}
	if _, err := s.Open(tok.SealedSecret, totpAD("bob")); err == nil {
		t.Error("alice's sealed secret opens as bob's")
	}
	if _, err := newSealer(t).Open(tok.SealedSecret, totpAD("alice")); err == nil {
		t.Error("sealed secret opens under another KEK")
	}

	// Copied onto bob's record, alice's secret does not verify for bob.
	tok.User = "bob"
	if err := st.PutTOTP(ctx, tok); err != nil {
		t.Fatal(err)
	}
	err = v.Verify(ctx, "bob", codeAt(t, e, clock.Now()))
	if err == nil || errors.Is(err, ErrInvalidCode) {
		t.Errorf("Verify with a moved secret = %v, want an unseal error", err)
	}
}

func TestTOTPConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  TOTPConfig
		want []string
	}{
		{"default", DefaultTOTPConfig("Bridge"), nil},
		{"zero fields take defaults", TOTPConfig{Issuer: "Bridge"}, nil},
		{"sha512 8 digits", TOTPConfig{Issuer: "B", Algorithm: "SHA512", Digits: 8, Period: time.Minute, Skew: 3}, nil},
		{"no issuer", TOTPConfig{}, []string{"issuer is empty"}},
		{"colon", TOTPConfig{Issuer: "a:b"}, []string{"colon"}},
		{"everything wrong", TOTPConfig{Issuer: "B", Algorithm: "MD5", Digits: 7, Period: 1500 * time.Millisecond, Skew: -1},
			[]string{"algorithm", "digits", "period", "skew"}},
		{"huge skew and period", TOTPConfig{Issuer: "B", Period: time.Hour, Skew: 11}, []string{"period", "skew"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
