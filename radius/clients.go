package radius

import (
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/radius/dict"
)

// MAPolicy says when a client's Access-Requests must carry a
// Message-Authenticator.
type MAPolicy string

const (
	// MAAlways requires it on every Access-Request (the default).
	MAAlways MAPolicy = "always"
	// MAAuto requires it once the client has sent one that verified.
	MAAuto MAPolicy = "auto"
	// MANever never requires it, for clients that cannot send it (radcli,
	// as used by ocserv). One that is sent is still verified.
	MANever MAPolicy = "never"
)

// WaitMode is how a client waits for the phone.
type WaitMode string

const (
	// Hold keeps the request unanswered until the phone answers or the
	// hold timeout passes.
	Hold WaitMode = "hold"
	// Challenge answers at once with Access-Challenge and completes when
	// the NAS comes back with the State.
	Challenge WaitMode = "challenge"
)

// Second factors a client asks for.
const (
	FactorPush = "push" // push approval; a code appended to the password also works
	FactorOTP  = "otp"  // a TOTP or bypass code only, never a push
)

// Failmodes: what happens when the push engine or the store fails.
const (
	FailSecure = "secure" // reject
	FailSafe   = "safe"   // accept on the first factor alone (logged loudly)
)

// GroupReply adds attributes to an Access-Accept for members of Group.
type GroupReply struct {
	Group      string
	Attributes []dict.Value
}

// Client is a NAS (or a set of them, by CIDR) allowed to send requests.
type Client struct {
	// Name identifies the client in logs, the audit log and on the phone
	// (it is the push application id).
	Name string
	// Prefix is the source addresses the client's packets come from.
	Prefix netip.Prefix
	// Secret is the shared secret.
	Secret []byte
	// Directory checks the first factor.
	Directory directory.Directory

	MessageAuthenticator MAPolicy
	Wait                 WaitMode
	// HoldTimeout bounds a held request (Hold).
	HoldTimeout time.Duration
	// NumberMatching shows a number in the Access-Challenge that the user
	// types on the phone (Challenge only).
	NumberMatching bool
	// DeviceKeys is the client's device-key policy
	// (pushauth.Request.DeviceKeys): "" or any, hardware, attested.
	DeviceKeys string
	// SecondFactor is FactorPush or FactorOTP.
	SecondFactor string
	// PasswordSuffix accepts "password,push" and "password,CODE".
	PasswordSuffix bool
	// Failmode is FailSecure or FailSafe.
	Failmode string

	// Class is the Access-Accept's Class: a template with {id} and
	// {user} (see CheckClass), ClassOff for none, or "" for DefaultClass.
	Class string
	// SessionTimeout, if positive, is sent as Session-Timeout on accept.
	SessionTimeout time.Duration
	// Attributes are added to every Access-Accept; Groups to those of
	// members.
	Attributes []dict.Value
	Groups     []GroupReply

	// FailuresPerUser, FailuresPerIP and FailuresPerClient bound the
	// failed first factors in 15 minutes, over all nodes: per user name
	// (over every client), per end-user address behind this client (when
	// Calling-Station-Id is an IP address), and per client for logins
	// without one. 0 means DefaultFailuresPerUser and so on.
	FailuresPerUser, FailuresPerIP, FailuresPerClient int

	// sawMA records that the client sent a valid Message-Authenticator
	// (MAAuto requires one from then on); maStored that the store has it,
	// for the other nodes and the next start.
	sawMA    atomic.Bool
	maStored atomic.Bool
}

// validate checks a client's settings.
func (c *Client) validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("a client has no name")
	case !c.Prefix.IsValid():
		return fmt.Errorf("client %s: no address", c.Name)
	case len(c.Secret) == 0:
		return fmt.Errorf("client %s: no shared secret", c.Name)
	case c.Directory == nil:
		return fmt.Errorf("client %s: no directory", c.Name)
	}
	switch c.MessageAuthenticator {
	case MAAlways, MAAuto, MANever:
	default:
		return fmt.Errorf("client %s: message_authenticator %q is not always, auto or never", c.Name, c.MessageAuthenticator)
	}
	switch c.Wait {
	case Hold:
		if c.HoldTimeout <= 0 {
			return fmt.Errorf("client %s: hold needs a positive hold timeout", c.Name)
		}
		if c.NumberMatching {
			return fmt.Errorf("client %s: number matching needs wait: challenge (a held request cannot show the number)", c.Name)
		}
	case Challenge:
	default:
		return fmt.Errorf("client %s: wait %q is not hold or challenge", c.Name, c.Wait)
	}
	switch c.DeviceKeys {
	case "", "any", "hardware", "attested":
	default:
		return fmt.Errorf("client %s: device_keys %q is not any, hardware or attested", c.Name, c.DeviceKeys)
	}
	if c.SecondFactor != FactorPush && c.SecondFactor != FactorOTP {
		return fmt.Errorf("client %s: second factor %q is not push or otp", c.Name, c.SecondFactor)
	}
	if c.SecondFactor == FactorOTP && !codesAccepted(c) {
		return fmt.Errorf("client %s: second factor otp with device_keys %s: one-time codes are not taken where a hardware-bound key must approve", c.Name, c.DeviceKeys)
	}
	if c.Failmode != FailSecure && c.Failmode != FailSafe {
		return fmt.Errorf("client %s: failmode %q is not secure or safe", c.Name, c.Failmode)
	}
	if c.Failmode == FailSafe && !codesAccepted(c) {
		// Failing open accepts on the first factor alone: no more a
		// hardware-bound key's approval than a one-time code is.
		return fmt.Errorf("client %s: failmode safe with device_keys %s: failing open accepts on the password alone where a hardware-bound key must approve", c.Name, c.DeviceKeys)
	}
	if c.Class != "" {
		if err := CheckClass(c.Class); err != nil {
			return fmt.Errorf("client %s: class %q: %w", c.Name, c.Class, err)
		}
	}
	return nil
}

// clientTable finds the client of a source address: the most specific
// prefix that holds it.
type clientTable struct {
	byPrefix []*Client // longest prefix first
}

func newClientTable(clients []*Client) (*clientTable, error) {
	t := &clientTable{}
	seen := map[netip.Prefix]string{}
	names := map[string]bool{}
	for _, c := range clients {
		if err := c.validate(); err != nil {
			return nil, err
		}
		c.Prefix = c.Prefix.Masked()
		if c.Prefix.Addr().Is4In6() {
			c.Prefix = netip.PrefixFrom(c.Prefix.Addr().Unmap(), c.Prefix.Bits()-96)
		}
		if other, dup := seen[c.Prefix]; dup {
			return nil, fmt.Errorf("clients %s and %s have the same address %s", other, c.Name, c.Prefix)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("client %s is defined twice", c.Name)
		}
		seen[c.Prefix], names[c.Name] = c.Name, true
		t.byPrefix = append(t.byPrefix, c)
	}
	slices.SortStableFunc(t.byPrefix, func(a, b *Client) int { return b.Prefix.Bits() - a.Prefix.Bits() })
	return t, nil
}

// lookup returns the client that addr belongs to, or nil.
func (t *clientTable) lookup(addr netip.Addr) *Client {
	addr = addr.Unmap()
	for _, c := range t.byPrefix {
		if c.Prefix.Contains(addr) {
			return c
		}
	}
	return nil
}
