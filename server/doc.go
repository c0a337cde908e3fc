// Package server runs the bridge's HTTP(S) listeners: the public one (device
// API, login pages) and the optional admin one (metrics, later the admin
// API).
//
// Lifecycle: New checks the Config, loads TLS certificates and registers
// the metrics; the front ends mount their handlers on PublicMux and
// AdminMux; Start binds both listeners (closing the first if the second
// cannot be bound) and serves them; Shutdown turns /readyz to 503, waits
// DrainDelay, stops accepting and lets in-flight requests finish within
// ShutdownTimeout. Run does Start, waits for ctx, then Shutdown.
//
// Routes the package mounts itself:
//
//	/healthz  both listeners  200 while the process serves (liveness)
//	/readyz   both listeners  200 when Deps.Ready and every check added
//	                          with AddReadyCheck pass, else 503
//	/metrics  admin only      Prometheus; never public. Without an admin
//	                          listener metrics are not served at all.
//
// Data flow of a request: request id (X-Request-Id, RequestID(ctx)) →
// security headers (nosniff, no-referrer, X-Frame-Options DENY,
// CSP frame-ancestors 'none', HSTS over TLS) → body cap (413 above
// MaxBodyBytes) → the mux, under panic recovery (500, logged with the stack,
// bridge_http_panics_total) → bridge_http_requests_total{listener,code},
// bridge_http_request_duration_seconds{listener} and a debug log line with
// the path but never the query string.
//
// HTTPS needs TLS 1.2 or newer; the certificate files are re-read when they
// change on disk, so renewals need no restart. Plain HTTP is refused unless
// AllowPlainHTTP is set.
package server
