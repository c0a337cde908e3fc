package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// logBuf collects log output; handlers log from several goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// plainConfig is a public and an admin listener on free loopback ports.
func plainConfig() Config {
	return Config{
		Public: ListenerConfig{Listen: "127.0.0.1:0", AllowPlainHTTP: true},
		Admin:  ListenerConfig{Listen: "127.0.0.1:0", AllowPlainHTTP: true},
	}
}

// startServer creates the server, lets mount add handlers, starts it and
// shuts it down at the end of the test.
func startServer(t *testing.T, cfg Config, deps Deps, mount func(*Server)) (*Server, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, deps, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if mount != nil {
		mount(s)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, logs
}

func urls(s *Server) (public, admin string) {
	p, a := s.Addrs()
	public = "http://" + p.String()
	if a != nil {
		admin = "http://" + a.String()
	}
	return public, admin
}

type response struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, client *http.Client, req *http.Request) response {
	t.Helper()
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return response{res.StatusCode, res.Header, string(body)}
}

func get(t *testing.T, url string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, nil, req)
}

// metricValue reads one counter from reg; labels must match exactly.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestHealthz(t *testing.T) {
	s, _ := startServer(t, plainConfig(), Deps{}, nil)
	pub, adm := urls(s)
	for _, u := range []string{pub, adm} {
		r := get(t, u+"/healthz")
		if r.code != http.StatusOK || r.body != "ok\n" {
			t.Errorf("%s/healthz = %d %q, want 200 ok", u, r.code, r.body)
		}
	}
}

func TestReadyz(t *testing.T) {
	var failing atomic.Bool
	ready := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("readiness check without a deadline")
		}
		if failing.Load() {
			return errors.New("dial tcp 10.0.0.5:5432: connection refused")
		}
		return nil
	}
	s, logs := startServer(t, plainConfig(), Deps{Ready: ready}, nil)
	pub, adm := urls(s)

	for _, u := range []string{pub, adm} {
		if r := get(t, u+"/readyz"); r.code != http.StatusOK {
			t.Fatalf("%s/readyz = %d %q, want 200", u, r.code, r.body)
		}
	}
	failing.Store(true)
	for _, u := range []string{pub, adm} {
		r := get(t, u+"/readyz")
		if r.code != http.StatusServiceUnavailable {
			t.Fatalf("%s/readyz with failing store = %d, want 503", u, r.code)
		}
		if strings.Contains(r.body, "10.0.0.5") {
			t.Errorf("readyz leaks the internal error: %q", r.body)
		}
	}
	if !strings.Contains(logs.String(), "10.0.0.5") {
		t.Errorf("readiness error not logged; logs:\n%s", logs)
	}
}

// TestReadyzChecks: a check added with AddReadyCheck (the push bus) turns
// readiness 503 while it fails although the store answers, is named in the
// log, and lets it back to 200 when it passes; none can be added after
// Start.
func TestReadyzChecks(t *testing.T) {
	var busDown atomic.Bool
	s, logs := startServer(t, plainConfig(), Deps{Ready: func(context.Context) error { return nil }}, func(srv *Server) {
		err := srv.AddReadyCheck("push bus", func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("readiness check without a deadline")
			}
			if busDown.Load() {
				return errors.New("not listening since 12:00")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.AddReadyCheck("nil", nil); err == nil {
			t.Error("a nil check was accepted")
		}
	})
	pub, adm := urls(s)
	for _, step := range []struct {
		down bool
		want int
	}{{false, http.StatusOK}, {true, http.StatusServiceUnavailable}, {false, http.StatusOK}} {
		busDown.Store(step.down)
		for _, u := range []string{pub, adm} {
			if r := get(t, u+"/readyz"); r.code != step.want {
				t.Fatalf("%s/readyz with the bus down=%v: %d %q, want %d", u, step.down, r.code, r.body, step.want)
			}
		}
	}
	if l := logs.String(); !strings.Contains(l, `check="push bus"`) || !strings.Contains(l, "not listening since 12:00") {
		t.Errorf("the failing check is not named in the log:\n%s", l)
	}
	if err := s.AddReadyCheck("late", func(context.Context) error { return nil }); err == nil {
		t.Error("a check was added after Start")
	}
}

func TestMetricsOnlyOnAdmin(t *testing.T) {
	s, _ := startServer(t, plainConfig(), Deps{}, nil)
	pub, adm := urls(s)
	get(t, pub+"/healthz")

	r := get(t, adm+"/metrics")
	if r.code != http.StatusOK {
		t.Fatalf("admin /metrics = %d", r.code)
	}
	for _, want := range []string{
		`bridge_http_requests_total{code="200",listener="public"} 1`,
		"bridge_http_request_duration_seconds_bucket",
		`bridge_http_panics_total{listener="public"} 0`,
		"go_goroutines",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("admin /metrics lacks %q", want)
		}
	}
	if r := get(t, pub+"/metrics"); r.code != http.StatusNotFound {
		t.Errorf("public /metrics = %d, want 404", r.code)
	}
}

func TestNoAdminListener(t *testing.T) {
	cfg := plainConfig()
	cfg.Admin = ListenerConfig{}
	s, _ := startServer(t, cfg, Deps{}, nil)
	pub, adm := urls(s)
	if adm != "" {
		t.Fatalf("admin address %s without an admin listener", adm)
	}
	if r := get(t, pub+"/metrics"); r.code != http.StatusNotFound {
		t.Errorf("public /metrics without admin listener = %d, want 404", r.code)
	}
	if r := get(t, pub+"/readyz"); r.code != http.StatusOK {
		t.Errorf("public /readyz = %d", r.code)
	}
	if s.AdminMux() == nil {
		t.Error("AdminMux is nil; callers mounting on it would crash")
	}
}

func TestSecurityHeaders(t *testing.T) {
	s, _ := startServer(t, plainConfig(), Deps{}, func(s *Server) {
		s.PublicMux().HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	})
	pub, adm := urls(s)
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "frame-ancestors 'none'",
	}
	for _, u := range []string{pub + "/healthz", pub + "/nowhere", pub + "/boom", adm + "/metrics"} {
		r := get(t, u)
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", u, k, got, v)
			}
		}
		if got := r.header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("%s: HSTS %q over plain HTTP", u, got)
		}
	}
}

func TestRequestID(t *testing.T) {
	seen := make(chan string, 2)
	s, _ := startServer(t, plainConfig(), Deps{}, func(s *Server) {
		s.PublicMux().HandleFunc("/id", func(w http.ResponseWriter, r *http.Request) {
			seen <- RequestID(r.Context())
		})
	})
	pub, _ := urls(s)
	req, _ := http.NewRequest(http.MethodGet, pub+"/id", nil)
	req.Header.Set("X-Request-Id", "client-chosen")
	r1 := do(t, nil, req)
	r2 := get(t, pub+"/id")
	id1, id2 := r1.header.Get("X-Request-Id"), r2.header.Get("X-Request-Id")
	if id1 == "" || id1 == "client-chosen" || id1 == id2 {
		t.Errorf("request ids %q, %q: want random and distinct", id1, id2)
	}
	if len(id1) < 20 {
		t.Errorf("request id %q too short to be unguessable", id1)
	}
	if got := <-seen; got != id1 {
		t.Errorf("RequestID(ctx) = %q, header %q", got, id1)
	}
}

func TestPanicRecovered(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, logs := startServer(t, plainConfig(), Deps{Registry: reg}, func(s *Server) {
		s.PublicMux().HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	})
	pub, _ := urls(s)

	r := get(t, pub+"/boom")
	if r.code != http.StatusInternalServerError {
		t.Fatalf("panicking handler = %d, want 500", r.code)
	}
	if strings.Contains(r.body, "kaboom") {
		t.Errorf("panic value reaches the client: %q", r.body)
	}
	if r := get(t, pub+"/healthz"); r.code != http.StatusOK {
		t.Fatalf("after a panic /healthz = %d, want 200", r.code)
	}
	if got := metricValue(t, reg, "bridge_http_panics_total", map[string]string{"listener": "public"}); got != 1 {
		t.Errorf("bridge_http_panics_total = %v, want 1", got)
	}
	if got := metricValue(t, reg, "bridge_http_requests_total", map[string]string{"listener": "public", "code": "500"}); got != 1 {
		t.Errorf("requests_total{code=500} = %v, want 1", got)
	}
	out := logs.String()
	if n := strings.Count(out, "panic in HTTP handler"); n != 1 {
		t.Errorf("panic logged %d times, want once; logs:\n%s", n, out)
	}
	if !strings.Contains(out, "server_test.go") {
		t.Errorf("panic log has no stack; logs:\n%s", out)
	}
}

func TestPanicAfterWriteAbortsConnection(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := startServer(t, plainConfig(), Deps{Registry: reg}, func(s *Server) {
		s.PublicMux().HandleFunc("/half", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			panic("after write")
		})
	})
	pub, _ := urls(s)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Get(pub + "/half")
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	if err == nil {
		t.Error("a response cut by a panic read as complete")
	}
	if got := metricValue(t, reg, "bridge_http_panics_total", map[string]string{"listener": "public"}); got != 1 {
		t.Errorf("bridge_http_panics_total = %v, want 1", got)
	}
}

func TestRequestLogOmitsQuery(t *testing.T) {
	s, logs := startServer(t, plainConfig(), Deps{}, func(s *Server) {
		s.PublicMux().HandleFunc("/login", func(http.ResponseWriter, *http.Request) {})
	})
	pub, _ := urls(s)
	get(t, pub+"/login?code=s3cr3t&state=xyz")
	out := logs.String()
	if !strings.Contains(out, "path=/login") || !strings.Contains(out, "status=200") {
		t.Errorf("request not logged with path and status; logs:\n%s", out)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("query string logged:\n%s", out)
	}
}

func TestBodyCap(t *testing.T) {
	readErr := make(chan error, 1)
	cfg := plainConfig()
	cfg.MaxBodyBytes = 1024
	s, _ := startServer(t, cfg, Deps{}, func(s *Server) {
		s.PublicMux().HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			readErr <- err
			if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			}
		})
	})
	pub, _ := urls(s)
	post := func(body io.Reader, size int64) response {
		req, _ := http.NewRequest(http.MethodPost, pub+"/upload", body)
		req.ContentLength = size
		return do(t, nil, req)
	}

	if r := post(bytes.NewReader(make([]byte, 1024)), 1024); r.code != http.StatusOK {
		t.Errorf("body at the cap = %d, want 200", r.code)
	}
	if err := <-readErr; err != nil {
		t.Errorf("reading a body at the cap: %v", err)
	}

	// Declared too large: refused before the handler runs.
	if r := post(bytes.NewReader(make([]byte, 1025)), 1025); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("declared oversize body = %d, want 413", r.code)
	}

	// Chunked (length unknown): the handler's read stops at the cap.
	r := post(io.MultiReader(bytes.NewReader(make([]byte, 4096))), -1)
	if r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize body = %d, want 413", r.code)
	}
	var mbe *http.MaxBytesError
	if err := <-readErr; !errors.As(err, &mbe) || mbe.Limit != 1024 {
		t.Errorf("chunked oversize read error = %v, want MaxBytesError with limit 1024", err)
	}
}

func TestRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := startServer(t, plainConfig(), Deps{Registry: reg}, nil)
	if s.Registry() != reg {
		t.Fatal("Registry() is not the registry passed in")
	}
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_test_total", Help: "test"})
	s.Registry().MustRegister(other)
	other.Inc()
	_, adm := urls(s)
	if r := get(t, adm+"/metrics"); !strings.Contains(r.body, "bridge_test_total 1") {
		t.Error("a metric registered by another package is not served")
	}
	if _, err := New(plainConfig(), Deps{Registry: reg}, nil); err == nil {
		t.Error("a second server registered its metrics on the same registry")
	}
}

// A long-poll handler reaches the connection through the wrapped writer.
func TestResponseController(t *testing.T) {
	errc := make(chan error, 1)
	s, _ := startServer(t, plainConfig(), Deps{}, func(s *Server) {
		s.PublicMux().HandleFunc("/poll", func(w http.ResponseWriter, _ *http.Request) {
			rc := http.NewResponseController(w)
			err := rc.SetWriteDeadline(time.Now().Add(time.Minute))
			if err == nil {
				w.Write([]byte("wait"))
				err = rc.Flush()
			}
			errc <- err
		})
	})
	pub, _ := urls(s)
	if r := get(t, pub+"/poll"); r.code != http.StatusOK || r.body != "wait" {
		t.Errorf("/poll = %d %q", r.code, r.body)
	}
	if err := <-errc; err != nil {
		t.Errorf("ResponseController through the middleware: %v", err)
	}
}
