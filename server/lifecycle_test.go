package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := ListenerConfig{Listen: "127.0.0.1:0", AllowPlainHTTP: true}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; nil means valid
	}{
		{"plain allowed", Config{Public: ok}, nil},
		{"tls", Config{Public: ListenerConfig{Listen: ":443", CertFile: "c", KeyFile: "k"}}, nil},
		{"no public listen", Config{}, []string{"public listener: listen address is required"}},
		{"plain not allowed", Config{Public: ListenerConfig{Listen: ":8080"}},
			[]string{"public listener: no TLS certificate configured and plain HTTP not allowed"}},
		{"admin plain not allowed", Config{Public: ok, Admin: ListenerConfig{Listen: ":9090"}},
			[]string{"admin listener: no TLS"}},
		{"cert without key", Config{Public: ListenerConfig{Listen: ":443", CertFile: "c"}},
			[]string{"CertFile is set but KeyFile is not"}},
		{"key without cert", Config{Public: ListenerConfig{Listen: ":443", KeyFile: "k"}},
			[]string{"KeyFile is set but CertFile is not"}},
		{"bad address", Config{Public: ListenerConfig{Listen: "localhost", AllowPlainHTTP: true}},
			[]string{`listen address "localhost"`}},
		{"bad base url", Config{Public: ListenerConfig{Listen: ":80", AllowPlainHTTP: true, BaseURL: "example.com/x"}},
			[]string{"must be an absolute http(s) URL"}},
		{"same address", Config{
			Public: ListenerConfig{Listen: ":8080", AllowPlainHTTP: true},
			Admin:  ListenerConfig{Listen: ":8080", AllowPlainHTTP: true},
		}, []string{"share the address"}},
		{"every problem at once", Config{
			Public:          ListenerConfig{Listen: ":8080"},
			Admin:           ListenerConfig{Listen: ":9090", CertFile: "c"},
			ShutdownTimeout: -1,
			MaxBodyBytes:    -1,
		}, []string{"public listener: no TLS", "admin listener: CertFile", "ShutdownTimeout", "MaxBodyBytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted an invalid config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNewRefusesPlainHTTP(t *testing.T) {
	_, err := New(Config{Public: ListenerConfig{Listen: "127.0.0.1:0"}}, Deps{}, nil)
	if err == nil || !strings.Contains(err.Error(), "plain HTTP not allowed") {
		t.Fatalf("New with plain HTTP not allowed: %v", err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	draining := make(chan struct{})
	resume := make(chan struct{})
	logger := slog.New(slog.DiscardHandler)
	s, err := New(plainConfig(), Deps{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	s.PublicMux().HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		w.Write([]byte("done"))
	})
	s.testHookDraining = func() {
		close(draining)
		<-resume
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub, adm := urls(s)

	type result struct {
		r   response
		err error
	}
	slow := make(chan result, 1)
	go func() {
		res, err := http.Get(pub + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		slow <- result{r: response{code: res.StatusCode, body: string(b)}, err: err}
	}()
	<-started

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()

	// Marked not ready, listeners still open: load balancers see 503.
	<-draining
	for _, u := range []string{pub, adm} {
		if r := get(t, u+"/readyz"); r.code != http.StatusServiceUnavailable || r.body != "shutting down\n" {
			t.Errorf("%s/readyz while draining = %d %q, want 503", u, r.code, r.body)
		}
	}
	close(resume)

	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}
	close(release)

	if res := <-slow; res.err != nil || res.r.code != http.StatusOK || res.r.body != "done" {
		t.Errorf("in-flight request = %d %q, %v; want 200 done", res.r.code, res.r.body, res.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	for _, u := range []string{pub, adm} {
		addr := strings.TrimPrefix(u, "http://")
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Shutdown", addr)
		}
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
}

// recordingListen binds for real and remembers what it bound.
type recordingListen struct{ bound []net.Listener }

func (r *recordingListen) listen(ctx context.Context, network, addr string) (net.Listener, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, network, addr)
	if err == nil {
		r.bound = append(r.bound, ln)
	}
	return ln, err
}

func TestPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	cfg := plainConfig()
	cfg.Admin.Listen = taken.Addr().String()
	s, err := New(cfg, Deps{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingListen{}
	s.listen = rec.listen

	err = s.Start(t.Context())
	if err == nil {
		t.Fatal("Start succeeded on a taken port")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v is not EADDRINUSE", err)
	}
	for _, w := range []string{"admin listener", taken.Addr().String(), "address already in use"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if len(rec.bound) != 1 {
		t.Fatalf("bound %d listeners, want the public one", len(rec.bound))
	}
	if _, err := rec.bound[0].Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("public listener left open after the admin bind failed: Accept = %v", err)
	}
	if p, a := s.Addrs(); p != nil || a != nil {
		t.Errorf("Addrs after a failed Start = %v, %v; want nil", p, a)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after a failed Start: %v", err)
	}
}

func TestStartTwice(t *testing.T) {
	s, _ := startServer(t, plainConfig(), Deps{}, nil)
	if err := s.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestRun(t *testing.T) {
	s, err := New(plainConfig(), Deps{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := make(chan struct{})
	s.PublicMux().HandleFunc("/up", func(http.ResponseWriter, *http.Request) { close(up) })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// Run starts in the background; wait until the server answers.
	var pub string
	for pub == "" {
		if p, _ := s.Addrs(); p != nil {
			pub = "http://" + p.String()
		}
		runtime.Gosched()
	}
	get(t, pub+"/up")
	<-up
	if got := s.BaseURL(); got != pub {
		t.Errorf("BaseURL = %q, want %q", got, pub)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(pub, "http://")); err == nil {
		c.Close()
		t.Error("listener open after Run returned")
	}
}

func TestShutdownTimeoutClosesInFlight(t *testing.T) {
	cfg := plainConfig()
	cfg.ShutdownTimeout = time.Nanosecond
	started, release := make(chan struct{}), make(chan struct{})
	s, err := New(cfg, Deps{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.PublicMux().HandleFunc("/stuck", func(http.ResponseWriter, *http.Request) {
		close(started)
		<-release
	})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer close(release)
	pub, _ := urls(s)
	clientErr := make(chan error, 1)
	go func() {
		res, err := http.Get(pub + "/stuck")
		if err == nil {
			res.Body.Close()
		}
		clientErr <- err
	}()
	<-started
	err = s.Shutdown(context.Background())
	if err == nil || !strings.Contains(err.Error(), "graceful shutdown") {
		t.Errorf("Shutdown past its timeout = %v, want a graceful shutdown error", err)
	}
	if err := <-clientErr; err == nil {
		t.Error("the stuck request got an answer; its connection should have been closed")
	}
}

func TestDrainDelayEndsWithContext(t *testing.T) {
	cfg := plainConfig()
	cfg.DrainDelay = time.Hour
	s, err := New(cfg, Deps{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with an idle server and an ended context: %v", err)
	}
}
