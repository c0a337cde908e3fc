package local_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/dirtest"
	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
)

// fast are the cheapest parameters local accepts, so tests run quickly.
var fast = local.Argon2{Time: 1, MemoryKiB: local.MinMemoryKiB, Threads: 1}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func hash(t *testing.T, p local.Argon2, pw string) string {
	t.Helper()
	h, err := local.HashPassword(p, pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func fixture(t *testing.T) (dirtest.Fixture, store.Store) {
	st := openStore(t)
	err := st.CreateUsers(t.Context(),
		store.User{Name: "alice", DisplayName: "Alice Liddell", Email: "alice@example.org",
			Groups: []string{"staff", "admins"}, Status: store.UserActive, PasswordHash: hash(t, fast, "alice-pw")},
		store.User{Name: "bob", Status: store.UserDisabled, PasswordHash: hash(t, fast, "bob-pw")},
		store.User{Name: "carol", Status: store.UserActive}, // no local password
	)
	if err != nil {
		t.Fatal(err)
	}
	d, err := local.Open("local", st, fast, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return dirtest.Fixture{
		Dir: d, User: "alice", Password: "alice-pw", DisplayName: "Alice Liddell",
		Email: "alice@example.org", Groups: []string{"admins", "staff"},
		Disabled: "bob", DisabledPassword: "bob-pw", Unknown: "nobody",
	}, st
}

func TestConformance(t *testing.T) {
	dirtest.Run(t, func(t *testing.T) dirtest.Fixture { f, _ := fixture(t); return f })
}

func TestNoLocalPassword(t *testing.T) {
	f, _ := fixture(t)
	for _, pw := range []string{"x", "alice-pw"} {
		if _, err := f.Dir.Authenticate(t.Context(), "carol", pw); !errors.Is(err, directory.ErrInvalidCredentials) {
			t.Errorf("carol (no hash), %q: err = %v, want ErrInvalidCredentials", pw, err)
		}
	}
}

func TestDisabledWrongPassword(t *testing.T) {
	// A disabled account is only revealed to someone who knows the password.
	f, _ := fixture(t)
	_, err := f.Dir.Authenticate(t.Context(), "bob", "wrong")
	if !errors.Is(err, directory.ErrInvalidCredentials) || errors.Is(err, directory.ErrDisabled) {
		t.Errorf("disabled user, wrong password: err = %v, want ErrInvalidCredentials only", err)
	}
}

func TestRehash(t *testing.T) {
	st := openStore(t)
	old := local.Argon2{Time: 2, MemoryKiB: local.MinMemoryKiB, Threads: 1}
	oldHash := hash(t, old, "pw")
	if err := st.CreateUsers(t.Context(), store.User{Name: "alice", Status: store.UserActive, PasswordHash: oldHash}); err != nil {
		t.Fatal(err)
	}
	d, err := local.Open("local", st, fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(t.Context(), "alice", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if u, _ := st.GetUser(t.Context(), "alice"); u.PasswordHash != oldHash {
		t.Fatal("hash changed after a failed login")
	}
	if _, err := d.Authenticate(t.Context(), "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	u, err := st.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash == oldHash || !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Fatalf("hash after login = %q, want a t=1 hash", u.PasswordHash)
	}
	// The new hash works and is not replaced again.
	if _, err := d.Authenticate(t.Context(), "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if u2, _ := st.GetUser(t.Context(), "alice"); u2.PasswordHash != u.PasswordHash {
		t.Error("hash with current parameters was replaced")
	}
}

// racingUsers changes the user's password between GetUser and the rehash.
type racingUsers struct {
	store.Users
	once sync.Once
}

func (r *racingUsers) UpdateUser(ctx context.Context, name string, fn func(store.User) (store.User, error)) (store.User, error) {
	r.once.Do(func() {
		_, err := r.Users.UpdateUser(ctx, name, func(u store.User) (store.User, error) {
			u.PasswordHash = "$changed$"
			return u, nil
		})
		if err != nil {
			panic(err)
		}
	})
	return r.Users.UpdateUser(ctx, name, fn)
}

func TestRehashKeepsConcurrentChange(t *testing.T) {
	st := openStore(t)
	old := local.Argon2{Time: 2, MemoryKiB: local.MinMemoryKiB, Threads: 1}
	if err := st.CreateUsers(t.Context(), store.User{Name: "alice", Status: store.UserActive, PasswordHash: hash(t, old, "pw")}); err != nil {
		t.Fatal(err)
	}
	d, err := local.Open("local", &racingUsers{Users: st}, fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(t.Context(), "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if u, _ := st.GetUser(t.Context(), "alice"); u.PasswordHash != "$changed$" {
		t.Errorf("hash = %q: the rehash overwrote a password set meanwhile", u.PasswordHash)
	}
}

func TestMalformedStoredHash(t *testing.T) {
	st := openStore(t)
	bad := "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA" // 4 GiB: refused
	if err := st.CreateUsers(t.Context(), store.User{Name: "alice", Status: store.UserActive, PasswordHash: bad}); err != nil {
		t.Fatal(err)
	}
	d, err := local.Open("local", st, fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Authenticate(t.Context(), "alice", "pw")
	if !errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
}

func TestLookupHasNoPassword(t *testing.T) {
	f, _ := fixture(t)
	id, err := f.Dir.Lookup(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if id.DN != "" {
		t.Errorf("DN = %q, want empty", id.DN)
	}
}

func TestOpenRejects(t *testing.T) {
	st := openStore(t)
	for name, p := range map[string]local.Argon2{
		"zero":        {},
		"huge memory": {Time: 1, MemoryKiB: 1 << 22, Threads: 1},
		"many passes": {Time: 100, MemoryKiB: local.MinMemoryKiB, Threads: 1},
	} {
		if _, err := local.Open("local", st, p, nil); err == nil {
			t.Errorf("%s: Open accepted %+v", name, p)
		}
	}
	if _, err := local.Open("local", nil, fast, nil); err == nil {
		t.Error("Open accepted a nil store")
	}
}

// BenchmarkAuthenticate runs local logins at the default argon2id
// parameters, which is what a production node pays per password check.
func BenchmarkAuthenticate(b *testing.B) {
	st, err := sqlite.Open(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "bridge.db")}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	params := local.DefaultArgon2()
	h, err := local.HashPassword(params, "alice-pw")
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateUsers(b.Context(), store.User{Name: "alice", Status: store.UserActive, PasswordHash: h}); err != nil {
		b.Fatal(err)
	}
	d, err := local.Open("local", st, params, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	dirtest.Bench(b, dirtest.Fixture{Dir: d, User: "alice", Password: "alice-pw", Unknown: "nobody"})
}
