package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves a certificate from PEM files and re-reads them when
// either file's modification time or size changes, checked on every TLS
// handshake (two stat calls), so a renewed certificate is used without a
// restart or a signal. If the new files do not load (for example the
// certificate was replaced and the key not yet), the old certificate keeps
// being served and the failure is logged once per change.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	loaded  fileStamp // of the files cert came from
	failed  fileStamp // the last stamp that did not load
	statErr bool      // a stat failure was logged and not yet cleared
}

// fileStamp identifies one version of the certificate and key files.
type fileStamp struct {
	certMod, keyMod   int64 // UnixNano
	certSize, keySize int64
}

func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger}
	st, err := c.stat()
	if err != nil {
		return nil, err
	}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cert, c.loaded = cert, st
	return c, nil
}

func (c *certReloader) stat() (fileStamp, error) {
	ci, err := os.Stat(c.certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS certificate: %w", err)
	}
	ki, err := os.Stat(c.keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS key: %w", err)
	}
	return fileStamp{
		certMod: ci.ModTime().UnixNano(), keyMod: ki.ModTime().UnixNano(),
		certSize: ci.Size(), keySize: ki.Size(),
	}, nil
}

func (c *certReloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if leaf := cert.Leaf; leaf != nil {
		args := []any{"cert_file", c.certFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter}
		if time.Now().After(leaf.NotAfter) {
			c.logger.Warn("TLS certificate has expired", args...)
		} else {
			c.logger.Info("TLS certificate loaded", args...)
		}
	}
	return &cert, nil
}

// GetCertificate is the tls.Config hook.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	st, err := c.stat()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if !c.statErr {
			c.statErr = true
			c.logger.Warn("cannot check TLS files for renewal; serving the loaded certificate", "err", err)
		}
		return c.cert, nil
	}
	c.statErr = false
	if st == c.loaded || st == c.failed {
		return c.cert, nil
	}
	cert, err := c.load()
	if err != nil {
		c.failed = st
		c.logger.Warn("TLS files changed but do not load; serving the previous certificate", "err", err)
		return c.cert, nil
	}
	c.cert, c.loaded = cert, st
	return c.cert, nil
}
