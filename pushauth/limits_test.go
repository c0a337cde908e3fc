package pushauth_test

// Attacks on the push limits and on device input that a security review
// found; each test describes the attack, and failed before its fix.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/postgres/pgtest"
	"github.com/bridge-idp/bridge/store/storetest"
)

// An attacker who never lets a push time out (the next login supersedes
// it, or the login page cancels it at 59 s) is never backed off: only the
// hourly cap applies. SECURITY.md: back-off after denials/timeouts.
func TestSupersededPushesBackOff(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice", authenticator.EnrollOptions{})
	for i := range 10 {
		req := login("alice")
		req.ClientIP = fmt.Sprintf("203.0.113.%d", i+1) // no join: supersedes
		if _, err := e.eng.Start(e.ctx, req); err != nil {
			return // backed off: fine
		}
		e.clock.Add(59 * time.Second) // unanswered, closed just before expiry
	}
	t.Fatal("10 unanswered pushes in 10 minutes, none refused: superseded/cancelled challenges never grow the back-off")
}

// slowCount is a shared state whose reads take a database round trip
// (as on two nodes sharing PostgreSQL); it only widens the race window.
type slowCount struct{ *memstate.State }

func (s slowCount) CountChallenges(ctx context.Context, user string, since time.Time) (int, error) {
	n, err := s.State.CountChallenges(ctx, user, since)
	time.Sleep(20 * time.Millisecond) // the answer is on its way back
	return n, err
}

// MaxPerHour was checked (count) and enforced (insert) in separate
// steps; concurrent logins (on one node or several) all pass the count.
func TestConcurrentStartsKeepHourlyCap(t *testing.T) {
	const limit = 1
	e := newNode(t, sqliteStore(t), slowCount{memstate.New()}, nil, func(c *pushauth.Config, _ *pushauth.Deps) { c.MaxPerHour = limit })
	e.enroll("alice", authenticator.EnrollOptions{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for i := range 10 {
		wg.Go(func() {
			req := login("alice")
			req.ClientIP = fmt.Sprintf("198.51.100.%d", i+1) // no join
			h, err := e.eng.Start(e.ctx, req)
			if err == nil && !h.Joined {
				mu.Lock()
				sent++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if sent > limit {
		t.Fatalf("%d new pushes sent concurrently, MaxPerHour is %d", sent, limit)
	}
}

// checkLimits lets a rate-limited login through because "it would join
// the pending challenge", but Start's join also requires the same
// number-matching mode; when that differs a new challenge is created.
func TestLimitedLoginCannotStartWhenJoinFails(t *testing.T) {
	e := newEnv(t, func(c *pushauth.Config, _ *pushauth.Deps) { c.MaxPerHour = 1 })
	e.enroll("alice", authenticator.EnrollOptions{})
	req := login("alice")
	req.NumberMatching = false
	first := e.start(req)
	req.NumberMatching = true
	h, err := e.eng.Start(e.ctx, req)
	if err == nil {
		t.Fatalf("second push beyond MaxPerHour=1 accepted: new challenge %s (joined=%v, first %s superseded)", h.ID, h.Joined, first.ID)
	}
}

// "this wasn't me" on a challenge that was superseded (or expired)
// while the user read it is answered 409 and dropped: no lock, no webhook.
func TestFraudReportOnClosedChallenge(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	first := e.start(login("alice"))
	c := e.fetch(dev, first.ID)
	req := login("alice")
	req.ClientIP = "203.0.113.66"
	e.start(req) // the attacker's next push supersedes the shown one
	_, _ = dev.Answer(e.ctx, c, protocol.Fraud, "")
	e.clock.Add(pushauth.DefaultBackoffMax + time.Second)
	req.ClientIP = "203.0.113.67"
	if _, err := e.eng.Start(e.ctx, req); !errors.Is(err, pushauth.ErrLocked) {
		t.Fatalf("start after the user reported fraud: %v, want ErrLocked", err)
	}
}

// a login that joins a pending challenge is not audited at all, yet
// the one approval authorises it too.
func TestJoinedLoginAudited(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice", authenticator.EnrollOptions{})
	h1 := e.start(login("alice"))
	h2 := e.start(login("alice"))
	if !h2.Joined || h2.ID != h1.ID {
		t.Fatalf("second login did not join: %+v", h2)
	}
	evs, err := e.st.ListAudit(e.ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Action == "push.start" && ev.Details["challenge"] == h1.ID {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d push.start audit events for 2 logins on challenge %s", n, h1.ID)
	}
}

// Outcome.HardwareKey is documented as "reported at enrollment", but
// any later PUT /device can set posture hardware_key (and clear rooted).
func TestHardwareKeyFixedAtEnrollment(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	if err := dev.UpdateDevice(e.ctx, protocol.DeviceUpdate{Posture: map[string]bool{"hardware_key": true}}); err != nil {
		t.Fatal(err)
	}
	h := e.start(login("alice"))
	if _, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}
	if o := e.wait(h.ID); o.HardwareKey {
		t.Fatal("a software key became a hardware key (amr hwk) by a self-reported posture update")
	}
}

// an answer to a challenge the sweeper (or a waiter) already expired
// is reported as already_answered, not expired.
func TestAnswerAfterSweptExpiry(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(dev, h.ID)
	e.clock.Add(pushauth.DefaultChallengeTTL)
	if _, err := e.eng.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	_, err := dev.Answer(e.ctx, c, protocol.Approve, h.Number)
	serverErr(t, err, 409, protocol.ErrExpired)
}

// manyDevices makes ListDevices return n push-capable devices, so wake
// loops long enough for Close to land inside it.
// PostgreSQL: a NUL byte in attacker input reaches a text query
// parameter; PostgreSQL refuses it, so an unauthenticated request gets a
// 500, is logged at ERROR, is not audited and is not counted by the
// failed-enrollment limiter.
func TestNULInDeviceInputOnPostgres(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	st, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, MaxConns: 4, AuditKey: storetest.AuditKey()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newNode(t, st, memstate.New(), nil, func(c *pushauth.Config, _ *pushauth.Deps) { c.EnrollPerIP = 1 })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	post := func() int {
		signed, err := protocol.Sign("ES256", key, protocol.TypEnroll, "", true, protocol.EnrollClaims{
			Activation: "\x00act.secret", URL: e.base + protocol.PathEnroll, IssuedAt: e.clock.Now().Unix(), Platform: protocol.PlatformAndroid,
		})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(e.base+protocol.PathEnroll, "application/jose", strings.NewReader(signed))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(); got != 400 {
		t.Errorf("enrollment with a NUL in the activation id: HTTP %d, want 400 invalid_activation", got)
	}
	if got := post(); got != 429 {
		t.Errorf("second failed enrollment with EnrollPerIP=1: HTTP %d, want 429", got)
	}
	// The same on the authenticated API: a proof whose kid has a NUL.
	proof, _ := protocol.Sign("ES256", key, protocol.TypProof, "dev\x00ice", false, protocol.ProofClaims{
		JTI: "0123456789abcdefghij", Method: "GET", URL: e.base + protocol.PathPending, IssuedAt: e.clock.Now().Unix(),
	})
	req, _ := http.NewRequest("GET", e.base+protocol.PathPending, nil)
	req.Header.Set(protocol.ProofHeader, proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pe protocol.Error
	_ = json.NewDecoder(resp.Body).Decode(&pe)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("proof with a NUL in kid: HTTP %d %s, want 401", resp.StatusCode, pe.Code)
	}
}

// TestAnswerAfterSignedExpiry: the signed exp is in whole seconds and is
// the deadline. A challenge created half a second into a second is not
// answerable in the half second after its signed exp.
func TestAnswerAfterSignedExpiry(t *testing.T) {
	clock := testenv.NewClock(time.Now().Truncate(time.Second).Add(500 * time.Millisecond))
	e := newNode(t, sqliteStore(t), memstate.New(), clock)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(dev, h.ID)
	if got, want := h.ExpiresAt, c.Expires(); !got.Equal(want) {
		t.Fatalf("the handle expires at %s, the signed challenge at %s", got, want)
	}
	e.clock.Add(pushauth.DefaultChallengeTTL - 250*time.Millisecond) // past the signed exp, before creation + TTL
	_, err := dev.Answer(e.ctx, c, protocol.Approve, h.Number)
	serverErr(t, err, 409, protocol.ErrExpired)
}
