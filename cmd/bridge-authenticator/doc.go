// Command bridge-authenticator is the reference authenticator: a device of
// the bridge's push protocol that runs in a terminal. It enrolls with an
// activation URL (`enroll`), then shows login requests and sends the
// user's approve / deny / report decision (`wait`); `status` shows the
// enrolled device. It is built on package pushauth/authenticator and keeps
// the device, private key included, in a 0600 state file.
//
// Exit codes: 0 success, 1 failure, 2 wrong usage.
package main
