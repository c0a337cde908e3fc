package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// Security headers set on every response before the handler runs. A
// handler may replace them (a page with its own Content-Security-Policy
// must keep frame-ancestors 'none' in it).
const (
	cspDefault = "frame-ancestors 'none'"
	// hsts is one year, without includeSubDomains: the bridge does not
	// decide for the operator's other hosts.
	hsts = "max-age=31536000"
)

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside a
// request). It is random, sent as the X-Request-Id response header and
// meant for log lines, so that a user's report can be matched to the logs.
// An X-Request-Id sent by the client is ignored: it would let the client
// write into our logs.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// wrap is the one middleware every request of l passes through, in this
// order: request id, security headers, body cap, then the mux under panic
// recovery; finally the request is counted, timed and logged. It is one
// function rather than a chain so that the status a recovered panic sets
// is the one counted and logged.
func (s *Server) wrap(l *listener) http.Handler {
	tlsOn := l.cfg.TLS()
	maxBody := s.cfg.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := rand.Text()
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		r = r.WithContext(ctx)

		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", cspDefault)
		if tlsOn {
			h.Set("Strict-Transport-Security", hsts)
		}

		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == http.ErrAbortHandler {
				// The handler aborts the response on purpose; net/http
				// closes the connection without logging.
				s.observe(l, r, sw.statusOr(http.StatusOK), start)
				panic(v)
			}
			abort := false
			if v != nil {
				s.metrics.panics.WithLabelValues(l.name).Inc()
				s.logger.ErrorContext(ctx, "panic in HTTP handler",
					"listener", l.name, "method", r.Method, "path", r.URL.Path,
					"request_id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.wrote {
					// Part of the answer is out: cut the connection so the
					// client cannot take it for a whole one.
					abort = true
				} else {
					http.Error(sw, "internal server error", http.StatusInternalServerError)
				}
			}
			s.observe(l, r, sw.statusOr(http.StatusOK), start)
			if abort {
				panic(http.ErrAbortHandler)
			}
		}()

		if r.ContentLength > maxBody {
			w.Header().Set("Connection", "close")
			http.Error(sw, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		// The original writer, so that net/http closes the connection
		// after the answer when the cap is hit. A handler reading past the
		// cap gets *http.MaxBytesError and should answer 413.
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		l.mux.ServeHTTP(sw, r)
	})
}

// observe counts, times and logs one finished request. Only the path is
// logged, never the query: login and OIDC endpoints carry codes and state
// there.
func (s *Server) observe(l *listener, r *http.Request, status int, start time.Time) {
	d := time.Since(start)
	s.metrics.requests.WithLabelValues(l.name, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(l.name).Observe(d.Seconds())
	s.logger.DebugContext(r.Context(), "http request",
		"listener", l.name, "method", r.Method, "path", r.URL.Path,
		"status", status, "duration", d, "request_id", RequestID(r.Context()))
}

// statusWriter remembers the status of the answer. Unwrap lets
// http.ResponseController reach the connection's Flush, Hijack and
// deadlines; Flush is also offered directly for handlers that assert
// http.Flusher (long-polls).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool // the final header is out
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		// 1xx other than 101 are informational; the final header follows.
		w.wrote = code >= 200 || code == http.StatusSwitchingProtocols
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusOr is the status sent, or def when the handler wrote nothing (and
// net/http will send def).
func (w *statusWriter) statusOr(def int) int {
	if !w.wrote {
		return def
	}
	return w.status
}
