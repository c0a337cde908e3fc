package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds one readiness check.
const readyTimeout = 2 * time.Second

// mountHealth adds /healthz and /readyz to mux. Both listeners have them:
// load balancers probe the public one, orchestrators often the admin one.
func (s *Server) mountHealth(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
}

// healthz is liveness: the process runs and serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok")
}

// readyCheck is one condition of readiness, named in the log when it fails.
type readyCheck struct {
	name  string
	check func(ctx context.Context) error
}

// AddReadyCheck adds a condition to /readyz besides Deps.Ready (the
// cross-node wake-up channel, say): the node is ready only while every
// check passes. All checks share one 2 s timeout. Add checks before Start.
func (s *Server) AddReadyCheck(name string, check func(ctx context.Context) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.started:
		return errors.New("server: readiness check added after Start")
	case check == nil:
		return fmt.Errorf("server: readiness check %q is nil", name)
	}
	s.ready = append(s.ready, readyCheck{name: name, check: check})
	return nil
}

// readyz is readiness: 503 while shutting down (so load balancers drain
// the node) or when a readiness check fails. The client gets a short
// reason only; the error is logged with the check's name.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeText(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	for _, c := range s.ready {
		if err := c.check(ctx); err != nil {
			s.logger.WarnContext(r.Context(), "readiness check failed",
				"check", c.name, "err", err, "request_id", RequestID(r.Context()))
			writeText(w, http.StatusServiceUnavailable, "not ready")
			return
		}
	}
	writeText(w, http.StatusOK, "ok")
}

func writeText(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// metricsHandler serves the registry. It is mounted on the admin listener
// only: metrics name internal paths and volumes that the public has no
// business seeing.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slogPromLogger{s},
		Registry: s.registry,
	})
}

// slogPromLogger sends promhttp's gathering errors to the server's logger.
type slogPromLogger struct{ s *Server }

func (l slogPromLogger) Println(v ...any) {
	l.s.logger.Warn("gathering metrics", "err", fmt.Sprint(v...))
}

// metrics are the server's own series.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_http_requests_total",
			Help: "HTTP requests answered, by listener and status code.",
		}, []string{"listener", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bridge_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by listener (long-polls included).",
			// Up to 2 minutes: push long-polls wait up to the challenge lifetime.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"listener"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_http_panics_total",
			Help: "Panics recovered in HTTP handlers, by listener.",
		}, []string{"listener"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.panics} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	// Export zeros, so that rate() and alerts work before the first panic.
	m.panics.WithLabelValues("public")
	m.panics.WithLabelValues("admin")
	return m, nil
}
