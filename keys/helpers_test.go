package keys

import (
	"context"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
)

// openStore opens a fresh SQLite store in a temporary directory.
func openStore(t *testing.T) store.Store {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "bridge.db"))
}

func openStoreAt(t *testing.T, path string) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newSealer(t *testing.T) *Sealer {
	t.Helper()
	kek := make([]byte, KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newClock() *testenv.Clock {
	return testenv.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// testOptions are fast options: 2048-bit RSA.
func testOptions(clock *testenv.Clock) Options {
	o := Options{RSABits: 2048}
	if clock != nil {
		o.Now = clock.Now
	}
	return o
}

func openManager(t *testing.T, st store.SigningKeys, s *Sealer, opts Options) *Manager {
	t.Helper()
	m, err := Open(context.Background(), st, s, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m
}

// activeIDs maps each spec to the kid of its active signer.
func activeIDs(t *testing.T, m *Manager, specs []Spec) map[Spec]string {
	t.Helper()
	out := map[Spec]string{}
	for _, s := range specs {
		k, err := m.Signer(s.Purpose, s.Algorithm)
		if err != nil {
			t.Fatalf("Signer(%s): %v", s, err)
		}
		out[s] = k.ID
	}
	return out
}

// hookStore wraps a real store to change what the Manager sees.
type hookStore struct {
	store.SigningKeys
	list   func([]store.SigningKey) []store.SigningKey
	create func(context.Context, store.SigningKey) error
	rotate func(ctx context.Context, next store.SigningKey, verifyUntil time.Time) ([]store.SigningKey, error)
}

func (h *hookStore) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	recs, err := h.SigningKeys.ListSigningKeys(ctx)
	if err == nil && h.list != nil {
		recs = h.list(recs)
	}
	return recs, err
}

func (h *hookStore) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	if h.create != nil {
		return h.create(ctx, k)
	}
	return h.SigningKeys.CreateSigningKey(ctx, k)
}

func (h *hookStore) RotateSigningKey(ctx context.Context, next store.SigningKey, verifyUntil time.Time) ([]store.SigningKey, error) {
	if h.rotate != nil {
		return h.rotate(ctx, next, verifyUntil)
	}
	return h.SigningKeys.RotateSigningKey(ctx, next, verifyUntil)
}
