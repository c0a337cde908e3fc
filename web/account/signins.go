package account

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
)

// The recent sign-ins are the user's "login" audit events: every front
// end writes one per decision (RADIUS with channel radius, the browser
// sign-in with oidc, saml or account), with the application (details
// "application", or the RADIUS "client"), the address, the result and,
// for a push, the challenge; the device that answered is in the
// challenge's push.* event (details "device").
const (
	signInsShown = 20
	// signInsScan is how many of the user's events one page reads to find
	// signInsShown sign-ins (pushes and other events are among them).
	signInsScan = 200
)

// signInView is a sign-in as the page shows it.
type signInView struct {
	Seq            int64
	Time, App, IP  string
	Device, Result string // Result is a string key
	Outcome        string // success, failure, denied, error
	Reason         string
}

// appName is the configured name of an application, or "" when the
// config does not know it (any more).
func (p *Page) appName(channel, id string) string {
	if p.d.AppName == nil || id == "" {
		return ""
	}
	return p.d.AppName(channel, id)
}

func (p *Page) signInViews(evs []store.AuditEvent, names map[string]string) []signInView {
	deviceOf := map[string]string{} // challenge -> device
	for _, e := range evs {
		if c, d := e.Details["challenge"], e.Details["device"]; c != "" && d != "" && e.Action != "login" {
			deviceOf[c] = d
		}
	}
	var out []signInView
	for _, e := range evs {
		if e.Action != "login" {
			continue
		}
		o := resultKey(e.Result)
		v := signInView{Seq: e.Seq, Time: when(e.Time), IP: e.ClientIP, Result: "account.result_" + o, Outcome: o, Reason: e.Reason}
		v.App = e.Details["application"]
		if v.App == "" {
			v.App = e.Details["client"]
		}
		if name := p.appName(e.Channel, v.App); name != "" {
			v.App = name
		} else if v.App != "" && e.Channel != "" {
			v.App += " (" + e.Channel + ")"
		}
		dev := e.Details["device"]
		if dev == "" {
			dev = deviceOf[e.Details["challenge"]]
		}
		if n, ok := names[dev]; ok && n != "" {
			dev = n
		}
		v.Device = dev
		out = append(out, v)
		if len(out) == signInsShown {
			break
		}
	}
	return out
}

func resultKey(r store.AuditResult) string {
	switch r {
	case store.ResultSuccess, store.ResultFailure, store.ResultDenied:
		return string(r)
	default:
		return "error"
	}
}

// signIns lists the user's recent sign-ins, newest first; ?before=seq
// pages back.
func (p *Page) signIns(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	evs, err := p.d.Store.ListAuditBySubject(ctx, s.User, max(before, 0), signInsScan)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	devs, err := p.d.Store.ListDevices(ctx, s.User)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	names := map[string]string{}
	for _, d := range devs {
		names[d.ID] = d.Name
	}
	v := p.view(r, s, "account.signins_title")
	v.SignIns = p.signInViews(evs, names)
	if len(evs) == signInsScan {
		v.Older = evs[len(evs)-1].Seq
		if n := len(v.SignIns); n == signInsShown {
			v.Older = v.SignIns[n-1].Seq
		}
	}
	p.render(w, r, http.StatusOK, "signins", v)
}

// reportable returns the user's sign-in the path names, or false.
func (p *Page) reportable(r *http.Request, s session) (store.AuditEvent, bool) {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq <= 0 {
		return store.AuditEvent{}, false
	}
	evs, err := p.d.Store.ListAudit(r.Context(), seq-1, 1)
	if err != nil || len(evs) != 1 || evs[0].Seq != seq || evs[0].Subject != s.User || evs[0].Action != "login" {
		return store.AuditEvent{}, false
	}
	return evs[0], true
}

// confirmReport asks before reporting a sign-in.
func (p *Page) confirmReport(w http.ResponseWriter, r *http.Request, s session) {
	e, ok := p.reportable(r, s)
	if !ok {
		p.message(w, r, http.StatusNotFound, "account.no_signin_title", "account.no_signin_body")
		return
	}
	v := p.view(r, s, "account.report_title")
	si := p.signInViews([]store.AuditEvent{e}, nil)
	v.SignIn = &si[0]
	p.render(w, r, http.StatusOK, "report", v)
}

// report tells the push engine the sign-in was not the user's: pushes to
// them are locked until an operator unlocks them.
func (p *Page) report(w http.ResponseWriter, r *http.Request, s session) {
	e, ok := p.reportable(r, s)
	if !ok {
		p.message(w, r, http.StatusNotFound, "account.no_signin_title", "account.no_signin_body")
		return
	}
	err := p.d.Fraud.ReportFraud(detached(r.Context()), s.User, strconv.FormatInt(e.Seq, 10), p.d.Flow.ClientIP(r))
	if errors.Is(err, pushauth.ErrNotReportable) {
		p.message(w, r, http.StatusNotFound, "account.no_signin_title", "account.no_signin_body")
		return
	}
	if errors.Is(err, pushauth.ErrAlreadyReported) {
		// Counted once: a repeat neither lengthens the lock nor calls the
		// fraud webhook again.
		p.message(w, r, http.StatusOK, "account.already_reported_title", "account.already_reported_body")
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.message(w, r, http.StatusOK, "account.reported_title", "account.reported_body")
}
