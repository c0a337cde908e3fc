package pushauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

var update = flag.Bool("update", false, "rewrite the generated examples in docs/device-protocol.md")

// The examples in docs/device-protocol.md are what this test sees on the
// wire, so they cannot go stale: it runs an enrollment, an approval and a
// few refusals over HTTP with the reference authenticator, records every
// exchange and push, and renders them. With -update it rewrites the doc's
// generated section; without, it fails when the section is missing or its
// structure (paths, headers, status codes, field names, message shapes)
// differs from what the code produces now. Values that are random or depend
// on the time are normalised away before comparing.
const (
	exampleDoc   = "../docs/device-protocol.md"
	exampleBegin = "<!-- BEGIN GENERATED EXAMPLES -->"
	exampleEnd   = "<!-- END GENERATED EXAMPLES -->"
	exampleBase  = "https://bridge.example.com"
)

func TestDeviceProtocolExamples(t *testing.T) {
	got := generateExamples(t)
	doc, err := os.ReadFile(exampleDoc)
	if err != nil {
		t.Fatalf("reading %s: %v", exampleDoc, err)
	}
	before, old, after, err := splitGenerated(string(doc))
	if err != nil {
		t.Fatalf("%s: %v; add the markers %s and %s on lines of their own, then run\n\tgo test ./pushauth -run TestDeviceProtocolExamples -update",
			exampleDoc, err, exampleBegin, exampleEnd)
	}
	if *update {
		if err := os.WriteFile(exampleDoc, []byte(before+exampleBegin+"\n"+got+exampleEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := firstDiff(normaliseExamples(old), normaliseExamples(got)); diff != "" {
		t.Fatalf("the generated examples in %s are stale (normalised, first difference below); the protocol changed: check the rest of the doc, then run\n\tgo test ./pushauth -run TestDeviceProtocolExamples -update\n\n%s",
			exampleDoc, diff)
	}
}

// splitGenerated cuts doc around the generated section.
func splitGenerated(doc string) (before, section, after string, err error) {
	i := strings.Index(doc, exampleBegin+"\n")
	j := strings.Index(doc, exampleEnd)
	switch {
	case i < 0 || j < 0:
		return "", "", "", fmt.Errorf("the generated examples section is missing")
	case strings.Count(doc, exampleBegin) != 1 || strings.Count(doc, exampleEnd) != 1 || j < i:
		return "", "", "", fmt.Errorf("the generated examples markers are duplicated or out of order")
	}
	return doc[:i], doc[i+len(exampleBegin)+1 : j], doc[j+len(exampleEnd):], nil
}

var (
	jwsPattern   = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)
	tokenPattern = regexp.MustCompile(`[A-Za-z0-9_-]{16,}`)
	longNumber   = regexp.MustCompile(`\b\d{6,}\b`)
	numberString = regexp.MustCompile(`"\d+(\.\d+)?s?"`)
	hasDigit     = regexp.MustCompile(`[0-9]`)
	hasUpper     = regexp.MustCompile(`[A-Z]`)
	hasLower     = regexp.MustCompile(`[a-z]`)
)

// normaliseExamples replaces what changes from run to run with
// placeholders: JWSs, random tokens (ids, keys, thumbprints, hashes,
// nonces, push tokens: 16 or more base64url characters with a digit or
// both cases; words such as "interruption-level" or "BRIDGE_SIGNIN_TITLE"
// stay), timestamps, and numbers in strings (the number to type, TTLs);
// trailing spaces and runs of blank lines are layout.
func normaliseExamples(s string) string {
	s = jwsPattern.ReplaceAllString(s, "<jws>")
	s = tokenPattern.ReplaceAllStringFunc(s, func(tok string) string {
		if hasDigit.MatchString(tok) || hasUpper.MatchString(tok) && hasLower.MatchString(tok) {
			return "<id>"
		}
		return tok
	})
	s = longNumber.ReplaceAllString(s, "<n>")
	s = numberString.ReplaceAllString(s, `"<n>"`)
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " \t")
		if l == "" && len(lines) > 0 && lines[len(lines)-1] == "" {
			continue // blank lines are layout
		}
		lines = append(lines, l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// firstDiff shows where two texts first differ, with a little context.
func firstDiff(want, got string) string {
	if want == got {
		return ""
	}
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	line := func(l []string, i int) string {
		if i < len(l) {
			return l[i]
		}
		return "(end)"
	}
	var out strings.Builder
	for k := max(0, i-3); k < i; k++ {
		fmt.Fprintf(&out, "  %4d   %s\n", k+1, a[k])
	}
	fmt.Fprintf(&out, "  %4d - %s   (in the doc)\n", i+1, line(a, i))
	fmt.Fprintf(&out, "  %4d + %s   (from the code)\n", i+1, line(b, i))
	return out.String()
}

// exchange is one recorded HTTP request and its response.
type exchange struct {
	method, target string // target: path and query
	reqHeader      http.Header
	reqBody        []byte
	status         int
	respHeader     http.Header
	respBody       []byte
}

// wireRecorder is the devices' HTTP transport: it records every exchange
// and sends the requests, made for the public base URL, to the test
// server on loopback.
type wireRecorder struct {
	to    *url.URL
	next  http.RoundTripper
	mu    sync.Mutex
	quiet bool
	log   []exchange
}

func (r *wireRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = r.to.Scheme, r.to.Host, ""
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	resp, err := r.next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.quiet {
		r.log = append(r.log, exchange{
			method: req.Method, target: req.URL.RequestURI(), reqHeader: req.Header.Clone(), reqBody: body,
			status: resp.StatusCode, respHeader: resp.Header.Clone(), respBody: respBody,
		})
	}
	return resp, nil
}

// take returns the exchanges recorded since the last take.
func (r *wireRecorder) take(t *testing.T, n int) []exchange {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.log) != n {
		t.Fatalf("%d exchanges recorded, want %d", len(r.log), n)
	}
	out := r.log
	r.log = nil
	return out
}

func (r *wireRecorder) setQuiet(q bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.quiet = q
}

// generateExamples runs the flow and renders the generated section.
func generateExamples(t *testing.T) string {
	e := newEnv(t, func(c *pushauth.Config, _ *pushauth.Deps) { c.BaseURL = exampleBase })
	target, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rec := &wireRecorder{to: target, next: e.srv.Client().Transport}
	client := &http.Client{Transport: rec}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	activation := func(user string) protocol.Activation {
		act, _, err := pushauth.Activator{
			Store: e.st, Keys: e.keys, HMACKey: e.sealer.DeriveKey(pushauth.ActivationKeyLabel), BaseURL: exampleBase, Now: e.clock.Now,
		}.Create(ctx, user, "admin", "")
		if err != nil {
			t.Fatal(err)
		}
		return act
	}
	var doc docWriter

	// The QR code, and the phone's enrollment.
	act := activation("alice")
	pinned := act
	pinned.TLSPin = protocol.SPKIPin([]byte("the DER SubjectPublicKeyInfo of the bridge's TLS certificate"))
	doc.heading("Activation URL (QR code)")
	doc.para("As `bridge devices enroll alice` prints it (and its QR code holds it); the second line is the same activation with a TLS pin (`tls`):")
	doc.code("text", act.String()+"\n"+pinned.String())

	phone, err := authenticator.Enroll(ctx, act.String(), authenticator.EnrollOptions{
		Platform: protocol.PlatformAndroid, Name: "Alice's Pixel", AppVersion: "1.4.0 (140)",
		PushProvider: protocol.ProviderFCM, PushToken: "eXaMpLe-FCM-registration-token:APA91bH1a2b3c4d5e6f7g8h9i0",
		Posture:    map[string]bool{"hardware_key": true, "rooted": false, "emulator": false, "debugger": false, "hooked": false},
		HTTPClient: client, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	doc.heading("Enrollment (Android, P-256 key)")
	doc.exchange(t, rec.take(t, 1)[0])

	// A second device, an iPhone, only for its pushes.
	rec.setQuiet(true)
	iphoneToken := "5f1d3c0b9a8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817061234"
	iphone, err := authenticator.Enroll(ctx, activation("alice").String(), authenticator.EnrollOptions{
		Platform: protocol.PlatformIOS, Name: "Alice's iPhone", PushProvider: protocol.ProviderAPNs, PushToken: iphoneToken,
		HTTPClient: client, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatalf("enroll the iPhone: %v", err)
	}
	rec.setQuiet(false)

	// A login: the pushes.
	req := pushauth.Request{User: "alice", AppID: "vpn", AppName: "Corporate VPN", Channel: "radius",
		ClientIP: "198.51.100.7", UserAgent: "nas-1", Location: "Lisbon, PT", NumberMatching: true}
	h := e.start(req)
	msg, err := e.fcm.Next(ctx)
	if err != nil {
		t.Fatalf("no FCM push: %v", err)
	}
	doc.heading("Push through FCM (new challenge)")
	doc.para("The HTTP v1 `message` the bridge sends to FCM for the Android phone (`POST https://fcm.googleapis.com/v1/projects/<project>/messages:send`); the app receives `data` in `onMessageReceived`:")
	doc.code("json", prettyJSON(t, msg.Raw))
	apnsAlert, err := e.apns.Next(ctx)
	if err != nil {
		t.Fatalf("no APNs push: %v", err)
	}
	doc.heading("Push through APNs (new challenge)")
	doc.apns(t, apnsAlert.Header, apnsAlert.Payload)

	// The phone finds the challenge: by long-poll, or by id after the push.
	if cs, err := phone.Pending(ctx, authenticator.MaxWait); err != nil || len(cs) != 1 || cs[0].ID != h.ID {
		t.Fatalf("pending: %v, %v", cs, err)
	}
	doc.heading("Long-poll for pending challenges")
	doc.exchange(t, rec.take(t, 1)[0])
	c, err := phone.Fetch(ctx, msg.Data["cid"])
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	doc.heading("Fetch a challenge by id (after a push)")
	doc.exchange(t, rec.take(t, 1)[0])

	// The user types the number and approves.
	approval, err := phone.SignedAnswer(c, protocol.Approve, h.Number)
	if err != nil {
		t.Fatal(err)
	}
	if state, err := phone.PostAnswer(ctx, h.ID, approval); err != nil || state != "approved" {
		t.Fatalf("approve: %q, %v", state, err)
	}
	doc.heading("Approve (with the number typed)")
	doc.para("The login page showed a number; the user typed it on the phone (`number`).")
	doc.exchange(t, rec.take(t, 1)[0])
	if o := e.wait(h.ID); !o.Approved() {
		t.Fatalf("outcome %+v", o)
	}
	dismiss, err := e.apns.Next(ctx)
	if err != nil {
		t.Fatalf("no dismiss push: %v", err)
	}
	doc.heading("Push through APNs (dismiss: answered on another device)")
	doc.apns(t, dismiss.Header, dismiss.Payload)

	// The same answer again.
	if _, err := phone.PostAnswer(ctx, h.ID, approval); err == nil {
		t.Fatal("a replayed answer was accepted")
	}
	doc.heading("Refused: the same answer again")
	doc.exchange(t, rec.take(t, 1)[0])

	// Another login; the user types the wrong number.
	h2 := e.start(req)
	rec.setQuiet(true)
	c2, err := iphone.Fetch(ctx, h2.ID)
	if err != nil {
		t.Fatalf("fetch on the iPhone: %v", err)
	}
	rec.setQuiet(false)
	wrong := "00"
	if h2.Number == wrong {
		wrong = "01"
	}
	if state, err := iphone.Answer(ctx, c2, protocol.Approve, wrong); err != nil || state != "denied" {
		t.Fatalf("wrong number: %q, %v", state, err)
	}
	doc.heading("Approve with the wrong number (iPhone): the challenge is denied")
	doc.para("The user typed another number than the login page showed. The request succeeds and says how the challenge closed.")
	doc.exchange(t, rec.take(t, 1)[0])

	// Device update, push keys, and a request without a proof.
	provider, token, version := protocol.ProviderFCM, "eXaMpLe-rotated-FCM-token:APA91bZ9y8x7w6v5u4t3s2r1q0", "1.5.0 (150)"
	if err := phone.UpdateDevice(ctx, protocol.DeviceUpdate{PushProvider: &provider, PushToken: &token, AppVersion: &version,
		Posture: map[string]bool{"hardware_key": true, "rooted": false, "emulator": false, "debugger": false, "hooked": false}}); err != nil {
		t.Fatalf("update: %v", err)
	}
	doc.heading("Update the device (new push token, app version, posture)")
	doc.exchange(t, rec.take(t, 1)[0])
	if _, err := e.keys.Rotate(ctx, store.PurposePush); err != nil {
		t.Fatalf("rotating the push key: %v", err)
	}
	if err := phone.RefreshPushKeys(ctx); err != nil {
		t.Fatalf("push keys: %v", err)
	}
	if n := len(phone.PushKeys()); n != 2 {
		t.Fatalf("the phone trusts %d push keys after the rotation, want 2", n)
	}
	doc.heading("Push keys, after the operator rotated the push key")
	doc.para("The old key (the one the phone pinned) endorses the new one; the phone now trusts both.")
	doc.exchange(t, rec.take(t, 1)[0])
	resp, err := client.Get(exampleBase + protocol.PathPending)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("request without a proof: %d", resp.StatusCode)
	}
	doc.heading("Refused: a request without a Device-Proof")
	doc.exchange(t, rec.take(t, 1)[0])
	return doc.String()
}

// docWriter renders the examples as Markdown.
type docWriter struct {
	b strings.Builder
	n int
}

func (w *docWriter) String() string { return w.b.String() }

func (w *docWriter) heading(s string) {
	w.n++
	fmt.Fprintf(&w.b, "### Example %d: %s\n\n", w.n, s)
}

func (w *docWriter) para(s string) { w.b.WriteString(s + "\n\n") }

func (w *docWriter) code(lang, s string) {
	fmt.Fprintf(&w.b, "```%s\n%s\n```\n\n", lang, strings.TrimRight(s, "\n"))
}

var (
	shownRequestHeaders  = []string{"Content-Type", protocol.ProofHeader}
	shownResponseHeaders = []string{"Content-Type", "Cache-Control", "Retry-After"}
)

func (w *docWriter) exchange(t *testing.T, x exchange) {
	t.Helper()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\nHost: %s\n", x.method, x.target, strings.TrimPrefix(exampleBase, "https://"))
	for _, k := range shownRequestHeaders {
		for _, v := range x.reqHeader.Values(k) {
			fmt.Fprintf(&req, "%s: %s\n", k, v)
		}
	}
	if len(x.reqBody) > 0 {
		req.WriteString("\n" + bodyText(t, x.reqBody))
	}
	w.para("Request:")
	w.code("http", req.String())
	w.decoded(t, "Device-Proof", x.reqHeader.Get(protocol.ProofHeader))
	w.bodyJWSs(t, x.reqBody)

	var resp strings.Builder
	fmt.Fprintf(&resp, "HTTP/1.1 %d %s\n", x.status, http.StatusText(x.status))
	for _, k := range shownResponseHeaders {
		for _, v := range x.respHeader.Values(k) {
			fmt.Fprintf(&resp, "%s: %s\n", k, v)
		}
	}
	if len(x.respBody) > 0 {
		resp.WriteString("\n" + bodyText(t, x.respBody))
	}
	w.para("Response:")
	w.code("http", resp.String())
	w.bodyJWSs(t, x.respBody)
}

func (w *docWriter) apns(t *testing.T, h http.Header, payload []byte) {
	t.Helper()
	var b strings.Builder
	b.WriteString("POST /3/device/<device token> HTTP/2\nHost: api.push.apple.com\n")
	for _, k := range []string{"apns-push-type", "apns-priority", "apns-collapse-id", "apns-expiration", "apns-topic"} {
		fmt.Fprintf(&b, "%s: %s\n", k, h.Get(k))
	}
	b.WriteString("\n" + prettyJSON(t, payload))
	w.para("The request the bridge makes to APNs (the provider token in `authorization` left out); the app sees the payload:")
	w.code("http", b.String())
}

// bodyText is a body as shown: JSON indented, anything else as it is.
func bodyText(t *testing.T, body []byte) string {
	if json.Valid(body) {
		return prettyJSON(t, body)
	}
	return string(body)
}

// bodyJWSs decodes the JWSs in a body: the body itself, or the string
// values of a JSON body, named by their JSON path.
func (w *docWriter) bodyJWSs(t *testing.T, body []byte) {
	t.Helper()
	if len(body) == 0 {
		return
	}
	if !json.Valid(body) {
		w.decoded(t, "body", strings.TrimSpace(string(body)))
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(strings.TrimPrefix(path+"."+k, "."), v[k])
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case string:
			if jwsPattern.MatchString(v) && jwsPattern.FindString(v) == v {
				w.decoded(t, path, v)
			}
		}
	}
	walk("", v)
}

// decoded shows a JWS's protected header and payload.
func (w *docWriter) decoded(t *testing.T, name, compact string) {
	t.Helper()
	if compact == "" {
		return
	}
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		t.Fatalf("%s is not a compact JWS: %q", name, compact)
	}
	dec := func(s string) string {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return prettyJSON(t, b)
	}
	w.para(fmt.Sprintf("`%s` decoded: protected header, then payload:", name))
	w.code("json", dec(parts[0])+"\n"+dec(parts[1]))
}

func prettyJSON(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(b), "", "  "); err != nil {
		t.Fatalf("not JSON: %v: %q", err, b)
	}
	return out.String()
}
