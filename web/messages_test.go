package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// After one denial, "Try again" within the engine's back-off says how
// long the wait really is (seconds, not "a few minutes"), counted from
// the RetryAfter the engine returned, and a reload counts down.
func TestRateLimitedSaysTheWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	phone := e.enroll("alice", nil)
	b := e.browser()
	id, w := b.start(appPortal, "alice")
	e.answer(phone, e.challenge(phone), protocol.Deny, "")
	f := b.continueLogin(id, w)
	f.want(http.StatusOK, "failed")
	r := b.post("/login/"+id+"/restart", url.Values{"csrf": {f.csrf()}})
	r.want(http.StatusOK, "signin")

	lim, err := e.st.GetPushLimit(e.ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	left := lim.NextAt.Sub(e.clock.Now())
	if left <= time.Second || left >= time.Minute {
		t.Fatalf("the back-off after one denial is %s; this test wants seconds", left)
	}
	secs := int((left + time.Second - 1) / time.Second)
	p := b.signIn(id, r, "alice", password)
	p.want(http.StatusOK, "failed")
	want := fmt.Sprintf(en(t, "fail_ratelimited_wait"), fmt.Sprintf(en(t, "wait_in_seconds"), secs))
	if p.heading() != en(t, "fail_ratelimited_title") || !strings.Contains(p.text(), want) {
		t.Errorf("rate-limited page %q, want %q", p.text(), want)
	}
	if strings.Contains(p.text(), "few minutes") {
		t.Errorf("the page says minutes for a wait of %s: %s", left, p.text())
	}

	e.clock.Add(left - time.Second)
	want = fmt.Sprintf(en(t, "fail_ratelimited_wait"), en(t, "wait_in_second"))
	if p := b.get("/login/" + id); !strings.Contains(p.text(), want) {
		t.Errorf("reloaded a second before the end: %q, want %q", p.text(), want)
	}
	// Past the wait the page has no count, and trying again works.
	e.clock.Add(2 * time.Second)
	p = b.get("/login/" + id)
	if !strings.Contains(p.text(), en(t, "fail_ratelimited_body")) {
		t.Errorf("after the wait: %q", p.text())
	}
	r = b.post("/login/"+id+"/restart", url.Values{"csrf": {p.csrf()}})
	b.signIn(id, r, "alice", password).want(http.StatusOK, "wait")
}

func TestRetryIn(t *testing.T) {
	p, err := loadPages(Captcha{})
	if err != nil {
		t.Fatal(err)
	}
	_, strs := p.lang(httptest.NewRequest(http.MethodGet, "/", nil))
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{300 * time.Millisecond, "1 second"},
		{time.Second, "1 second"},
		{1200 * time.Millisecond, "2 seconds"},
		{42 * time.Second, "42 seconds"},
		{59 * time.Second, "59 seconds"},
		{59500 * time.Millisecond, "a minute"},
		{time.Minute, "a minute"},
		{61 * time.Second, "2 minutes"},
		{10 * time.Minute, "10 minutes"},
	} {
		if got := (view{Retry: c.d, strings: strs}).RetryIn(); got != c.want {
			t.Errorf("RetryIn(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}

// A front end's error page says what the user can do, in the page
// language's words, with the developer's detail in a line for the
// administrator (escaped).
func TestErrorPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		kind        ErrorKind
		title, body string
	}{
		{ErrorRequest, "error_request_title", "error_request_body"},
		{ErrorExpired, "expired_title", "expired_body"},
		{ErrorBusy, "error_busy_title", "error_busy_body"},
		{ErrorInternal, "error_title", "error_body"},
		{ErrorSignOut, "error_signout_title", "error_signout_body"},
	} {
		t.Run(c.title, func(t *testing.T) {
			rec := httptest.NewRecorder()
			const detail = `The application sent a redirect_uri that is not registered for it <script>`
			e.flow.ErrorPage(rec, httptest.NewRequest(http.MethodGet, "/oidc/authorize", nil), http.StatusBadRequest, c.kind, detail)
			if rec.Code != http.StatusBadRequest || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
				!strings.Contains(rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Fatalf("%d %v", rec.Code, rec.Header())
			}
			body := rec.Body.String()
			if strings.Contains(body, "<script>") {
				t.Errorf("the detail is not escaped: %s", body)
			}
			pg := &page{t: t, status: rec.Code, header: rec.Header(), body: body}
			doc, err := html.Parse(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			pg.doc = doc
			if pg.heading() != en(t, c.title) || !strings.Contains(pg.text(), en(t, c.body)) {
				t.Errorf("page %q, want %q and %q", pg.text(), en(t, c.title), en(t, c.body))
			}
			if !strings.Contains(pg.text(), en(t, "error_detail")+" "+detail) {
				t.Errorf("no detail line in %q", pg.text())
			}
		})
	}
	// Every kind of page tells the user to go back to the application (or
	// sign out there): none is a dead end.
	for _, k := range []string{"error_request_body", "expired_body", "error_busy_body", "error_body", "error_signout_body"} {
		if !strings.Contains(en(t, k), "application") {
			t.Errorf("%s does not say what to do: %q", k, en(t, k))
		}
	}
}
