package authenticator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/authenticator/fakebridge"
	"github.com/bridge-idp/bridge/pushauth/protocol"
)

const user = "alice"

// fixture is a fake bridge and a device enrolled with it, on one clock.
type fixture struct {
	clock *testenv.Clock
	srv   *fakebridge.Server
	dev   *authenticator.Device
}

func setup(t *testing.T, alg string) *fixture {
	t.Helper()
	clock := testenv.NewClock(time.Now())
	srv := fakebridge.Start(t, fakebridge.Config{Now: clock.Now})
	dev, err := authenticator.Enroll(t.Context(), srv.Activation(user).String(),
		authenticator.EnrollOptions{Algorithm: alg, Name: "test phone", Now: clock.Now})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return &fixture{clock: clock, srv: srv, dev: dev}
}

func sign(t *testing.T, alg string, key any, typ, kid string, claims any) string {
	t.Helper()
	jws, err := protocol.Sign(alg, key, typ, kid, false, claims)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

func newEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func thumbprint(t *testing.T, pub any) string {
	t.Helper()
	tp, err := protocol.Thumbprint(jose.JSONWebKey{Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestEnrollPinsPushKey(t *testing.T) {
	for _, alg := range []string{"", protocol.AlgES256, protocol.AlgEdDSA} {
		t.Run("alg="+alg, func(t *testing.T) {
			srv := fakebridge.Start(t, fakebridge.Config{})
			_, oldKid := srv.PushKey()
			pinned := srv.RotatePushKey(false) // the old key stays listed, unendorsed
			dev, err := authenticator.Enroll(t.Context(), srv.Activation(user).String(), authenticator.EnrollOptions{
				Algorithm: alg, Name: "test phone", AppVersion: "1.2.3",
				Posture: map[string]bool{"rooted": false},
			})
			if err != nil {
				t.Fatalf("Enroll: %v", err)
			}
			wantAlg := alg
			if wantAlg == "" {
				wantAlg = protocol.AlgES256
			}
			devs := srv.Devices()
			if len(devs) != 1 {
				t.Fatalf("server has %d devices, want 1", len(devs))
			}
			got := devs[0]
			if dev.ID() != got.ID || dev.User() != user || dev.BaseURL() != srv.URL || dev.Algorithm() != wantAlg || got.Alg != wantAlg {
				t.Errorf("device %s/%s/%s/%s, server has %s/%s alg %s", dev.ID(), dev.User(), dev.BaseURL(), dev.Algorithm(), got.ID, got.User, got.Alg)
			}
			if got.Enroll.Platform != protocol.PlatformOther || got.Enroll.Name != "test phone" || got.Enroll.AppVersion != "1.2.3" || len(got.Enroll.Posture) != 1 {
				t.Errorf("server got enrollment %+v", got.Enroll)
			}
			if keys := dev.PushKeys(); !slices.Equal(keys, []string{pinned}) || dev.PinnedPushKey() != pinned {
				t.Errorf("trusted push keys %v, want only the pinned %s (not the listed %s)", keys, pinned, oldKid)
			}
		})
	}
}

func TestEnrollRefusesMismatchedPin(t *testing.T) {
	srv := fakebridge.Start(t, fakebridge.Config{})
	act := srv.Activation(user)
	act.PushKey = thumbprint(t, newEd25519(t).Public())
	_, err := authenticator.Enroll(t.Context(), act.String(), authenticator.EnrollOptions{})
	if !errors.Is(err, authenticator.ErrPushKeyPin) || !strings.Contains(err.Error(), "server key does not match the pinned fingerprint") {
		t.Fatalf("Enroll with a wrong pk: %v, want ErrPushKeyPin", err)
	}
}

func TestEnrollServerErrors(t *testing.T) {
	srv := fakebridge.Start(t, fakebridge.Config{})
	act := srv.Activation(user)
	if _, err := authenticator.Enroll(t.Context(), act.String(), authenticator.EnrollOptions{}); err != nil {
		t.Fatal(err)
	}
	bogus := srv.Activation(user)
	bogus.Code = "act_0000.bogus"
	for name, a := range map[string]protocol.Activation{"reused code": act, "unknown code": bogus} {
		_, err := authenticator.Enroll(t.Context(), a.String(), authenticator.EnrollOptions{})
		var serr *authenticator.ServerError
		if !errors.As(err, &serr) || serr.Status != 403 || serr.Code != protocol.ErrInvalidCode {
			t.Errorf("%s: %v, want a 403 %s ServerError", name, err, protocol.ErrInvalidCode)
		}
	}
}

func TestEnrollChecksOptions(t *testing.T) {
	srv := fakebridge.Start(t, fakebridge.Config{})
	for name, opts := range map[string]authenticator.EnrollOptions{
		"algorithm":        {Algorithm: "RS256"},
		"platform":         {Platform: "windows-phone"},
		"provider":         {PushProvider: "sms", PushToken: "t"},
		"token only":       {PushToken: "t"},
		"provider only":    {PushProvider: protocol.ProviderFCM},
		"too many posture": {Posture: map[string]bool{"a": true, "b": true, "c": true, "d": true, "e": true, "f": true, "g": true, "h": true, "i": true, "j": true, "k": true, "l": true, "m": true, "n": true, "o": true, "p": true, "q": true}},
	} {
		if _, err := authenticator.Enroll(t.Context(), srv.Activation(user).String(), opts); err == nil {
			t.Errorf("%s: Enroll accepted %+v", name, opts)
		}
	}
	if _, err := authenticator.Enroll(t.Context(), "https://bridge.example/enroll", authenticator.EnrollOptions{}); err == nil {
		t.Error("Enroll accepted a URL that is not an activation URL")
	}
	if n := len(srv.Devices()); n != 0 {
		t.Errorf("%d devices enrolled with bad options", n)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	f := setup(t, protocol.AlgES256)
	dir := filepath.Join(t.TempDir(), "config", "bridge-authenticator")
	path := filepath.Join(dir, "device.json")
	for range 2 { // the second save replaces the first
		if err := f.dev.Save(path); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d files, want only device.json (no temporary file left)", len(entries))
	}

	loaded, err := authenticator.Load(path, authenticator.WithClock(f.clock.Now))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if loaded.ID() != f.dev.ID() || loaded.User() != user || loaded.BaseURL() != f.srv.URL || loaded.Algorithm() != protocol.AlgES256 ||
		!slices.Equal(loaded.PushKeys(), f.dev.PushKeys()) || !loaded.EnrolledAt().Equal(f.dev.EnrolledAt()) {
		t.Errorf("loaded %s/%s/%s/%s %v, saved %s/%s/%s/%s %v", loaded.ID(), loaded.User(), loaded.BaseURL(), loaded.Algorithm(), loaded.PushKeys(),
			f.dev.ID(), f.dev.User(), f.dev.BaseURL(), f.dev.Algorithm(), f.dev.PushKeys())
	}
	// The loaded device has the same key: the server, which knows only the
	// enrolled public key, accepts its proofs and answer.
	id := f.srv.NewChallenge(user, "")
	c, err := loaded.Fetch(t.Context(), id)
	if err != nil {
		t.Fatalf("Fetch after Load: %v", err)
	}
	if state, err := loaded.Answer(t.Context(), c, protocol.Approve, ""); err != nil || state != "approved" {
		t.Fatalf("Answer after Load: %q, %v", state, err)
	}
}

func TestLoadRefusesAccessibleStateFile(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)
	path := filepath.Join(t.TempDir(), "device.json")
	if err := f.dev.Save(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := authenticator.Load(path)
		if !errors.Is(err, authenticator.ErrStatePermissions) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("Load of a %04o file: %v, want ErrStatePermissions saying chmod 600", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := authenticator.Load(path); err != nil {
			t.Errorf("Load of a %04o file: %v", mode, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)
	dir := t.TempDir()
	if _, err := authenticator.Load(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
	path := filepath.Join(dir, "device.json")
	if err := f.dev.Save(path); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(m map[string]any){
		"unknown key":     func(m map[string]any) { m["extra"] = true },
		"version":         func(m map[string]any) { m["version"] = 2 },
		"algorithm":       func(m map[string]any) { m["algorithm"] = protocol.AlgES256 },
		"private key":     func(m map[string]any) { m["private_key"] = "bm90IGEga2V5" },
		"pinned key":      func(m map[string]any) { m["pinned_push_key"] = "somebody-else" },
		"no trusted keys": func(m map[string]any) { m["push_keys"] = map[string]any{"keys": []any{}} },
	} {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		data, _ := json.Marshal(m)
		bad := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(bad, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := authenticator.Load(bad); err == nil {
			t.Errorf("%s: Load accepted the state file", name)
		}
	}
}

// claimsWith returns valid claims of a new challenge, changed by edit.
func claimsWith(f *fixture, edit func(*protocol.ChallengeClaims)) protocol.ChallengeClaims {
	c := f.srv.ChallengeClaims(user)
	if edit != nil {
		edit(&c)
	}
	return c
}

// badChallenges are challenges a device must refuse, by name: the id they
// are listed under and the JWS.
func badChallenges(t *testing.T, f *fixture) map[string][2]string {
	pushKey, kid := f.srv.PushKey()
	other := newEd25519(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	listed := func(c protocol.ChallengeClaims, jws string) [2]string { return [2]string{c.ID, jws} }
	now := f.clock.Now()
	cases := map[string][2]string{}

	c := claimsWith(f, nil)
	cases["forged signature"] = listed(c, sign(t, protocol.AlgEdDSA, other, protocol.TypChallenge, kid, c))

	c = claimsWith(f, nil)
	cases["untrusted key"] = listed(c, sign(t, protocol.AlgEdDSA, other, protocol.TypChallenge, thumbprint(t, other.Public()), c))

	c = claimsWith(f, nil)
	cases["no kid"] = listed(c, sign(t, protocol.AlgEdDSA, other, protocol.TypChallenge, "", c))

	c = claimsWith(f, nil)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"` + protocol.TypChallenge + `","kid":"` + kid + `"}`))
	payload, _ := json.Marshal(c)
	cases["alg none"] = listed(c, header+"."+base64.RawURLEncoding.EncodeToString(payload)+".")

	c = claimsWith(f, nil)
	parts := strings.Split(f.srv.SignChallenge(c), ".")
	c.AppName = "Something harmless"
	payload, _ = json.Marshal(c)
	cases["tampered payload"] = listed(c, parts[0]+"."+base64.RawURLEncoding.EncodeToString(payload)+"."+parts[2])

	c = claimsWith(f, nil)
	cases["wrong typ"] = listed(c, sign(t, protocol.AlgEdDSA, pushKey, protocol.TypEndorsement, kid, c))

	c = claimsWith(f, nil)
	cases["ES256"] = listed(c, sign(t, protocol.AlgES256, ecKey, protocol.TypChallenge, kid, c))

	c = claimsWith(f, nil)
	cases["HS256 keyed with the push key"] = listed(c, sign(t, "HS256", []byte(pushKey.Public().(ed25519.PublicKey)), protocol.TypChallenge, kid, c))

	c = claimsWith(f, func(c *protocol.ChallengeClaims) { c.User = "mallory" })
	cases["wrong sub"] = listed(c, f.srv.SignChallenge(c))

	c = claimsWith(f, func(c *protocol.ChallengeClaims) { c.Issuer = "https://evil.example" })
	cases["wrong issuer"] = listed(c, f.srv.SignChallenge(c))

	c = claimsWith(f, nil)
	other2 := claimsWith(f, nil)
	cases["cid not the listed id"] = [2]string{other2.ID, f.srv.SignChallenge(c)}

	c = claimsWith(f, func(c *protocol.ChallengeClaims) { c.Expires = now.Add(-authenticator.ClockSkew - time.Second).Unix() })
	cases["expired"] = listed(c, f.srv.SignChallenge(c))

	return cases
}

func TestChallengeVerification(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)

	t.Run("valid", func(t *testing.T) {
		want := claimsWith(f, func(c *protocol.ChallengeClaims) { c.NumberDigits = 2 })
		signed := f.srv.SignChallenge(want)
		f.srv.AddChallenge(want.ID, user, signed, "42")
		c, err := f.dev.Fetch(t.Context(), want.ID)
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if c.ID != want.ID || c.Signed != signed || c.State != "pending" || c.Claims != want || !c.Received.Equal(f.clock.Now()) {
			t.Errorf("got %+v, want claims %+v", c, want)
		}
	})
	t.Run("expired within the clock skew", func(t *testing.T) {
		want := claimsWith(f, func(c *protocol.ChallengeClaims) {
			c.Expires = f.clock.Now().Add(-authenticator.ClockSkew + time.Second).Unix()
		})
		f.srv.AddChallenge(want.ID, user, f.srv.SignChallenge(want), "")
		if _, err := f.dev.Fetch(t.Context(), want.ID); err != nil {
			t.Fatalf("Fetch: %v", err)
		}
	})

	for name, tc := range badChallenges(t, f) {
		t.Run(name, func(t *testing.T) {
			id, jws := tc[0], tc[1]
			f.srv.AddChallenge(id, user, jws, "")
			c, err := f.dev.Fetch(t.Context(), id)
			var cerr *authenticator.ChallengeError
			if !errors.Is(err, authenticator.ErrInvalidChallenge) || !errors.As(err, &cerr) || cerr.ID != id {
				t.Fatalf("Fetch: %+v, %v; want a ChallengeError with ErrInvalidChallenge", c, err)
			}
			if c.ID != "" {
				t.Errorf("Fetch returned a challenge with the error: %+v", c)
			}
			f.srv.CloseChallenge(id, "closed")
		})
	}
}

func TestPendingReturnsValidAndReportsRefused(t *testing.T) {
	f := setup(t, protocol.AlgES256)
	bad := badChallenges(t, f)
	first := f.srv.NewChallenge(user, "")
	for _, tc := range bad {
		f.srv.AddChallenge(tc[0], user, tc[1], "")
	}
	last := f.srv.NewChallenge(user, "123456")
	f.srv.NewChallenge("bob", "") // another user's

	got, err := f.dev.Pending(t.Context(), 0)
	var perr *authenticator.PendingError
	if !errors.As(err, &perr) || !errors.Is(err, authenticator.ErrInvalidChallenge) {
		t.Fatalf("Pending error %v, want a PendingError", err)
	}
	if len(perr.Refused) != len(bad) {
		t.Errorf("%d refused, want %d: %v", len(perr.Refused), len(bad), err)
	}
	for _, r := range perr.Refused {
		if !errors.Is(r, authenticator.ErrInvalidChallenge) {
			t.Errorf("refused %s: %v, want ErrInvalidChallenge", r.ID, r.Err)
		}
	}
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{first, last}) {
		t.Errorf("Pending returned %v, want the valid %v", ids, []string{first, last})
	}
	if got[1].Claims.NumberDigits != 6 {
		t.Errorf("nm %d, want 6", got[1].Claims.NumberDigits)
	}
	if n := f.srv.PushKeyRequests(); n != 1 {
		t.Errorf("the push keys were fetched %d times, want once (for the unknown kids)", n)
	}
}

func TestPendingLongPoll(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)
	if got, err := f.dev.Pending(t.Context(), 0); err != nil || len(got) != 0 {
		t.Fatalf("Pending with nothing pending: %v, %v", got, err)
	}

	type result struct {
		got []authenticator.Challenge
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := f.dev.Pending(t.Context(), authenticator.MaxWait)
		done <- result{got, err}
	}()
	if err := f.srv.WaitPolls(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	id := f.srv.NewChallenge(user, "")
	r := <-done
	if r.err != nil || len(r.got) != 1 || r.got[0].ID != id {
		t.Fatalf("long-poll returned %+v, %v; want challenge %s", r.got, r.err, id)
	}
	proofs := f.srv.Proofs()
	last := proofs[len(proofs)-1]
	if last.Method != "GET" || last.URL != f.srv.URL+protocol.PathPending || last.BodyHash != "" {
		t.Errorf("long-poll proof %+v: want GET %s without query and bh", last, f.srv.URL+protocol.PathPending)
	}
}

func TestPushKeyRotation(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)
	pinned := f.dev.PinnedPushKey()
	k2 := f.srv.RotatePushKey(true)  // endorsed by the pinned key
	k3 := f.srv.RotatePushKey(true)  // endorsed by k2: a chain
	k4 := f.srv.RotatePushKey(false) // listed, never endorsed
	key4, _ := f.srv.PushKey()
	k5 := newEd25519(t)
	// An endorsement by the unendorsed k4 does not make k5 trusted either.
	f.srv.AddEndorsement(sign(t, protocol.AlgEdDSA, key4, protocol.TypEndorsement, k4,
		protocol.EndorsementClaims{Key: jose.JSONWebKey{Key: k5.Public()}}))

	if err := f.dev.RefreshPushKeys(t.Context()); err != nil {
		t.Fatalf("RefreshPushKeys: %v", err)
	}
	want := []string{pinned}
	want = append(want, slices.Sorted(slices.Values([]string{k2, k3}))...)
	if got := f.dev.PushKeys(); !slices.Equal(got, want) {
		t.Errorf("trusted %v, want %v (not k4 %s or k5)", got, want, k4)
	}

	// k4 signs challenges now: refused.
	id := f.srv.NewChallenge(user, "")
	if _, err := f.dev.Fetch(t.Context(), id); !errors.Is(err, authenticator.ErrUntrustedKey) || !errors.Is(err, authenticator.ErrInvalidChallenge) {
		t.Errorf("Fetch of a challenge signed by the unendorsed key: %v, want ErrUntrustedKey", err)
	}

	// The trust survives Save and Load.
	path := filepath.Join(t.TempDir(), "device.json")
	if err := f.dev.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := authenticator.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := loaded.PushKeys(); !slices.Equal(got, want) {
		t.Errorf("loaded trusted %v, want %v", got, want)
	}
}

func TestRefreshPushKeysReportsBadEndorsements(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)
	pinned := f.dev.PinnedPushKey()
	// Claims to be by the pinned key, signed by another.
	f.srv.AddEndorsement(sign(t, protocol.AlgEdDSA, newEd25519(t), protocol.TypEndorsement, pinned,
		protocol.EndorsementClaims{Key: jose.JSONWebKey{Key: newEd25519(t).Public()}}))
	k2 := f.srv.RotatePushKey(true)
	err := f.dev.RefreshPushKeys(t.Context())
	if !errors.Is(err, authenticator.ErrInvalidEndorsement) {
		t.Errorf("RefreshPushKeys: %v, want ErrInvalidEndorsement", err)
	}
	if got := f.dev.PushKeys(); !slices.Equal(got, []string{pinned, k2}) {
		t.Errorf("trusted %v, want the pinned key and the validly endorsed %s", got, k2)
	}
}

func TestUnknownKidRefreshesOnce(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)
	k2 := f.srv.RotatePushKey(true)
	id := f.srv.NewChallenge(user, "")
	if _, err := f.dev.Fetch(t.Context(), id); err != nil {
		t.Fatalf("Fetch of a challenge signed by a newly endorsed key: %v", err)
	}
	if n := f.srv.PushKeyRequests(); n != 1 || !slices.Contains(f.dev.PushKeys(), k2) {
		t.Fatalf("%d push-key requests, trusted %v: want one refresh that trusts %s", n, f.dev.PushKeys(), k2)
	}

	// A challenge by a key that stays unknown refreshes once, then not
	// again for a minute.
	other := newEd25519(t)
	c := claimsWith(f, func(c *protocol.ChallengeClaims) { c.Expires = f.clock.Now().Add(time.Hour).Unix() })
	f.srv.AddChallenge(c.ID, user, sign(t, protocol.AlgEdDSA, other, protocol.TypChallenge, thumbprint(t, other.Public()), c), "")
	for i, want := range []int{2, 2} {
		if _, err := f.dev.Fetch(t.Context(), c.ID); !errors.Is(err, authenticator.ErrUntrustedKey) {
			t.Fatalf("Fetch %d: %v, want ErrUntrustedKey", i, err)
		}
		if n := f.srv.PushKeyRequests(); n != want {
			t.Fatalf("after Fetch %d: %d push-key requests, want %d", i, n, want)
		}
	}
	f.clock.Add(2 * time.Minute)
	f.dev.Fetch(t.Context(), c.ID)
	if n := f.srv.PushKeyRequests(); n != 3 {
		t.Fatalf("a minute later: %d push-key requests, want 3", n)
	}
}

func TestProof(t *testing.T) {
	for _, alg := range []string{protocol.AlgES256, protocol.AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			f := setup(t, alg)
			body := []byte(`{"x":1}`)
			check := func(method, url string, body []byte, wantURL, wantBH string) string {
				t.Helper()
				proof, err := f.dev.Proof(method, url, body)
				if err != nil {
					t.Fatal(err)
				}
				p, err := protocol.Parse(proof, protocol.TypProof, protocol.DeviceAlgorithms())
				if err != nil {
					t.Fatal(err)
				}
				var claims protocol.ProofClaims
				if err := p.Verify(f.dev.PublicKey(), &claims); err != nil {
					t.Fatal(err)
				}
				if p.Header.KeyID != f.dev.ID() || p.Header.Algorithm != alg {
					t.Errorf("header kid %q alg %q, want %q %q", p.Header.KeyID, p.Header.Algorithm, f.dev.ID(), alg)
				}
				jti, err := base64.RawURLEncoding.DecodeString(claims.JTI)
				if claims.Method != method || claims.URL != wantURL || claims.BodyHash != wantBH ||
					claims.IssuedAt != f.clock.Now().Unix() || err != nil || len(jti) != 16 {
					t.Errorf("proof %+v: want htm %s htu %s bh %q, a 16-byte jti", claims, method, wantURL, wantBH)
				}
				return claims.JTI
			}
			u := f.srv.URL + protocol.PathDevice
			j1 := check("PUT", u+"?a=b#frag", body, u, protocol.BodyHash(body))
			j2 := check("GET", u+"?wait=25", nil, u, "")
			if j1 == j2 {
				t.Error("two proofs share a jti")
			}
		})
	}
}

func TestAnswer(t *testing.T) {
	f := setup(t, protocol.AlgES256)
	id := f.srv.NewChallenge(user, "")
	c, err := f.dev.Fetch(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	state, err := f.dev.Answer(t.Context(), c, protocol.Approve, "999")
	if err != nil || state != "approved" || f.srv.State(id) != "approved" {
		t.Fatalf("Answer: %q, %v; server state %q", state, err, f.srv.State(id))
	}
	answers := f.srv.Answers()
	a := answers[len(answers)-1]
	if a.DeviceID != f.dev.ID() || a.Claims.ID != id || a.Claims.Hash != protocol.ChallengeHash(c.Signed) ||
		a.Claims.Decision != protocol.Approve || a.Claims.Number != "" || a.Claims.IssuedAt != f.clock.Now().Unix() {
		t.Errorf("answer %+v (no number without number matching)", a)
	}
	parts := strings.Split(a.JWS, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[len(parts)-1])
	if len(parts) != 3 || err != nil || len(sig) != 64 {
		t.Errorf("ES256 answer signature is %d bytes (%v), want 64 raw R||S bytes", len(sig), err)
	}
	proofs := f.srv.Proofs()
	p := proofs[len(proofs)-1]
	body, _ := json.Marshal(protocol.AnswerRequest{Answer: a.JWS})
	if p.Method != "POST" || p.URL != f.srv.URL+protocol.PathChallenge+id+protocol.SuffixAnswer || p.BodyHash != protocol.BodyHash(body) {
		t.Errorf("answer proof %+v", p)
	}

	_, err = f.dev.Answer(t.Context(), c, protocol.Deny, "")
	var serr *authenticator.ServerError
	if !errors.As(err, &serr) || serr.Status != 409 || serr.Code != protocol.ErrAlreadyAnswered {
		t.Errorf("second answer: %v, want a 409 %s", err, protocol.ErrAlreadyAnswered)
	}
	if _, err := f.dev.Answer(t.Context(), c, "maybe", ""); err == nil {
		t.Error("Answer accepted the decision \"maybe\"")
	}

	id = f.srv.NewChallenge(user, "")
	c, err = f.dev.Fetch(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(91 * time.Second)
	_, err = f.dev.Answer(t.Context(), c, protocol.Approve, "")
	if !errors.As(err, &serr) || serr.Status != 409 || serr.Code != protocol.ErrExpired {
		t.Errorf("late answer: %v, want a 409 %s", err, protocol.ErrExpired)
	}
}

func TestAnswerNumberMatching(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)
	id := f.srv.NewChallenge(user, "42")
	c, err := f.dev.Fetch(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, number := range []string{"", "4", "421", "4a"} {
		if _, err := f.dev.Answer(t.Context(), c, protocol.Approve, number); !errors.Is(err, authenticator.ErrNumberRequired) {
			t.Errorf("approving with number %q: %v, want ErrNumberRequired", number, err)
		}
	}
	if n := len(f.srv.Answers()); n != 0 {
		t.Fatalf("%d answers reached the server, want none", n)
	}
	_, err = f.dev.Answer(t.Context(), c, protocol.Approve, "17")
	var serr *authenticator.ServerError
	if !errors.As(err, &serr) || serr.Code != protocol.ErrInvalidAnswer {
		t.Errorf("wrong number: %v, want %s", err, protocol.ErrInvalidAnswer)
	}
	if state, err := f.dev.Answer(t.Context(), c, protocol.Approve, "42"); err != nil || state != "approved" {
		t.Fatalf("right number: %q, %v", state, err)
	}
	if a := f.srv.Answers(); a[len(a)-1].Claims.Number != "42" {
		t.Errorf("answer %+v, want number 42", a[len(a)-1].Claims)
	}

	// Denying needs no number.
	id = f.srv.NewChallenge(user, "42")
	if c, err = f.dev.Fetch(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if state, err := f.dev.Answer(t.Context(), c, protocol.Fraud, ""); err != nil || state != "fraud" {
		t.Fatalf("report without number: %q, %v", state, err)
	}
}

func TestForgedAndReplayedAnswers(t *testing.T) {
	f := setup(t, protocol.AlgES256)
	id := f.srv.NewChallenge(user, "")
	c, err := f.dev.Fetch(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var serr *authenticator.ServerError
	wantCode := func(what string, err error, status int, code string) {
		t.Helper()
		if !errors.As(err, &serr) || serr.Status != status || serr.Code != code {
			t.Errorf("%s: %v, want %d %s", what, err, status, code)
		}
	}

	claims := protocol.AnswerClaims{ID: id, Hash: protocol.ChallengeHash(c.Signed), Decision: protocol.Approve, IssuedAt: f.clock.Now().Unix()}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = f.dev.PostAnswer(t.Context(), id, sign(t, protocol.AlgES256, otherKey, protocol.TypAnswer, f.dev.ID(), claims))
	wantCode("signed by another key", err, 403, protocol.ErrInvalidAnswer)

	modified := claims
	modified.Hash = protocol.ChallengeHash(c.Signed + "x")
	forged, err := f.dev.Sign(protocol.TypAnswer, modified)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.dev.PostAnswer(t.Context(), id, forged)
	wantCode("answer to another challenge content", err, 400, protocol.ErrInvalidAnswer)

	signed, err := f.dev.SignedAnswer(c, protocol.Approve, "")
	if err != nil {
		t.Fatal(err)
	}
	if state, err := f.dev.PostAnswer(t.Context(), id, signed); err != nil || state != "approved" {
		t.Fatalf("PostAnswer: %q, %v", state, err)
	}
	_, err = f.dev.PostAnswer(t.Context(), id, signed)
	wantCode("replayed answer", err, 409, protocol.ErrAlreadyAnswered)
}

func TestUpdatePush(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)
	if err := f.dev.UpdatePush(t.Context(), protocol.ProviderFCM, "token-1"); err != nil {
		t.Fatal(err)
	}
	if err := f.dev.UpdatePush(t.Context(), protocol.ProviderFCM, ""); err == nil {
		t.Error("UpdatePush accepted a provider without a token")
	}
	u := f.srv.Updates()
	if len(u) != 1 || u[0].PushProvider == nil || *u[0].PushProvider != protocol.ProviderFCM || u[0].PushToken == nil || *u[0].PushToken != "token-1" {
		t.Fatalf("server got updates %+v", u)
	}
	path := filepath.Join(t.TempDir(), "device.json")
	if err := f.dev.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := authenticator.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, tok := loaded.Push(); p != protocol.ProviderFCM || tok != "token-1" {
		t.Errorf("loaded push %q %q", p, tok)
	}
}

func TestTLSPin(t *testing.T) {
	srv := fakebridge.Start(t, fakebridge.Config{TLS: true})
	act := srv.Activation(user)
	if act.TLSPin == "" || !strings.HasPrefix(act.BaseURL, "https://") {
		t.Fatalf("activation %+v has no TLS pin", act)
	}

	dev, err := authenticator.Enroll(t.Context(), act.String(), authenticator.EnrollOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatalf("Enroll with the right pin: %v", err)
	}
	if _, err := dev.Pending(t.Context(), 0); err != nil {
		t.Fatalf("Pending with the right pin: %v", err)
	}

	wrong := srv.Activation(user)
	wrong.TLSPin = protocol.SPKIPin([]byte("another key"))
	if _, err := authenticator.Enroll(t.Context(), wrong.String(), authenticator.EnrollOptions{HTTPClient: srv.Client()}); !errors.Is(err, authenticator.ErrTLSPin) {
		t.Errorf("Enroll with a wrong pin: %v, want ErrTLSPin", err)
	}
	// The pin is in addition to the normal verification: a client that
	// does not trust the certificate fails even with the right pin.
	untrusted := srv.Activation(user)
	if _, err := authenticator.Enroll(t.Context(), untrusted.String(), authenticator.EnrollOptions{}); err == nil || errors.Is(err, authenticator.ErrTLSPin) {
		t.Errorf("Enroll without trusting the certificate: %v, want a certificate error", err)
	}
	if n := len(srv.Devices()); n != 1 {
		t.Errorf("%d devices enrolled, want only the one with the right pin", n)
	}
	plain := fakebridge.Start(t, fakebridge.Config{}).Activation(user)
	plain.TLSPin = act.TLSPin
	if _, err := authenticator.Enroll(t.Context(), plain.String(), authenticator.EnrollOptions{}); err == nil {
		t.Error("Enroll accepted a TLS pin for an http bridge URL")
	}

	// The pin and the CA certificates are saved: a loaded device enforces
	// the pin, and trusts the CA without being given a client.
	caPEM := pemCert(srv)
	dev, err = authenticator.Enroll(t.Context(), srv.Activation(user).String(), authenticator.EnrollOptions{CACertsPEM: caPEM})
	if err != nil {
		t.Fatalf("Enroll with CA certificates: %v", err)
	}
	path := filepath.Join(t.TempDir(), "device.json")
	if err := dev.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := authenticator.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loaded.Pending(t.Context(), 0); err != nil || loaded.TLSPin() != act.TLSPin {
		t.Fatalf("Pending of the loaded device: %v (pin %q)", err, loaded.TLSPin())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), act.TLSPin, wrong.TLSPin, 1))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if loaded, err = authenticator.Load(path); err != nil {
		t.Fatal(err)
	}
	if _, err := loaded.Pending(t.Context(), 0); !errors.Is(err, authenticator.ErrTLSPin) {
		t.Errorf("Pending with a wrong saved pin: %v, want ErrTLSPin", err)
	}
}

func pemCert(srv *fakebridge.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func TestFetchErrors(t *testing.T) {
	f := setup(t, protocol.AlgEdDSA)
	_, err := f.dev.Fetch(context.Background(), "no-such-challenge")
	var serr *authenticator.ServerError
	if !errors.As(err, &serr) || serr.Status != 404 || serr.Code != protocol.ErrNotFound {
		t.Errorf("Fetch of an unknown id: %v, want a 404 %s", err, protocol.ErrNotFound)
	}
	if _, err := f.dev.Fetch(context.Background(), "../device"); err == nil || errors.As(err, &serr) {
		t.Errorf("Fetch of a bad id: %v, want a local error", err)
	}
}
