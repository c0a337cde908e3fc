package webpush

import (
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
)

// MaxToken is the largest push token (subscription JSON) accepted.
const MaxToken = 4096

// subscription is a parsed, checked push token.
type subscription struct {
	endpoint string // as sent by the browser
	origin   string // the endpoint's origin: the VAPID JWT's aud
	uaPub    *ecdh.PublicKey
	auth     []byte
	vapid    []byte // the applicationServerKey: uncompressed P-256 point
}

// tokenJSON is protocol.WebPushSubscription, decoded strictly, plus the
// expirationTime member of PushSubscription.toJSON(), which an app may
// pass through unchanged (it is ignored: push services say when a
// subscription ends by answering 404 or 410).
type tokenJSON struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256DH string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
	VAPID          string          `json:"vapid"`
	ExpirationTime json.RawMessage `json:"expirationTime,omitempty"`
}

// allowList is the set of push-service hosts the sender posts to.
type allowList struct {
	exact    map[string]bool // host names and addresses, lower case
	suffixes []string        // ".push.apple.com" for "*.push.apple.com"
}

func newAllowList(hosts []string) (allowList, error) {
	a := allowList{exact: map[string]bool{}}
	var errs []error
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		name, wild := strings.CutPrefix(h, "*.")
		if name == "" || strings.ContainsAny(name, "/:*@ []?#%") {
			errs = append(errs, fmt.Errorf("webpush: allowed host %q is not a host name (optionally starting with *.)", h))
			continue
		}
		if wild {
			a.suffixes = append(a.suffixes, "."+name)
		} else {
			a.exact[name] = true
		}
	}
	if len(hosts) == 0 {
		errs = append(errs, errors.New("webpush: no allowed push-service hosts"))
	}
	return a, errors.Join(errs...)
}

// allows reports whether host (lower case) may be posted to, and whether
// it is listed by name rather than by a wildcard.
func (a allowList) allows(host string) (ok, exact bool) {
	if a.exact[host] {
		return true, true
	}
	for _, s := range a.suffixes {
		if len(host) > len(s) && strings.HasSuffix(host, s) {
			return true, false
		}
	}
	return false, false
}

// parseToken checks a push token as CheckToken documents.
func (a allowList) parseToken(token string) (subscription, error) {
	var sub subscription
	if len(token) > MaxToken {
		return sub, fmt.Errorf("subscription is %d bytes, more than %d", len(token), MaxToken)
	}
	var tj tokenJSON
	dec := json.NewDecoder(strings.NewReader(token))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tj); err != nil {
		return sub, fmt.Errorf("subscription is not the JSON of a Web Push subscription: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return sub, errors.New("subscription has data after its JSON object")
	}
	origin, err := a.checkEndpoint(tj.Endpoint)
	if err != nil {
		return sub, err
	}
	uaRaw, err := decodeB64("keys.p256dh", tj.Keys.P256DH)
	if err != nil {
		return sub, err
	}
	uaPub, err := parsePoint("keys.p256dh", uaRaw)
	if err != nil {
		return sub, err
	}
	auth, err := decodeB64("keys.auth", tj.Keys.Auth)
	if err != nil {
		return sub, err
	}
	if len(auth) != authLen {
		return sub, fmt.Errorf("keys.auth is %d bytes, want %d", len(auth), authLen)
	}
	vapid, err := decodeB64("vapid", tj.VAPID)
	if err != nil {
		return sub, err
	}
	if _, err := parsePoint("vapid", vapid); err != nil {
		return sub, err
	}
	return subscription{endpoint: tj.Endpoint, origin: origin, uaPub: uaPub, auth: auth, vapid: vapid}, nil
}

// checkEndpoint accepts an absolute https URL on an allowed host and the
// default port, without userinfo or fragment; http, and other ports, only
// to a loopback host listed by name (a test's local push service). It
// returns the endpoint's origin.
func (a allowList) checkEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("endpoint is not a URL")
	}
	if u.Opaque != "" || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(s, "#") {
		return "", errors.New("endpoint must be an absolute URL without user info or fragment")
	}
	host := strings.ToLower(u.Hostname())
	ok, exact := a.allows(host)
	if !ok {
		return "", fmt.Errorf("endpoint host %q is not an allowed push service", host)
	}
	switch u.Scheme {
	case "https":
		// Push services listen on 443: another port on an allowed host
		// would let a subscription aim the bridge's POSTs at whatever else
		// runs there. A loopback host listed by name (a test's push
		// service) may use any port.
		if p := u.Port(); p != "" && p != "443" && !(exact && isLoopback(host)) {
			return "", fmt.Errorf("endpoint port %s: push services are reached on the default https port only", clipPort(p))
		}
	case "http":
		if !exact || !isLoopback(host) {
			return "", errors.New("endpoint must be https (http only to a loopback host that is listed by name)")
		}
	default:
		return "", fmt.Errorf("endpoint scheme %q: must be https", u.Scheme)
	}
	return origin(u), nil
}

// origin is the RFC 6454 serialisation of u's origin: lower-case scheme and
// host, the port only when it is not the scheme's default.
func origin(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host
}

// clipPort shortens a port from an untrusted URL for a message.
func clipPort(p string) string {
	if len(p) > 8 {
		return p[:8] + "..."
	}
	return p
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// decodeB64 decodes unpadded base64url, the form PushSubscription.toJSON()
// gives; padded input is accepted too.
func decodeB64(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || s == "" {
		return nil, fmt.Errorf("%s is not base64url", field)
	}
	return b, nil
}

// parsePoint checks that b is an uncompressed point on P-256.
func parsePoint(field string, b []byte) (*ecdh.PublicKey, error) {
	if len(b) != pointLen || b[0] != 4 {
		return nil, fmt.Errorf("%s is not an uncompressed P-256 point (65 bytes starting 0x04)", field)
	}
	k, err := ecdh.P256().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a point on P-256", field)
	}
	return k, nil
}
