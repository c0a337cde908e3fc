package keys

import (
	"context"
	"crypto"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

var vapidSpec = Spec{store.PurposeVAPID, AlgES256}

// signerIDs are the kids Signers returns, in order, each checked to carry
// a private key that matches its public key.
func signerIDs(t *testing.T, m *Manager, spec Spec) []string {
	t.Helper()
	var ids []string
	for _, k := range m.Signers(spec.Purpose, spec.Algorithm) {
		pub, ok := k.Signer.Public().(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(k.Public) {
			t.Fatalf("key %s: signer %T does not match its public key", k.ID, k.Signer)
		}
		ids = append(ids, k.ID)
	}
	return ids
}

// A rotated VAPID key keeps signing, on this node and on another that
// loads it from the store, until its overlap ends; other purposes sign
// with their active key only.
func TestRetiredVAPIDKeysKeepSigning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newClock()
	st, s := openStore(t), newSealer(t)
	opts := testOptions(clock)
	opts.Specs = []Spec{{store.PurposePush, AlgEdDSA}, vapidSpec}
	opts.RotationOverlap = 24 * time.Hour
	m := openManager(t, st, s, opts)
	first := signerIDs(t, m, vapidSpec)
	if len(first) != 1 {
		t.Fatalf("after first start Signers = %v, want the one active key", first)
	}

	clock.Add(time.Hour)
	for _, p := range []store.KeyPurpose{store.PurposeVAPID, store.PurposePush} {
		if _, err := m.Rotate(ctx, p); err != nil {
			t.Fatalf("Rotate %s: %v", p, err)
		}
	}
	active, err := m.Signer(store.PurposeVAPID, AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if active.ID == first[0] {
		t.Fatal("rotation kept the VAPID key")
	}
	other := openManager(t, st, s, opts) // unseals the retired key from the store
	for name, mm := range map[string]*Manager{"rotating node": m, "other node": other} {
		if got := signerIDs(t, mm, vapidSpec); len(got) != 2 || got[0] != active.ID || got[1] != first[0] {
			t.Errorf("%s: Signers = %v, want [%s %s]", name, got, active.ID, first[0])
		}
		if got := signerIDs(t, mm, Spec{store.PurposePush, AlgEdDSA}); len(got) != 1 {
			t.Errorf("%s: push Signers = %v, want only the active key", name, got)
		}
	}

	clock.Add(24*time.Hour - time.Second)
	if got := signerIDs(t, other, vapidSpec); len(got) != 2 {
		t.Errorf("a second before the overlap ends Signers = %v", got)
	}
	clock.Add(time.Second)
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for name, mm := range map[string]*Manager{"rotating node": m, "other node": other} {
		if got := signerIDs(t, mm, vapidSpec); len(got) != 1 || got[0] != active.ID {
			t.Errorf("%s after the overlap: Signers = %v, want [%s]", name, got, active.ID)
		}
	}
}

// A retired VAPID key that does not open is left out of Signers with a
// warning; the node still starts and signs with the active key.
func TestBrokenRetiredVAPIDKeyIsLeftOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, s := openStore(t), newSealer(t)
	opts := testOptions(nil)
	opts.Specs = []Spec{vapidSpec}
	m := openManager(t, st, s, opts)
	old := signerIDs(t, m, vapidSpec)[0]
	if _, err := m.Rotate(ctx, store.PurposeVAPID); err != nil {
		t.Fatal(err)
	}
	broken := &hookStore{SigningKeys: st, list: func(recs []store.SigningKey) []store.SigningKey {
		for i := range recs {
			if recs[i].ID == old {
				recs[i].SealedPriv = append([]byte(nil), recs[i].SealedPriv...)
				recs[i].SealedPriv[len(recs[i].SealedPriv)-1] ^= 1
			}
		}
		return recs
	}}
	m2 := openManager(t, broken, s, opts)
	if got := signerIDs(t, m2, vapidSpec); len(got) != 1 || got[0] == old {
		t.Errorf("Signers = %v, want only the new active key", got)
	}
}
