package pushauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// checkingSender is a Web Push sender as the engine sees it: it checks
// tokens (here: the endpoint's host must be push.example) and records
// wakes.
type checkingSender struct{ sent chan pushauth.Wake }

func (s *checkingSender) Provider() string { return protocol.ProviderWebPush }
func (s *checkingSender) Send(_ context.Context, _ string, w pushauth.Wake) error {
	s.sent <- w
	return nil
}
func (s *checkingSender) CheckToken(token string) error {
	if !strings.Contains(token, `"endpoint":"https://push.example/`) {
		return errors.New("endpoint host is not on the allow-list")
	}
	return nil
}

// TestWebPushToken: a webpush token is taken only when a sender for it is
// registered and checks it; its refusal is the sender's reason.
func TestWebPushToken(t *testing.T) {
	good := `{"endpoint":"https://push.example/sub/1","keys":{"p256dh":"BA","auth":"AA"},"vapid":"BA"}`
	bad := `{"endpoint":"http://169.254.169.254/latest","keys":{"p256dh":"BA","auth":"AA"},"vapid":"BA"}`
	withPush := func(c *protocol.EnrollClaims) { c.PushProvider, c.PushToken = protocol.ProviderWebPush, good }

	off := passkeyEnv(t)
	_, status, pe := off.enrollWeb("alice", nil, withPush)
	if status != 400 || pe.Code != protocol.ErrInvalidRequest || pe.Description != "Web Push is not enabled on this bridge" {
		t.Fatalf("webpush without a sender: %d %+v", status, pe)
	}

	s := &checkingSender{sent: make(chan pushauth.Wake, 4)}
	e := passkeyEnv(t, func(_ *pushauth.Config, d *pushauth.Deps) { d.Senders[protocol.ProviderWebPush] = s })
	_, status, pe = e.enrollWeb("alice", nil, func(c *protocol.EnrollClaims) { c.PushProvider, c.PushToken = protocol.ProviderWebPush, bad })
	if status != 400 || !strings.Contains(pe.Description, "allow-list") {
		t.Fatalf("a token the sender refuses: %d %+v", status, pe)
	}
	_, status, pe = e.enrollWeb("alice", nil, func(c *protocol.EnrollClaims) { c.PushProvider, c.PushToken = protocol.ProviderWebPush, "" })
	if status != 400 || !strings.Contains(pe.Description, "push token must be") {
		t.Fatalf("an empty token: %d %+v", status, pe)
	}
	d, status, pe := e.enrollWeb("alice", e.newPasskey(), withPush)
	if d == nil {
		t.Fatalf("a good token: %d %+v", status, pe)
	}
	h := e.start(login("alice"))
	if w := <-s.sent; w.ChallengeID != h.ID || w.Kind != pushauth.WakeChallenge {
		t.Fatalf("wake %+v", w)
	}
	// PUT /device/v1/device is checked the same way.
	for _, c := range []struct {
		token  string
		status int
	}{{bad, 400}, {good, 204}} {
		body := `{"push_provider":"webpush","push_token":` + quote(c.token) + `}`
		if st, out := d.call("PUT", protocol.PathDevice, []byte(body)); st != c.status {
			t.Fatalf("update with %s: %d %s", c.token, st, out)
		}
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
