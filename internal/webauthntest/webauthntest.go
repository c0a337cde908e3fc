package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// Attestation statement formats Register can make.
const (
	AttestNone       = "none"
	AttestPackedSelf = "packed-self" // packed, signed by the credential key itself
	AttestPacked     = "packed"      // packed basic: an attestation certificate under CA (or a throwaway CA)
)

// Authenticator flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// Authenticator is one passkey. Its exported fields are read at every
// Register and Assert, so a test changes them between ceremonies.
type Authenticator struct {
	RPID   string
	Origin string
	// UP sets the user-present flag (New: true); UV the user-verified flag
	// (New: true).
	UP, UV bool
	// Counter is the sign counter the next ceremony reports; with Counting
	// it is incremented first (a counting authenticator), without it stays
	// as set (0 for synced passkeys).
	Counter  uint32
	Counting bool
	// Attestation is the format Register makes (New: none).
	Attestation string
	// CA issues the attestation certificate of AttestPacked; nil makes a
	// throwaway root for each registration, which no verifier can trust.
	CA *CA
	// BackupEligible and BackedUp set the BE and BS flags.
	BackupEligible, BackedUp bool
	// Type overrides the client data type ("" means the right one).
	Type string

	Key          *ecdsa.PrivateKey
	CredentialID []byte
	AAGUID       []byte
}

// New makes a passkey for rpID used from origin.
func New(rpID, origin string) (*Authenticator, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 32)
	aaguid := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	if _, err := rand.Read(aaguid); err != nil {
		return nil, err
	}
	return &Authenticator{RPID: rpID, Origin: origin, UP: true, UV: true, Attestation: AttestNone, Key: k, CredentialID: id, AAGUID: aaguid}, nil
}

var b64 = base64.RawURLEncoding

// COSEKey is the credential's public key as a COSE_Key (EC2, ES256).
func (a *Authenticator) COSEKey() []byte {
	pub := a.Key.PublicKey
	x := make([]byte, 32)
	y := make([]byte, 32)
	pub.X.FillBytes(x)
	pub.Y.FillBytes(y)
	b, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		panic(err) // a fixed map of ints and bytes always encodes
	}
	return b
}

func (a *Authenticator) clientData(typ string, challenge []byte) []byte {
	if a.Type != "" {
		typ = a.Type
	}
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": b64.EncodeToString(challenge), "origin": a.Origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) authData(attested bool) []byte {
	if a.Counting {
		a.Counter++
	}
	rp := sha256.Sum256([]byte(a.RPID))
	var flags byte
	if a.UP {
		flags |= flagUP
	}
	if a.UV {
		flags |= flagUV
	}
	if a.BackupEligible {
		flags |= flagBE
	}
	if a.BackedUp {
		flags |= flagBS
	}
	if attested {
		flags |= flagAT
	}
	out := append([]byte{}, rp[:]...)
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, a.Counter)
	if attested {
		out = append(out, a.AAGUID...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.CredentialID)))
		out = append(out, a.CredentialID...)
		out = append(out, a.COSEKey()...)
	}
	return out
}

func sign(k *ecdsa.PrivateKey, authData, clientData []byte) []byte {
	cdh := sha256.Sum256(clientData)
	h := sha256.Sum256(append(append([]byte{}, authData...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return sig
}

// Register makes the registration response for challenge (the app's
// navigator.credentials.create) in the enrollment claim's form.
func (a *Authenticator) Register(challenge []byte) (*protocol.WebAuthnRegistration, error) {
	cd := a.clientData("webauthn.create", challenge)
	ad := a.authData(true)
	var format string
	stmt := map[string]any{}
	switch a.Attestation {
	case AttestNone, "":
		format = "none"
	case AttestPackedSelf:
		format = "packed"
		stmt["alg"] = -7
		stmt["sig"] = sign(a.Key, ad, cd)
	case AttestPacked:
		format = "packed"
		key, x5c, err := a.attestationChain()
		if err != nil {
			return nil, err
		}
		stmt["alg"] = -7
		stmt["sig"] = sign(key, ad, cd)
		stmt["x5c"] = x5c
	default:
		return nil, fmt.Errorf("webauthntest: unknown attestation %q", a.Attestation)
	}
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": format, "attStmt": stmt, "authData": ad})
	if err != nil {
		return nil, err
	}
	return &protocol.WebAuthnRegistration{
		ID: b64.EncodeToString(a.CredentialID), ClientDataJSON: b64.EncodeToString(cd),
		AttestationObject: b64.EncodeToString(obj), Transports: []string{"internal", "hybrid"},
	}, nil
}

// attestationChain is a packed attestation certificate (WebAuthn §8.2.1)
// issued by the authenticator's CA (a throwaway root if none), its key,
// and the x5c array: the certificate, then the intermediates up to the
// root, not the root itself (as authenticators send it).
func (a *Authenticator) attestationChain() (*ecdsa.PrivateKey, []any, error) {
	ca := a.CA
	if ca == nil {
		var err error
		if ca, err = NewCA("webauthntest throwaway CA"); err != nil {
			return nil, nil, err
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	leaf := &x509.Certificate{SerialNumber: serial(), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), BasicConstraintsValid: true,
		Subject: pkix.Name{Country: []string{"SE"}, Organization: []string{"webauthntest"}, OrganizationalUnit: []string{"Authenticator Attestation"}, CommonName: "webauthntest authenticator"}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	x5c := []any{der}
	for c := ca; c.parent != nil; c = c.parent {
		x5c = append(x5c, c.Cert.Raw)
	}
	return key, x5c, nil
}

// CA is an attestation certificate authority: a root (NewCA) or an
// intermediate under one (Intermediate). A test configures a root's PEM as
// a trusted attestation root, or leaves it out to see it refused.
type CA struct {
	Cert   *x509.Certificate
	Key    *ecdsa.PrivateKey
	parent *CA
}

// NewCA makes a self-signed root valid from an hour ago to a day from now.
func NewCA(name string) (*CA, error) { return newCA(name, nil) }

// Intermediate makes a CA under c.
func (c *CA) Intermediate(name string) (*CA, error) { return newCA(name, c) }

func newCA(name string, parent *CA) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	issuer, issuerKey := tmpl, key
	if parent != nil {
		issuer, issuerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, parent: parent}, nil
}

// PEM is the CA's certificate as a PEM block, as an operator's
// attestation_roots file holds it.
func (c *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// serial is a random certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n.Add(n, big.NewInt(1))
}

// Assertion is what navigator.credentials.get returns.
type Assertion struct {
	CredentialID, ClientDataJSON, AuthenticatorData, Signature []byte
}

// Assert makes an assertion for challenge.
func (a *Authenticator) Assert(challenge []byte) Assertion {
	cd := a.clientData("webauthn.get", challenge)
	ad := a.authData(false)
	return Assertion{CredentialID: a.CredentialID, ClientDataJSON: cd, AuthenticatorData: ad, Signature: sign(a.Key, ad, cd)}
}

// Answer is a passkey answer as the web app sends it: the claims, and an
// assertion over their challenge (protocol.AnswerWebAuthnChallenge).
func (a *Authenticator) Answer(cid, chash, decision, number string, iat int64) *protocol.WebAuthnAnswer {
	as := a.Assert(protocol.AnswerWebAuthnChallenge(cid, chash, decision, number, iat))
	return &protocol.WebAuthnAnswer{
		ID: cid, Hash: chash, Decision: decision, Number: number, IssuedAt: iat,
		CredentialID: b64.EncodeToString(as.CredentialID), ClientDataJSON: b64.EncodeToString(as.ClientDataJSON),
		AuthenticatorData: b64.EncodeToString(as.AuthenticatorData), Signature: b64.EncodeToString(as.Signature),
	}
}
