package pushauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/pushauth/pushtest"
	"github.com/bridge-idp/bridge/store"
)

// TestApproveOverFCM: enroll → start → the push reaches FCM carrying
// nothing but the challenge id → the device fetches and verifies the
// challenge, types the number and approves → the waiter wakes approved.
func TestApproveOverFCM(t *testing.T) {
	e := newEnv(t)
	token := "fcm-token-" + randomToken()
	dev := e.enroll("alice", authenticator.EnrollOptions{Platform: "android", PushProvider: "fcm", PushToken: token, Posture: map[string]bool{"hardware_key": true}})

	h := e.start(login("alice"))
	if len(h.Number) != 2 {
		t.Fatalf("number %q, want 2 digits", h.Number)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	msg, err := e.fcm.Next(ctx)
	if err != nil {
		t.Fatalf("no push reached FCM: %v", err)
	}
	if msg.Token != token {
		t.Fatalf("push to token %q, want the device's", msg.Token)
	}
	if len(msg.Data) != 2 || msg.Data["cid"] != h.ID || msg.Data["t"] != "challenge" {
		t.Fatalf("push data %v: want only {t: challenge, cid: %s}", msg.Data, h.ID)
	}

	c := e.fetch(dev, msg.Data["cid"])
	want := protocol.ChallengeClaims{Issuer: e.base, ID: h.ID, User: "alice", AppID: "vpn", AppName: "Corporate VPN", Channel: "radius",
		ClientIP: "198.51.100.7", UserAgent: "nas-1", Location: "Lisbon, PT", IssuedAt: e.clock.Now().Unix(), Expires: h.ExpiresAt.Unix(), NumberDigits: 2}
	if c.Claims != want {
		t.Fatalf("challenge claims\n got %+v\nwant %+v", c.Claims, want)
	}
	state, err := dev.Answer(e.ctx, c, protocol.Approve, h.Number)
	if err != nil || state != "approved" {
		t.Fatalf("answer: %q, %v", state, err)
	}
	o := e.wait(h.ID)
	if !o.Approved() || o.DeviceID != dev.ID() || o.KeyAlg != "ES256" || !o.HardwareKey {
		t.Fatalf("outcome %+v", o)
	}
	if !e.audited("push.approved", store.ResultSuccess, "approved on device") {
		t.Fatal("approval not audited")
	}
}

// TestApproveOverAPNs: the same through APNs, with an Ed25519 device key.
func TestApproveOverAPNs(t *testing.T) {
	e := newEnv(t)
	token := randomToken()
	dev := e.enroll("alice", authenticator.EnrollOptions{Algorithm: "EdDSA", Platform: "ios", PushProvider: "apns", PushToken: token})
	req := login("alice")
	req.NumberMatching = false
	h := e.start(req)
	if h.Number != "" {
		t.Fatalf("number %q without number matching", h.Number)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	r, err := e.apns.Next(ctx)
	if err != nil {
		t.Fatalf("no push reached APNs: %v", err)
	}
	if r.Token != token || r.Header.Get("apns-collapse-id") != h.ID || r.Header.Get("apns-push-type") != "alert" || r.Header.Get("apns-priority") != "10" {
		t.Fatalf("APNs request: token %q, headers %v", r.Token, r.Header)
	}
	if p := apnsPayload(t, r); p["cid"] != h.ID || p["t"] != "challenge" {
		t.Fatalf("APNs payload %v has no challenge id", r.Payload)
	}
	c := e.fetch(dev, h.ID)
	if c.Claims.NumberDigits != 0 {
		t.Fatal("challenge asks for a number without number matching")
	}
	if _, err := dev.Answer(e.ctx, c, protocol.Approve, ""); err != nil {
		t.Fatal(err)
	}
	if o := e.wait(h.ID); !o.Approved() || o.KeyAlg != "EdDSA" || o.HardwareKey {
		t.Fatalf("outcome %+v", o)
	}
}

// TestLongPollOnly: a device without any push provider finds the
// challenge by long-poll; the poll returns as soon as the challenge exists.
func TestLongPollOnly(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	type result struct {
		cs  []authenticator.Challenge
		err error
	}
	polled := make(chan result, 1)
	go func() {
		cs, err := dev.Pending(e.ctx, 25*time.Second)
		polled <- result{cs, err}
	}()
	// The poll is waiting (or about to); starting the login wakes it.
	h := e.start(login("alice"))
	var r result
	select {
	case r = <-polled:
	case <-time.After(20 * time.Second):
		t.Fatal("the long-poll was not woken by the new challenge")
	}
	if r.err != nil || len(r.cs) != 1 || r.cs[0].ID != h.ID {
		t.Fatalf("pending: %v, %v", r.cs, r.err)
	}
	if _, err := dev.Answer(e.ctx, r.cs[0], protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}
	if o := e.wait(h.ID); !o.Approved() {
		t.Fatalf("outcome %+v", o)
	}
	if n := len(e.fcm.Messages()) + len(e.apns.Requests()); n != 0 {
		t.Fatalf("%d pushes sent to a poll-only device", n)
	}
	// Once answered, the challenge is no longer pending.
	cs, err := dev.Pending(e.ctx, 0)
	if err != nil || len(cs) != 0 {
		t.Fatalf("pending after the answer: %v, %v", cs, err)
	}
}

// TestSlowProviderDoesNotBlock: FCM holds every request; Start returns at
// once and the device still answers by long-poll.
func TestSlowProviderDoesNotBlock(t *testing.T) {
	e := newEnv(t, func(c *pushauth.Config, _ *pushauth.Deps) { c.DeliveryTimeout = 2 * time.Second })
	e.fcm.SetDelay(time.Minute)
	dev := e.enroll("alice", authenticator.EnrollOptions{PushProvider: "fcm", PushToken: "slow-" + randomToken()})
	started := make(chan pushauth.Handle, 1)
	go func() { started <- e.start(login("alice")) }()
	var h pushauth.Handle
	select {
	case h = <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("Start waited for the slow push provider")
	}
	cs, err := dev.Pending(e.ctx, 0)
	if err != nil || len(cs) != 1 {
		t.Fatalf("pending: %v, %v", cs, err)
	}
	if _, err := dev.Answer(e.ctx, cs[0], protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}
	if o := e.wait(h.ID); !o.Approved() {
		t.Fatalf("outcome %+v", o)
	}
}

// TestStaleToken: FCM says the token is unregistered; the device is marked
// stale and keeps working over long-poll.
func TestStaleToken(t *testing.T) {
	e := newEnv(t)
	token := "gone-" + randomToken()
	e.fcm.Unregister(token)
	dev := e.enroll("alice", authenticator.EnrollOptions{PushProvider: "fcm", PushToken: token})
	h := e.start(login("alice"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := e.st.GetDevice(e.ctx, dev.ID())
		if err != nil {
			t.Fatal(err)
		}
		if d.PushTokenStale {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unregistered token was not marked stale")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The same token sent again clears the mark (§6.4: the app sends its
	// token at every start; the provider may have taken it back).
	if err := dev.UpdatePush(e.ctx, "fcm", token); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.st.GetDevice(e.ctx, dev.ID()); d.PushTokenStale {
		t.Fatal("the push token sent again did not clear the stale mark")
	}
	if _, err := e.st.UpdateDevice(e.ctx, dev.ID(), func(d store.Device) (store.Device, error) {
		d.PushTokenStale = true
		return d, nil
	}); err != nil {
		t.Fatal(err)
	}
	// A new token from the device clears the mark.
	if err := dev.UpdatePush(e.ctx, "fcm", "fresh-"+randomToken()); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.st.GetDevice(e.ctx, dev.ID()); d.PushTokenStale {
		t.Fatal("a new push token did not clear the stale mark")
	}
	c := e.fetch(dev, h.ID)
	if _, err := dev.Answer(e.ctx, c, protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}
	if o := e.wait(h.ID); !o.Approved() {
		t.Fatalf("outcome %+v", o)
	}
}

// TestOnePendingPerUser: a second login to the same application from the
// same client joins the pending challenge (no second push); a login to
// another application supersedes it, and the devices are told to dismiss.
func TestOnePendingPerUser(t *testing.T) {
	e := newEnv(t)
	token := "fcm-" + randomToken()
	e.enroll("alice", authenticator.EnrollOptions{PushProvider: "fcm", PushToken: token})
	h1 := e.start(login("alice"))
	h2 := e.start(login("alice"))
	if !h2.Joined || h2.ID != h1.ID || h2.Number != h1.Number {
		t.Fatalf("second login: %+v, want it to join %+v", h2, h1)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if _, err := e.fcm.Next(ctx); err != nil {
		t.Fatal(err)
	}
	other := login("alice")
	other.AppID, other.AppName = "wiki", "Wiki"
	h3 := e.start(other)
	if h3.Joined || h3.ID == h1.ID {
		t.Fatalf("login to another app joined: %+v", h3)
	}
	if o := e.wait(h1.ID); o.State != store.ChallengeSuperseded {
		t.Fatalf("first challenge: %+v, want superseded", o)
	}
	kinds := map[string]string{}
	for range 2 {
		m, err := e.fcm.Next(ctx)
		if err != nil {
			t.Fatalf("pushes after the second app's login: %v", err)
		}
		kinds[m.Data["cid"]] = m.Data["t"]
	}
	if kinds[h1.ID] != "dismiss" || kinds[h3.ID] != "challenge" {
		t.Fatalf("pushes %v: want a dismiss for %s and a challenge for %s", kinds, h1.ID, h3.ID)
	}
	if got := len(e.fcm.Messages()); got != 3 {
		t.Fatalf("%d pushes in all, want 3 (the joined login sent none)", got)
	}
}

// TestFirstAnswerWins: two devices of the user; the first valid answer
// closes the challenge, the second gets already_answered, and the other
// device is told to dismiss.
func TestFirstAnswerWins(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice", authenticator.EnrollOptions{Name: "phone"})
	tabletToken := randomToken()
	tablet := e.enroll("alice", authenticator.EnrollOptions{Name: "tablet", Algorithm: "EdDSA", PushProvider: "apns", PushToken: tabletToken})
	h := e.start(login("alice"))
	c1, c2 := e.fetch(phone, h.ID), e.fetch(tablet, h.ID)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, a := range []struct {
		d *authenticator.Device
		c authenticator.Challenge
	}{{phone, c1}, {tablet, c2}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.d.Answer(e.ctx, a.c, protocol.Approve, h.Number)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			serverErr(t, err, 409, protocol.ErrAlreadyAnswered)
		}
	}
	if won != 1 {
		t.Fatalf("%d answers won, want exactly 1 (%v)", won, errs)
	}
	o := e.wait(h.ID)
	if !o.Approved() {
		t.Fatalf("outcome %+v", o)
	}
	if o.DeviceID == phone.ID() {
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		for {
			r, err := e.apns.Next(ctx)
			if err != nil {
				t.Fatalf("the tablet was not told to dismiss: %v", err)
			}
			if p := apnsPayload(t, r); p["t"] == "dismiss" && p["cid"] == h.ID && r.Header.Get("apns-push-type") == "background" {
				break
			}
		}
	}
	if !e.audited("push.answer", store.ResultFailure, "second answer") && !e.audited("push.answer", store.ResultFailure, "already") {
		t.Fatal("the losing answer was not audited")
	}
}

// TestDenyAndBackoff: a denial ends the login and makes the next push wait.
func TestDenyAndBackoff(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	if _, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Deny, ""); err != nil {
		t.Fatal(err)
	}
	if o := e.wait(h.ID); o.State != store.ChallengeDenied {
		t.Fatalf("outcome %+v", o)
	}
	_, err := e.eng.Start(e.ctx, login("alice"))
	var rl *pushauth.RateLimitError
	if !errors.Is(err, pushauth.ErrRateLimited) || !errors.As(err, &rl) || !rl.RetryAfter.Equal(e.clock.Now().Add(pushauth.DefaultBackoffBase)) {
		t.Fatalf("start right after a denial: %v, want back-off of %v", err, pushauth.DefaultBackoffBase)
	}
	e.clock.Add(pushauth.DefaultBackoffBase)
	h = e.start(login("alice"))
	// A timeout doubles the back-off.
	e.clock.Add(pushauth.DefaultChallengeTTL)
	if o := e.wait(h.ID); o.State != store.ChallengeExpired {
		t.Fatalf("outcome %+v, want expired", o)
	}
	_, err = e.eng.Start(e.ctx, login("alice"))
	if !errors.As(err, &rl) || !rl.RetryAfter.Equal(e.clock.Now().Add(2*pushauth.DefaultBackoffBase)) {
		t.Fatalf("start after a denial and a timeout: %v, want back-off of %v", err, 2*pushauth.DefaultBackoffBase)
	}
	// An approval resets it.
	e.clock.Add(2 * pushauth.DefaultBackoffBase)
	h = e.start(login("alice"))
	if _, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}
	e.wait(h.ID)
	if _, err := e.eng.Start(e.ctx, login("alice")); err != nil {
		t.Fatalf("start after an approval: %v", err)
	}
}

// TestFraudReport: "this wasn't me" closes the challenge, locks pushes to
// the user, and calls the webhook with a signed report.
func TestFraudReport(t *testing.T) {
	hook := startWebhook(t)
	e := newEnv(t, func(c *pushauth.Config, _ *pushauth.Deps) {
		c.FraudWebhook = pushauth.Webhook{URL: hook.url, Secret: []byte("webhook secret of 32 bytes......")}
	})
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	state, err := dev.Answer(e.ctx, e.fetch(dev, h.ID), protocol.Fraud, "")
	if err != nil || state != "fraud" {
		t.Fatalf("fraud answer: %q, %v", state, err)
	}
	if o := e.wait(h.ID); o.State != store.ChallengeFraud || o.Approved() {
		t.Fatalf("outcome %+v", o)
	}
	r := hook.next(t, []byte("webhook secret of 32 bytes......"))
	if r.Event != "push.fraud_report" || r.User != "alice" || r.Challenge != h.ID || r.Device != dev.ID() || r.ClientIP != "198.51.100.7" {
		t.Fatalf("webhook report %+v", r)
	}
	e.clock.Add(pushauth.DefaultBackoffMax + time.Second) // past any back-off
	_, err = e.eng.Start(e.ctx, login("alice"))
	if !errors.Is(err, pushauth.ErrLocked) {
		t.Fatalf("start after a fraud report: %v, want locked", err)
	}
	if !e.audited("push.fraud", store.ResultDenied, "fraud") {
		t.Fatal("fraud report not audited")
	}
	e.clock.Add(pushauth.DefaultFraudLock)
	if _, err := e.eng.Start(e.ctx, login("alice")); err != nil {
		t.Fatalf("start after the lock: %v", err)
	}
}

// TestHourlyCap: a user gets at most MaxPerHour challenges an hour.
func TestHourlyCap(t *testing.T) {
	e := newEnv(t, func(c *pushauth.Config, _ *pushauth.Deps) {
		c.MaxPerHour = 3
		c.BackoffBase, c.BackoffMax = time.Second, time.Second
	})
	e.enroll("alice", authenticator.EnrollOptions{})
	for i := range 3 {
		req := login("alice")
		req.AppID = string(rune('a' + i)) // each supersedes the last...
		e.start(req)
		e.clock.Add(time.Second) // ...which counts as unanswered: back-off
	}
	if _, err := e.eng.Start(e.ctx, login("alice")); !errors.Is(err, pushauth.ErrRateLimited) {
		t.Fatalf("fourth push in an hour: %v, want rate limited", err)
	}
	e.clock.Add(time.Hour + time.Second)
	e.start(login("alice"))
}

// TestNoDevice: a user without a device cannot be asked.
func TestNoDevice(t *testing.T) {
	e := newEnv(t)
	if _, err := e.eng.Start(e.ctx, login("nobody")); !errors.Is(err, pushauth.ErrNoDevice) {
		t.Fatalf("got %v, want ErrNoDevice", err)
	}
}

// TestCancel: the login side gives up; the waiter wakes cancelled and the
// device can no longer answer.
func TestCancel(t *testing.T) {
	e := newEnv(t)
	dev := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	c := e.fetch(dev, h.ID)
	if err := e.eng.Cancel(e.ctx, h.ID, "NAS stopped retrying"); err != nil {
		t.Fatal(err)
	}
	if o := e.wait(h.ID); o.State != store.ChallengeCancelled {
		t.Fatalf("outcome %+v", o)
	}
	_, err := dev.Answer(e.ctx, c, protocol.Approve, h.Number)
	serverErr(t, err, 409, protocol.ErrAlreadyAnswered)
}

// TestWaitHonoursContext: a waiter whose context ends returns at once and
// leaves the challenge pending for other waiters.
func TestWaitHonoursContext(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := e.eng.Wait(ctx, h.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context: %v", err)
	}
	c, err := e.state.GetChallenge(e.ctx, h.ID)
	if err != nil || c.State != store.ChallengePending {
		t.Fatalf("challenge after the waiter left: %+v, %v", c, err)
	}
}

// TestSweepExpires: a challenge nobody waits for is closed by the sweep.
func TestSweepExpires(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	if n, err := e.eng.Sweep(e.ctx); err != nil || n != 0 {
		t.Fatalf("sweep before expiry: %d, %v", n, err)
	}
	e.clock.Add(pushauth.DefaultChallengeTTL)
	if n, err := e.eng.Sweep(e.ctx); err != nil || n != 1 {
		t.Fatalf("sweep after expiry: %d, %v", n, err)
	}
	c, _ := e.state.GetChallenge(e.ctx, h.ID)
	if c.State != store.ChallengeExpired {
		t.Fatalf("state %s, want expired", c.State)
	}
	if !e.audited("push.expired", store.ResultDenied, "") {
		t.Fatal("expiry not audited")
	}
}

// apnsPayload decodes what the bridge's own keys in an APNs payload say.
func apnsPayload(t *testing.T, r pushtest.APNsRequest) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		t.Fatalf("APNs payload %s: %v", r.Payload, err)
	}
	return p
}

// TestLongPollKnown: a device that already shows a challenge long-polls
// with it as known; the poll waits, and returns when the challenge is
// answered elsewhere (the list no longer holds it).
func TestLongPollKnown(t *testing.T) {
	e := newEnv(t)
	phone := e.enroll("alice", authenticator.EnrollOptions{})
	tablet := e.enroll("alice", authenticator.EnrollOptions{})
	h := e.start(login("alice"))
	// Nothing changed since the tablet got h: the poll waits instead of
	// answering at once (it is still waiting when its context ends).
	short, cancel := context.WithTimeout(e.ctx, 500*time.Millisecond)
	cs, err := tablet.Pending(short, 25*time.Second, h.ID)
	cancel()
	if err == nil {
		t.Fatalf("a long-poll naming the only pending challenge answered at once: %v", cs)
	}
	polled := make(chan []authenticator.Challenge, 1)
	go func() {
		cs, err := tablet.Pending(e.ctx, 25*time.Second, h.ID)
		if err != nil {
			t.Error(err)
		}
		polled <- cs
	}()
	if _, err := phone.Answer(e.ctx, e.fetch(phone, h.ID), protocol.Approve, h.Number); err != nil {
		t.Fatal(err)
	}
	select {
	case cs := <-polled:
		if len(cs) != 0 {
			t.Fatalf("pending after the answer elsewhere: %v", cs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long-poll with a known challenge was not woken when it was answered")
	}
}

// TestJoinIsPerStation: a login from another station (another RADIUS
// Calling-Station-Id, another browser session) to the same application does
// not join the pending challenge, so one approval can never let in a login
// the user did not see; it supersedes it.
func TestJoinIsPerStation(t *testing.T) {
	e := newEnv(t)
	e.enroll("alice", authenticator.EnrollOptions{})
	mine := login("alice")
	mine.Station = "AA-BB-CC-00-00-01"
	h1 := e.start(mine)
	if h := e.start(mine); !h.Joined || h.ID != h1.ID {
		t.Fatalf("the same station: %+v, want it to join %s", h, h1.ID)
	}
	theirs := mine
	theirs.Station = "DE-AD-BE-EF-00-02"
	h2 := e.start(theirs)
	if h2.Joined || h2.ID == h1.ID {
		t.Fatalf("another station joined: %+v", h2)
	}
	if o := e.wait(h1.ID); o.State != store.ChallengeSuperseded {
		t.Fatalf("first challenge: %+v, want superseded", o)
	}
}
