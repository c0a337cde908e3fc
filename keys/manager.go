package keys

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/store"
)

// Algorithms the Manager can generate and load.
const (
	AlgEdDSA = "EdDSA" // Ed25519
	AlgES256 = "ES256" // ECDSA P-256 with SHA-256
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
)

// Defaults for Options.
const (
	DefaultRotationOverlap = 7 * 24 * time.Hour
	DefaultRefreshInterval = time.Minute
	DefaultRSABits         = 3072
	// MinRSABits is the smallest RSA modulus generated or loaded.
	MinRSABits = 2048
)

// ErrNoKey is returned by Signer when no active key exists for the purpose
// and algorithm asked for.
var ErrNoKey = errors.New("keys: no active signing key")

// Spec names a key the Manager keeps active: a purpose and an algorithm.
type Spec struct {
	Purpose   store.KeyPurpose
	Algorithm string
}

func (s Spec) String() string { return string(s.Purpose) + "/" + s.Algorithm }

// DefaultSpecs are the keys the bridge signs with: push challenges with
// Ed25519, OIDC tokens with ES256 (RS256 for clients that need it), SAML with
// RS256.
func DefaultSpecs() []Spec {
	return []Spec{
		{Purpose: store.PurposePush, Algorithm: AlgEdDSA},
		{Purpose: store.PurposeOIDC, Algorithm: AlgES256},
		{Purpose: store.PurposeOIDC, Algorithm: AlgRS256},
		{Purpose: store.PurposeSAML, Algorithm: AlgRS256},
	}
}

// Options tune a Manager. Zero values take the defaults.
type Options struct {
	// Specs are the keys kept active; nil means DefaultSpecs(), an empty
	// non-nil list is an error.
	Specs []Spec
	// RotationOverlap is how long a retired key still verifies.
	RotationOverlap time.Duration
	// RefreshInterval is how often Run re-reads the store.
	RefreshInterval time.Duration
	// RSABits is the modulus size of generated RSA keys (at least 2048).
	RSABits int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Created, if set, is called for each key this node generated at Open
	// because none was active (first start, or a new spec), so the caller
	// can audit it. The record carries no private material.
	Created func(ctx context.Context, k store.SigningKey)
}

func (o Options) withDefaults() Options {
	if o.Specs == nil {
		o.Specs = DefaultSpecs()
	}
	if o.RotationOverlap == 0 {
		o.RotationOverlap = DefaultRotationOverlap
	}
	if o.RefreshInterval == 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.RSABits == 0 {
		o.RSABits = DefaultRSABits
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var errs []error
	if o.Specs != nil && len(o.Specs) == 0 {
		errs = append(errs, errors.New("keys: no key specs"))
	}
	seen := map[Spec]bool{}
	for _, s := range o.Specs {
		switch s.Purpose {
		case store.PurposePush, store.PurposeOIDC, store.PurposeSAML:
		case store.PurposeVAPID:
			if s.Algorithm != AlgES256 {
				errs = append(errs, fmt.Errorf("keys: spec %s: VAPID keys are ES256 (RFC 8292)", s))
			}
		default:
			errs = append(errs, fmt.Errorf("keys: spec %s: unknown purpose %q", s, s.Purpose))
		}
		switch s.Algorithm {
		case AlgEdDSA, AlgES256, AlgRS256:
		default:
			errs = append(errs, fmt.Errorf("keys: spec %s: unsupported algorithm %q (want EdDSA, ES256 or RS256)", s, s.Algorithm))
		}
		if seen[s] {
			errs = append(errs, fmt.Errorf("keys: spec %s listed twice", s))
		}
		seen[s] = true
	}
	if o.RotationOverlap < 0 {
		errs = append(errs, fmt.Errorf("keys: rotation overlap %v is negative", o.RotationOverlap))
	}
	if o.RefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("keys: refresh interval %v is negative", o.RefreshInterval))
	}
	if o.RSABits != 0 && o.RSABits < MinRSABits {
		errs = append(errs, fmt.Errorf("keys: RSA keys of %d bits are too small (at least %d)", o.RSABits, MinRSABits))
	}
	return errors.Join(errs...)
}

// Key is an active signing key.
type Key struct {
	ID        string // kid
	Purpose   store.KeyPurpose
	Algorithm string
	// Signer is an ed25519.PrivateKey, *ecdsa.PrivateKey or *rsa.PrivateKey.
	// ECDSA signatures from Sign are ASN.1 DER; JWS wants raw R||S, which
	// go-jose produces itself when given the *ecdsa.PrivateKey.
	Signer    crypto.Signer
	Public    crypto.PublicKey
	CreatedAt time.Time
}

// PublicKey is a key that verifies: the active key or a retired key still
// within its overlap.
type PublicKey struct {
	ID        string
	Algorithm string
	Key       crypto.PublicKey
	// NotAfter is when a retired key stops verifying; zero for an active key.
	NotAfter time.Time
}

// Manager keeps the server's signing keys. It is safe for concurrent use;
// Signer, VerificationKeys and JWKS do no I/O.
type Manager struct {
	st     store.SigningKeys
	sealer *Sealer
	opts   Options
	log    *slog.Logger

	mu  sync.Mutex // serialises loads, so an older read never replaces a newer one
	set atomic.Pointer[keySet]
}

// Open loads the server keys from st, generating the active key of every spec
// that has none (the first start). Several nodes may open at once: the store
// keeps one active key per purpose and algorithm and the losers load the
// winner's key. A key that does not decrypt under sealer's KEK is an error.
func Open(ctx context.Context, st store.SigningKeys, sealer *Sealer, opts Options, logger *slog.Logger) (*Manager, error) {
	if st == nil || sealer == nil {
		return nil, errors.New("keys: Open needs a store and a sealer")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{st: st, sealer: sealer, opts: opts.withDefaults(), log: logger}

	recs, err := st.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list signing keys: %w", err)
	}
	active := map[Spec]bool{}
	for _, r := range recs {
		if r.Status == store.KeyActive {
			active[Spec{r.Purpose, r.Algorithm}] = true
		}
	}
	fresh := map[string]*loadedKey{}
	for _, spec := range m.opts.Specs {
		if active[spec] {
			continue
		}
		rec, lk, err := m.generate(spec)
		if err != nil {
			return nil, err
		}
		switch err := st.CreateSigningKey(ctx, rec); {
		case errors.Is(err, store.ErrConflict):
			logger.InfoContext(ctx, "another node created the signing key first; using it", "spec", spec.String())
		case err != nil:
			return nil, fmt.Errorf("keys: store new %s key: %w", spec, err)
		default:
			fresh[rec.ID] = lk
			logger.InfoContext(ctx, "generated signing key", "kid", rec.ID, "purpose", string(spec.Purpose), "alg", spec.Algorithm)
			if m.opts.Created != nil {
				pub := rec
				pub.SealedPriv = nil
				m.opts.Created(ctx, pub)
			}
		}
	}
	if err := m.reload(ctx, fresh); err != nil {
		return nil, err
	}
	logger.InfoContext(ctx, "signing keys loaded", "kek_id", sealer.ID(), "active", len(m.set.Load().active), "verifying", len(m.set.Load().verify))
	return m, nil
}

// Signer returns the active key for purpose and algorithm.
func (m *Manager) Signer(purpose store.KeyPurpose, alg string) (Key, error) {
	s := m.set.Load()
	lk, ok := s.active[Spec{purpose, alg}]
	if !ok {
		return Key{}, fmt.Errorf("%w for %s/%s", ErrNoKey, purpose, alg)
	}
	return lk.key(), nil
}

// Signers returns the keys of purpose and algorithm that still sign, with
// their private halves: the active key first, then, for a purpose whose
// retired keys keep signing (VAPID: a browser subscription made with an
// older key accepts only pushes signed with that key until the app
// resubscribes), the retired keys whose overlap has not ended, newest
// first. For other purposes it is the active key alone. It does no I/O;
// the private keys never leave the process through it other than as
// crypto.Signer values.
func (m *Manager) Signers(purpose store.KeyPurpose, alg string) []Key {
	s := m.set.Load()
	now := m.opts.Now()
	var out []Key
	if lk, ok := s.active[Spec{purpose, alg}]; ok {
		out = append(out, lk.key())
	}
	for _, v := range s.verify {
		if v.priv == nil || v.rec.Status == store.KeyActive || v.rec.Purpose != purpose || v.rec.Algorithm != alg || !v.verifies(now) {
			continue
		}
		out = append(out, v.key())
	}
	return out
}

// VerificationKeys returns the keys that verify signatures of purpose: the
// active keys and the retired keys whose overlap has not ended, newest first.
func (m *Manager) VerificationKeys(purpose store.KeyPurpose) []PublicKey {
	now := m.opts.Now()
	var out []PublicKey
	for _, v := range m.set.Load().verify {
		if v.rec.Purpose != purpose || !v.verifies(now) {
			continue
		}
		pk := PublicKey{ID: v.rec.ID, Algorithm: v.rec.Algorithm, Key: v.pub}
		if v.rec.Status != store.KeyActive {
			pk.NotAfter = v.rec.VerifyUntil
		}
		out = append(out, pk)
	}
	return out
}

// JWKS returns the verification keys of purpose as a JSON Web Key Set
// (public keys only), for an OIDC jwks_uri or a device's pinned key.
func (m *Manager) JWKS(purpose store.KeyPurpose) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range m.VerificationKeys(purpose) {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
	}
	return set
}

// Rotate makes a new active key for every spec of purpose. The keys they
// replace keep verifying for RotationOverlap. Like
// store.RotateSigningKey it returns the keys it retired (metadata only:
// SealedPriv is nil); the new keys are what Signer and List show.
//
// For push keys the retiring key first endorses its successor (see
// Endorsements), and the endorsement is stored with the new key in the
// rotation's transaction, so devices that pinned the old key follow the
// rotation. Rotate re-reads the store before it signs, so the endorsing
// key is the one the store holds as active even if another node rotated
// since this one last loaded. If another node rotates in the moment
// between that read and the rotation, the store retires a key other than
// the one that endorsed: Rotate reports it as an error (the rotation is
// done; devices that pinned the key retired unendorsed must re-enroll).
func (m *Manager) Rotate(ctx context.Context, purpose store.KeyPurpose) ([]store.SigningKey, error) {
	var specs []Spec
	for _, s := range m.opts.Specs {
		if s.Purpose == purpose {
			specs = append(specs, s)
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("keys: no key of purpose %q is configured", purpose)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reloadLocked(ctx, nil); err != nil {
		return nil, err
	}
	current := m.set.Load()
	var out []store.SigningKey
	fresh := map[string]*loadedKey{}
	var rotErr error
	for _, spec := range specs {
		rec, lk, err := m.generate(spec)
		if err != nil {
			rotErr = err
			break
		}
		prev := current.active[spec] // present: reloadLocked checks every spec has one
		if endorses(spec.Purpose) {
			if rec.Endorsement, err = m.endorse(prev, lk); err != nil {
				rotErr = err
				break
			}
			lk.rec.Endorsement = rec.Endorsement
		}
		retired, err := m.st.RotateSigningKey(ctx, rec, m.opts.Now().Add(m.opts.RotationOverlap))
		if err != nil {
			rotErr = fmt.Errorf("keys: rotate %s: %w", spec, err)
			break
		}
		fresh[rec.ID] = lk
		var retiredIDs []string
		for _, r := range retired {
			out = append(out, metadata(r))
			retiredIDs = append(retiredIDs, r.ID)
			m.log.InfoContext(ctx, "retired signing key", "kid", r.ID, "purpose", string(r.Purpose), "alg", r.Algorithm, "verify_until", r.VerifyUntil)
		}
		m.log.InfoContext(ctx, "rotated signing key", "kid", rec.ID, "purpose", string(spec.Purpose), "alg", spec.Algorithm, "endorsed", rec.Endorsement != "")
		if rec.Endorsement != "" && (len(retired) != 1 || retired[0].ID != prev.rec.ID) {
			rotErr = fmt.Errorf("keys: rotate %s: another node rotated at the same time: %s is active, endorsed by %s, but the rotation retired %v, which did not endorse it; devices that pinned %v must re-enroll",
				spec, rec.ID, prev.rec.ID, retiredIDs, retiredIDs)
			break
		}
	}
	// Load what was rotated even if a later spec failed, so this node signs
	// with the keys the store now holds.
	if err := m.reloadLocked(ctx, fresh); err != nil && rotErr == nil {
		rotErr = err
	}
	return out, rotErr
}

// List returns every stored key, newest first, as metadata: SealedPriv is
// always nil.
func (m *Manager) List(ctx context.Context) ([]store.SigningKey, error) {
	recs, err := m.st.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list signing keys: %w", err)
	}
	for i := range recs {
		recs[i] = metadata(recs[i])
	}
	return recs, nil
}

// Refresh re-reads the store, so a rotation made elsewhere (the CLI, another
// node) takes effect here. On error the keys in use stay as they were.
func (m *Manager) Refresh(ctx context.Context) error {
	return m.reload(ctx, nil)
}

// Run calls Refresh every RefreshInterval until ctx ends. Failures are
// logged and retried at the next tick.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
				m.log.ErrorContext(ctx, "refresh signing keys", "err", err)
			}
		}
	}
}

// reload reads the store and publishes a new keySet. Private keys already
// unsealed (in the current set, or fresh from generation) are reused.
func (m *Manager) reload(ctx context.Context, fresh map[string]*loadedKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reloadLocked(ctx, fresh)
}

// reloadLocked is reload with m.mu held.
func (m *Manager) reloadLocked(ctx context.Context, fresh map[string]*loadedKey) error {
	recs, err := m.st.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	known := map[string]*loadedKey{}
	if old := m.set.Load(); old != nil {
		for _, lk := range old.verify { // the active keys are among them
			if lk.priv != nil {
				known[lk.rec.ID] = lk
			}
		}
	}
	for id, lk := range fresh {
		known[id] = lk
	}
	set, err := m.build(ctx, recs, known)
	if err != nil {
		return err
	}
	if old := m.set.Load(); old != nil {
		for spec, lk := range set.active {
			if o, ok := old.active[spec]; !ok || o.rec.ID != lk.rec.ID {
				m.log.InfoContext(ctx, "signing key now active", "kid", lk.rec.ID, "purpose", string(spec.Purpose), "alg", spec.Algorithm)
			}
		}
	}
	m.set.Store(set)
	return nil
}

// metadata strips the sealed private key from a record.
func metadata(r store.SigningKey) store.SigningKey {
	r.SealedPriv = nil
	return r
}
