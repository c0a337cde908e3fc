package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth/webpush/webpushtest"
)

// Web Push from the bridge to the app, through a local push service that
// checks and decrypts what it gets as a real one would (headless Chromium
// cannot reach a browser vendor's push service, so the subscription is
// the test service's, registered by the app's own code with its own key):
// a login pushes the challenge's id to the subscription, the service
// worker turns that message into a notification, and a 410 from the push
// service retires the subscription until the app registers one again.
func TestWebAppWebPush(t *testing.T) {
	ps := webpushtest.Start(t)
	phone := startPhone(t)
	b := startAppBridge(t, "127.0.0.1:9", fmt.Sprintf("  webpush:\n    allowed_hosts: [%s]", ps.Host()))
	b.user("alice")
	phone.enrollApp(b.appLink("alice"), false)

	var cfg struct {
		VAPIDKey string `json:"vapid_key"`
	}
	resp, err := http.Get(b.base + "/app/config.json")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if len(cfg.VAPIDKey) != 87 { // base64url of a 65-byte point
		t.Fatalf("config.json's vapid_key is %q", cfg.VAPIDKey)
	}
	token, err := ps.NewSubscription(cfg.VAPIDKey)
	if err != nil {
		t.Fatal(err)
	}
	register := func(token string) {
		t.Helper()
		got := evalAsync[string](phone, "register the subscription", fmt.Sprintf(`
			const db = await import('/app/db.js');
			const push = await import('/app/push.js');
			const [acct] = await db.accounts();
			await push.registerPushToken(acct, %q);
			return (await db.getAccount(acct.id)).pushToken;`, token))
		if got != token {
			t.Fatalf("the app stored the push token %q", got)
		}
	}
	register(token)
	if ds := b.devices("alice"); len(ds) != 1 || ds[0].PushProvider != "webpush" || ds[0].PushStale {
		t.Fatalf("after registering the subscription: %+v", ds)
	}

	number, state := b.radiusStart("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg, err := ps.Next(ctx)
	if err != nil {
		t.Fatalf("no push reached the push service: %v (refused: %+v)", err, ps.Refusals())
	}
	var payload struct{ T, CID string }
	if err := json.Unmarshal(msg.Plaintext, &payload); err != nil || payload.T != "challenge" || payload.CID == "" {
		t.Fatalf("the push's payload is %q", msg.Plaintext)
	}
	if msg.Urgency != "high" || msg.TTL <= 0 || msg.TTL > 60 || msg.Topic != payload.CID {
		t.Errorf("push headers: urgency %q, TTL %d, topic %q", msg.Urgency, msg.TTL, msg.Topic)
	}
	if msg.VAPIDKey != cfg.VAPIDKey {
		t.Errorf("the push was signed with VAPID key %s, the app subscribed with %s", msg.VAPIDKey, cfg.VAPIDKey)
	}

	// The decrypted message, handed to the service worker as the browser
	// would, shows the notification.
	phone.do("allow notifications", grantNotifications(b.base))
	reg := phone.pushRegistration(b.base + "/app/")
	phone.deliverPush(b.base, reg, string(msg.Plaintext))
	if !eventually(20*time.Second, func() bool {
		for _, n := range phone.notifications() {
			if n.Tag == payload.CID && n.Title == "Sign-in request" {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the pushed message showed no notification for %s: %+v", payload.CID, phone.notifications())
	}
	if ch := phone.waitChallenge(); ch.User != "alice" {
		t.Errorf("the app shows %+v", ch)
	}
	phone.decide("approve", number)
	if o, _ := phone.outcome(); o != "approved" {
		t.Fatalf("outcome %q", o)
	}
	if code := b.radiusFinish("alice", state); code != "Access-Accept" {
		t.Fatalf("the NAS got %q", code)
	}
	phone.done()

	// The push service says the subscription is gone: the bridge marks the
	// token stale (the app still gets the challenge by long-poll).
	ps.Fail(token, webpushtest.Reply{Status: http.StatusGone})
	_, state = b.radiusStart("alice")
	if !eventually(20*time.Second, func() bool { ds := b.devices("alice"); return len(ds) == 1 && ds[0].PushStale }) {
		t.Fatalf("after a 410 the device's push token is not stale: %+v", b.devices("alice"))
	}
	phone.waitChallenge()
	phone.decide("deny", "")
	if o, _ := phone.outcome(); o != "denied" {
		t.Fatalf("outcome %q", o)
	}
	if code := b.radiusFinish("alice", state); code != "Access-Reject" {
		t.Fatalf("the NAS got %q", code)
	}
	phone.done()
	// A new subscription, registered by the app, clears the mark.
	fresh, err := ps.NewSubscription(cfg.VAPIDKey)
	if err != nil {
		t.Fatal(err)
	}
	register(fresh)
	if ds := b.devices("alice"); len(ds) != 1 || ds[0].PushStale {
		t.Errorf("after registering again: %+v", ds)
	}
	phone.check()
}
