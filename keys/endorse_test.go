package keys

import (
	"context"
	"crypto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// checkEndorsement checks that jws is prev's endorsement of next, issued at
// iat, as a device checks it: typ, alg and kid in the header, the signature
// by prev's public key (and not by next's), and a payload naming next's
// public key, whose thumbprint is next's kid.
func checkEndorsement(t *testing.T, jws string, prev, next Key, iat time.Time) {
	t.Helper()
	if jws == "" {
		t.Fatalf("%s has no endorsement by %s", next.ID, prev.ID)
	}
	p, err := protocol.Parse(jws, protocol.TypEndorsement, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("endorsement of %s: %v", next.ID, err)
	}
	if p.Header.KeyID != prev.ID || p.Header.Algorithm != AlgEdDSA {
		t.Errorf("endorsement of %s: header kid %q alg %q, want %q %q", next.ID, p.Header.KeyID, p.Header.Algorithm, prev.ID, AlgEdDSA)
	}
	var wrong protocol.EndorsementClaims
	if err := p.Verify(next.Public, &wrong); err == nil {
		t.Errorf("the endorsement of %s verifies with its own key", next.ID)
	}
	var claims protocol.EndorsementClaims
	if err := p.Verify(prev.Public, &claims); err != nil {
		t.Fatalf("the endorsement of %s does not verify with the retired key %s: %v", next.ID, prev.ID, err)
	}
	if !claims.Key.IsPublic() || claims.Key.KeyID != next.ID || claims.Key.Algorithm != AlgEdDSA {
		t.Errorf("endorsed key: public %v kid %q alg %q, want a public key, kid %q, alg %q", claims.Key.IsPublic(), claims.Key.KeyID, claims.Key.Algorithm, next.ID, AlgEdDSA)
	}
	if tp, err := thumbprint(claims.Key.Key); err != nil || tp != next.ID {
		t.Errorf("endorsed key has thumbprint %q (%v), want %s", tp, err, next.ID)
	}
	if eq, ok := claims.Key.Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(next.Public) {
		t.Errorf("endorsed key %T is not the successor's public key", claims.Key.Key)
	}
	if claims.IssuedAt != iat.Unix() {
		t.Errorf("endorsement iat %d, want %d", claims.IssuedAt, iat.Unix())
	}
}

// storedKeys maps kid to record.
func storedKeys(t *testing.T, m *Manager) map[string]store.SigningKey {
	t.Helper()
	recs, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.SigningKey{}
	for _, r := range recs {
		out[r.ID] = r
	}
	return out
}

func pushSigner(t *testing.T, m *Manager) Key {
	t.Helper()
	k, err := m.Signer(store.PurposePush, AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRotationEndorsesSuccessor: a push rotation stores the retiring key's
// endorsement of its successor; a second rotation chains; Endorsements
// lists those of the keys still verifying, oldest first; OIDC rotations are
// not endorsed.
func TestRotationEndorsesSuccessor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newClock()
	opts := testOptions(clock)
	opts.Specs = []Spec{{store.PurposePush, AlgEdDSA}, {store.PurposeOIDC, AlgES256}}
	opts.RotationOverlap = 24 * time.Hour
	st, s := openStore(t), newSealer(t)
	m := openManager(t, st, s, opts)
	k1 := pushSigner(t, m)
	if got := m.Endorsements(store.PurposePush); len(got) != 0 {
		t.Fatalf("endorsements before any rotation: %v", got)
	}

	clock.Add(time.Hour)
	if _, err := m.Rotate(ctx, store.PurposePush); err != nil {
		t.Fatal(err)
	}
	k2 := pushSigner(t, m)
	recs := storedKeys(t, m)
	if recs[k1.ID].Endorsement != "" {
		t.Errorf("the first key %s has an endorsement", k1.ID)
	}
	e2 := recs[k2.ID].Endorsement
	checkEndorsement(t, e2, k1, k2, clock.Now())
	if got := m.Endorsements(store.PurposePush); !slices.Equal(got, []string{e2}) {
		t.Errorf("Endorsements after one rotation: %d, want the one of %s", len(got), k2.ID)
	}

	oidcBefore := activeIDs(t, m, opts.Specs)[opts.Specs[1]]
	if _, err := m.Rotate(ctx, store.PurposeOIDC); err != nil {
		t.Fatal(err)
	}
	oidcAfter := activeIDs(t, m, opts.Specs)[opts.Specs[1]]
	if oidcAfter == oidcBefore || storedKeys(t, m)[oidcAfter].Endorsement != "" || len(m.Endorsements(store.PurposeOIDC)) != 0 {
		t.Errorf("the OIDC rotation %s -> %s was endorsed", oidcBefore, oidcAfter)
	}

	clock.Add(time.Hour)
	if _, err := m.Rotate(ctx, store.PurposePush); err != nil {
		t.Fatal(err)
	}
	k3 := pushSigner(t, m)
	recs = storedKeys(t, m)
	if recs[k2.ID].Status != store.KeyRetired || recs[k2.ID].Endorsement != e2 {
		t.Errorf("retired %s: status %s, endorsement kept %v", k2.ID, recs[k2.ID].Status, recs[k2.ID].Endorsement == e2)
	}
	e3 := recs[k3.ID].Endorsement
	checkEndorsement(t, e3, k2, k3, clock.Now())
	if got := m.Endorsements(store.PurposePush); !slices.Equal(got, []string{e2, e3}) {
		t.Fatalf("Endorsements after two rotations: %d, want those of %s and %s, oldest first", len(got), k2.ID, k3.ID)
	}

	// A device that pinned k1 reaches k3 by following the list in order.
	trusted := map[string]crypto.PublicKey{k1.ID: k1.Public}
	for _, e := range m.Endorsements(store.PurposePush) {
		p, err := protocol.Parse(e, protocol.TypEndorsement, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		var c protocol.EndorsementClaims
		if pub, ok := trusted[p.Header.KeyID]; ok && p.Verify(pub, &c) == nil {
			trusted[c.Key.KeyID] = c.Key.Key
		}
	}
	if _, ok := trusted[k3.ID]; !ok {
		t.Errorf("following the endorsements from %s does not reach %s", k1.ID, k3.ID)
	}

	// They are durable: another node loads them from the store.
	other := openManager(t, st, s, opts)
	if got := other.Endorsements(store.PurposePush); !slices.Equal(got, []string{e2, e3}) {
		t.Errorf("another node lists %d endorsements, want the 2 stored", len(got))
	}

	// An endorsement goes when the key it endorses stops verifying: k2
	// was retired at the second rotation, now, for the 24-hour overlap.
	clock.Add(24*time.Hour - time.Second)
	if got := m.Endorsements(store.PurposePush); !slices.Equal(got, []string{e2, e3}) {
		t.Errorf("a second before %s's overlap ends: %d endorsements, want 2", k2.ID, len(got))
	}
	clock.Add(time.Second)
	if got := m.Endorsements(store.PurposePush); !slices.Equal(got, []string{e3}) {
		t.Errorf("after %s's overlap: %d endorsements, want only that of %s", k2.ID, len(got), k3.ID)
	}
}

// TestRotationEndorsedByTheStoresActiveKey: a node whose key set is stale
// (another node rotated since it loaded) endorses with the key the store
// actually retires, not the one it last signed with.
func TestRotationEndorsedByTheStoresActiveKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newClock()
	opts := testOptions(clock)
	opts.Specs = []Spec{{store.PurposePush, AlgEdDSA}}
	st, s := openStore(t), newSealer(t)
	stale, other := openManager(t, st, s, opts), openManager(t, st, s, opts)
	k1 := pushSigner(t, stale)

	clock.Add(time.Minute)
	if _, err := other.Rotate(ctx, store.PurposePush); err != nil {
		t.Fatal(err)
	}
	k2 := pushSigner(t, other)
	if pushSigner(t, stale).ID != k1.ID {
		t.Fatal("the stale node refreshed by itself")
	}

	clock.Add(time.Minute)
	retired, err := stale.Rotate(ctx, store.PurposePush)
	if err != nil {
		t.Fatal(err)
	}
	if len(retired) != 1 || retired[0].ID != k2.ID {
		t.Fatalf("retired %v, want %s", retired, k2.ID)
	}
	k3 := pushSigner(t, stale)
	recs := storedKeys(t, stale)
	checkEndorsement(t, recs[k2.ID].Endorsement, k1, k2, clock.Now().Add(-time.Minute))
	checkEndorsement(t, recs[k3.ID].Endorsement, k2, k3, clock.Now())
}

// TestRotationRaceIsReported: when another node rotates between this
// node's read and its rotation, the store retires a key that did not
// endorse the new one; Rotate says so.
func TestRotationRaceIsReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := testOptions(nil)
	opts.Specs = []Spec{{store.PurposePush, AlgEdDSA}}
	st, s := openStore(t), newSealer(t)
	other := openManager(t, st, s, opts)
	var between string
	hs := &hookStore{SigningKeys: st}
	hs.rotate = func(ctx context.Context, next store.SigningKey, until time.Time) ([]store.SigningKey, error) {
		if _, err := other.Rotate(ctx, store.PurposePush); err != nil {
			return nil, err
		}
		between = pushSigner(t, other).ID
		return st.RotateSigningKey(ctx, next, until)
	}
	m := openManager(t, hs, s, opts)
	_, err := m.Rotate(ctx, store.PurposePush)
	if err == nil || !strings.Contains(err.Error(), "another node rotated at the same time") || !strings.Contains(err.Error(), between) {
		t.Fatalf("Rotate across another node's rotation: %v, want it reported, naming %s", err, between)
	}
	// The rotation itself is done and loaded.
	recs := storedKeys(t, m)
	if k := pushSigner(t, m); recs[k.ID].Status != store.KeyActive || recs[between].Status != store.KeyRetired {
		t.Errorf("after the race: active %s (%s), %s is %s", k.ID, recs[k.ID].Status, between, recs[between].Status)
	}
}
