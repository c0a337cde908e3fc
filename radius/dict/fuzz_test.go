package dict

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// FuzzParse checks that Parse never panics, that what it accepts was a
// valid value and encodes back to it (also through a packet on the wire),
// and that what it rejects is named in the error. Seeds: below and
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, e := range dictionary {
		for _, v := range []string{"", "x", "0", "4294967296", "192.0.2.1", "255.255.0.0", "0x0a0B", "Framed-User", "ppp"} {
			f.Add(e.name, v)
		}
	}
	f.Add("filter-id", strings.Repeat("é", 127))
	f.Add("Nope", "x")
	f.Fuzz(func(t *testing.T, name, value string) {
		v, err := Parse(name, value)
		e, known := byName[strings.ToLower(name)]
		if err != nil {
			if known == errors.Is(err, ErrUnknown) || (known && !strings.HasPrefix(err.Error(), e.name+": ")) {
				t.Fatalf("Parse(%q, %q): %v", name, value, err)
			}
			return
		}
		if !known || v.Name != e.name || v.Vendor != e.vendor || v.VendorType != e.vendorType {
			t.Fatalf("Parse(%q, %q) = %+v", name, value, v)
		}
		checkValue(t, e.format, value, v)
	})
}

// FuzzParseVendor is FuzzParse for ParseVendor.
func FuzzParseVendor(f *testing.F) {
	for _, format := range []string{"string", "integer", "ipaddr", "octets", "text", ""} {
		for _, v := range []string{"", "x", "42", "10.0.0.1", "0xdeadbeef", strings.Repeat("ab", 248)} {
			f.Add(uint32(12356), byte(1), format, v)
		}
	}
	f.Add(uint32(0), byte(1), "string", "x")
	f.Add(uint32(1<<24), byte(0), "string", "x")
	f.Fuzz(func(t *testing.T, vendor uint32, vendorType byte, format, value string) {
		v, err := ParseVendor(vendor, vendorType, format, value)
		fm, known := formats[format]
		ids := vendor != 0 && vendor < 1<<24 && vendorType != 0
		if err != nil {
			if errors.Is(err, ErrUnknown) != (ids && !known) {
				t.Fatalf("ParseVendor(%d, %d, %q, %q): %v", vendor, vendorType, format, value, err)
			}
			return
		}
		if !known || !ids || v.Vendor != vendor || v.VendorType != vendorType || v.Type != rfc2865.VendorSpecific_Type {
			t.Fatalf("ParseVendor(%d, %d, %q, %q) = %+v", vendor, vendorType, format, value, v)
		}
		checkValue(t, fm, value, v)
	})
}

// checkValue checks that v is value encoded in format f, and that v goes
// through a packet on the wire unchanged.
func checkValue(t *testing.T, f format, value string, v Value) {
	t.Helper()
	max := 253
	if v.Vendor != 0 {
		max = 247
	}
	if len(v.Data) == 0 || len(v.Data) > max {
		t.Fatalf("%q: %d bytes of data", value, len(v.Data))
	}
	if f == formatClass {
		f = formatString
		if hasHexPrefix(value) {
			f = formatOctets
		}
	}
	switch f {
	case formatString:
		if string(v.Data) != value || !utf8.ValidString(value) || strings.Contains(value, "\x00") {
			t.Fatalf("string %q encoded as %q", value, v.Data)
		}
	case formatInteger:
		if len(v.Data) != 4 {
			t.Fatalf("integer %q encoded as %x", value, v.Data)
		}
		n := binary.BigEndian.Uint32(v.Data)
		if parsed, err := strconv.ParseUint(value, 10, 32); err == nil {
			if uint32(parsed) != n {
				t.Fatalf("integer %q encoded as %d", value, n)
			}
		} else if e, ok := byName[strings.ToLower(v.Name)]; !ok || !hasNamedValue(e, value, n) {
			t.Fatalf("integer %q accepted as %d", value, n)
		}
	case formatIPAddr:
		ip, err := netip.ParseAddr(value)
		if err != nil || !ip.Is4() || ip.As4() != [4]byte(v.Data) {
			t.Fatalf("ipaddr %q encoded as %x", value, v.Data)
		}
	case formatOctets:
		b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(value, "0x"), "0X"))
		if err != nil || !bytes.Equal(b, v.Data) {
			t.Fatalf("octets %q encoded as %x", value, v.Data)
		}
	}

	// Through a packet and back.
	p := radius.New(radius.CodeAccessAccept, []byte("0123456789abcdef"))
	p.Attributes = append(p.Attributes, v.AVP())
	b, err := p.Encode()
	if err != nil {
		t.Fatalf("%+v: encoding: %v", v, err)
	}
	q, err := radius.Parse(b, []byte("0123456789abcdef"))
	if err != nil || len(q.Attributes) != 1 {
		t.Fatalf("%+v: parsing %x: %v", v, b, err)
	}
	avp := q.Attributes[0]
	data := avp.Attribute
	if v.Vendor != 0 {
		vendor, sub, err := radius.VendorSpecific(avp.Attribute)
		if err != nil || vendor != v.Vendor || len(sub) < 2 || sub[0] != v.VendorType || int(sub[1]) != len(sub) {
			t.Fatalf("%+v: vendor attribute %x", v, avp.Attribute)
		}
		data = sub[2:]
	}
	if avp.Type != v.Type || !bytes.Equal(data, v.Data) {
		t.Fatalf("%+v came back as %d %x", v, avp.Type, data)
	}
}

func hasNamedValue(e entry, name string, n uint32) bool {
	for _, nv := range e.values {
		if strings.EqualFold(nv.name, name) && nv.value == n {
			return true
		}
	}
	return false
}
