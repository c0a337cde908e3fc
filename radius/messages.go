package radius

// What the user reads in Reply-Message, in one place for translation. The
// NAS shows them in its login prompt (VPN client, SSH, captive portal).
const (
	msgApprove            = "Approve the sign-in on your phone, then press Enter. Or type a one-time code."
	msgApproveOnly        = "Approve the sign-in on your phone, then press Enter."
	msgNoCodes            = "This service does not take one-time codes: approve the sign-in on your phone (a passkey or hardware key)."
	msgNoCodesApprove     = "This service does not take one-time codes. Approve the sign-in on your phone, then press Enter."
	msgApproveNumber      = "Type %s on your phone to approve the sign-in, then press Enter here."
	msgStillWaiting       = "Still waiting for your phone. Approve the sign-in, then press Enter."
	msgStillWaitingNumber = "Still waiting for your phone. Type %s on your phone to approve, then press Enter."
	msgEnterCode          = "Enter your one-time code."
	msgCodeAgain          = "That code did not work. Enter your one-time code."
	msgCodeAgainOrApprove = "That code did not work. Type a new code, or approve on your phone and press Enter."
	msgAppendCode         = "Add your one-time code to the password, as password,123456."
	msgOTPOnly            = "This service takes one-time codes: add yours to the password, as password,123456."
	msgNoDevice           = "No phone is set up for your account. Ask your IT team to enroll one."
	msgNoDeviceKeys       = "None of your phones can approve this sign-in: it needs a passkey or a hardware key. Ask your IT team."
	msgNoAnswer           = "No answer from your phone in time. Sign in again."
	msgDenied             = "The sign-in was denied on your phone."
	msgLocked             = "Sign-in approvals are locked for your account after a fraud report. Contact your IT team."
	msgTooMany            = "Too many sign-in attempts. Wait a few minutes and try again."
	msgUnavailable        = "Sign-in approval is unavailable right now. Try again in a few minutes."
	msgExpired            = "This sign-in has expired. Sign in again."
)
