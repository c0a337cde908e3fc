package keys

import (
	"context"
	"crypto"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bridge-idp/bridge/store"
)

// countingKeys counts store calls.
type countingKeys struct {
	store.SigningKeys
	n atomic.Int64
}

func (c *countingKeys) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	c.n.Add(1)
	return c.SigningKeys.ListSigningKeys(ctx)
}

func (c *countingKeys) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	c.n.Add(1)
	return c.SigningKeys.CreateSigningKey(ctx, k)
}

func TestSigningPathDoesNoStoreIO(t *testing.T) {
	t.Parallel()
	cs := &countingKeys{SigningKeys: openStore(t)}
	m := openManager(t, cs, newSealer(t), testOptions(nil))
	before := cs.n.Load()
	for range 100 {
		for _, spec := range DefaultSpecs() {
			if _, err := m.Signer(spec.Purpose, spec.Algorithm); err != nil {
				t.Fatal(err)
			}
			m.VerificationKeys(spec.Purpose)
			m.JWKS(spec.Purpose)
			m.Endorsements(spec.Purpose)
		}
	}
	if n := cs.n.Load() - before; n != 0 {
		t.Errorf("the signing path made %d store calls", n)
	}
}

// TestSignWhileRotating runs signers against rotations and refreshes; with
// -race it shows the key set is published safely.
func TestSignWhileRotating(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s := openStore(t), newSealer(t)
	opts := testOptions(nil)
	opts.Specs = []Spec{{store.PurposePush, AlgEdDSA}, {store.PurposeOIDC, AlgES256}}
	m := openManager(t, st, s, opts)
	other := openManager(t, st, s, opts)

	stop := make(chan struct{})
	var signed atomic.Int64
	var wg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt()
	const signers = 4
	running := make(chan struct{}, signers) // each signer reports its first signature
	for range signers {
		wg.Go(func() {
			digest := sha256.Sum256([]byte("x"))
			first := true
			defer func() {
				if first { // failed before signing: unblock the wait below
					running <- struct{}{}
				}
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				k, err := m.Signer(store.PurposeOIDC, AlgES256)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := k.Signer.Sign(nil, digest[:], crypto.SHA256); err != nil {
					t.Error(err)
					return
				}
				m.VerificationKeys(store.PurposeOIDC)
				signed.Add(1)
				if first {
					first = false
					running <- struct{}{}
				}
			}
		})
	}
	// Rotate only once every signer is running, so signing and rotating
	// really overlap however the scheduler starts the goroutines.
	for range signers {
		<-running
	}
	before := signed.Load()
	for range 5 {
		if _, err := m.Rotate(ctx, store.PurposeOIDC); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Rotate(ctx, store.PurposeOIDC); err != nil {
			t.Fatal(err)
		}
		if err := m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	halt()
	if signed.Load() < signers {
		t.Errorf("only %d signatures were made (started at %d)", signed.Load(), before)
	}
	if a, b := activeIDs(t, m, opts.Specs), activeIDs(t, other, opts.Specs); a[opts.Specs[1]] != b[opts.Specs[1]] {
		t.Errorf("after refresh the nodes disagree: %v %v", a, b)
	}
}
