package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// These tests put the real ocserv (an OpenConnect VPN server, which
// authenticates through radcli and sends no Message-Authenticator) in
// front of the bridge in challenge mode, and log in with the real
// openconnect client (--authenticate: up to the session cookie, no tunnel).

// ocservBinaries returns the paths of ocserv and openconnect, or skips
// (fails in CI). Debian puts both in /usr/sbin, which a user's PATH may
// lack.
func ocservBinaries(t *testing.T) (ocserv, openconnect string) {
	t.Helper()
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if p := "/usr/sbin/" + name; fileExists(p) {
			return p
		}
		testenv.Unavailable(t, "ocserv", "apt-get install ocserv openconnect")
		return ""
	}
	ocserv, openconnect = find("ocserv"), find("openconnect")
	if os.Geteuid() != 0 {
		// It changes to run-as-user and creates its sec-mod sockets as root.
		testenv.Unavailable(t, "ocserv", "run the tests as root: ocserv starts as root")
	}
	return ocserv, openconnect
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ocservServer is a running ocserv whose RADIUS server is a live bridge.
type ocservServer struct {
	t           *testing.T
	dir         string
	port        int // HTTPS, loopback
	openconnect string
	mu          sync.Mutex
	logs        []string
}

// startOcserv runs ocserv on a free loopback port with radcli pointed at
// the bridge's RADIUS port, until the test ends.
func startOcserv(t *testing.T, b *liveBridge) *ocservServer {
	t.Helper()
	bin, openconnect := ocservBinaries(t)
	o := &ocservServer{t: t, dir: t.TempDir(), port: freePort(t), openconnect: openconnect}
	cert := testenv.SelfSigned(t, 1) // for 127.0.0.1
	certFile, keyFile := cert.Write(t, o.dir)
	path := func(name string) string { return filepath.Join(o.dir, name) }
	files := map[string]string{
		// radcli: where the RADIUS server is, its secret (servers: host
		// and secret per line), and the attribute dictionary Debian ships.
		"radiusclient.conf": fmt.Sprintf(`authserver 127.0.0.1:%d
servers %s
dictionary /etc/radcli/dictionary
default_realm
radius_timeout 10
radius_retries 1
bindaddr *
`, b.auth, path("servers")),
		"servers": "127.0.0.1 " + radiusSecret + "\n",
		// The smallest ocserv config that starts here:
		//  - auth: RADIUS through radcli; groupconfig=false, so no
		//    per-group config files are looked up;
		//  - tcp-port and listen-host: its own loopback port; no
		//    udp-port, so no DTLS listener;
		//  - socket-file: a prefix for the sec-mod sockets, in the test's
		//    directory rather than /run;
		//  - server-cert and server-key: a self-signed certificate for
		//    127.0.0.1, given to openconnect as --cafile;
		//  - isolate-workers = false: no seccomp sandbox for the workers,
		//    which some containers refuse;
		//  - device and ipv4-network: required at start even though
		//    --authenticate never makes a tunnel (no tun device is opened);
		//  - pid-file: not the default in /run;
		//  - log-level = 3: sec-mod logs the group it read from Class and
		//    "auth complete", which the tests look for.
		// ocserv starts as root (the tests run as root) and runs its
		// workers as nobody by default.
		"ocserv.conf": fmt.Sprintf(`auth = "radius[config=%s,groupconfig=false]"
tcp-port = %d
listen-host = 127.0.0.1
socket-file = %s
pid-file = %s
server-cert = %s
server-key = %s
isolate-workers = false
device = vpns
ipv4-network = 192.168.99.0/24
log-level = 3
`, path("radiusclient.conf"), o.port, path("ocserv.sock"), path("ocserv.pid"), certFile, keyFile),
	}
	for name, text := range files {
		if err := os.WriteFile(path(name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-f", "-c", path("ocserv.conf"))
	// Its own process group: ocserv forks sec-mod and a worker per
	// connection, and all of them must go when the test ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			o.mu.Lock()
			o.logs = append(o.logs, sc.Text())
			o.mu.Unlock()
		}
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("ocserv log:\n%s", o.log())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", o.port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("ocserv exited at start:\n%s", o.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ocserv does not listen on %d: %v\n%s", o.port, err, o.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return o
}

// waitLog waits for ocserv to log a line containing s: its log arrives
// through a pipe, maybe after openconnect has finished.
func (o *ocservServer) waitLog(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(o.log(), s); {
		if time.Now().After(deadline) {
			t.Fatalf("ocserv did not log %q:\n%s", s, o.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (o *ocservServer) log() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.logs, "\n")
}

// ocservPromptRE matches the bridge's Access-Challenge message as
// openconnect shows it, with the number to type on the phone.
var ocservPromptRE = regexp.MustCompile(`Type (\d+) on your phone to approve`)

// login runs openconnect --authenticate for user with the password. Each
// time the bridge's prompt appears, the next of replies is called with the
// number shown, and what it returns is typed at the prompt (after the
// phone has answered, when the reply does that first). After the last
// reply stdin is closed, so a prompt beyond them ends openconnect instead
// of hanging the test. It returns openconnect's stdout (COOKIE=... on
// success), its stderr and its exit error.
func (o *ocservServer) login(user, pw string, replies ...func(number string) string) (stdout, stderr string, err error) {
	t := o.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.openconnect, "--authenticate", "--passwd-on-stdin", "--non-inter",
		"-u", user, "--cafile", filepath.Join(o.dir, "cert.pem"), fmt.Sprintf("https://127.0.0.1:%d/", o.port))
	cmd.WaitDelay = 5 * time.Second
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The password first; openconnect reads the reply only when it shows
	// the challenge's prompt.
	io.WriteString(in, pw+"\n")
	var errOut strings.Builder
	sc := bufio.NewScanner(errPipe)
	prompts, asked := 0, 0
	for sc.Scan() {
		line := sc.Text()
		errOut.WriteString(line + "\n")
		if m := ocservPromptRE.FindStringSubmatch(line); m != nil {
			if prompts++; prompts <= len(replies) {
				io.WriteString(in, replies[prompts-1](m[1])+"\n")
			}
			if prompts >= len(replies) {
				in.Close()
			}
		}
		if strings.Contains(line, "Please enter your password") {
			if asked++; asked == 2 { // after a reject, ocserv asks again
				in.Close()
			}
		}
	}
	err = cmd.Wait()
	if err == nil && prompts != len(replies) {
		err = fmt.Errorf("openconnect logged in after %d prompts of the bridge, want %d", prompts, len(replies))
	}
	return out.String(), errOut.String(), err
}

func TestOcservChallenge(t *testing.T) {
	ocservBinaries(t)
	// radcli sends no Message-Authenticator: never (auto would do too,
	// as long as nothing else from 127.0.0.1 sends one).
	b := startRadiusBridge(t, "      wait: challenge\n      message_authenticator: never")
	b.user("alice")
	alice := b.enroll("alice")
	o := startOcserv(t, b)

	approve := func(number string) {
		t.Helper()
		if err := <-b.answer(alice, "--auto-approve", "--number", number); err != nil {
			t.Errorf("phone: %v", err)
		}
	}
	loggedIn := func(t *testing.T, stdout, stderr string, err error) {
		t.Helper()
		if err != nil || !strings.Contains(stdout, "COOKIE=") {
			t.Fatalf("openconnect did not log in: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		}
	}

	t.Run("Enter after approval", func(t *testing.T) {
		// radcli sends the empty line as a zero-length User-Password.
		stdout, stderr, err := o.login("alice", password, func(number string) string {
			approve(number)
			return ""
		})
		loggedIn(t, stdout, stderr, err)
		if l := lastLogin(t, b, "alice"); l.Result != "success" || l.Details["factor"] != "push" {
			t.Errorf("the login is not audited as approved on the phone: %+v", l)
		}
		// The bridge's Class reached ocserv, which reads it as a group name.
		o.waitLog(t, "found group string bridge:")
	})
	t.Run("Enter before approval, then again", func(t *testing.T) {
		// The bridge waits 3 s for the phone, then asks again with the
		// same State: a second Access-Challenge round through ocserv.
		var shown string
		stdout, stderr, err := o.login("alice", password,
			func(number string) string { shown = number; return "" },
			func(number string) string {
				if number != shown {
					t.Errorf("asked again with number %s, first %s", number, shown)
				}
				approve(number)
				return ""
			})
		loggedIn(t, stdout, stderr, err)
		if !strings.Contains(stderr, "Still waiting for your phone") {
			t.Errorf("openconnect did not show the bridge's second prompt:\n%s", stderr)
		}
	})
	t.Run("number typed at the prompt", func(t *testing.T) {
		stdout, stderr, err := o.login("alice", password, func(number string) string {
			approve(number)
			return number
		})
		loggedIn(t, stdout, stderr, err)
	})
	t.Run("bypass code at the prompt", func(t *testing.T) {
		var bp struct{ Code string }
		if err := json.Unmarshal([]byte(b.cli("", "users", "bypass", "alice", "--ttl", "10m", "--json")), &bp); err != nil {
			t.Fatal(err)
		}
		// The phone never answers: the code completes the login.
		stdout, stderr, err := o.login("alice", password, func(string) string { return bp.Code })
		loggedIn(t, stdout, stderr, err)
		if l := lastLogin(t, b, "alice"); l.Result != "success" || l.Details["factor"] != "bypass" {
			t.Errorf("the login is not audited as completed by the bypass code: %+v", l)
		}
	})
	t.Run("denied on the phone", func(t *testing.T) {
		stdout, stderr, err := o.login("alice", password, func(string) string {
			if err := <-b.answer(alice, "--auto-deny"); err != nil {
				t.Errorf("phone: %v", err)
			}
			return ""
		})
		if err == nil || strings.Contains(stdout, "COOKIE=") {
			t.Fatalf("openconnect logged in after a denial: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		}
		if l := lastLogin(t, b, "alice"); l.Result != "denied" || !strings.Contains(l.Reason, "denied on the phone") {
			t.Errorf("the last login is not a denial on the phone: %+v", l)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		stdout, stderr, err := o.login("alice", "wrong")
		if err == nil || strings.Contains(stdout, "COOKIE=") || ocservPromptRE.MatchString(stderr) {
			t.Fatalf("openconnect logged in, or was asked for the phone, with a wrong password: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		}
		if l := lastLogin(t, b, "alice"); l.Result != "failure" || !strings.Contains(l.Reason, "wrong password") {
			t.Errorf("the last login is not a wrong password: %+v", l)
		}
	})
}

// ocservLogins returns the bridge's RADIUS login decisions for user, in
// order, read with the CLI.
func ocservLogins(t *testing.T, b *liveBridge, user string) []auditLine {
	t.Helper()
	var out []auditLine
	for _, line := range strings.Split(strings.TrimSpace(b.cli("", "audit", "tail", "-n", "100000", "--json")), "\n") {
		var e auditLine
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit tail: %v: %q", err, line)
		}
		if e.Action == "login" && e.Subject == user && e.Channel == "radius" {
			out = append(out, e)
		}
	}
	return out
}

type auditLine struct {
	Action, Subject, Channel, Result, Reason string
	Details                                  map[string]string
}

// lastLogin is the last login decision for user.
func lastLogin(t *testing.T, b *liveBridge, user string) auditLine {
	t.Helper()
	ls := ocservLogins(t, b, user)
	if len(ls) == 0 {
		t.Fatalf("no login event for %s", user)
	}
	return ls[len(ls)-1]
}

// ocserv reads the Class as the user's group: with class off it gets none,
// with a template the one the template makes.
func TestOcservClass(t *testing.T) {
	ocservBinaries(t)
	for _, tc := range []struct{ class, want string }{
		{"off", ""},
		{`"vpn-{user}-{id}"`, "found group string vpn-alice-"},
	} {
		t.Run(tc.class, func(t *testing.T) {
			// At 8 spaces the first line continues the client's reply
			// block of startRadiusBridge; the others are client keys.
			b := startRadiusBridge(t, "        class: "+tc.class+"\n      wait: challenge\n      message_authenticator: never")
			b.user("alice")
			alice := b.enroll("alice")
			o := startOcserv(t, b)
			stdout, stderr, err := o.login("alice", password, func(number string) string {
				if err := <-b.answer(alice, "--auto-approve", "--number", number); err != nil {
					t.Errorf("phone: %v", err)
				}
				return ""
			})
			if err != nil || !strings.Contains(stdout, "COOKIE=") {
				t.Fatalf("openconnect did not log in: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			o.waitLog(t, "auth complete for user 'alice'")
			switch log := o.log(); {
			case tc.want == "" && strings.Contains(log, "found group string"):
				t.Errorf("ocserv got a group with class off:\n%s", log)
			case tc.want != "" && !strings.Contains(log, tc.want):
				t.Errorf("ocserv did not log %q:\n%s", tc.want, log)
			}
		})
	}
}
