package server

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// selfSigned makes a certificate for localhost and 127.0.0.1 with the given
// serial and writes it and its key as PEM files in dir.
func selfSigned(t *testing.T, dir string, serial int64) (cert *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	c := testenv.SelfSigned(t, serial)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeAtomically(t, certFile, c.CertPEM)
	writeAtomically(t, keyFile, c.KeyPEM)
	return c.Cert, certFile, keyFile
}

// writeAtomically replaces path the way certificate tools do (write, then
// rename), with a modification time distinct from any earlier version even
// on file systems with coarse timestamps.
func writeAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	mtime := time.Now().Add(-24 * time.Hour)
	if fi, err := os.Stat(path); err == nil {
		mtime = fi.ModTime().Add(time.Second)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func tlsConfig(t *testing.T, certFile, keyFile string) Config {
	t.Helper()
	return Config{
		Public: ListenerConfig{Listen: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile},
		Admin:  ListenerConfig{Listen: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile},
	}
}

func TestTLS(t *testing.T) {
	cert, certFile, keyFile := selfSigned(t, t.TempDir(), 1)
	s, _ := startServer(t, tlsConfig(t, certFile, keyFile), Deps{}, nil)
	pub, adm := s.Addrs()

	roots := x509.NewCertPool()
	roots.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: true,
	}}
	for _, addr := range []net.Addr{pub, adm} {
		res, err := client.Get("https://" + addr.String() + "/healthz")
		if err != nil {
			t.Fatalf("HTTPS to %s: %v", addr, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("https %s/healthz = %d", addr, res.StatusCode)
		}
		if got := res.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
			t.Errorf("HSTS = %q over TLS", got)
		}
	}
	if got, want := s.BaseURL(), "https://"+pub.String(); got != want {
		t.Errorf("BaseURL = %q, want %q", got, want)
	}

	// Plain HTTP to a TLS listener is not served.
	res, err := http.Get("http://" + pub.String() + "/healthz")
	if err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain HTTP served on a TLS listener")
		}
	}

	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		conn, err := tls.Dial("tcp", pub.String(), &tls.Config{
			RootCAs: roots, MinVersion: v, MaxVersion: v,
		})
		if err == nil {
			conn.Close()
			t.Errorf("handshake with %s succeeded", tls.VersionName(v))
		} else if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("%s refused with %v, want a protocol version alert", tls.VersionName(v), err)
		}
	}
	conn, err := tls.Dial("tcp", pub.String(), &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2 handshake: %v", err)
	}
	conn.Close()
}

// servedSerial does a fresh handshake and returns the served certificate's
// serial number.
func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile := selfSigned(t, dir, 1)
	s, logs := startServer(t, tlsConfig(t, certFile, keyFile), Deps{}, nil)
	pub, _ := s.Addrs()
	addr := pub.String()

	if got := servedSerial(t, addr); got != 1 {
		t.Fatalf("serving serial %d, want 1", got)
	}

	// Renewal: both files replaced.
	selfSigned(t, dir, 2)
	if got := servedSerial(t, addr); got != 2 {
		t.Fatalf("after renewal serving serial %d, want 2", got)
	}

	// Half-done renewal (new certificate, old key): keep serving the last
	// good pair and say so once.
	oldKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	selfSigned(t, dir, 3)
	writeAtomically(t, keyFile, oldKey)
	for range 2 {
		if got := servedSerial(t, addr); got != 2 {
			t.Fatalf("with mismatched files serving serial %d, want 2 (the last good one)", got)
		}
	}
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Errorf("load failure logged %d times, want once; logs:\n%s", n, logs)
	}

	// Files removed (mid-replacement): still serving.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, addr); got != 2 {
		t.Fatalf("with the certificate file missing serving serial %d, want 2", got)
	}
}

func TestNewFailsOnBadCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(tlsConfig(t, certFile, filepath.Join(dir, "missing.pem")), Deps{}, nil)
	if err == nil || !strings.Contains(err.Error(), "public listener") {
		t.Fatalf("New with bad TLS files: %v", err)
	}
}
