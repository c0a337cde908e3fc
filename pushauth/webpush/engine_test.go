package webpush

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/pushauth/webpush/webpushtest"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
)

// Through a real engine (SQLite store, memstate challenges, the device API
// over HTTP): a challenge wakes the subscription with its id; when the push
// service says the subscription is gone, the engine marks the device's
// token stale and the device still finds the challenge by polling.
func TestEngineRetiresGoneSubscription(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db")}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, keys.KEKSize)
	copy(kek, "webpush engine key-encryption k")
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	km, err := keys.Open(ctx, st, sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposePush, Algorithm: keys.AlgEdDSA}, vapidSpec}}, log)
	if err != nil {
		t.Fatal(err)
	}
	ps := webpushtest.Start(t)
	s, err := New(Config{Subject: "https://bridge.example.org", AllowedHosts: []string{ps.Host()}}, km, nil, log)
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	audit := store.NewAuditBatcher(st, log)
	eng, err := pushauth.New(pushauth.Config{BaseURL: base}, pushauth.Deps{
		Store: st, State: memstate.New(), Keys: km, ActivationKey: sealer.DeriveKey(pushauth.ActivationKeyLabel),
		Senders: map[string]pushauth.Sender{s.Provider(): s}, Audit: audit, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = eng.Handler(nil)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		eng.Close()
		audit.Close()
	})

	act, _, err := pushauth.Activator{Store: st, Keys: km, HMACKey: sealer.DeriveKey(pushauth.ActivationKeyLabel), BaseURL: base}.Create(ctx, "alice", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := authenticator.Enroll(ctx, act.String(), authenticator.EnrollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ps.NewSubscription(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	// Enrolling with a webpush token is the engine's side of issue 13;
	// here the subscription is put on the device record directly.
	if _, err := st.UpdateDevice(ctx, dev.ID(), func(d store.Device) (store.Device, error) {
		d.PushProvider, d.PushToken = s.Provider(), tok
		return d, nil
	}); err != nil {
		t.Fatal(err)
	}

	login := pushauth.Request{User: "alice", AppID: "vpn", AppName: "Corporate VPN", Channel: "radius", ClientIP: "198.51.100.7"}
	h, err := eng.Start(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := ps.Next(wctx)
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ T, CID string }
	if err := json.Unmarshal(m.Plaintext, &p); err != nil || p.T != "challenge" || p.CID != h.ID {
		t.Fatalf("push payload %s, want the challenge %s", m.Plaintext, h.ID)
	}
	// The phone fetches the challenge the push named and approves it.
	c, err := dev.Fetch(ctx, p.CID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Answer(ctx, c, protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}

	ps.Fail(tok, webpushtest.Reply{Status: http.StatusGone})
	login.AppID = "mail"
	h2, err := eng.Start(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		d, err := st.GetDevice(ctx, dev.ID())
		if err != nil {
			t.Fatal(err)
		}
		if d.PushTokenStale {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gone subscription was not marked stale")
		}
	}
	if r := ps.Refusals(); len(r) != 1 || r[0].Status != http.StatusGone {
		t.Errorf("refusals %+v, want one 410", r)
	}
	if _, err := dev.Fetch(ctx, h2.ID); err != nil {
		t.Errorf("the device could not fetch the challenge without push: %v", err)
	}
}
