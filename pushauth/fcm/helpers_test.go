package fcm

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth/pushtest"
)

// deviceToken looks like an FCM registration token.
const deviceToken = "fKx3_w0aQ1ab:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx_bm6NkF9Ekd-aG7gq0YxvZp5ZbXlW4q1k3bYc0pU3dGW_OMXC6UOaY"

// fixedNow is the senders' clock in tests, so TTLs are exact.
var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newSender starts nothing: it makes a Sender for the fake f, with a fixed
// clock, after mod has changed the config.
func newSender(t *testing.T, f *pushtest.FCM, mod func(*Config)) *Sender {
	t.Helper()
	cfg := Config{CredentialsFile: f.CredentialsFile(t), Endpoint: f.Endpoint()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.now = func() time.Time { return fixedNow }
	return s
}

// waitCtx bounds a wait for a delivery that should already have happened.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// editCredentials rewrites one field of a credentials file (nil deletes it).
func editCredentials(t *testing.T, path, field string, value any) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if value == nil {
		delete(m, field)
	} else {
		m[field] = value
	}
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keys returns the keys of a JSON object.
func keys(t *testing.T, raw json.RawMessage) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %s", raw)
	}
	return m
}
