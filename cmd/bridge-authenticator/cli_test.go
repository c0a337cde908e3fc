package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/pushauth/authenticator/fakebridge"
	"github.com/bridge-idp/bridge/pushauth/protocol"
)

const user = "alice"

// env is one test's fake bridge and state file.
type env struct {
	t     *testing.T
	srv   *fakebridge.Server
	state string
	now   func() time.Time
}

func newEnv(t *testing.T, cfg fakebridge.Config) *env {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &env{t: t, srv: fakebridge.Start(t, cfg), state: filepath.Join(t.TempDir(), "cfg", "device.json"), now: cfg.Now}
}

type result struct {
	code           int
	stdout, stderr string
}

// output is a concurrency-safe buffer that tests can wait on.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.changed)
	o.changed = make(chan struct{})
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output holds s.
func (o *output) waitFor(t *testing.T, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		o.mu.Lock()
		has, changed := strings.Contains(o.buf.String(), s), o.changed
		o.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("the output never held %q:\n%s", s, o.String())
		}
	}
}

// cli makes the CLI of one run, polling fast.
func (e *env) cli(stdin io.Reader, stdout, stderr io.Writer) *cli {
	c := newCLI(stdin, stdout, stderr)
	c.pollInterval = 10 * time.Millisecond
	c.now = e.now
	return c
}

// start runs the CLI in the background with the env's state file; done
// gets the exit code.
func (e *env) start(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr *output, done <-chan int) {
	stdout, stderr = newOutput(), newOutput()
	codes := make(chan int, 1)
	c := e.cli(stdin, stdout, stderr)
	go func() { codes <- c.execute(ctx, append([]string{"--state", e.state}, args...)) }()
	return stdout, stderr, codes
}

// run runs the CLI in-process with the env's state file. A run that does
// not end by itself is stopped after a while, as if by Ctrl-C, so that a
// wait that never returns fails the test instead of hanging it.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 10*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := e.cli(strings.NewReader(stdin), &out, &errb).execute(ctx, append([]string{"--state", e.state}, args...))
	return result{code, out.String(), errb.String()}
}

// ok runs the CLI and fails the test unless it exits 0.
func (e *env) ok(stdin string, args ...string) string {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != exitOK {
		e.t.Fatalf("bridge-authenticator %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (e *env) enroll(args ...string) string {
	e.t.Helper()
	return e.ok("", append([]string{"enroll", e.srv.Activation(user).String()}, args...)...)
}

func TestEnrollAndWaitOnceAutoApprove(t *testing.T) {
	for _, tc := range []struct {
		name, alg, number string
	}{
		{"ES256", protocol.AlgES256, ""},
		{"EdDSA", protocol.AlgEdDSA, ""},
		{"number matching", protocol.AlgES256, "4711"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakebridge.Config{})
			out := e.enroll("--alg", tc.alg, "--name", "ci runner")
			devs := e.srv.Devices()
			if len(devs) != 1 || devs[0].Alg != tc.alg || devs[0].Enroll.Name != "ci runner" || !strings.Contains(out, devs[0].ID) {
				t.Fatalf("enrolled %+v; output:\n%s", devs, out)
			}
			if fi, err := os.Stat(e.state); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("state file: %v, %v", fi, err)
			}

			id := e.srv.NewChallenge(user, tc.number)
			args := []string{"wait", "--once", "--auto-approve"}
			if tc.number != "" {
				args = append(args, "--number", tc.number)
			}
			out = e.ok("", args...)
			for _, want := range []string{id, "User:        alice", "Corporate VPN (vpn)", "radius", "203.0.113.7", "OpenConnect/9.12", "Paris, FR", "Issued:", "Expires:", "Approved. The bridge recorded: approved."} {
				if !strings.Contains(out, want) {
					t.Errorf("wait output lacks %q:\n%s", want, out)
				}
			}
			if s := e.srv.State(id); s != "approved" {
				t.Errorf("server state %q, want approved", s)
			}
		})
	}
}

func TestWaitInteractive(t *testing.T) {
	for _, tc := range []struct {
		name, number, stdin, state string
	}{
		{"approve", "", "a\n", "approved"},
		{"deny", "", "no\n", "denied"},
		{"report", "", "?\nr\n", "fraud"},
		{"number", "42", "7\n\na\n42\napprove\n", "approved"},
		{"deny without the number", "42", "\nd\n", "denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakebridge.Config{})
			e.enroll()
			id := e.srv.NewChallenge(user, tc.number)
			out := e.ok(tc.stdin, "wait", "--once")
			if s := e.srv.State(id); s != tc.state {
				t.Errorf("server state %q, want %s; output:\n%s", s, tc.state, out)
			}
			if asked := strings.Contains(out, "Type the number shown on the login screen"); asked != (tc.number != "") {
				t.Errorf("number prompt shown: %v, want %v:\n%s", asked, tc.number != "", out)
			}
			if !strings.Contains(out, "Approve this login? [a]pprove, [d]eny, [r]eport (this wasn't me)") {
				t.Errorf("no decision prompt:\n%s", out)
			}
		})
	}
}

func TestWaitStdinClosed(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.enroll()
	id := e.srv.NewChallenge(user, "")
	r := e.run("", "wait")
	if r.code != exitFailure || !strings.Contains(r.stderr, "stdin closed") || e.srv.State(id) != "pending" {
		t.Errorf("exit %d, state %q, stderr %s", r.code, e.srv.State(id), r.stderr)
	}
}

func TestWaitAutoApproveNeedsNumber(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.enroll()
	id := e.srv.NewChallenge(user, "123456")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, stderr, done := e.start(ctx, strings.NewReader(""), "wait", "--auto-approve")
	stdout.waitFor(t, "cannot auto-approve without --number")
	// It is not shown again while it stays pending: the next long-poll
	// names it as known and waits (parks) instead of returning at once;
	// it is dismissed when it closes.
	if err := e.srv.WaitPolls(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	e.srv.CloseChallenge(id, "denied")
	stdout.waitFor(t, "no longer pending")
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d after Ctrl-C, want 0; stderr: %s", code, stderr)
	}
	if n := strings.Count(stdout.String(), "Login request "+id+"\n"); n != 1 {
		t.Errorf("the request was shown %d times, want once:\n%s", n, stdout)
	}
	if n := len(e.srv.Answers()); n != 0 {
		t.Errorf("%d answers sent, want none", n)
	}
}

func TestWaitDismissesChallengeClosedElsewhere(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.enroll()
	id := e.srv.NewChallenge(user, "")
	stdin, stdinW := io.Pipe()
	defer stdinW.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, stderr, done := e.start(ctx, stdin, "wait", "--once")
	stdout.waitFor(t, "Approve this login?")
	e.srv.CloseChallenge(id, "approved")
	stdout.waitFor(t, "was answered elsewhere or closed: dismissed")

	// The next one is answered.
	id2 := e.srv.NewChallenge(user, "")
	stdout.waitFor(t, "Login request "+id2)
	if _, err := io.WriteString(stdinW, "d\n"); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != exitOK {
		t.Errorf("exit %d, want 0; stderr: %s", code, stderr)
	}
	if s := e.srv.State(id2); s != "denied" {
		t.Errorf("second request state %q, want denied", s)
	}
}

func TestWaitOnceFailsWhenTheAnswerIsRefused(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	e := newEnv(t, fakebridge.Config{Now: clock.Now})
	e.enroll()
	id := e.srv.NewChallenge(user, "")
	clock.Add(100 * time.Second) // expired on the server, within the device's skew
	r := e.run("", "wait", "--once", "--auto-deny")
	if r.code != exitFailure || !strings.Contains(r.stderr, "did not record") || !strings.Contains(r.stderr, protocol.ErrExpired) {
		t.Errorf("exit %d, stderr %s; want 1 and the expired error", r.code, r.stderr)
	}
	if s := e.srv.State(id); s != "expired" {
		t.Errorf("state %q", s)
	}
}

func TestWaitCancelAndTimeout(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.enroll()

	ctx, cancel := context.WithCancel(t.Context())
	_, stderr, done := e.start(ctx, strings.NewReader(""), "wait")
	if err := e.srv.WaitPolls(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if code := <-done; code != exitOK || !strings.Contains(stderr.String(), "Stopped.") {
		t.Errorf("wait after Ctrl-C: exit %d, stderr %s; want 0", code, stderr)
	}

	r := e.run("", "wait", "--once", "--timeout", "100ms")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no login request was answered within 100ms") {
		t.Errorf("wait --once --timeout: exit %d, stderr %s", r.code, r.stderr)
	}
	r = e.run("", "wait", "--timeout", "100ms")
	if r.code != exitOK || !strings.Contains(r.stdout, "Stopped after 100ms") {
		t.Errorf("wait --timeout: exit %d, stdout %s", r.code, r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	url := e.srv.Activation(user).String()
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"enroll"},
		{"enroll", url, "extra"},
		{"enroll", url, "--alg", "RS256"},
		{"enroll", url, "--platform", "symbian"},
		{"enroll", url, "--push-provider", "fcm"},
		{"enroll", url, "--push-token", "t"},
		{"enroll", url, "--push-provider", "sms", "--push-token", "t"},
		{"enroll", url, "--bogus"},
		{"wait", "extra"},
		{"wait", "--auto-approve", "--auto-deny"},
		{"wait", "--number", "42"},
		{"wait", "--auto-approve", "--number", "4x"},
		{"wait", "--timeout", "soon"},
		{"wait", "--answer-after", "1s"},
		{"wait", "--auto-approve", "--answer-after", "-1s"},
		{"status", "extra"},
	} {
		r := e.run("", args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--help") {
			t.Errorf("%q: exit %d, stderr %q; want 2", args, r.code, r.stderr)
		}
	}
	if n := len(e.srv.Devices()); n != 0 {
		t.Errorf("%d devices enrolled by usage errors", n)
	}
}

func TestMissingStateFile(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	for _, cmd := range []string{"wait", "status"} {
		r := e.run("", cmd)
		if r.code != exitFailure || !strings.Contains(r.stderr, "no device is enrolled") || !strings.Contains(r.stderr, "bridge-authenticator enroll URL") {
			t.Errorf("%s without a state file: exit %d, stderr %q", cmd, r.code, r.stderr)
		}
	}
}

func TestStateFileAccessibleToOthers(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.enroll()
	if err := os.Chmod(e.state, 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run("", "wait")
	if r.code != exitFailure || !strings.Contains(r.stderr, "chmod 600") {
		t.Errorf("wait with a 0644 state file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestEnrollRefusesToOverwrite(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.enroll()
	r := e.run("", "enroll", e.srv.Activation(user).String())
	if r.code != exitFailure || !strings.Contains(r.stderr, "exists already") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("second enroll: exit %d, stderr %q", r.code, r.stderr)
	}
	if n := len(e.srv.Devices()); n != 1 {
		t.Fatalf("%d devices: the refused enrollment reached the server", n)
	}
	e.enroll("--force")
	devs := e.srv.Devices()
	if len(devs) != 2 || !strings.Contains(e.ok("", "status"), devs[1].ID) {
		t.Errorf("after --force: devices %+v, status does not name the new one", devs)
	}
}

func TestEnrollFromStdin(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.ok(e.srv.Activation(user).String()+"\n", "enroll", "-", "--push-provider", "fcm", "--push-token", "tok")
	devs := e.srv.Devices()
	if len(devs) != 1 || devs[0].Enroll.PushProvider != "fcm" || devs[0].Enroll.PushToken != "tok" {
		t.Fatalf("devices %+v", devs)
	}
	if out := e.ok("", "status"); !strings.Contains(out, "Push:        fcm") {
		t.Errorf("status:\n%s", out)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	_, pinned := e.srv.PushKey()
	e.enroll("--alg", "EdDSA")
	out := e.ok("", "status")
	for _, want := range []string{e.srv.Devices()[0].ID, "User:        alice", "Server:      " + e.srv.URL, "Key:         EdDSA", pinned + "  (pinned at enrollment)", e.state} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

func TestWaitFollowsPushKeyRotation(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.enroll()
	k2 := e.srv.RotatePushKey(true)
	id := e.srv.NewChallenge(user, "")
	e.ok("", "wait", "--once", "--auto-approve")
	if s := e.srv.State(id); s != "approved" {
		t.Errorf("state %q", s)
	}
	if out := e.ok("", "status"); !strings.Contains(out, k2+"  (endorsed)") {
		t.Errorf("the endorsed key was not saved:\n%s", out)
	}
}

func TestWaitReportsForgedChallenge(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.enroll()
	forged := e.srv.ChallengeClaims(user)
	forged.User = "mallory"
	e.srv.AddChallenge(forged.ID, user, e.srv.SignChallenge(forged), "")
	good := e.srv.NewChallenge(user, "")
	r := e.run("", "wait", "--once", "--auto-approve")
	if r.code != exitOK || !strings.Contains(r.stderr, "failed verification") || strings.Contains(r.stdout, forged.ID) {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if e.srv.State(good) != "approved" || e.srv.State(forged.ID) != "pending" {
		t.Errorf("states: good %q, forged %q", e.srv.State(good), e.srv.State(forged.ID))
	}
}

func TestEnrollTLSWithCAFile(t *testing.T) {
	e := newEnv(t, fakebridge.Config{TLS: true})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.run("", "enroll", e.srv.Activation(user).String()); r.code != exitFailure {
		t.Errorf("enroll without --ca-file: exit %d, want 1 (untrusted certificate)", r.code)
	}
	out := e.enroll("--ca-file", caFile)
	if !strings.Contains(out, "Pinned TLS key:") {
		t.Errorf("enroll output:\n%s", out)
	}
	id := e.srv.NewChallenge(user, "")
	e.ok("", "wait", "--once", "--auto-deny")
	if s := e.srv.State(id); s != "denied" {
		t.Errorf("state %q", s)
	}
}

// TestWaitAnswerAfter: --answer-after holds the automatic answer back (a
// phone whose user takes a while), then answers.
func TestWaitAnswerAfter(t *testing.T) {
	e := newEnv(t, fakebridge.Config{})
	e.enroll()
	id := e.srv.NewChallenge(user, "")
	r := e.run("", "wait", "--once", "--auto-approve", "--answer-after", "1h", "--timeout", "200ms")
	if r.code == exitOK || e.srv.State(id) != "pending" {
		t.Fatalf("answered before --answer-after: exit %d, state %q\n%s", r.code, e.srv.State(id), r.stdout)
	}
	out := e.ok("", "wait", "--once", "--auto-deny", "--answer-after", "10ms")
	if !strings.Contains(out, "Denied.") || e.srv.State(id) != "denied" {
		t.Fatalf("state %q after --answer-after 10ms:\n%s", e.srv.State(id), out)
	}
}
