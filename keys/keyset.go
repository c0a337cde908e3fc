package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/store"
)

// KeyUnsealError says a stored private key does not open under this node's
// KEK. It wraps ErrUnseal.
type KeyUnsealError struct {
	KID   string // the key that does not open
	KEKID string // this node's KEK fingerprint (Sealer.ID)
}

func (e *KeyUnsealError) Error() string {
	return fmt.Sprintf("keys: key %s does not decrypt: wrong key-encryption key (this node's KEK id is %s), or the stored key was modified", e.KID, e.KEKID)
}

func (e *KeyUnsealError) Unwrap() error { return ErrUnseal }

// keySet is an immutable snapshot of the keys in use, replaced as a whole.
type keySet struct {
	active map[Spec]*loadedKey // unsealed, one per configured spec
	verify []*loadedKey        // active and retired keys, public half only used
}

type loadedKey struct {
	rec  store.SigningKey // metadata (with the endorsement), no SealedPriv
	pub  crypto.PublicKey
	priv crypto.Signer // nil unless active for a configured spec, or a retired key that keeps signing
}

func (k *loadedKey) key() Key {
	return Key{
		ID:        k.rec.ID,
		Purpose:   k.rec.Purpose,
		Algorithm: k.rec.Algorithm,
		Signer:    k.priv,
		Public:    k.pub,
		CreatedAt: k.rec.CreatedAt,
	}
}

// retiredSigns reports whether the retired keys of purpose keep signing
// during their overlap, so their private halves are unsealed too. Only
// VAPID keys do: a browser's push subscription is bound to the
// applicationServerKey it was made with, and the push service refuses a
// push signed by any other key until the app resubscribes.
func retiredSigns(p store.KeyPurpose) bool { return p == store.PurposeVAPID }

// verifies reports whether the key still verifies at now: it is active, or
// retired with its overlap not over.
func (k *loadedKey) verifies(now time.Time) bool {
	return k.rec.Status == store.KeyActive || k.rec.VerifyUntil.After(now)
}

// signingKeyAD is the associated data that binds a sealed private key to its
// kid (and so its public key), purpose and algorithm.
func signingKeyAD(kid string, purpose store.KeyPurpose, alg string) string {
	return "bridge-signing-key:v1:" + kid + ":" + string(purpose) + ":" + alg
}

// thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of pub.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// generate makes a new active key for spec, sealed and ready to store.
func (m *Manager) generate(spec Spec) (store.SigningKey, *loadedKey, error) {
	var priv crypto.Signer
	var err error
	switch spec.Algorithm {
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, m.opts.RSABits)
	default:
		err = fmt.Errorf("unsupported algorithm %q", spec.Algorithm)
	}
	if err != nil {
		return store.SigningKey{}, nil, fmt.Errorf("keys: generate %s key: %w", spec, err)
	}
	pub := priv.Public()
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return store.SigningKey{}, nil, fmt.Errorf("keys: encode %s public key: %w", spec, err)
	}
	kid, err := thumbprint(pub)
	if err != nil {
		return store.SigningKey{}, nil, fmt.Errorf("keys: thumbprint of %s key: %w", spec, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, nil, fmt.Errorf("keys: encode %s private key: %w", spec, err)
	}
	sealed, err := m.sealer.Seal(pkcs8, signingKeyAD(kid, spec.Purpose, spec.Algorithm))
	clear(pkcs8)
	if err != nil {
		return store.SigningKey{}, nil, fmt.Errorf("keys: seal %s key: %w", spec, err)
	}
	rec := store.SigningKey{
		ID:         kid,
		Purpose:    spec.Purpose,
		Algorithm:  spec.Algorithm,
		PublicDER:  pubDER,
		SealedPriv: sealed,
		Status:     store.KeyActive,
		CreatedAt:  m.opts.Now().UTC(),
	}
	return rec, &loadedKey{rec: metadata(rec), pub: pub, priv: priv}, nil
}

// build turns store records into a keySet. known holds keys already
// unsealed, by kid; only active keys of configured specs that are not known
// are unsealed. A broken active key is an error; a broken record that only
// verifies (retired, or of a spec not configured here) is left out with a
// warning, so it can verify nothing.
func (m *Manager) build(ctx context.Context, recs []store.SigningKey, known map[string]*loadedKey) (*keySet, error) {
	configured := map[Spec]bool{}
	for _, s := range m.opts.Specs {
		configured[s] = true
	}
	now := m.opts.Now()
	set := &keySet{active: map[Spec]*loadedKey{}}
	for _, rec := range recs {
		spec := Spec{rec.Purpose, rec.Algorithm}
		signs := rec.Status == store.KeyActive && configured[spec]
		if rec.Status != store.KeyActive && !rec.VerifyUntil.After(now) {
			continue // overlap over: verifies nothing any more
		}
		pub, err := parsePublic(rec)
		if err != nil {
			if signs {
				return nil, err
			}
			m.log.WarnContext(ctx, "signing key record left out", "kid", rec.ID, "err", err)
			continue
		}
		lk := &loadedKey{rec: metadata(rec), pub: pub}
		if signs {
			if _, dup := set.active[spec]; dup {
				return nil, fmt.Errorf("keys: more than one active %s key in the store", spec)
			}
			if k, ok := known[rec.ID]; ok && k.priv != nil && k.rec.Purpose == rec.Purpose && k.rec.Algorithm == rec.Algorithm {
				lk.priv = k.priv
			} else if lk.priv, err = m.unseal(rec, pub); err != nil {
				return nil, err
			}
			set.active[spec] = lk
		} else if rec.Status == store.KeyRetired && configured[spec] && retiredSigns(rec.Purpose) {
			if k, ok := known[rec.ID]; ok && k.priv != nil && k.rec.Purpose == rec.Purpose && k.rec.Algorithm == rec.Algorithm {
				lk.priv = k.priv
			} else if lk.priv, err = m.unseal(rec, pub); err != nil {
				// It could only sign for old subscriptions: those are
				// then treated as stale, the node keeps running.
				m.log.WarnContext(ctx, "retired signing key does not open; subscriptions made with it get no more pushes", "kid", rec.ID, "purpose", string(rec.Purpose), "err", err)
				lk.priv = nil
			}
		}
		set.verify = append(set.verify, lk)
	}
	for _, s := range m.opts.Specs {
		if _, ok := set.active[s]; !ok {
			return nil, fmt.Errorf("keys: no active %s key in the store", s)
		}
	}
	return set, nil
}

// parsePublic decodes a record's public key and checks that it suits the
// algorithm and that the kid is its thumbprint.
func parsePublic(rec store.SigningKey) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(rec.PublicDER)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: public key: %w", rec.ID, err)
	}
	if err := checkKeyType(rec.Algorithm, pub); err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", rec.ID, err)
	}
	tp, err := thumbprint(pub)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: thumbprint: %w", rec.ID, err)
	}
	if tp != rec.ID {
		return nil, fmt.Errorf("keys: key %s: the kid is not the thumbprint of its public key", rec.ID)
	}
	return pub, nil
}

func checkKeyType(alg string, pub crypto.PublicKey) error {
	ok := false
	switch k := pub.(type) {
	case ed25519.PublicKey:
		ok = alg == AlgEdDSA
	case *ecdsa.PublicKey:
		ok = alg == AlgES256 && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		if alg == AlgRS256 && k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is too small", k.N.BitLen())
		}
		ok = alg == AlgRS256
	}
	if !ok {
		return fmt.Errorf("a %T does not suit algorithm %q", pub, alg)
	}
	return nil
}

// unseal opens a record's private key and checks it is the private half of
// pub.
func (m *Manager) unseal(rec store.SigningKey, pub crypto.PublicKey) (crypto.Signer, error) {
	pkcs8, err := m.sealer.Open(rec.SealedPriv, signingKeyAD(rec.ID, rec.Purpose, rec.Algorithm))
	if err != nil {
		if errors.Is(err, ErrUnseal) {
			return nil, &KeyUnsealError{KID: rec.ID, KEKID: m.sealer.ID()}
		}
		return nil, err
	}
	defer clear(pkcs8)
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: private key: %w", rec.ID, err)
	}
	priv, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: key %s: a %T cannot sign", rec.ID, k)
	}
	eq, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(pub) {
		return nil, fmt.Errorf("keys: key %s: private key does not match the stored public key", rec.ID)
	}
	return priv, nil
}
