package keys

import (
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// endorses reports whether the rotations of purpose are endorsed. Only push
// keys are: devices pin them (the QR code holds the thumbprint) and trust a
// new one only when a key they trust endorses it. OIDC and SAML relying
// parties take the new keys from the JWKS or metadata, and their keys are
// better kept from signing anything those protocols do not define.
func endorses(p store.KeyPurpose) bool { return p == store.PurposePush }

// endorse makes prev's endorsement of next, its successor: a compact JWS
// of type protocol.TypEndorsement whose kid is prev's id and whose payload
// is next's public JWK (kid and alg set) and the time.
func (m *Manager) endorse(prev, next *loadedKey) (string, error) {
	claims := protocol.EndorsementClaims{
		Key:      jose.JSONWebKey{Key: next.pub, KeyID: next.rec.ID, Algorithm: next.rec.Algorithm},
		IssuedAt: m.opts.Now().Unix(),
	}
	jws, err := protocol.Sign(prev.rec.Algorithm, prev.priv, protocol.TypEndorsement, prev.rec.ID, false, claims)
	if err != nil {
		return "", fmt.Errorf("keys: key %s endorsing %s: %w", prev.rec.ID, next.rec.ID, err)
	}
	return jws, nil
}

// Endorsements returns the endorsements of the keys of purpose that this
// node knows, oldest first: those of the active key and of the retired
// keys still within their overlap. Each is the JWS by which the key a
// rotation retired named the key that replaced it, so a device that pinned
// an older key can follow the chain to the active one. Like JWKS it does no
// I/O.
func (m *Manager) Endorsements(purpose store.KeyPurpose) []string {
	now := m.opts.Now()
	var endorsed []*loadedKey
	for _, v := range m.set.Load().verify {
		if v.rec.Purpose == purpose && v.rec.Endorsement != "" && v.verifies(now) {
			endorsed = append(endorsed, v)
		}
	}
	slices.SortStableFunc(endorsed, func(a, b *loadedKey) int { return a.rec.CreatedAt.Compare(b.rec.CreatedAt) })
	var out []string
	for _, v := range endorsed {
		out = append(out, v.rec.Endorsement)
	}
	return out
}
