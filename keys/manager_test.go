package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/store"
)

func TestFirstStartGeneratesDefaultKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s := openStore(t), newSealer(t)
	m := openManager(t, st, s, testOptions(nil))

	recs, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(DefaultSpecs()) {
		t.Fatalf("got %d keys, want %d", len(recs), len(DefaultSpecs()))
	}
	seen := map[Spec]bool{}
	for _, r := range recs {
		if r.Status != store.KeyActive {
			t.Errorf("key %s: status %s", r.ID, r.Status)
		}
		if r.SealedPriv != nil {
			t.Errorf("List returned sealed private key of %s", r.ID)
		}
		seen[Spec{r.Purpose, r.Algorithm}] = true
	}
	for _, spec := range DefaultSpecs() {
		if !seen[spec] {
			t.Errorf("no key for %s", spec)
		}
		k, err := m.Signer(spec.Purpose, spec.Algorithm)
		if err != nil {
			t.Fatalf("Signer(%s): %v", spec, err)
		}
		if tp, _ := thumbprint(k.Public); tp != k.ID {
			t.Errorf("%s: kid %s is not the thumbprint %s", spec, k.ID, tp)
		}
		if k.Purpose != spec.Purpose || k.Algorithm != spec.Algorithm {
			t.Errorf("Signer(%s) gave %s/%s", spec, k.Purpose, k.Algorithm)
		}
	}
	if _, err := m.Signer(store.PurposeSAML, AlgES256); !errors.Is(err, ErrNoKey) {
		t.Errorf("Signer(saml, ES256) = %v, want ErrNoKey", err)
	}
	if rsaKey, _ := m.Signer(store.PurposeSAML, AlgRS256); rsaKey.Public.(*rsa.PublicKey).N.BitLen() != 2048 {
		t.Errorf("RSA key is not 2048 bits")
	}
}

func TestReopenLoadsSameKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bridge.db")
	s := newSealer(t)
	st := openStoreAt(t, path)
	first := activeIDs(t, openManager(t, st, s, testOptions(nil)), DefaultSpecs())
	st.Close()

	st2 := openStoreAt(t, path)
	m2 := openManager(t, st2, s, testOptions(nil))
	if second := activeIDs(t, m2, DefaultSpecs()); !equalMaps(first, second) {
		t.Errorf("kids changed on reopen:\n%v\n%v", first, second)
	}
	recs, err := m2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(DefaultSpecs()) {
		t.Errorf("reopen made new keys: %d in store", len(recs))
	}
}

func TestWrongKEKIsAClearError(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	openManager(t, st, newSealer(t), testOptions(nil))

	other := newSealer(t)
	_, err := Open(context.Background(), st, other, testOptions(nil), nil)
	if err == nil {
		t.Fatal("Open with another KEK succeeded")
	}
	if !errors.Is(err, ErrUnseal) {
		t.Errorf("error %v does not wrap ErrUnseal", err)
	}
	var ue *KeyUnsealError
	if !errors.As(err, &ue) || ue.KID == "" {
		t.Fatalf("error %v is not a KeyUnsealError with a kid", err)
	}
	want := "key " + ue.KID + " does not decrypt: wrong key-encryption key (this node's KEK id is " + other.ID() + ")"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestSignaturesVerify(t *testing.T) {
	t.Parallel()
	m := openManager(t, openStore(t), newSealer(t), testOptions(nil))
	msg := []byte("challenge 42")
	digest := sha256.Sum256(msg)
	for _, spec := range DefaultSpecs() {
		t.Run(spec.String(), func(t *testing.T) {
			k, err := m.Signer(spec.Purpose, spec.Algorithm)
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			switch pub := k.Public.(type) {
			case ed25519.PublicKey:
				sig, err := k.Signer.Sign(nil, msg, crypto.Hash(0))
				if err != nil {
					t.Fatal(err)
				}
				ok = ed25519.Verify(pub, msg, sig) && !ed25519.Verify(pub, []byte("other"), sig)
			case *ecdsa.PublicKey:
				sig, err := k.Signer.Sign(nil, digest[:], crypto.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				ok = ecdsa.VerifyASN1(pub, digest[:], sig)
			case *rsa.PublicKey:
				sig, err := k.Signer.Sign(nil, digest[:], crypto.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
			default:
				t.Fatalf("unexpected public key %T", pub)
			}
			if !ok {
				t.Error("signature does not verify with the public key")
			}

			// A JWS signed with the key verifies with the JWKS entry.
			js, err := jose.NewSigner(jose.SigningKey{
				Algorithm: jose.SignatureAlgorithm(k.Algorithm),
				Key:       jose.JSONWebKey{Key: k.Signer, KeyID: k.ID},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := js.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			compact, _ := obj.CompactSerialize()
			parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(k.Algorithm)})
			if err != nil {
				t.Fatal(err)
			}
			jwks := m.JWKS(spec.Purpose)
			found := jwks.Key(k.ID)
			if len(found) != 1 || !found[0].IsPublic() {
				t.Fatalf("JWKS has %d public keys for %s", len(found), k.ID)
			}
			if out, err := parsed.Verify(found[0]); err != nil || !bytes.Equal(out, msg) {
				t.Errorf("JWS does not verify with the JWKS key: %v", err)
			}
		})
	}
}

func TestRotationOverlap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newClock()
	opts := testOptions(clock)
	opts.RotationOverlap = 24 * time.Hour
	m := openManager(t, openStore(t), newSealer(t), opts)
	before := activeIDs(t, m, DefaultSpecs())

	clock.Add(time.Hour)
	touched, err := m.Rotate(ctx, store.PurposeOIDC)
	if err != nil {
		t.Fatal(err)
	}
	var active, retired int
	for _, r := range touched {
		if r.SealedPriv != nil {
			t.Errorf("Rotate returned the sealed key of %s", r.ID)
		}
		switch r.Status {
		case store.KeyActive:
			active++
		case store.KeyRetired:
			retired++
			if want := clock.Now().Add(24 * time.Hour); !r.VerifyUntil.Equal(want) {
				t.Errorf("retired %s verifies until %v, want %v", r.ID, r.VerifyUntil, want)
			}
		}
	}
	if active != 0 || retired != 2 {
		t.Errorf("Rotate returned %d active and %d retired keys, want 0 and 2", active, retired)
	}

	after := activeIDs(t, m, DefaultSpecs())
	for _, spec := range DefaultSpecs() {
		changed := before[spec] != after[spec]
		if changed != (spec.Purpose == store.PurposeOIDC) {
			t.Errorf("%s: kid changed = %v", spec, changed)
		}
	}

	oldES := before[Spec{store.PurposeOIDC, AlgES256}]
	if !hasKey(m.VerificationKeys(store.PurposeOIDC), oldES) {
		t.Error("retired key left the verification keys before the overlap ended")
	}
	for _, k := range m.VerificationKeys(store.PurposeOIDC) {
		if k.ID == after[Spec{store.PurposeOIDC, AlgES256}] && !k.NotAfter.IsZero() {
			t.Error("active key has a NotAfter")
		}
		if k.ID == oldES && k.NotAfter.IsZero() {
			t.Error("retired key has no NotAfter")
		}
	}
	if n := len(m.JWKS(store.PurposeOIDC).Keys); n != 4 {
		t.Errorf("JWKS during the overlap has %d keys, want 4", n)
	}

	clock.Add(24*time.Hour - time.Second)
	if !hasKey(m.VerificationKeys(store.PurposeOIDC), oldES) {
		t.Error("retired key left a second before the overlap ended")
	}
	clock.Add(time.Second)
	if hasKey(m.VerificationKeys(store.PurposeOIDC), oldES) {
		t.Error("retired key still verifies after the overlap")
	}
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.VerificationKeys(store.PurposeOIDC); len(got) != 2 || hasKey(got, oldES) {
		t.Errorf("after the overlap and a refresh: %d keys", len(got))
	}
	if _, err := m.Rotate(ctx, "other"); err == nil {
		t.Error("Rotate of an unknown purpose succeeded")
	}
}

func TestConcurrentOpenMakesOneKeyPerSpec(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bridge.db")
	s := newSealer(t)
	const nodes = 2
	stores := make([]store.Store, nodes)
	for i := range stores {
		stores[i] = openStoreAt(t, path) // one handle per node, one database
	}

	// Every node lists the (empty) store before any node creates a key, so
	// all of them race on every spec.
	var arrived sync.WaitGroup
	arrived.Add(nodes)
	var conflicts atomic.Int32
	managers := make([]*Manager, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		var once sync.Once
		hs := &hookStore{SigningKeys: stores[i]}
		hs.create = func(ctx context.Context, k store.SigningKey) error {
			once.Do(func() { arrived.Done(); arrived.Wait() })
			err := stores[i].CreateSigningKey(ctx, k)
			if errors.Is(err, store.ErrConflict) {
				conflicts.Add(1)
			}
			return err
		}
		wg.Go(func() {
			managers[i], errs[i] = Open(ctx, hs, s, testOptions(nil), slog.New(slog.DiscardHandler))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	if got, want := int(conflicts.Load()), (nodes-1)*len(DefaultSpecs()); got != want {
		t.Errorf("%d conflicts, want %d", got, want)
	}
	ids := activeIDs(t, managers[0], DefaultSpecs())
	for i := 1; i < nodes; i++ {
		if other := activeIDs(t, managers[i], DefaultSpecs()); !equalMaps(ids, other) {
			t.Errorf("node %d signs with other keys:\n%v\n%v", i, ids, other)
		}
	}
	recs, err := stores[0].ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(DefaultSpecs()) {
		t.Errorf("store holds %d keys, want %d", len(recs), len(DefaultSpecs()))
	}
}

func TestSealedKeyAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s := openStore(t), newSealer(t)
	m := openManager(t, st, s, testOptions(nil))
	recs, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := newSealer(t)
	for _, rec := range recs {
		k, err := m.Signer(rec.Purpose, rec.Algorithm)
		if err != nil {
			t.Fatal(err)
		}
		pkcs8, err := x509.MarshalPKCS8PrivateKey(k.Signer)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(rec.SealedPriv, pkcs8) {
			t.Errorf("%s: the store holds the plaintext PKCS#8", rec.ID)
		}
		ad := signingKeyAD(rec.ID, rec.Purpose, rec.Algorithm)
		if pt, err := s.Open(rec.SealedPriv, ad); err != nil || !bytes.Equal(pt, pkcs8) {
			t.Errorf("%s: does not open to its PKCS#8 with the right KEK: %v", rec.ID, err)
		}
		if _, err := other.Open(rec.SealedPriv, ad); !errors.Is(err, ErrUnseal) {
			t.Errorf("%s: opened with another KEK: %v", rec.ID, err)
		}
		if _, err := s.Open(rec.SealedPriv, signingKeyAD(rec.ID, store.PurposeSAML, "ES256")); !errors.Is(err, ErrUnseal) {
			t.Errorf("%s: opened with another purpose/alg in the ad: %v", rec.ID, err)
		}
		for _, i := range []int{0, 1, 13, len(rec.SealedPriv) / 2, len(rec.SealedPriv) - 1} {
			bad := bytes.Clone(rec.SealedPriv)
			bad[i] ^= 0x01
			if _, err := s.Open(bad, ad); !errors.Is(err, ErrUnseal) {
				t.Errorf("%s: opened with byte %d changed: %v", rec.ID, i, err)
			}
		}
	}
}

func TestRefreshPicksUpRotationByAnotherManager(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s := openStore(t), newSealer(t)
	specs := []Spec{{store.PurposePush, AlgEdDSA}, {store.PurposeOIDC, AlgES256}}
	opts := testOptions(nil)
	opts.Specs = specs
	m1 := openManager(t, st, s, opts)
	m2 := openManager(t, st, s, opts)
	old := activeIDs(t, m1, specs)

	if _, err := m2.Rotate(ctx, store.PurposePush); err != nil {
		t.Fatal(err)
	}
	pushSpec := specs[0]
	if activeIDs(t, m1, specs)[pushSpec] != old[pushSpec] {
		t.Fatal("m1 changed keys before a refresh")
	}
	if err := m1.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	now1, now2 := activeIDs(t, m1, specs), activeIDs(t, m2, specs)
	if now1[pushSpec] == old[pushSpec] || !equalMaps(now1, now2) {
		t.Errorf("after refresh m1 signs with %v, m2 with %v (old %v)", now1, now2, old)
	}
	if !hasKey(m1.VerificationKeys(store.PurposePush), old[pushSpec]) {
		t.Error("m1 dropped the retired push key during the overlap")
	}

	// Run does the same on its own.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts.RefreshInterval = 10 * time.Millisecond
	m3 := openManager(t, st, s, opts)
	done := make(chan struct{})
	go func() { m3.Run(runCtx); close(done) }()
	if _, err := m2.Rotate(ctx, store.PurposeOIDC); err != nil {
		t.Fatal(err)
	}
	want := activeIDs(t, m2, specs)
	for deadline := time.Now().Add(20 * time.Second); !equalMaps(activeIDs(t, m3, specs), want); {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the rotation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestSwappedPublicKeyIsRefused(t *testing.T) {
	t.Parallel()
	st, s := openStore(t), newSealer(t)
	opts := testOptions(nil)
	opts.Specs = []Spec{{store.PurposePush, AlgEdDSA}}
	openManager(t, st, s, opts)

	pub, _, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	hs := &hookStore{SigningKeys: st, list: func(recs []store.SigningKey) []store.SigningKey {
		for i := range recs {
			recs[i].PublicDER = der
		}
		return recs
	}}
	_, err := Open(context.Background(), hs, s, opts, nil)
	if err == nil || !strings.Contains(err.Error(), "not the thumbprint") {
		t.Errorf("Open with a swapped public key: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want []string // substrings of the error; none means valid
	}{
		{"zero is valid", Options{}, nil},
		{"defaults are valid", Options{Specs: DefaultSpecs(), RSABits: 3072}, nil},
		{"empty specs", Options{Specs: []Spec{}}, []string{"no key specs"}},
		{"bad purpose and alg", Options{Specs: []Spec{{"mail", "HS256"}}}, []string{"unknown purpose", "unsupported algorithm"}},
		{"vapid is ES256", Options{Specs: []Spec{{store.PurposeVAPID, AlgES256}}}, nil},
		{"vapid with another alg", Options{Specs: []Spec{{store.PurposeVAPID, AlgEdDSA}}}, []string{"VAPID keys are ES256"}},
		{"duplicate", Options{Specs: []Spec{{store.PurposePush, AlgEdDSA}, {store.PurposePush, AlgEdDSA}}}, []string{"listed twice"}},
		{"small RSA and negative times", Options{RSABits: 1024, RotationOverlap: -1, RefreshInterval: -1}, []string{"too small", "overlap", "refresh interval"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func hasKey(keys []PublicKey, id string) bool {
	for _, k := range keys {
		if k.ID == id {
			return true
		}
	}
	return false
}

func equalMaps(a, b map[Spec]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
