package dict

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// Value is one reply attribute, encoded and ready to add to a packet.
type Value struct {
	// Name is the attribute's name as the dictionary spells it
	// ("Filter-Id", "Fortinet-Group-Name"), or for ParseVendor
	// "26:vendor:type" ("26:12356:1").
	Name string
	// Type is the attribute type; 26 (Vendor-Specific) for a vendor
	// attribute.
	Type radius.Type
	// Vendor is the vendor id (IANA private enterprise number) of a vendor
	// attribute, 0 for standard attributes.
	Vendor     uint32
	VendorType byte
	// Data is the encoded value; for a vendor attribute the vendor
	// attribute's value only (without vendor id, type and length). Parse
	// and ParseVendor keep it to at most 253 bytes, 247 for a vendor
	// attribute.
	Data []byte
}

// AVP returns the attribute as layeh.com/radius wants it: for a vendor
// attribute a Vendor-Specific (26) whose value is the vendor id followed by
// the vendor type, length and data (RFC 2865 section 5.26). The AVP holds a
// copy of Data. It panics on a vendor Value whose Data is longer than 247
// bytes, which Parse and ParseVendor never return.
func (v Value) AVP() *radius.AVP {
	if v.Vendor == 0 {
		return &radius.AVP{Type: v.Type, Attribute: slices.Clone(v.Data)}
	}
	sub := make(radius.Attribute, 2+len(v.Data))
	sub[0] = v.VendorType
	sub[1] = byte(len(sub))
	copy(sub[2:], v.Data)
	vsa, err := radius.NewVendorSpecific(v.Vendor, sub)
	if err != nil {
		panic(fmt.Sprintf("dict: %s: %d bytes do not fit in a vendor attribute", v.Name, len(v.Data)))
	}
	return &radius.AVP{Type: rfc2865.VendorSpecific_Type, Attribute: vsa}
}

// ErrUnknown is matched (errors.Is) by the errors of Parse for a name that
// is not in the dictionary and of ParseVendor for an unknown format.
var ErrUnknown = errors.New("dict: unknown attribute or format")

// Parse looks name up (case-insensitive) and encodes value per the
// attribute's format. Errors name the attribute and say what was expected
// ("Session-Timeout: want a whole number of seconds, got \"x\"").
func Parse(name, value string) (Value, error) {
	e, ok := byName[strings.ToLower(name)]
	if !ok {
		return Value{}, &unknownError{fmt.Sprintf("unknown RADIUS attribute %s (known: %s)", quote(name), strings.Join(Names(), ", "))}
	}
	return e.parse(value)
}

// ParseVendor is the generic form for a vendor attribute missing from the
// dictionary: vendor is the vendor id (from 1 to 16777215), vendorType the
// attribute's number in the vendor's dictionary (from 1 to 255), and format
// one of string, integer, ipaddr or octets (hex, with or without 0x).
func ParseVendor(vendor uint32, vendorType byte, format, value string) (Value, error) {
	name := fmt.Sprintf("%d:%d:%d", rfc2865.VendorSpecific_Type, vendor, vendorType)
	if vendor == 0 || vendor > maxVendor {
		return Value{}, fmt.Errorf("%s: want a vendor id (IANA private enterprise number) from 1 to %d, got %d", name, maxVendor, vendor)
	}
	if vendorType == 0 {
		return Value{}, fmt.Errorf("%s: want a vendor attribute type from 1 to 255, got 0", name)
	}
	f, ok := formats[format]
	if !ok {
		return Value{}, &unknownError{fmt.Sprintf("%s: unknown format %s (use string, integer, ipaddr or octets)", name, quote(format))}
	}
	e := entry{name: name, typ: rfc2865.VendorSpecific_Type, vendor: vendor, vendorType: vendorType, format: f}
	return e.parse(value)
}

// Names lists the known attribute names, sorted (for error messages and
// docs).
func Names() []string {
	names := make([]string, len(dictionary))
	for i, e := range dictionary {
		names[i] = e.name
	}
	slices.Sort(names)
	return names
}

// format is how an attribute's value is written and encoded.
type format int

const (
	formatString  format = iota // UTF-8 text
	formatInteger               // uint32, decimal or a named value
	formatIPAddr                // IPv4 address
	formatOctets                // hex
	formatClass                 // octets written as text, or as hex after 0x
)

// formats are the formats of ParseVendor by name.
var formats = map[string]format{
	"string":  formatString,
	"integer": formatInteger,
	"ipaddr":  formatIPAddr,
	"octets":  formatOctets,
}

// maxVendor is the largest vendor id: RFC 2865 section 5.26 keeps the high
// octet of the four zero.
const maxVendor = 1<<24 - 1

// Vendor ids (IANA private enterprise numbers).
const (
	vendorCisco    = 9
	vendorJuniper  = 2636
	vendorFortinet = 12356
	vendorAruba    = 14823
	vendorMikrotik = 14988
	vendorPaloAlto = 25461
)

// entry is one attribute of the dictionary.
type entry struct {
	name       string
	typ        radius.Type
	vendor     uint32
	vendorType byte
	format     format
	// unit names what an integer counts ("seconds"), for messages.
	unit string
	// values are the names of well-known integer values, in order of value.
	values []namedValue
	// netmask makes an ipaddr a netmask.
	netmask bool
}

// namedValue is a well-known value of an integer attribute.
type namedValue struct {
	name  string
	value uint32
}

// dictionary is every attribute Parse knows.
var dictionary = []entry{
	{name: "Service-Type", typ: rfc2865.ServiceType_Type, format: formatInteger,
		values: named(rfc2865.ServiceType_Strings)},
	{name: "Framed-Protocol", typ: rfc2865.FramedProtocol_Type, format: formatInteger,
		values: named(rfc2865.FramedProtocol_Strings)},
	{name: "Framed-IP-Address", typ: rfc2865.FramedIPAddress_Type, format: formatIPAddr},
	{name: "Framed-IP-Netmask", typ: rfc2865.FramedIPNetmask_Type, format: formatIPAddr, netmask: true},
	{name: "Filter-Id", typ: rfc2865.FilterID_Type, format: formatString},
	{name: "Reply-Message", typ: rfc2865.ReplyMessage_Type, format: formatString},
	{name: "Class", typ: rfc2865.Class_Type, format: formatClass},
	{name: "Session-Timeout", typ: rfc2865.SessionTimeout_Type, format: formatInteger, unit: "seconds"},
	{name: "Idle-Timeout", typ: rfc2865.IdleTimeout_Type, format: formatInteger, unit: "seconds"},
	{name: "Acct-Interim-Interval", typ: rfc2869.AcctInterimInterval_Type, format: formatInteger, unit: "seconds"},
	{name: "Framed-Pool", typ: rfc2869.FramedPool_Type, format: formatString},

	{name: "Cisco-AVPair", vendor: vendorCisco, vendorType: 1, format: formatString},
	{name: "Juniper-Local-User-Name", vendor: vendorJuniper, vendorType: 1, format: formatString},
	{name: "Fortinet-Group-Name", vendor: vendorFortinet, vendorType: 1, format: formatString},
	{name: "Aruba-User-Role", vendor: vendorAruba, vendorType: 1, format: formatString},
	{name: "Mikrotik-Group", vendor: vendorMikrotik, vendorType: 3, format: formatString},
	{name: "PaloAlto-User-Group", vendor: vendorPaloAlto, vendorType: 5, format: formatString},
}

// byName indexes dictionary by lower-case name.
var byName = index(dictionary)

func index(entries []entry) map[string]entry {
	m := make(map[string]entry, len(entries))
	for _, e := range entries {
		if e.vendor != 0 {
			e.typ = rfc2865.VendorSpecific_Type
		}
		m[strings.ToLower(e.name)] = e
	}
	return m
}

// named turns one of layeh.com/radius's value-name maps into namedValues
// in order of value.
func named[T ~uint32](m map[T]string) []namedValue {
	var out []namedValue
	for _, v := range slices.Sorted(maps.Keys(m)) {
		out = append(out, namedValue{name: m[v], value: uint32(v)})
	}
	return out
}

// maxData is the longest value of an attribute: 253 bytes, less the vendor
// id, type and length (6 bytes) in a vendor attribute.
func (e entry) maxData() int {
	if e.vendor != 0 {
		return 247
	}
	return 253
}

// parse encodes value per the entry's format.
func (e entry) parse(value string) (Value, error) {
	var (
		a   radius.Attribute
		err error
	)
	switch e.format {
	case formatString:
		a, err = e.text(value)
	case formatInteger:
		a, err = e.integer(value)
	case formatIPAddr:
		a, err = e.ipaddr(value)
	case formatOctets:
		a, err = e.octets(value)
	case formatClass:
		if hasHexPrefix(value) {
			a, err = e.octets(value)
		} else {
			a, err = e.text(value)
		}
	}
	if err != nil {
		return Value{}, err
	}
	return Value{Name: e.name, Type: e.typ, Vendor: e.vendor, VendorType: e.vendorType, Data: a}, nil
}

func (e entry) text(value string) (radius.Attribute, error) {
	max := e.maxData()
	switch {
	case value == "":
		return nil, fmt.Errorf("%s: want text of 1 to %d bytes, got an empty value", e.name, max)
	case len(value) > max:
		return nil, fmt.Errorf("%s: want text of at most %d bytes, got %d bytes", e.name, max, len(value))
	case !utf8.ValidString(value):
		return nil, fmt.Errorf("%s: want UTF-8 text, got %s", e.name, quote(value))
	case strings.IndexByte(value, 0) >= 0:
		return nil, fmt.Errorf("%s: want text without NUL bytes, got %s", e.name, quote(value))
	}
	return radius.NewString(value)
}

func (e entry) integer(value string) (radius.Attribute, error) {
	for _, nv := range e.values {
		if strings.EqualFold(value, nv.name) {
			return radius.NewInteger(nv.value), nil
		}
	}
	n, err := strconv.ParseUint(value, 10, 32)
	if err == nil {
		return radius.NewInteger(uint32(n)), nil
	}
	want := "a whole number from 0 to 4294967295"
	switch {
	case len(e.values) > 0:
		names := make([]string, len(e.values))
		for i, nv := range e.values {
			names[i] = nv.name
		}
		want = "a number or one of " + strings.Join(names, ", ")
	case e.unit != "" && errors.Is(err, strconv.ErrRange):
		want = "at most 4294967295 " + e.unit
	case e.unit != "":
		want = "a whole number of " + e.unit
	}
	return nil, fmt.Errorf("%s: want %s, got %s", e.name, want, quote(value))
}

func (e entry) ipaddr(value string) (radius.Attribute, error) {
	want := "an IPv4 address such as 192.0.2.10"
	if e.netmask {
		want = "an IPv4 netmask such as 255.255.255.0"
	}
	ip, err := netip.ParseAddr(value)
	if err != nil || !ip.Is4() {
		return nil, fmt.Errorf("%s: want %s, got %s", e.name, want, quote(value))
	}
	if e.netmask {
		b := ip.As4()
		m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if inv := ^m; inv&(inv+1) != 0 { // the ones must come first
			return nil, fmt.Errorf("%s: want %s, got %s", e.name, want, quote(value))
		}
	}
	return radius.NewIPAddr(net.IP(ip.AsSlice()))
}

func (e entry) octets(value string) (radius.Attribute, error) {
	max := e.maxData()
	digits := value
	if hasHexPrefix(value) {
		digits = value[2:]
	}
	b, err := hex.DecodeString(digits)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: want hex bytes such as 0x0a1b2c, got %s", e.name, quote(value))
	case len(b) == 0:
		return nil, fmt.Errorf("%s: want 1 to %d bytes in hex, got none", e.name, max)
	case len(b) > max:
		return nil, fmt.Errorf("%s: want at most %d bytes, got %d", e.name, max, len(b))
	}
	return radius.NewBytes(b)
}

// hasHexPrefix reports whether s starts with 0x or 0X.
func hasHexPrefix(s string) bool {
	return len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')
}

// unknownError is an error that matches ErrUnknown.
type unknownError struct{ msg string }

func (e *unknownError) Error() string        { return e.msg }
func (e *unknownError) Is(target error) bool { return target == ErrUnknown }

// quote quotes a value for an error message, shortened so that a long
// value does not flood the log. It is the config package's quote, so that
// the config can replace a value that came from the environment with the
// name of its variable.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
