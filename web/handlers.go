package web

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
)

// Handler serves the sign-in pages under /login/ and their style sheet
// and script under /assets/.
func (f *Flow) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", f.pages.static())
	mux.HandleFunc("GET /login/{id}", f.show)
	mux.HandleFunc("POST /login/{id}", f.signIn)
	mux.HandleFunc("GET /login/{id}/events", f.events)
	mux.HandleFunc("GET /login/{id}/status", f.status)
	mux.HandleFunc("POST /login/{id}/continue", f.continueLogin)
	mux.HandleFunc("POST /login/{id}/resend", f.resend)
	mux.HandleFunc("GET /login/{id}/code", f.showCode)
	mux.HandleFunc("POST /login/{id}/code", f.submitCode)
	mux.HandleFunc("POST /login/{id}/restart", f.restart)
	return mux
}

// Limits of "send again".
const (
	resendInterval = 10 * time.Second
	maxResends     = 3
	// continueWait is how long a "continue" waits for the phone before
	// showing the waiting page again.
	continueWait = 3 * time.Second
	eventsWait   = 25 * time.Second
	statusWait   = 10 * time.Second
	// pushTimeout bounds starting and recording a push, which goes on
	// after the browser has left.
	pushTimeout = 30 * time.Second
	// resendingPause slows the long poll while a send-again is under way.
	resendingPause = time.Second
)

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// load is the start of every handler: the sign-in and its application, or
// a page saying the link is no good.
func (f *Flow) load(w http.ResponseWriter, r *http.Request) (string, login, App, bool) {
	id := r.PathValue("id")
	st, err := f.get(r, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrUsed) {
			f.log.ErrorContext(r.Context(), "loading sign-in failed", "err", err)
		}
		f.pages.message(w, r, http.StatusNotFound, "expired_title", "expired_body", "")
		return "", st, App{}, false
	}
	app, ok := f.apps(st.Channel, st.App)
	if !ok {
		f.pages.message(w, r, http.StatusNotFound, "expired_title", "expired_body", "")
		return "", st, App{}, false
	}
	return id, st, app, true
}

func (f *Flow) show(w http.ResponseWriter, r *http.Request) {
	id, st, app, ok := f.load(w, r)
	if !ok {
		return
	}
	switch st.Step {
	case "done":
		http.Redirect(w, r, returnURL(st.Return, id), http.StatusSeeOther)
	case "push":
		f.pages.wait(w, r, f.view(id, st, app))
	case "code":
		f.pages.code(w, r, f.view(id, st, app), "")
	case "failed":
		f.pages.failed(w, r, f.view(id, st, app))
	default:
		f.pages.signin(w, r, f.view(id, st, app), "", f.needsCaptcha(r, app))
	}
}

// view is what the templates see of a sign-in.
func (f *Flow) view(id string, st login, app App) view {
	v := view{
		ID: id, CSRF: f.csrf(id, st.Binding), App: app.Name, Number: st.Number, Hint: st.Hint,
		Password: app.Directory != nil && directory.RequiresPassword(app.Directory),
		HasCode:  st.HasCode && f.d.TOTP != nil && codesAccepted(app), Failure: st.Failure,
		Challenge: st.Challenge != "" || st.Decoy,
		CanResend: st.Resends < maxResends,
		Attempt:   st.attempt(),
	}
	if st.Step == "failed" && st.RetryAfter.After(f.now()) {
		v.Retry = st.RetryAfter.Sub(f.now())
	}
	if st.Identity != nil {
		v.User = st.Identity.Username
	}
	return v
}

// signIn checks the first factor and starts the push.
func (f *Flow) signIn(w http.ResponseWriter, r *http.Request) {
	id, st, app, ok := f.loadForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if st.Step != "signin" {
		http.Redirect(w, r, "/login/"+id, http.StatusSeeOther)
		return
	}
	ip := f.d.ClientIP(r)
	username := strings.TrimSpace(r.PostFormValue("username"))
	if len(username) > maxUsername {
		username = ""
	}
	st.Hint = username
	v := f.view(id, st, app)
	ipKey, userKey := store.AddressKey(ip), "pwd:"+store.NameKey(username)
	captcha := f.needsCaptcha(r, app)
	if !f.ipFails.take(ctx, ipKey) {
		f.audit(ctx, r, app, username, store.ResultFailure, "too many failed sign-ins from this address", nil)
		f.pages.signinStatus(w, r, http.StatusTooManyRequests, v, "error_too_many", false)
		return
	}
	if captcha {
		if err := f.captcha.verify(ctx, r, ip); err != nil {
			f.log.InfoContext(ctx, "CAPTCHA not solved", "err", err)
			f.audit(ctx, r, app, username, store.ResultFailure, "captcha: "+err.Error(), nil)
			f.pages.signinStatus(w, r, http.StatusBadRequest, v, "error_captcha", true)
			return
		}
	}
	if username == "" || !f.usrFail.take(ctx, userKey) {
		if username != "" {
			f.audit(ctx, r, app, username, store.ResultFailure, "too many failed sign-ins for this user", nil)
		}
		// The same answer as a wrong password: no hint whether the user
		// exists or is being guessed at.
		f.pages.signinStatus(w, r, http.StatusUnauthorized, v, "error_credentials", f.needsCaptcha(r, app))
		return
	}
	var (
		ident directory.Identity
		err   error
	)
	pwd := directory.RequiresPassword(app.Directory)
	if pwd {
		ident, err = app.Directory.Authenticate(ctx, username, r.PostFormValue("password"))
	} else {
		ident, err = app.Directory.Lookup(ctx, username)
	}
	switch {
	case errors.Is(err, directory.ErrUnavailable), err != nil && ctx.Err() != nil:
		f.ipFails.refund(ctx, ipKey)
		f.usrFail.refund(ctx, userKey)
		f.log.ErrorContext(ctx, "directory unavailable", "directory", app.Directory.Name(), "err", err)
		f.audit(ctx, r, app, username, store.ResultError, err.Error(), nil)
		f.pages.signinStatus(w, r, http.StatusServiceUnavailable, v, "error_unavailable", false)
		return
	case err != nil && !pwd:
		// Passwordless: an unknown or disabled user gets the waiting
		// page like everyone else, and nothing is pushed. (Known users'
		// attempts are not refunded either, so the counters tell nothing.)
		f.audit(ctx, r, app, username, store.ResultFailure, err.Error(), nil)
		f.decoy(w, r, id, app)
		return
	case err != nil:
		f.audit(ctx, r, app, username, store.ResultFailure, err.Error(), nil)
		f.pages.signinStatus(w, r, http.StatusUnauthorized, v, "error_credentials", f.needsCaptcha(r, app))
		return
	}
	if pwd {
		f.ipFails.refund(ctx, ipKey)
		f.usrFail.refund(ctx, userKey)
	}
	hasCode := f.hasTOTP(ctx, ident.Username)
	if !pwd {
		// Offered to everyone on a passwordless sign-in, for the same
		// reason as the decoy.
		hasCode = f.d.TOTP != nil
	}
	hasCode = hasCode && codesAccepted(app)
	st, err = f.update(ctx, id, func(s *login) error {
		if s.Step != "signin" {
			return errStep
		}
		s.Step, s.Identity, s.Password, s.HasCode, s.Hint = "push", &ident, pwd, hasCode, username
		return nil
	})
	if err != nil {
		f.stepError(w, r, id, err)
		return
	}
	f.push(w, r, id, st, app)
}

var errStep = errors.New("web: the sign-in has moved on")

// stepError answers a lost race with another tab, or a store failure.
func (f *Flow) stepError(w http.ResponseWriter, r *http.Request, id string, err error) {
	if errors.Is(err, errStep) || errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrNotFound) {
		http.Redirect(w, r, "/login/"+id, http.StatusSeeOther)
		return
	}
	f.fail(w, r, err)
}

// push starts the push for a sign-in past its first factor and shows the
// waiting page (or what stops it).
func (f *Flow) push(w http.ResponseWriter, r *http.Request, id string, st login, app App) {
	// Once asked for, the push is sent or refused and the sign-in must
	// say which, even if the browser leaves: a page navigating away (the
	// old waiting page's script, a second click) cancels the request,
	// and a push on the phone that the sign-in does not name is lost.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), pushTimeout)
	defer cancel()
	user := st.Identity.Username
	// Each "send again" is its own station: the engine then supersedes
	// the pending push instead of joining it, and applies its limits
	// before counting the superseded one (cancelling first would put the
	// user in back-off and refuse the new push).
	station := "web:" + id
	if st.Resends > 0 {
		station += "/" + strconv.Itoa(st.Resends)
	}
	h, err := f.d.Push.Start(ctx, pushauth.Request{
		User: user, AppID: app.ID, AppName: app.Name, Channel: app.Channel,
		ClientIP: f.d.ClientIP(r), UserAgent: userAgent(r), Station: station,
		NumberMatching: app.NumberMatching, DeviceKeys: app.DeviceKeys,
	})
	var failure string
	var retry time.Time
	var rl *pushauth.RateLimitError
	switch {
	case err == nil:
	case st.Password && errors.Is(err, pushauth.ErrNoQualifyingDevice):
		// Before the code page: under device_keys hardware or attested a
		// code is no way around the key (codesAccepted). Not on a
		// passwordless sign-in, whose decoy below keeps known users
		// looking like unknown ones (and offers no code here either).
		failure = "nodevicekeys"
	case !st.Password && (errors.Is(err, pushauth.ErrNoDevice) || errors.Is(err, pushauth.ErrLocked) || errors.As(err, &rl)):
		// Passwordless: the waiting page, as for an unknown user (a code
		// still works from there for a user with a token): what would
		// set a known user apart stays in the audit log.
		f.audit(ctx, r, app, user, store.ResultFailure, err.Error(), nil)
		f.decoy(w, r, id, app)
		return
	case errors.Is(err, pushauth.ErrNoDevice) && st.HasCode:
		st, err = f.update(ctx, id, func(s *login) error { s.Step = "code"; return nil })
		if err != nil {
			f.stepError(w, r, id, err)
			return
		}
		f.pages.code(w, r, f.view(id, st, app), "")
		return
	case errors.Is(err, pushauth.ErrNoDevice):
		failure = "nodevice"
	case errors.Is(err, pushauth.ErrLocked):
		failure = "locked"
	case errors.As(err, &rl):
		failure = "ratelimited"
		retry = rl.RetryAfter
	default:
		f.fail(w, r, err)
		return
	}
	if failure != "" {
		f.audit(ctx, r, app, user, store.ResultFailure, err.Error(), nil)
		st, err = f.update(ctx, id, func(s *login) error { s.Step, s.Failure, s.RetryAfter = "failed", failure, retry; return nil })
		if err != nil {
			f.stepError(w, r, id, err)
			return
		}
		f.pages.failed(w, r, f.view(id, st, app))
		return
	}
	st, err = f.update(ctx, id, func(s *login) error {
		if s.Step != "push" {
			return errStep
		}
		s.Challenge, s.Number, s.Expires, s.PushedAt, s.Sending = h.ID, h.Number, h.ExpiresAt, f.now(), false
		return nil
	})
	if err != nil {
		_ = f.d.Push.Cancel(ctx, h.ID, "sign-in moved on")
		f.stepError(w, r, id, err)
		return
	}
	f.pages.wait(w, r, f.view(id, st, app))
}

// decoy shows a waiting page for a passwordless sign-in that pushes
// nothing; it ends as a timeout.
func (f *Flow) decoy(w http.ResponseWriter, r *http.Request, id string, app App) {
	number := ""
	if app.NumberMatching {
		number, _ = randomDigits(f.decoyDigits)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), pushTimeout)
	defer cancel()
	st, err := f.update(ctx, id, func(s *login) error {
		// From the form (an unknown user), from push (a known one
		// without a phone: the identity stays, for a code), or sent
		// again; never in place of a push that was sent.
		if (s.Step != "signin" && s.Step != "push") || s.Challenge != "" {
			return errStep
		}
		s.Step, s.Decoy, s.Number, s.HasCode = "push", true, number, f.d.TOTP != nil && codesAccepted(app)
		s.Expires, s.PushedAt, s.Sending = f.now().Add(f.decoyTTL), f.now(), false
		return nil
	})
	if err != nil {
		f.stepError(w, r, id, err)
		return
	}
	f.pages.wait(w, r, f.view(id, st, app))
}

// outcome waits up to d for the sign-in's push to end. ok is false while
// it is still pending.
func (f *Flow) outcome(ctx context.Context, st login, d time.Duration) (pushauth.Outcome, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if st.Decoy {
		left := st.Expires.Sub(f.now())
		if left > d {
			<-ctx.Done()
			return pushauth.Outcome{}, false, nil
		}
		if left > 0 {
			t := time.NewTimer(left)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return pushauth.Outcome{}, false, nil
			}
		}
		return pushauth.Outcome{State: store.ChallengeExpired}, true, nil
	}
	o, err := f.d.Push.Wait(ctx, st.Challenge)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return o, false, nil
	}
	if err != nil {
		return o, false, err
	}
	return o, true, nil
}

// events streams the push's outcome as Server-Sent Events; the page then
// posts "continue". The stream ends after eventsWait without news and
// the browser reconnects.
func (f *Flow) events(w http.ResponseWriter, r *http.Request) {
	_, st, _, ok := f.loadQuiet(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	fmt.Fprint(w, "retry: 1000\n\n")
	_ = rc.Flush()
	if st.Step != "push" {
		fmt.Fprintf(w, "event: outcome\ndata: {\"state\":%q}\n\n", st.Step)
		return
	}
	state, ok := f.pushState(r, st, eventsWait)
	if !ok || state == "error" {
		// Nothing yet (or a send-again under way, or the store failing):
		// the stream ends and the browser reconnects.
		return
	}
	data, _ := json.Marshal(map[string]string{"state": state})
	fmt.Fprintf(w, "event: outcome\ndata: %s\n\n", data)
	_ = rc.Flush()
}

// stateStale is the state the waiting page's script gets when its push
// is no longer the sign-in's (a "send again", perhaps in another tab): it
// must not continue on it, but load the current page.
const stateStale = "stale"

// pushState waits up to d for the outcome of the push the waiting page
// shows (the attempt it names) and says what the page should do: the
// push's final state, stateStale, or ok false for nothing yet. The
// outcome of a push that a send-again replaced is stale, never final for
// the sign-in.
func (f *Flow) pushState(r *http.Request, st login, d time.Duration) (string, bool) {
	if st.resending() {
		return "", false
	}
	if a, named := pageAttempt(r); named && a != st.attempt() {
		return stateStale, true
	}
	o, done, err := f.outcome(r.Context(), st, d)
	switch {
	case err != nil:
		return "error", true
	case !done:
		return "", false
	case o.Approved():
		return string(o.State), true
	}
	// Not approved: the outcome counts only if the push is still the
	// sign-in's.
	cur, err := f.get(r, r.PathValue("id"))
	if err != nil || cur.Step != "push" {
		return string(o.State), true
	}
	if cur.resending() {
		return "", false
	}
	if cur.Challenge != st.Challenge || cur.Resends != st.Resends {
		return stateStale, true
	}
	return string(o.State), true
}

// pageAttempt is the attempt a waiting page's request names (the
// attempt parameter: its push); named is false when it names none.
func pageAttempt(r *http.Request) (n int, named bool) {
	v := r.FormValue("attempt")
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1, true // names no attempt there is: stale
	}
	return n, true
}

// status is the long poll for browsers without EventSource.
func (f *Flow) status(w http.ResponseWriter, r *http.Request) {
	_, st, _, ok := f.loadQuiet(w, r)
	if !ok {
		return
	}
	state := st.Step
	if st.Step == "push" {
		if st.resending() {
			// Do not let the poll spin while the new push is recorded.
			pause(r.Context(), resendingPause)
		}
		s, ok := f.pushState(r, st, statusWait)
		if !ok {
			s = "pending"
		}
		state = s
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"state": state})
}

// loadForm is load for a form's POST: the form must carry the sign-in's
// CSRF token.
func (f *Flow) loadForm(w http.ResponseWriter, r *http.Request) (string, login, App, bool) {
	id, st, app, ok := f.load(w, r)
	if ok && !f.checkCSRF(r, id, st) {
		f.pages.message(w, r, http.StatusForbidden, "csrf_title", "csrf_body", "/login/"+id)
		return "", st, app, false
	}
	return id, st, app, ok
}

// loadQuiet is load for the endpoints scripts call: a bare 404.
func (f *Flow) loadQuiet(w http.ResponseWriter, r *http.Request) (string, login, App, bool) {
	id := r.PathValue("id")
	st, err := f.get(r, id)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return "", st, App{}, false
	}
	app, ok := f.apps(st.Channel, st.App)
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return "", st, App{}, false
	}
	return id, st, app, true
}

// continueLogin finishes a sign-in whose push was answered.
func (f *Flow) continueLogin(w http.ResponseWriter, r *http.Request) {
	id, st, app, ok := f.loadForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if st.Step != "push" {
		http.Redirect(w, r, "/login/"+id, http.StatusSeeOther)
		return
	}
	if a, named := pageAttempt(r); st.resending() || named && a != st.attempt() {
		// The page of a push that a send-again replaced (or is
		// replacing): its continue ends nothing; the current waiting
		// page is shown.
		http.Redirect(w, r, "/login/"+id, http.StatusSeeOther)
		return
	}
	o, done, err := f.outcome(ctx, st, continueWait)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if !done {
		f.pages.wait(w, r, f.view(id, st, app))
		return
	}
	user := ""
	if st.Identity != nil {
		user = st.Identity.Username
	}
	if !o.Approved() || st.Decoy || o.ID != st.Challenge {
		failure := failureOf(o.State)
		f.audit(ctx, r, app, user, store.ResultFailure, "push "+string(o.State), map[string]string{"challenge": st.Challenge})
		st, err = f.update(ctx, id, func(s *login) error {
			if s.Step != "push" || s.Challenge != st.Challenge || s.resending() {
				return errStep
			}
			s.Step, s.Failure = "failed", failure
			return nil
		})
		if err != nil {
			f.stepError(w, r, id, err)
			return
		}
		f.pages.failed(w, r, f.view(id, st, app))
		return
	}
	// RFC 8176: the phone's key is hwk or swk; mfa only with the
	// password (a passwordless push is one factor, possession). A
	// passkey's assertion also says the user was verified on the phone
	// (fingerprint, face or PIN): user.
	keyAMR := []string{"swk"}
	switch {
	case o.Passkey:
		keyAMR = []string{"hwk", "user"}
	case o.HardwareKey:
		keyAMR = []string{"hwk"}
	}
	amr := keyAMR
	if st.Password {
		amr = append([]string{"pwd", "mfa"}, keyAMR...)
	}
	f.complete(w, r, id, st, app, amr, o.DeviceID, map[string]string{"challenge": st.Challenge})
}

// complete records a sign-in's success, opens the browser session and
// returns to the front end.
func (f *Flow) complete(w http.ResponseWriter, r *http.Request, id string, st login, app App, amr []string, device string, details map[string]string) {
	ctx := r.Context()
	ident := st.Identity
	res := &Result{
		User: ident.Username, DisplayName: ident.DisplayName, Email: ident.Email, Groups: ident.Groups,
		Directory: ident.Directory, AuthTime: f.now().Truncate(time.Second), AMR: amr, DeviceID: device,
	}
	if res.Directory == "" {
		res.Directory = app.Directory.Name()
	}
	tok := f.sessionToken(r, res)
	st, err := f.update(ctx, id, func(s *login) error {
		if s.Step != "push" && s.Step != "code" {
			return errStep
		}
		s.Step, s.Result = "done", res
		return nil
	})
	if err != nil {
		f.stepError(w, r, id, err)
		return
	}
	f.openSession(w, r, *res, tok)
	details["amr"] = strings.Join(amr, " ")
	if device != "" {
		details["device"] = device
	}
	f.audit(ctx, r, app, res.User, store.ResultSuccess, "", details)
	http.Redirect(w, r, returnURL(st.Return, id), http.StatusSeeOther)
}

func failureOf(s store.ChallengeState) string {
	switch s {
	case store.ChallengeDenied:
		return "denied"
	case store.ChallengeFraud:
		return "fraud"
	case store.ChallengeExpired:
		return "timeout"
	case store.ChallengeSuperseded:
		return "superseded"
	default:
		return "cancelled"
	}
}

// resend sends the push again: the pending one is cancelled and a new
// one started, so pushes never stack.
func (f *Flow) resend(w http.ResponseWriter, r *http.Request) {
	id, st, app, ok := f.loadForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	old := st.Challenge
	now := f.now()
	next, err := f.update(ctx, id, func(s *login) error {
		if s.Step != "push" {
			return errStep
		}
		if s.Resends >= maxResends || now.Sub(s.PushedAt) < resendInterval {
			return errResendLimit
		}
		s.Resends++
		s.PushedAt, s.Sending = now, true
		return nil
	})
	if errors.Is(err, errResendLimit) {
		// The page of the sign-in as loaded: update returns no state
		// with an error, and a zero one has no token or number.
		v := f.view(id, st, app)
		v.Notice = "resend_wait"
		f.pages.waitStatus(w, r, http.StatusTooManyRequests, v)
		return
	}
	if err != nil {
		f.stepError(w, r, id, err)
		return
	}
	st = next
	if st.Decoy {
		f.decoy(w, r, id, app)
		return
	}
	f.push(w, r, id, st, app)
	ctx = context.WithoutCancel(ctx)
	// A send-again that recorded no push (none could be started) is over:
	// the sign-in's push is the old one again, ended below.
	if _, err := f.update(ctx, id, func(s *login) error {
		if s.Resends != st.Resends || !s.resending() {
			return errStep
		}
		s.Sending = false
		return nil
	}); err != nil && !errors.Is(err, errStep) && !errors.Is(err, store.ErrUsed) && !errors.Is(err, store.ErrNotFound) {
		f.log.WarnContext(ctx, "ending a send-again failed", "err", err)
	}
	// The new push superseded the old one; if none could be started, the
	// old one is cancelled here. Either way it does not stay pending.
	if old != "" {
		err := f.d.Push.Cancel(ctx, old, "sent again")
		if err != nil && !errors.Is(err, store.ErrUsed) && !errors.Is(err, store.ErrNotFound) {
			f.log.WarnContext(ctx, "cancelling the previous push failed", "err", err)
		}
	}
}

var errResendLimit = errors.New("web: send again limit")

func (f *Flow) showCode(w http.ResponseWriter, r *http.Request) {
	id, st, app, ok := f.load(w, r)
	if !ok {
		return
	}
	if (st.Step != "push" && st.Step != "code") || !st.HasCode || f.d.TOTP == nil || !codesAccepted(app) {
		http.Redirect(w, r, "/login/"+id, http.StatusSeeOther)
		return
	}
	f.pages.code(w, r, f.view(id, st, app), "")
}

// codesAccepted reports whether app takes one-time codes (TOTP) instead
// of an approval: not under device_keys hardware or attested, the
// operator's word that a hardware-bound key must approve (a code typed
// from anywhere would go around it). Looked up with the application on
// every request, so a changed config applies to sign-ins under way.
func codesAccepted(app App) bool {
	return app.DeviceKeys == "" || app.DeviceKeys == pushauth.KeysAny
}

// submitCode checks a TOTP code typed instead of approving.
func (f *Flow) submitCode(w http.ResponseWriter, r *http.Request) {
	id, st, app, ok := f.loadForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if (st.Step != "push" && st.Step != "code") || !st.HasCode || f.d.TOTP == nil {
		http.Redirect(w, r, "/login/"+id, http.StatusSeeOther)
		return
	}
	v := f.view(id, st, app)
	ipKey := store.AddressKey(f.d.ClientIP(r))
	user := ""
	if st.Identity != nil {
		user = st.Identity.Username
	}
	if !codesAccepted(app) {
		// Not checked, so not used up.
		f.audit(ctx, r, app, user, store.ResultFailure, "one-time code refused: the application's device_keys is "+app.DeviceKeys, nil)
		http.Redirect(w, r, "/login/"+id, http.StatusSeeOther)
		return
	}
	// Counted before checking, so parallel guesses cannot outrun the
	// limit; refunded on success.
	if !f.ipFails.take(ctx, ipKey) {
		f.audit(ctx, r, app, user, store.ResultFailure, "too many codes", nil)
		f.pages.codeStatus(w, r, http.StatusTooManyRequests, v, "error_too_many")
		return
	}
	// Keyed on the name typed at sign-in, known or not, so that a decoy
	// and a real sign-in count alike.
	codeKey := "code:" + store.NameKey(st.Hint)
	if !f.usrFail.take(ctx, codeKey) {
		f.audit(ctx, r, app, user, store.ResultFailure, "too many codes", nil)
		f.pages.codeStatus(w, r, http.StatusTooManyRequests, v, "error_too_many")
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	var err error
	if user == "" {
		err = errors.New("no such user")
	} else {
		err = f.d.TOTP.Verify(ctx, user, code)
	}
	if err != nil {
		f.audit(ctx, r, app, user, store.ResultFailure, "code: "+err.Error(), nil)
		f.pages.codeStatus(w, r, http.StatusUnauthorized, v, "error_code")
		return
	}
	f.usrFail.refund(ctx, codeKey)
	f.ipFails.refund(ctx, ipKey)
	if st.Challenge != "" {
		if err := f.d.Push.Resolve(ctx, st.Challenge, "one-time code used instead"); err != nil {
			f.log.WarnContext(ctx, "cancelling the push failed", "err", err)
		}
	}
	// mfa only with the password: a code alone is one factor.
	amr := []string{"otp"}
	if st.Password {
		amr = []string{"pwd", "otp", "mfa"}
	}
	f.complete(w, r, id, st, app, amr, "", map[string]string{"factor": "totp"})
}

// restart takes a failed or abandoned sign-in back to the sign-in form.
func (f *Flow) restart(w http.ResponseWriter, r *http.Request) {
	id, st, _, ok := f.loadForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	old := st.Challenge
	_, err := f.update(ctx, id, func(s *login) error {
		if s.Step == "done" {
			return errStep
		}
		*s = login{Channel: s.Channel, App: s.App, Return: s.Return, Fresh: s.Fresh, MaxAge: s.MaxAge,
			HasMaxAge: s.HasMaxAge, Hint: s.Hint, Binding: s.Binding, Step: "signin"}
		return nil
	})
	if err != nil {
		f.stepError(w, r, id, err)
		return
	}
	if old != "" {
		_ = f.d.Push.Cancel(ctx, old, "sign-in restarted")
	}
	http.Redirect(w, r, "/login/"+id, http.StatusSeeOther)
}

func (f *Flow) hasTOTP(ctx context.Context, user string) bool {
	if f.d.TOTP == nil || f.d.HasTOTP == nil {
		return false
	}
	ok, err := f.d.HasTOTP(ctx, user)
	if err != nil {
		f.log.WarnContext(ctx, "checking for a TOTP token failed", "err", err)
	}
	return ok
}

func (f *Flow) needsCaptcha(r *http.Request, app App) bool {
	if f.captcha == nil {
		return false
	}
	if app.Captcha {
		return true
	}
	n := f.cfg.Captcha.AfterFailures
	return n > 0 && f.ipFails.count(r.Context(), store.AddressKey(f.d.ClientIP(r))) >= n
}

// fail answers an internal error with a generic page; the detail goes to
// the log only.
func (f *Flow) fail(w http.ResponseWriter, r *http.Request, err error) {
	f.log.ErrorContext(r.Context(), "sign-in failed", "err", err)
	f.pages.message(w, r, http.StatusInternalServerError, "error_title", "error_body", "")
}

// maxUserAgent is the longest user agent passed on: the push engine
// refuses request fields over 512 bytes, and a browser's header may be
// longer (or made so).
const maxUserAgent = 512

// userAgent is the request's User-Agent, cut to maxUserAgent bytes at a
// character boundary.
func userAgent(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) <= maxUserAgent {
		return ua
	}
	n := maxUserAgent
	for n > 0 && !utf8.RuneStart(ua[n]) {
		n--
	}
	return ua[:n]
}

// randomDigits returns n random decimal digits.
func randomDigits(n int) (string, error) {
	out := make([]byte, 0, n)
	var b [1]byte
	for len(out) < n {
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		if b[0] < 250 { // 250 = 25*10: no modulo bias
			out = append(out, '0'+b[0]%10)
		}
	}
	return string(out), nil
}

// maxUsername bounds a typed user name; a longer one is treated as wrong.
const maxUsername = 256
