package radius

import (
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestCheckClass(t *testing.T) {
	for _, tc := range []struct {
		tmpl, err string // err: a piece of the error, "" for none
	}{
		{ClassOff, ""},
		{DefaultClass, ""},
		{"{id}", ""},
		{"vpn:{user}:{id}", ""},
		{"{id}{id}", ""},
		{"", "empty"},
		{"bridge", "must contain {id}"},
		{"{user}", "must contain {id}"},
		{"bridge:{ID}", "unknown placeholder {ID}"},
		{"bridge:{name}", "unknown placeholder {name}"},
		{"bridge:{id", "a { without its }"},
		{"bridge:id}", "a } without its {"},
		{"bridge:\t{id}", "control characters"},
		{strings.Repeat("x", maxAttribute-maxClassID) + "{id}", ""},
		{strings.Repeat("x", maxAttribute-maxClassID+1) + "{id}", "254 bytes with {id}, over the 253"},
	} {
		err := CheckClass(tc.tmpl)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.tmpl, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one with %q", tc.tmpl, err, tc.err)
		}
	}
}

func TestClassValue(t *testing.T) {
	const chal = "x5h33JklE6CpiIrIeBGtys3r4YE" // a push challenge id: 27 characters
	if len(chal) != maxClassID {
		t.Fatalf("the test's challenge id has %d characters, maxClassID is %d", len(chal), maxClassID)
	}
	for _, tc := range []struct{ name, tmpl, user, want string }{
		{"default", "", "alice", "bridge:" + chal},
		{"off", ClassOff, "alice", ""},
		{"template", "vpn/{user}/{id}", "alice", "vpn/alice/" + chal},
		{"control characters in the name", "{user}:{id}", "al\x00ice", "alice:" + chal},
	} {
		if got := classValue(tc.tmpl, chal, tc.user); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}

	// Without a challenge (a one-time code), {id} is random.
	a, b := classValue("", "", "alice"), classValue("", "", "alice")
	if a == b || !strings.HasPrefix(a, "bridge:") || len(a) != len("bridge:")+16 {
		t.Errorf("classes without a challenge: %q and %q, want two random ids", a, b)
	}

	// A long user name is cut so the value fits; the id stays whole.
	tmpl := strings.Repeat("p", 100) + ":{user}:{id}"
	if err := CheckClass(tmpl); err != nil {
		t.Fatal(err)
	}
	got := classValue(tmpl, chal, strings.Repeat("é", 200)) // 400 bytes
	if len(got) > maxAttribute || !strings.HasSuffix(got, ":"+chal) || !utf8.ValidString(got) {
		t.Fatalf("long user: %d bytes %q, want at most %d ending in the id, valid UTF-8", len(got), got, maxAttribute)
	}
}

func TestClassTemplateCheckedAtStart(t *testing.T) {
	c := &Client{Name: "vpn", Prefix: netip.MustParsePrefix("192.0.2.1/32"), Secret: testSecret, Directory: rejectAll{},
		MessageAuthenticator: MAAlways, Wait: Hold, HoldTimeout: time.Second,
		SecondFactor: FactorPush, Failmode: FailSecure, Class: "bridge:{who}"}
	if _, err := newClientTable([]*Client{c}); err == nil || !strings.Contains(err.Error(), "unknown placeholder {who}") {
		t.Fatalf("a client with an unknown placeholder: %v", err)
	}
}
