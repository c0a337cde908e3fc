package config

import (
	"bytes"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/radius/dict"
)

// radiusSecret is a valid shared secret for tests.
const radiusSecret = "0123456789abcdef"

// radiusClient is a radius section with one valid client: extra keys for
// it on line 3 of the section (line 8 after trial), then address and secret
// unless extra has them.
func radiusClient(extra string) string {
	s := "radius:\n  clients:\n    - name: vpn\n" + extra
	for _, kv := range []string{"address: 192.0.2.10", "secret: " + radiusSecret} {
		key, _, _ := strings.Cut(kv, ":")
		if !strings.Contains(extra, "      "+key+":") {
			s += "      " + kv + "\n"
		}
	}
	return s
}

func TestRadiusDefaults(t *testing.T) {
	c := mustParse(t, trial(radiusClient("")))
	r := c.Radius
	if !r.Enabled() || !r.AccountingEnabled() || r.Listen != "127.0.0.1:1812" || r.AccountingListen != "127.0.0.1:1813" ||
		r.ReadBuffer != 4<<20 || r.AnswerCache != 30*time.Second || r.MaxPending != 10000 {
		t.Errorf("radius %+v", r)
	}
	want := RadiusClient{
		Name: "vpn", Address: "192.0.2.10", Secret: radiusSecret, Directory: "local",
		MessageAuthenticator: "always", Wait: "hold", HoldTimeout: 25 * time.Second, NumberMatching: false, DeviceKeys: DeviceKeysAny,
		SecondFactor: "push", PasswordSuffix: true, Failmode: "secure",
		FailuresPerUser: 10, FailuresPerIP: 20, FailuresPerClient: 100,
	}
	if got := r.Clients[0]; !equalClient(got, want) {
		t.Errorf("client defaults:\n got %+v\nwant %+v", got, want)
	}

	tests := []struct {
		name  string
		src   string
		check func(c *Config) bool
	}{
		{"disabled", "", func(c *Config) bool { return !c.Radius.Enabled() }},
		{"accounting from listen", "radius:\n  listen: 0.0.0.0:11812\n  clients:\n    - {name: a, address: 10.0.0.1, secret: " + radiusSecret + "}\n",
			func(c *Config) bool { return c.Radius.AccountingListen == "0.0.0.0:1813" }},
		{"accounting from IPv6 listen", "radius:\n  listen: '[::1]:1812'\n  clients:\n    - {name: a, address: 10.0.0.1, secret: " + radiusSecret + "}\n",
			func(c *Config) bool { return c.Radius.AccountingListen == "[::1]:1813" }},
		{"accounting on port 0", "radius:\n  listen: 127.0.0.1:0\n  clients:\n    - {name: a, address: 10.0.0.1, secret: " + radiusSecret + "}\n",
			func(c *Config) bool { return c.Radius.AccountingListen == "127.0.0.1:0" }},
		{"accounting off", "radius:\n  accounting_listen: off\n  clients:\n    - {name: a, address: 10.0.0.1, secret: " + radiusSecret + "}\n",
			func(c *Config) bool { return !c.Radius.AccountingEnabled() }},
		{"first directory", "directories:\n  - {name: corp, type: local}\n  - {name: other, type: local}\n" + radiusClient(""),
			func(c *Config) bool { return c.Radius.Clients[0].Directory == "corp" }},
		{"number matching with challenge", radiusClient("      wait: challenge\n"),
			func(c *Config) bool { return c.Radius.Clients[0].NumberMatching }},
		{"no number matching with challenge and otp", radiusClient("      wait: challenge\n      second_factor: otp\n"),
			func(c *Config) bool { return !c.Radius.Clients[0].NumberMatching }},
		{"number matching off with challenge", radiusClient("      wait: challenge\n      number_matching: false\n"),
			func(c *Config) bool { return !c.Radius.Clients[0].NumberMatching }},
		{"hold_timeout within a short challenge_ttl", "push:\n  challenge_ttl: 15s\n" + radiusClient(""),
			func(c *Config) bool { return c.Radius.Clients[0].HoldTimeout == 15*time.Second }},
		{"password_suffix off", radiusClient("      password_suffix: false\n"),
			func(c *Config) bool { return !c.Radius.Clients[0].PasswordSuffix }},
		{"class on by default", radiusClient(""),
			func(c *Config) bool { return c.Radius.Clients[0].Reply.Class == "bridge:{id}" }},
		{"class off", radiusClient("      reply:\n        class: off\n"),
			func(c *Config) bool { return c.Radius.Clients[0].Reply.Class == "off" }},
		{"class template", radiusClient("      reply:\n        class: \"vpn/{user}/{id}\"\n"),
			func(c *Config) bool { return c.Radius.Clients[0].Reply.Class == "vpn/{user}/{id}" }},
	}
	for _, tt := range tests {
		c := mustParse(t, trial(tt.src))
		if !tt.check(c) {
			t.Errorf("%s: radius %+v", tt.name, c.Radius)
		}
	}
}

// equalClient compares the scalar keys of two clients.
func equalClient(a, b RadiusClient) bool {
	a.Reply, b.Reply = RadiusReply{}, RadiusReply{}
	return reflect.DeepEqual(a, b)
}

func TestRadiusValidate(t *testing.T) {
	tests := []struct {
		name string
		src  string // completed by trial
		want string // "" means valid
	}{
		{"listen", "radius:\n  listen: 1812\n" + radiusClient("")[len("radius:\n"):],
			`bridge.yaml:6: radius.listen: invalid address "1812": want host:port`},
		{"listen port", "radius:\n  listen: 127.0.0.1:70000\n  accounting_listen: off\n" + radiusClient("")[len("radius:\n"):],
			`radius.listen: invalid port "70000"`},
		{"accounting_listen", "radius:\n  accounting_listen: x\n" + radiusClient("")[len("radius:\n"):],
			`bridge.yaml:6: radius.accounting_listen: invalid address "x"`},
		{"accounting on listen", "radius:\n  listen: 0.0.0.0:1812\n  accounting_listen: 127.0.0.1:1812\n" + radiusClient("")[len("radius:\n"):],
			"bridge.yaml:7: radius.accounting_listen: 127.0.0.1:1812 overlaps radius.listen (0.0.0.0:1812): accounting needs its own port (or off)"},
		{"accounting derived onto listen", "radius:\n  listen: 127.0.0.1:1813\n" + radiusClient("")[len("radius:\n"):],
			"bridge.yaml:5: radius.accounting_listen: 127.0.0.1:1813 overlaps radius.listen (127.0.0.1:1813)"},
		{"both on port 0", "radius:\n  listen: 127.0.0.1:0\n  accounting_listen: 127.0.0.1:0\n" + radiusClient("")[len("radius:\n"):], ""},
		{"accounting on another host", "radius:\n  listen: 10.0.0.1:1812\n  accounting_listen: 10.0.0.2:1812\n" + radiusClient("")[len("radius:\n"):], ""},
		{"read_buffer low", "radius:\n  read_buffer: 65535\n" + radiusClient("")[len("radius:\n"):],
			"bridge.yaml:6: radius.read_buffer: must be from 65536 to 67108864, got 65535"},
		{"read_buffer high", "radius:\n  read_buffer: 67108865\n" + radiusClient("")[len("radius:\n"):], "radius.read_buffer: must be from 65536 to 67108864"},
		{"answer_cache", "radius:\n  answer_cache: 500ms\n" + radiusClient("")[len("radius:\n"):], "radius.answer_cache: must be from 10s to 5m, got 500ms"},
		{"max_pending", "radius:\n  max_pending: 0\n" + radiusClient("")[len("radius:\n"):], "radius.max_pending: must be from 1 to 1000000, got 0"},
		{"keys without clients", "radius:\n  listen: 0.0.0.0:1812\n",
			"bridge.yaml:5: radius.clients: no clients, which leaves the RADIUS front end off: add clients, or remove the other radius keys"},
		{"empty clients", "radius:\n  clients: []\n", "radius.clients: no clients"},
		{"empty section", "radius:\n", ""},

		{"name required", "radius:\n  clients:\n    - address: 192.0.2.1\n      secret: " + radiusSecret + "\n",
			"bridge.yaml:7: radius.clients[0].name: required"},
		{"name form", radiusClient("")[:len("radius:\n  clients:\n    - name: ")] + "VPN\n      address: 10.0.0.1\n      secret: " + radiusSecret + "\n",
			`bridge.yaml:7: radius.clients[0].name: "VPN": use lower-case letters, digits, - and _`},
		{"name duplicate", radiusClient("") + "    - name: vpn\n      address: 10.0.0.1\n      secret: " + radiusSecret + "\n",
			`bridge.yaml:10: radius.clients[1].name: duplicate client name "vpn" (also radius.clients[0])`},
		{"address required", "radius:\n  clients:\n    - name: vpn\n      secret: " + radiusSecret + "\n",
			"bridge.yaml:7: radius.clients[0].address: required"},
		{"class off", radiusClient("      reply:\n        class: off\n"), ""},
		{"class template", radiusClient("      reply:\n        class: \"{id}:{user}\"\n"), ""},
		{"class false", radiusClient("      reply:\n        class: false\n"),
			`bridge.yaml:9: radius.clients[0].reply.class: "false": write off to send no Class, or leave it out for bridge:{id}`},
		{"class empty", radiusClient("      reply:\n        class: \"\"\n"),
			`bridge.yaml:9: radius.clients[0].reply.class: "": empty: leave it out for bridge:{id}, or write off`},
		{"class without id", radiusClient("      reply:\n        class: vpn-users\n"),
			`bridge.yaml:9: radius.clients[0].reply.class: "vpn-users": must contain {id}, which ties accounting records to the login`},
		{"class placeholder", radiusClient("      reply:\n        class: \"bridge:{name}:{id}\"\n"),
			`bridge.yaml:9: radius.clients[0].reply.class: "bridge:{name}:{id}": unknown placeholder {name}: use {id} and {user}`},
		{"class too long", radiusClient("      reply:\n        class: \"" + strings.Repeat("x", 230) + "{id}\"\n"),
			`...: 257 bytes with {id}, over the 253 of a RADIUS attribute`},
		{"address IPv6", radiusClient("      address: 2001:db8::1\n"), ""},
		{"address IPv6 prefix", radiusClient("      address: 2001:db8::/32\n"), ""},
		{"address IPv4 prefix", radiusClient("      address: 10.0.0.0/8\n"), ""},
		{"address", radiusClient("      address: vpn.example.com\n"),
			`bridge.yaml:8: radius.clients[0].address: "vpn.example.com": want an IP address or a prefix such as 10.0.0.0/24`},
		{"address host bits", radiusClient("      address: 10.0.0.1/24\n"),
			`radius.clients[0].address: "10.0.0.1/24": host bits are set: write 10.0.0.0/24 for the network`},
		{"address zone", radiusClient("      address: fe80::1%eth0\n"), "radius.clients[0].address: \"fe80::1%eth0\": want an IP address"},
		{"address 4in6", radiusClient("      address: ::ffff:10.0.0.1\n"), "an IPv4-mapped IPv6 address: write the IPv4 address"},
		{"address duplicate prefix", radiusClient("      address: 10.0.0.0/24\n") + "    - name: b\n      address: 10.0.0.0/24\n      secret: " + radiusSecret + "\n",
			`bridge.yaml:11: radius.clients[1].address: "10.0.0.0/24" is also radius.clients[0]'s address`},
		{"address same IP written twice", radiusClient("      address: 10.0.0.1\n") + "    - name: b\n      address: 10.0.0.1/32\n      secret: " + radiusSecret + "\n",
			`radius.clients[1].address: "10.0.0.1/32" is also radius.clients[0]'s address`},
		{"address overlapping prefixes", radiusClient("      address: 10.0.0.0/24\n") + "    - name: b\n      address: 10.0.0.5\n      secret: " + radiusSecret + "\n", ""},
		{"secret required", "radius:\n  clients:\n    - name: vpn\n      address: 10.0.0.1\n",
			"bridge.yaml:7: radius.clients[0].secret_file: required: the shared secret set on the NAS, at least 16 bytes"},
		{"secret short", radiusClient("      secret: 0123456789abcde\n"),
			"bridge.yaml:8: radius.clients[0].secret: the shared secret must be at least 16 bytes: make one with `openssl rand -hex 16`"},
		{"directory", "directories:\n  - {name: corp, type: local}\n" + radiusClient("      directory: corp\n"), ""},
		{"directory unknown", radiusClient("      directory: corp\n"), `bridge.yaml:8: radius.clients[0].directory: no directory is named "corp"`},
		{"directory empty", radiusClient("      directory: ''\n"), "radius.clients[0].directory: must not be empty"},
		{"message_authenticator", radiusClient("      message_authenticator: required\n"),
			`radius.clients[0].message_authenticator: unknown value "required" (use always, auto, never)`},
		{"message_authenticator auto", radiusClient("      message_authenticator: auto\n"), ""},
		{"wait", radiusClient("      wait: block\n"), `radius.clients[0].wait: unknown value "block" (use hold, challenge)`},
		{"second_factor", radiusClient("      second_factor: sms\n"), `radius.clients[0].second_factor: unknown value "sms" (use push, otp)`},
		{"failmode", radiusClient("      failmode: open\n"), `radius.clients[0].failmode: unknown value "open" (use secure, safe)`},
		{"hold_timeout 5m", "push:\n  challenge_ttl: 5m\n" + radiusClient("      hold_timeout: 5m\n"), ""},
		{"hold_timeout short", radiusClient("      hold_timeout: 500ms\n"), "bridge.yaml:8: radius.clients[0].hold_timeout: must be from 1s to 5m, got 500ms"},
		{"hold_timeout long", "push:\n  challenge_ttl: 5m\n" + radiusClient("      hold_timeout: 6m\n"), "radius.clients[0].hold_timeout: must be from 1s to 5m, got 6m0s"},
		{"hold_timeout above challenge_ttl", radiusClient("      hold_timeout: 61s\n"),
			"bridge.yaml:8: radius.clients[0].hold_timeout: 1m1s is longer than push.challenge_ttl (1m0s): the push would expire while the request is held"},
		{"hold_timeout with challenge", radiusClient("      wait: challenge\n      hold_timeout: 20s\n"),
			"bridge.yaml:9: radius.clients[0].hold_timeout: only with wait: hold"},
		{"number_matching with hold", radiusClient("      number_matching: true\n"),
			"bridge.yaml:8: radius.clients[0].number_matching: only with wait: challenge: with hold, the NAS has nowhere to show the number"},
		{"number_matching with otp", radiusClient("      wait: challenge\n      second_factor: otp\n      number_matching: true\n"),
			"bridge.yaml:10: radius.clients[0].number_matching: only with second_factor: push"},
		{"otp with hold and suffix", radiusClient("      second_factor: otp\n"), ""},
		{"otp with device_keys hardware", radiusClient("      second_factor: otp\n      device_keys: hardware\n"),
			"radius.clients[0].second_factor: otp with device_keys hardware: one-time codes are not taken"},
		{"otp with device_keys attested", radiusClient("      second_factor: otp\n      device_keys: attested\n"),
			"radius.clients[0].second_factor: otp with device_keys attested"},
		{"push with device_keys attested", radiusClient("      device_keys: attested\n"), ""},
		{"safe with device_keys hardware", radiusClient("      failmode: safe\n      device_keys: hardware\n"),
			"radius.clients[0].failmode: safe with device_keys hardware: failing open accepts on the password alone"},
		{"safe with device_keys attested", radiusClient("      failmode: safe\n      device_keys: attested\n"),
			"radius.clients[0].failmode: safe with device_keys attested"},
		{"secure with device_keys hardware", radiusClient("      failmode: secure\n      device_keys: hardware\n"), ""},
		{"otp with hold without suffix", radiusClient("      second_factor: otp\n      password_suffix: false\n"),
			"bridge.yaml:9: radius.clients[0].password_suffix: false leaves no way to give the code"},
		{"otp with challenge without suffix", radiusClient("      wait: challenge\n      second_factor: otp\n      password_suffix: false\n"), ""},

		{"session_timeout", radiusClient("      reply:\n        session_timeout: 8760h\n"), ""},
		{"session_timeout long", radiusClient("      reply:\n        session_timeout: 8761h\n"),
			"bridge.yaml:9: radius.clients[0].reply.session_timeout: must be from 0 (none) to 8760h, got 8761h0m0s"},
		{"session_timeout negative", radiusClient("      reply:\n        session_timeout: -1s\n"), "reply.session_timeout: must be from 0 (none) to 8760h, got -1s"},
		{"session_timeout fraction", radiusClient("      reply:\n        session_timeout: 1.5s\n"), "reply.session_timeout: must be whole seconds, got 1.5s"},
		{"session_timeout and Session-Timeout", radiusClient("      reply:\n        session_timeout: 1h\n        attributes:\n          - {name: session-timeout, value: 60}\n"),
			"bridge.yaml:11: radius.clients[0].reply.attributes[0].name: Session-Timeout is set by session_timeout already: keep one"},
		{"Session-Timeout alone", radiusClient("      reply:\n        attributes:\n          - {name: Session-Timeout, value: 60}\n"), ""},

		{"attribute", radiusClient(attrs("{name: Filter-Id, value: staff}")), ""},
		{"attribute unknown", radiusClient(attrs("{name: Filter-ID2, value: staff}")),
			`bridge.yaml:10: radius.clients[0].reply.attributes[0].name: unknown RADIUS attribute "Filter-ID2" (known: Acct-Interim-Interval,`},
		{"attribute unknown hint", radiusClient(attrs("{name: Nope, value: x}")), "; for another vendor attribute give vendor, type and format instead"},
		{"attribute value", radiusClient(attrs("{name: Session-Timeout, value: 1h}")),
			`bridge.yaml:10: radius.clients[0].reply.attributes[0].value: Session-Timeout: want a whole number of seconds, got "1h"`},
		{"attribute value missing", radiusClient(attrs("{name: Filter-Id}")),
			"radius.clients[0].reply.attributes[0].value: Filter-Id: want text of 1 to 253 bytes, got an empty value"},
		{"attribute vendor value", radiusClient(attrs("{name: Cisco-AVPair, value: '" + strings.Repeat("x", 248) + "'}")),
			"radius.clients[0].reply.attributes[0].value: Cisco-AVPair: want text of at most 247 bytes, got 248 bytes"},
		{"attribute neither", radiusClient(attrs("{value: x}")),
			"bridge.yaml:10: radius.clients[0].reply.attributes[0]: needs a name from the dictionary (such as Filter-Id, Class or Fortinet-Group-Name), or vendor, type and format"},
		{"attribute empty name", radiusClient(attrs("{name: '', value: x}")), "radius.clients[0].reply.attributes[0].name: must not be empty"},
		{"attribute both", radiusClient(attrs("{name: Filter-Id, vendor: 9, type: 1, value: x}")),
			"radius.clients[0].reply.attributes[0].name: set either name or vendor and type, not both"},
		{"attribute name with format", radiusClient(attrs("{name: Filter-Id, format: string, value: x}")),
			"radius.clients[0].reply.attributes[0].format: only with vendor and type: the dictionary knows the format of a named attribute"},
		{"vendor attribute", radiusClient(attrs("{vendor: 3076, type: 25, format: string, value: staff}")), ""},
		{"vendor attribute octets", radiusClient(attrs("{vendor: 311, type: 7, format: octets, value: 0x0a0b}")), ""},
		{"vendor attribute without type", radiusClient(attrs("{vendor: 3076, format: string, value: staff}")),
			"radius.clients[0].reply.attributes[0].type: required with vendor"},
		{"vendor attribute without vendor", radiusClient(attrs("{type: 25, format: string, value: staff}")),
			"radius.clients[0].reply.attributes[0].vendor: required with type"},
		{"vendor attribute vendor 0", radiusClient(attrs("{vendor: 0, type: 25, format: string, value: staff}")),
			"radius.clients[0].reply.attributes[0].vendor: must be a vendor id (IANA private enterprise number) from 1 to 16777215, got 0"},
		{"vendor attribute vendor too big", radiusClient(attrs("{vendor: 16777216, type: 25, format: string, value: staff}")),
			"radius.clients[0].reply.attributes[0].vendor: must be a vendor id (IANA private enterprise number) from 1 to 16777215, got 16777216"},
		{"vendor attribute type 0", radiusClient(attrs("{vendor: 9, type: 0, format: string, value: x}")),
			"radius.clients[0].reply.attributes[0].type: must be from 1 to 255, got 0"},
		{"vendor attribute type 256", radiusClient(attrs("{vendor: 9, type: 256, format: string, value: x}")),
			"radius.clients[0].reply.attributes[0].type: must be from 1 to 255, got 256"},
		{"vendor attribute without format", radiusClient(attrs("{vendor: 9, type: 1, value: x}")),
			"radius.clients[0].reply.attributes[0].format: required with vendor and type: string, integer, ipaddr or octets"},
		{"vendor attribute format", radiusClient(attrs("{vendor: 9, type: 1, format: text, value: x}")),
			`bridge.yaml:10: radius.clients[0].reply.attributes[0].format: 26:9:1: unknown format "text" (use string, integer, ipaddr or octets)`},
		{"vendor attribute value", radiusClient(attrs("{vendor: 9, type: 1, format: ipaddr, value: x}")),
			`radius.clients[0].reply.attributes[0].value: 26:9:1: want an IPv4 address such as 192.0.2.10, got "x"`},

		{"group", radiusClient(groups("    - group: vpn-admins\n      attributes:\n        - {name: Filter-Id, value: admins}\n")), ""},
		{"group required", radiusClient(groups("    - attributes:\n        - {name: Filter-Id, value: admins}\n")),
			"bridge.yaml:10: radius.clients[0].reply.groups[0].group: required: a group name as the directory reports it"},
		{"group without attributes", radiusClient(groups("    - group: vpn-admins\n")),
			"bridge.yaml:10: radius.clients[0].reply.groups[0].attributes: required: the attributes to add for members of the group"},
		{"group duplicate", radiusClient(groups("    - group: a\n      attributes:\n        - {name: Filter-Id, value: x}\n" +
			"    - group: a\n      attributes:\n        - {name: Class, value: y}\n")),
			`bridge.yaml:13: radius.clients[0].reply.groups[1].group: "a" is also radius.clients[0].reply.groups[0]: put its attributes in one entry`},
		{"group attribute", radiusClient(groups("    - group: a\n      attributes:\n        - {name: Framed-IP-Address, value: 10.0.0.300}\n")),
			`bridge.yaml:12: radius.clients[0].reply.groups[0].attributes[0].value: Framed-IP-Address: want an IPv4 address such as 192.0.2.10, got "10.0.0.300"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseString(t, trial(tt.src), "", nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v\nconfig:\n%s", err, trial(tt.src))
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("Validate after Parse: %v", err)
				}
				return
			}
			wantErr(t, err, tt.want)
			if err != nil && strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("want exactly one problem, got:\n%v", err)
			}
		})
	}
}

// attrs is a reply with one attribute, written as a flow mapping.
func attrs(a string) string {
	return "      reply:\n        attributes:\n          - " + a + "\n"
}

// groups is a reply with the groups given (indented for reply.groups).
func groups(g string) string {
	var b strings.Builder
	b.WriteString("      reply:\n        groups:\n")
	for _, line := range strings.SplitAfter(strings.TrimSuffix(g, "\n"), "\n") {
		b.WriteString("      " + strings.TrimSuffix(line, "\n") + "\n")
	}
	return b.String()
}

func TestRadiusAllProblemsAtOnce(t *testing.T) {
	src := trial("radius:\n  listen: nope\n  clients:\n" +
		"    - name: A\n      address: x\n      secret: short\n      wait: block\n" +
		"      reply:\n        attributes:\n          - {name: Nope, value: x}\n          - {name: Idle-Timeout, value: y}\n")
	_, err := parseString(t, src, "", nil)
	wantErr(t, err,
		"bridge.yaml:6: radius.listen:",
		"bridge.yaml:8: radius.clients[0].name:",
		"bridge.yaml:9: radius.clients[0].address:",
		"bridge.yaml:10: radius.clients[0].secret:",
		"bridge.yaml:11: radius.clients[0].wait:",
		"bridge.yaml:14: radius.clients[0].reply.attributes[0].name:",
		"bridge.yaml:15: radius.clients[0].reply.attributes[1].value:")
}

func TestRadiusValues(t *testing.T) {
	c := mustParse(t, trial(radiusClient("      reply:\n        session_timeout: 8h\n        attributes:\n"+
		"          - {name: filter-id, value: staff}\n          - {vendor: 12356, type: 1, format: string, value: admins}\n"+
		"        groups:\n          - group: ops\n            attributes:\n              - {name: Service-Type, value: Administrative-User}\n")))
	reply := c.Radius.Clients[0].Reply
	vs, err := reply.Values()
	if err != nil {
		t.Fatal(err)
	}
	want := []dict.Value{
		{Name: "Filter-Id", Type: 11, Data: []byte("staff")},
		{Name: "26:12356:1", Type: 26, Vendor: 12356, VendorType: 1, Data: []byte("admins")},
	}
	if len(vs) != len(want) {
		t.Fatalf("Values() = %+v", vs)
	}
	for i := range want {
		if vs[i].Name != want[i].Name || vs[i].Type != want[i].Type || vs[i].Vendor != want[i].Vendor ||
			vs[i].VendorType != want[i].VendorType || !bytes.Equal(vs[i].Data, want[i].Data) {
			t.Errorf("Values()[%d] = %+v, want %+v", i, vs[i], want[i])
		}
	}
	gv, err := reply.Groups[0].Values()
	if err != nil || len(gv) != 1 || gv[0].Name != "Service-Type" || !bytes.Equal(gv[0].Data, []byte{0, 0, 0, 6}) {
		t.Errorf("group Values() = %+v, %v", gv, err)
	}

	// Encode on a config changed in code.
	for _, tt := range []struct {
		a    RadiusAttribute
		want string
	}{
		{RadiusAttribute{Name: "Filter-Id", Vendor: 9, Value: "x"}, "Filter-Id: set either name or vendor, type and format, not both"},
		{RadiusAttribute{Vendor: 9, Type: 256, Format: "string", Value: "x"}, "vendor 9: want a vendor attribute type from 1 to 255, got 256"},
		{RadiusAttribute{Vendor: 9, Type: 1, Format: "string"}, "26:9:1: want text of 1 to 247 bytes, got an empty value"},
	} {
		if _, err := tt.a.Encode(); err == nil || err.Error() != tt.want {
			t.Errorf("Encode(%+v) = %v, want %q", tt.a, err, tt.want)
		}
	}
	r := RadiusReply{Attributes: []RadiusAttribute{{Name: "Filter-Id", Value: "a"}, {Name: "Nope", Value: "b"}}}
	if _, err := r.Values(); err == nil || !strings.HasPrefix(err.Error(), `attributes[1]: unknown RADIUS attribute "Nope"`) {
		t.Errorf("Values() error %v", err)
	}
}

func TestRadiusClientPrefix(t *testing.T) {
	for _, tt := range []struct{ address, want string }{
		{"192.0.2.10", "192.0.2.10/32"},
		{"192.0.2.0/24", "192.0.2.0/24"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::/48", "2001:db8::/48"},
		{"0.0.0.0/0", "0.0.0.0/0"},
	} {
		p, err := RadiusClient{Address: tt.address}.Prefix()
		if err != nil || p != netip.MustParsePrefix(tt.want) {
			t.Errorf("Prefix(%q) = %v, %v; want %s", tt.address, p, err, tt.want)
		}
	}
	for _, bad := range []string{"", "x", "10.0.0.1/33", "10.0.0.1/24", "fe80::1%eth0", "::ffff:10.0.0.1", "::ffff:10.0.0.0/120"} {
		if p, err := (RadiusClient{Address: bad}).Prefix(); err == nil {
			t.Errorf("Prefix(%q) = %v, want an error", bad, p)
		}
	}
}

func TestRadiusWarnings(t *testing.T) {
	c := mustParse(t, trial(radiusClient("      message_authenticator: never\n      failmode: safe\n      address: 0.0.0.0/0\n")))
	want := []string{
		`bridge.yaml:8: radius.clients[0].message_authenticator: client "vpn": never: requests without Message-Authenticator are answered, ` +
			"so an attacker on the path can forge an Access-Accept (BlastRADIUS, CVE-2024-3596)",
		`bridge.yaml:9: radius.clients[0].failmode: client "vpn": safe: when the push engine or the store fails, users get in on their password alone; use secure`,
		`bridge.yaml:10: radius.clients[0].address: client "vpn": 0.0.0.0/0 is every address`,
		`bridge.yaml:11: radius.clients[0].secret: client "vpn": the shared secret is written in the config file; use secret_file or ${ENV}`,
	}
	for _, w := range want {
		found := false
		for _, got := range c.Warnings {
			found = found || strings.HasPrefix(got, w)
		}
		if !found {
			t.Errorf("no warning %q in:\n%s", w, strings.Join(c.Warnings, "\n"))
		}
	}
	if len(c.Warnings) != len(want)+2 { // and dev_mode, loopback
		t.Errorf("warnings:\n%s", strings.Join(c.Warnings, "\n"))
	}

	c, err := parseString(t, trial("radius:\n  listen: 0.0.0.0:1812\n"+radiusClient("      secret: ${S}\n      message_authenticator: auto\n")[len("radius:\n"):]),
		"", map[string]string{"S": radiusSecret})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 {
		t.Errorf("warnings for a secret from the environment and auto:\n%s", strings.Join(c.Warnings, "\n"))
	}
}

// TestRadiusLoopbackWarning warns when the default (loopback) listen
// address cannot be reached by a client.
func TestRadiusLoopbackWarning(t *testing.T) {
	const w = `bridge.yaml:5: radius.listen: 127.0.0.1:1812 is a loopback address, which client "vpn" (192.0.2.10/32) cannot reach; ` +
		"listen on a NAS-facing address such as 0.0.0.0:1812"
	for _, tt := range []struct {
		src  string
		warn bool
	}{
		{radiusClient("      secret: ${S}\n"), true},
		{radiusClient("      secret: ${S}\n      address: 127.0.0.1\n"), false},
		{radiusClient("      secret: ${S}\n      address: ::1\n"), false},
		{"radius:\n  listen: '[::]:1812'\n" + radiusClient("      secret: ${S}\n")[len("radius:\n"):], false},
		{"radius:\n  listen: localhost:1812\n" + radiusClient("      secret: ${S}\n")[len("radius:\n"):], true},
	} {
		c, err := parseString(t, trial(tt.src), "", map[string]string{"S": radiusSecret})
		if err != nil {
			t.Fatal(err)
		}
		warned := false
		for _, got := range c.Warnings {
			warned = warned || strings.Contains(got, "is a loopback address")
		}
		if warned != tt.warn || (tt.warn && !strings.HasPrefix(tt.src, "radius:\n  listen") && !slices.Contains(c.Warnings, w)) {
			t.Errorf("warned %v, want %v:\n%s\nconfig:\n%s", warned, tt.warn, strings.Join(c.Warnings, "\n"), tt.src)
		}
	}
}

// TestRadiusPasswordless: a passwordless directory may not fail open (it
// would let anyone in by user name), and without Message-Authenticator it
// is warned about (anyone spoofing the NAS can push to any user).
func TestRadiusPasswordless(t *testing.T) {
	dirs := "directories:\n  - name: local\n    type: local\n  - name: push-only\n    type: none\n"
	_, err := parseString(t, trial(dirs+radiusClient("      directory: push-only\n      failmode: safe\n")), "", nil)
	wantErr(t, err, `radius.clients[0].failmode: safe with the passwordless directory "push-only" would let anyone in`)

	c := mustParse(t, trial(dirs+radiusClient("      directory: push-only\n      message_authenticator: never\n")))
	found := false
	for _, w := range c.Warnings {
		found = found || strings.Contains(w, `never with the passwordless directory "push-only"`)
	}
	if !found {
		t.Errorf("no warning for never with a passwordless directory:\n%s", strings.Join(c.Warnings, "\n"))
	}
	// The same settings with a password directory are allowed (warned
	// about as every safe and never are).
	mustParse(t, trial(dirs+radiusClient("      directory: local\n      failmode: safe\n")))
}
