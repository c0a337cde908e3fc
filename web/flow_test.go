package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// The whole way: password, push approved on the phone, back at the front
// end, which takes the result once.
func TestApprovedSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()

	id, w := b.start(appPortal, "alice")
	if n := w.number(); n != "" {
		t.Errorf("the waiting page shows number %q for an application without number matching", n)
	}
	c := e.challenge(phone)
	if c.Claims.AppName != "Portal" || c.Claims.User != "alice" || c.Claims.Channel != "oidc" || c.Claims.NumberDigits != 0 {
		t.Errorf("the phone shows %+v", c.Claims)
	}
	if st := e.answer(phone, c, protocol.Approve, ""); st != "approved" {
		t.Fatalf("the engine recorded %q", st)
	}
	done := b.continueLogin(id, w)
	res := done.result()
	if done.url.Query().Get("login") != id {
		t.Errorf("returned to %s, want login=%s", done.url, id)
	}
	want := Result{
		User: "alice", DisplayName: "Alice", Email: "alice@example.com", Groups: []string{"staff"}, Directory: "local",
		AuthTime: e.clock.Now().Truncate(time.Second), AMR: []string{"pwd", "mfa", "swk"}, DeviceID: phone.ID(),
	}
	if res.Session == "" {
		t.Error("no browser session was opened")
	}
	res.Session = ""
	if !res.AuthTime.Equal(want.AuthTime) {
		t.Errorf("auth time %v, want %v", res.AuthTime, want.AuthTime)
	}
	res.AuthTime = want.AuthTime
	if !sameJSON(res, want) {
		t.Errorf("result\n%+v\nwant\n%+v", res, want)
	}
	if !res.MFA() {
		t.Error("MFA() is false for a push-approved sign-in")
	}

	// Finish takes the result exactly once.
	again := b.get("/app/done?login=" + id)
	var fe frontEndError
	if err := json.Unmarshal([]byte(again.body), &fe); err != nil || again.status != http.StatusBadRequest || !fe.NoLogin {
		t.Errorf("a second Finish: %d %s, want ErrNoLogin", again.status, again.body)
	}
	// The sign-in's pages are gone too.
	gone := b.get("/login/" + id)
	gone.want(http.StatusNotFound, "message")
	if gone.heading() != en(t, "expired_title") {
		t.Errorf("heading %q", gone.heading())
	}

	evs := e.audited("login", "alice")
	if len(evs) != 1 {
		t.Fatalf("%d login events for alice, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	if ev.Result != store.ResultSuccess || ev.Channel != "oidc" || ev.Actor != "user:alice" || ev.ClientIP != "127.0.0.1" ||
		ev.Details["amr"] != "pwd mfa swk" || ev.Details["application"] != appPortal || ev.Details["device"] != phone.ID() ||
		ev.Details["challenge"] != c.ID || ev.Details["user_agent"] != b.ua {
		t.Errorf("login event %+v", ev)
	}
	if n := e.pushesStarted("alice"); n != 1 {
		t.Errorf("%d pushes started, want 1", n)
	}
}

// A phone whose key is held in hardware makes the AMR hwk.
func TestHardwareKeyAMR(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", map[string]bool{"hardware_key": true})
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	e.answer(phone, e.challenge(phone), protocol.Approve, "")
	res := b.continueLogin(id, w).result()
	if !slices.Equal(res.AMR, []string{"pwd", "mfa", "hwk"}) {
		t.Errorf("AMR %v, want [pwd mfa hwk]", res.AMR)
	}
}

// An application whose device_keys is hardware pushes only to hardware
// keys: a user with a software key gets its own failure page, one with a
// hardware key signs in, and the challenge tells the phone the policy.
func TestDeviceKeysHardware(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.enroll("alice", nil) // a software key
	b := e.browser()
	id, p := b.begin(appHWKeys)
	f := b.signIn(id, p, "alice", password)
	f.want(http.StatusOK, "failed")
	if f.heading() != en(t, "fail_nodevicekeys_title") {
		t.Fatalf("heading %q, want the device-keys failure", f.heading())
	}
	phone := e.enroll("alice", map[string]bool{"hardware_key": true})
	id, w := b.start(appHWKeys, "alice")
	c := e.challenge(phone)
	if c.Claims.Keys != pushauth.KeysHardware {
		t.Fatalf("challenge keys claim %q", c.Claims.Keys)
	}
	e.answer(phone, c, protocol.Approve, "")
	if res := b.continueLogin(id, w).result(); !slices.Equal(res.AMR, []string{"pwd", "mfa", "hwk"}) {
		t.Errorf("AMR %v, want [pwd mfa hwk]", res.AMR)
	}
}

// With number matching the waiting page shows the number the phone must
// type; another number denies the sign-in.
func TestNumberMatching(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)

	t.Run("right number", func(t *testing.T) {
		b := e.browser()
		id, w := b.start(appNumbers, "alice")
		n := w.number()
		c := e.challenge(phone)
		if len(n) != pushauth.DefaultNumberDigits || strings.Trim(n, "0123456789") != "" || c.Claims.NumberDigits != len(n) {
			t.Fatalf("page shows %q, the phone asks for %d digits", n, c.Claims.NumberDigits)
		}
		if _, err := phone.Answer(e.ctx, c, protocol.Approve, ""); !errors.Is(err, authenticator.ErrNumberRequired) {
			t.Fatalf("approving without the number: %v", err)
		}
		if st := e.answer(phone, c, protocol.Approve, n); st != "approved" {
			t.Fatalf("approving with the page's number: %q", st)
		}
		if res := b.continueLogin(id, w).result(); res.User != "alice" {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("wrong number", func(t *testing.T) {
		e.clock.Add(time.Minute) // past any back-off
		b := e.browser()
		id, w := b.start(appNumbers, "alice")
		c := e.challenge(phone)
		if st := e.answer(phone, c, protocol.Approve, wrongNumber(w.number())); st != "denied" {
			t.Fatalf("approving with another number: %q", st)
		}
		f := b.continueLogin(id, w)
		f.want(http.StatusOK, "failed")
		if f.heading() != en(t, "fail_denied_title") {
			t.Errorf("heading %q", f.heading())
		}
		if p := b.get("/app/done?login=" + id); p.status != http.StatusBadRequest {
			t.Errorf("Finish after a wrong number: %d %s", p.status, p.body)
		}
	})
}

// A denied push ends on the failed page, whose "Try again" goes back to
// the sign-in form.
func TestDeniedAndRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	c := e.challenge(phone)
	e.answer(phone, c, protocol.Deny, "")

	f := b.continueLogin(id, w)
	f.want(http.StatusOK, "failed")
	if f.heading() != en(t, "fail_denied_title") || !strings.Contains(f.text(), en(t, "fail_denied_body")) {
		t.Errorf("failed page: %s", f.text())
	}
	if !strings.Contains(f.text(), en(t, "button_retry")) || !slices.Equal(f.actions(), []string{"/login/" + id + "/restart"}) {
		t.Errorf("no %q button posting to restart: %v", en(t, "button_retry"), f.actions())
	}
	// The waiting page's script, had it missed the news, learns it at
	// once.
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	_, lines := b.events(ctx, id)
	var got []string
	for l := range lines {
		got = append(got, l)
	}
	if !slices.Contains(got, "event: outcome") || !slices.Contains(got, `data: {"state":"failed"}`) {
		t.Errorf("events of a failed sign-in: %q", got)
	}
	// The failed page stays failed when reloaded, and the result is not
	// to be had.
	b.get("/login/"+id).want(http.StatusOK, "failed")
	if p := b.get("/app/done?login=" + id); p.status != http.StatusBadRequest {
		t.Errorf("Finish after a denial: %d", p.status)
	}

	r := b.post("/login/"+id+"/restart", url.Values{"csrf": {f.csrf()}})
	r.want(http.StatusOK, "signin")
	if r.url.Path != "/login/"+id {
		t.Errorf("restart landed on %s", r.url)
	}
	if got := e.audited("login", "alice"); len(got) != 1 || got[0].Result != store.ResultFailure || got[0].Reason != "push denied" {
		t.Errorf("login events %+v", got)
	}

	// Once the back-off after the denial has passed, the same sign-in
	// goes through.
	e.clock.Add(time.Minute)
	w = b.signIn(id, r, "alice", password)
	w.want(http.StatusOK, "wait")
	e.answer(phone, e.challenge(phone), protocol.Approve, "")
	if res := b.continueLogin(id, w).result(); res.User != "alice" {
		t.Errorf("result %+v", res)
	}
}

// A push nobody answers ends on the timeout page.
func TestTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	c := e.challenge(phone)

	e.clock.Add(pushauth.DefaultChallengeTTL + time.Second)
	f := b.continueLogin(id, w)
	f.want(http.StatusOK, "failed")
	if f.heading() != en(t, "fail_timeout_title") {
		t.Errorf("heading %q, want %q", f.heading(), en(t, "fail_timeout_title"))
	}
	if st := e.challengeState(c.ID); st != store.ChallengeExpired {
		t.Errorf("challenge %s, want expired", st)
	}
}

// A push reported as fraud ends on the fraud page; the next push to the
// user is refused while the lock lasts.
func TestFraud(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	if st := e.answer(phone, e.challenge(phone), protocol.Fraud, ""); st != "fraud" {
		t.Fatalf("engine recorded %q", st)
	}
	f := b.continueLogin(id, w)
	f.want(http.StatusOK, "failed")
	if f.heading() != en(t, "fail_fraud_title") {
		t.Errorf("heading %q", f.heading())
	}

	e.clock.Add(time.Minute) // past the back-off, not the lock
	r := b.post("/login/"+id+"/restart", url.Values{"csrf": {f.csrf()}})
	r.want(http.StatusOK, "signin")
	l := b.signIn(id, r, "alice", password)
	l.want(http.StatusOK, "failed")
	if l.heading() != en(t, "fail_locked_title") {
		t.Errorf("signing in while locked: heading %q", l.heading())
	}
	if len(e.pending(phone)) != 0 {
		t.Error("a push reached the phone while the user is locked")
	}
}

// A wrong password, an unknown user and a disabled one get the same
// answer, and nothing is pushed.
func TestNoUserEnumeration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, p := b.begin(appPortal)
	p.want(http.StatusOK, "signin")

	type answer struct {
		status         int
		kind, err      string
		actions        []string
		inputs, labels int
	}
	look := func(p *page) answer {
		return answer{p.status, p.kind(), p.errorText(), p.actions(),
			len(p.findAll(func(n *html.Node) bool { return n.Data == "input" })), len(p.findAll(func(n *html.Node) bool { return n.Data == "label" }))}
	}
	var answers []answer
	for _, try := range [][2]string{{"alice", "not the password"}, {"nobody", password}, {"erin", password}, {"ALICE", "not the password"}} {
		r := b.signIn(id, p, try[0], try[1])
		a := look(r)
		if a.status != http.StatusUnauthorized || a.kind != "signin" || a.err != en(t, "error_credentials") {
			t.Errorf("%s: %+v", try[0], a)
		}
		if v := attr(r.input("username"), "value"); v != try[0] {
			t.Errorf("%s: the form keeps the user name as %q", try[0], v)
		}
		answers = append(answers, a)
	}
	for _, a := range answers[1:] {
		if !reflect.DeepEqual(a, answers[0]) {
			t.Errorf("answers differ: %+v and %+v", a, answers[0])
		}
	}
	if len(e.pending(phone)) != 0 || e.pushesStarted("alice") != 0 {
		t.Error("a failed sign-in pushed")
	}
	if got := len(e.audited("login", "nobody")); got != 1 {
		t.Errorf("%d login events for the unknown user, want 1", got)
	}
}

// A POST without the sign-in's CSRF token is refused and changes nothing.
func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, p := b.begin(appPortal)
	id2, p2 := b.begin(appPortal) // the same browser's other sign-in
	if id2 == id || p2.csrf() == p.csrf() {
		t.Fatal("two sign-ins share an id or a token")
	}

	for name, tok := range map[string]string{"none": "", "wrong": strings.Repeat("A", len(p.csrf())), "another sign-in's": p2.csrf()} {
		f := url.Values{"username": {"alice"}, "password": {password}}
		if tok != "" {
			f.Set("csrf", tok)
		}
		r := b.post("/login/"+id, f)
		r.want(http.StatusForbidden, "message")
		if r.heading() != en(t, "csrf_title") {
			t.Errorf("%s token: heading %q", name, r.heading())
		}
	}
	if e.local.checks() != 0 || e.pushesStarted("alice") != 0 || len(e.pending(phone)) != 0 {
		t.Fatalf("a refused POST checked the password (%d) or pushed (%d)", e.local.checks(), e.pushesStarted("alice"))
	}
	b.get("/login/"+id).want(http.StatusOK, "signin")

	// The waiting page's forms are guarded as well: nothing moves.
	w := b.signIn(id, p, "alice", password)
	w.want(http.StatusOK, "wait")
	c := e.challenge(phone)
	e.clock.Add(resendInterval + time.Second) // so that a send-again would be allowed
	for _, action := range []string{"/continue", "/resend", "/code", "/restart"} {
		r := b.post("/login/"+id+action, url.Values{"csrf": {p2.csrf()}, "code": {"123456"}})
		r.want(http.StatusForbidden, "message")
	}
	if cs := e.pending(phone); len(cs) != 1 || cs[0].ID != c.ID {
		t.Errorf("after refused POSTs the phone has %d pending challenges", len(cs))
	}
	b.get("/login/"+id).want(http.StatusOK, "wait")
}

// A sign-in link opened in another browser shows the expired page, not
// the form; the other browser cannot finish it either.
func TestOtherBrowser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	a := e.browser()
	id, p := a.begin(appPortal)

	fresh := e.browser() // no binding cookie at all
	other := e.browser()
	other.begin(appPortal) // its own binding cookie
	for name, b := range map[string]*browser{"fresh": fresh, "other": other} {
		r := b.get("/login/" + id)
		r.want(http.StatusNotFound, "message")
		if r.heading() != en(t, "expired_title") || r.input("username") != nil {
			t.Errorf("%s browser: %s", name, r.text())
		}
		b.post("/login/"+id, url.Values{"csrf": {p.csrf()}, "username": {"alice"}, "password": {password}}).want(http.StatusNotFound, "message")
		for _, path := range []string{"/events", "/status"} {
			if r := b.get("/login/" + id + path); r.status != http.StatusNotFound {
				t.Errorf("%s browser: %s: %d", name, path, r.status)
			}
		}
	}
	if e.local.checks() != 0 || len(e.pending(phone)) != 0 {
		t.Fatal("another browser's POST was acted on")
	}
	// A stolen cookie value of another length is no binding either.
	other.jar.put(bindingCookieName, "short")
	other.get("/login/"+id).want(http.StatusNotFound, "message")

	w := a.signIn(id, p, "alice", password)
	e.answer(phone, e.challenge(phone), protocol.Approve, "")
	// The approval is in; only the browser that started it can take it.
	if r := other.get("/app/done?login=" + id); r.status != http.StatusBadRequest {
		t.Errorf("the other browser finished the sign-in: %d %s", r.status, r.body)
	}
	if r := other.post("/login/"+id+"/continue", url.Values{"csrf": {w.csrf()}}); r.status != http.StatusNotFound {
		t.Errorf("the other browser continued the sign-in: %d", r.status)
	}
	if res := a.continueLogin(id, w).result(); res.User != "alice" {
		t.Errorf("result %+v", res)
	}
}

// The waiting page learns the outcome by Server-Sent Events.
func TestEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")

	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	resp, lines := b.events(ctx, id)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-store" || resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d, Content-Type %q, Cache-Control %q", resp.StatusCode, ct, resp.Header.Get("Cache-Control"))
	}
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the event stream ended")
			}
			return l
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return ""
	}
	// The stream is open (the server flushed its retry hint) before the
	// phone answers.
	if l := next(); l != "retry: 1000" {
		t.Fatalf("first line %q", l)
	}
	e.answer(phone, e.challenge(phone), protocol.Approve, "")
	for l := next(); l != "event: outcome"; l = next() {
		if l != "" {
			t.Fatalf("unexpected line %q", l)
		}
	}
	var data struct{ State string }
	if l := next(); !strings.HasPrefix(l, "data: ") || json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &data) != nil || data.State != "approved" {
		t.Fatalf("data line %q", l)
	}
	for range lines { // the stream ends after the outcome
	}
	if res := b.continueLogin(id, w).result(); res.User != "alice" {
		t.Errorf("result %+v", res)
	}
}

// The long poll for browsers without EventSource: pending while the
// phone has not answered, then approved.
func TestStatusLongPoll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")

	state := func(p *page) string {
		t.Helper()
		var s struct{ State string }
		if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "application/json") || p.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("status: %d %v", p.status, p.header)
		}
		if err := json.Unmarshal([]byte(p.body), &s); err != nil {
			t.Fatal(err)
		}
		return s.State
	}
	// This waits out the long poll (statusWait of real time).
	if s := state(b.get("/login/" + id + "/status")); s != "pending" {
		t.Fatalf("status before the phone answered: %q", s)
	}
	got := make(chan string, 1)
	go func() {
		p := b.do(b.request(http.MethodGet, "/login/"+id+"/status", nil))
		var s struct{ State string }
		_ = json.Unmarshal([]byte(p.body), &s)
		got <- s.State
	}()
	e.answer(phone, e.challenge(phone), protocol.Approve, "")
	select {
	case s := <-got:
		if s != "approved" {
			t.Fatalf("status after approval: %q", s)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the long poll did not return")
	}
	res := b.continueLogin(id, w).result()
	if res.User != "alice" {
		t.Errorf("result %+v", res)
	}
}

// "Send again" replaces the pending push with a new one (never two
// pending), at most every resendInterval and maxResends times.
func TestResend(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // the engine's default back-off
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appNumbers, "alice")
	c1 := e.challenge(phone)
	resend := func(p *page) *page {
		t.Helper()
		return b.post("/login/"+id+"/resend", url.Values{"csrf": {p.csrf()}})
	}
	tooSoon := func(r *page) {
		t.Helper()
		r.want(http.StatusTooManyRequests, "wait")
		if !strings.Contains(r.text(), en(t, "resend_wait")) {
			t.Errorf("no notice on the refused send-again: %s", r.text())
		}
	}

	// At once: refused with a notice; the page still works.
	r := resend(w)
	tooSoon(r)
	if r.csrf() != w.csrf() || r.number() != w.number() {
		t.Errorf("the refused send-again's page has token %q and number %q, want %q and %q", r.csrf(), r.number(), w.csrf(), w.number())
	}
	if cs := e.pending(phone); len(cs) != 1 || cs[0].ID != c1.ID {
		t.Fatal("a refused send-again changed the pending push")
	}

	e.clock.Add(resendInterval + time.Second)
	r = resend(r)
	r.want(http.StatusOK, "wait")
	c2 := e.challenge(phone) // exactly one pending
	if c2.ID == c1.ID {
		t.Fatal("send again did not send a new push")
	}
	if st := e.challengeState(c1.ID); !st.Closed() {
		t.Errorf("the first push is %s after send again", st)
	}
	if _, err := phone.Answer(e.ctx, c1, protocol.Approve, w.number()); err == nil {
		t.Error("the phone could still approve the replaced push")
	}
	if r.number() == "" {
		t.Error("no number on the page after send again")
	}

	// Again at once: refused, nothing changes.
	tooSoon(resend(r))
	if cs := e.pending(phone); len(cs) != 1 || cs[0].ID != c2.ID {
		t.Fatal("a refused send-again changed the pending push")
	}

	// The last allowed ones; then the button is gone and posting anyway
	// is refused.
	for i := 2; i <= maxResends; i++ {
		e.clock.Add(resendInterval + time.Second)
		r = resend(r)
		r.want(http.StatusOK, "wait")
		if cs := e.pending(phone); len(cs) != 1 {
			t.Fatalf("send again %d: %d pending pushes", i, len(cs))
		}
	}
	if slices.Contains(r.actions(), "/login/"+id+"/resend") {
		t.Errorf("the send-again button is still there after %d", maxResends)
	}
	e.clock.Add(resendInterval + time.Second)
	tooSoon(resend(r))
	if n := e.pushesStarted("alice"); n != 1+maxResends {
		t.Errorf("%d pushes started, want %d", n, 1+maxResends)
	}

	c := e.challenge(phone)
	e.answer(phone, c, protocol.Approve, r.number())
	res := b.continueLogin(id, r).result()
	if res.User != "alice" || res.DeviceID != phone.ID() {
		t.Errorf("result %+v", res)
	}
	if got := e.audited("login", "alice"); len(got) != 1 || got[0].Details["challenge"] != c.ID {
		t.Errorf("login events %+v", got)
	}
}

// A one-time code instead of approving: offered to users with a TOTP
// token, completes the sign-in and cancels the push; wrong codes are
// refused and limited.
func TestCodeInstead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) { c.FailuresPerUser = 3 }))
	phone := e.enroll("alice", nil)
	code := e.totpCode("alice")

	t.Run("right code", func(t *testing.T) {
		b := e.browser()
		id, w := b.start(appPortal, "alice")
		if !slices.Contains(w.links(), "/login/"+id+"/code") {
			t.Fatalf("no code link on the waiting page: %v", w.links())
		}
		c := e.challenge(phone)
		cp := b.get("/login/" + id + "/code")
		cp.want(http.StatusOK, "code")
		if !slices.Contains(cp.links(), "/login/"+id) {
			t.Errorf("no way back to the push: %v", cp.links())
		}
		right := code(e.clock.Now())
		bad := b.post("/login/"+id+"/code", url.Values{"csrf": {cp.csrf()}, "code": {wrongNumber(right)}})
		bad.want(http.StatusUnauthorized, "code")
		if bad.errorText() != en(t, "error_code") {
			t.Errorf("error %q", bad.errorText())
		}
		if e.challengeState(c.ID) != store.ChallengePending {
			t.Error("a wrong code ended the push")
		}
		res := b.post("/login/"+id+"/code", url.Values{"csrf": {bad.csrf()}, "code": {right}}).result()
		if !slices.Equal(res.AMR, []string{"pwd", "otp", "mfa"}) || res.DeviceID != "" || res.User != "alice" {
			t.Errorf("result %+v", res)
		}
		if st := e.challengeState(c.ID); st != store.ChallengeCancelled {
			t.Errorf("the push is %s after the code, want cancelled", st)
		}
		if len(e.pending(phone)) != 0 {
			t.Error("the phone still shows the push")
		}
		evs := e.audited("login", "alice")
		if len(evs) != 2 || evs[1].Result != store.ResultSuccess || evs[1].Details["factor"] != "totp" || evs[1].Details["amr"] != "pwd otp mfa" {
			t.Errorf("login events %+v", evs)
		}
		// The code is used up.
		if err := e.totp.Verify(e.ctx, "alice", right); err == nil {
			t.Error("the code verifies again")
		}
		// The withdrawn push does not count against alice: her next
		// sign-in, at once, pushes again (no back-off).
		if l, err := e.st.GetPushLimit(e.ctx, "alice"); err != nil || l.Failures != 0 || !l.NextAt.IsZero() {
			t.Errorf("push limit after a sign-in with a code: %+v %v", l, err)
		}
		_, again := e.browser().start(appPortal, "alice")
		again.want(http.StatusOK, "wait")
		if len(e.pending(phone)) != 1 {
			t.Error("the next sign-in pushed nothing")
		}
	})

	t.Run("limit", func(t *testing.T) {
		e.clock.Add(failureWindow) // past the limit window (the first subtest's wrong code), a fresh TOTP step
		b := e.browser()
		id, w := b.start(appPortal, "alice")
		c := e.challenge(phone)
		right := code(e.clock.Now())
		p := w
		for i := range 3 {
			p = b.post("/login/"+id+"/code", url.Values{"csrf": {p.csrf()}, "code": {wrongNumber(right)}})
			if p.status != http.StatusUnauthorized {
				t.Fatalf("wrong code %d: %d", i+1, p.status)
			}
		}
		p = b.post("/login/"+id+"/code", url.Values{"csrf": {p.csrf()}, "code": {right}})
		p.want(http.StatusTooManyRequests, "code")
		if p.errorText() != en(t, "error_too_many") {
			t.Errorf("error %q", p.errorText())
		}
		if e.challengeState(c.ID) != store.ChallengePending {
			t.Error("the push ended at the code limit")
		}
		// The push still works.
		e.answer(phone, c, protocol.Approve, "")
		if res := b.continueLogin(id, w).result(); !slices.Equal(res.AMR, []string{"pwd", "mfa", "swk"}) {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("no token", func(t *testing.T) {
		e.enroll("bob", nil)
		b := e.browser()
		id, w := b.start(appPortal, "bob")
		if slices.Contains(w.links(), "/login/"+id+"/code") {
			t.Error("code link offered to a user without a token")
		}
		b.get("/login/"+id+"/code").want(http.StatusOK, "wait")
		b.post("/login/"+id+"/code", url.Values{"csrf": {w.csrf()}, "code": {"123456"}}).want(http.StatusOK, "wait")
	})

	t.Run("no phone", func(t *testing.T) {
		// dave has a token but no phone: straight to the code page.
		dcode := e.totpCode("dave")
		b := e.browser()
		id, p := b.begin(appPortal)
		cp := b.signIn(id, p, "dave", password)
		cp.want(http.StatusOK, "code")
		if slices.Contains(cp.links(), "/login/"+id) {
			t.Error("a link back to a push that was never sent")
		}
		res := b.post("/login/"+id+"/code", url.Values{"csrf": {cp.csrf()}, "code": {dcode(e.clock.Now())}}).result()
		if !slices.Equal(res.AMR, []string{"pwd", "otp", "mfa"}) || res.User != "dave" {
			t.Errorf("result %+v", res)
		}
		// carol has neither: the no-device page.
		id, p = b.begin(appNoReuse)
		f := b.signIn(id, p, "carol", password)
		f.want(http.StatusOK, "failed")
		if f.heading() != en(t, "fail_nodevice_title") {
			t.Errorf("heading %q", f.heading())
		}
	})
}

// Failed sign-ins are limited per address (IPv6 per /64) and per user.
func TestFailureLimits(t *testing.T) {
	t.Parallel()

	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withConfig(func(c *Config) { c.FailuresPerIP, c.FailuresPerUser = 3, 100 }))
		e.enroll("alice", nil)
		for _, addrs := range [][2]string{{"198.51.100.7", "198.51.100.8"}, {"2001:db8:1::1", "2001:db8:2::1"}} {
			b := e.browser()
			b.ip = addrs[0]
			id, p := b.begin(appPortal)
			for i, u := range []string{"alice", "bob", "nobody"} {
				if i == 2 && strings.Contains(addrs[0], ":") {
					b.ip = "2001:db8:1::ffff" // the same /64
				}
				b.signIn(id, p, u, "wrong").want(http.StatusUnauthorized, "signin")
			}
			checks := e.local.checks()
			r := b.signIn(id, p, "alice", password)
			r.want(http.StatusTooManyRequests, "signin")
			if r.errorText() != en(t, "error_too_many") {
				t.Errorf("%s: error %q", addrs[0], r.errorText())
			}
			if e.local.checks() != checks {
				t.Errorf("%s: the directory was asked past the limit", addrs[0])
			}
			// Another address is not affected.
			o := e.browser()
			o.ip = addrs[1]
			oid, op := o.begin(appNoReuse)
			o.signIn(oid, op, "bob", "wrong").want(http.StatusUnauthorized, "signin")
		}
		if n := e.pushesStarted("alice"); n != 0 {
			t.Errorf("%d pushes past the limit", n)
		}
		// The window passes.
		e.clock.Add(failureWindow)
		b := e.browser()
		b.ip = "198.51.100.7"
		b.start(appPortal, "alice")
	})

	t.Run("per user", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withConfig(func(c *Config) { c.FailuresPerIP, c.FailuresPerUser = 100, 2 }))
		e.enroll("bob", nil)
		e.enroll("alice", nil)
		for i, u := range []string{"bob", "BOB"} {
			b := e.browser()
			b.ip = "203.0.113." + string(rune('1'+i))
			id, p := b.begin(appPortal)
			b.signIn(id, p, u, "wrong").want(http.StatusUnauthorized, "signin")
		}
		b := e.browser()
		b.ip = "203.0.113.9"
		id, p := b.begin(appPortal)
		checks := e.local.checks()
		r := b.signIn(id, p, "bob", password)
		// The same answer as a wrong password.
		r.want(http.StatusUnauthorized, "signin")
		if r.errorText() != en(t, "error_credentials") {
			t.Errorf("error %q", r.errorText())
		}
		if e.local.checks() != checks || e.pushesStarted("bob") != 0 {
			t.Error("bob's password was checked or pushed past his limit")
		}
		// Other users are not affected.
		b.start(appNoReuse, "alice")
		// The window passes.
		e.clock.Add(failureWindow)
		b2 := e.browser()
		b2.start(appPortal, "bob")
	})
}

// A browser session satisfies a later sign-in to an application that
// allows it, unless the sign-in asks for a fresh one, the session is too
// old, or it was opened with another directory.
func TestSessionReuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	e.answer(phone, e.challenge(phone), protocol.Approve, "")
	first := b.continueLogin(id, w).result()
	cookie := b.jar.get(sessionCookieName)
	if cookie == "" || hashToken(cookie) != first.Session {
		t.Fatalf("session cookie %q, result session %q", cookie, first.Session)
	}
	g, ok := e.grant(store.GrantSession, first.Session)
	if !ok || g.Subject != "alice" || !g.ExpiresAt.Equal(first.AuthTime.Add(e.cfg.SessionLifetime)) {
		t.Fatalf("stored session %+v %v", g, ok)
	}

	reused := func(app string, query ...string) Result {
		t.Helper()
		_, p := b.begin(app, query...)
		if p.url.Path != "/app/done" {
			t.Fatalf("%s %v: landed on %s, want straight back", app, query, p.url)
		}
		r := p.result()
		if !r.FromSession || r.User != "alice" || r.Session != first.Session || !r.AuthTime.Equal(first.AuthTime) || !slices.Equal(r.AMR, first.AMR) {
			t.Errorf("reused result %+v, first %+v", r, first)
		}
		return r
	}
	form := func(app string, query ...string) {
		t.Helper()
		_, p := b.begin(app, query...)
		p.want(http.StatusOK, "signin")
	}

	reused(appPortal)
	reused(appNumbers) // another app of the same directory
	if n := e.pushesStarted("alice"); n != 1 {
		t.Errorf("%d pushes, want 1", n)
	}
	evs := e.audited("login", "alice")
	if len(evs) != 3 || evs[1].Reason != "browser session" || evs[1].Result != store.ResultSuccess {
		t.Errorf("login events %+v", evs)
	}

	form(appPortal, "fresh", "1")
	form(appNoReuse)
	form(appOther)
	e.clock.Add(10 * time.Minute)
	reused(appPortal, "max_age", "15m")
	form(appPortal, "max_age", "5m")

	if p := b.get("/app/session?app=" + appPortal); p.status != http.StatusOK || !strings.Contains(p.body, `"user":"alice"`) {
		t.Errorf("SessionFor: %d %s", p.status, p.body)
	}
	if p := b.get("/app/session?app=" + appOther); p.status != http.StatusNotFound || !strings.Contains(p.body, `"no_session":true`) {
		t.Errorf("SessionFor another directory: %d %s", p.status, p.body)
	}
	// Another browser has no session.
	o := e.browser()
	_, p := o.begin(appPortal)
	p.want(http.StatusOK, "signin")

	// EndSession ends it.
	out := b.post("/app/logout", nil)
	if out.body != "alice" {
		t.Errorf("EndSession returned %q", out.body)
	}
	if b.jar.get(sessionCookieName) != "" {
		t.Error("the session cookie is still set")
	}
	if _, ok := e.grant(store.GrantSession, first.Session); ok {
		t.Error("the session is still stored")
	}
	form(appPortal)
	if p := b.get("/app/session?app=" + appPortal); p.status != http.StatusNotFound {
		t.Errorf("SessionFor after EndSession: %d", p.status)
	}
	// The cookie, replayed, is no use either.
	b.jar.put(sessionCookieName, cookie)
	form(appPortal)
	if got := b.post("/app/logout", nil).body; got != "" {
		t.Errorf("EndSession of an ended session: %q", got)
	}
}

// A session lasts SessionLifetime; EndSessionByID ends one without the
// browser; a new sign-in replaces the browser's old session.
func TestSessionLifetime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	signIn := func(app string, query ...string) Result {
		t.Helper()
		id, p := b.begin(app, query...)
		w := b.signIn(id, p, "alice", password)
		w.want(http.StatusOK, "wait")
		e.answer(phone, e.challenge(phone), protocol.Approve, "")
		return b.continueLogin(id, w).result()
	}
	first := signIn(appPortal)
	second := signIn(appPortal, "fresh", "1")
	if second.Session == first.Session {
		t.Fatal("a fresh sign-in kept the session")
	}
	if _, ok := e.grant(store.GrantSession, first.Session); ok {
		t.Error("the replaced session is still stored")
	}
	e.clock.Add(e.cfg.SessionLifetime - time.Minute)
	if _, p := b.begin(appPortal); p.url.Path != "/app/done" {
		t.Fatalf("a session within its lifetime was not reused: %s", p.url)
	}
	e.clock.Add(2 * time.Minute)
	if _, p := b.begin(appPortal); p.kind() != "signin" {
		t.Fatalf("an expired session was reused: %s", p.url)
	}

	e.clock.Add(time.Minute)
	third := signIn(appPortal)
	if err := e.flow.EndSessionByID(e.ctx, third.Session); err != nil {
		t.Fatal(err)
	}
	if _, p := b.begin(appPortal); p.kind() != "signin" {
		t.Fatal("a session ended by id was reused")
	}
	if err := e.flow.EndSessionByID(e.ctx, third.Session); err != nil {
		t.Errorf("ending an ended session: %v", err)
	}
}

// Without sessions (SessionLifetime 0) nothing is reused and no cookie is
// set.
func TestSessionsOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) { c.SessionLifetime = 0 }))
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	e.answer(phone, e.challenge(phone), protocol.Approve, "")
	if res := b.continueLogin(id, w).result(); res.Session != "" {
		t.Errorf("result has session %q", res.Session)
	}
	if b.jar.get(sessionCookieName) != "" {
		t.Error("a session cookie was set")
	}
	_, p := b.begin(appPortal)
	p.want(http.StatusOK, "signin")
}

// A passwordless sign-in of an unknown user, or of one without a phone,
// shows a waiting page like anyone's, pushes nothing, and ends as a
// timeout when a real push would.
func TestPasswordlessDecoy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *envSetup) { s.engine.NumberDigits = 3 })
	phone := e.enroll("bob", nil)
	b := e.browser()

	_, p := b.begin(appPwless)
	p.want(http.StatusOK, "signin")
	if p.input("password") != nil {
		t.Error("the passwordless form asks for a password")
	}

	type shape struct {
		status        int
		kind, heading string
		digits        int
		actions       []string
		links         []string
	}
	look := func(id string, p *page) shape {
		s := shape{status: p.status, kind: p.kind(), heading: p.heading(), digits: len(p.number())}
		for _, a := range p.actions() {
			s.actions = append(s.actions, strings.ReplaceAll(a, id, "ID"))
		}
		for _, l := range p.links() {
			s.links = append(s.links, strings.ReplaceAll(l, id, "ID"))
		}
		return s
	}
	ids, pages := map[string]string{}, map[string]*page{}
	var want shape
	for _, u := range []string{"bob", "mallory", "carol", "erin"} { // real; unknown; no phone; disabled
		id, p := b.begin(appPwless)
		w := b.signIn(id, p, u, "")
		s := look(id, w)
		if u == "bob" {
			want = s
			if s.kind != "wait" || s.digits != 3 {
				t.Fatalf("bob's waiting page: %+v", s)
			}
		} else if !reflect.DeepEqual(s, want) {
			t.Errorf("%s's page %+v, bob's %+v", u, s, want)
		}
		ids[u], pages[u] = id, w
	}
	c := e.challenge(phone)
	for _, u := range []string{"mallory", "carol", "erin"} {
		if n := e.pushesStarted(u); n != 0 {
			t.Errorf("%d pushes for %s", n, u)
		}
		if cs, err := e.state.PendingChallenges(e.ctx, u, e.clock.Now()); err != nil || len(cs) != 0 {
			t.Errorf("%s has pending challenges %v %v", u, cs, err)
		}
	}

	e.clock.Add(pushauth.DefaultChallengeTTL + time.Second)
	for _, u := range []string{"bob", "mallory", "carol", "erin"} {
		f := b.continueLogin(ids[u], pages[u])
		if f.kind() != "failed" || f.heading() != en(t, "fail_timeout_title") {
			t.Errorf("%s after the challenge lifetime: %s page %q", u, f.kind(), f.heading())
		}
	}
	if e.challengeState(c.ID) != store.ChallengeExpired {
		t.Error("bob's push did not expire")
	}
}

// A passwordless user with a TOTP token but no phone can still sign in
// with a code from the (decoy) waiting page; an unknown user cannot.
func TestPasswordlessCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code := e.totpCode("dave")

	for _, u := range []string{"dave", "mallory"} {
		b := e.browser()
		id, p := b.begin(appPwless)
		w := b.signIn(id, p, u, "")
		w.want(http.StatusOK, "wait")
		if !slices.Contains(w.links(), "/login/"+id+"/code") {
			t.Fatalf("%s: no code link: %v", u, w.links())
		}
		cp := b.get("/login/" + id + "/code")
		cp.want(http.StatusOK, "code")
		r := b.post("/login/"+id+"/code", url.Values{"csrf": {cp.csrf()}, "code": {code(e.clock.Now())}})
		if u == "mallory" {
			r.want(http.StatusUnauthorized, "code")
			continue
		}
		res := r.result()
		// A code alone is one factor: no mfa.
		if res.User != "dave" || !slices.Equal(res.AMR, []string{"otp"}) || res.MFA() || res.Directory != "push-only" {
			t.Errorf("result %+v", res)
		}
	}
}

// A user agent longer than the push engine takes does not break the
// sign-in.
func TestLongUserAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	b.ua = strings.Repeat("Mozilla/5.0 (extension) ", 40) // ~1 KB
	id, w := b.start(appPortal, "alice")
	c := e.challenge(phone)
	if len(c.Claims.UserAgent) == 0 || !strings.HasPrefix(b.ua, c.Claims.UserAgent) {
		t.Errorf("the phone shows user agent %q", c.Claims.UserAgent)
	}
	e.answer(phone, c, protocol.Approve, "")
	if res := b.continueLogin(id, w).result(); res.User != "alice" {
		t.Errorf("result %+v", res)
	}
}

// An application removed from the config while a sign-in is under way
// ends it.
func TestAppRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	id, p := b.begin(appNoReuse)
	e.mu.Lock()
	delete(e.apps, appNoReuse)
	e.mu.Unlock()
	b.get("/login/"+id).want(http.StatusNotFound, "message")
	b.signIn(id, p, "alice", password).want(http.StatusNotFound, "message")
	if e.local.checks() != 0 {
		t.Error("the directory was asked")
	}
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// Without TOTP, a passwordless user without a phone gets the decoy too,
// and it ends as a timeout like the others.
func TestPasswordlessNoTOTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *envSetup) { s.noTOTP = true })
	ids, pages, bs := map[string]string{}, map[string]*page{}, map[string]*browser{}
	for _, u := range []string{"carol", "mallory"} {
		b := e.browser()
		id, p := b.begin(appPwless)
		w := b.signIn(id, p, u, "")
		w.want(http.StatusOK, "wait")
		if len(w.number()) != pushauth.DefaultNumberDigits || slices.Contains(w.links(), "/login/"+id+"/code") {
			t.Errorf("%s: number %q, links %v", u, w.number(), w.links())
		}
		// Send again works on a decoy as on a real push.
		e.clock.Add(resendInterval + time.Second)
		w = b.post("/login/"+id+"/resend", url.Values{"csrf": {w.csrf()}})
		w.want(http.StatusOK, "wait")
		ids[u], pages[u], bs[u] = id, w, b
	}
	e.clock.Add(pushauth.DefaultChallengeTTL + time.Second)
	for u, b := range bs {
		f := b.continueLogin(ids[u], pages[u])
		if f.kind() != "failed" || f.heading() != en(t, "fail_timeout_title") {
			t.Errorf("%s: %d %s page %q", u, f.status, f.kind(), f.heading())
		}
	}
	if e.pushesStarted("carol") != 0 {
		t.Error("a push was started for carol")
	}
}

// Two tabs of the same waiting page both continue when the phone
// approves: one sign-in, one session, and the browser keeps the session
// the result names (front ends end sessions by that id at logout).
func TestConcurrentContinue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	e.answer(phone, e.challenge(phone), protocol.Approve, "")

	const tabs = 4
	pages := make(chan *page, tabs)
	for range tabs {
		go func() { pages <- b.continueLogin(id, w) }()
	}
	var results []Result
	for range tabs {
		p := <-pages
		if p.url.Path == "/app/done" && p.status == http.StatusOK {
			results = append(results, p.result())
		}
	}
	if len(results) != 1 {
		t.Fatalf("%d tabs got a result, want 1", len(results))
	}
	if got := hashToken(b.jar.get(sessionCookieName)); got != results[0].Session {
		t.Errorf("the browser's session cookie is for session %s, the result names %s", got, results[0].Session)
	}
	if n, err := e.st.RevokeSubject(e.ctx, "alice", store.GrantSession); err != nil || n != 1 {
		t.Errorf("%d sessions stored for alice (%v), want 1", n, err)
	}
	if evs := e.audited("login", "alice"); len(evs) != 1 {
		t.Errorf("%d login events, want 1", len(evs))
	}
}

// A finished sign-in is good only for the front-end request it was begun
// for: redeeming it for another (another application's request, or one
// that wanted a fresh push) fails, and does not use it up.
func TestFinishIsForItsOwnRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, p := b.begin(appPortal, "for", "request-a")
	w := b.signIn(id, p, "alice", password)
	w.want(http.StatusOK, "wait")
	e.answer(phone, e.challenge(phone), protocol.Approve, "")
	// Stop before the redirect to the front end: the test redeems the
	// sign-in itself.
	done := b.noRedirects().continueLogin(id, w)
	if done.status != http.StatusSeeOther {
		t.Fatalf("continue: %d", done.status)
	}
	other := b.get("/app/done?for=request-b&login=" + url.QueryEscape(id))
	if other.status != http.StatusBadRequest {
		t.Fatalf("a sign-in begun for request-a was finished for request-b: %d %s", other.status, other.body)
	}
	if res := b.get("/app/done?for=request-a&login=" + url.QueryEscape(id)).result(); res.User != "alice" {
		t.Fatalf("the sign-in's own request got %+v", res)
	}
}

// A passwordless push is one factor (possession of the phone's key): amr
// names the key, not mfa.
func TestPasswordlessAMR(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, p := b.begin(appPwless)
	p.want(http.StatusOK, "signin")
	w := b.signIn(id, p, "alice", "")
	w.want(http.StatusOK, "wait")
	e.answer(phone, e.challenge(phone), protocol.Approve, w.number())
	res := b.continueLogin(id, w).result()
	if !slices.Equal(res.AMR, []string{"swk"}) || res.MFA() {
		t.Fatalf("passwordless push: amr %v, MFA %v", res.AMR, res.MFA())
	}
}

// A user disabled after signing in gets no single sign-on from the
// session: the next sign-in asks for the password again.
func TestSessionNotReusedForDisabledUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	e.answer(phone, e.challenge(phone), protocol.Approve, "")
	b.continueLogin(id, w).result()
	if _, p := b.begin(appPortal); p.url.Path != "/app/done" {
		t.Fatalf("the session was not reused while alice was active: %s", p.url)
	}
	if _, err := e.st.UpdateUser(e.ctx, "alice", func(u store.User) (store.User, error) {
		u.Status = store.UserDisabled
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	_, p := b.begin(appPortal)
	p.want(http.StatusOK, "signin")
}

// A browser session stands in for a sign-in to an application with
// device_keys hardware only when a device that still qualifies approved
// it: not a session approved by a software key for a laxer application,
// not one opened with a code, not one whose device was revoked since.
func TestSessionReuseDeviceKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	soft := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	e.answer(soft, e.challenge(soft), protocol.Approve, "")
	if res := b.continueLogin(id, w).result(); res.DeviceID != soft.ID() {
		t.Fatalf("result %+v, want the software key's approval", res)
	}
	if _, p := b.begin(appPortal); p.url.Path != "/app/done" {
		t.Fatalf("the session was not reused for the portal: %s", p.url)
	}
	_, p := b.begin(appHWKeys)
	p.want(http.StatusOK, "signin")

	// Approved by a hardware key: reused for the vault.
	hard := e.enroll("alice", map[string]bool{"hardware_key": true})
	id, w = b.start(appHWKeys, "alice")
	e.answer(hard, e.challenge(hard), protocol.Approve, "")
	if res := b.continueLogin(id, w).result(); res.DeviceID != hard.ID() {
		t.Fatalf("result %+v, want the hardware key's approval", res)
	}
	_, p = b.begin(appHWKeys)
	if p.url.Path != "/app/done" || !p.result().FromSession {
		t.Fatalf("the session of a hardware key was not reused for the vault: %s", p.url)
	}
	// The device revoked: the session is no longer good for the vault,
	// still for the portal.
	if _, err := e.st.UpdateDevice(e.ctx, hard.ID(), func(d store.Device) (store.Device, error) {
		d.Status, d.RevokedAt = store.DeviceRevoked, e.clock.Now()
		return d, nil
	}); err != nil {
		t.Fatal(err)
	}
	_, p = b.begin(appHWKeys)
	p.want(http.StatusOK, "signin")
	if _, p := b.begin(appPortal); p.url.Path != "/app/done" {
		t.Fatalf("the session was not reused for the portal: %s", p.url)
	}

	// A session opened with a code has no device: not for the vault.
	code := e.totpCode("bob")
	c := e.browser()
	id, p = c.begin(appPortal)
	cp := c.signIn(id, p, "bob", password)
	cp.want(http.StatusOK, "code")
	if res := c.post("/login/"+id+"/code", url.Values{"csrf": {cp.csrf()}, "code": {code(e.clock.Now())}}).result(); res.DeviceID != "" {
		t.Fatalf("code result %+v", res)
	}
	if _, p := c.begin(appPortal); p.url.Path != "/app/done" {
		t.Fatalf("the code session was not reused for the portal: %s", p.url)
	}
	_, p = c.begin(appHWKeys)
	p.want(http.StatusOK, "signin")
}

// Under device_keys hardware a one-time code is no way around the key: a
// user with a TOTP token and only a software key gets the device-keys
// failure page, not the code page; one with a hardware key is not offered
// a code, and a code posted anyway is refused unchecked while the push
// waits on. A passwordless sign-in keeps its decoy (known and unknown
// users alike), without the code link.
func TestCodesRefusedUnderDeviceKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.enroll("alice", nil) // a software key
	code := e.totpCode("alice")

	b := e.browser()
	id, p := b.begin(appHWKeys)
	f := b.signIn(id, p, "alice", password)
	f.want(http.StatusOK, "failed")
	if f.heading() != en(t, "fail_nodevicekeys_title") {
		t.Fatalf("heading %q, want the device-keys failure (not the code page)", f.heading())
	}
	if slices.Contains(f.links(), "/login/"+id+"/code") {
		t.Errorf("the failure page links to the code page: %v", f.links())
	}
	b.get("/login/"+id+"/code").want(http.StatusOK, "failed")

	hard := e.enroll("alice", map[string]bool{"hardware_key": true})
	b = e.browser()
	id, w := b.start(appHWKeys, "alice")
	if slices.Contains(w.links(), "/login/"+id+"/code") {
		t.Fatalf("code link offered under device_keys hardware: %v", w.links())
	}
	b.get("/login/"+id+"/code").want(http.StatusOK, "wait")
	right := code(e.clock.Now())
	b.post("/login/"+id+"/code", url.Values{"csrf": {w.csrf()}, "code": {right}}).want(http.StatusOK, "wait")
	e.answer(hard, e.challenge(hard), protocol.Approve, "")
	if res := b.continueLogin(id, w).result(); !slices.Equal(res.AMR, []string{"pwd", "mfa", "hwk"}) {
		t.Errorf("AMR %v, want the hardware key's approval", res.AMR)
	}

	// The policy applies to a sign-in under way when the config changes:
	// the code link offered before goes, and a code posted is refused,
	// audited and not used up.
	b = e.browser()
	id, w = b.start(appNoReuse, "alice")
	if !slices.Contains(w.links(), "/login/"+id+"/code") {
		t.Fatalf("no code link under device_keys any: %v", w.links())
	}
	e.mu.Lock()
	a := e.apps[appNoReuse]
	a.DeviceKeys = pushauth.KeysHardware
	e.apps[appNoReuse] = a
	e.mu.Unlock()
	b.post("/login/"+id+"/code", url.Values{"csrf": {w.csrf()}, "code": {right}}).want(http.StatusOK, "wait")
	if p := b.get("/login/" + id); slices.Contains(p.links(), "/login/"+id+"/code") {
		t.Errorf("the code link is still offered after the policy changed: %v", p.links())
	}
	found := false
	for _, ev := range e.audited("login", "alice") {
		found = found || strings.Contains(ev.Reason, "one-time code refused")
	}
	if !found {
		t.Error("the refused code is not audited")
	}
	if err := e.totp.Verify(e.ctx, "alice", right); err != nil {
		t.Errorf("the refused code was used up: %v", err)
	}

	// Passwordless: dave (a token, no phone) and mallory (unknown) see the
	// same waiting page, with no code link.
	e.totpCode("dave")
	var pages [][]string
	for _, u := range []string{"dave", "mallory"} {
		b := e.browser()
		id, p := b.begin(appPwlHW)
		w := b.signIn(id, p, u, "")
		w.want(http.StatusOK, "wait")
		var links []string
		for _, l := range w.links() {
			links = append(links, strings.ReplaceAll(l, id, "ID"))
		}
		if slices.Contains(links, "/login/ID/code") {
			t.Errorf("%s: code link on a passwordless sign-in under device_keys hardware", u)
		}
		pages = append(pages, links)
	}
	if !slices.Equal(pages[0], pages[1]) {
		t.Errorf("dave's waiting page %v, mallory's %v", pages[0], pages[1])
	}
}
