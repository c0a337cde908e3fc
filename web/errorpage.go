package web

import (
	"net/http"
)

// ErrorKind says what a front end's error page tells the user to do.
type ErrorKind int

// The kinds of error page.
const (
	// ErrorRequest: the application's request is refused (an unknown
	// application, an unregistered address, a malformed or unsigned
	// request). Go back to the application and sign in again; the
	// helpdesk if it happens again.
	ErrorRequest ErrorKind = iota
	// ErrorExpired: the sign-in has expired, was used, or belongs to
	// another browser. Go back and sign in again.
	ErrorExpired
	// ErrorBusy: too many sign-ins from the address. Wait, then sign in
	// again.
	ErrorBusy
	// ErrorInternal: the bridge failed. Try again in a moment; the
	// helpdesk if it keeps failing.
	ErrorInternal
	// ErrorSignOut: a sign-out that cannot be done from here.
	ErrorSignOut
)

// errorKeys are the title and text of each kind of error page.
var errorKeys = map[ErrorKind][2]string{
	ErrorRequest:  {"error_request_title", "error_request_body"},
	ErrorExpired:  {"expired_title", "expired_body"},
	ErrorBusy:     {"error_busy_title", "error_busy_body"},
	ErrorInternal: {"error_title", "error_body"},
	ErrorSignOut:  {"error_signout_title", "error_signout_body"},
}

// ErrorPage answers a front end's request that cannot go back to the
// application (an OIDC or SAML error that must not be sent to an address
// the request names): what the user can do, in the browser's language,
// and detail (in English, for the administrator) in small print. The
// detail is logged too.
func (f *Flow) ErrorPage(w http.ResponseWriter, r *http.Request, status int, kind ErrorKind, detail string) {
	keys, ok := errorKeys[kind]
	if !ok {
		keys = errorKeys[ErrorRequest]
	}
	f.log.InfoContext(r.Context(), "sign-in error page", "status", status, "path", r.URL.Path, "detail", detail)
	f.pages.render(w, r, status, "message", view{Title: keys[0], Body: keys[1], Detail: detail})
}
