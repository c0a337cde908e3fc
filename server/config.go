package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Config is the runtime configuration of the listeners. cmd/bridge fills it
// from config.HTTP; the package does not import config. Zero durations and a
// zero MaxBodyBytes take the defaults listed on each field (the same ones
// config documents), so a Config written by hand in a test works as is.
type Config struct {
	// Public serves the device API, the login pages, /healthz and /readyz.
	// Listen is required.
	Public ListenerConfig
	// Admin serves /metrics, /healthz, /readyz and (later) the admin API.
	// An empty Listen disables it, and with it /metrics.
	Admin ListenerConfig

	// Per connection bounds. Defaults 5s, 30s, 60s (long-polls need it),
	// 120s.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration

	// ShutdownTimeout bounds how long Shutdown waits for in-flight requests
	// before it closes their connections. Default 15s.
	ShutdownTimeout time.Duration
	// DrainDelay is how long Shutdown keeps accepting requests after
	// /readyz turned 503, so that load balancers see it and stop sending
	// traffic before the listeners close. Default 0 (close at once).
	DrainDelay time.Duration

	// MaxBodyBytes caps every request body. Default 1 MiB.
	MaxBodyBytes int64
}

// ListenerConfig is one HTTP(S) listener.
type ListenerConfig struct {
	// Listen is host:port; port 0 picks a free port (see Server.Addrs).
	Listen string
	// BaseURL is how phones and browsers reach this listener. Empty means
	// derived from the bound address (see Server.BaseURL).
	BaseURL string
	// CertFile and KeyFile are PEM files; set both to serve HTTPS. They are
	// re-read when their modification time or size changes, so renewed
	// certificates take effect without a restart.
	CertFile string
	KeyFile  string
	// AllowPlainHTTP must be set to serve without TLS.
	AllowPlainHTTP bool
}

// Defaults, applied to zero values by withDefaults.
const (
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteTimeout      = 60 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultShutdownTimeout   = 15 * time.Second
	defaultMaxBodyBytes      = 1 << 20
	// maxHeaderBytes is generous for SAML redirect-binding URLs and cookies
	// while far below net/http's 1 MiB default.
	maxHeaderBytes = 64 << 10
)

// TLS reports whether the listener serves HTTPS.
func (l ListenerConfig) TLS() bool { return l.CertFile != "" || l.KeyFile != "" }

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ReadHeaderTimeout, defaultReadHeaderTimeout)
	def(&c.ReadTimeout, defaultReadTimeout)
	def(&c.WriteTimeout, defaultWriteTimeout)
	def(&c.IdleTimeout, defaultIdleTimeout)
	def(&c.ShutdownTimeout, defaultShutdownTimeout)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	return c
}

// Validate reports every problem in c at once. The config loader checks the
// same things with file keys and lines; this is the last line of defence
// (plain HTTP in particular is refused unless explicitly allowed).
func (c Config) Validate() error {
	var errs []error
	if c.Public.Listen == "" {
		errs = append(errs, errors.New("public listener: listen address is required"))
	}
	errs = append(errs, c.Public.validate("public")...)
	errs = append(errs, c.Admin.validate("admin")...)
	if c.Public.Listen != "" && c.Public.Listen == c.Admin.Listen {
		if _, port, err := net.SplitHostPort(c.Public.Listen); err == nil && port != "0" {
			errs = append(errs, fmt.Errorf("public and admin listeners share the address %s", c.Public.Listen))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReadHeaderTimeout", c.ReadHeaderTimeout},
		{"ReadTimeout", c.ReadTimeout},
		{"WriteTimeout", c.WriteTimeout},
		{"IdleTimeout", c.IdleTimeout},
		{"ShutdownTimeout", c.ShutdownTimeout},
		{"DrainDelay", c.DrainDelay},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative (got %s)", d.name, d.v))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxBodyBytes must not be negative (got %d)", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// validate checks a listener; an empty Listen (a disabled admin listener)
// has nothing to check.
func (l ListenerConfig) validate(name string) []error {
	if l.Listen == "" {
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(l.Listen); err != nil {
		errs = append(errs, fmt.Errorf("%s listener: listen address %q: %w", name, l.Listen, err))
	}
	switch {
	case l.CertFile != "" && l.KeyFile == "":
		errs = append(errs, fmt.Errorf("%s listener: CertFile is set but KeyFile is not", name))
	case l.CertFile == "" && l.KeyFile != "":
		errs = append(errs, fmt.Errorf("%s listener: KeyFile is set but CertFile is not", name))
	case !l.TLS() && !l.AllowPlainHTTP:
		errs = append(errs, fmt.Errorf("%s listener: no TLS certificate configured and plain HTTP not allowed", name))
	}
	if l.BaseURL != "" {
		u, err := url.Parse(l.BaseURL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s listener: base URL: %w", name, err))
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("%s listener: base URL %q must be an absolute http(s) URL", name, l.BaseURL))
		}
	}
	return errs
}
