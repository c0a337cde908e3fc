package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// expiredCA is the PEM of a CA certificate that expired yesterday.
func expiredCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "old root"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestAttestationRoots: app.attestation_roots reads CA certificates from
// PEM files (several per file, several files), relative to the config's
// directory; a missing or empty file, a private key, a server certificate,
// an expired root or a certificate that does not parse is an error naming
// the entry. Default none.
func TestAttestationRoots(t *testing.T) {
	dir := t.TempDir()
	a, b := testenv.NewCA(t), testenv.NewCA(t)
	writeFile(t, dir, "roots.pem", "Vendor A\n"+string(a.CertPEM)+"Vendor B\n"+string(b.CertPEM))
	writeFile(t, dir, "one.pem", string(a.CertPEM))
	writeFile(t, dir, "key.pem", string(a.KeyPEM))
	writeFile(t, dir, "server.pem", string(testenv.SelfSigned(t, 3).CertPEM))
	writeFile(t, dir, "expired.pem", expiredCA(t))
	writeFile(t, dir, "broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	writeFile(t, dir, "text.pem", "not PEM at all\n")
	tests := []struct {
		name, roots string
		want        string // an error; "" means success
		certs       int
	}{
		{name: "default", roots: "", certs: 0},
		{name: "a bundle and a file", roots: "[roots.pem, one.pem]", certs: 3},
		{name: "missing", roots: "[nope.pem]", want: `bridge.yaml:7: app.attestation_roots[0]: cannot read "` + filepath.Join(dir, "nope.pem") + `": no such file or directory`},
		{name: "empty entry", roots: `[one.pem, ""]`, want: "app.attestation_roots[1]: is empty"},
		{name: "private key", roots: "[key.pem]", want: `app.attestation_roots[0]: "` + filepath.Join(dir, "key.pem") + `": PEM block 1 is a "PRIVATE KEY", not a CERTIFICATE`},
		{name: "server certificate", roots: "[server.pem]", want: "certificate 1 (CN=localhost) is not a CA certificate"},
		{name: "expired", roots: "[expired.pem]", want: "certificate 1 (CN=old root) expired on"},
		{name: "does not parse", roots: "[broken.pem]", want: "certificate 1 does not parse"},
		{name: "no PEM", roots: "[text.pem]", want: "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "app:\n  enabled: true\n"
			if tt.roots != "" {
				src += "  attestation_roots: " + tt.roots + "\n"
			}
			c, err := parseString(t, trial(src), dir, nil)
			if tt.want != "" {
				wantErr(t, err, tt.want)
				if err != nil && strings.Count(err.Error(), "\n") != 0 {
					t.Errorf("want exactly one problem, got:\n%v", err)
				}
				if err != nil && strings.Contains(err.Error(), "PRIVATE KEY-----") {
					t.Errorf("the error quotes the key file: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(c.App.AttestationRootCerts); got != tt.certs {
				t.Fatalf("%d certificates, want %d", got, tt.certs)
			}
			if tt.certs > 0 && !c.App.AttestationRootCerts[0].Equal(a.Cert.Cert) {
				t.Fatalf("first root is %s", c.App.AttestationRootCerts[0].Subject)
			}
		})
	}
}
