package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/bridge-idp/bridge/store"
)

func passkeyDevice(id, userName string) store.Device {
	d := device(id, userName)
	d.Platform, d.Kind = "web", store.DeviceKindWebAuthn
	d.WebAuthn = &store.WebAuthnCredential{
		CredentialID: []byte{1, 2, 3, 0, 255}, PublicKey: []byte{0xa5, 1, 2, 3, 0x26}, SignCount: 7,
		AAGUID: bytes.Repeat([]byte{0xad}, 16), AttestationFormat: "packed", AttestationType: "basic_full", AttestationVerified: true, AttestationTrusted: true,
		BackupEligible: true, BackedUp: false, Transports: []string{"internal", "hybrid"}, RPID: "example.org",
	}
	return d
}

// testDevicesWebAuthn: a passkey device's kind and credential round-trip,
// a JWS device keeps neither, and inconsistent records are refused.
func testDevicesWebAuthn(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	d := passkeyDevice("pk-1", "nina")
	must(t, s.CreateDevice(ctx(), d), "create passkey device")
	must(t, s.CreateDevice(ctx(), device("jws-1", "nina")), "create JWS device")
	got, err := s.GetDevice(ctx(), "pk-1")
	must(t, err, "get")
	w := got.WebAuthn
	if got.Kind != store.DeviceKindWebAuthn || w == nil || !bytes.Equal(w.CredentialID, d.WebAuthn.CredentialID) ||
		!bytes.Equal(w.PublicKey, d.WebAuthn.PublicKey) || w.SignCount != 7 || !bytes.Equal(w.AAGUID, d.WebAuthn.AAGUID) ||
		w.AttestationFormat != "packed" || w.AttestationType != "basic_full" || !w.AttestationVerified || !w.AttestationTrusted || !w.BackupEligible || w.BackedUp ||
		!slices.Equal(w.Transports, d.WebAuthn.Transports) || w.RPID != "example.org" {
		t.Fatalf("passkey round trip: %+v %+v", got, w)
	}
	list, err := s.ListDevices(ctx(), "nina")
	must(t, err, "list")
	if len(list) != 2 || list[0].WebAuthn == nil && list[1].WebAuthn == nil {
		t.Fatalf("list lost the passkey: %+v", list)
	}
	jws, _ := s.GetDevice(ctx(), "jws-1")
	if jws.Kind != store.DeviceKindJWS || jws.WebAuthn != nil {
		t.Fatalf("JWS device: kind %q, passkey %+v", jws.Kind, jws.WebAuthn)
	}
	got, err = s.UpdateDevice(ctx(), "pk-1", func(d store.Device) (store.Device, error) {
		d.WebAuthn.SignCount, d.WebAuthn.BackedUp = 9, true
		return d, nil
	})
	must(t, err, "update counter")
	if again, _ := s.GetDevice(ctx(), "pk-1"); again.WebAuthn.SignCount != 9 || !again.WebAuthn.BackedUp || got.WebAuthn.SignCount != 9 {
		t.Fatalf("after update: %+v", again.WebAuthn)
	}

	noKey := passkeyDevice("pk-2", "nina")
	noKey.WebAuthn = nil
	wantErr(t, s.CreateDevice(ctx(), noKey), store.ErrInvalid, "webauthn device without a passkey")
	noID := passkeyDevice("pk-3", "nina")
	noID.WebAuthn.CredentialID = nil
	wantErr(t, s.CreateDevice(ctx(), noID), store.ErrInvalid, "passkey without a credential id")
	mixed := passkeyDevice("pk-4", "nina")
	mixed.Kind = store.DeviceKindJWS
	wantErr(t, s.CreateDevice(ctx(), mixed), store.ErrInvalid, "JWS device with a passkey")
	odd := device("pk-5", "nina")
	odd.Kind = "magic"
	wantErr(t, s.CreateDevice(ctx(), odd), store.ErrInvalid, "unknown kind")
	_, err = s.UpdateDevice(ctx(), "pk-1", func(d store.Device) (store.Device, error) { d.WebAuthn = nil; return d, nil })
	wantErr(t, err, store.ErrInvalid, "update dropping the passkey")
}

// errNotGreater is what the counter check below refuses with.
var errNotGreater = errors.New("sign counter did not increase")

// testDevicesSignCounterRace: the sign counter's check and set run in
// UpdateDevice's function, inside its transaction, so that two nodes
// given the same assertion (the same counter) at once accept it once:
// every counter value is taken by exactly one writer.
func testDevicesSignCounterRace(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o) // two nodes
	must(t, a.CreateDevice(ctx(), passkeyDevice("pk-c", "olga")), "create")
	const writers, counters = 8, 5 // each writer offers counters 8..12
	taken := make([][]uint32, writers)
	ok, errs := race(writers, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		for c := uint32(8); c < 8+counters; c++ {
			_, err := s.UpdateDevice(ctx(), "pk-c", func(d store.Device) (store.Device, error) {
				if c <= d.WebAuthn.SignCount {
					return d, errNotGreater
				}
				d.WebAuthn.SignCount = c
				return d, nil
			})
			switch {
			case err == nil:
				taken[i] = append(taken[i], c)
			case !errors.Is(err, errNotGreater):
				return err
			}
		}
		return nil
	})
	if ok != writers {
		t.Fatalf("updates failed: %v", errs)
	}
	seen := map[uint32]int{}
	for _, cs := range taken {
		for _, c := range cs {
			seen[c]++
		}
	}
	for c, n := range seen {
		if n != 1 {
			t.Errorf("counter %d accepted %d times", c, n)
		}
	}
	got, _ := a.GetDevice(ctx(), "pk-c")
	if got.WebAuthn.SignCount != 8+counters-1 {
		t.Fatalf("final counter %d, want %d", got.WebAuthn.SignCount, 8+counters-1)
	}
}
