package keys

import (
	"context"
	"testing"

	"github.com/bridge-idp/bridge/store"
)

// TestCreatedReportsGeneratedKeys: Open reports each key it generates (so
// serve can audit first-start key generation), and only those.
func TestCreatedReportsGeneratedKeys(t *testing.T) {
	st, s := openStore(t), newSealer(t)
	var got []store.SigningKey
	opts := testOptions(nil)
	opts.Created = func(_ context.Context, k store.SigningKey) { got = append(got, k) }
	openManager(t, st, s, opts)
	if len(got) != len(DefaultSpecs()) {
		t.Fatalf("first start reported %d generated keys, want %d", len(got), len(DefaultSpecs()))
	}
	for _, k := range got {
		if k.SealedPriv != nil || k.Status != store.KeyActive || k.ID == "" {
			t.Fatalf("reported key %+v: want an active key without private material", k)
		}
	}
	got = nil
	openManager(t, st, s, opts)
	if len(got) != 0 {
		t.Fatalf("second start reported %d generated keys, want 0", len(got))
	}
}
