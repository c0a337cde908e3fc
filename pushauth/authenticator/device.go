package authenticator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// Device is an enrolled authenticator. Its methods are safe for concurrent
// use.
type Device struct {
	base     string // the bridge's public base URL, no trailing slash
	id       string
	user     string
	alg      string
	key      crypto.Signer // *ecdsa.PrivateKey (ES256) or ed25519.PrivateKey (EdDSA)
	pinned   string        // thumbprint of the push key pinned at enrollment
	tlsPin   string        // protocol.SPKIPin of the bridge's TLS key, or ""
	caPEM    []byte        // extra CA certificates trusted for the bridge's TLS
	enrolled time.Time
	client   *http.Client
	now      func() time.Time

	refreshMu sync.Mutex // serialises RefreshPushKeys

	mu           sync.Mutex
	trusted      map[string]jose.JSONWebKey // push keys by thumbprint
	stillUnknown map[string]time.Time       // kids unknown after a refresh, and when
	pushProvider string
	pushToken    string
}

// ID is the device id the server assigned (the kid of its signatures).
func (d *Device) ID() string { return d.id }

// User is the user the device is enrolled for: the "sub" of its challenges.
func (d *Device) User() string { return d.user }

// BaseURL is the bridge's public base URL, without a trailing slash.
func (d *Device) BaseURL() string { return d.base }

// Algorithm is the device key's JWS algorithm, ES256 or EdDSA.
func (d *Device) Algorithm() string { return d.alg }

// PublicKey is the device's public key.
func (d *Device) PublicKey() jose.JSONWebKey {
	return jose.JSONWebKey{Key: d.key.Public(), KeyID: d.id, Algorithm: d.alg, Use: "sig"}
}

// PinnedPushKey is the thumbprint of the push key pinned at enrollment.
func (d *Device) PinnedPushKey() string { return d.pinned }

// TLSPin is the pin of the bridge's TLS key (protocol.SPKIPin), or "" when
// the activation URL had none.
func (d *Device) TLSPin() string { return d.tlsPin }

// EnrolledAt is when the device enrolled.
func (d *Device) EnrolledAt() time.Time { return d.enrolled }

// Push is the push provider and token the server has for the device
// ("", "" for a poll-only device).
func (d *Device) Push() (provider, token string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pushProvider, d.pushToken
}

// PushKeys lists the thumbprints of the push keys the device trusts: the
// pinned one first, then the ones endorsed since, sorted.
func (d *Device) PushKeys() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.trusted))
	for tp := range d.trusted {
		if tp != d.pinned {
			out = append(out, tp)
		}
	}
	slices.Sort(out)
	return append([]string{d.pinned}, out...)
}

// trustedKey returns the trusted push key with thumbprint kid.
func (d *Device) trustedKey(kid string) (jose.JSONWebKey, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k, ok := d.trusted[kid]
	return k, ok
}

// Sign signs claims as a JWS of type typ with the device key, kid = the
// device id. It is for testing and for custom clients: Proof and
// SignedAnswer use it for the messages of the protocol, and a test can
// sign modified claims with it.
func (d *Device) Sign(typ string, claims any) (string, error) {
	return protocol.Sign(d.alg, d.key, typ, d.id, false, claims)
}

// Proof makes the Device-Proof header of one request: a TypProof JWS bound
// to method, the URL without its query string, the time, a random jti and,
// when body is not empty, the body's hash. Each request needs a fresh
// proof. Every request the device makes carries one; Proof is exported for
// testing and for custom clients that build requests by hand.
func (d *Device) Proof(method, url string, body []byte) (string, error) {
	if i := strings.IndexAny(url, "?#"); i >= 0 {
		url = url[:i]
	}
	jti := make([]byte, 16)
	rand.Read(jti) // never fails (crypto/rand)
	claims := protocol.ProofClaims{
		JTI:      base64.RawURLEncoding.EncodeToString(jti),
		Method:   method,
		URL:      url,
		IssuedAt: d.now().Unix(),
	}
	if len(body) > 0 {
		claims.BodyHash = protocol.BodyHash(body)
	}
	return d.Sign(protocol.TypProof, claims)
}

// newKey makes a device key for alg.
func newKey(alg string) (crypto.Signer, error) {
	switch alg {
	case protocol.AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case protocol.AlgEdDSA:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	default:
		return nil, fmt.Errorf("authenticator: algorithm %q is not supported (want %s or %s)", alg, protocol.AlgES256, protocol.AlgEdDSA)
	}
}

// keyAlgorithm checks a private device key and returns its algorithm.
func keyAlgorithm(key any) (crypto.Signer, string, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, "", errors.New("the ECDSA key is not on P-256")
		}
		return k, protocol.AlgES256, nil
	case ed25519.PrivateKey:
		return k, protocol.AlgEdDSA, nil
	default:
		return nil, "", fmt.Errorf("key type %T is not a device key (want ECDSA P-256 or Ed25519)", key)
	}
}

// pushKey checks a push key: an Ed25519 public key (challenges are EdDSA
// only). It returns the key as the device keeps it, with its thumbprint as
// kid.
func pushKey(k jose.JSONWebKey) (jose.JSONWebKey, error) {
	if !k.Valid() || !k.IsPublic() {
		return jose.JSONWebKey{}, errors.New("push key is not a valid public JWK")
	}
	pub, ok := k.Key.(ed25519.PublicKey)
	if !ok {
		return jose.JSONWebKey{}, fmt.Errorf("push key type %T is not Ed25519", k.Key)
	}
	if k.Algorithm != "" && k.Algorithm != protocol.AlgEdDSA {
		return jose.JSONWebKey{}, fmt.Errorf("push key algorithm %q is not EdDSA", k.Algorithm)
	}
	out := jose.JSONWebKey{Key: pub, Algorithm: protocol.AlgEdDSA, Use: "sig"}
	tp, err := protocol.Thumbprint(out)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	out.KeyID = tp
	return out, nil
}

// validID matches the ids the device puts in URL paths (challenge ids):
// ids that need no escaping, so the device and the server agree on the
// proof's htu.
var validID = regexp.MustCompile(`^[A-Za-z0-9_.~-]{1,128}$`)

func checkID(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("authenticator: challenge id %q is not a valid id (1-128 of A-Z a-z 0-9 _ . ~ -)", truncate(id, 40))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
