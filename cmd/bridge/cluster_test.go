package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
)

// lateRecorder is a store where another node records the base_url between
// this node's read and its insert.
type lateRecorder struct {
	identityStore
	other string
	raced bool
}

func (s *lateRecorder) GetGrant(ctx context.Context, kind, id string, now time.Time) (store.Grant, error) {
	if !s.raced {
		return store.Grant{}, store.ErrNotFound
	}
	return s.identityStore.GetGrant(ctx, kind, id, now)
}

func (s *lateRecorder) PutGrant(ctx context.Context, g store.Grant) error {
	if !s.raced {
		s.raced = true
		other := g
		other.Data = []byte(s.other)
		if err := s.identityStore.PutGrant(ctx, other); err != nil {
			return err
		}
	}
	return s.identityStore.PutGrant(ctx, g)
}

// TestCheckClusterBaseURL: the first start records the base_url, later
// starts with the same one pass, another one is refused, also when another
// node recorded its own between this node's read and write; SQLite records
// nothing.
func TestCheckClusterBaseURL(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T) store.Store {
		st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "b.db"), AuditKey: storetest.AuditKey()}, discard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	node := func(driver, base string) *config.Config {
		c := &config.Config{Source: "node.yaml"}
		c.Storage.Driver, c.HTTP.Public.BaseURL = driver, base
		return c
	}

	t.Run("record, then compare", func(t *testing.T) {
		st := open(t)
		for _, base := range []string{"https://a.example", "https://a.example"} {
			if err := checkClusterBaseURL(ctx, node("postgres", base), st, time.Now, discard()); err != nil {
				t.Fatal(err)
			}
		}
		err := checkClusterBaseURL(ctx, node("postgres", "https://b.example"), st, time.Now, discard())
		want := "this database's bridge is https://a.example; this node says https://b.example (http.public.base_url in node.yaml); every node must use the same base_url"
		if !errors.Is(err, errBaseURLMismatch) || !strings.Contains(err.Error(), want) {
			t.Fatalf("another base_url: %v", err)
		}
		if got := auditActions(t, st); len(got) != 1 || got[0] != "cluster.base_url.record:https://a.example" {
			t.Fatalf("audit: %q, want the first recording only", got)
		}
	})
	t.Run("lost the race to record", func(t *testing.T) {
		st := &lateRecorder{identityStore: open(t), other: "https://a.example"}
		err := checkClusterBaseURL(ctx, node("postgres", "https://b.example"), st, time.Now, discard())
		if !errors.Is(err, errBaseURLMismatch) {
			t.Fatalf("after the other node recorded first: %v", err)
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		st := open(t)
		for _, base := range []string{"http://127.0.0.1:8080", "http://127.0.0.1:9999"} {
			if err := checkClusterBaseURL(ctx, node("sqlite", base), st, time.Now, discard()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.GetGrant(ctx, identityKind, identityBaseURL, time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SQLite recorded a base_url: %v", err)
		}
	})
}

// pgNode is one bridge node's config on a shared PostgreSQL database.
type pgNode struct {
	t      *testing.T
	cfg    string
	listen string
}

func newPGNode(t *testing.T, dsn, kek, baseURL string) *pgNode {
	t.Helper()
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	text := fmt.Sprintf(`data_dir: ./data
storage:
  driver: postgres
  postgres:
    dsn: %q
keys:
  kek: %s
  rsa_bits: 2048
http:
  public:
    listen: %s
    base_url: %s
    allow_plain_http: true
passwords:
  argon2id: {time: 1, memory_kib: 19456, threads: 1}
`, dsn, kek, listen, baseURL)
	cfg := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return &pgNode{t: t, cfg: cfg, listen: listen}
}

// run runs the CLI in-process with the node's config.
func (n *pgNode) run(ctx context.Context, args ...string) result {
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"--config", n.cfg}, args...), strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// refused runs serve, which must end by itself: a node that starts after
// all is stopped after 30 s, and its clean exit fails the caller's check.
func (n *pgNode) refused() result {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.run(ctx, "serve")
}

// serve starts the node and waits until it is ready; stop ends it and
// checks that it stopped cleanly.
func (n *pgNode) serve() (stop func()) {
	t := n.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- n.run(ctx, "serve") }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + n.listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case r := <-done:
			cancel()
			t.Fatalf("serve ended before it was ready: %+v", r)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("%s not ready before the deadline", n.listen)
		}
	}
	return func() {
		t.Helper()
		cancel()
		if r := <-done; r.code != exitOK {
			t.Fatalf("serve did not stop cleanly: %+v", r)
		}
	}
}

// TestNodesShareOneBaseURL: two nodes with different base_urls on one
// PostgreSQL database: the second refuses to start, saying which base_url
// the database has; `cluster set-base-url` moves the bridge on purpose
// (audited), after which the first node's config is the one refused.
func TestNodesShareOneBaseURL(t *testing.T) {
	dsn := freshDatabase(t)
	const kek = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	a := newPGNode(t, dsn, kek, "https://a.example.com")
	b := newPGNode(t, dsn, kek, "https://b.example.com")
	ctx := context.Background()

	stopA := a.serve()
	r := b.refused()
	want := "this database's bridge is https://a.example.com; this node says https://b.example.com"
	if r.code != exitFailure || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "every node must use the same base_url") {
		t.Fatalf("second node with another base_url: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if out := b.run(ctx, "cluster", "show"); out.code != exitOK || !strings.Contains(out.stdout, "database: https://a.example.com\nthis node: https://b.example.com") {
		t.Fatalf("cluster show: %+v", out)
	}
	// A node with the same base_url joins.
	a2 := newPGNode(t, dsn, kek, "https://a.example.com/")
	a2.serve()()

	if r := b.run(ctx, "cluster", "set-base-url", "https://c.example.com"); r.code != exitFailure || !strings.Contains(r.stderr, "this node's http.public.base_url is https://b.example.com") {
		t.Fatalf("set-base-url to a URL its own config does not have: %+v", r)
	}
	if r := b.run(ctx, "cluster", "set-base-url", "https://b.example.com/"); r.code != exitOK || !strings.Contains(r.stdout, "from https://a.example.com to https://b.example.com") {
		t.Fatalf("set-base-url: %+v", r)
	}
	stopA()

	b.serve()()
	if r := a.refused(); r.code != exitFailure || !strings.Contains(r.stderr, "this database's bridge is https://b.example.com; this node says https://a.example.com") {
		t.Fatalf("the first node after the move: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	st, err := postgres.Open(ctx, postgres.Config{DSN: dsn, AuditKey: mustSealer(t, kek).DeriveKey(auditKeyLabel)}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events, err := st.ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		if strings.HasPrefix(e.Action, "cluster.") {
			got = append(got, fmt.Sprintf("%s %s %s", e.Action, e.Subject, e.Details["old"]))
		}
	}
	if strings.Join(got, "\n") != "cluster.base_url.record https://a.example.com \ncluster.base_url.set https://b.example.com https://a.example.com" {
		t.Fatalf("audit of the base_url:\n%s", strings.Join(got, "\n"))
	}
}

// TestDerivedBaseURLRefusedWithPostgres: `config check` and serve both
// refuse a PostgreSQL config without a base_url, naming the key and line,
// before they connect to anything.
func TestDerivedBaseURLRefusedWithPostgres(t *testing.T) {
	e := newEnv(t)
	text := testConfig + "storage:\n  driver: postgres\n  postgres:\n    dsn: postgres://127.0.0.1:1/none\n"
	if err := os.WriteFile(e.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "bridge.yaml:5: http.public.base_url: must be set when storage.driver is postgres: every node sharing the database must use the same base_url"
	for _, args := range [][]string{{"config", "check"}, {"serve"}} {
		r := e.run("", args...)
		if r.code != exitFailure || !strings.Contains(r.stderr, want) {
			t.Errorf("bridge %s: exit %d, stderr:\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}
