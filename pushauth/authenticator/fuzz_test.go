package authenticator

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// FuzzVerifyChallenge feeds challenge JWSs from the network to verify: it
// must never panic, and must accept only what the trusted push key signed
// for this device.
func FuzzVerifyChallenge(f *testing.F) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pk, err := pushKey(jose.JSONWebKey{Key: key.Public()})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	d := &Device{
		base: "https://bridge.example", id: "dev_1", user: "alice", alg: protocol.AlgEdDSA,
		pinned: pk.KeyID, trusted: map[string]jose.JSONWebKey{pk.KeyID: pk},
		now: func() time.Time { return now },
	}
	claims := protocol.ChallengeClaims{Issuer: d.base, ID: "ch_1", User: "alice", AppName: "VPN",
		IssuedAt: now.Unix(), Expires: now.Add(time.Minute).Unix(), NumberDigits: 2}
	valid, err := protocol.Sign(protocol.AlgEdDSA, key, protocol.TypChallenge, pk.KeyID, false, claims)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	f.Add("ch_1", valid)
	f.Add("ch_1", parts[0]+"."+parts[1]+".")
	f.Add("ch_1", parts[0]+".e30."+parts[2])
	f.Add("ch_2", valid)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, id, signed string) {
		refreshed := true // no network: an unknown kid is refused
		c, err := d.verify(t.Context(), protocol.ChallengeItem{ID: id, State: "pending", Signed: signed}, id, &refreshed)
		if err != nil {
			return
		}
		p, perr := protocol.Parse(signed, protocol.TypChallenge, []jose.SignatureAlgorithm{jose.EdDSA})
		var got protocol.ChallengeClaims
		if perr != nil || p.Verify(key.Public(), &got) != nil {
			t.Fatalf("accepted %q, which the push key did not sign", signed)
		}
		if c.ID != id || c.Claims.ID != id || c.Claims.User != d.user || c.Claims.Issuer != d.base || c.Signed != signed {
			t.Fatalf("accepted %+v for id %q", c, id)
		}
	})
}
