package pushauth

import (
	"context"
	"errors"
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
