package ldap_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/directory/ldap"
	"github.com/bridge-idp/bridge/directory/ldap/slapdtest"
)

// logBuffer collects log output so tests can check warnings.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// config is a plaintext config for srv in the given group mode.
func config(srv *slapdtest.Server, mode string) ldap.Config {
	return ldap.Config{
		URL:                    srv.URL,
		AllowInsecurePlaintext: true,
		BindDN:                 slapdtest.ServiceDN,
		BindPassword:           slapdtest.ServicePassword,
		UserBaseDN:             slapdtest.PeopleDN,
		DisabledFilter:         srv.DisabledFilter,
		Groups:                 ldap.Groups{Mode: mode, BaseDN: slapdtest.GroupsDN},
	}
}

func open(t testing.TB, cfg ldap.Config) directory.Directory {
	t.Helper()
	var logs logBuffer
	// Open probes the server once; with the hour-long timeouts of some
	// tests only this context ends the probe of a server that never answers.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	d, err := ldap.Open(ctx, "corp", cfg, logs.logger())
	if err != nil {
		t.Fatalf("Open: %v\nlogs:\n%s", err, logs.String())
	}
	t.Cleanup(func() { d.(interface{ Close() error }).Close() })
	return d
}
