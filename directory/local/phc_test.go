package local

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/store"
)

var testParams = Argon2{Time: 1, MemoryKiB: MinMemoryKiB, Threads: 1}

func TestHashVerify(t *testing.T) {
	h, err := HashPassword(testParams, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Fatalf("hash = %q", h)
	}
	p, err := parsePHC(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.salt) != 16 || len(p.key) != 32 {
		t.Errorf("salt %d bytes, key %d bytes; want 16 and 32", len(p.salt), len(p.key))
	}
	h2, _ := HashPassword(testParams, "correct horse")
	if h2 == h {
		t.Error("two hashes of one password are equal: salt not random")
	}
	for _, tc := range []struct {
		pw       string
		ok       bool
		want     Argon2
		reHashed bool
	}{
		{"correct horse", true, testParams, false},
		{"correct horse", true, DefaultArgon2(), true},
		{"Correct horse", false, testParams, false},
		{"", false, testParams, false},
	} {
		ok, rehash, err := verify(h, tc.pw, tc.want)
		if err != nil || ok != tc.ok || rehash != tc.reHashed {
			t.Errorf("verify(%q, %+v) = %v, %v, %v; want %v, %v, nil", tc.pw, tc.want, ok, rehash, err, tc.ok, tc.reHashed)
		}
	}
	if ok, rehash, err := VerifyPassword(h, "correct horse"); !ok || !rehash || err != nil {
		t.Errorf("VerifyPassword = %v, %v, %v; want true, true (not the defaults), nil", ok, rehash, err)
	}
}

func TestHashPasswordRejects(t *testing.T) {
	if _, err := HashPassword(testParams, ""); err == nil {
		t.Error("empty password hashed")
	}
	if _, err := HashPassword(testParams, strings.Repeat("x", MaxPasswordLen+1)); err == nil {
		t.Error("over-long password hashed")
	}
	if _, err := HashPassword(Argon2{Time: 1, MemoryKiB: 1, Threads: 1}, "x"); err == nil {
		t.Error("1 KiB memory accepted")
	}
}

func TestParsePHCRejects(t *testing.T) {
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	good := "$argon2id$v=19$m=65536,t=3,p=2$" + salt + "$" + key
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("good hash refused: %v", err)
	}
	for name, s := range map[string]string{
		"empty":            "",
		"argon2i":          "$argon2i$v=19$m=65536,t=3,p=2$" + salt + "$" + key,
		"version 16":       "$argon2id$v=16$m=65536,t=3,p=2$" + salt + "$" + key,
		"no version":       "$argon2id$m=65536,t=3,p=2$" + salt + "$" + key,
		"order":            "$argon2id$v=19$t=3,m=65536,p=2$" + salt + "$" + key,
		"leading zero":     "$argon2id$v=19$m=065536,t=3,p=2$" + salt + "$" + key,
		"sign":             "$argon2id$v=19$m=+65536,t=3,p=2$" + salt + "$" + key,
		"huge memory":      "$argon2id$v=19$m=4294967295,t=3,p=2$" + salt + "$" + key,
		"overflow":         "$argon2id$v=19$m=99999999999,t=3,p=2$" + salt + "$" + key,
		"many passes":      "$argon2id$v=19$m=65536,t=1000,p=2$" + salt + "$" + key,
		"zero threads":     "$argon2id$v=19$m=65536,t=3,p=0$" + salt + "$" + key,
		"many threads":     "$argon2id$v=19$m=65536,t=3,p=255$" + salt + "$" + key,
		"too much work":    "$argon2id$v=19$m=1048576,t=16,p=2$" + salt + "$" + key,
		"padded salt":      "$argon2id$v=19$m=65536,t=3,p=2$" + salt + "==$" + key,
		"short salt":       "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$" + key,
		"short key":        "$argon2id$v=19$m=65536,t=3,p=2$" + salt + "$aGFzaA",
		"bad base64":       "$argon2id$v=19$m=65536,t=3,p=2$" + salt + "$" + key[:len(key)-1] + "!",
		"non-canonical":    "$argon2id$v=19$m=65536,t=3,p=2$" + salt[:len(salt)-1] + "B$" + key,
		"trailing field":   good + "$",
		"extra parameter":  "$argon2id$v=19$m=65536,t=3,p=2,k=1$" + salt + "$" + key,
		"missing hash":     "$argon2id$v=19$m=65536,t=3,p=2$" + salt,
		"keyid in params":  "$argon2id$v=19$m=65536,t=3,p=2,keyid=x$" + salt + "$" + key,
		"space":            "$argon2id$v=19$m=65536, t=3,p=2$" + salt + "$" + key,
		"data after hash ": good + " ",
	} {
		if _, err := parsePHC(s); !errors.Is(err, errMalformed) {
			t.Errorf("%s: parsePHC(%q) err = %v, want errMalformed", name, s, err)
		}
		if _, _, err := VerifyPassword(s, "x"); err == nil {
			t.Errorf("%s: VerifyPassword accepted %q", name, s)
		}
	}
}

// FuzzParsePHC: no panic on any stored string, and whatever parses is in
// canonical form (String gives it back unchanged) with bounded parameters.
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2i$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("parsed %q but String() = %q", s, p.String())
		}
		if err := p.params.Validate(); err != nil {
			t.Fatalf("parsed %q with out-of-bounds parameters: %v", s, err)
		}
	})
}

// fakeUsers knows one user, or none.
type fakeUsers struct {
	store.Users
	u *store.User
}

func (f fakeUsers) GetUser(_ context.Context, name string) (store.User, error) {
	if f.u != nil && f.u.Name == name {
		return *f.u, nil
	}
	return store.User{}, store.ErrNotFound
}

// TestUnknownUserRunsArgon2 holds the whole hashing memory budget: a login for an
// unknown user must then wait for one (it verifies the dummy hash) until its
// context ends, just like a known user's login does.
func TestUnknownUserRunsArgon2(t *testing.T) {
	known := store.User{Name: "alice", Status: store.UserActive, PasswordHash: "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA"}
	for name, u := range map[string]*store.User{"unknown": nil, "known": &known, "no hash": {Name: "alice", Status: store.UserActive}} {
		t.Run(name, func(t *testing.T) {
			dd, err := Open("local", fakeUsers{u: u}, testParams, nil)
			if err != nil {
				t.Fatal(err)
			}
			d := dd.(*dir)
			if err := d.mem.Acquire(t.Context(), d.budget); err != nil { // all of the budget
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err = d.Authenticate(ctx, "alice", "pw")
			if !errors.Is(err, directory.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("with all hashing slots taken: err = %v, want ErrUnavailable and DeadlineExceeded", err)
			}
			d.mem.Release(d.budget)
			ctx2, cancel2 := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel2()
			if _, err := d.Authenticate(ctx2, "alice", "pw"); !errors.Is(err, directory.ErrInvalidCredentials) {
				t.Errorf("with free slots: err = %v, want ErrInvalidCredentials", err)
			}
		})
	}
}

// TestOversizedHashRunsAlone: a stored hash asking for more memory than the
// whole budget waits until no other hash runs, so tampered records cannot
// multiply peak memory.
func TestOversizedHashRunsAlone(t *testing.T) {
	big := Argon2{Time: 1, MemoryKiB: 64 * 1024, Threads: 1} // larger than the test budget below
	h, err := HashPassword(big, "pw")
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{Name: "alice", Status: store.UserActive, PasswordHash: h}
	dd, err := Open("local", fakeUsers{u: &u}, testParams, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := dd.(*dir)
	if int64(big.MemoryKiB) <= d.budget {
		t.Skipf("budget %d KiB is not smaller than the hash's %d KiB on this many CPUs", d.budget, big.MemoryKiB)
	}
	// One ordinary run in progress.
	if err := d.mem.Acquire(t.Context(), int64(testParams.MemoryKiB)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.Authenticate(ctx, "alice", "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("oversized hash beside another run: err = %v, want it to wait (DeadlineExceeded)", err)
	}
	d.mem.Release(int64(testParams.MemoryKiB))
	// Alone it runs: a wrong password is verified and refused (a right one
	// would trigger a rehash, which this fake store cannot take).
	if _, err := d.Authenticate(t.Context(), "alice", "wrong"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Fatalf("oversized hash alone: err = %v, want ErrInvalidCredentials", err)
	}
}
