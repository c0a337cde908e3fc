package account

import (
	"testing"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// The app link is exactly the shared format, its values percent-encoded,
// and carries no TLS pin.
func TestAppLink(t *testing.T) {
	act := protocol.Activation{BaseURL: "https://id.example.com/", Code: "abc.d+e/f", PushKey: "pk_1", TLSPin: "pin"}
	got := AppLink(act, "jo&ann@example.com")
	want := "https://id.example.com/app/#enroll?v=1&url=https%3A%2F%2Fid.example.com&code=abc.d%2Be%2Ff&pk=pk_1&user=jo%26ann%40example.com"
	if got != want {
		t.Errorf("AppLink = %s\nwant      %s", got, want)
	}
}
