package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustSealer(t *testing.T, kekText string) *keys.Sealer {
	t.Helper()
	kek, err := keys.ParseKEK(kekText)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// buildBridge compiles the bridge binary once per test run.
func buildBridge(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bridge")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building the bridge: %v", err)
	}
	return bin
}

// TestServeExampleConfig runs the real binary on the quick-start config of
// examples/ (only its ports and data directory moved, so the test can run
// beside a bridge a developer has started): it must start, answer health
// and readiness, serve metrics on the admin listener only, and stop cleanly
// on SIGTERM.
func TestServeExampleConfig(t *testing.T) {
	example, err := os.ReadFile("../../examples/bridge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pub, adm := freePort(t), freePort(t)
	text := strings.ReplaceAll(string(example), "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", pub))
	text = strings.ReplaceAll(text, "localhost:8080", fmt.Sprintf("localhost:%d", pub))
	text = strings.ReplaceAll(text, "127.0.0.1:9090", fmt.Sprintf("127.0.0.1:%d", adm))
	if text == string(example) || !strings.Contains(text, fmt.Sprint(adm)) {
		t.Fatal("the example config no longer listens on 127.0.0.1:8080 and 127.0.0.1:9090; update this test with it")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(buildBridge(t), "serve", "--config", cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	var seen []string
	listening := 0
	deadline := time.After(60 * time.Second)
	for listening < 2 {
		select {
		case l, ok := <-logs:
			if !ok {
				t.Fatalf("bridge exited before listening:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if strings.Contains(l, "msg=listening") {
				listening++
			}
		case <-deadline:
			t.Fatalf("bridge did not start listening in 60 s:\n%s", strings.Join(seen, "\n"))
		}
	}

	get := func(port int, path string) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(pub, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, _ := get(pub, "/readyz"); code != 200 {
		t.Fatalf("/readyz = %d", code)
	}
	if code, body := get(adm, "/metrics"); code != 200 || !strings.Contains(body, "bridge_http_requests_total") {
		t.Fatalf("admin /metrics = %d", code)
	}
	if code, _ := get(pub, "/metrics"); code != 404 {
		t.Fatalf("public /metrics = %d, want 404", code)
	}

	// The dev KEK is private, and the four default keys and the VAPID key
	// (the app's Web Push is on by default) were generated, sealed (the
	// store holds no PKCS#8 plaintext) and audited.
	if st, err := os.Stat(filepath.Join(dir, "data", "dev.kek")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("dev.kek: %v %v", st, err)
	}
	kek, _ := os.ReadFile(filepath.Join(dir, "data", "dev.kek"))
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "data", "bridge.db")}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored, err := s.ListSigningKeys(context.Background())
	if err != nil || len(stored) != 5 {
		t.Fatalf("signing keys after first start: %d, %v", len(stored), err)
	}
	sealer := mustSealer(t, string(kek))
	for _, k := range stored {
		if k.Status != store.KeyActive {
			t.Fatalf("key %s is %s after first start", k.ID, k.Status)
		}
		if _, err := x509.ParsePKCS8PrivateKey(k.SealedPriv); err == nil {
			t.Fatalf("key %s is stored unencrypted", k.ID)
		}
	}
	rep, err := store.VerifyChain(context.Background(), s, sealer.DeriveKey(auditKeyLabel), 0)
	if err != nil || !rep.OK() || rep.Events != 5 {
		t.Fatalf("audit after first start: %+v, %v (want 5 key.create events, chain intact)", rep, err)
	}

	// A phone enrolls against the running bridge with a code from the CLI
	// (a second process on the same database), and then long-polls.
	bin := buildBridge(t)
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--config", cfg)...).CombinedOutput()
		if err != nil {
			t.Fatalf("bridge %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	cli("users", "add", "alice", "--no-password")
	var act struct{ URL string }
	if err := json.Unmarshal([]byte(cli("devices", "enroll", "alice", "--json")), &act); err != nil {
		t.Fatal(err)
	}
	dev, err := authenticator.Enroll(context.Background(), act.URL, authenticator.EnrollOptions{})
	if err != nil {
		t.Fatalf("enrolling against the running bridge: %v", err)
	}
	if cs, err := dev.Pending(context.Background(), 0); err != nil || len(cs) != 0 {
		t.Fatalf("pending on a fresh bridge: %v, %v", cs, err)
	}
	if _, body := get(adm, "/metrics"); !strings.Contains(body, "bridge_push_devices_enrolled_total 1") {
		t.Fatal("the enrollment is not counted in the admin /metrics")
	}
	if out := cli("devices", "list", "alice"); !strings.Contains(out, dev.ID()) {
		t.Fatalf("devices list does not show the enrolled device:\n%s", out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for l := range logs {
		seen = append(seen, l)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("bridge exited with %v after SIGTERM:\n%s", err, strings.Join(seen, "\n"))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bridge did not stop within 30 s of SIGTERM")
	}
	if !regexp.MustCompile(`msg="bridge stopped"`).MatchString(strings.Join(seen, "\n")) {
		t.Fatalf("no clean stop in the log:\n%s", strings.Join(seen, "\n"))
	}
}

// TestServeRefusesWithoutKEK: outside dev mode a bridge with no
// key-encryption key does not start.
func TestServeRefusesWithoutKEK(t *testing.T) {
	e := newEnv(t)
	os.WriteFile(e.cfg, []byte(strings.Replace(testConfig, "dev_mode: true", "dev_mode: false", 1)), 0o600)
	r := e.run("", "serve")
	if r.code != exitFailure || !strings.Contains(r.stderr, "kek") {
		t.Fatalf("serve without a KEK: %+v", r)
	}
}
