package dict

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

func TestParse(t *testing.T) {
	long := strings.Repeat("a", 253)
	tests := []struct {
		name, value string
		want        []byte // encoded value; nil means an error
		err         string // substring of the error
	}{
		// string
		{"Filter-Id", "vpn-staff", []byte("vpn-staff"), ""},
		{"Reply-Message", "Welcome, ünïcode ok", []byte("Welcome, ünïcode ok"), ""},
		{"Framed-Pool", long, []byte(long), ""},
		{"Filter-Id", "", nil, "Filter-Id: want text of 1 to 253 bytes, got an empty value"},
		{"Filter-Id", long + "a", nil, "Filter-Id: want text of at most 253 bytes, got 254 bytes"},
		{"Filter-Id", "bad \xff utf-8", nil, `Filter-Id: want UTF-8 text, got "bad \xff utf-8"`},
		{"Filter-Id", "nul\x00inside", nil, `Filter-Id: want text without NUL bytes, got "nul\x00inside"`},

		// integer
		{"Session-Timeout", "3600", []byte{0, 0, 0x0e, 0x10}, ""},
		{"Session-Timeout", "0", []byte{0, 0, 0, 0}, ""},
		{"Idle-Timeout", "4294967295", []byte{0xff, 0xff, 0xff, 0xff}, ""},
		{"Session-Timeout", "x", nil, `Session-Timeout: want a whole number of seconds, got "x"`},
		{"Session-Timeout", "1h", nil, `Session-Timeout: want a whole number of seconds, got "1h"`},
		{"Session-Timeout", "-1", nil, `Session-Timeout: want a whole number of seconds, got "-1"`},
		{"Session-Timeout", "+1", nil, `Session-Timeout: want a whole number of seconds, got "+1"`},
		{"Session-Timeout", " 1", nil, `Session-Timeout: want a whole number of seconds, got " 1"`},
		{"Acct-Interim-Interval", "4294967296", nil, `Acct-Interim-Interval: want at most 4294967295 seconds, got "4294967296"`},
		{"Service-Type", "Framed-User", []byte{0, 0, 0, 2}, ""},
		{"Service-Type", "login-user", []byte{0, 0, 0, 1}, ""},
		{"Service-Type", "Administrative-User", []byte{0, 0, 0, 6}, ""},
		{"Service-Type", "NAS-Prompt-User", []byte{0, 0, 0, 7}, ""},
		{"Service-Type", "6", []byte{0, 0, 0, 6}, ""},
		{"Service-Type", "Admin", nil, `Service-Type: want a number or one of Login-User, Framed-User, Callback-Login-User`},
		{"Framed-Protocol", "PPP", []byte{0, 0, 0, 1}, ""},
		{"Framed-Protocol", "ppp", []byte{0, 0, 0, 1}, ""},
		{"Framed-Protocol", "PPTP", nil, `Framed-Protocol: want a number or one of PPP, SLIP, ARAP`},

		// ipaddr
		{"Framed-IP-Address", "192.0.2.10", []byte{192, 0, 2, 10}, ""},
		{"Framed-IP-Address", "255.255.255.254", []byte{255, 255, 255, 254}, ""},
		{"Framed-IP-Address", "2001:db8::1", nil, `Framed-IP-Address: want an IPv4 address such as 192.0.2.10, got "2001:db8::1"`},
		{"Framed-IP-Address", "::ffff:192.0.2.10", nil, "Framed-IP-Address: want an IPv4 address"},
		{"Framed-IP-Address", "192.0.2.256", nil, "Framed-IP-Address: want an IPv4 address"},
		{"Framed-IP-Address", "192.0.2.0/24", nil, "Framed-IP-Address: want an IPv4 address"},
		{"Framed-IP-Address", "", nil, `Framed-IP-Address: want an IPv4 address such as 192.0.2.10, got ""`},
		{"Framed-IP-Netmask", "255.255.255.0", []byte{255, 255, 255, 0}, ""},
		{"Framed-IP-Netmask", "255.255.255.255", []byte{255, 255, 255, 255}, ""},
		{"Framed-IP-Netmask", "0.0.0.0", []byte{0, 0, 0, 0}, ""},
		{"Framed-IP-Netmask", "255.0.255.0", nil, `Framed-IP-Netmask: want an IPv4 netmask such as 255.255.255.0, got "255.0.255.0"`},

		// Class: octets, written as text or as hex after 0x
		{"Class", "staff", []byte("staff"), ""},
		{"Class", "0x0a1B2c", []byte{0x0a, 0x1b, 0x2c}, ""},
		{"Class", "0X00", []byte{0}, ""},
		{"Class", "0a1b", []byte("0a1b"), ""},
		{"Class", "0xzz", nil, `Class: want hex bytes such as 0x0a1b2c, got "0xzz"`},
		{"Class", "0xabc", nil, "Class: want hex bytes"},
		{"Class", "0x", nil, "Class: want 1 to 253 bytes in hex, got none"},
		{"Class", "0x" + strings.Repeat("00", 254), nil, "Class: want at most 253 bytes, got 254"},
		{"Class", "", nil, "Class: want text of 1 to 253 bytes, got an empty value"},

		// vendor attributes: the vendor attribute's value only
		{"Cisco-AVPair", "shell:priv-lvl=15", []byte("shell:priv-lvl=15"), ""},
		{"Fortinet-Group-Name", "vpn-admins", []byte("vpn-admins"), ""},
		{"PaloAlto-User-Group", "staff", []byte("staff"), ""},
		{"Aruba-User-Role", "employee", []byte("employee"), ""},
		{"Juniper-Local-User-Name", "super-user", []byte("super-user"), ""},
		{"Mikrotik-Group", "full", []byte("full"), ""},
		{"Cisco-AVPair", strings.Repeat("a", 247), []byte(strings.Repeat("a", 247)), ""},
		{"Cisco-AVPair", strings.Repeat("a", 248), nil, "Cisco-AVPair: want text of at most 247 bytes, got 248 bytes"},
		{"Fortinet-Group-Name", "", nil, "Fortinet-Group-Name: want text of 1 to 247 bytes"},

		// names
		{"filter-id", "x", []byte("x"), ""},
		{"FORTINET-GROUP-NAME", "x", []byte("x"), ""},
		{"Filter-ID", "x", []byte("x"), ""},
		{"Filter_Id", "x", nil, `unknown RADIUS attribute "Filter_Id" (known: Acct-Interim-Interval, Aruba-User-Role,`},
		{"", "x", nil, `unknown RADIUS attribute ""`},
		{"User-Password", "x", nil, "unknown RADIUS attribute"},
		{"Message-Authenticator", "0x00", nil, "unknown RADIUS attribute"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			v, err := Parse(tt.name, tt.value)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("no error, want %q; got %+v", tt.err, v)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q does not contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(v.Data, tt.want) {
				t.Errorf("Data = %x, want %x", v.Data, tt.want)
			}
			e := byName[strings.ToLower(tt.name)]
			if v.Name != e.name || v.Vendor != e.vendor || v.VendorType != e.vendorType {
				t.Errorf("got %+v for entry %+v", v, e)
			}
			if want := e.typ; v.Type != want || (v.Vendor != 0 && v.Type != rfc2865.VendorSpecific_Type) {
				t.Errorf("Type = %d, want %d", v.Type, want)
			}
		})
	}
}

func TestUnknown(t *testing.T) {
	_, err := Parse("Nope", "x")
	if !errors.Is(err, ErrUnknown) {
		t.Errorf("Parse of an unknown name: %v does not match ErrUnknown", err)
	}
	_, err = Parse("Session-Timeout", "x")
	if errors.Is(err, ErrUnknown) {
		t.Errorf("Parse of a bad value: %v matches ErrUnknown", err)
	}
	_, err = ParseVendor(9, 1, "text", "x")
	if !errors.Is(err, ErrUnknown) {
		t.Errorf("ParseVendor of an unknown format: %v does not match ErrUnknown", err)
	}
}

func TestParseVendor(t *testing.T) {
	tests := []struct {
		vendor     uint32
		vendorType byte
		format     string
		value      string
		want       []byte
		err        string
	}{
		{12356, 1, "string", "admins", []byte("admins"), ""},
		{9, 1, "string", "shell:priv-lvl=15", []byte("shell:priv-lvl=15"), ""},
		{3076, 25, "string", "", nil, "26:3076:25: want text of 1 to 247 bytes, got an empty value"},
		{3076, 25, "integer", "42", []byte{0, 0, 0, 42}, ""},
		{3076, 25, "integer", "forty-two", nil, `26:3076:25: want a whole number from 0 to 4294967295, got "forty-two"`},
		{3076, 25, "integer", "4294967296", nil, `26:3076:25: want a whole number from 0 to 4294967295, got "4294967296"`},
		{311, 7, "ipaddr", "10.0.0.1", []byte{10, 0, 0, 1}, ""},
		{311, 7, "ipaddr", "fe80::1", nil, `26:311:7: want an IPv4 address such as 192.0.2.10, got "fe80::1"`},
		{311, 7, "octets", "0xDEADbeef", []byte{0xde, 0xad, 0xbe, 0xef}, ""},
		{311, 7, "octets", "deadbeef", []byte{0xde, 0xad, 0xbe, 0xef}, ""},
		{311, 7, "octets", "0x" + strings.Repeat("ab", 247), bytes.Repeat([]byte{0xab}, 247), ""},
		{311, 7, "octets", strings.Repeat("ab", 248), nil, "26:311:7: want at most 247 bytes, got 248"},
		{311, 7, "octets", "0xdead beef", nil, `26:311:7: want hex bytes such as 0x0a1b2c, got "0xdead beef"`},
		{311, 7, "octets", "", nil, "26:311:7: want 1 to 247 bytes in hex, got none"},
		{311, 7, "Octets", "00", nil, `26:311:7: unknown format "Octets" (use string, integer, ipaddr or octets)`},
		{311, 7, "", "00", nil, `26:311:7: unknown format ""`},
		{0, 1, "string", "x", nil, "26:0:1: want a vendor id (IANA private enterprise number) from 1 to 16777215, got 0"},
		{1 << 24, 1, "string", "x", nil, "26:16777216:1: want a vendor id (IANA private enterprise number) from 1 to 16777215, got 16777216"},
		{1<<24 - 1, 255, "string", "x", []byte("x"), ""},
		{9, 0, "string", "x", nil, "26:9:0: want a vendor attribute type from 1 to 255, got 0"},
	}
	for _, tt := range tests {
		v, err := ParseVendor(tt.vendor, tt.vendorType, tt.format, tt.value)
		if tt.want == nil {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseVendor(%d, %d, %q, %q) = %+v, %v; want error %q", tt.vendor, tt.vendorType, tt.format, tt.value, v, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVendor(%d, %d, %q, %q): %v", tt.vendor, tt.vendorType, tt.format, tt.value, err)
			continue
		}
		if !bytes.Equal(v.Data, tt.want) || v.Vendor != tt.vendor || v.VendorType != tt.vendorType || v.Type != rfc2865.VendorSpecific_Type {
			t.Errorf("ParseVendor(%d, %d, %q, %q) = %+v, want data %x", tt.vendor, tt.vendorType, tt.format, tt.value, v, tt.want)
		}
	}
}

// TestVendorWire checks vendor attributes on the wire against bytes worked
// out by hand from the layout of RFC 2865 section 5.26:
//
//	Type (26) | Length | Vendor-Id (4 octets) | Vendor type | Vendor length | Value
func TestVendorWire(t *testing.T) {
	tests := []struct {
		name, value string
		wire        string // hex of the whole attribute
	}{
		// 26, length 2+4+2+6 = 14, vendor 12356 = 0x3044, type 1, length 8, "admins"
		{"Fortinet-Group-Name", "admins", "1a0e" + "00003044" + "0108" + hex.EncodeToString([]byte("admins"))},
		// 26, length 2+4+2+17 = 25, vendor 9, type 1, length 19, "shell:priv-lvl=15"
		{"Cisco-AVPair", "shell:priv-lvl=15", "1a19" + "00000009" + "0113" + hex.EncodeToString([]byte("shell:priv-lvl=15"))},
		// vendor 25461 = 0x6375, type 5, "staff"
		{"PaloAlto-User-Group", "staff", "1a0d" + "00006375" + "0507" + hex.EncodeToString([]byte("staff"))},
		// vendor 14823 = 0x39e7, type 1, "employee"
		{"Aruba-User-Role", "employee", "1a10" + "000039e7" + "010a" + hex.EncodeToString([]byte("employee"))},
		// vendor 2636 = 0x0a4c, type 1, "ro"
		{"Juniper-Local-User-Name", "ro", "1a0a" + "00000a4c" + "0104" + hex.EncodeToString([]byte("ro"))},
		// vendor 14988 = 0x3a8c, type 3, "full"
		{"Mikrotik-Group", "full", "1a0c" + "00003a8c" + "0306" + hex.EncodeToString([]byte("full"))},
		// standard attributes for comparison: Filter-Id (11), Session-Timeout (27)
		{"Filter-Id", "staff", "0b07" + hex.EncodeToString([]byte("staff"))},
		{"Session-Timeout", "28800", "1b06" + "00007080"},
		{"Framed-IP-Address", "192.0.2.10", "0806" + "c000020a"},
	}
	for _, tt := range tests {
		v, err := Parse(tt.name, tt.value)
		if err != nil {
			t.Fatal(err)
		}
		got := hex.EncodeToString(wire(t, v.AVP()))
		if got != tt.wire {
			t.Errorf("%s %q on the wire:\n got %s\nwant %s", tt.name, tt.value, got, tt.wire)
		}
		avp := v.AVP()
		if v.Vendor == 0 {
			continue
		}
		vendor, sub, err := radius.VendorSpecific(avp.Attribute)
		if err != nil || avp.Type != rfc2865.VendorSpecific_Type || vendor != v.Vendor ||
			len(sub) != 2+len(v.Data) || sub[0] != v.VendorType || int(sub[1]) != len(sub) || !bytes.Equal(sub[2:], v.Data) {
			t.Errorf("%s: VendorSpecific(%x) = %d, %x, %v", tt.name, avp.Attribute, vendor, sub, err)
		}
	}
}

// wire encodes avp alone in a packet and returns its bytes on the wire.
func wire(t testing.TB, avp *radius.AVP) []byte {
	t.Helper()
	p := radius.New(radius.CodeAccessAccept, []byte("0123456789abcdef"))
	p.Attributes = append(p.Attributes, avp)
	b, err := p.Encode()
	if err != nil {
		t.Fatalf("encoding %+v: %v", avp, err)
	}
	return b[20:] // after code, identifier, length and authenticator
}

func TestAVPCopies(t *testing.T) {
	for _, name := range []string{"Filter-Id", "Cisco-AVPair"} {
		v, err := Parse(name, "abc")
		if err != nil {
			t.Fatal(err)
		}
		avp := v.AVP()
		avp.Attribute[len(avp.Attribute)-1] = 'X'
		if string(v.Data) != "abc" {
			t.Errorf("%s: changing the AVP changed the Value's data to %q", name, v.Data)
		}
	}
}

func TestAVPTooLong(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a vendor value of 248 bytes")
		}
	}()
	Value{Name: "x", Type: 26, Vendor: 9, VendorType: 1, Data: make([]byte, 248)}.AVP()
}

func TestNames(t *testing.T) {
	names := Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names() not sorted: %q", names)
	}
	for _, want := range []string{
		"Reply-Message", "Class", "Session-Timeout", "Idle-Timeout", "Filter-Id", "Service-Type",
		"Framed-Protocol", "Framed-IP-Address", "Framed-IP-Netmask", "Framed-Pool", "Acct-Interim-Interval",
		"Cisco-AVPair", "Fortinet-Group-Name", "PaloAlto-User-Group", "Aruba-User-Role",
		"Juniper-Local-User-Name", "Mikrotik-Group",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() has no %s", want)
		}
	}
	if len(byName) != len(names) {
		t.Errorf("%d names for %d entries: two differ only in case", len(names), len(byName))
	}
	names[0] = "changed"
	if Names()[0] == "changed" {
		t.Error("Names returns the dictionary's own slice")
	}
	// No two entries encode the same attribute.
	seen := map[[3]uint32]string{}
	for _, e := range dictionary {
		k := [3]uint32{uint32(e.typ), e.vendor, uint32(e.vendorType)}
		if e.vendor != 0 {
			k[0] = 26
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s are the same attribute", e.name, other)
		}
		seen[k] = e.name
	}
}
