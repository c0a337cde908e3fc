package pushauth

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// Errors Start returns. Front ends map them to their own answers.
var (
	// ErrNoDevice: the user has no active device to ask.
	ErrNoDevice = errors.New("pushauth: the user has no enrolled device")
	// ErrNoQualifyingDevice: the user has devices, but none that the
	// application's device-key policy (Request.DeviceKeys) accepts. It
	// is also ErrNoDevice, so a front end that does not tell them apart
	// treats it as no device.
	ErrNoQualifyingDevice = fmt.Errorf("%w that this application's device-key policy accepts", ErrNoDevice)
	// ErrLocked: pushes to the user are locked after a fraud report.
	ErrLocked = errors.New("pushauth: pushes to this user are locked")
	// ErrRateLimited: too many pushes; RateLimitError says until when.
	ErrRateLimited = errors.New("pushauth: too many push requests")
)

// RateLimitError is returned (wrapping ErrRateLimited or ErrLocked) when a
// push may not be sent now.
type RateLimitError struct {
	Err        error
	Reason     string
	RetryAfter time.Time
}

func (e *RateLimitError) Error() string {
	if e.RetryAfter.IsZero() {
		return e.Err.Error() + ": " + e.Reason
	}
	return fmt.Sprintf("%v: %s (retry after %s)", e.Err, e.Reason, e.RetryAfter.UTC().Format(time.RFC3339))
}

func (e *RateLimitError) Unwrap() error { return e.Err }

// Store is what the engine keeps durably.
type Store interface {
	store.Devices
	store.Activations
	store.PushLimits
	store.AuditLog
}

// Deps are the engine's collaborators.
type Deps struct {
	Store Store
	// State holds challenges: the store itself when several nodes share it,
	// memstate on a single node.
	State store.PushState
	Keys  *keys.Manager
	// ActivationKey is the HMAC key for activation secrets (a KEK subkey).
	ActivationKey []byte
	// Bus wakes waiters; nil means a LocalBus (one node).
	Bus Bus
	// Senders deliver pushes, by provider name ("fcm", "apns"); a device
	// whose provider has no sender is reached by long-poll only.
	Senders map[string]Sender
	// Audit, if set, is used instead of Store.AppendAudit (group commit).
	Audit *store.AuditBatcher
	// Limits, if set, counts the per-address caps (shared with the front
	// ends); nil means the engine's own front on the store's counters.
	Limits *store.Limits
	// HTTPClient calls the fraud webhook; nil means a client with the
	// webhook's timeout.
	HTTPClient *http.Client
	// Metrics, if set, receives the engine's Prometheus metrics.
	Metrics prometheus.Registerer
	Now     func() time.Time
	Logger  *slog.Logger
}

// Engine is the push approval engine. It is safe for concurrent use.
type Engine struct {
	cfg     Config
	st      Store
	state   store.PushState
	keys    *keys.Manager
	actKey  []byte
	bus     Bus
	senders map[string]Sender
	audit   *store.AuditBatcher
	httpc   *http.Client
	now     func() time.Time
	log     *slog.Logger
	m       *metrics
	// attRoots are Config.AttestationRoots as a pool; nil when none.
	attRoots *x509.CertPool

	signer      atomic.Pointer[pushSigner]
	ipLimit     *windowLimiter
	enrollLimit *windowLimiter
	closeLimits func()

	jobs     chan func()
	jobsMu   sync.RWMutex // held to send on jobs; Close takes it to close jobs
	workers  sync.WaitGroup
	hooks    sync.WaitGroup // fraud webhook calls in flight
	closing  chan struct{}
	closeOne sync.Once
	polls    pollLimiter
	closes   *closeQueue
}

// pushSigner caches a go-jose signer for the active push key.
type pushSigner struct {
	kid    string
	signer jose.Signer
}

// New makes an engine. Close releases its delivery workers.
func New(cfg Config, d Deps) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.State == nil || d.Keys == nil {
		return nil, errors.New("pushauth: store, state and keys are required")
	}
	if len(d.ActivationKey) < 32 {
		return nil, errors.New("pushauth: the activation key must be at least 32 bytes")
	}
	if d.Bus == nil {
		d.Bus = NewLocalBus()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.HTTPClient == nil {
		d.HTTPClient = &http.Client{Timeout: cfg.FraudWebhook.Timeout}
	}
	limits, closeLimits := engineLimits(d) // counters.go
	var attRoots *x509.CertPool
	if len(cfg.AttestationRoots) > 0 {
		attRoots = x509.NewCertPool()
		for _, c := range cfg.AttestationRoots {
			attRoots.AddCert(c)
		}
	}
	e := &Engine{
		attRoots:    attRoots,
		cfg:         cfg,
		st:          d.Store,
		state:       d.State,
		keys:        d.Keys,
		actKey:      d.ActivationKey,
		bus:         d.Bus,
		senders:     d.Senders,
		audit:       d.Audit,
		httpc:       d.HTTPClient,
		now:         d.Now,
		log:         d.Logger,
		ipLimit:     newWindowLimiter(limits, "push/ip/", cfg.MaxPerIPMinute, time.Minute),
		enrollLimit: newWindowLimiter(limits, "push/enroll/", cfg.EnrollPerIP, time.Minute),
		closeLimits: closeLimits,
		jobs:        make(chan func(), 4*cfg.DeliveryWorkers),
		closing:     make(chan struct{}),
		m:           newMetrics(),
		closes:      newCloseQueue(),
	}
	if err := e.m.register(d.Metrics); err != nil {
		closeLimits()
		return nil, fmt.Errorf("pushauth: metrics: %w", err)
	}
	if _, err := e.pushKey(); err != nil {
		closeLimits()
		return nil, err
	}
	e.workers.Add(1)
	go e.retryCloses()
	for range cfg.DeliveryWorkers {
		e.workers.Add(1)
		go func() {
			defer e.workers.Done()
			for job := range e.jobs {
				job()
			}
		}()
	}
	return e, nil
}

// Close stops the delivery workers after the queued pushes.
func (e *Engine) Close() {
	e.closeOne.Do(func() {
		close(e.closing)
		e.jobsMu.Lock()
		close(e.jobs)
		e.jobsMu.Unlock()
	})
	e.workers.Wait()
	e.hooks.Wait()
	e.closeLimits()
}

// Config returns the engine's configuration, defaults applied.
func (e *Engine) Config() Config { return e.cfg }

// pushKey returns a signer for the active push key, rebuilt when the key
// manager has rotated it.
func (e *Engine) pushKey() (*pushSigner, error) {
	k, err := e.keys.Signer(store.PurposePush, keys.AlgEdDSA)
	if err != nil {
		return nil, fmt.Errorf("pushauth: %w", err)
	}
	if ps := e.signer.Load(); ps != nil && ps.kid == k.ID {
		return ps, nil
	}
	opts := (&jose.SignerOptions{}).WithType(protocol.TypChallenge)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.ID, Algorithm: keys.AlgEdDSA}}, opts)
	if err != nil {
		return nil, fmt.Errorf("pushauth: push signer: %w", err)
	}
	ps := &pushSigner{kid: k.ID, signer: s}
	e.signer.Store(ps)
	return ps, nil
}

// PushKeys returns the server's push verification keys as a JWKS.
func (e *Engine) PushKeys() jose.JSONWebKeySet { return e.keys.JWKS(store.PurposePush) }

// Request is a login waiting for the user's approval.
type Request struct {
	User      string // normalised login name
	AppID     string // the application's id in the config
	AppName   string // shown on the phone
	Channel   string // radius, oidc, saml
	ClientIP  string
	UserAgent string // browser user agent, or NAS identifier
	Location  string // optional, shown on the phone
	// Station identifies where the login comes from, as the front end
	// knows it (a RADIUS Calling-Station-Id, a browser session); it is not
	// shown. Logins join a pending challenge only from the same station:
	// a front end that cannot tell stations apart gives each login its own.
	Station string
	// NumberMatching makes the user type Handle.Number on the phone.
	NumberMatching bool
	// Arrived is when the login reached the front end, before its first
	// factor was checked; zero means now. Whether it belongs to a pending
	// attempt is decided by it: a login that arrived while a challenge of
	// its station was pending gets that challenge's answer, even when the
	// phone answered before this login's first factor was done; one that
	// arrived after the answer is a new attempt.
	Arrived time.Time
	// DeviceKeys is the application's device-key policy: "" or "any",
	// "hardware" (no software keys) or "attested" (KeysAny...). Devices
	// it refuses are not asked and cannot answer; the challenge's "keys"
	// claim tells the devices.
	DeviceKeys string
	// TakeUndelivered lets the login take an approval of its station that
	// no login received (its node died holding the request), once, within
	// the challenge's lifetime. RADIUS sets it: a NAS does not resend to
	// another node the request that a dead node held.
	TakeUndelivered bool
}

// Handle is a started approval.
type Handle struct {
	ID        string
	User      string
	Number    string // show this at the login side; empty without number matching
	ExpiresAt time.Time
	// Joined is set when the login joined a challenge already pending for
	// the same application and client (no second push was sent).
	Joined bool
}

// Outcome is how an approval ended.
type Outcome struct {
	ID       string
	State    store.ChallengeState
	Reason   string
	DeviceID string // the device that answered
	// KeyAlg is the answering device's key algorithm; HardwareKey is set
	// when the device reported at enrollment that its key is held in
	// hardware (posture "hardware_key"), for an OIDC amr of hwk or swk.
	KeyAlg      string
	HardwareKey bool
	// Passkey is set when the device answered with a passkey (a WebAuthn
	// assertion after user verification): amr hwk and user.
	Passkey bool
}

// Approved reports whether the user approved.
func (o Outcome) Approved() bool { return o.State == store.ChallengeApproved }

const maxField = 512

// Start asks the user's devices to approve req. If the user already has a
// challenge pending for the same application, channel and client, the login
// joins it (one push, one number); a pending challenge for anything else is
// superseded and its devices told to dismiss it.
func (e *Engine) Start(ctx context.Context, req Request) (Handle, error) {
	if req.User == "" || req.AppID == "" || req.Channel == "" {
		return Handle{}, errors.New("pushauth: start: user, application and channel are required")
	}
	for _, f := range []string{req.User, req.AppID, req.AppName, req.Channel, req.ClientIP, req.UserAgent, req.Location, req.Station} {
		if len(f) > maxField {
			return Handle{}, fmt.Errorf("pushauth: start: a request field is longer than %d bytes", maxField)
		}
	}
	if !validKeys(req.DeviceKeys) {
		return Handle{}, fmt.Errorf("pushauth: start: device-key policy %q is not any, hardware or attested", clip(req.DeviceKeys, 32))
	}
	now := e.now()
	arrived := req.Arrived
	if arrived.IsZero() || arrived.After(now) {
		arrived = now
	}
	devs, err := e.activeDevices(ctx, req.User)
	if err != nil {
		return Handle{}, err
	}
	if len(devs) == 0 {
		e.m.started.WithLabelValues("refused").Inc()
		return Handle{}, ErrNoDevice
	}
	if devs = qualifying(devs, req.DeviceKeys); len(devs) == 0 {
		e.m.started.WithLabelValues("refused").Inc()
		e.auditLog(ctx, store.AuditEvent{Action: "push.start", Subject: req.User, Channel: req.Channel, ClientIP: req.ClientIP, Result: store.ResultDenied,
			Reason: "no device meets the application's device-key policy", Details: map[string]string{"app": req.AppID, "device_keys": req.DeviceKeys}})
		return Handle{}, ErrNoQualifyingDevice
	}
	// A login that joins sends no push: it is decided before the limits,
	// so that a NAS's burst of requests for one attempt is one attempt.
	if h, ok, err := e.joinRecent(ctx, req, arrived, now); err != nil || ok {
		return h, err
	}
	if ok, err := e.ipAllowed(ctx, req.ClientIP); err != nil {
		return Handle{}, err
	} else if !ok {
		e.m.started.WithLabelValues("refused").Inc()
		e.auditLog(ctx, store.AuditEvent{Action: "push.start", Subject: req.User, Channel: req.Channel, ClientIP: req.ClientIP, Result: store.ResultDenied, Reason: "per-IP push rate exceeded", Details: map[string]string{"app": req.AppID}})
		return Handle{}, &RateLimitError{Err: ErrRateLimited, Reason: "too many push requests from this address", RetryAfter: now.Add(time.Minute)}
	}
	join := func(p store.Challenge) bool { return joinable(p, req) }
	if err := e.checkLimits(ctx, req, now, join); err != nil {
		e.m.started.WithLabelValues("refused").Inc()
		return Handle{}, err
	}

	c, err := e.newChallenge(req, now)
	if err != nil {
		return Handle{}, err
	}
	// The same rule again, inside the transaction that inserts: a
	// challenge answered since joinRecent looked is still joined.
	got, joined, closed, err := e.state.CreateChallenge(ctx, c, now, arrived, func(p store.Challenge) bool { return joins(p, req, arrived, now) })
	if err != nil {
		return Handle{}, fmt.Errorf("pushauth: start: %w", err)
	}
	h := Handle{ID: got.ID, User: got.User, Number: got.Number, ExpiresAt: got.ExpiresAt, Joined: joined}
	details := map[string]string{"challenge": got.ID, "app": req.AppID, "devices": fmt.Sprint(len(devs)), "number_matching": fmt.Sprint(req.NumberMatching)}
	if joined {
		// The one approval will authorise this login too: audit it.
		e.m.started.WithLabelValues("joined").Inc()
		details["joined"] = "true"
		for _, old := range closed {
			e.closed(ctx, old, nil)
		}
		e.auditLog(ctx, store.AuditEvent{Action: "push.start", Subject: req.User, Channel: req.Channel, ClientIP: req.ClientIP, Result: store.ResultSuccess, Reason: "joined the pending challenge", Details: details})
		return h, nil
	}
	// The limits were read before the challenge existed; concurrent logins
	// (on this node or another) may all have passed. Checked again now
	// that this one is stored, so at most the allowed number get pushed.
	err = e.checkLimits(ctx, req, now, nil)
	// What this login superseded is handled after the check, which must not
	// see the back-off that superseding it adds.
	for _, old := range closed {
		e.closed(ctx, old, nil)
	}
	if err != nil {
		if cerr := e.Cancel(ctx, got.ID, limitReason+err.Error()); cerr != nil && !errors.Is(cerr, store.ErrUsed) {
			e.log.Error("cancelling a challenge over the limits failed", "challenge", got.ID, "err", cerr)
		}
		e.m.started.WithLabelValues("refused").Inc()
		return Handle{}, err
	}
	e.m.started.WithLabelValues("sent").Inc()
	e.auditLog(ctx, store.AuditEvent{Action: "push.start", Subject: req.User, Channel: req.Channel, ClientIP: req.ClientIP, Result: store.ResultSuccess, Details: details})
	e.publish(ctx, userTopic(req.User))
	e.wake(devs, Wake{ChallengeID: got.ID, Kind: WakeChallenge, Expires: got.ExpiresAt})
	return h, nil
}

// deliveredNamespace marks, in the replay cache, the approvals some login
// was given (see Delivered): an approval nobody received may be taken once
// by the same station's next login.
const deliveredNamespace = "push.delivered"

// undeliveredGrace is how long an approval stays its holder's before a
// later login may take it as undelivered: longer than a live holder takes
// to see it (the bus wakes it at once; its poll finds it within waitPoll),
// so that an approval is never taken from a login still waiting for it.
const undeliveredGrace = 5 * time.Second

// joins reports whether a login for req that arrived at arrived gets the
// answer of c: c is of the same application and station, and was pending
// when the login arrived (it still is, or it was answered since).
func joins(c store.Challenge, req Request, arrived, now time.Time) bool {
	if !joinable(c, req) {
		return false
	}
	switch c.State {
	case store.ChallengePending:
		return now.Before(c.ExpiresAt)
	case store.ChallengeApproved, store.ChallengeDenied, store.ChallengeFraud:
		// Strictly after: an answer in the same instant is taken as the
		// earlier event, so that nothing rides on it.
		return c.ClosedAt.After(arrived)
	}
	return false // expired, superseded, cancelled: no answer to give
}

// joinRecent finds the challenge, if any, that a login belongs to: the
// newest challenge of its station, when the login arrived while it was
// pending, or (req.TakeUndelivered) when it is an approval that no login
// received (its node died holding the request) and the login arrived
// within its lifetime, past undeliveredGrace; such an approval is taken by
// exactly one login, and never while its own login could still be given
// it (Delivered marks it first).
func (e *Engine) joinRecent(ctx context.Context, req Request, arrived, now time.Time) (Handle, bool, error) {
	recent, err := e.state.RecentChallenges(ctx, req.User, arrived.Add(-e.cfg.ChallengeTTL))
	if err != nil {
		return Handle{}, false, fmt.Errorf("pushauth: start: %w", err)
	}
	for _, c := range recent {
		if !joinable(c, req) {
			continue
		}
		reason := "joined the pending challenge"
		switch {
		case joins(c, req, arrived, now):
			if c.State.Closed() {
				reason = "joined the challenge answered after this login arrived"
			}
		case req.TakeUndelivered && c.State == store.ChallengeApproved && arrived.Before(c.ExpiresAt) &&
			arrived.After(c.ClosedAt.Add(undeliveredGrace)):
			err := e.state.UseOnce(ctx, deliveredNamespace, c.ID, now, now.Add(e.cfg.ChallengeTTL+e.cfg.Retention))
			if errors.Is(err, store.ErrUsed) {
				return Handle{}, false, nil
			}
			if err != nil {
				return Handle{}, false, fmt.Errorf("pushauth: start: %w", err)
			}
			reason = "took the approval that no login received"
		default:
			return Handle{}, false, nil // the newest of the station decides
		}
		e.m.started.WithLabelValues("joined").Inc()
		e.auditLog(ctx, store.AuditEvent{Action: "push.start", Subject: req.User, Channel: req.Channel, ClientIP: req.ClientIP, Result: store.ResultSuccess, Reason: reason,
			Details: map[string]string{"challenge": c.ID, "app": req.AppID, "joined": "true", "number_matching": fmt.Sprint(req.NumberMatching)}})
		return Handle{ID: c.ID, User: c.User, Number: c.Number, ExpiresAt: c.ExpiresAt, Joined: true}, true, nil
	}
	return Handle{}, false, nil
}

// joinable reports whether a login for req may join the pending challenge
// p instead of starting its own: same application, channel, client
// address, station and number matching.
func joinable(p store.Challenge, req Request) bool {
	return p.AppID == req.AppID && p.Channel == req.Channel && p.ClientIP == req.ClientIP && p.Station == req.Station &&
		(p.Number != "") == req.NumberMatching && challengeKeys(p) == claimKeys(req.DeviceKeys)
}

func (e *Engine) activeDevices(ctx context.Context, user string) ([]store.Device, error) {
	all, err := e.st.ListDevices(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("pushauth: listing devices: %w", err)
	}
	out := all[:0]
	for _, d := range all {
		if d.Status == store.DeviceActive {
			out = append(out, d)
		}
	}
	return out, nil
}

// checkLimits applies the fraud lock, the back-off and the hourly cap.
// Before a challenge is created (join set), a login that would join the
// pending challenge passes the back-off and the cap: it sends no push. After
// creation (join nil) the count includes the new challenge itself.
func (e *Engine) checkLimits(ctx context.Context, req Request, now time.Time, join func(store.Challenge) bool) error {
	lim, err := e.st.GetPushLimit(ctx, req.User)
	if err != nil {
		return fmt.Errorf("pushauth: reading push limit: %w", err)
	}
	if now.Before(lim.LockedUntil) {
		return e.refuse(ctx, req, &RateLimitError{Err: ErrLocked, Reason: lim.LockReason, RetryAfter: lim.LockedUntil})
	}
	var rl *RateLimitError
	if now.Before(lim.NextAt) {
		rl = &RateLimitError{Err: ErrRateLimited, Reason: fmt.Sprintf("back-off after %d denied or unanswered pushes", lim.Failures), RetryAfter: lim.NextAt}
	} else {
		n, err := e.state.CountChallenges(ctx, req.User, now.Add(-time.Hour))
		if err != nil {
			return fmt.Errorf("pushauth: counting challenges: %w", err)
		}
		if join == nil {
			n-- // this login's own challenge
		}
		if n >= e.cfg.MaxPerHour {
			rl = &RateLimitError{Err: ErrRateLimited, Reason: fmt.Sprintf("%d pushes in the last hour", n), RetryAfter: now.Add(10 * time.Minute)}
		}
	}
	if rl == nil {
		return nil
	}
	if join != nil {
		if pending, err := e.state.PendingChallenges(ctx, req.User, now); err == nil {
			for _, p := range pending {
				if join(p) {
					return nil
				}
			}
		}
	}
	return e.refuse(ctx, req, rl)
}

func (e *Engine) refuse(ctx context.Context, req Request, rl *RateLimitError) error {
	e.auditLog(ctx, store.AuditEvent{Action: "push.start", Subject: req.User, Channel: req.Channel, ClientIP: req.ClientIP, Result: store.ResultDenied, Reason: rl.Reason, Details: map[string]string{"app": req.AppID}})
	return rl
}

func (e *Engine) newChallenge(req Request, now time.Time) (store.Challenge, error) {
	id, err := randomID(20)
	if err != nil {
		return store.Challenge{}, err
	}
	// The signed exp is in whole seconds; the deadline the engine keeps is
	// that same second, so that no answer is taken after the time the
	// device was shown (one clock, one rule).
	c := store.Challenge{
		ID: id, User: req.User, AppID: req.AppID, AppName: req.AppName, Channel: req.Channel,
		ClientIP: req.ClientIP, UserAgent: req.UserAgent, Location: req.Location, Station: req.Station,
		State: store.ChallengePending, CreatedAt: now, ExpiresAt: time.Unix(now.Add(e.cfg.ChallengeTTL).Unix(), 0),
	}
	c.PurgeAt = c.ExpiresAt.Add(e.cfg.Retention)
	claims := protocol.ChallengeClaims{
		Issuer: e.cfg.BaseURL, ID: id, User: req.User, AppID: req.AppID, AppName: req.AppName, Channel: req.Channel,
		ClientIP: req.ClientIP, UserAgent: req.UserAgent, Location: req.Location,
		IssuedAt: now.Unix(), Expires: c.ExpiresAt.Unix(), Keys: claimKeys(req.DeviceKeys),
	}
	if req.NumberMatching {
		if c.Number, err = randomDigits(e.cfg.NumberDigits); err != nil {
			return store.Challenge{}, err
		}
		claims.NumberDigits = e.cfg.NumberDigits
	}
	ps, err := e.pushKey()
	if err != nil {
		return store.Challenge{}, err
	}
	payload, err := jsonMarshal(claims)
	if err != nil {
		return store.Challenge{}, err
	}
	jws, err := ps.signer.Sign(payload)
	if err != nil {
		return store.Challenge{}, fmt.Errorf("pushauth: signing challenge: %w", err)
	}
	if c.Signed, err = jws.CompactSerialize(); err != nil {
		return store.Challenge{}, fmt.Errorf("pushauth: signing challenge: %w", err)
	}
	h := protocol.ChallengeHash(c.Signed)
	c.Hash, _ = base64.RawURLEncoding.DecodeString(h)
	return c, nil
}

// Wait blocks until the challenge closes, it expires, or ctx ends. An
// answer on any node wakes it through the Bus; it also reads the challenge
// every few seconds, so a wake-up lost while the bus was down is found,
// and a store that stops answering is noticed: after a few seconds of
// failed reads, or at ctx's end with the last read failed, Wait returns an
// error that is ErrUnavailable (the front end's failmode applies, not "no
// answer").
func (e *Engine) Wait(ctx context.Context, id string) (Outcome, error) {
	wake, cancel := e.bus.Subscribe(challengeTopic(id))
	defer cancel()
	timer := time.NewTimer(waitPoll)
	defer timer.Stop()
	var (
		failing time.Time // when reads began to fail (real time: the outage's length)
		lastErr error
	)
	for {
		next := waitPoll
		rctx, rcancel := context.WithTimeout(ctx, waitPoll)
		c, err := e.state.GetChallenge(rctx, id)
		rcancel()
		switch {
		case err != nil && ctx.Err() != nil:
			if lastErr != nil {
				return Outcome{}, &unavailableError{lastErr}
			}
			return Outcome{}, ctx.Err()
		case err != nil && !store.Unavailable(err):
			return Outcome{}, fmt.Errorf("pushauth: wait: %w", err)
		case err != nil:
			if lastErr == nil {
				failing = time.Now()
			}
			lastErr = err
			if time.Since(failing) >= storeGrace {
				return Outcome{}, &unavailableError{err}
			}
			next = waitRetry
		case c.State.Closed():
			if c.State == store.ChallengeApproved {
				// Marked before the login gets it: unmarked, a later login
				// of the station could take it as undelivered too.
				if err := e.Delivered(ctx, c.ID); err != nil {
					return Outcome{}, &unavailableError{err}
				}
			}
			return e.outcome(ctx, c), nil
		default:
			if lastErr != nil {
				lastErr = nil
				e.RetryNow() // the store answers again: run queued closes first
			}
			left := c.ExpiresAt.Sub(e.now())
			if left <= 0 {
				if err := e.expire(ctx, id); err != nil {
					if store.Unavailable(err) && ctx.Err() == nil {
						lastErr, failing, next = err, time.Now(), waitRetry
						break
					}
					return Outcome{}, err
				}
				continue
			}
			next = min(left, waitPoll)
		}
		timer.Reset(next)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			if lastErr != nil {
				return Outcome{}, &unavailableError{lastErr}
			}
			return Outcome{}, ctx.Err()
		}
	}
}

// Delivered records that the answer of challenge id has a login to go to,
// so that no later login takes it as one nobody received. Wait calls it
// for the approvals it returns; a front end whose login gets the answer
// later by other means (a RADIUS Access-Challenge session, kept in the
// store, that any node completes) calls it when it hands the challenge to
// that means. Marking twice is fine.
func (e *Engine) Delivered(ctx context.Context, id string) error {
	now := e.now()
	// Kept as long as the challenge itself could be (its purge time is
	// at most a TTL and the retention past now).
	err := e.state.UseOnce(ctx, deliveredNamespace, id, now, now.Add(e.cfg.ChallengeTTL+e.cfg.Retention))
	if err != nil && !errors.Is(err, store.ErrUsed) {
		return fmt.Errorf("pushauth: recording that challenge %s has a login: %w", id, err)
	}
	return nil
}

func (e *Engine) outcome(ctx context.Context, c store.Challenge) Outcome {
	o := Outcome{ID: c.ID, State: c.State, Reason: c.Reason, DeviceID: c.DeviceID}
	if c.DeviceID != "" {
		if d, err := e.st.GetDevice(ctx, c.DeviceID); err == nil {
			o.KeyAlg = d.KeyAlg
			o.Passkey = d.Kind == store.DeviceKindWebAuthn
			o.HardwareKey = o.Passkey || postureFlag(d.Posture, "hardware_key")
		}
	}
	return o
}

// Cancel closes a pending challenge because the login side gave up (the
// user closed the page, the NAS stopped retrying). The devices are told to
// dismiss it. It counts towards the back-off like an unanswered push, so
// that starting and cancelling logins cannot flood a phone; a login
// completed another way uses Resolve.
//
// If the store does not answer, the cancel is queued on this node and
// retried until it does (Cancel returns nil: it will happen); meanwhile
// this node refuses answers to the challenge.
func (e *Engine) Cancel(ctx context.Context, id, reason string) error {
	if err := e.close(ctx, id, reason); err != nil {
		return fmt.Errorf("pushauth: cancel: %w", err)
	}
	return nil
}

// Resolve closes a pending challenge because its login was completed
// another way (a one-time code typed instead). The devices are told to
// dismiss it; it does not count towards the back-off. Like Cancel, it is
// queued and retried if the store does not answer.
func (e *Engine) Resolve(ctx context.Context, id, reason string) error {
	return e.Cancel(ctx, id, resolvedReason+reason)
}

// expire closes a challenge that nobody answered in time. Losing the race
// to an answer or another node's expiry is fine.
func (e *Engine) expire(ctx context.Context, id string) error {
	c, err := e.state.CloseChallenge(ctx, id, store.ChallengeClose{State: store.ChallengeExpired, Reason: "not answered in time", AllowExpired: true}, e.now())
	switch {
	case err == nil:
		e.closed(ctx, c, nil)
		return nil
	case errors.Is(err, store.ErrUsed):
		return nil
	default:
		return fmt.Errorf("pushauth: expire: %w", err)
	}
}

// closed does what follows a challenge's closing, whoever closed it:
// audit, limits, wake the waiters, dismiss it on the devices.
func (e *Engine) closed(ctx context.Context, c store.Challenge, answeredBy *store.Device) {
	result := store.ResultDenied
	switch c.State {
	case store.ChallengeApproved:
		result = store.ResultSuccess
	case store.ChallengeSuperseded, store.ChallengeCancelled:
		result = store.ResultFailure
	}
	ev := store.AuditEvent{
		Action: "push." + string(c.State), Subject: c.User, Channel: c.Channel, ClientIP: c.ClientIP, Result: result, Reason: c.Reason,
		Details: map[string]string{"challenge": c.ID, "app": c.AppID},
	}
	if answeredBy != nil {
		ev.Actor = "device:" + answeredBy.ID
		ev.Details["device"] = answeredBy.ID
	}
	e.m.closed.WithLabelValues(string(c.State)).Inc()
	e.auditLog(ctx, ev)
	e.updateLimit(ctx, c)
	e.publish(ctx, challengeTopic(c.ID))
	e.publish(ctx, userTopic(c.User))
	if devs, err := e.activeDevices(ctx, c.User); err == nil {
		var others []store.Device
		for _, d := range qualifying(devs, challengeKeys(c)) { // the others were never asked
			if answeredBy == nil || d.ID != answeredBy.ID {
				others = append(others, d)
			}
		}
		e.wake(others, Wake{ChallengeID: c.ID, Kind: WakeDismiss, Expires: c.ExpiresAt})
	}
	if c.State == store.ChallengeFraud {
		e.fraudWebhook(c, answeredBy)
	}
}

// updateLimit moves the user's back-off: denials, wrong numbers, timeouts
// and fraud reports grow it; an approval resets it; a fraud report locks.
func (e *Engine) updateLimit(ctx context.Context, c store.Challenge) {
	now := e.now()
	switch c.State {
	case store.ChallengeApproved:
		lim, err := e.st.GetPushLimit(ctx, c.User)
		if err != nil || (lim.Failures == 0 && lim.NextAt.IsZero()) {
			return
		}
	case store.ChallengeDenied, store.ChallengeExpired, store.ChallengeFraud, store.ChallengeSuperseded:
		// Superseded pushes count like unanswered ones: otherwise an
		// attacker who supersedes every push before it times out would
		// never meet the back-off.
	case store.ChallengeCancelled:
		if strings.HasPrefix(c.Reason, limitReason) || strings.HasPrefix(c.Reason, resolvedReason) {
			return // refused by the limits (no push was sent), or completed another way
		}
	default:
		return
	}
	_, err := e.st.UpdatePushLimit(ctx, c.User, func(l store.PushLimit) (store.PushLimit, error) {
		l.UpdatedAt = now
		if c.State == store.ChallengeApproved {
			l.Failures, l.NextAt = 0, time.Time{}
			return l, nil
		}
		l.Failures++
		l.NextAt = now.Add(backoff(e.cfg.BackoffBase, e.cfg.BackoffMax, l.Failures))
		if c.State == store.ChallengeFraud {
			l.LockedUntil = now.Add(e.cfg.FraudLock)
			l.LockReason = "the user reported a push as fraud (challenge " + c.ID + ")"
		}
		return l, nil
	})
	if err != nil {
		e.log.Error("push limit update failed", "user", c.User, "err", err)
	}
}

// backoff is base*2^(n-1), capped at max.
func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// Unlock lifts a user's fraud lock and back-off (operator action).
func (e *Engine) Unlock(ctx context.Context, user string) error {
	_, err := e.st.UpdatePushLimit(ctx, user, func(l store.PushLimit) (store.PushLimit, error) {
		return store.PushLimit{User: l.User, UpdatedAt: e.now()}, nil
	})
	return err
}

// Run closes expired challenges nobody is waiting for, until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("closing expired challenges failed", "err", err)
			}
		}
	}
}

// Sweep closes the challenges that expired and returns how many.
func (e *Engine) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		cs, err := e.state.ExpireChallenges(ctx, e.now(), 100)
		if err != nil {
			return total, fmt.Errorf("pushauth: sweep: %w", err)
		}
		for _, c := range cs {
			e.closed(ctx, c, nil)
		}
		total += len(cs)
		if len(cs) < 100 {
			return total, nil
		}
	}
}

func (e *Engine) publish(ctx context.Context, topic string) {
	if err := e.bus.Publish(ctx, topic); err != nil {
		e.log.Warn("wake-up not published; waiters on other nodes see it at expiry", "topic", topic, "err", err)
	}
}

// auditLog records ev; the error says it is not durable (neither in the
// store nor in the audit spool), and is logged here.
func (e *Engine) auditLog(ctx context.Context, ev store.AuditEvent) error {
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	if ev.Actor == "" {
		ev.Actor = "system"
	}
	var err error
	if e.audit != nil {
		_, err = e.audit.Append(context.WithoutCancel(ctx), ev)
	} else {
		_, err = e.st.AppendAudit(context.WithoutCancel(ctx), ev)
	}
	if err != nil {
		e.log.Error("audit append failed", "action", ev.Action, "subject", ev.Subject, "err", err)
	}
	return err
}

// limitReason starts the reason of a challenge cancelled by the limits.
const limitReason = "refused by the push limits: "

// resolvedReason starts the reason of a challenge closed by Resolve.
const resolvedReason = "completed another way: "

func challengeTopic(id string) string { return "challenge:" + id }
func userTopic(user string) string    { return "user:" + user }

// randomID returns n random bytes, base64url.
func randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pushauth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// randomDigits returns n uniformly random decimal digits.
func randomDigits(n int) (string, error) {
	max := big.NewInt(1)
	for range n {
		max.Mul(max, big.NewInt(10))
	}
	v, err := rand.Int(rand.Reader, max)
	if err != nil {
		return "", fmt.Errorf("pushauth: random: %w", err)
	}
	return fmt.Sprintf("%0*d", n, v), nil
}
