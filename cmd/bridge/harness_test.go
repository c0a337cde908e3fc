package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/store/postgres/pgtest"
)

// The harness of the multi-node tests (issue 12, "Exactly one push per
// attempt, across nodes"): two or three real bridge processes on one
// PostgreSQL database with one base_url and one KEK, real FreeRADIUS in
// front of them as the proxy a NAS would talk to, radclient as the NAS and
// the reference authenticator as the phone, counting the pushes it sees.

// cluster is bridge nodes sharing one fresh PostgreSQL database.
type cluster struct {
	t       *testing.T
	dir     string
	dbDSN   string // the database, directly
	nodeDSN string // what the nodes use: dbDSN, or through a proxy
	kek     string
	baseURL string // one identity for every node: node 0's public listener
	nodes   []*liveBridge
}

// freshDatabase creates an empty database on the test server (CREATE
// DATABASE bridge_<random>) and drops it when the test ends; it returns
// its DSN.
func freshDatabase(t *testing.T) string {
	t.Helper()
	dsn := pgtest.DSN(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "bridge_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("creating database %s (is PostgreSQL running at %s?): %v", name, dsn, err)
	}
	t.Cleanup(func() {
		// FORCE: a node killed with SIGKILL may leave a backend behind
		// for a moment.
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("dropping database %s: %v", name, err)
		}
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// withHost returns dsn pointing at host:port instead of its own server.
func withHost(t *testing.T, dsn, hostport string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = hostport
	return u.String()
}

// newCluster makes the database and the shared settings; start the nodes
// with startNodes. nodeDSN is what the nodes connect to ("" for the
// database itself).
func newCluster(t *testing.T, nodeDSN func(dbDSN string) string) *cluster {
	t.Helper()
	requireRadclient(t)
	binaries(t)
	c := &cluster{t: t, dir: t.TempDir(), dbDSN: freshDatabase(t)}
	c.nodeDSN = c.dbDSN
	if nodeDSN != nil {
		c.nodeDSN = nodeDSN(c.dbDSN)
	}
	k := make([]byte, 32)
	rand.Read(k)
	c.kek = hex.EncodeToString(k)
	return c
}

// nodeConfig is the config of one node: baseConfig (its own listeners),
// the shared base_url, KEK and database, and radius (the radius section,
// already indented) with its RADIUS port.
func (c *cluster) nodeConfig(n *liveBridge, baseURL, radius string) string {
	text := n.baseConfig(nil)
	if baseURL != "" {
		with := strings.Replace(text, "allow_plain_http: true}", "allow_plain_http: true, base_url: "+baseURL+"}", 1)
		if with == text {
			c.t.Fatal("baseConfig no longer writes the public listener as {listen: ..., allow_plain_http: true}; update nodeConfig")
		}
		text = with
	}
	return text + fmt.Sprintf(`keys: {kek: %q}
storage:
  driver: postgres
  postgres: {dsn: %q}
radius:
  listen: 127.0.0.1:%d
  accounting_listen: "off"
  clients:
    - name: vpn
      address: 127.0.0.1
      secret_file: radius.secret
%s
`, c.kek, c.nodeDSN, n.auth, radius)
}

// newNode prepares a node (its directory, ports and secret) without
// starting it.
func (c *cluster) newNode() *liveBridge {
	t := c.t
	bin, phone := binaries(t)
	n := &liveBridge{t: t, dir: filepath.Join(c.dir, fmt.Sprintf("node%d", len(c.nodes))), bin: bin, phone: phone,
		auth: freeUDPPort(t), public: freePort(t)}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n.cfg = filepath.Join(n.dir, "bridge.yaml")
	if err := os.WriteFile(filepath.Join(n.dir, "radius.secret"), []byte(radiusSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.nodes = append(c.nodes, n)
	if c.baseURL == "" {
		c.baseURL = fmt.Sprintf("http://127.0.0.1:%d", n.public)
	}
	return n
}

// startNodes starts count nodes at once (migration at start must be safe
// when they race), every one with the client settings radius (YAML lines
// at the client's indentation).
func (c *cluster) startNodes(count int, radius string) {
	c.t.Helper()
	var nodes []*liveBridge
	for range count {
		nodes = append(nodes, c.newNode())
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		text := c.nodeConfig(n, c.baseURL, radius)
		// start fails the test from its goroutine (runtime.Goexit runs
		// the deferred Done).
		wg.Go(func() { n.start(text) })
	}
	wg.Wait()
	if c.t.Failed() {
		c.t.FailNow()
	}
}

// node0 runs the CLI commands (any node would do: one database).
func (c *cluster) cli(stdin string, args ...string) string { return c.nodes[0].cli(stdin, args...) }

// user adds a local user with the test password and enrolls a phone for
// them; it returns the phone's state file.
func (c *cluster) user(name string) string {
	c.nodes[0].user(name)
	return c.nodes[0].enroll(name)
}

// kill stops node n with SIGKILL, as a crash would: no answer to what it
// holds, no cancel, nothing flushed.
func (c *cluster) kill(n *liveBridge) {
	c.t.Helper()
	if n.proc == nil {
		c.t.Fatal("the node has no process")
	}
	if err := n.proc.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill -9: %v", err)
	}
}

// ready returns the status of the node's /readyz on the admin listener
// (0 if it does not answer).
func ready(n *liveBridge) int {
	port := adminPort(n)
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

var adminListenRE = regexp.MustCompile(`admin: \{listen: 127\.0\.0\.1:(\d+)`)

// adminPort reads the admin port from the node's config.
func adminPort(n *liveBridge) int {
	b, err := os.ReadFile(n.cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	m := adminListenRE.FindSubmatch(b)
	if m == nil {
		n.t.Fatalf("no admin listener in %s", n.cfg)
	}
	var p int
	fmt.Sscan(string(m[1]), &p)
	return p
}

// metric returns the sum of the samples of the node's admin /metrics
// whose line starts with prefix (a metric name and, optionally, labels).
func metric(t *testing.T, n *liveBridge, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort(n)))
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, prefix) {
			var v float64
			f := strings.Fields(l)
			fmt.Sscan(f[len(f)-1], &v)
			sum += v
		}
	}
	return sum
}

// eventually polls cond every 200ms for up to d; it reports whether cond
// held.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// auditEvent is what the tests read of `bridge audit tail --json`.
type auditEvent struct {
	Action, Subject, Result, Reason string
	Details                         map[string]string
}

// auditEvents reads every audit event about subject with the CLI of n.
func auditEvents(t *testing.T, n *liveBridge, subject string) []auditEvent {
	t.Helper()
	var out []auditEvent
	for _, line := range strings.Split(strings.TrimSpace(n.cli("", "audit", "tail", "-n", "100000", "--json")), "\n") {
		var e auditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit tail: %v: %q", err, line)
		}
		if e.Subject == subject {
			out = append(out, e)
		}
	}
	return out
}

// pushesSent counts the push.start events about user that sent a push (not
// the ones that joined a pending challenge, nor refusals): the bridge's
// own count, a second witness beside the phone's.
func pushesSent(t *testing.T, n *liveBridge, user string) int {
	t.Helper()
	count := 0
	for _, e := range auditEvents(t, n, user) {
		if e.Action == "push.start" && e.Result == "success" && !strings.Contains(e.Reason, "joined") {
			count++
		}
	}
	return count
}

// phone is a reference authenticator left running with wait (no --once),
// answering every login request automatically; it counts the pushes it is
// shown.
type phone struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{}
}

// runPhone starts the phone of state against the bridge it enrolled with;
// args are the wait flags (--auto-approve, --auto-deny, --answer-after).
// It stops at the end of the test.
func runPhone(t *testing.T, bin, state string, args ...string) *phone {
	t.Helper()
	p := &phone{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--state", state, "wait", "--timeout", "5m"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("phone output:\n%s", p.out.String())
		}
	})
	// Wait until it polls, so that nothing sent after this is missed.
	if !eventually(10*time.Second, func() bool { return strings.Contains(p.out.String(), "Waiting for login requests") }) {
		t.Fatalf("the phone did not start:\n%s", p.out.String())
	}
	return p
}

func (p *phone) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

var phoneRequestRE = regexp.MustCompile(`(?m)^Login request (\S+)$`)

// pushes returns the ids of the login requests the phone was shown, in
// order, each once.
func (p *phone) pushes() []string {
	var ids []string
	seen := map[string]bool{}
	for _, m := range phoneRequestRE.FindAllStringSubmatch(p.out.String(), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			ids = append(ids, m[1])
		}
	}
	return ids
}

// answered is how many answers the bridge recorded from the phone.
func (p *phone) answered() int {
	return strings.Count(p.out.String(), "The bridge recorded:")
}

// freeRADIUS is FreeRADIUS run as the proxy in front of the nodes.
type freeRADIUS struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
	out  lockedBuffer
}

// requireFreeRADIUS returns the path of the freeradius binary, or skips
// (fails in CI).
func requireFreeRADIUS(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/freeradius", "/usr/sbin/radiusd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("freeradius"); err == nil {
		return p
	}
	testenv.Unavailable(t, "freeradius", "apt-get install freeradius")
	return ""
}

// homeServerSettings are the FreeRADIUS home_server timers: a response
// window above the nodes' hold_timeout (hold mode answers only when the
// phone has), and Status-Server checks so a dead node is noticed
// (zombie_period and num_answers_to_alive at the least FreeRADIUS 3.2
// takes).
const homeServerSettings = `	response_window = %d
	zombie_period = 25
	revive_interval = 10
	status_check = status-server
	check_interval = 6
	check_timeout = 1
	num_answers_to_alive = 3
	require_message_authenticator = yes`

// startFreeRADIUS runs FreeRADIUS as a proxy with a home_server per node
// (in the order given: the first is the primary of a fail-over pool) in a
// home_server_pool of poolType (fail-over or load-balance), a realm
// DEFAULT that every request goes to, and radclient (127.0.0.1, the test
// secret) as its client. responseWindow is in seconds.
func startFreeRADIUS(t *testing.T, poolType string, responseWindow int, nodes ...*liveBridge) *freeRADIUS {
	t.Helper()
	bin := requireFreeRADIUS(t)
	f := &freeRADIUS{t: t, dir: t.TempDir(), port: freeUDPPort(t)}
	for _, d := range []string{"log", "run"} {
		os.MkdirAll(filepath.Join(f.dir, d), 0o700)
	}
	var proxy strings.Builder
	proxy.WriteString("proxy server {\n\tdefault_fallback = no\n}\n")
	var names []string
	for i, n := range nodes {
		name := fmt.Sprintf("node%d", i)
		names = append(names, name)
		fmt.Fprintf(&proxy, "home_server %s {\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = %d\n\tsecret = %s\n"+homeServerSettings+"\n}\n",
			name, n.auth, radiusSecret, responseWindow)
	}
	fmt.Fprintf(&proxy, "home_server_pool bridge {\n\ttype = %s\n", poolType)
	for _, name := range names {
		fmt.Fprintf(&proxy, "\thome_server = %s\n", name)
	}
	proxy.WriteString("}\nrealm DEFAULT {\n\tauth_pool = bridge\n\tnostrip\n}\n")
	if err := os.WriteFile(filepath.Join(f.dir, "proxy.conf"), []byte(proxy.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = ${exec_prefix}/sbin
logdir = %[1]s/log
raddbdir = %[1]s
radacctdir = ${logdir}/radacct
name = freeradius
confdir = ${raddbdir}
modconfdir = ${confdir}
run_dir = %[1]s/run
db_dir = ${raddbdir}
libdir = /usr/lib/freeradius
pidfile = ${run_dir}/${name}.pid
max_request_time = 60
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {
	destination = files
	file = ${logdir}/radius.log
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}
proxy_requests = yes
$INCLUDE proxy.conf
client nas {
	ipaddr = 127.0.0.1
	secret = %[2]s
	require_message_authenticator = no
}
thread pool {
	start_servers = 5
	max_servers = 32
	min_spare_servers = 3
	max_spare_servers = 10
	max_requests_per_server = 0
	max_queue_size = 65536
}
modules {
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %[3]d
	}
	authorize {
		update control {
			&Proxy-To-Realm := "DEFAULT"
		}
	}
	authenticate {
	}
	pre-proxy {
	}
	post-proxy {
	}
}
`, f.dir, radiusSecret, f.port)
	if err := os.WriteFile(filepath.Join(f.dir, "radiusd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-C", "-d", f.dir).CombinedOutput(); err != nil {
		t.Fatalf("FreeRADIUS rejects the test's config: %v\n%s", err, out)
	}
	f.cmd = exec.Command(bin, "-f", "-d", f.dir)
	f.cmd.Stdout, f.cmd.Stderr = &f.out, &f.out
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.cmd.Process.Kill()
		f.cmd.Wait()
		if t.Failed() {
			t.Logf("FreeRADIUS output:\n%s\nFreeRADIUS log:\n%s", f.out.String(), f.log())
		}
	})
	if !eventually(10*time.Second, func() bool { return strings.Contains(f.log(), "Ready to process requests") }) {
		t.Fatalf("FreeRADIUS did not start:\n%s\n%s", f.out.String(), f.log())
	}
	return f
}

// log is FreeRADIUS's log file.
func (f *freeRADIUS) log() string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "log", "radius.log"))
	return string(b)
}

// send runs radclient against FreeRADIUS (any node's radclient helper
// will do: it only runs the command).
func (f *freeRADIUS) send(via *liveBridge, input string, extra ...string) string {
	f.t.Helper()
	out, _ := via.radclient(f.port, "auth", radiusSecret, input, extra...)
	return out
}

// radclientCodes lists every answer radclient printed, in order.
func radclientCodes(out string) []string {
	var codes []string
	for _, m := range regexp.MustCompile(`Received (Access-\w+)`).FindAllStringSubmatch(out, -1) {
		codes = append(codes, m[1])
	}
	return codes
}
