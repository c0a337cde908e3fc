package pushauth

import (
	"crypto/x509"
	"encoding/asn1"
	"time"

	wa "github.com/go-webauthn/webauthn/protocol"
)

// Trusted attestation. go-webauthn's verification of a statement proves it
// is consistent (its signature, its certificate's fields, the nonce), which
// is AttestationVerified. Who made the authenticator is a different
// question: a statement reaches a root the bridge trusts only
//   - for the formats whose chain go-webauthn verifies against roots it pins
//     (protocol/init.go, const.go in v0.18.2): apple (Apple WebAuthn Root
//     CA) and android-key (Google's hardware attestation roots);
//   - for packed, tpm and fido-u2f with an x5c chain, when that chain
//     verifies against the operator's roots (Config.AttestationRoots,
//     config app.attestation_roots; none by default), at the enrollment
//     time.
// Not trusted, ever: none, packed self attestation (the credential key
// signing for itself), android-safetynet (a Web PKI TLS certificate of a
// retired Google service, not an attestation root) and compound.

// oidSubjectAltName is the extension a TPM AIK certificate marks critical.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// attestationTrusted reports whether obj, a statement that go-webauthn has
// verified, chains to a trusted root at time now.
func attestationTrusted(obj wa.AttestationObject, roots *x509.CertPool, now time.Time) bool {
	switch wa.AttestationFormat(obj.Format) {
	case wa.AttestationFormatApple, wa.AttestationFormatAndroidKey:
		// Verify refused these unless their chain reached the library's
		// pinned vendor roots.
		return true
	case wa.AttestationFormatPacked, wa.AttestationFormatTPM, wa.AttestationFormatFIDOUniversalSecondFactor:
		return roots != nil && x5cVerifies(obj, roots, now)
	}
	return false
}

// x5cVerifies verifies the statement's x5c chain with crypto/x509: the leaf
// is x5c[0], the rest are intermediates, roots the only anchors.
func x5cVerifies(obj wa.AttestationObject, roots *x509.CertPool, now time.Time) bool {
	raw, ok := obj.AttStatement["x5c"].([]any)
	if !ok || len(raw) == 0 {
		return false // packed self attestation has no x5c
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		der, ok := r.([]byte)
		if !ok {
			return false
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return false
		}
		certs[i] = c
	}
	leaf := certs[0]
	if wa.AttestationFormat(obj.Format) == wa.AttestationFormatTPM {
		// An AIK certificate's subject alternative name (the TPM's maker,
		// model and version) is critical, and crypto/x509 does not parse
		// that form; go-webauthn's TPM verification checked it.
		c := *leaf
		c.UnhandledCriticalExtensions = nil
		for _, oid := range leaf.UnhandledCriticalExtensions {
			if !oid.Equal(oidSubjectAltName) {
				c.UnhandledCriticalExtensions = append(c.UnhandledCriticalExtensions, oid)
			}
		}
		leaf = &c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		// Attestation certificates are not TLS certificates: their
		// extended key usages (tcg-kp-AIKCertificate, ...) are not checked.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err == nil
}
