package slapdtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// The directory tree Start loads.
const (
	BaseDN    = "dc=example,dc=org"
	AdminDN   = "cn=admin," + BaseDN
	PeopleDN  = "ou=people," + BaseDN
	GroupsDN  = "ou=groups," + BaseDN
	ServiceDN = "cn=bridge,ou=services," + BaseDN

	AdminPassword   = "admin-secret-4f9a"
	ServicePassword = "service-secret-7c21"

	// Alice is active, with a mail address, in groups admins and staff.
	AliceUID      = "alice"
	AliceDN       = "uid=alice," + PeopleDN
	AlicePassword = "alice-pw-Wonderland"
	AliceCN       = "Alice Liddell"
	AliceMail     = "alice@example.org"

	// Bob is disabled for the bridge (employeeType "disabled", which
	// Server.DisabledFilter matches) but slapd lets him bind: his password
	// is right.
	BobUID      = "bob"
	BobDN       = "uid=bob," + PeopleDN
	BobPassword = "bob-pw-Builder"

	// Larry (with ppolicy only) is locked for good by an administrator
	// (pwdAccountLockedTime 000001010000Z): slapd refuses his binds, right
	// password or not.
	LarryUID      = "larry"
	LarryDN       = "uid=larry," + PeopleDN
	LarryPassword = "larry-pw-Locked"

	// Carol (with ppolicy only) is active under a policy that locks her
	// out after CarolMaxFailure wrong passwords for CarolLockoutDuration.
	CarolUID             = "carol"
	CarolDN              = "uid=carol," + PeopleDN
	CarolPassword        = "carol-pw-Lockout"
	CarolMaxFailure      = 2
	CarolLockoutDuration = 2 * time.Second
)

// AliceGroups returns Alice's group names (cn), sorted.
func AliceGroups() []string { return []string{"admins", "staff"} }

const (
	slapdPath      = "/usr/sbin/slapd"
	modulePath     = "/usr/lib/ldap"
	schemaDir      = "/etc/ldap/schema"
	installMessage = "apt-get install slapd ldap-utils to run LDAP tests"
)

// Options says what to start.
type Options struct {
	// TLS adds an ldaps:// listener and StartTLS with a certificate from a
	// CA made for the test.
	TLS bool
}

// Server is a running slapd.
type Server struct {
	URL      string // ldap://127.0.0.1:port
	LDAPSURL string // ldaps://127.0.0.1:port, with Options.TLS
	CAFile   string // PEM file of the CA, with Options.TLS
	Dir      string // the server's directory (config, database, log)

	// PPolicy and MemberOf say which overlays are loaded.
	PPolicy  bool
	MemberOf bool
	// DisabledFilter matches Bob's and Larry's entries, not Alice's or
	// Carol's (even while she is locked out).
	DisabledFilter string
}

// Require skips t (or fails it when BRIDGE_TEST_REQUIRE contains "slapd")
// if slapd or the ldap-utils are not installed.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	for _, p := range []string{slapdPath, "slappasswd", "ldapadd", "ldapmodify"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	testenv.Unavailable(t, "slapd", fmt.Sprintf("%v not found: %s", missing, installMessage))
}

func hasModule(name string) bool {
	_, err := os.Stat(filepath.Join(modulePath, name+".so"))
	return err == nil
}

// Start starts slapd, loads the base tree and stops slapd when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	s := &Server{Dir: t.TempDir(), PPolicy: hasModule("ppolicy"), MemberOf: hasModule("memberof")}
	s.DisabledFilter = "(employeeType=disabled)"
	if s.PPolicy {
		s.DisabledFilter = "(|(employeeType=disabled)(pwdAccountLockedTime=000001010000Z))"
	}
	var tlsFiles *tlsFiles
	if opts.TLS {
		tlsFiles = makeTLS(t, s.Dir)
		s.CAFile = tlsFiles.CA
	}
	rootpw, err := exec.Command("slappasswd", "-s", AdminPassword).Output()
	if err != nil {
		t.Fatalf("slappasswd: %v", err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(s.Dir, "slapd.conf")
	var buf bytes.Buffer
	if err := confTemplate.Execute(&buf, map[string]any{
		"Schema": schemaDir, "ModulePath": modulePath, "Dir": s.Dir, "Base": BaseDN,
		"AdminDN": AdminDN, "RootPW": strings.TrimSpace(string(rootpw)),
		"PPolicy": s.PPolicy, "MemberOf": s.MemberOf, "TLS": tlsFiles,
		"People": PeopleDN, "Groups": GroupsDN, "ServiceDN": ServiceDN,
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	// A free port can be taken by someone else before slapd binds it: try
	// a few times.
	var lastErr error
	for range 3 {
		port, sport := freePort(t), ""
		s.URL = "ldap://127.0.0.1:" + port
		listen := s.URL + "/"
		if opts.TLS {
			sport = freePort(t)
			s.LDAPSURL = "ldaps://127.0.0.1:" + sport
			listen += " " + s.LDAPSURL + "/"
		}
		if lastErr = s.run(t, conf, listen, port); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("slapd did not start: %v", lastErr)
	}
	s.Add(t, baseLDIF(s))
	return s
}

// run starts slapd and waits until it accepts connections on port.
func (s *Server) run(t testing.TB, conf, listen, port string) error {
	logPath := filepath.Join(s.Dir, "slapd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(slapdPath, "-d", "0", "-h", listen, "-f", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("slapd exited (%v): %s", err, out)
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			c.Close()
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("slapd not answering on port %s after 15s", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// Add adds the entries of ldif as the admin.
func (s *Server) Add(t testing.TB, ldif string) {
	t.Helper()
	s.ldap(t, "ldapadd", ldif)
}

// Modify applies the changes of ldif (changetype records) as the admin.
func (s *Server) Modify(t testing.TB, ldif string) {
	t.Helper()
	s.ldap(t, "ldapmodify", ldif)
}

func (s *Server) ldap(t testing.TB, tool, ldif string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "-x", "-H", s.URL, "-D", AdminDN, "-w", AdminPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
}
