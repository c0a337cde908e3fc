package authenticator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// ErrInvalidEndorsement: an endorsement signed by a trusted push key did not
// check out (bad signature or bad key). Other endorsements still apply.
var ErrInvalidEndorsement = errors.New("authenticator: invalid push-key endorsement")

// maxEndorsements bounds the endorsements the device looks at.
const maxEndorsements = 64

// RefreshPushKeys fetches the server's push keys and trusts the ones
// endorsed by a key it already trusts, following chains (A endorses B,
// B endorses C). A key the server lists without such an endorsement is not
// trusted, and trust only grows: re-enroll to start again. The new keys are
// in memory: Save keeps them.
//
// Challenges signed by an unknown key call RefreshPushKeys by themselves.
func (d *Device) RefreshPushKeys(ctx context.Context) error {
	d.refreshMu.Lock()
	defer d.refreshMu.Unlock()
	var resp protocol.PushKeysResponse
	if err := d.call(ctx, http.MethodGet, protocol.PathPushKeys, nil, nil, &resp, http.StatusOK); err != nil {
		return err
	}
	return d.endorse(resp.Endorsements)
}

// endorse adds the keys endorsed, directly or through a chain, by a
// trusted key. Endorsements by keys the device does not trust are ignored
// (for example those of keys older than the one it pinned); those by a
// trusted key that do not verify, and those that do not parse, are
// returned as errors.
func (d *Device) endorse(endorsements []string) error {
	if len(endorsements) > maxEndorsements {
		endorsements = endorsements[:maxEndorsements]
	}
	var (
		parsed []*protocol.Parsed
		errs   []error
	)
	for i, e := range endorsements {
		p, err := protocol.Parse(e, protocol.TypEndorsement, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			errs = append(errs, fmt.Errorf("%w %d: %w", ErrInvalidEndorsement, i, err))
			continue
		}
		parsed = append(parsed, p)
	}

	d.mu.Lock()
	trusted := maps.Clone(d.trusted)
	d.mu.Unlock()

	done := make([]bool, len(parsed))
	for progress := true; progress; {
		progress = false
		for i, p := range parsed {
			signer, ok := trusted[p.Header.KeyID]
			if done[i] || !ok {
				continue
			}
			done[i] = true
			var claims protocol.EndorsementClaims
			if err := p.Verify(signer, &claims); err != nil {
				errs = append(errs, fmt.Errorf("%w by %s: %w", ErrInvalidEndorsement, p.Header.KeyID, err))
				continue
			}
			key, err := pushKey(claims.Key)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w by %s: %w", ErrInvalidEndorsement, p.Header.KeyID, err))
				continue
			}
			if _, ok := trusted[key.KeyID]; !ok {
				trusted[key.KeyID] = key
				progress = true
			}
		}
	}

	d.mu.Lock()
	for kid, k := range trusted {
		if _, ok := d.trusted[kid]; !ok {
			d.trusted[kid] = k
			delete(d.stillUnknown, kid)
		}
	}
	d.mu.Unlock()
	return errors.Join(errs...)
}
