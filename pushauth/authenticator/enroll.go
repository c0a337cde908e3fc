package authenticator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// EnrollOptions describe the new device. The zero value enrolls a
// poll-only ES256 device of platform "other".
type EnrollOptions struct {
	// Algorithm of the device key: protocol.AlgES256 (default) or
	// protocol.AlgEdDSA.
	Algorithm string
	// Platform: protocol.PlatformAndroid, PlatformIOS or PlatformOther
	// (default).
	Platform string
	// Name, shown to the user and the administrator ("Alice's phone").
	Name string
	// AppVersion of the authenticator.
	AppVersion string
	// PushProvider (protocol.ProviderFCM or ProviderAPNs) and PushToken
	// register the device for pushes; both empty: poll only.
	PushProvider string
	PushToken    string
	// Posture signals (rooted, jailbroken, emulator, debugger, hooked).
	Posture map[string]bool
	// CACertsPEM are CA certificates trusted for the bridge's TLS, in
	// addition to the system roots; they are saved with the device.
	CACertsPEM []byte
	// HTTPClient, if not nil, is copied for the device's requests (it must
	// use an *http.Transport when a TLS pin or CA certificates apply, and a
	// Timeout, if set, must exceed the long-poll's wait). Redirects are
	// never followed: a proof is bound to one URL.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ErrPushKeyPin: the enrollment answer does not hold the push key whose
// thumbprint the activation URL pins.
var ErrPushKeyPin = errors.New("authenticator: server key does not match the pinned fingerprint")

// Enroll enrolls a new device with the activation URL from the bridge (the
// QR code): it makes a new key, posts the enrollment signed by it, and pins
// the push key named in the URL (and the TLS key, if the URL names one).
// The device is not saved: call Save.
//
// Endorsements in the answer that do not check out are ignored: the pinned
// key stays the root of trust, and the activation code is spent.
func Enroll(ctx context.Context, activationURL string, opts EnrollOptions) (*Device, error) {
	act, err := protocol.ParseActivation(activationURL)
	if err != nil {
		return nil, err
	}
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if act.TLSPin != "" {
		if u, _ := url.Parse(act.BaseURL); u.Scheme != "https" {
			return nil, fmt.Errorf("authenticator: the activation URL pins a TLS key but the bridge URL %s is not https", act.BaseURL)
		}
	}
	client, err := httpClient(opts.HTTPClient, act.TLSPin, opts.CACertsPEM)
	if err != nil {
		return nil, err
	}
	key, err := newKey(opts.Algorithm)
	if err != nil {
		return nil, err
	}
	claims := protocol.EnrollClaims{
		Activation:   act.Code,
		URL:          act.BaseURL + protocol.PathEnroll,
		IssuedAt:     opts.Now().Unix(),
		Platform:     opts.Platform,
		Name:         opts.Name,
		AppVersion:   opts.AppVersion,
		PushProvider: opts.PushProvider,
		PushToken:    opts.PushToken,
		Posture:      opts.Posture,
	}
	signed, err := protocol.Sign(opts.Algorithm, key, protocol.TypEnroll, "", true, claims)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, claims.URL, bytes.NewReader([]byte(signed)))
	if err != nil {
		return nil, fmt.Errorf("authenticator: %w", err)
	}
	req.Header.Set("Content-Type", "application/jose")
	var resp protocol.EnrollResponse
	if err := roundTrip(client, req, http.StatusCreated, &resp); err != nil {
		return nil, err
	}
	if resp.DeviceID == "" || resp.User == "" {
		return nil, errors.New("authenticator: the enrollment answer has no device id or user")
	}
	d := &Device{
		base:         act.BaseURL,
		id:           resp.DeviceID,
		user:         resp.User,
		alg:          opts.Algorithm,
		key:          key,
		pinned:       act.PushKey,
		tlsPin:       act.TLSPin,
		caPEM:        opts.CACertsPEM,
		enrolled:     opts.Now(),
		client:       client,
		now:          opts.Now,
		pushProvider: opts.PushProvider,
		pushToken:    opts.PushToken,
	}
	for _, k := range resp.PushKeys.Keys {
		if pk, err := pushKey(k); err == nil && pk.KeyID == act.PushKey {
			d.trusted = map[string]jose.JSONWebKey{pk.KeyID: pk}
			break
		}
	}
	if d.trusted == nil {
		return nil, fmt.Errorf("%w (%s): the device %s was enrolled on the server but must not be used; ask the administrator to remove it", ErrPushKeyPin, act.PushKey, resp.DeviceID)
	}
	_ = d.endorse(resp.Endorsements) // see the doc comment
	return d, nil
}

// withDefaults fills in the defaults and checks the options.
func (o EnrollOptions) withDefaults() (EnrollOptions, error) {
	if o.Algorithm == "" {
		o.Algorithm = protocol.AlgES256
	}
	if o.Platform == "" {
		o.Platform = protocol.PlatformOther
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var errs []error
	switch o.Algorithm {
	case protocol.AlgES256, protocol.AlgEdDSA:
	default:
		errs = append(errs, fmt.Errorf("algorithm %q is not supported (want %s or %s)", o.Algorithm, protocol.AlgES256, protocol.AlgEdDSA))
	}
	switch o.Platform {
	case protocol.PlatformAndroid, protocol.PlatformIOS, protocol.PlatformOther:
	default:
		errs = append(errs, fmt.Errorf("platform %q is not one of %s, %s, %s", o.Platform, protocol.PlatformAndroid, protocol.PlatformIOS, protocol.PlatformOther))
	}
	if err := checkPush(o.PushProvider, o.PushToken); err != nil {
		errs = append(errs, err)
	}
	if len(o.Name) > protocol.MaxString || len(o.AppVersion) > protocol.MaxString {
		errs = append(errs, fmt.Errorf("name and app version must be at most %d bytes", protocol.MaxString))
	}
	if err := checkPosture(o.Posture); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("authenticator: enroll options: %w", errors.Join(errs...))
	}
	return o, nil
}

func checkPush(provider, token string) error {
	switch {
	case provider != "" && provider != protocol.ProviderFCM && provider != protocol.ProviderAPNs:
		return fmt.Errorf("push provider %q is not %s or %s", provider, protocol.ProviderFCM, protocol.ProviderAPNs)
	case (provider == "") != (token == ""):
		return errors.New("a push provider needs a push token and a push token needs a provider")
	case len(token) > protocol.MaxPushToken:
		return fmt.Errorf("the push token is longer than %d bytes", protocol.MaxPushToken)
	}
	return nil
}

func checkPosture(p map[string]bool) error {
	if len(p) > protocol.MaxPosture {
		return fmt.Errorf("at most %d posture signals", protocol.MaxPosture)
	}
	for k := range p {
		if k == "" || len(k) > protocol.MaxPostureName {
			return fmt.Errorf("posture signal names must be 1-%d bytes", protocol.MaxPostureName)
		}
	}
	return nil
}
