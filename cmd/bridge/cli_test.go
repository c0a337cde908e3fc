package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	imgpng "image/png"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	_ "modernc.org/sqlite"

	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/otp"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/web/account"
)

// testConfig is a small, fast config: SQLite in the test's directory, cheap
// argon2 parameters, small RSA keys.
const testConfig = `
dev_mode: true
data_dir: ./data
http:
  public:
    listen: 127.0.0.1:18080
    allow_plain_http: true
passwords:
  argon2id: {time: 1, memory_kib: 19456, threads: 1}
keys:
  rsa_bits: 2048
`

// env is one test's bridge: a config file in a temp dir.
type env struct {
	t   *testing.T
	dir string
	cfg string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfg, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, dir: dir, cfg: cfg}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI in-process with the env's config and stdin.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"--config", e.cfg}, args...), strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// ok runs the CLI and fails the test unless it exits 0.
func (e *env) ok(stdin string, args ...string) string {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != exitOK {
		e.t.Fatalf("bridge %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// store opens the env's database directly.
func (e *env) store() store.Store {
	e.t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(e.dir, "data", "bridge.db")}, discard())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

func (e *env) rawDB() *sql.DB {
	e.t.Helper()
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: filepath.Join(e.dir, "data", "bridge.db"), RawQuery: "_pragma=busy_timeout(5000)"}).String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

func auditActions(t *testing.T, s store.Store) []string {
	t.Helper()
	events, err := s.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Action+":"+e.Subject)
	}
	return out
}

func TestUsersLifecycle(t *testing.T) {
	e := newEnv(t)
	e.ok("s3cret-pw\n", "users", "add", "Alice", "--display-name", "Alice Liddell", "--email", "alice@example.org", "--group", "vpn,staff", "--password-stdin")

	var list []userJSON
	if err := json.Unmarshal([]byte(e.ok("", "users", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "alice" || list[0].Email != "alice@example.org" || !list[0].HasPassword ||
		strings.Join(list[0].Groups, ",") != "staff,vpn" || list[0].Status != "active" {
		t.Fatalf("users list --json = %+v", list)
	}
	if out := e.ok("", "users", "list", "--json"); strings.Contains(out, "argon2") {
		t.Fatalf("list leaks the password hash: %s", out)
	}

	// The stored hash checks with the local directory, for the password given.
	s := e.store()
	dir, err := local.Open("local", s, local.Argon2{Time: 1, MemoryKiB: 19456, Threads: 1}, discard())
	if err != nil {
		t.Fatal(err)
	}
	if id, err := dir.Authenticate(context.Background(), "alice", "s3cret-pw"); err != nil || id.Email != "alice@example.org" {
		t.Fatalf("authenticate with the CLI-set password: %+v, %v", id, err)
	}

	e.ok("", "users", "disable", "alice")
	if _, err := dir.Authenticate(context.Background(), "alice", "s3cret-pw"); err == nil {
		t.Fatal("disabled user authenticated")
	}
	e.ok("", "users", "enable", "alice")
	e.ok("new-pw\n", "users", "set-password", "alice", "--password-stdin")
	if _, err := dir.Authenticate(context.Background(), "alice", "s3cret-pw"); err == nil {
		t.Fatal("old password still works after set-password")
	}
	if _, err := dir.Authenticate(context.Background(), "alice", "new-pw"); err != nil {
		t.Fatalf("new password: %v", err)
	}

	var shown userJSON
	if err := json.Unmarshal([]byte(e.ok("", "users", "show", "alice", "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Devices == nil || *shown.Devices != 0 || shown.TOTP == nil || *shown.TOTP {
		t.Fatalf("users show --json = %+v", shown)
	}

	if r := e.run("pw\n", "users", "add", "alice", "--password-stdin"); r.code != exitFailure || !strings.Contains(r.stderr, "exists already") {
		t.Fatalf("duplicate add: %+v", r)
	}
	e.ok("", "users", "delete", "alice")
	if r := e.run("", "users", "show", "alice"); r.code != exitFailure || !strings.Contains(r.stderr, `no user "alice"`) {
		t.Fatalf("show deleted user: %+v", r)
	}

	want := "user.create:alice user.disable:alice user.enable:alice user.password:alice user.delete:alice"
	if got := strings.Join(auditActions(t, s), " "); got != want {
		t.Fatalf("audit events:\n got %s\nwant %s", got, want)
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	for name, args := range map[string][]string{
		"unknown command":     {"frobnicate"},
		"missing argument":    {"users", "add"},
		"too many arguments":  {"users", "show", "a", "b"},
		"unknown flag":        {"users", "list", "--colour"},
		"group without sub":   {"users"},
		"bad rotate purpose":  {"keys", "rotate", "--purpose", "tls"},
		"conflicting flags":   {"users", "add", "bob", "--no-password", "--password-stdin"},
		"no tty for password": {"users", "add", "bob"},
		"config check twice":  {"config", "check", "a.yaml", "b.yaml"},
		"tail busy loop":      {"audit", "tail", "--follow", "--interval", "0s"},
	} {
		t.Run(name, func(t *testing.T) {
			if r := e.run("", args...); r.code != exitUsage {
				t.Fatalf("bridge %v: exit %d, want %d (stderr %q)", args, r.code, exitUsage, r.stderr)
			}
		})
	}
	if r := e.run("", "users", "add", "--help"); r.code != exitOK || !strings.Contains(r.stdout, "--password-stdin") {
		t.Fatalf("--help: %+v", r)
	}
}

func TestConfigCheck(t *testing.T) {
	e := newEnv(t)
	if out := e.ok("", "config", "check"); !strings.Contains(out, "valid") {
		t.Fatalf("config check: %q", out)
	}
	bad := filepath.Join(e.dir, "bad.yaml")
	os.WriteFile(bad, []byte("storage:\n  driver: mysql\nhttp:\n  public:\n    listne: 1\n"), 0o600)
	r := e.run("", "config", "check", bad)
	if r.code != exitFailure || !strings.Contains(r.stderr, "storage.driver") || !strings.Contains(r.stderr, "listne") || !strings.Contains(r.stderr, ":2:") {
		t.Fatalf("bad config: %+v", r)
	}
	if r := e.run("", "config", "check", filepath.Join(e.dir, "missing.yaml")); r.code != exitFailure || !strings.Contains(r.stderr, "--config") {
		t.Fatalf("missing config: %+v", r)
	}
}

func TestImportCSV(t *testing.T) {
	e := newEnv(t)
	good := filepath.Join(e.dir, "users.csv")
	os.WriteFile(good, []byte("name,display_name,email,groups,password,status\n"+
		"bob,Bob B,bob@example.org,vpn;staff,pw-bob,\n"+
		"Carol,,carol@example.org,,,disabled\n"), 0o600)
	if out := e.ok("", "users", "import", good); !strings.Contains(out, "2 created") {
		t.Fatalf("import: %q", out)
	}
	s := e.store()
	carol, err := s.GetUser(context.Background(), "carol")
	if err != nil || carol.Status != store.UserDisabled || carol.PasswordHash != "" {
		t.Fatalf("carol = %+v, %v", carol, err)
	}

	// Every problem is reported with its line, and nothing is imported.
	bad := filepath.Join(e.dir, "bad.csv")
	os.WriteFile(bad, []byte("name,email,status\n"+
		"dave,dave@example.org,\n"+
		",nobody@example.org,\n"+
		"erin,erin@example.org,frozen\n"+
		"dave,again@example.org,\n"), 0o600)
	r := e.run("", "users", "import", bad)
	for _, want := range []string{"bad.csv:3:", "bad.csv:4:", "bad.csv:5:", "frozen"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("import errors lack %q:\n%s", want, r.stderr)
		}
	}
	if r.code != exitFailure {
		t.Fatalf("bad import exit %d", r.code)
	}
	if _, err := s.GetUser(context.Background(), "dave"); err == nil {
		t.Fatal("a failed import created dave")
	}

	// Existing users need --update; with it, only the given fields change.
	again := filepath.Join(e.dir, "again.csv")
	os.WriteFile(again, []byte("name,email\nbob,new-bob@example.org\nfrank,frank@example.org\n"), 0o600)
	if r := e.run("", "users", "import", again); r.code != exitFailure || !strings.Contains(r.stderr, "--update") {
		t.Fatalf("import over existing users: %+v", r)
	}
	if _, err := s.GetUser(context.Background(), "frank"); err == nil {
		t.Fatal("a refused import created frank")
	}
	e.ok("", "users", "import", "--update", again)
	bob, _ := s.GetUser(context.Background(), "bob")
	if bob.Email != "new-bob@example.org" || bob.DisplayName != "Bob B" || bob.PasswordHash == "" || strings.Join(bob.Groups, ",") != "staff,vpn" {
		t.Fatalf("bob after --update = %+v", bob)
	}
}

func TestTOTPAndBypassFromCLI(t *testing.T) {
	e := newEnv(t)
	e.ok("", "users", "add", "gina", "--no-password")
	var en struct{ URI, Secret string }
	if err := json.Unmarshal([]byte(e.ok("", "users", "totp", "enroll", "gina", "--json")), &en); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(en.URI)
	if err != nil || u.Scheme != "otpauth" || u.Query().Get("secret") != en.Secret {
		t.Fatalf("enrollment URI %q", en.URI)
	}
	// A code computed from the printed secret, by an independent
	// implementation, is accepted once by the bridge's verifier.
	code, err := totp.GenerateCode(en.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := e.store()
	kek, err := os.ReadFile(filepath.Join(e.dir, "data", "dev.kek"))
	if err != nil {
		t.Fatalf("dev KEK not created: %v", err)
	}
	sealer := mustSealer(t, string(kek))
	tv, err := otp.NewTOTP(s, sealer, otp.DefaultTOTPConfig("Bridge"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := tv.Verify(context.Background(), "gina", code); err != nil {
		t.Fatalf("code from the enrolled secret: %v", err)
	}
	if err := tv.Verify(context.Background(), "gina", code); err == nil {
		t.Fatal("TOTP code accepted twice")
	}

	var bp struct{ Code string }
	if err := json.Unmarshal([]byte(e.ok("", "users", "bypass", "gina", "--ttl", "10m", "--json")), &bp); err != nil {
		t.Fatal(err)
	}
	b, err := otp.NewBypass(s, sealer, otp.BypassConfig{}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(context.Background(), "gina", bp.Code); err != nil {
		t.Fatalf("bypass code: %v", err)
	}
	if err := b.Verify(context.Background(), "gina", bp.Code); err == nil {
		t.Fatal("bypass code accepted twice")
	}
	if r := e.run("", "users", "bypass", "gina", "--ttl", "1000h"); r.code != exitFailure {
		t.Fatalf("bypass beyond max_ttl: %+v", r)
	}
	if r := e.run("", "users", "totp", "enroll", "nobody"); r.code != exitFailure || !strings.Contains(r.stderr, "no user") {
		t.Fatalf("enroll unknown user: %+v", r)
	}
	e.ok("", "users", "totp", "remove", "gina")
	if err := tv.Verify(context.Background(), "gina", code); err == nil {
		t.Fatal("removed token still verifies")
	}
}

func TestDevicesListAndRevoke(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	dev := store.Device{ID: "dev-1", User: "hugo", Name: "Pixel", Platform: "android", KeyAlg: "ES256",
		PublicJWK: []byte(`{"kty":"EC"}`), Status: store.DeviceActive, CreatedAt: time.Now()}
	if err := s.CreateDevice(context.Background(), dev); err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.ok("", "devices", "list", "hugo", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["id"] != "dev-1" || list[0]["status"] != "active" || list[0]["kind"] != "jws" {
		t.Fatalf("devices list = %v", list)
	}
	pk := store.Device{ID: "dev-2", User: "hugo", Name: "web app", Platform: "web", KeyAlg: "ES256", Kind: store.DeviceKindWebAuthn,
		PublicJWK: []byte(`{"kty":"EC"}`), Status: store.DeviceActive, CreatedAt: time.Now().Add(time.Second),
		WebAuthn: &store.WebAuthnCredential{CredentialID: []byte{1}, PublicKey: []byte{2}, AttestationFormat: "packed", AttestationType: "basic_full", AttestationVerified: true}}
	if err := s.CreateDevice(context.Background(), pk); err != nil {
		t.Fatal(err)
	}
	// A consistent statement under a root the bridge does not trust is not
	// "attested".
	if out := e.ok("", "devices", "list", "hugo"); !strings.Contains(out, "KIND") || !strings.Contains(out, "webauthn (packed, untrusted root)") {
		t.Fatalf("devices list does not show the passkey's kind:\n%s", out)
	}
	if _, err := s.UpdateDevice(context.Background(), "dev-2", func(d store.Device) (store.Device, error) {
		d.WebAuthn.AttestationTrusted = true
		return d, nil
	}); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("", "devices", "list", "hugo"); !strings.Contains(out, "webauthn (attested: packed)") {
		t.Fatalf("devices list does not show the passkey as attested:\n%s", out)
	}
	list = nil
	if err := json.Unmarshal([]byte(e.ok("", "devices", "list", "hugo", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[1]["kind"] != "webauthn" || list[1]["attestation"] != "packed" || list[1]["attestation_verified"] != true || list[1]["attestation_trusted"] != true {
		t.Fatalf("devices list = %v", list)
	}
	// Account sessions opened with each device: revoking dev-1 ends its own.
	now := time.Now()
	for id, dev := range map[string]string{"sess-1": "dev-1", "sess-2": "dev-2"} {
		if err := s.PutGrant(context.Background(), store.Grant{Kind: account.GrantKind, ID: id, Family: account.DeviceFamily(dev), Subject: "hugo",
			Data: []byte(`{}`), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if out := e.ok("", "devices", "revoke", "dev-1"); !strings.Contains(out, "ended 1 account session") {
		t.Errorf("revoke says %q", out)
	}
	got, _ := s.GetDevice(context.Background(), "dev-1")
	if got.Status != store.DeviceRevoked || got.RevokedAt.IsZero() {
		t.Fatalf("after revoke: %+v", got)
	}
	if _, err := s.GetGrant(context.Background(), account.GrantKind, "sess-1", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the account session opened with the revoked device: %v", err)
	}
	if _, err := s.GetGrant(context.Background(), account.GrantKind, "sess-2", now); err != nil {
		t.Errorf("the account session opened with another device: %v", err)
	}
	if r := e.run("", "devices", "revoke", "dev-1"); r.code != exitFailure || !strings.Contains(r.stderr, "already revoked") {
		t.Fatalf("second revoke: %+v", r)
	}
	if r := e.run("", "devices", "revoke", "nope"); r.code != exitFailure {
		t.Fatalf("revoke unknown: %+v", r)
	}
}

func TestKeysListAndRotate(t *testing.T) {
	e := newEnv(t)
	type keyJSON struct {
		ID, Purpose, Algorithm, Status string
		VerifyUntil                    *time.Time `json:"verify_until"`
	}
	list := func() []keyJSON {
		var ks []keyJSON
		if err := json.Unmarshal([]byte(e.ok("", "keys", "list", "--json")), &ks); err != nil {
			t.Fatal(err)
		}
		return ks
	}
	if ks := list(); len(ks) != 0 {
		t.Fatalf("keys before first rotation/serve: %v", ks)
	}
	out := e.ok("", "keys", "rotate", "--purpose", "push") // first call generates all, then rotates push
	ks := list()
	active, retired, retiredKey := map[string]string{}, 0, ""
	for _, k := range ks {
		if k.Status == "active" {
			active[k.Purpose+"/"+k.Algorithm] = k.ID
		} else {
			retired++
			retiredKey = k.ID
			if k.Purpose != "push" || k.VerifyUntil == nil || time.Until(*k.VerifyUntil) < 6*24*time.Hour {
				t.Fatalf("retired key %+v: want push, verifying for the 7-day overlap", k)
			}
		}
	}
	// push, oidc ES256 and RS256, saml, and vapid (app.webpush is on by default).
	if len(active) != 5 || active["vapid/ES256"] == "" || retired != 1 {
		t.Fatalf("after rotating push: %d active (%v), %d retired", len(active), active, retired)
	}
	// The push rotation is endorsed, and the output says devices follow it.
	if want := "push EdDSA: " + retiredKey + " endorsed " + active["push/EdDSA"] + ": enrolled devices follow the rotation through this endorsement"; !strings.Contains(out, want) || strings.Count(out, " endorsed ") != 1 {
		t.Fatalf("rotate output does not say (once) %q:\n%s", want, out)
	}
	// Five keys generated (no active key yet), then the push key rotated.
	got := strings.Join(auditActions(t, e.store()), " ")
	if strings.Count(got, "key.create:") != 5 || strings.Count(got, "key.rotate:") != 1 || !strings.HasSuffix(got, "key.rotate:"+retiredKey) {
		t.Fatalf("audit after first rotation: %v", got)
	}
	// The VAPID key rotates by its purpose name, unendorsed: browsers take
	// the new key when the app resubscribes.
	oldVAPID := active["vapid/ES256"]
	out = e.ok("", "keys", "rotate", "--purpose", "vapid")
	if !strings.Contains(out, "vapid ES256: retired "+oldVAPID) || strings.Contains(out, " endorsed ") {
		t.Fatalf("rotate --purpose vapid:\n%s", out)
	}
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"ann", "ben", "cat", "dan"} {
		e.ok("", "users", "add", n, "--no-password")
	}
	if out := e.ok("", "audit", "verify"); !strings.Contains(out, "intact: 4 events") {
		t.Fatalf("audit verify: %q", out)
	}
	if out := e.ok("", "audit", "tail", "-n", "2"); !strings.Contains(out, "cat") || !strings.Contains(out, "dan") || strings.Contains(out, "ben") {
		t.Fatalf("audit tail -n 2: %q", out)
	}

	db := e.rawDB()
	if _, err := db.Exec("UPDATE audit_events SET subject = 'mallory' WHERE seq = 2"); err != nil {
		t.Fatal(err)
	}
	r := e.run("", "audit", "verify")
	if r.code != exitFailure || !strings.Contains(r.stdout, "seq 2") || !strings.Contains(r.stdout, "modified") {
		t.Fatalf("verify after modifying a row: %+v", r)
	}

	if _, err := db.Exec("UPDATE audit_events SET subject = 'ben' WHERE seq = 2"); err != nil {
		t.Fatal(err)
	}
	e.ok("", "audit", "verify") // restored: intact again
	if _, err := db.Exec("DELETE FROM audit_events WHERE seq = 3"); err != nil {
		t.Fatal(err)
	}
	r = e.run("", "audit", "verify", "--json")
	var rep struct {
		OK       bool
		Problems []struct {
			Seq    int64
			Reason string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r.stdout)
	}
	if r.code != exitFailure || rep.OK || len(rep.Problems) == 0 || rep.Problems[0].Seq != 3 {
		t.Fatalf("verify after deleting a row: exit %d, %+v", r.code, rep)
	}
}

// TestDevicesEnroll: an activation for an existing user, pinned to the
// active push key, stored as an HMAC only, single use, with PNG and SVG QR
// codes on request; none for an unknown user.
func TestDevicesEnroll(t *testing.T) {
	e := newEnv(t)
	e.ok("", "users", "add", "alice", "--no-password")
	dir := t.TempDir()
	png, svg := filepath.Join(dir, "qr.png"), filepath.Join(dir, "qr.svg")
	var out struct {
		User, Activation, URL string
		PushKey               string `json:"push_key"`
	}
	if err := json.Unmarshal([]byte(e.ok("", "devices", "enroll", "alice", "--json", "--png", png, "--svg", svg)), &out); err != nil {
		t.Fatal(err)
	}
	act, err := protocol.ParseActivation(out.URL)
	if err != nil {
		t.Fatalf("the activation URL does not parse: %v", err)
	}
	var keysOut []struct {
		ID, Purpose, Status string
	}
	if err := json.Unmarshal([]byte(e.ok("", "keys", "list", "--json")), &keysOut); err != nil {
		t.Fatal(err)
	}
	pinned := false
	for _, k := range keysOut {
		pinned = pinned || (k.Purpose == "push" && k.Status == "active" && k.ID == act.PushKey)
	}
	if !pinned {
		t.Fatalf("activation pins %q, not the active push key %+v", act.PushKey, keysOut)
	}
	id, secret, _ := strings.Cut(act.Code, ".")
	rec, err := e.store().GetActivation(context.Background(), id)
	if err != nil || rec.User != "alice" || len(rec.SecretHash) != 32 || bytes.Contains(rec.SecretHash, []byte(secret)) {
		t.Fatalf("stored activation %+v, %v", rec, err)
	}
	if f, err := os.Open(png); err != nil {
		t.Fatal(err)
	} else if _, err := imgpng.Decode(f); err != nil {
		t.Fatalf("PNG QR code: %v", err)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Fatalf("SVG QR code: %v", err)
	}
	if !slices.Contains(auditActions(t, e.store()), "device.activation:alice") {
		t.Fatal("activation not audited")
	}
	// Terminal output: a QR code and the link, and the web app's link of
	// the same activation (the app is on by default).
	text := e.ok("", "devices", "enroll", "alice")
	if !strings.Contains(text, "bridge://enroll?") || !strings.Contains(text, "█") || !strings.Contains(text, "/app/#enroll?v=1&url=") {
		t.Fatalf("terminal output:\n%s", text)
	}
	// The QR code is the native link by default on a plain-http base URL,
	// the web app's with --qr app.
	nativeQR, appQR := filepath.Join(dir, "native.png"), filepath.Join(dir, "app.png")
	var withApp struct {
		URL    string
		AppURL string `json:"app_url"`
	}
	if err := json.Unmarshal([]byte(e.ok("", "devices", "enroll", "alice", "--json", "--png", nativeQR)), &withApp); err != nil {
		t.Fatal(err)
	}
	a2, err := protocol.ParseActivation(withApp.URL)
	if err != nil || withApp.AppURL != account.AppLink(a2, "alice") {
		t.Fatalf("app_url %q for %q (%v)", withApp.AppURL, withApp.URL, err)
	}
	if err := json.Unmarshal([]byte(e.ok("", "devices", "enroll", "alice", "--json", "--qr", "app", "--png", appQR)), &withApp); err != nil {
		t.Fatal(err)
	}
	// The longer app link needs a bigger code: the images tell the two
	// apart without a QR decoder.
	if n, a := pngWidth(t, nativeQR), pngWidth(t, appQR); a <= n {
		t.Errorf("--qr app drew a code no bigger (%d px) than the native link's (%d px)", a, n)
	}
	if r := e.run("", "devices", "enroll", "alice", "--qr", "both"); r.code != 2 {
		t.Fatalf("--qr both: %+v, want a usage error", r)
	}
	if r := e.run("", "devices", "enroll", "nobody"); r.code != 1 || !strings.Contains(r.stderr, "nobody") {
		t.Fatalf("enroll for an unknown user: %+v", r)
	}
	if r := e.run("", "devices", "enroll", "alice", "--ttl", "10s"); r.code != 2 {
		t.Fatalf("a 10s activation: %+v, want a usage error", r)
	}
}

// TestDevicesEnrollPinsTLS: --pin-tls puts the SPKI pin of the configured
// certificate in the activation URL.
func TestDevicesEnrollPinsTLS(t *testing.T) {
	e := newEnv(t)
	cert := testenv.SelfSigned(t, 7)
	certFile, keyFile := cert.Write(t, e.dir)
	conf := strings.Replace(testConfig, "    allow_plain_http: true\n",
		fmt.Sprintf("    base_url: https://127.0.0.1:18080\n    tls: {cert_file: %s, key_file: %s}\n", certFile, keyFile), 1)
	if err := os.WriteFile(e.cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("", "users", "add", "alice", "--no-password")
	var out struct{ URL string }
	if err := json.Unmarshal([]byte(e.ok("", "devices", "enroll", "alice", "--json", "--pin-tls")), &out); err != nil {
		t.Fatal(err)
	}
	act, err := protocol.ParseActivation(out.URL)
	if err != nil {
		t.Fatal(err)
	}
	if want := protocol.SPKIPin(cert.Cert.RawSubjectPublicKeyInfo); act.TLSPin != want {
		t.Fatalf("TLS pin %q, want %q", act.TLSPin, want)
	}
}

// pngWidth is the width of the PNG image in file.
func pngWidth(t *testing.T, file string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := imgpng.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img.Bounds().Dx()
}
