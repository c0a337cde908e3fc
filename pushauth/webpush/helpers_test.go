package webpush

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/webpush/webpushtest"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
)

var vapidSpec = keys.Spec{Purpose: store.PurposeVAPID, Algorithm: keys.AlgES256}

// openKeys opens a key manager with a VAPID key on a fresh SQLite store,
// on clock (the key overlap is a day).
func openKeys(t testing.TB, clock *testenv.Clock) *keys.Manager {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, keys.KEKSize)
	copy(kek, "webpush test key-encryption key!")
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	km, err := keys.Open(ctx, st, sealer, keys.Options{Specs: []keys.Spec{vapidSpec}, Now: clock.Now, RotationOverlap: 24 * time.Hour}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return km
}

// waits records the back-off waits of a sender instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// fixture is a sender with its keys and a local push service, both on a
// test clock.
type fixture struct {
	s     *Sender
	km    *keys.Manager
	ps    *webpushtest.Server
	clock *testenv.Clock
	waits *waits
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	clock := testenv.NewClock(time.Now().Truncate(time.Second))
	f := &fixture{km: openKeys(t, clock), ps: webpushtest.Start(t), clock: clock, waits: &waits{}}
	f.ps.SetClock(clock.Now)
	cfg := Config{Subject: "mailto:ops@example.org", AllowedHosts: []string{f.ps.Host()}, RetryBase: 100 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, f.km, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.now, s.sleep = clock.Now, f.waits.sleep
	f.s = s
	return f
}

// subscribe makes a subscription to the active VAPID key.
func (f *fixture) subscribe(t *testing.T) string {
	t.Helper()
	tok, err := f.ps.NewSubscription(f.s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// wake is a challenge wake expiring in 90 s.
func (f *fixture) wake(id string) pushauth.Wake {
	return pushauth.Wake{ChallengeID: id, Kind: pushauth.WakeChallenge, Expires: f.clock.Now().Add(90 * time.Second)}
}

// count is the value of c's series with the one label value.
func count(t *testing.T, c *prometheus.CounterVec, label string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}
