// Command phones simulates enrolled phones for bench/radius.sh: it enrolls
// one device per user with the reference authenticator
// (pushauth/authenticator), then has every device long-poll for challenges
// and approve each one at once.
//
// Activation URLs come from the bridge's admin API (POST
// /admin/v1/users/{user}/activations). Once every device is enrolled, the
// control listener answers GET /ready; GET /stats reports what the devices
// did since the last reset (?reset=1 starts a new period), as key=value
// lines for the shell:
//
//	answered        challenges approved and accepted by the bridge
//	answer_errors   answers the bridge refused or that failed in transit
//	poll_errors     long-polls that failed
//	refused         challenges the device refused to show (bad signature)
//	enroll_retries  enrollments tried again after a server error
//	phone_p50_ms... time from the long-poll returning a challenge to the
//	                bridge accepting the approval: the phone's side
//	                (signing the answer and its proof, the POST, the
//	                bridge checking them)
//
// An enrollment the bridge fails with a 5xx status is tried again (with a
// new activation, at most 5 times): each retry is logged and counted
// (enroll_retries in /stats), as it is a finding, not noise.
//
// The devices share one HTTP transport that keeps a connection per device,
// as phones would each hold their own.
package main
