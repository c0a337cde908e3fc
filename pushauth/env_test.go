package pushauth_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/apns"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/fcm"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/pushauth/pushtest"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
)

// env is a bridge node serving the device API over real HTTP on loopback,
// with a SQLite store, fake FCM and APNs servers speaking the real wire
// formats, and a clock the test moves.
type env struct {
	t      testing.TB
	ctx    context.Context
	st     store.Store
	state  store.PushState
	keys   *keys.Manager
	sealer *keys.Sealer
	eng    *pushauth.Engine
	srv    *httptest.Server
	base   string
	clock  *testenv.Clock
	fcm    *pushtest.FCM
	apns   *pushtest.APNs
	audit  *store.AuditBatcher
}

type envOption func(*pushauth.Config, *pushauth.Deps)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start is the wall-clock start of the test clock: device proofs and
// answers carry Unix times the server compares with its own clock.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newNode(t, sqliteStore(t), memstate.New(), nil, opts...)
}

func sqliteStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db"), AuditKey: storetest.AuditKey()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newNode starts a node on st with state; clock nil means a fresh one.
func newNode(t testing.TB, st store.Store, state store.PushState, clock *testenv.Clock, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	kek := make([]byte, 32)
	copy(kek, "pushauth test key-encryption key")
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	if clock == nil {
		clock = testenv.NewClock(time.Now().Truncate(time.Second))
	}
	km, err := keys.Open(ctx, st, sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposePush, Algorithm: keys.AlgEdDSA}}, Now: clock.Now}, discard())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, st: st, state: state, keys: km, sealer: sealer, clock: clock}
	e.fcm = pushtest.StartFCM(t)
	e.apns = pushtest.StartAPNs(t)
	fs, err := fcm.New(ctx, fcm.Config{CredentialsFile: e.fcm.CredentialsFile(t), Endpoint: e.fcm.Endpoint()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	as, err := apns.New(apns.Config{KeyFile: e.apns.KeyFile(t), KeyID: e.apns.KeyID, TeamID: e.apns.TeamID, Topic: e.apns.Topic, Endpoint: e.apns.Endpoint(), CAFile: e.apns.CAFile(t)}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { as.Close() })

	e.srv = httptest.NewUnstartedServer(nil)
	e.base = "http://" + e.srv.Listener.Addr().String()
	e.audit = store.NewAuditBatcher(st, discard())
	cfg := pushauth.Config{BaseURL: e.base}
	deps := pushauth.Deps{
		Store: st, State: state, Keys: km, ActivationKey: sealer.DeriveKey(pushauth.ActivationKeyLabel),
		Senders: map[string]pushauth.Sender{"fcm": fs, "apns": as}, Audit: e.audit, Now: clock.Now, Logger: discard(),
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	e.eng, err = pushauth.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = e.eng.Handler(nil)
	e.srv.Start()
	t.Cleanup(func() {
		e.srv.Close()
		e.eng.Close()
		e.audit.Close()
	})
	return e
}

// activation creates an enrollment code for user.
func (e *env) activation(user string) string {
	e.t.Helper()
	act, _, err := pushauth.Activator{
		Store: e.st, Keys: e.keys, HMACKey: e.sealer.DeriveKey(pushauth.ActivationKeyLabel), BaseURL: e.base, Now: e.clock.Now,
	}.Create(e.ctx, user, "test", "")
	if err != nil {
		e.t.Fatal(err)
	}
	return act.String()
}

// enroll enrolls a reference authenticator for user.
func (e *env) enroll(user string, o authenticator.EnrollOptions) *authenticator.Device {
	e.t.Helper()
	o.Now = e.clock.Now
	d, err := authenticator.Enroll(e.ctx, e.activation(user), o)
	if err != nil {
		e.t.Fatalf("enroll: %v", err)
	}
	return d
}

func (e *env) start(req pushauth.Request) pushauth.Handle {
	e.t.Helper()
	h, err := e.eng.Start(e.ctx, req)
	if err != nil {
		e.t.Fatalf("start: %v", err)
	}
	return h
}

func login(user string) pushauth.Request {
	return pushauth.Request{User: user, AppID: "vpn", AppName: "Corporate VPN", Channel: "radius", ClientIP: "198.51.100.7", UserAgent: "nas-1", Location: "Lisbon, PT", NumberMatching: true}
}

// wait waits for the outcome of h, for at most 10 s.
func (e *env) wait(id string) pushauth.Outcome {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	o, err := e.eng.Wait(ctx, id)
	if err != nil {
		e.t.Fatalf("wait: %v", err)
	}
	return o
}

func (e *env) fetch(d *authenticator.Device, id string) authenticator.Challenge {
	e.t.Helper()
	c, err := d.Fetch(e.ctx, id)
	if err != nil {
		e.t.Fatalf("fetch: %v", err)
	}
	return c
}

// serverErr asserts err is a bridge error with code.
func serverErr(t testing.TB, err error, status int, code string) {
	t.Helper()
	var se *authenticator.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a %d %s from the bridge", err, status, code)
	}
	if se.Status != status || se.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", se.Status, se.Code, se.Description, status, code)
	}
}

// auditHas reports whether the log has an event with action, result and a
// reason containing reason.
func (e *env) audited(action string, result store.AuditResult, reason string) bool {
	e.t.Helper()
	evs, err := e.st.ListAudit(e.ctx, 0, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Action == action && ev.Result == result && strings.Contains(ev.Reason, reason) {
			return true
		}
	}
	return false
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	const hex = "0123456789abcdef"
	out := make([]byte, 64)
	for i, c := range b {
		out[2*i], out[2*i+1] = hex[c>>4], hex[c&15]
	}
	return string(out)
}
