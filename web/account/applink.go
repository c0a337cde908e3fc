package account

import (
	"net/url"
	"strings"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// AppLink is the web app's activation link for act: the same parameters
// as the native bridge://enroll URL (without a TLS pin, which a browser
// cannot apply) plus the user, in the fragment of the app's address so
// that the code never reaches a server's log:
//
//	<base>/app/#enroll?v=1&url=<base>&code=<code>&pk=<push key>&user=<user>
func AppLink(act protocol.Activation, user string) string {
	base := strings.TrimRight(act.BaseURL, "/")
	return base + "/app/#enroll?v=" + protocol.Version +
		"&url=" + url.QueryEscape(base) +
		"&code=" + url.QueryEscape(act.Code) +
		"&pk=" + url.QueryEscape(act.PushKey) +
		"&user=" + url.QueryEscape(user)
}
