package ldap

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/ldap/slapdtest"
)

// opProxy forwards LDAP connections to a server and records the type of
// every request the client sends (Bind Request, Search Request, ...).
type opProxy struct {
	addr string
	mu   sync.Mutex
	ops  []string
}

func startOpProxy(t *testing.T, target string) *opProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &opProxy{addr: l.Addr().String()}
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			t.Cleanup(func() { client.Close(); server.Close() })
			go io.Copy(client, server)
			go func() {
				defer server.Close()
				for {
					pkt, err := ber.ReadPacket(client)
					if err != nil || len(pkt.Children) < 2 {
						return
					}
					p.mu.Lock()
					p.ops = append(p.ops, goldap.ApplicationMap[uint8(pkt.Children[1].Tag)])
					p.mu.Unlock()
					if _, err := server.Write(pkt.Bytes()); err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// take returns the operations recorded since the last call.
func (p *opProxy) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ops := p.ops
	p.ops = nil
	return ops
}

// TestUnknownUserCostsWhatAWrongPasswordCosts: the LDAP requests for an
// unknown name are the same as for a known name with a wrong password, so
// response times do not tell an attacker which names exist.
func TestUnknownUserCostsWhatAWrongPasswordCosts(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.Options{})
	p := startOpProxy(t, strings.TrimPrefix(srv.URL, "ldap://"))
	cfg := Config{
		URL: "ldap://" + p.addr, AllowInsecurePlaintext: true,
		BindDN: slapdtest.ServiceDN, BindPassword: slapdtest.ServicePassword,
		UserBaseDN: slapdtest.PeopleDN, DisabledFilter: srv.DisabledFilter,
		PoolSize: 1, MaxConnections: 1,
	}
	d, err := Open(context.Background(), "corp", cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.(interface{ Close() error }).Close() })
	ctx := context.Background()
	// Warm the pool so both logins below start from a bound connection.
	if _, err := d.Lookup(ctx, slapdtest.AliceUID); err != nil {
		t.Fatal(err)
	}
	p.take()

	_, err = d.Authenticate(ctx, slapdtest.AliceUID, "wrong-password")
	if !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	wrong := p.take()
	_, err = d.Authenticate(ctx, "nobody-here", "wrong-password")
	if !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	unknown := p.take()
	if len(wrong) < 3 || !slices.Equal(wrong, unknown) {
		t.Fatalf("LDAP requests differ:\n wrong password: %v\n unknown user:   %v", wrong, unknown)
	}
	// A disabled user costs the same too, right password or wrong: the
	// disabled check does not cut the login short.
	for _, pw := range []string{"wrong-password", slapdtest.BobPassword} {
		_, err = d.Authenticate(ctx, slapdtest.BobUID, pw)
		if err == nil {
			t.Fatalf("disabled user logged in")
		}
		if got := p.take(); !slices.Equal(wrong, got) {
			t.Fatalf("LDAP requests differ:\n wrong password: %v\n disabled user (%s): %v", wrong, pw, got)
		}
	}
	// And the connection is still usable, bound as the service account.
	if _, err := d.Authenticate(ctx, slapdtest.AliceUID, slapdtest.AlicePassword); err != nil {
		t.Fatalf("login after the decoy: %v", err)
	}
}
