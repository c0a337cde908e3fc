// Package web is the browser sign-in that the OIDC and SAML front ends
// share: the sign-in page (user name, password when the application's
// directory needs one, an optional CAPTCHA), the page that waits for the
// phone, the one-time-code fallback, and the browser session.
//
// A front end hands a sign-in to the Flow with Begin, naming the
// application and the path to come back to. The Flow stores the sign-in
// (store.GrantLogin, so any node can serve its next request), binds it to
// the browser with a cookie and redirects to /login/{id}. There the user
// signs in; the Flow checks the first factor, starts the push
// (pushauth.Engine) and shows the waiting page, which learns the outcome
// by Server-Sent Events (a long poll without them; a button without
// JavaScript). The waiting page names the push it shows (its attempt):
// after "send again" the old page's events and continue are stale, never
// the end of the sign-in. Once approved, the Flow records the result,
// opens a browser session and redirects back to the front end with
// login={id}; the front end takes the result with Finish, exactly once.
//
// Every form carries a CSRF token bound to the sign-in and the browser;
// all state changes are POSTs; nothing is loaded from another origin
// unless a CAPTCHA is configured. The strings shown live in
// locales/*.json, one file per language.
package web
