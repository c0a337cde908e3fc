package ldap_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/ldap"
	"github.com/bridge-idp/bridge/directory/ldap/slapdtest"
)

// closedPort returns an address where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// blackHole accepts connections and never answers; it closes them when
// the test ends.
func blackHole(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func plainConfig(addr string, timeout time.Duration) ldap.Config {
	return ldap.Config{
		URL: "ldap://" + addr, AllowInsecurePlaintext: true,
		BindDN: slapdtest.ServiceDN, BindPassword: slapdtest.ServicePassword,
		UserBaseDN: slapdtest.PeopleDN, Timeout: timeout,
	}
}

// within runs f and fails the test if it has not returned after limit
// (a "does not hang" check, not a timing measurement).
func within(t *testing.T, limit time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("still running after %s", limit)
		return nil
	}
}

func TestServerDown(t *testing.T) {
	addr := closedPort(t)
	d := open(t, plainConfig(addr, 2*time.Second)) // Open only warns
	err := within(t, 10*time.Second, func() error {
		_, err := d.Authenticate(t.Context(), "alice", "pw")
		return err
	})
	if !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "ldap://"+addr+": dial: ") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not name the server, the step and the cause", err)
	}
	if _, err := d.Lookup(t.Context(), "alice"); !errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("Lookup: err = %v, want ErrUnavailable", err)
	}
}

func TestBlackHoleTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	d := open(t, plainConfig(blackHole(t), timeout))
	err := within(t, 5*timeout, func() error {
		_, err := d.Authenticate(t.Context(), "alice", "pw")
		return err
	})
	if !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "service account bind: no answer within 300ms") {
		t.Errorf("error %q does not say what timed out", err)
	}
}

func TestBlackHoleCancel(t *testing.T) {
	// A long timeout: only the context can end the wait.
	d := open(t, plainConfig(blackHole(t), time.Hour))
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := within(t, 5*time.Second, func() error {
		_, err := d.Authenticate(ctx, "alice", "pw")
		return err
	})
	if !errors.Is(err, directory.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrUnavailable and context.Canceled", err)
	}
}

func TestEmptyPasswordSendsNothing(t *testing.T) {
	// Against a server that never answers, any network step would take
	// the (hour-long) timeout: the empty password must be refused first.
	d := open(t, plainConfig(blackHole(t), time.Hour))
	err := within(t, 5*time.Second, func() error {
		_, err := d.Authenticate(t.Context(), "alice", "")
		return err
	})
	if !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Fatalf("err = %v, want ErrInvalidCredentials", err)
	}
}

func TestWrongServicePassword(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	cfg := config(srv, ldap.GroupsSearch)
	cfg.BindPassword = "wrong"
	_, err := ldap.Open(t.Context(), "corp", cfg, nil)
	if !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(err.Error(), "service account") {
		t.Fatalf("Open with a wrong service password: err = %v, want ErrUnavailable about the service account", err)
	}
}

func TestInjection(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	d := open(t, config(srv, ldap.GroupsSearch))
	for _, name := range []string{"alic*", "*", "*)(uid=*", "alice)(|(uid=*", "alice\x00", `alice\2a`} {
		_, err := d.Authenticate(t.Context(), name, slapdtest.AlicePassword)
		if !errors.Is(err, directory.ErrInvalidCredentials) {
			t.Errorf("Authenticate(%q, alice's password): err = %v, want ErrInvalidCredentials", name, err)
		}
		if _, err := d.Lookup(t.Context(), name); !errors.Is(err, directory.ErrInvalidCredentials) {
			t.Errorf("Lookup(%q): err = %v, want ErrInvalidCredentials", name, err)
		}
	}
}

func TestAmbiguousUser(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	srv.Add(t, `dn: ou=contractors,`+slapdtest.PeopleDN+`
objectClass: organizationalUnit
ou: contractors

dn: uid=alice,ou=contractors,`+slapdtest.PeopleDN+`
objectClass: inetOrgPerson
uid: alice
cn: Other Alice
sn: Other
userPassword: `+slapdtest.AlicePassword+`
`)
	var logs logBuffer
	d, err := ldap.Open(t.Context(), "corp", config(srv, ldap.GroupsSearch), logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer d.(interface{ Close() error }).Close()
	if _, err := d.Authenticate(t.Context(), "alice", slapdtest.AlicePassword); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Fatalf("two entries for alice: err = %v, want ErrInvalidCredentials", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "more than one entry") {
		t.Errorf("no error logged for an ambiguous user filter:\n%s", logs.String())
	}
}

// proxy forwards connections to target and records how many were open at
// most at once and in total. Connections accepted before a call to
// breakOld are closed when the client next sends something (a connection
// the server dropped while it sat idle in the pool).
type proxy struct {
	addr              string
	open, peak, total atomic.Int64
	gen               atomic.Int64
}

func (p *proxy) breakOld() { p.gen.Add(1) }

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.total.Add(1)
			n := p.open.Add(1)
			for {
				old := p.peak.Load()
				if n <= old || p.peak.CompareAndSwap(old, n) {
					break
				}
			}
			gen := p.gen.Load()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer p.open.Add(-1)
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() {
					defer s.Close()
					buf := make([]byte, 32<<10)
					for {
						n, err := c.Read(buf)
						if p.gen.Load() != gen {
							c.Close()
							return
						}
						if n > 0 {
							if _, err := s.Write(buf[:n]); err != nil {
								return
							}
						}
						if err != nil {
							return
						}
					}
				}()
				io.Copy(c, s)
			}()
		}
	}()
	return p
}

func TestPoolConcurrency(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	p := startProxy(t, strings.TrimPrefix(srv.URL, "ldap://"))
	cfg := config(srv, ldap.GroupsSearch)
	cfg.URL = "ldap://" + p.addr
	cfg.MaxConnections = 2
	cfg.PoolSize = 2
	d := open(t, cfg)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			pw := slapdtest.AlicePassword
			if i%4 == 0 {
				pw = "wrong" // leaves the connection bound as alice: must be rebound
			}
			id, err := d.Authenticate(t.Context(), "alice", pw)
			switch {
			case i%4 == 0 && !errors.Is(err, directory.ErrInvalidCredentials):
				errs <- err
			case i%4 != 0 && err != nil:
				errs <- err
			case i%4 != 0 && len(id.Groups) != 2:
				errs <- errors.New("groups missing: " + strings.Join(id.Groups, ","))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if peak := p.peak.Load(); peak > 2 {
		t.Errorf("%d connections open at once, want at most MaxConnections = 2", peak)
	}
	if total := p.total.Load(); total > 4 {
		t.Errorf("%d connections opened for %d logins: the pool is not reused", total, n)
	}
}

func TestPooledConnBrokenRetried(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	p := startProxy(t, strings.TrimPrefix(srv.URL, "ldap://"))
	cfg := config(srv, ldap.GroupsSearch)
	cfg.URL = "ldap://" + p.addr
	d := open(t, cfg)
	if _, err := d.Authenticate(t.Context(), "alice", slapdtest.AlicePassword); err != nil {
		t.Fatal(err)
	}
	// Restarting slapd would change its port; instead a pooled connection
	// goes stale the way an idle timeout leaves it: closed by the far end.
	p.breakOld()
	if _, err := d.Authenticate(t.Context(), "alice", slapdtest.AlicePassword); err != nil {
		t.Fatalf("after the pooled connection broke: %v", err)
	}
	if total := p.total.Load(); total != 2 {
		t.Errorf("%d connections opened, want 2 (the pooled one, then one retry)", total)
	}
}
