package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// hookPusher runs a hook once, after the next push has started and
// before the Flow records it: the moment of a "send again" when the
// engine has superseded the old push but the sign-in does not name the
// new one yet.
type hookPusher struct {
	Pusher
	mu   sync.Mutex
	hook func()
}

func (p *hookPusher) Start(ctx context.Context, req pushauth.Request) (pushauth.Handle, error) {
	h, err := p.Pusher.Start(ctx, req)
	p.mu.Lock()
	hook := p.hook
	p.hook = nil
	p.mu.Unlock()
	if hook != nil {
		hook()
	}
	return h, err
}

func (p *hookPusher) afterNextStart(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = fn
}

func newHookEnv(t *testing.T) (*env, *hookPusher) {
	hp := &hookPusher{}
	e := newEnv(t, withPusher(func(p Pusher) Pusher { hp.Pusher = p; return hp }))
	return e, hp
}

// attempt is the push a waiting page shows, as its script names it; ""
// when it names none.
func (p *page) attempt() string {
	n := p.find(func(n *html.Node) bool { return attr(n, "id") == "waiting" })
	if n == nil {
		return ""
	}
	return attr(n, "data-attempt")
}

// eventStates reads an event stream to its end and returns the states of
// its outcome events.
func eventStates(t *testing.T, lines <-chan string) []string {
	t.Helper()
	var out []string
	for l := range lines {
		if !strings.HasPrefix(l, "data: ") {
			continue
		}
		var d struct{ State string }
		if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &d); err != nil {
			t.Fatalf("event data %q: %v", l, err)
		}
		out = append(out, d.State)
	}
	return out
}

// The old waiting page keeps running while "send again" is under way:
// the engine has superseded its push, so its event stream and its
// continue form see a superseded push. Neither may end the sign-in
// ("Replaced by another sign-in" while the new push is on the phone):
// the event is not one the page's script continues on, the continue
// shows the waiting page, and the new push signs the user in.
func TestResendOvertakenByOldPage(t *testing.T) {
	t.Parallel()
	e, hp := newHookEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appNumbers, "alice")
	c1 := e.challenge(phone)
	e.clock.Add(resendInterval + time.Second)

	var during []string
	var overtaking *page
	hp.afterNextStart(func() {
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		defer cancel()
		_, lines := b.eventsAt(ctx, "/login/"+id+"/events?attempt="+url.QueryEscape(w.attempt()))
		during = eventStates(t, lines)
		overtaking = b.continueLogin(id, w)
	})
	r := b.post("/login/"+id+"/resend", url.Values{"csrf": {w.csrf()}})
	for _, s := range during {
		if s != "stale" {
			t.Errorf("during send again the old page's events said %q: its script would continue on it", s)
		}
	}
	if overtaking == nil {
		t.Fatal("the push was not started")
	}
	if overtaking.kind() != "wait" {
		t.Fatalf("the old page's continue during send again ended on a %s page: %s", overtaking.kind(), overtaking.text())
	}

	r.want(http.StatusOK, "wait")
	c2 := e.challenge(phone)
	if c2.ID == c1.ID {
		t.Fatal("send again did not send a new push")
	}
	if r.attempt() == "" || r.attempt() == w.attempt() {
		t.Errorf("the new page names the old attempt %s", w.attempt())
	}
	// After it, the old page's events are stale and its continue shows
	// the current page.
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	_, lines := b.eventsAt(ctx, "/login/"+id+"/events?attempt="+url.QueryEscape(w.attempt()))
	if got := eventStates(t, lines); len(got) != 1 || got[0] != "stale" {
		t.Errorf("the old page's events after send again: %q, want %q", got, "stale")
	}
	if p := b.continueLogin(id, w); p.kind() != "wait" || p.number() != r.number() || p.attempt() != r.attempt() {
		t.Errorf("the old page's continue after send again: %s page, number %q attempt %q, want the waiting page with %q and %q",
			p.kind(), p.number(), p.attempt(), r.number(), r.attempt())
	}

	e.answer(phone, c2, protocol.Approve, r.number())
	if res := b.continueLogin(id, r).result(); res.User != "alice" {
		t.Errorf("result %+v", res)
	}
}

// The browser leaves the "send again" request once the push has started
// (the old page's script navigated, or the user clicked twice): the
// request's context ends. The push on the phone is still the sign-in's
// and signs the user in; before, recording it failed with "sqlite:
// begin: context canceled" and the push was cancelled.
func TestResendBrowserLeft(t *testing.T) {
	t.Parallel()
	e, hp := newHookEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appNumbers, "alice")
	c1 := e.challenge(phone)
	e.clock.Add(resendInterval + time.Second)

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	hp.afterNextStart(cancel)
	req := b.request(http.MethodPost, "/login/"+id+"/resend", url.Values{"csrf": {w.csrf()}}).WithContext(ctx)
	for _, c := range b.jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	e.flow.Handler().ServeHTTP(httptest.NewRecorder(), req)

	c2 := e.challenge(phone)
	if c2.ID == c1.ID {
		t.Fatal("send again did not send a new push")
	}
	p := b.get("/login/" + id)
	p.want(http.StatusOK, "wait")
	e.answer(phone, c2, protocol.Approve, p.number())
	if res := b.continueLogin(id, p).result(); res.User != "alice" {
		t.Errorf("result %+v", res)
	}
}
