package pushauth_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// pushKID is the id of the push key the node signs with now.
func (e *env) pushKID() string {
	e.t.Helper()
	k, err := e.keys.Signer(store.PurposePush, keys.AlgEdDSA)
	if err != nil {
		e.t.Fatal(err)
	}
	return k.ID
}

// rotatePush rotates the push key as `bridge keys rotate --purpose push`
// does, and returns the new key's id.
func (e *env) rotatePush() string {
	e.t.Helper()
	old := e.pushKID()
	e.clock.Add(time.Minute)
	if _, err := e.keys.Rotate(e.ctx, store.PurposePush); err != nil {
		e.t.Fatal(err)
	}
	next := e.pushKID()
	if next == old {
		e.t.Fatal("the rotation left the push key as it was")
	}
	return next
}

// unendorsing passes rotations to the store without their endorsement: a
// push key put in the store by something other than the key manager.
type unendorsing struct{ store.SigningKeys }

func (u unendorsing) RotateSigningKey(ctx context.Context, next store.SigningKey, verifyUntil time.Time) ([]store.SigningKey, error) {
	next.Endorsement = ""
	return u.SigningKeys.RotateSigningKey(ctx, next, verifyUntil)
}

// rotateUnendorsed makes a new push key active that no key endorsed, has
// the node load it, and returns its id.
func (e *env) rotateUnendorsed() string {
	e.t.Helper()
	e.clock.Add(time.Minute)
	km, err := keys.Open(e.ctx, unendorsing{e.st}, e.sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposePush, Algorithm: keys.AlgEdDSA}}, Now: e.clock.Now}, discard())
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := km.Rotate(e.ctx, store.PurposePush); err != nil {
		e.t.Fatal(err)
	}
	if err := e.keys.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	recs, err := e.st.ListSigningKeys(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	kid := e.pushKID()
	for _, r := range recs {
		if r.ID == kid && r.Endorsement != "" {
			e.t.Fatalf("the unendorsed key %s was stored with an endorsement", kid)
		}
	}
	return kid
}

// signedBy is the kid of the push key that signed c.
func signedBy(t testing.TB, c authenticator.Challenge) string {
	t.Helper()
	p, err := protocol.Parse(c.Signed, protocol.TypChallenge, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return p.Header.KeyID
}

// approve runs one login of user answered by dev, and checks that dev
// accepted a challenge signed by kid and that the login was approved.
func (e *env) approve(dev *authenticator.Device, user, kid string) {
	e.t.Helper()
	e.clock.Add(time.Second)
	h := e.start(login(user))
	c := e.fetch(dev, h.ID)
	if got := signedBy(e.t, c); got != kid {
		e.t.Fatalf("the challenge is signed by %s, want the active key %s", got, kid)
	}
	if _, err := dev.Answer(e.ctx, c, protocol.Approve, h.Number); err != nil {
		e.t.Fatalf("answer: %v", err)
	}
	if o := e.wait(h.ID); !o.Approved() {
		e.t.Fatalf("outcome %+v, want approved", o)
	}
}

// TestPushKeyRotationFollowed: a device enrolled before push-key rotations
// accepts challenges signed by the new key: it refreshes the push keys and
// follows the endorsements from the key it pinned, however many rotations
// happened since it last looked.
func TestPushKeyRotationFollowed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rounds []int // rotations before each login
	}{
		{"one rotation", []int{1}},
		{"two rotations at once", []int{2}},
		{"a rotation before each of two logins", []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			dev := e.enroll("alice", authenticator.EnrollOptions{})
			pinned := dev.PinnedPushKey()
			if pinned != e.pushKID() {
				t.Fatalf("the device pinned %s, the node signs with %s", pinned, e.pushKID())
			}
			want := []string{pinned}
			for _, n := range tc.rounds {
				var kid string
				for range n {
					kid = e.rotatePush()
					want = append(want, kid)
				}
				e.approve(dev, "alice", kid)
			}
			got := dev.PushKeys()
			for _, k := range want {
				if !slices.Contains(got, k) {
					t.Errorf("the device does not trust %s; it trusts %v", k, got)
				}
			}
			if dev.PinnedPushKey() != pinned {
				t.Errorf("the pinned key changed to %s", dev.PinnedPushKey())
			}
		})
	}
}

// TestEnrolledAfterRotationPinsNewKey: a device enrolled after a rotation
// pins the new key from its QR code, trusts no older key, and approves.
func TestEnrolledAfterRotationPinsNewKey(t *testing.T) {
	e := newEnv(t)
	old := e.pushKID()
	kid := e.rotatePush()
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	if dev.PinnedPushKey() != kid {
		t.Fatalf("the device pinned %s, want the new key %s (old %s)", dev.PinnedPushKey(), kid, old)
	}
	if got := dev.PushKeys(); !slices.Equal(got, []string{kid}) {
		t.Fatalf("the device trusts %v, want only %s", got, kid)
	}
	e.approve(dev, "alice", kid)
}

// TestActivationFromBeforeRotation: a QR code made before a rotation pins
// the old key; the enrollment answer carries the endorsements, so the
// device trusts the new key from the start.
func TestActivationFromBeforeRotation(t *testing.T) {
	e := newEnv(t)
	old := e.pushKID()
	link := e.activation("alice")
	kid := e.rotatePush()
	dev, err := authenticator.Enroll(e.ctx, link, authenticator.EnrollOptions{Now: e.clock.Now})
	if err != nil {
		t.Fatalf("enroll with a QR code from before the rotation: %v", err)
	}
	if dev.PinnedPushKey() != old || !trusts(dev, kid) {
		t.Fatalf("the device pinned %s and trusts %v, want %s pinned and %s trusted", dev.PinnedPushKey(), dev.PushKeys(), old, kid)
	}
	e.approve(dev, "alice", kid)
}

// trusts reports whether dev trusts the push key kid.
func trusts(dev *authenticator.Device, kid string) bool {
	return slices.Contains(dev.PushKeys(), kid)
}
