package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/bridge-idp/bridge/radius"
	"github.com/bridge-idp/bridge/radius/dict"
)

// Radius is the RADIUS front end (VPNs, firewalls, Wi-Fi controllers). It
// is on when clients are configured.
type Radius struct {
	// Listen is the UDP host:port for Access-Request and Status-Server
	// (port 0: any free port). Default 127.0.0.1:1812: set 0.0.0.0:1812 or
	// a NAS-facing address in production.
	Listen string `yaml:"listen"`
	// AccountingListen is the UDP host:port for Accounting-Request, or off.
	// It must differ from listen (unless either port is 0). Default
	// listen's host with port 1813 (port 0 if listen's port is 0).
	AccountingListen string `yaml:"accounting_listen"`
	// ReadBuffer is the socket receive buffer asked for (SO_RCVBUF), in
	// bytes: from 65536 to 67108864 (the kernel may grant less). Default
	// 4194304 (4 MiB).
	ReadBuffer int `yaml:"read_buffer"`
	// AnswerCache is how long an answer is kept to be sent again when the
	// NAS retransmits its request (same client, identifier and
	// authenticator): from 10s (NASes retry every few seconds; a retry
	// after a lost answer must not start the login again) to 5m. Default
	// 30s.
	AnswerCache time.Duration `yaml:"answer_cache"`
	// MaxPending bounds the requests being worked on at once, held
	// requests included; more are dropped (the NAS retransmits): from 1 to
	// 1000000. Default 10000.
	MaxPending int `yaml:"max_pending"`
	// Clients are the NASes allowed to ask, each with its shared secret.
	Clients []RadiusClient `yaml:"clients"`
}

// RadiusClient is one NAS, or a network of them sharing a secret. A
// request is answered with the settings of the client whose address
// matches its source address; when several prefixes match, the most
// specific (longest) wins, so a /32 can override its /24.
type RadiusClient struct {
	// Name is required and unique, matching ^[a-z0-9][a-z0-9_-]*$ (the rule
	// of directory names). It is the application id of the logins (push
	// requests, audit) and names the client in logs.
	Name string `yaml:"name"`
	// Address is required: an IP address or a CIDR prefix, IPv4 or IPv6
	// (10.0.0.5, 10.0.0.0/24, 2001:db8::/64), without host bits set in a
	// prefix. No two clients may have the same prefix; overlapping ones
	// are fine (the most specific wins). See Prefix.
	Address string `yaml:"address"`
	// Secret is the shared secret configured on the NAS, at least 16 bytes
	// (make one with `openssl rand -hex 16`). Write ${ENV} or use
	// secret_file, not both; one is required. After Load Secret holds the
	// secret read from secret_file too (one trailing newline trimmed).
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Directory is the first-factor directory: the name of one in
	// directories. Default the first directory of the file ("local" when
	// there are none).
	Directory string `yaml:"directory"`
	// MessageAuthenticator is whether an Access-Request must carry a
	// Message-Authenticator: always (default), auto (once the client has
	// sent one, as FreeRADIUS does, for NASes not yet updated) or never
	// (logged as a warning: a forged Access-Accept becomes possible,
	// BlastRADIUS, CVE-2024-3596). Answers always carry one.
	MessageAuthenticator string `yaml:"message_authenticator"`
	// Wait is how a login waits for the second factor: hold (default: the
	// Access-Request is answered once the phone has, so set the NAS's
	// RADIUS timeout above hold_timeout, for example 30s or more, with 1
	// to 3 retries) or challenge (an Access-Challenge asks the user to
	// approve, or for the code, and the NAS sends a second request).
	Wait string `yaml:"wait"`
	// HoldTimeout is, with wait hold, the longest a request is held for the
	// phone's answer: from 1s to 5m, and not above push.challenge_ttl.
	// Default 25s, or push.challenge_ttl when that is shorter.
	HoldTimeout time.Duration `yaml:"hold_timeout"`
	// NumberMatching shows a number in the Access-Challenge that the user
	// types on the phone. Only with wait challenge and second_factor push:
	// with hold, the NAS has nowhere to show the number. Default true with
	// challenge (and push), false otherwise.
	NumberMatching bool `yaml:"number_matching"`
	// DeviceKeys is which enrolled devices may approve sign-ins here: any
	// (default), hardware (not a software key: the web app without a
	// passkey, a terminal authenticator) or attested (only passkeys whose
	// attestation chained to a trusted root at enrollment, see
	// app.attestation_roots; the web app then asks for attestation).
	// Hardware and attested also refuse one-time codes (TOTP, bypass): a
	// code typed anywhere would go around the key.
	DeviceKeys string `yaml:"device_keys"`
	// SecondFactor is push (default: approve on the enrolled phone) or otp
	// (a TOTP or bypass code; not with device_keys hardware or attested,
	// which refuse one-time codes: neither after the password nor at the
	// challenge).
	SecondFactor string `yaml:"second_factor"`
	// PasswordSuffix accepts the second factor after the password, for
	// NASes that cannot show a challenge: "password,push" and
	// "password,123456" (a TOTP or bypass code). Default true.
	PasswordSuffix bool `yaml:"password_suffix"`
	// Failmode is what happens when the push engine or the store fails:
	// secure (default: reject) or safe (accept on the first factor alone;
	// logged as a warning).
	Failmode string `yaml:"failmode"`
	// FailuresPerUser, FailuresPerIP and FailuresPerClient limit failed
	// first factors (wrong passwords and unknown user names alike) in 15
	// minutes, counted in the store for all nodes together: per user name
	// over every client (default 10, as web.failures_per_user); per
	// end-user address behind this client, when Calling-Station-Id is an
	// IP address, IPv6 per /64 (default 20, as web.failures_per_ip); and
	// per client as a whole for logins whose Calling-Station-Id is no
	// address (a MAC, or none; default 100). Each from 1 to 100000. A
	// login over a limit is rejected without asking the directory.
	FailuresPerUser   int `yaml:"failures_per_user"`
	FailuresPerIP     int `yaml:"failures_per_ip"`
	FailuresPerClient int `yaml:"failures_per_client"`
	// Reply is what an Access-Accept carries.
	Reply RadiusReply `yaml:"reply"`
}

// RadiusReply is the attributes of an Access-Accept: Session-Timeout,
// attributes, then those of every group of reply.groups the user is in.
type RadiusReply struct {
	// Class is the Class attribute the bridge adds (RFC 2865 §5.25; the
	// NAS sends it back in its Accounting-Requests, which ties them to
	// the login in the audit log): a template where {id} is the login's
	// push challenge id (a random one for a login by one-time code) and
	// {user} the user name, or off to send none (ocserv, for one, takes
	// Class as the user's group name). {id} is required in a template;
	// the text around it must leave room for the id within 253 bytes, and
	// {user} is cut to fit. Default bridge:{id}. A Class in attributes is
	// sent besides it.
	Class string `yaml:"class"`
	// SessionTimeout is sent as Session-Timeout, in whole seconds: from 0
	// (default: none sent) to 8760h. Not together with a Session-Timeout
	// in attributes.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// Attributes are sent on every Access-Accept.
	Attributes []RadiusAttribute `yaml:"attributes"`
	// Groups add attributes for members of directory groups.
	Groups []RadiusGroupReply `yaml:"groups"`
}

// RadiusGroupReply adds attributes when the user is in a group.
type RadiusGroupReply struct {
	// Group is a group name as the directory reports it (required; one
	// entry per group).
	Group string `yaml:"group"`
	// Attributes are added when the user is in the group (required, not
	// empty).
	Attributes []RadiusAttribute `yaml:"attributes"`
}

// RadiusAttribute is one reply attribute: a name from the built-in
// dictionary (package radius/dict: Filter-Id, Class, Session-Timeout,
// Cisco-AVPair, Fortinet-Group-Name, ...), or a vendor attribute the
// dictionary lacks as vendor, type and format. See Encode.
type RadiusAttribute struct {
	// Name is an attribute of the dictionary, in any case.
	Name string `yaml:"name"`
	// Vendor (the IANA private enterprise number, 1 to 16777215), Type
	// (the attribute's number in the vendor's dictionary, 1 to 255) and
	// Format (string, integer, ipaddr or octets) give a vendor attribute
	// instead of name.
	Vendor uint32 `yaml:"vendor"`
	Type   int    `yaml:"type"`
	Format string `yaml:"format"`
	// Value is written per the attribute's format: text, a number (or a
	// name such as Framed-User for Service-Type), an IPv4 address, or hex
	// bytes (0x0a1b2c). Required.
	Value string `yaml:"value"`
}

// Enabled reports whether the RADIUS front end is on: when clients are
// configured.
func (r Radius) Enabled() bool { return len(r.Clients) > 0 }

// AccountingEnabled reports whether Accounting-Requests are answered:
// accounting_listen is not off.
func (r Radius) AccountingEnabled() bool { return r.AccountingListen != radiusOff }

// Prefix parses Address: an IP address is a /32 (IPv4) or /128 (IPv6)
// prefix.
func (c RadiusClient) Prefix() (netip.Prefix, error) {
	return parseClientAddress(c.Address)
}

// Encode turns the attribute into the value the RADIUS server sends, with
// radius/dict's Parse or ParseVendor; Load has checked that it succeeds.
func (a RadiusAttribute) Encode() (dict.Value, error) {
	if a.Name != "" {
		if a.Vendor != 0 || a.Type != 0 || a.Format != "" {
			return dict.Value{}, fmt.Errorf("%s: set either name or vendor, type and format, not both", a.Name)
		}
		return dict.Parse(a.Name, a.Value)
	}
	if a.Type < 1 || a.Type > 255 {
		return dict.Value{}, fmt.Errorf("vendor %d: want a vendor attribute type from 1 to 255, got %d", a.Vendor, a.Type)
	}
	return dict.ParseVendor(a.Vendor, byte(a.Type), a.Format, a.Value)
}

// Values encodes the attributes sent on every Access-Accept, in order.
// SessionTimeout is not among them: the server sends it itself; groups are
// left to RadiusGroupReply.Values.
func (r RadiusReply) Values() ([]dict.Value, error) { return encodeAll(r.Attributes) }

// Values encodes the attributes added for members of the group, in order.
func (g RadiusGroupReply) Values() ([]dict.Value, error) { return encodeAll(g.Attributes) }

func encodeAll(attrs []RadiusAttribute) ([]dict.Value, error) {
	out := make([]dict.Value, 0, len(attrs))
	for i, a := range attrs {
		v, err := a.Encode()
		if err != nil {
			return nil, fmt.Errorf("attributes[%d]: %w", i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// radiusOff is accounting_listen's value that turns accounting off.
const radiusOff = "off"

// hasUnder reports whether any key below path was written in the file.
func (c *Config) hasUnder(path string) bool {
	for p := range c.lines {
		if strings.HasPrefix(p, path+".") {
			return true
		}
	}
	return false
}

// minRadiusSecret is the shortest RADIUS shared secret accepted, in bytes.
const minRadiusSecret = 16

// radius checks the radius section.
func (v *validator) radius() {
	r := &v.c.Radius
	if len(r.Clients) == 0 && v.c.hasUnder("radius") {
		v.errorf("radius.clients", "no clients, which leaves the RADIUS front end off: add clients, or remove the other radius keys")
	}
	host, port, ok := v.radiusListen("radius.listen", r.Listen)
	if r.AccountingListen != radiusOff {
		acHost, acPort, acOK := v.radiusListen("radius.accounting_listen", r.AccountingListen)
		if ok && acOK && port == acPort && port != 0 && (host == acHost || unspecifiedHost(host) || unspecifiedHost(acHost)) {
			v.errorf("radius.accounting_listen", "%s overlaps radius.listen (%s): accounting needs its own port (or off)",
				v.c.plain("radius.accounting_listen", r.AccountingListen), v.c.plain("radius.listen", r.Listen))
		}
	}
	v.intIn("radius.read_buffer", r.ReadBuffer, 64<<10, 64<<20)
	v.durationIn("radius.answer_cache", r.AnswerCache, 10*time.Second, 5*time.Minute)
	v.intIn("radius.max_pending", r.MaxPending, 1, 1000000)

	names := map[string]int{}
	prefixes := map[netip.Prefix]int{}
	for i := range r.Clients {
		v.radiusClient(i, &r.Clients[i], names, prefixes)
	}
}

// radiusListen checks a UDP listen address. An empty one that was not
// written was not derived, because listen is wrong: that is reported
// already.
func (v *validator) radiusListen(path, addr string) (host string, port int, ok bool) {
	if addr == "" && !v.c.has(path) {
		return "", 0, false
	}
	host, port, err := splitListen(addr, v.c.fromEnv[path])
	if err != nil {
		v.errorf(path, "%v", err)
		return "", 0, false
	}
	return host, port, true
}

// radiusClient checks client i; names and prefixes collect those of the
// clients before it, for duplicates.
func (v *validator) radiusClient(i int, c *RadiusClient, names map[string]int, prefixes map[netip.Prefix]int) {
	p := fmt.Sprintf("radius.clients[%d]", i)
	switch {
	case c.Name == "":
		v.errorf(p+".name", "required: a name for the NAS, such as vpn (used in logs and audit)")
	case !directoryName.MatchString(c.Name):
		v.errorf(p+".name", "%s: use lower-case letters, digits, - and _, starting with a letter or digit", v.c.show(p+".name", c.Name))
	default:
		if j, dup := names[c.Name]; dup {
			v.errorf(p+".name", "duplicate client name %s (also radius.clients[%d])", v.c.showFile(p+".name", c.Name), j)
		} else {
			names[c.Name] = i
		}
	}

	if c.Address == "" {
		v.errorf(p+".address", "required: the NAS's IP address, or a prefix such as 10.0.0.0/24")
	} else if pfx, err := parseClientAddress(c.Address); err != nil {
		v.errorf(p+".address", "%s: %v", v.c.show(p+".address", c.Address), err)
	} else if j, dup := prefixes[pfx]; dup {
		v.errorf(p+".address", "%s is also radius.clients[%d]'s address: a request's source address must pick one client",
			v.c.show(p+".address", c.Address), j)
	} else {
		prefixes[pfx] = i
	}

	// An unreadable or empty secret_file, or both keys set, was reported
	// when it was read.
	both := v.c.has(p+".secret") && v.c.has(p+".secret_file")
	switch {
	case c.Secret != "":
		key := p + ".secret"
		if c.SecretFile != "" {
			key = p + ".secret_file"
		}
		if len(c.Secret) < minRadiusSecret && !both {
			v.errorf(key, "the shared secret must be at least %d bytes: make one with `openssl rand -hex 16` and set it on the NAS too", minRadiusSecret)
		}
	case c.SecretFile != "" || v.c.has(p+".secret") || v.c.has(p+".secret_file"):
	default:
		v.errorf(p+".secret_file", "required: the shared secret set on the NAS, at least %d bytes (make one with `openssl rand -hex 16`): "+
			"set secret_file to a file holding it, or secret: ${ENV}", minRadiusSecret)
	}

	dp := p + ".directory"
	if c.Directory == "" {
		if v.c.has(dp) {
			v.errorf(dp, "must not be empty (leave it out for the first directory)")
		}
	} else if !v.hasDirectory(c.Directory) {
		v.errorf(dp, "no directory is named %s", v.c.show(dp, c.Directory))
	}

	v.oneOf(p+".message_authenticator", c.MessageAuthenticator, "always", "auto", "never")
	v.oneOf(p+".wait", c.Wait, "hold", "challenge")
	v.oneOf(p+".second_factor", c.SecondFactor, "push", "otp")
	v.oneOf(p+".failmode", c.Failmode, "secure", "safe")
	v.deviceKeys(p+".device_keys", c.DeviceKeys)
	if c.SecondFactor == "otp" && (c.DeviceKeys == DeviceKeysHardware || c.DeviceKeys == DeviceKeysAttested) {
		v.errorf(p+".second_factor", "otp with device_keys %s: one-time codes are not taken where a hardware-bound key must approve (use second_factor: push, or device_keys: any)", c.DeviceKeys)
	}
	if c.Failmode == "safe" && (c.DeviceKeys == DeviceKeysHardware || c.DeviceKeys == DeviceKeysAttested) {
		v.errorf(p+".failmode", "safe with device_keys %s: failing open accepts on the password alone where a hardware-bound key must approve (use failmode: secure, or device_keys: any)", c.DeviceKeys)
	}
	v.intIn(p+".failures_per_user", c.FailuresPerUser, 1, 100000)
	v.intIn(p+".failures_per_ip", c.FailuresPerIP, 1, 100000)
	v.intIn(p+".failures_per_client", c.FailuresPerClient, 1, 100000)
	if c.Failmode == "safe" && v.c.directoryType(c.Directory) == "none" {
		v.errorf(p+".failmode", "safe with the passwordless directory %s would let anyone in by user name alone when the push engine fails; use secure",
			v.c.show(dp, c.Directory))
	}
	switch c.Wait {
	case "hold":
		hp := p + ".hold_timeout"
		v.durationIn(hp, c.HoldTimeout, time.Second, 5*time.Minute)
		if ttl := v.c.Push.ChallengeTTL; c.HoldTimeout > ttl && c.HoldTimeout <= 5*time.Minute {
			v.errorf(hp, "%s is longer than push.challenge_ttl (%s): the push would expire while the request is held",
				v.c.plain(hp, c.HoldTimeout), v.c.plain("push.challenge_ttl", ttl))
		}
		if c.SecondFactor == "otp" && !c.PasswordSuffix {
			v.errorf(p+".password_suffix", "false leaves no way to give the code: with wait hold and second_factor otp "+
				"the code comes after the password (password,123456); set wait: challenge, or password_suffix: true")
		}
	case "challenge":
		if v.c.has(p + ".hold_timeout") {
			v.errorf(p+".hold_timeout", "only with wait: hold")
		}
	}
	if c.NumberMatching {
		switch {
		case c.Wait == "hold":
			v.errorf(p+".number_matching", "only with wait: challenge: with hold, the NAS has nowhere to show the number")
		case c.SecondFactor == "otp":
			v.errorf(p+".number_matching", "only with second_factor: push")
		}
	}
	v.radiusReply(p+".reply", &c.Reply)
}

// directoryType is the type of the directory called name, or "".
func (f *File) directoryType(name string) string {
	for _, d := range f.Directory {
		if d.Name == name {
			return d.Type
		}
	}
	return ""
}

// hasDirectory reports whether a directory is named name.
func (v *validator) hasDirectory(name string) bool {
	for _, d := range v.c.Directory {
		if d.Name == name {
			return true
		}
	}
	return false
}

// maxSessionTimeout is the longest reply.session_timeout.
const maxSessionTimeout = 8760 * time.Hour

func (v *validator) radiusReply(path string, r *RadiusReply) {
	cp := path + ".class"
	switch strings.ToLower(r.Class) {
	case "false", "no", "true", "yes", "on":
		v.errorf(cp, "%s: write off to send no Class, or leave it out for %s", v.c.show(cp, r.Class), radius.DefaultClass)
	default:
		if err := radius.CheckClass(r.Class); err != nil {
			v.errorf(cp, "%s: %v", v.c.show(cp, r.Class), err)
		}
	}
	sp := path + ".session_timeout"
	switch t := r.SessionTimeout; {
	case t < 0 || t > maxSessionTimeout:
		v.errorf(sp, "must be from 0 (none) to 8760h, got %s", v.c.plain(sp, t))
	case t%time.Second != 0:
		v.errorf(sp, "must be whole seconds, got %s", v.c.plain(sp, t))
	}
	for i, a := range r.Attributes {
		ap := fmt.Sprintf("%s.attributes[%d]", path, i)
		val, ok := v.radiusAttribute(ap, a)
		if ok && r.SessionTimeout > 0 && val.Vendor == 0 && strings.EqualFold(val.Name, "Session-Timeout") {
			v.errorf(ap+".name", "Session-Timeout is set by session_timeout already: keep one")
		}
	}
	groups := map[string]int{}
	for i, g := range r.Groups {
		gp := fmt.Sprintf("%s.groups[%d]", path, i)
		if g.Group == "" {
			v.errorf(gp+".group", "required: a group name as the directory reports it")
		} else if j, dup := groups[g.Group]; dup {
			v.errorf(gp+".group", "%s is also %s.groups[%d]: put its attributes in one entry", v.c.show(gp+".group", g.Group), path, j)
		} else {
			groups[g.Group] = i
		}
		if len(g.Attributes) == 0 {
			v.errorf(gp+".attributes", "required: the attributes to add for members of the group")
		}
		for j, a := range g.Attributes {
			v.radiusAttribute(fmt.Sprintf("%s.attributes[%d]", gp, j), a)
		}
	}
}

// radiusAttribute checks one reply attribute and returns its encoding when
// it is valid.
func (v *validator) radiusAttribute(path string, a RadiusAttribute) (dict.Value, bool) {
	generic := a.Vendor != 0 || a.Type != 0 || v.c.has(path+".vendor") || v.c.has(path+".type")
	ok := true
	switch {
	case a.Name != "" && generic:
		v.errorf(path+".name", "set either name or vendor and type, not both")
		return dict.Value{}, false
	case a.Name == "" && !generic:
		if v.c.has(path + ".name") {
			v.errorf(path+".name", "must not be empty")
		} else {
			v.errorf(path, "needs a name from the dictionary (such as Filter-Id, Class or Fortinet-Group-Name), "+
				"or vendor, type and format for another vendor attribute")
		}
		return dict.Value{}, false
	case a.Name != "":
		if v.c.has(path + ".format") {
			v.errorf(path+".format", "only with vendor and type: the dictionary knows the format of a named attribute")
			ok = false
		}
	default:
		vp, tp, fp := path+".vendor", path+".type", path+".format"
		switch {
		case !v.c.has(vp):
			v.errorf(vp, "required with type: the vendor's IANA private enterprise number, such as 9 for Cisco")
			ok = false
		case a.Vendor == 0 || a.Vendor > 1<<24-1:
			v.errorf(vp, "must be a vendor id (IANA private enterprise number) from 1 to 16777215, got %s", v.c.plain(vp, a.Vendor))
			ok = false
		}
		switch {
		case !v.c.has(tp):
			v.errorf(tp, "required with vendor: the attribute's number in the vendor's dictionary, from 1 to 255")
			ok = false
		case a.Type < 1 || a.Type > 255:
			v.errorf(tp, "must be from 1 to 255, got %s", v.c.plain(tp, a.Type))
			ok = false
		}
		if a.Format == "" {
			v.errorf(fp, "required with vendor and type: string, integer, ipaddr or octets")
			ok = false
		}
	}
	if !ok {
		return dict.Value{}, false
	}
	val, err := a.Encode()
	if err != nil {
		key, msg := path+".value", err.Error()
		switch {
		case errors.Is(err, dict.ErrUnknown) && a.Name != "":
			key, msg = path+".name", msg+"; for another vendor attribute give vendor, type and format instead"
		case errors.Is(err, dict.ErrUnknown):
			key = path + ".format"
		}
		// The dictionary quotes values: name those from the environment
		// by their variables instead.
		v.errorf(key, "%s", v.c.redact(path, msg, true))
		return dict.Value{}, false
	}
	return val, true
}

// parseClientAddress parses a client address: an IP address or a CIDR
// prefix without host bits, not an IPv4-mapped IPv6 address and without a
// zone.
func parseClientAddress(s string) (netip.Prefix, error) {
	const want = "want an IP address or a prefix such as 10.0.0.0/24 or 2001:db8::/64"
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New(want)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("host bits are set: write %s for the network", p.Masked())
		}
		pfx = p
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, errors.New(want)
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	if pfx.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("an IPv4-mapped IPv6 address: write the IPv4 address")
	}
	return pfx, nil
}
