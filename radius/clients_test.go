package radius

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/directory"
)

// namedDir is a directory that is only a name: validate looks no further.
type namedDir struct{ directory.Directory }

func (namedDir) Name() string { return "local" }

// A client cannot combine second_factor otp with a strict device_keys;
// push with one, or otp with any, is fine.
func TestOTPClientWithDeviceKeysRefused(t *testing.T) {
	client := func(factor, keys string) *Client {
		return &Client{Name: "ssh", Prefix: netip.MustParsePrefix("192.0.2.1/32"), Directory: namedDir{}, Secret: []byte("n8Lq2xV7fP0sKc4wYb9e"), Wait: Challenge, SecondFactor: factor,
			DeviceKeys: keys, MessageAuthenticator: MAAlways, Failmode: FailSecure}
	}
	for _, keys := range []string{"hardware", "attested"} {
		if err := client(FactorOTP, keys).validate(); err == nil || !strings.Contains(err.Error(), "second factor otp with device_keys "+keys) {
			t.Errorf("otp with %s: %v, want the refusal", keys, err)
		}
		if err := client(FactorPush, keys).validate(); err != nil {
			t.Errorf("push with %s: %v", keys, err)
		}
	}
	for _, keys := range []string{"", "any"} {
		if err := client(FactorOTP, keys).validate(); err != nil {
			t.Errorf("otp with %q: %v", keys, err)
		}
	}
}

// A client cannot combine failmode safe with a strict device_keys either:
// failing open accepts on the password alone, where the operator said a
// hardware-bound key must approve. Secure with one, or safe with any, is
// fine.
func TestFailsafeClientWithDeviceKeysRefused(t *testing.T) {
	client := func(failmode, keys string) *Client {
		return &Client{Name: "vpn", Prefix: netip.MustParsePrefix("192.0.2.1/32"), Directory: namedDir{}, Secret: []byte("n8Lq2xV7fP0sKc4wYb9e"), Wait: Challenge, SecondFactor: FactorPush,
			DeviceKeys: keys, MessageAuthenticator: MAAlways, Failmode: failmode}
	}
	for _, keys := range []string{"hardware", "attested"} {
		if err := client(FailSafe, keys).validate(); err == nil || !strings.Contains(err.Error(), "failmode safe with device_keys "+keys) {
			t.Errorf("safe with %s: %v, want the refusal", keys, err)
		}
		if err := client(FailSecure, keys).validate(); err != nil {
			t.Errorf("secure with %s: %v", keys, err)
		}
	}
	for _, keys := range []string{"", "any"} {
		if err := client(FailSafe, keys).validate(); err != nil {
			t.Errorf("safe with %q: %v", keys, err)
		}
	}
}
