package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
	"github.com/bridge-idp/bridge/web"
)

// qualifyPush is a push engine that never pushes and says which devices
// meet which policy, recording what it was asked.
type qualifyPush struct {
	noPush
	mu    sync.Mutex
	ok    map[string]string // device id: the strictest policy it meets
	asked []string
}

func (q *qualifyPush) DeviceQualifies(_ context.Context, id, policy string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.asked = append(q.asked, id+" "+policy)
	switch q.ok[id] {
	case pushauth.KeysAttested:
		return true
	case pushauth.KeysHardware:
		return policy == pushauth.KeysHardware
	}
	return false
}

// TestPromptNoneDeviceKeys: prompt=none answers from a browser session
// for a client with device_keys hardware only when the device that
// approved the session meets the policy; otherwise login_required, as for
// no session. A client with device_keys any takes every session.
func TestPromptNoneDeviceKeys(t *testing.T) {
	ctx := context.Background()
	discard := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db"), AuditKey: storetest.AuditKey()}, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateUsers(ctx, store.User{Name: "alice", Status: store.UserActive}); err != nil {
		t.Fatal(err)
	}
	dir, err := local.Open("local", st, local.Argon2{Time: 1, MemoryKiB: local.MinMemoryKiB, Threads: 1}, discard)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.NewSealer([]byte("oidc test key-encryption key 32b"))
	if err != nil {
		t.Fatal(err)
	}
	km, err := keys.Open(ctx, st, sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposeOIDC, Algorithm: keys.AlgES256}}}, discard)
	if err != nil {
		t.Fatal(err)
	}
	client := func(id, policy string) *Client {
		return &Client{ID: id, AuthMethod: oidc.AuthMethodNone, RedirectURIs: []string{"https://" + id + ".example.com/cb"}, Scopes: []string{"openid"},
			App: web.App{ID: id, Name: id, Channel: "oidc", Directory: dir, SessionReuse: true, DeviceKeys: policy}}
	}
	clients := []*Client{client("vault", pushauth.KeysHardware), client("wiki", pushauth.KeysAny)}
	apps := map[string]web.App{}
	for _, c := range clients {
		apps[c.ID] = c.App
	}
	push := &qualifyPush{ok: map[string]string{"hard": pushauth.KeysHardware, "soft": ""}}
	flow, err := web.New(web.Config{BaseURL: "https://idp.example.com", SessionLifetime: time.Hour, Key: []byte("oidc test CSRF key, 32 bytes !!!")},
		func(channel, id string) (web.App, bool) { a, ok := apps[id]; return a, ok && channel == "oidc" },
		web.Deps{Store: st, Push: push, Audit: nopAudit{}, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	copy(key[:], "oidc test token crypto key 32 b!")
	p, err := New(Config{
		Issuer: testIssuer, CodeLifetime: time.Minute, AccessTokenLifetime: 10 * time.Minute, IDTokenLifetime: 10 * time.Minute,
		RefreshTokenLifetime: 8 * time.Hour, Clients: clients, CryptoKey: key,
	}, Deps{Store: st, Replay: st, Keys: km, Flow: flow, Audit: nopAudit{}})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Handler()

	// session stores a browser session approved by device (none: a code)
	// and returns its cookie, as the sign-in pages would have set it.
	n := 0
	session := func(device string) *http.Cookie {
		n++
		value := "session-cookie-" + device + "-" + string(rune('a'+n))
		sum := sha256.Sum256([]byte(value))
		id := hex.EncodeToString(sum[:])
		now := time.Now()
		data, _ := json.Marshal(web.Result{User: "alice", Directory: "local", AuthTime: now, AMR: []string{"pwd", "mfa"}, DeviceID: device, Session: id})
		if err := st.PutGrant(ctx, store.Grant{Kind: store.GrantSession, ID: id, Subject: "alice", Data: data, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return &http.Cookie{Name: "__Host-bridge_session", Value: value}
	}
	// promptNone runs /authorize with prompt=none for client in a browser
	// holding cookie, and returns the query the client's redirect URI gets.
	promptNone := func(client string, sess *http.Cookie) url.Values {
		t.Helper()
		jar := map[string]*http.Cookie{sess.Name: sess}
		do := func(target string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodGet, target, nil)
			for _, c := range jar {
				r.AddCookie(c)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			for _, c := range rec.Result().Cookies() {
				jar[c.Name] = c
			}
			return rec
		}
		q := url.Values{"client_id": {client}, "redirect_uri": {"https://" + client + ".example.com/cb"}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"s"}, "prompt": {"none"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		target := testIssuer + "/authorize?" + q.Encode()
		for range 5 {
			rec := do(target)
			if rec.Code != http.StatusFound && rec.Code != http.StatusSeeOther {
				t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
			}
			loc, err := url.Parse(rec.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if loc.Host == client+".example.com" {
				return loc.Query()
			}
			target = (&url.URL{Scheme: "https", Host: "idp.example.com"}).ResolveReference(loc).String()
		}
		t.Fatalf("prompt=none to %s: no answer after 5 redirects", client)
		return nil
	}
	wantCode := func(what string, q url.Values) {
		t.Helper()
		if q.Get("code") == "" || q.Get("error") != "" {
			t.Errorf("%s: %v, want a code", what, q)
		}
	}
	wantLoginRequired := func(what string, q url.Values) {
		t.Helper()
		if q.Get("error") != "login_required" || q.Get("code") != "" || q.Get("state") != "s" {
			t.Errorf("%s: %v, want login_required", what, q)
		}
	}

	soft := session("soft")
	wantCode("any client, software key's session", promptNone("wiki", soft))
	wantLoginRequired("hardware client, software key's session", promptNone("vault", soft))
	wantCode("hardware client, hardware key's session", promptNone("vault", session("hard")))
	wantLoginRequired("hardware client, a code's session", promptNone("vault", session("")))
	wantLoginRequired("hardware client, unknown device's session", promptNone("vault", session("gone")))
	push.mu.Lock()
	defer push.mu.Unlock()
	// Asked for the hardware client's sessions with a device only (a
	// session without one is refused without asking).
	if want := []string{"soft hardware", "hard hardware", "gone hardware"}; !slices.Equal(push.asked, want) {
		t.Errorf("DeviceQualifies asked %q, want %q", push.asked, want)
	}
}
