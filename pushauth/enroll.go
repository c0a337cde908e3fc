package pushauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// ActivationKeyLabel is the KEK subkey label for activation secret HMACs.
const ActivationKeyLabel = "device-activation"

// Activator creates enrollment activations. It needs no running engine, so
// the CLI can use it against the store directly.
type Activator struct {
	Store   store.Activations
	Keys    *keys.Manager
	HMACKey []byte
	BaseURL string
	TTL     time.Duration
	Now     func() time.Time
}

// Create makes a one-time activation for user and returns its URL (for the
// QR code) and record. The secret exists only in the URL.
func (a Activator) Create(ctx context.Context, user, createdBy string, tlsPin string) (protocol.Activation, store.Activation, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	ttl := a.TTL
	if ttl == 0 {
		ttl = DefaultActivationTTL
	}
	k, err := a.Keys.Signer(store.PurposePush, keys.AlgEdDSA)
	if err != nil {
		return protocol.Activation{}, store.Activation{}, fmt.Errorf("pushauth: %w", err)
	}
	id, err := randomID(12)
	if err != nil {
		return protocol.Activation{}, store.Activation{}, err
	}
	secret, err := randomID(32)
	if err != nil {
		return protocol.Activation{}, store.Activation{}, err
	}
	t := now().UTC()
	rec := store.Activation{
		ID: id, User: user, SecretHash: activationMAC(a.HMACKey, id, secret), CreatedBy: createdBy,
		CreatedAt: t, ExpiresAt: t.Add(ttl),
	}
	if err := a.Store.CreateActivation(ctx, rec); err != nil {
		return protocol.Activation{}, store.Activation{}, fmt.Errorf("pushauth: creating activation: %w", err)
	}
	act := protocol.Activation{BaseURL: strings.TrimSuffix(a.BaseURL, "/"), Code: id + "." + secret, PushKey: k.ID, TLSPin: tlsPin}
	return act, rec, nil
}

// activationMAC binds the secret to its activation id.
func activationMAC(key []byte, id, secret string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("bridge-activation:v1:" + id + ":" + secret))
	return m.Sum(nil)
}

// Enroll verifies a device's enrollment and creates the device. The JWS
// must be signed by the key in its own jwk header (proof of possession)
// over a valid, unused activation code; the code then cannot be used again.
func (e *Engine) Enroll(ctx context.Context, signed, clientIP string) (store.Device, error) {
	now := e.now()
	if ok, err := e.enrollLimit.check(ctx, clientIP); err != nil {
		return store.Device{}, err
	} else if !ok {
		return store.Device{}, deviceErr(429, protocol.ErrRateLimited, "too many failed enrollments from this address")
	}
	d, act, err := e.enroll(ctx, signed, now)
	if err != nil {
		var de *DeviceError
		if errors.As(err, &de) {
			if _, err := e.enrollLimit.allow(ctx, clientIP); err != nil { // count the failure
				e.log.Warn("counting a failed enrollment failed", "err", err)
			}
			e.auditLog(ctx, store.AuditEvent{
				Action: "device.enroll", Subject: act.User, Channel: "device", ClientIP: clientIP,
				Result: store.ResultFailure, Reason: de.Reason, Details: map[string]string{"activation": clip(act.ID, 32)},
			})
		}
		return store.Device{}, err
	}
	e.m.enrolled.Inc()
	e.auditLog(ctx, store.AuditEvent{
		Actor: "device:" + d.ID, Action: "device.enroll", Subject: d.User, Channel: "device", ClientIP: clientIP, Result: store.ResultSuccess,
		Details: enrollDetails(d, act.ID),
	})
	return d, nil
}

// enrollDetails are an enrollment's audit details: for a passkey device
// also its attestation format, whether the statement verified and whether
// it chained to a trusted root.
func enrollDetails(d store.Device, activation string) map[string]string {
	m := map[string]string{"device": d.ID, "platform": d.Platform, "alg": d.KeyAlg, "push": d.PushProvider, "activation": activation, "app_version": d.AppVersion}
	if d.Kind != store.DeviceKindJWS {
		m["kind"] = d.Kind
	}
	if w := d.WebAuthn; w != nil {
		m["attestation"] = w.AttestationFormat
		m["attestation_type"] = w.AttestationType
		m["attestation_verified"] = strconv.FormatBool(w.AttestationVerified)
		m["attestation_trusted"] = strconv.FormatBool(w.AttestationTrusted)
	}
	return m
}

func (e *Engine) enroll(ctx context.Context, signed string, now time.Time) (store.Device, store.Activation, error) {
	var claims protocol.EnrollClaims
	jwk, alg, err := verifyEmbedded(signed, &claims)
	if err != nil {
		return store.Device{}, store.Activation{}, deviceErr(400, protocol.ErrInvalidRequest, "enrollment: %v", err)
	}
	actID, secret, ok := strings.Cut(claims.Activation, ".")
	act := store.Activation{ID: actID}
	if !ok || !validID(actID) || !validID(secret) || len(claims.Activation) > 128 {
		return store.Device{}, act, deviceErr(400, protocol.ErrInvalidCode, "malformed activation code")
	}
	if claims.URL != e.cfg.BaseURL+protocol.PathEnroll {
		return store.Device{}, act, deviceErr(400, protocol.ErrInvalidRequest, "enrollment for URL %q", clip(claims.URL, 200))
	}
	if iat := time.Unix(claims.IssuedAt, 0); iat.Before(now.Add(-e.cfg.ProofMaxAge)) || iat.After(now.Add(e.cfg.ProofMaxAge)) {
		return store.Device{}, act, deviceErr(400, protocol.ErrInvalidRequest, "enrollment time is more than %v from the server's", e.cfg.ProofMaxAge)
	}
	d, err := e.newDevice(claims, jwk, alg, now)
	if err != nil {
		return store.Device{}, act, err
	}
	if d.WebAuthn != nil {
		if err := e.passkeyIsNew(ctx, actID, secret, d.WebAuthn.CredentialID); err != nil {
			return store.Device{}, act, err
		}
	}
	check := func(a store.Activation) error {
		act = a
		if !hmac.Equal(a.SecretHash, activationMAC(e.actKey, a.ID, secret)) {
			return deviceErr(400, protocol.ErrInvalidCode, "wrong activation secret")
		}
		d.User = a.User
		return nil
	}
	_, err = e.st.ActivateDevice(ctx, actID, now, check, d)
	switch {
	case err == nil:
		return d, act, nil
	case errors.Is(err, store.ErrNotFound):
		return d, act, deviceErr(400, protocol.ErrInvalidCode, "unknown activation code")
	case errors.Is(err, store.ErrUsed):
		return d, act, deviceErr(400, protocol.ErrInvalidCode, "activation code already used")
	case errors.Is(err, store.ErrExpired):
		return d, act, deviceErr(400, protocol.ErrInvalidCode, "activation code expired")
	default:
		var de *DeviceError
		if errors.As(err, &de) {
			return d, act, de
		}
		return d, act, fmt.Errorf("pushauth: enrolling: %w", err)
	}
}

// passkeyIsNew refuses a passkey whose credential id one of the
// activation's user's devices (of any status) already has: a credential
// registers once per user, so that two device records never share one key
// and its sign counter. It looks only once the activation's secret is
// right, so that nobody without it learns anything about the user's
// passkeys; an unknown or wrong activation is left to ActivateDevice to
// refuse. The check is not in ActivateDevice's transaction: two
// activations used at the same instant with one credential could both
// pass, which needs two codes of the same user.
func (e *Engine) passkeyIsNew(ctx context.Context, actID, secret string, credID []byte) error {
	a, err := e.st.GetActivation(ctx, actID)
	if err != nil || !hmac.Equal(a.SecretHash, activationMAC(e.actKey, a.ID, secret)) {
		return nil
	}
	devs, err := e.st.ListDevices(ctx, a.User)
	if err != nil {
		return fmt.Errorf("pushauth: listing the user's devices: %w", err)
	}
	for _, d := range devs {
		if d.WebAuthn != nil && bytes.Equal(d.WebAuthn.CredentialID, credID) {
			return deviceErr(400, protocol.ErrInvalidRequest, "this passkey is already enrolled for this user")
		}
	}
	return nil
}

// newDevice checks the device's self-description (and its passkey, for
// the web app) and builds its record.
func (e *Engine) newDevice(c protocol.EnrollClaims, jwk jose.JSONWebKey, alg string, now time.Time) (store.Device, error) {
	switch c.Platform {
	case protocol.PlatformAndroid, protocol.PlatformIOS, protocol.PlatformOther, protocol.PlatformWeb:
	default:
		return store.Device{}, deviceErr(400, protocol.ErrInvalidRequest, "unknown platform %q", clip(c.Platform, 32))
	}
	if c.WebAuthn != nil && c.Platform != protocol.PlatformWeb {
		return store.Device{}, deviceErr(400, protocol.ErrInvalidRequest, "a passkey (webauthn) comes only from platform %q", protocol.PlatformWeb)
	}
	if err := e.checkPush(c.PushProvider, c.PushToken); err != nil {
		return store.Device{}, err
	}
	if err := checkText("name", c.Name); err != nil {
		return store.Device{}, err
	}
	if err := checkText("app_version", c.AppVersion); err != nil {
		return store.Device{}, err
	}
	posture := c.Posture
	if c.Platform == protocol.PlatformWeb {
		// What holds the web app's answer key is known here, not
		// reported: a passkey is in an authenticator; without one the
		// key is WebCrypto's, in the browser's storage.
		posture = maps.Clone(posture)
		if posture == nil {
			posture = map[string]bool{}
		}
		posture["hardware_key"] = c.WebAuthn != nil
	}
	rawPosture, err := encodePosture(posture)
	if err != nil {
		return store.Device{}, err
	}
	d := store.Device{
		Name: c.Name, Platform: c.Platform, KeyAlg: alg,
		PushProvider: c.PushProvider, PushToken: c.PushToken, AppVersion: c.AppVersion, Posture: rawPosture,
		Status: store.DeviceActive, CreatedAt: now, LastSeenAt: now,
	}
	if c.WebAuthn != nil {
		tp, err := protocol.Thumbprint(jwk)
		if err != nil {
			return store.Device{}, deviceErr(400, protocol.ErrInvalidRequest, "enrollment: %v", err)
		}
		if d.WebAuthn, err = e.verifyRegistration(c.WebAuthn, c.Activation, tp); err != nil {
			return store.Device{}, err
		}
		d.Kind = store.DeviceKindWebAuthn
	}
	if d.PublicJWK, err = jwk.MarshalJSON(); err != nil {
		return store.Device{}, fmt.Errorf("pushauth: encoding device key: %w", err)
	}
	if d.ID, err = randomID(16); err != nil {
		return store.Device{}, err
	}
	return d, nil
}

// tokenChecker is a Sender that can tell a push token it could never
// deliver to (the Web Push sender: its endpoint allow-list).
type tokenChecker interface {
	CheckToken(token string) error
}

func (e *Engine) checkPush(provider, token string) error {
	switch provider {
	case "":
		if token != "" {
			return deviceErr(400, protocol.ErrInvalidRequest, "push token without a provider")
		}
		return nil
	case protocol.ProviderFCM, protocol.ProviderAPNs:
	case protocol.ProviderWebPush:
		if _, ok := e.senders[provider].(tokenChecker); !ok {
			return deviceErr(400, protocol.ErrInvalidRequest, "Web Push is not enabled on this bridge")
		}
	default:
		return deviceErr(400, protocol.ErrInvalidRequest, "unknown push provider %q", clip(provider, 32))
	}
	if token == "" || len(token) > protocol.MaxPushToken || !utf8.ValidString(token) {
		return deviceErr(400, protocol.ErrInvalidRequest, "push token must be 1 to %d bytes", protocol.MaxPushToken)
	}
	if tc, ok := e.senders[provider].(tokenChecker); ok {
		if err := tc.CheckToken(token); err != nil {
			return deviceErr(400, protocol.ErrInvalidRequest, "push token: %s", clip(err.Error(), 200))
		}
	}
	return nil
}

func checkText(field, s string) error {
	if len(s) > protocol.MaxString || !utf8.ValidString(s) {
		return deviceErr(400, protocol.ErrInvalidRequest, "%s must be valid UTF-8 of at most %d bytes", field, protocol.MaxString)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return deviceErr(400, protocol.ErrInvalidRequest, "%s contains a control character", field)
		}
	}
	return nil
}

// encodePosture bounds and stores the posture signals as a JSON object.
func encodePosture(p map[string]bool) ([]byte, error) {
	if len(p) == 0 {
		return nil, nil
	}
	if len(p) > protocol.MaxPosture {
		return nil, deviceErr(400, protocol.ErrInvalidRequest, "more than %d posture signals", protocol.MaxPosture)
	}
	for k := range p {
		if k == "" || len(k) > protocol.MaxPostureName {
			return nil, deviceErr(400, protocol.ErrInvalidRequest, "posture signal names must be 1 to %d bytes", protocol.MaxPostureName)
		}
		if err := checkText("posture signal", k); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("pushauth: encoding posture: %w", err)
	}
	return b, nil
}

func postureFlag(raw []byte, name string) bool {
	var p map[string]bool
	if json.Unmarshal(raw, &p) != nil {
		return false
	}
	return p[name]
}

// UpdateDevice applies a device's update of its push token, app version or
// posture.
func (e *Engine) UpdateDevice(ctx context.Context, dev store.Device, u protocol.DeviceUpdate, clientIP string) (store.Device, error) {
	provider, token := dev.PushProvider, dev.PushToken
	if u.PushProvider != nil {
		provider = *u.PushProvider
	}
	if u.PushToken != nil {
		token = *u.PushToken
	}
	if err := e.checkPush(provider, token); err != nil {
		return dev, err
	}
	if u.AppVersion != nil {
		if err := checkText("app_version", *u.AppVersion); err != nil {
			return dev, err
		}
	}
	var posture []byte
	if u.Posture != nil {
		// hardware_key describes the key made at enrollment; a later
		// report cannot change it (it would upgrade a software key).
		p := maps.Clone(u.Posture)
		delete(p, "hardware_key")
		if postureFlag(dev.Posture, "hardware_key") {
			p["hardware_key"] = true
		}
		var err error
		if posture, err = encodePosture(p); err != nil {
			return dev, err
		}
	}
	now := e.now()
	out, err := e.st.UpdateDevice(ctx, dev.ID, func(d store.Device) (store.Device, error) {
		if d.Status != store.DeviceActive {
			return d, deviceErr(401, protocol.ErrDeviceRevoked, "update from a revoked device")
		}
		// A token the device sends, changed or not, clears the stale mark
		// (§6.4): the app resends it at every start, and the provider may
		// have taken it back into use.
		if provider != d.PushProvider || token != d.PushToken || u.PushToken != nil {
			d.PushProvider, d.PushToken, d.PushTokenStale = provider, token, false
		}
		if u.AppVersion != nil {
			d.AppVersion = *u.AppVersion
		}
		if u.Posture != nil {
			d.Posture = posture
		}
		d.LastSeenAt = now
		return d, nil
	})
	if err != nil {
		return dev, err
	}
	e.auditLog(ctx, store.AuditEvent{
		Actor: "device:" + dev.ID, Action: "device.update", Subject: dev.User, Channel: "device", ClientIP: clientIP, Result: store.ResultSuccess,
		Details: map[string]string{"device": dev.ID, "push": out.PushProvider, "app_version": out.AppVersion, "posture": string(out.Posture), "posture_before": string(dev.Posture)},
	})
	return out, nil
}
