package radius

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Class settings of a client. The Class attribute of an Access-Accept
// (RFC 2865 §5.25) comes back unchanged in the NAS's Accounting-Requests,
// which ties them to the login in the audit log; some NASes also read it
// (ocserv takes it as the user's group name).
const (
	// DefaultClass is the template a client without one gets.
	DefaultClass = "bridge:{id}"
	// ClassOff sends no Class.
	ClassOff = "off"
)

// maxAttribute is the longest value of one RADIUS attribute.
const maxAttribute = 253

// maxClassID is the longest expansion of {id}: a push challenge id (27
// characters) or, for a login without push, 16 random characters.
const maxClassID = 27

// CheckClass checks a Class template: ClassOff, or text with {id} (the
// login's push challenge id, or a random one) and optionally {user} (the
// user name), whose fixed part leaves room for the id within an
// attribute's 253 bytes. {id} is required: without it, accounting records
// could not be told apart by login.
func CheckClass(tmpl string) error {
	if tmpl == ClassOff {
		return nil
	}
	if tmpl == "" {
		return errors.New("empty: leave it out for " + DefaultClass + ", or write off")
	}
	fixed, hasID := 0, false
	for rest := tmpl; rest != ""; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			fixed += len(rest)
			break
		}
		fixed += i
		if rest[i] == '}' {
			return fmt.Errorf("a } without its {: use only the placeholders {id} and {user}")
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("a { without its }: use only the placeholders {id} and {user}")
		}
		switch name := rest[i+1 : i+j]; name {
		case "id":
			hasID = true
		case "user":
		default:
			return fmt.Errorf("unknown placeholder {%s}: use {id} and {user}", name)
		}
		rest = rest[i+j+1:]
	}
	for _, r := range tmpl {
		if r < 0x20 || r == 0x7f {
			return errors.New("control characters are not allowed")
		}
	}
	if !hasID {
		return fmt.Errorf("must contain {id}, which ties accounting records to the login (for a fixed Class, such as a group name for the NAS, set class: %s and add Class to attributes)", ClassOff)
	}
	if n := fixed + maxClassID*strings.Count(tmpl, "{id}"); n > maxAttribute {
		return fmt.Errorf("%d bytes with {id}, over the %d of a RADIUS attribute", n, maxAttribute)
	}
	return nil
}

// classValue is the Class of an accepted login, or "" for none: the
// client's template with {id} the push challenge id (random without
// one) and {user} the user name, cut so that the value fits in an
// attribute (the id is never cut: CheckClass left room for it).
func classValue(tmpl, challenge, user string) string {
	switch tmpl {
	case ClassOff:
		return ""
	case "":
		tmpl = DefaultClass
	}
	id := challenge
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = base64.RawURLEncoding.EncodeToString(b[:])
	}
	withID := strings.ReplaceAll(tmpl, "{id}", id)
	if n := strings.Count(withID, "{user}"); n > 0 {
		user = clean(user)
		if room := (maxAttribute - (len(withID) - n*len("{user}"))) / n; len(user) > room {
			user = strings.ToValidUTF8(user[:max(room, 0)], "")
		}
		withID = strings.ReplaceAll(withID, "{user}", user)
	}
	return withID
}
