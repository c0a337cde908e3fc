package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Deps are what the server needs from the rest of the bridge.
type Deps struct {
	// Ready reports whether the node can serve (the store's Ping). Nil
	// means always ready. /readyz calls it with a 2 s timeout; more checks
	// can be added with AddReadyCheck.
	Ready func(ctx context.Context) error
	// Registry receives the server's metrics and is served on the admin
	// listener's /metrics. Nil makes a new one with the Go and process
	// collectors registered; a registry passed in is used as is.
	Registry *prometheus.Registry
}

// Server is the public and the admin HTTP(S) listener of one bridge node.
// Mount handlers on PublicMux and AdminMux, then Start; stop with Shutdown.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	ready    []readyCheck // set before Start, read-only after
	registry *prometheus.Registry
	metrics  *metrics
	public   *listener
	admin    *listener // nil when Admin.Listen is empty
	// adminMux is the admin listener's mux, or an unserved one.
	adminMux *http.ServeMux

	// listen binds a listener; tests replace it to watch what is closed.
	listen func(ctx context.Context, network, addr string) (net.Listener, error)
	// testHookDraining runs in Shutdown right after /readyz turned 503.
	testHookDraining func()

	draining atomic.Bool
	errc     chan error // serve failures, for Run
	wg       sync.WaitGroup

	mu      sync.Mutex
	started bool
}

// listener is one http.Server with its mux and (for HTTPS) certificate.
type listener struct {
	name  string // "public" or "admin": the metrics and log label
	cfg   ListenerConfig
	mux   *http.ServeMux
	certs *certReloader // nil for plain HTTP
	srv   *http.Server
	ln    net.Listener // set by Start, guarded by Server.mu
}

// New checks cfg, loads the TLS certificates and registers the metrics. It
// binds nothing: Start does.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server: invalid config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		logger:   logger,
		registry: deps.Registry,
		listen:   new(net.ListenConfig).Listen,
		errc:     make(chan error, 2),
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
		if err := errors.Join(
			s.registry.Register(collectors.NewGoCollector()),
			s.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		); err != nil {
			return nil, fmt.Errorf("server: register runtime metrics: %w", err)
		}
	}
	m, err := newMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if deps.Ready != nil {
		s.ready = append(s.ready, readyCheck{name: "store", check: deps.Ready})
	}

	if s.public, err = s.newListener("public", cfg.Public); err != nil {
		return nil, err
	}
	s.adminMux = http.NewServeMux()
	if cfg.Admin.Listen != "" {
		if s.admin, err = s.newListener("admin", cfg.Admin); err != nil {
			return nil, err
		}
		s.adminMux = s.admin.mux
	}
	s.mountHealth(s.public.mux)
	s.mountHealth(s.adminMux)
	s.adminMux.Handle("GET /metrics", s.metricsHandler())
	return s, nil
}

func (s *Server) newListener(name string, cfg ListenerConfig) (*listener, error) {
	l := &listener{name: name, cfg: cfg, mux: http.NewServeMux()}
	logger := s.logger.With("listener", name)
	l.srv = &http.Server{
		Handler:           s.wrap(l),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.TLS() {
		certs, err := newCertReloader(cfg.CertFile, cfg.KeyFile, logger)
		if err != nil {
			return nil, fmt.Errorf("server: %s listener: %w", name, err)
		}
		l.certs = certs
		l.srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: certs.GetCertificate,
		}
	}
	return l, nil
}

// PublicMux is where front ends mount the device API and the login pages.
// /healthz and /readyz are already there. Mount before Start.
func (s *Server) PublicMux() *http.ServeMux { return s.public.mux }

// AdminMux is where the admin API mounts; /metrics, /healthz and /readyz
// are already there. Without an admin listener the mux is never served.
func (s *Server) AdminMux() *http.ServeMux { return s.adminMux }

// Registry is where the other packages register their metrics; it is served
// on the admin listener's /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

func (s *Server) listeners() []*listener {
	if s.admin == nil {
		return []*listener{s.public}
	}
	return []*listener{s.public, s.admin}
}

// Start binds the listeners and serves them in the background. If one
// cannot be bound (a port is taken), those already bound are closed and the
// error names the listener and the address. ctx bounds the binding only;
// stop the server with Shutdown.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server: already started")
	}
	if s.draining.Load() {
		return errors.New("server: start after shutdown")
	}
	ls := s.listeners()
	for i, l := range ls {
		if !l.cfg.TLS() && !l.cfg.AllowPlainHTTP {
			// Validate refuses this; New calls it. Check again anyway.
			return fmt.Errorf("server: %s listener: refusing plain HTTP that is not allowed", l.name)
		}
		ln, err := s.listen(ctx, "tcp", l.cfg.Listen)
		if err != nil {
			for _, bound := range ls[:i] {
				_ = bound.ln.Close()
				bound.ln = nil
			}
			return fmt.Errorf("server: %s listener: %w", l.name, err)
		}
		l.ln = ln
	}
	s.started = true
	for _, l := range ls {
		s.logListening(l)
		s.wg.Add(1)
		go s.serve(l, l.ln)
	}
	return nil
}

func (s *Server) logListening(l *listener) {
	addr := l.ln.Addr().String()
	if l.certs != nil {
		s.logger.Info("listening", "listener", l.name, "addr", addr, "tls", true)
		return
	}
	if ta, ok := l.ln.Addr().(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		s.logger.Info("listening", "listener", l.name, "addr", addr, "tls", false)
		return
	}
	s.logger.Warn("listening with plain HTTP on a non-loopback address; only do this behind a TLS-terminating proxy",
		"listener", l.name, "addr", addr)
}

func (s *Server) serve(l *listener, ln net.Listener) {
	defer s.wg.Done()
	var err error
	if l.certs != nil {
		err = l.srv.ServeTLS(ln, "", "")
	} else {
		err = l.srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		err = fmt.Errorf("server: %s listener: %w", l.name, err)
		s.logger.Error("listener failed", "listener", l.name, "err", err)
		select {
		case s.errc <- err:
		default:
		}
	}
}

// Addrs returns the bound addresses once Start succeeded; admin is nil
// without an admin listener, both are nil before Start.
func (s *Server) Addrs() (public, admin net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.public.ln != nil {
		public = s.public.ln.Addr()
	}
	if s.admin != nil && s.admin.ln != nil {
		admin = s.admin.ln.Addr()
	}
	return public, admin
}

// BaseURL is the public listener's configured base URL or, when none is
// configured, one derived from the bound (before Start: the configured)
// address. The derived form suits tests and trials on loopback.
func (s *Server) BaseURL() string {
	if s.cfg.Public.BaseURL != "" {
		return s.cfg.Public.BaseURL
	}
	scheme := "http"
	if s.public.certs != nil {
		scheme = "https"
	}
	host := s.cfg.Public.Listen
	if a, _ := s.Addrs(); a != nil {
		host = a.String()
	}
	return scheme + "://" + host
}

// Shutdown stops the server gracefully: /readyz turns 503 at once; after
// DrainDelay (cut short if ctx ends) the listeners stop accepting and
// in-flight requests get up to ShutdownTimeout (or until ctx ends) to
// finish, after which their connections are closed. Shutdown before Start
// just prevents a later Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	if hook := s.testHookDraining; hook != nil {
		hook()
	}
	s.mu.Lock()
	var ls []*listener
	if s.started {
		ls = s.listeners()
	}
	s.mu.Unlock()

	if d := s.cfg.DrainDelay; d > 0 && len(ls) > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()

	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() {
			if err := l.srv.Shutdown(ctx); err != nil {
				_ = l.srv.Close()
				errs[i] = fmt.Errorf("server: %s listener: graceful shutdown: %w", l.name, err)
			}
		})
	}
	wg.Wait()
	s.wg.Wait()
	err := errors.Join(errs...)
	if err != nil {
		s.logger.Warn("shutdown cut in-flight requests short", "err", err)
	} else if len(ls) > 0 {
		s.logger.Info("server stopped")
	}
	return err
}

// Run starts the server and blocks until ctx ends or a listener fails,
// then shuts down gracefully (bounded by ShutdownTimeout, not by ctx, which
// has already ended). cmd/bridge cancels ctx on SIGTERM or SIGINT.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-s.errc:
	}
	return errors.Join(serveErr, s.Shutdown(context.WithoutCancel(ctx)))
}
