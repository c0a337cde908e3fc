package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// These tests run the real bridge binary with a RADIUS front end, FreeRADIUS's
// radclient as the NAS and the reference authenticator (bridge-authenticator)
// as the phone.

const (
	radiusSecret = "Vd3q8LwP1nZk6sYt0bRx"
	password     = "correct horse battery"
)

var (
	buildOnce           sync.Once
	bridgeBin, phoneBin string
	buildErr            error
	radiusNumberRE      = regexp.MustCompile(`Type (\d+) on your phone`)
	radiusStateRE       = regexp.MustCompile(`State = (0x[0-9a-f]+)`)
)

// binaries builds the bridge and the reference authenticator once.
func binaries(t *testing.T) (bridge, phone string) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bridge-bin")
		if err != nil {
			buildErr = err
			return
		}
		bridgeBin, phoneBin = filepath.Join(dir, "bridge"), filepath.Join(dir, "bridge-authenticator")
		for bin, pkg := range map[string]string{bridgeBin: ".", phoneBin: "../bridge-authenticator"} {
			if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("building %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bridgeBin, phoneBin
}

// requireRadclient returns the path of radclient, or skips (fails in CI).
func requireRadclient(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("radclient")
	if err != nil {
		testenv.Unavailable(t, "radclient", "apt-get install freeradius-utils")
	}
	return p
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// liveBridge is a running bridge binary, with the reference
// authenticator to play the phones.
type liveBridge struct {
	t          *testing.T
	dir, cfg   string
	bin, phone string
	auth, acct int // RADIUS ports
	public     int // the public listener's port
	proc       *os.Process
	mu         sync.Mutex
	logs       []string
}

// startRadiusBridge starts the bridge with one RADIUS client for
// 127.0.0.1 whose settings are client (YAML lines at the client's
// indentation, after name, address and secret_file).
func startRadiusBridge(t *testing.T, client string) *liveBridge {
	t.Helper()
	requireRadclient(t)
	bin, phone := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin, phone: phone, auth: freeUDPPort(t), acct: freeUDPPort(t)}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	secretFile := filepath.Join(b.dir, "radius.secret")
	if err := os.WriteFile(secretFile, []byte(radiusSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.public = freePort(t)
	text := b.baseConfig(nil) + fmt.Sprintf(`radius:
  listen: 127.0.0.1:%d
  accounting_listen: 127.0.0.1:%d
  clients:
    - name: vpn
      address: 127.0.0.1
      secret_file: radius.secret
      reply:
        session_timeout: 8h
        attributes:
          - {name: Filter-Id, value: staff}
        groups:
          - group: vpn-admins
            attributes:
              - {name: Cisco-AVPair, value: "shell:priv-lvl=15"}
%s
`, b.auth, b.acct, client)
	b.start(text)
	return b
}

// baseConfig is the start of every test bridge's config: dev mode, its
// public listener (b.public) and an admin one on loopback, cheap password
// hashing, and push limits that do not get in the tests' way; pushLines
// are added to the push section.
func (b *liveBridge) baseConfig(pushLines []string) string {
	var extra strings.Builder
	for _, l := range pushLines {
		extra.WriteString("  " + l + "\n")
	}
	return fmt.Sprintf(`dev_mode: true
data_dir: ./data
log: {level: debug}
http:
  public: {listen: 127.0.0.1:%d, allow_plain_http: true}
  admin: {listen: 127.0.0.1:%d, allow_plain_http: true}
passwords:
  argon2id: {time: 1, memory_kib: 19456, threads: 1}
push:
  max_per_hour: 1000
  backoff_base: 1ms
  backoff_max: 1ms
%s`, b.public, freePort(b.t), extra.String())
}

// start writes the config text and runs the bridge until the test ends;
// it returns once both listeners are up.
func (b *liveBridge) start(text string) {
	t := b.t
	t.Helper()
	if err := os.WriteFile(b.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(b.bin, "serve", "--config", b.cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.proc = cmd.Process
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("bridge log:\n%s", b.log())
			out, _ := exec.Command(b.bin, "audit", "tail", "-n", "30", "--config", b.cfg).CombinedOutput()
			t.Logf("audit log:\n%s", out)
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		listening := 0
		for sc.Scan() {
			b.mu.Lock()
			b.logs = append(b.logs, sc.Text())
			b.mu.Unlock()
			if strings.Contains(sc.Text(), "msg=listening") {
				if listening++; listening == 2 {
					close(ready)
				}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("the bridge did not start:\n%s", b.log())
	}
}

func (b *liveBridge) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.logs, "\n")
}

// cli runs an admin command against the running bridge's database.
func (b *liveBridge) cli(stdin string, args ...string) string {
	b.t.Helper()
	cmd := exec.Command(b.bin, append(args, "--config", b.cfg)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.t.Fatalf("bridge %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// user adds a local user with the test password and groups.
func (b *liveBridge) user(name string, groups ...string) {
	b.t.Helper()
	args := []string{"users", "add", name, "--password-stdin"}
	for _, g := range groups {
		args = append(args, "--group", g)
	}
	b.cli(password+"\n", args...)
}

// enroll enrolls a reference authenticator for user and returns its
// state file.
func (b *liveBridge) enroll(user string) string {
	b.t.Helper()
	var act struct{ URL string }
	if err := json.Unmarshal([]byte(b.cli("", "devices", "enroll", user, "--json")), &act); err != nil {
		b.t.Fatal(err)
	}
	state := filepath.Join(b.dir, user+".phone")
	if out, err := exec.Command(b.phone, "--state", state, "enroll", act.URL).CombinedOutput(); err != nil {
		b.t.Fatalf("bridge-authenticator enroll: %v\n%s", err, out)
	}
	return state
}

// answer starts the phone answering the next login (wait --once with
// args such as --auto-approve); the channel gets its exit error.
func (b *liveBridge) answer(state string, args ...string) <-chan error {
	cmd := exec.Command(b.phone, append([]string{"--state", state, "wait", "--once", "--timeout", "30s"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		done <- err
		return done
	}
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%v\n%s", err, out.String())
		}
		done <- err
	}()
	return done
}

// radclient sends the requests of input (entries separated by blank lines;
// "Message-Authenticator = 0x00" makes radclient sign them) and returns
// its output and whether it exited 0 (every request got the answer it
// expected: accept for auth unless the entry says Response-Packet-Type).
func (b *liveBridge) radclient(port int, kind, secret, input string, extra ...string) (string, bool) {
	b.t.Helper()
	args := append([]string{"-x", "-t", "40", "-r", "1"}, extra...)
	args = append(args, fmt.Sprintf("127.0.0.1:%d", port), kind, secret)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, requireRadclient(b.t), args...)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// got reports the response code radclient printed last ("Access-Accept"),
// or "" for none.
func radclientCode(out string) string {
	m := regexp.MustCompile(`Received (Access-Accept|Access-Reject|Access-Challenge|Accounting-Response)`).FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

func login(user, pw string, more ...string) string {
	lines := append([]string{fmt.Sprintf("User-Name = %q", user), fmt.Sprintf("User-Password = %q", pw),
		"NAS-Identifier = \"test-vpn\"", "Calling-Station-Id = \"203.0.113.9\"", "Message-Authenticator = 0x00"}, more...)
	return strings.Join(lines, "\n") + "\n"
}

func TestRADIUSHoldWithRadclient(t *testing.T) {
	b := startRadiusBridge(t, "      wait: hold\n      hold_timeout: 4s")
	b.user("alice", "vpn-admins")
	b.user("bob")
	alice := b.enroll("alice")
	bob := b.enroll("bob")

	t.Run("approved", func(t *testing.T) {
		phone := b.answer(alice, "--auto-approve")
		out, ok := b.radclient(b.auth, "auth", radiusSecret, login("alice", password))
		if !ok || radclientCode(out) != "Access-Accept" {
			t.Fatalf("radclient:\n%s", out)
		}
		if err := <-phone; err != nil {
			t.Fatalf("phone: %v", err)
		}
		for _, want := range []string{`Filter-Id = "staff"`, `Session-Timeout = 28800`, `Cisco-AVPair = "shell:priv-lvl=15"`, `Class = 0x`} {
			if !strings.Contains(out, want) {
				t.Errorf("the Access-Accept lacks %s:\n%s", want, out)
			}
		}
	})
	t.Run("radtest", func(t *testing.T) {
		// radtest, as an administrator would try it: PAP with a
		// Message-Authenticator it adds by itself.
		phone := b.answer(alice, "--auto-approve")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "radtest", "-t", "pap", "alice", password, fmt.Sprintf("127.0.0.1:%d", b.auth), "0", radiusSecret).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Received Access-Accept") {
			t.Fatalf("radtest: %v\n%s", err, out)
		}
		if err := <-phone; err != nil {
			t.Fatalf("phone: %v", err)
		}
	})
	t.Run("no group attributes for non-members", func(t *testing.T) {
		phone := b.answer(bob, "--auto-approve")
		out, _ := b.radclient(b.auth, "auth", radiusSecret, login("bob", password))
		<-phone
		if radclientCode(out) != "Access-Accept" || strings.Contains(out, "Cisco-AVPair") {
			t.Fatalf("radclient:\n%s", out)
		}
	})
	t.Run("denied", func(t *testing.T) {
		phone := b.answer(alice, "--auto-deny")
		out, _ := b.radclient(b.auth, "auth", radiusSecret, login("alice", password))
		if err := <-phone; err != nil {
			t.Fatalf("phone: %v", err)
		}
		if radclientCode(out) != "Access-Reject" || !strings.Contains(out, "denied on your phone") {
			t.Fatalf("radclient:\n%s", out)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		out, _ := b.radclient(b.auth, "auth", radiusSecret, login("alice", password))
		if radclientCode(out) != "Access-Reject" || !strings.Contains(out, "No answer from your phone") {
			t.Fatalf("radclient:\n%s", out)
		}
		if d := time.Since(start); d < 3*time.Second {
			t.Fatalf("rejected after %s, before hold_timeout", d)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		out, _ := b.radclient(b.auth, "auth", radiusSecret, login("alice", "wrong"))
		if radclientCode(out) != "Access-Reject" {
			t.Fatalf("radclient:\n%s", out)
		}
	})
	t.Run("TOTP suffix", func(t *testing.T) {
		var tok struct{ Secret string }
		if err := json.Unmarshal([]byte(b.cli("", "users", "totp", "enroll", "bob", "--json")), &tok); err != nil {
			t.Fatal(err)
		}
		code, err := totp.GenerateCode(tok.Secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out, _ := b.radclient(b.auth, "auth", radiusSecret, login("bob", password+","+code))
		if radclientCode(out) != "Access-Accept" {
			t.Fatalf("radclient:\n%s", out)
		}
		out, _ = b.radclient(b.auth, "auth", radiusSecret, login("bob", password+","+code))
		if radclientCode(out) != "Access-Reject" {
			t.Fatalf("the same code twice:\n%s", out)
		}
	})
	t.Run("retransmissions start one push", func(t *testing.T) {
		// radclient resends the same packet (same identifier and
		// authenticator) every second while the user decides.
		done := make(chan string, 1)
		go func() {
			out, _ := b.radclient(b.auth, "auth", radiusSecret, login("bob", password), "-t", "1", "-r", "6")
			done <- out
		}()
		time.Sleep(3500 * time.Millisecond)
		phone := b.answer(bob, "--auto-approve")
		out := <-done
		if err := <-phone; err != nil {
			t.Fatalf("phone: %v", err)
		}
		if radclientCode(out) != "Access-Accept" {
			t.Fatalf("radclient:\n%s", out)
		}
		if n := strings.Count(out, "Sent Access-Request"); n < 3 {
			t.Fatalf("radclient sent the request %d times; the test needs retransmissions:\n%s", n, out)
		}
		starts := auditCount(t, b, "push.start", "bob")
		if starts != 2 { // the earlier "no group attributes" login, and this one
			t.Fatalf("%d push.start events for bob, want 2 (one per login, none per retransmission)", starts)
		}
	})
	t.Run("wrong secret is dropped", func(t *testing.T) {
		out, ok := b.radclient(b.auth, "auth", "not-the-secret-at-all", login("alice", password), "-t", "2")
		if ok || radclientCode(out) != "" || !strings.Contains(out, "No reply") {
			t.Fatalf("a request with the wrong secret was answered:\n%s", out)
		}
		if !strings.Contains(b.log(), "wrong shared secret") {
			t.Fatal("the wrong secret was not logged")
		}
	})
	t.Run("missing Message-Authenticator is dropped", func(t *testing.T) {
		in := strings.Replace(login("alice", "wrong"), "Message-Authenticator = 0x00\n", "", 1)
		out, ok := b.radclient(b.auth, "auth", radiusSecret, in, "-t", "2")
		if ok || radclientCode(out) != "" {
			t.Fatalf("an Access-Request without Message-Authenticator was answered under always:\n%s", out)
		}
	})
	t.Run("status-server", func(t *testing.T) {
		out, ok := b.radclient(b.auth, "status", radiusSecret, "Message-Authenticator = 0x00\n")
		if !ok || radclientCode(out) != "Access-Accept" {
			t.Fatalf("Status-Server:\n%s", out)
		}
	})
	t.Run("accounting", func(t *testing.T) {
		out, ok := b.radclient(b.acct, "acct", radiusSecret, "User-Name = \"alice\"\nAcct-Status-Type = Start\nAcct-Session-Id = \"s-1\"\nNAS-Identifier = \"test-vpn\"\n")
		if !ok || radclientCode(out) != "Accounting-Response" {
			t.Fatalf("accounting:\n%s", out)
		}
		if auditCount(t, b, "radius.accounting", "alice") != 1 {
			t.Fatal("the accounting record is not in the audit log")
		}
	})
}

// auditCount counts audit events with action about subject, read with the
// CLI.
func auditCount(t *testing.T, b *liveBridge, action, subject string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(b.cli("", "audit", "tail", "-n", "100000", "--json")), "\n") {
		var e struct{ Action, Subject string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit tail: %v: %q", err, line)
		}
		if e.Action == action && e.Subject == subject {
			n++
		}
	}
	return n
}

func TestRADIUSChallengeWithRadclient(t *testing.T) {
	b := startRadiusBridge(t, "      wait: challenge")
	b.user("alice")
	alice := b.enroll("alice")

	out, _ := b.radclient(b.auth, "auth", radiusSecret, login("alice", password))
	if radclientCode(out) != "Access-Challenge" {
		t.Fatalf("first request:\n%s", out)
	}
	num := radiusNumberRE.FindStringSubmatch(out)
	state := radiusStateRE.FindStringSubmatch(out)
	if num == nil || state == nil {
		t.Fatalf("the Access-Challenge lacks the number or the State:\n%s", out)
	}
	// The user types the number on the phone and approves...
	if err := <-b.answer(alice, "--auto-approve", "--number", num[1]); err != nil {
		t.Fatalf("phone: %v", err)
	}
	// ...then presses Enter: the NAS sends the State back.
	out, _ = b.radclient(b.auth, "auth", radiusSecret, login("alice", "", "State = "+state[1]))
	if radclientCode(out) != "Access-Accept" {
		t.Fatalf("second request:\n%s", out)
	}
	// A wrong number on the phone ends in a reject.
	out, _ = b.radclient(b.auth, "auth", radiusSecret, login("alice", password))
	num, state = radiusNumberRE.FindStringSubmatch(out), radiusStateRE.FindStringSubmatch(out)
	if num == nil || state == nil {
		t.Fatalf("second login:\n%s", out)
	}
	wrong := "00"
	if num[1] == wrong {
		wrong = "11"
	}
	<-b.answer(alice, "--auto-approve", "--number", wrong)
	out, _ = b.radclient(b.auth, "auth", radiusSecret, login("alice", "", "State = "+state[1]))
	if radclientCode(out) != "Access-Reject" {
		t.Fatalf("after a wrong number:\n%s", out)
	}
}

func TestRADIUSMessageAuthenticatorSettings(t *testing.T) {
	for _, tc := range []struct {
		setting string
		// answered: without, then with, then without again
		want [3]bool
	}{
		{"always", [3]bool{false, true, false}},
		{"auto", [3]bool{true, true, false}},
		{"never", [3]bool{true, true, true}},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			b := startRadiusBridge(t, "      message_authenticator: "+tc.setting)
			signed := login("nobody", "wrong")
			unsigned := strings.Replace(signed, "Message-Authenticator = 0x00\n", "", 1)
			for i, in := range []string{unsigned, signed, unsigned} {
				out, _ := b.radclient(b.auth, "auth", radiusSecret, in, "-t", "2")
				if got := radclientCode(out) == "Access-Reject"; got != tc.want[i] {
					t.Fatalf("request %d (%s Message-Authenticator): answered = %v, want %v\n%s", i+1, map[bool]string{true: "with", false: "without"}[i == 1], got, tc.want[i], out)
				}
			}
			if tc.setting == "never" && !strings.Contains(b.log(), "does not require Message-Authenticator") {
				t.Fatal("no warning for a client set to never")
			}
		})
	}
}
