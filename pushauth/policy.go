package pushauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// Device-key policies (Request.DeviceKeys; config device_keys).
const (
	KeysAny      = "any"      // every device ("" too)
	KeysHardware = "hardware" // not a software key: a passkey, or a native key the device says is in hardware
	KeysAttested = "attested" // a passkey whose attestation chained to a trusted root at enrollment
)

// validKeys reports whether p is a device-key policy.
func validKeys(p string) bool {
	return p == "" || p == KeysAny || p == KeysHardware || p == KeysAttested
}

// claimKeys is a policy as the challenge's "keys" claim says it: empty
// for any.
func claimKeys(p string) string {
	if p == KeysAny {
		return ""
	}
	return p
}

// challengeKeys reads the device-key policy back from the challenge's own
// signed claims. The challenge is the engine's own JWS from its state
// store, so its payload is decoded without verifying again; keeping the
// policy only there means that what the device is shown ("keys") and what
// the engine enforces cannot differ, with no schema change. A payload that
// does not decode fails closed (attested: only the strictest devices).
func challengeKeys(c store.Challenge) string {
	parts := strings.Split(c.Signed, ".")
	if len(parts) != 3 {
		return KeysAttested
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return KeysAttested
	}
	var claims struct {
		Keys string `json:"keys"`
	}
	if json.Unmarshal(raw, &claims) != nil || !validKeys(claims.Keys) {
		return KeysAttested
	}
	return claims.Keys
}

// qualifies reports whether device d may be asked and may answer under
// policy p. "Hardware" takes the native app's word for its key
// (posture hardware_key, a signal); a passkey is always in an
// authenticator. "Attested" needs evidence: a passkey whose attestation
// statement verified, was not self attestation (a credential key signing
// itself says nothing about the authenticator), and whose certificate
// chain reached a root the bridge trusts (AttestationTrusted, see
// attestation.go): a consistent statement under a CA anyone can make
// proves nothing either.
func qualifies(d store.Device, p string) bool {
	switch p {
	case "", KeysAny:
		return true
	case KeysHardware:
		return d.Kind == store.DeviceKindWebAuthn || d.Kind == store.DeviceKindJWS && postureFlag(d.Posture, "hardware_key")
	case KeysAttested:
		w := d.WebAuthn
		return d.Kind == store.DeviceKindWebAuthn && w != nil && w.AttestationVerified && w.AttestationTrusted && attestedType(w.AttestationType)
	}
	return false
}

// attestedType reports whether an attestation type (go-webauthn's
// metadata names) is one where a key other than the credential's signed
// for it: basic, attestation CA, anonymisation CA. Not basic_surrogate,
// which is self attestation.
func attestedType(t string) bool {
	switch t {
	case "basic_full", "attca", "anonca":
		return true
	}
	return false
}

// keyKind names a device's key for refusals and audit: passkey, hardware
// or software.
func keyKind(d store.Device) string {
	switch {
	case d.Kind == store.DeviceKindWebAuthn:
		if qualifies(d, KeysAttested) {
			return "attested passkey"
		}
		return "passkey"
	case postureFlag(d.Posture, "hardware_key"):
		return "hardware key"
	}
	return "software key"
}

// qualifying keeps the devices that policy p accepts.
func qualifying(devs []store.Device, p string) []store.Device {
	if p == "" || p == KeysAny {
		return devs
	}
	var out []store.Device
	for _, d := range devs {
		if qualifies(d, p) {
			out = append(out, d)
		}
	}
	return out
}

// policyRefusal is the refusal of an answer from a device that policy p
// does not accept.
func policyRefusal(d store.Device, p string) *DeviceError {
	return deviceErr(403, protocol.ErrInvalidAnswer, "this application accepts only %s device keys; this device has a %s", p, keyKind(d))
}

// Qualifies reports whether device d meets device-key policy p ("" or
// KeysAny, KeysHardware, KeysAttested), as the engine decides it: for pages
// that show a user which applications a device can approve.
func Qualifies(d store.Device, p string) bool { return qualifies(d, p) }

// DeviceQualifies reports whether device deviceID is active and meets
// device-key policy p: for a front end that would let something the
// device approved earlier (a browser session) stand in for a new sign-in
// to an application with policy p. An unknown, revoked or unreadable
// device does not qualify, nor does "" (no device: a sign-in with a code).
func (e *Engine) DeviceQualifies(ctx context.Context, deviceID, p string) bool {
	if deviceID == "" || !validKeys(p) {
		return false
	}
	d, err := e.st.GetDevice(ctx, deviceID)
	if err != nil || d.Status != store.DeviceActive {
		return false
	}
	return qualifies(d, p)
}
