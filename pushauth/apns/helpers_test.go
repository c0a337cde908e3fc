package apns

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/pushauth/pushtest"
)

// deviceToken is a 32-byte APNs device token.
const deviceToken = "5f6aa01d8e3358949b7c25d461bb78ad740f4707462c7eafbebcf74fa5ddb387"

// newSender makes a Sender for the fake a, on clock (shared with the fake,
// so provider-token ages agree), after mod has changed the config.
func newSender(t *testing.T, a *pushtest.APNs, clock *testenv.Clock, mod func(*Config)) *Sender {
	t.Helper()
	cfg := Config{
		KeyFile:  a.KeyFile(t),
		KeyID:    a.KeyID,
		TeamID:   a.TeamID,
		Topic:    a.Topic,
		Endpoint: a.Endpoint(),
		CAFile:   a.CAFile(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if clock != nil {
		s.now = clock.Now
		a.SetClock(clock.Now)
	}
	return s
}

// newClock starts at the real time, so the TLS certificate is valid and
// the fake and the sender agree.
func newClock() *testenv.Clock { return testenv.NewClock(time.Now()) }

// waitCtx bounds a wait for a delivery that should already have happened.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// countRequests counts the requests s makes.
func countRequests(s *Sender) *atomic.Int64 {
	n := new(atomic.Int64)
	s.client.Transport = counting{s.client.Transport, n}
	return n
}

type counting struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}
