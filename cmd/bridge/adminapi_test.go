package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
	"github.com/bridge-idp/bridge/web/account"
)

// TestAdminAPIActivations: the admin API makes activations for existing
// users only, as JSON, PNG or SVG, and only for a caller with the token.
func TestAdminAPIActivations(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "b.db"), AuditKey: storetest.AuditKey()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealer := mustSealer(t, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	km, err := keys.Open(ctx, st, sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposePush, Algorithm: keys.AlgEdDSA}}}, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUsers(ctx, store.User{Name: "alice", Status: store.UserActive}); err != nil {
		t.Fatal(err)
	}
	dirs, _ := directory.NewSet()
	const token = "0123456789abcdef0123456789abcdef-admin"
	cfg := &config.Config{}
	cfg.HTTP.AdminAPI.Token = token
	cfg.App.Enabled = true
	api := newAdminAPI(cfg, st, pushauth.Activator{Store: st, Keys: km, HMACKey: sealer.DeriveKey(pushauth.ActivationKeyLabel), BaseURL: "https://mfa.example.com"}, dirs, discard())
	mux := http.NewServeMux()
	api.routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func(path, bearer string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, bad := range []string{"", "wrong", token + "x", token[:len(token)-1]} {
		if resp, _ := post("/admin/v1/users/alice/activations", bad); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %q: %d, want 401 with a challenge", bad, resp.StatusCode)
		}
	}
	resp, body := post("/admin/v1/users/Alice/activations", token)
	if resp.StatusCode != 201 {
		t.Fatalf("JSON activation: %d %s", resp.StatusCode, body)
	}
	var out struct {
		User, URL string
		AppURL    string `json:"app_url"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	act, err := protocol.ParseActivation(out.URL)
	if err != nil || out.User != "alice" || act.BaseURL != "https://mfa.example.com" {
		t.Fatalf("activation %+v (%v)", out, err)
	}
	push, _ := km.Signer(store.PurposePush, keys.AlgEdDSA)
	if act.PushKey != push.ID {
		t.Fatalf("activation pins %q, want the push key %q", act.PushKey, push.ID)
	}
	// The web app's link carries the same activation.
	if want := account.AppLink(act, "alice"); out.AppURL != want || !strings.HasPrefix(out.AppURL, "https://mfa.example.com/app/#enroll?v=1&") {
		t.Errorf("app_url %q, want %q", out.AppURL, want)
	}
	id, _, _ := strings.Cut(act.Code, ".")
	if _, err := st.GetActivation(ctx, id); err != nil {
		t.Fatalf("activation not stored: %v", err)
	}
	resp, body = post("/admin/v1/users/alice/activations?format=png&ttl=30m", token)
	if resp.StatusCode != 201 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("PNG activation: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if _, err := png.Decode(bytes.NewReader(body)); err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
	resp, body = post("/admin/v1/users/alice/activations?format=svg", token)
	if resp.StatusCode != 201 || !bytes.HasPrefix(body, []byte("<svg")) {
		t.Fatalf("SVG activation: %d %.40s", resp.StatusCode, body)
	}
	for path, want := range map[string]int{
		"/admin/v1/users/nobody/activations":           404,
		"/admin/v1/users/alice/activations?format=gif": 400,
		"/admin/v1/users/alice/activations?ttl=5s":     400,
	} {
		if resp, body := post(path, token); resp.StatusCode != want {
			t.Fatalf("%s: %d %s, want %d", path, resp.StatusCode, body, want)
		}
	}
	events, _ := st.ListAudit(ctx, 0, 100)
	n := 0
	for _, e := range events {
		if e.Action == "device.activation" && e.Actor == "admin-api" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d activations audited, want 3", n)
	}
}
