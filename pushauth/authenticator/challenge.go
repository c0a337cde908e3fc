package authenticator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// Challenge is a login waiting for the user's decision, verified: signed
// by a trusted push key, issued by the bridge the device enrolled with, for
// its user, not expired.
type Challenge struct {
	ID       string
	Signed   string // the challenge JWS exactly as received (its hash is answered)
	State    string // "pending", or how it closed
	Claims   protocol.ChallengeClaims
	Received time.Time
}

// Issued is when the server issued the challenge.
func (c Challenge) Issued() time.Time { return time.Unix(c.Claims.IssuedAt, 0) }

// Expires is when the challenge expires.
func (c Challenge) Expires() time.Time { return time.Unix(c.Claims.Expires, 0) }

// ClockSkew is how far past its expiry a challenge is still accepted, for
// clocks that disagree.
const ClockSkew = 30 * time.Second

// MaxWait is the longest long-poll the protocol allows.
const MaxWait = 30 * time.Second

var (
	// ErrInvalidChallenge: the device refused a challenge that failed
	// verification. Never show such a challenge to the user.
	ErrInvalidChallenge = errors.New("authenticator: invalid challenge")
	// ErrUntrustedKey: the challenge is signed by a push key the device
	// does not trust, even after refreshing the push keys. It comes with
	// ErrInvalidChallenge.
	ErrUntrustedKey = errors.New("signed by a push key the device does not trust")
	// ErrNumberRequired: approving this challenge needs the number shown
	// on the login screen, with the number of digits the challenge says.
	ErrNumberRequired = errors.New("authenticator: approving needs the number shown on the login screen")
)

// ChallengeError is a challenge the device refused (errors.Is
// ErrInvalidChallenge) or could not check (for example, the push keys could
// not be refreshed).
type ChallengeError struct {
	ID  string
	Err error
}

func (e *ChallengeError) Error() string {
	if errors.Is(e.Err, ErrInvalidChallenge) {
		return fmt.Sprintf("authenticator: invalid challenge %s: %v", truncate(e.ID, 40), e.Err)
	}
	return fmt.Sprintf("authenticator: challenge %s: %v", truncate(e.ID, 40), e.Err)
}

func (e *ChallengeError) Unwrap() error { return e.Err }

// PendingError lists the challenges Pending left out.
type PendingError struct {
	Refused []*ChallengeError
}

func (e *PendingError) Error() string {
	msgs := make([]string, len(e.Refused))
	for i, r := range e.Refused {
		msgs[i] = r.Error()
	}
	return fmt.Sprintf("authenticator: %d pending challenge(s) refused: %s", len(e.Refused), strings.Join(msgs, "; "))
}

func (e *PendingError) Unwrap() []error {
	errs := make([]error, len(e.Refused))
	for i, r := range e.Refused {
		errs[i] = r
	}
	return errs
}

// invalid makes the error of a challenge that fails verification: it is
// ErrInvalidChallenge and says why.
func invalid(format string, args ...any) error {
	return invalidError{fmt.Errorf(format, args...)}
}

type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Unwrap() error        { return e.err }
func (e invalidError) Is(target error) bool { return target == ErrInvalidChallenge }

// unknownKidRetry is how long a kid that stayed unknown after a refresh
// is not worth another refresh, so that a bad challenge left pending does
// not make every poll fetch the push keys.
const unknownKidRetry = time.Minute

// verify checks item, listed or fetched as wantID, and returns it as a
// Challenge. *refreshed says whether this call already refreshed the push
// keys (once per call at most).
func (d *Device) verify(ctx context.Context, item protocol.ChallengeItem, wantID string, refreshed *bool) (Challenge, error) {
	if item.ID != wantID {
		return Challenge{}, invalid("listed as %q, asked for %q", truncate(item.ID, 40), wantID)
	}
	if err := checkID(item.ID); err != nil {
		return Challenge{}, invalid("%v", err)
	}
	p, err := protocol.Parse(item.Signed, protocol.TypChallenge, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Challenge{}, invalid("%w", err)
	}
	kid := p.Header.KeyID
	key, ok := d.trustedKey(kid)
	if !ok && !*refreshed && d.worthRefresh(kid) {
		*refreshed = true
		rerr := d.RefreshPushKeys(ctx)
		if key, ok = d.trustedKey(kid); !ok {
			if rerr != nil && !errors.Is(rerr, ErrInvalidEndorsement) {
				// The keys could not be fetched: the challenge is not
				// known to be bad.
				return Challenge{}, fmt.Errorf("push key %s is unknown and refreshing the push keys failed: %w", truncate(kid, 64), rerr)
			}
			d.mu.Lock()
			if d.stillUnknown == nil || len(d.stillUnknown) > 100 {
				d.stillUnknown = map[string]time.Time{}
			}
			d.stillUnknown[kid] = d.now()
			d.mu.Unlock()
		}
	}
	if !ok {
		return Challenge{}, invalid("%w (kid %q)", ErrUntrustedKey, truncate(kid, 64))
	}
	var claims protocol.ChallengeClaims
	if err := p.Verify(key, &claims); err != nil {
		return Challenge{}, invalid("%w", err)
	}
	now := d.now()
	switch {
	case claims.Issuer != d.base:
		return Challenge{}, invalid("issuer %q is not the bridge %q", truncate(claims.Issuer, 100), d.base)
	case claims.User != d.user:
		return Challenge{}, invalid("it is for user %q, not %q", truncate(claims.User, 100), d.user)
	case claims.ID != wantID:
		return Challenge{}, invalid("its cid %q is not %q", truncate(claims.ID, 40), wantID)
	case now.After(time.Unix(claims.Expires, 0).Add(ClockSkew)):
		return Challenge{}, invalid("expired at %s", time.Unix(claims.Expires, 0).UTC().Format(time.RFC3339))
	case claims.NumberDigits < 0 || claims.NumberDigits > 16:
		return Challenge{}, invalid("nm %d is out of range", claims.NumberDigits)
	}
	return Challenge{ID: item.ID, Signed: item.Signed, State: item.State, Claims: claims, Received: now}, nil
}

// worthRefresh says whether an unknown kid is worth refreshing the push
// keys for.
func (d *Device) worthRefresh(kid string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.stillUnknown[kid]
	return !ok || d.now().Sub(at) >= unknownKidRetry || d.now().Before(at)
}

// Pending long-polls for the user's pending challenges: the server answers
// as soon as there is one, or with none after wait (0 to MaxWait; 0 asks
// without waiting). If ctx has no deadline, the request gives up after
// wait plus 30 s.
//
// Every challenge is verified. Those that fail are left out and reported
// in a *PendingError, returned TOGETHER WITH the challenges that passed:
// callers must look at the challenges even when err is a *PendingError.
// Any other error (transport, *ServerError) comes with no challenges.
//
// A challenge the device was showing that is no longer listed was answered
// elsewhere or closed: the caller should dismiss it. known names the
// challenges the caller already has: the server then waits until the
// pending set differs from them (a new one, or one of them closed).
func (d *Device) Pending(ctx context.Context, wait time.Duration, known ...string) ([]Challenge, error) {
	wait = min(max(wait, 0), MaxWait)
	secs := int((wait + time.Second - 1) / time.Second)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait+requestTimeout)
		defer cancel()
	}
	var resp protocol.PendingResponse
	q := url.Values{"wait": {strconv.Itoa(secs)}}
	if len(known) > 0 {
		q.Set("known", strings.Join(known, ","))
	}
	if err := d.call(ctx, http.MethodGet, protocol.PathPending, q, nil, &resp, http.StatusOK); err != nil {
		return nil, err
	}
	var (
		out       []Challenge
		perr      PendingError
		seen      = map[string]bool{}
		refreshed bool
	)
	for _, item := range resp.Challenges {
		if seen[item.ID] {
			continue
		}
		seen[item.ID] = true
		c, err := d.verify(ctx, item, item.ID, &refreshed)
		if err != nil {
			perr.Refused = append(perr.Refused, &ChallengeError{ID: item.ID, Err: err})
			continue
		}
		out = append(out, c)
	}
	if len(perr.Refused) > 0 {
		return out, &perr
	}
	return out, nil
}

// Fetch gets one challenge by id (a push carries only the id) and verifies
// it. A challenge that fails verification is a *ChallengeError.
func (d *Device) Fetch(ctx context.Context, id string) (Challenge, error) {
	if err := checkID(id); err != nil {
		return Challenge{}, err
	}
	var item protocol.ChallengeItem
	if err := d.call(ctx, http.MethodGet, protocol.PathChallenge+id, nil, nil, &item, http.StatusOK); err != nil {
		return Challenge{}, err
	}
	var refreshed bool
	c, err := d.verify(ctx, item, id, &refreshed)
	if err != nil {
		return Challenge{}, &ChallengeError{ID: id, Err: err}
	}
	return c, nil
}

// Answer sends the user's decision (protocol.Approve, Deny or Fraud) on c.
// number is what the user typed from the login screen: approving a
// challenge with number matching needs it (ErrNumberRequired otherwise);
// for a challenge without number matching it is not sent. It returns the
// state the server recorded; an answer the server refuses (already
// answered, expired) is a *ServerError.
func (d *Device) Answer(ctx context.Context, c Challenge, decision, number string) (state string, err error) {
	switch decision {
	case protocol.Approve, protocol.Deny, protocol.Fraud:
	default:
		return "", fmt.Errorf("authenticator: decision %q is not %s, %s or %s", decision, protocol.Approve, protocol.Deny, protocol.Fraud)
	}
	nm := c.Claims.NumberDigits
	if nm == 0 {
		number = ""
	} else if decision == protocol.Approve || number != "" {
		if len(number) != nm || strings.Trim(number, "0123456789") != "" {
			return "", fmt.Errorf("%w (%d digits)", ErrNumberRequired, nm)
		}
	}
	signed, err := d.SignedAnswer(c, decision, number)
	if err != nil {
		return "", err
	}
	return d.PostAnswer(ctx, c.ID, signed)
}

// SignedAnswer signs an answer to c with the device key, without checking
// decision or number (a non-empty number is always included). It is for
// testing and for custom clients; Answer is SignedAnswer plus PostAnswer
// with the checks.
func (d *Device) SignedAnswer(c Challenge, decision, number string) (string, error) {
	return d.Sign(protocol.TypAnswer, protocol.AnswerClaims{
		ID:       c.ID,
		Hash:     protocol.ChallengeHash(c.Signed),
		Decision: decision,
		Number:   number,
		IssuedAt: d.now().Unix(),
	})
}

// PostAnswer posts a signed answer (SignedAnswer, or one a test forged,
// replayed or modified) for challenge id, and returns the state the server
// recorded. It is for testing and for custom clients.
func (d *Device) PostAnswer(ctx context.Context, id, signedAnswer string) (state string, err error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	var resp protocol.AnswerResponse
	path := protocol.PathChallenge + id + protocol.SuffixAnswer
	if err := d.call(ctx, http.MethodPost, path, nil, protocol.AnswerRequest{Answer: signedAnswer}, &resp, http.StatusOK); err != nil {
		return "", err
	}
	return resp.State, nil
}

// UpdatePush registers a new push token with the server (provider
// protocol.ProviderFCM or ProviderAPNs), or, with both empty, makes the
// device poll-only. Save keeps the change.
func (d *Device) UpdatePush(ctx context.Context, provider, token string) error {
	if err := checkPush(provider, token); err != nil {
		return fmt.Errorf("authenticator: %w", err)
	}
	if err := d.UpdateDevice(ctx, protocol.DeviceUpdate{PushProvider: &provider, PushToken: &token}); err != nil {
		return err
	}
	d.mu.Lock()
	d.pushProvider, d.pushToken = provider, token
	d.mu.Unlock()
	return nil
}

// UpdateDevice sends a device update as it is (push token, app version,
// posture). It is for custom clients; UpdatePush is the checked form.
func (d *Device) UpdateDevice(ctx context.Context, u protocol.DeviceUpdate) error {
	return d.call(ctx, http.MethodPut, protocol.PathDevice, nil, u, nil, http.StatusNoContent)
}
