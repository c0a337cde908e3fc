package pushauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// WakeKind says why a device is woken.
type WakeKind string

const (
	WakeChallenge WakeKind = "challenge" // a new challenge is waiting: fetch and show it
	WakeDismiss   WakeKind = "dismiss"   // the challenge was answered elsewhere or closed: remove it
)

// Wake is everything a push carries. It is deliberately opaque: Google and
// Apple see a challenge id and nothing about the user, the application, the
// IP or the number. The device fetches the details from the bridge.
type Wake struct {
	ChallengeID string
	Kind        WakeKind
	Expires     time.Time // when the challenge expires; providers drop the push after it
}

// Sender delivers wakes through one push provider.
type Sender interface {
	// Provider is the name stored with a device's push token: "fcm" or "apns".
	Provider() string
	// Send delivers w to the device with this push token. It returns an error
	// wrapping ErrTokenInvalid when the provider says the token is no longer
	// valid (unregistered, bad token): the engine then marks the device's
	// token stale and the device keeps working over long-poll.
	Send(ctx context.Context, token string, w Wake) error
}

// ErrTokenInvalid: the provider no longer accepts this device's push token.
var ErrTokenInvalid = errors.New("pushauth: push token no longer valid")

// MaxChallengeID bounds a challenge id on the wire (APNs' collapse-id
// limit; FCM's collapse key is kept alike).
const MaxChallengeID = 64

// Validate refuses a wake a sender cannot put on the wire: an unknown kind,
// or a challenge id that is empty, too long or not printable ASCII.
func (w Wake) Validate() error {
	switch w.Kind {
	case WakeChallenge, WakeDismiss:
	default:
		return fmt.Errorf("unknown wake kind %q", w.Kind)
	}
	if w.ChallengeID == "" || len(w.ChallengeID) > MaxChallengeID {
		return fmt.Errorf("challenge id must be 1 to %d bytes, got %d", MaxChallengeID, len(w.ChallengeID))
	}
	if strings.ContainsFunc(w.ChallengeID, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return errors.New("challenge id must be printable ASCII without spaces")
	}
	return nil
}
