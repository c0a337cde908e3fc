package protocol_test

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// The worked examples of docs/device-protocol.md §17: the WebAuthn
// challenges of an enrollment and of two answers, as hex and as the
// base64url string the browser puts in clientDataJSON. The expected values
// were computed independently (sha256sum of the canonical string); the
// doc must show the same.
func TestWebAuthnChallengeExamples(t *testing.T) {
	const (
		act   = "q7hXw2b1ZtQK0sIy.9bYk8QmC3v0sJr5uN2aW1xE4pTzL7hFd6gRcVo0iMeA"
		tp    = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
		cid   = "Lx3kQ0m9VbR2nT8sWc4yHaJ6pE1u"
		chash = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
	)
	cases := []struct {
		name     string
		got      []byte
		hex, b64 string
	}{
		{"enrollment", protocol.EnrollWebAuthnChallenge(act, tp),
			"b2f668a10ed396605fb5a1eeb48a37a56aee761cc065b01b39df1dc28bc85250", "svZooQ7TlmBftaHutIo3pWrudhzAZbAbOd8dwovIUlA"},
		{"approve 42", protocol.AnswerWebAuthnChallenge(cid, chash, protocol.Approve, "42", 1700000000),
			"a9deb6b3429e435ec55474205be42dff1db0b39df2775a54f4ceeadbb766ce30", "qd62s0KeQ17FVHQgW-Qt_x2ws53yd1pU9M7q27dmzjA"},
		{"deny, no number", protocol.AnswerWebAuthnChallenge(cid, chash, protocol.Deny, "", 1700000000),
			"85d23cf9cfaddbae5f964354c4f47bbfbb77a29b0885ee4fe9ba12a3db82124e", "hdI8-c-t265flkNUxPR7v7t3opsIhe5P6boSo9uCEk4"},
	}
	doc, err := os.ReadFile("../../docs/device-protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if h := hex.EncodeToString(c.got); h != c.hex {
			t.Errorf("%s: %s, want %s", c.name, h, c.hex)
		}
		if b := base64.RawURLEncoding.EncodeToString(c.got); b != c.b64 {
			t.Errorf("%s: base64url %s, want %s", c.name, b, c.b64)
		}
		for _, s := range []string{c.hex, c.b64} {
			if !strings.Contains(string(doc), s) {
				t.Errorf("%s: docs/device-protocol.md does not show %s", c.name, s)
			}
		}
	}
	for _, s := range []string{act, tp, cid, chash} {
		if !strings.Contains(string(doc), s) {
			t.Errorf("docs/device-protocol.md does not show the example's input %s", s)
		}
	}
}
