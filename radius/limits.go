package radius

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/store"
)

// The limits of this file are kept in the store's counters (store.Limits),
// so that they hold for all nodes together and across restarts: failed
// first factors, wrong one-time codes, and the Message-Authenticator an
// auto client has been seen to send.

// failureWindow is the window of the first-factor limits, as the web
// sign-in's.
const failureWindow = 15 * time.Minute

// Defaults of a Client's first-factor limits (config/defaults.go sets the
// same for the configuration file).
const (
	DefaultFailuresPerUser   = 10
	DefaultFailuresPerIP     = 20
	DefaultFailuresPerClient = 100
)

// Wrong one-time codes a user may send in codeWindow before codes are
// refused for the rest of it. With 3 accepted codes (skew 1) in a million,
// that keeps guessing a 6-digit code out of reach.
const (
	maxCodeFailures = 5
	codeWindow      = 15 * time.Minute
)

// ffLimits are the limits a first factor of l counts against: its source
// (the end user's address behind the NAS when Calling-Station-Id is one,
// IPv6 per /64, or else the NAS as a whole), then the user name, over
// every client. Unknown user names count like known ones.
func (s *Server) ffLimits(l *login) (source, user store.Limit) {
	c := l.c
	if l.ip != "" {
		source = store.Limit{Key: "radius/ff/ip/" + c.Name + "/" + store.AddressKey(l.ip), Max: orDefault(c.FailuresPerIP, DefaultFailuresPerIP), Window: failureWindow}
	} else {
		source = store.Limit{Key: "radius/ff/client/" + c.Name, Max: orDefault(c.FailuresPerClient, DefaultFailuresPerClient), Window: failureWindow}
	}
	user = store.Limit{Key: "radius/ff/user/" + store.NameKey(l.user), Max: orDefault(c.FailuresPerUser, DefaultFailuresPerUser), Window: failureWindow}
	return source, user
}

// msgLockedOut answers a login refused by the first-factor limits. It is
// the same whether or not the password would have been right: the
// directory is not asked.
const msgLockedOut = "Too many failed sign-ins. Wait 15 minutes and try again."

// firstFactor checks the password against the client's directory, counted
// against the first-factor limits before the check (so that parallel
// guesses cannot outrun them) and refunded when it is right or the
// directory could not answer. Identical requests in flight on this node
// (a NAS's burst of new Identifiers for one attempt: same client, station,
// user name and password) share one check, so one attempt counts once and
// is hashed once. It returns the identity, or the answer to send (nil:
// none) with ok false.
func (s *Server) firstFactor(ctx context.Context, l *login, password string) (_ directory.Identity, resp *radius.Packet, ok bool) {
	c := l.c
	mac := hmac.New(sha256.New, s.flightKey[:])
	mac.Write([]byte(password))
	key := strings.Join([]string{c.Name, l.station, l.user, string(mac.Sum(nil))}, "\x00")
	v, _, _ := s.ffFlight.Do(key, func() (any, error) { return s.checkFirstFactor(ctx, l, password), nil })
	r := v.(ffResult)
	switch {
	case r.cancelled:
		return directory.Identity{}, nil, false
	case r.limitsErr != nil:
		return directory.Identity{}, s.reject(ctx, l, "first-factor limits unavailable: "+r.limitsErr.Error(), msgUnavailable), false
	case r.locked != "":
		s.metrics.lockouts.WithLabelValues(c.Name, r.lockedBy).Inc()
		// A deny with the same answer for every locked login: it says
		// nothing of the password, nor whether the user exists.
		return directory.Identity{}, s.lockedOut(ctx, l, r.locked), false
	case r.err != nil:
		return directory.Identity{}, s.reject(ctx, l, r.err.Error(), ""), false
	}
	return r.ident, nil, true
}

// ffResult is a first-factor check as requests that share it see it.
type ffResult struct {
	ident     directory.Identity
	err       error  // the directory's refusal or failure
	limitsErr error  // the limits could not count (failmode secure)
	locked    string // over a limit: why, for the audit
	lockedBy  string // which: source or user
	cancelled bool
}

// checkFirstFactor counts the attempt and asks the directory.
func (s *Server) checkFirstFactor(ctx context.Context, l *login, password string) ffResult {
	c := l.c
	if !directory.RequiresPassword(c.Directory) {
		// A passwordless directory has no password to guess: what an
		// unknown name costs the phones is bounded by the push limits,
		// and counting every login would cost a store write each.
		return s.authenticate(ctx, l, password, func() {})
	}
	source, user := s.ffLimits(l)
	limits := s.limits
	v, err := limits.Take(ctx, source, user)
	if err != nil && ctx.Err() == nil && c.Failmode == FailSafe {
		// failmode safe lets users in on the first factor alone while
		// the store is away, so guessing it must stay bounded: this
		// node's own counters stand in for the shared ones.
		if s.warned.allow("fflimits/"+c.Name, s.now()) {
			s.log.Error("RADIUS first-factor limits unavailable: counting on this node alone (failmode safe)", "client", c.Name, "err", err)
		}
		limits = s.fallback
		v, err = limits.Take(ctx, source, user)
	}
	counted := err == nil
	switch {
	case err != nil && ctx.Err() != nil:
		return ffResult{cancelled: true}
	case err != nil:
		if s.warned.allow("fflimits/"+c.Name, s.now()) {
			s.log.Error("RADIUS first-factor limits unavailable: rejecting (failmode secure)", "client", c.Name, "err", err)
		}
		return ffResult{limitsErr: err}
	case !v.OK:
		what := "this user name"
		if v.Refused == 0 && l.ip != "" {
			what = "this address"
		} else if v.Refused == 0 {
			what = "this client"
		}
		return ffResult{
			locked: fmt.Sprintf("too many failed first factors for %s; locked until %s; the directory was not asked",
				what, v.Ends.UTC().Format(time.RFC3339)),
			lockedBy: []string{"source", "user"}[min(v.Refused, 1)],
		}
	}
	refund := func() {
		if !counted {
			return
		}
		if err := limits.Refund(context.WithoutCancel(ctx), source, user); err != nil {
			s.log.Warn("refunding a first-factor attempt failed", "client", c.Name, "err", err)
		}
	}
	return s.authenticate(ctx, l, password, refund)
}

// authenticate asks the client's directory; refund gives the attempt
// back when the password was right or the directory could not answer.
func (s *Server) authenticate(ctx context.Context, l *login, password string, refund func()) ffResult {
	c := l.c
	ident, err := c.Directory.Authenticate(ctx, l.user, password)
	if err != nil {
		if errors.Is(err, directory.ErrUnavailable) || ctx.Err() != nil {
			refund() // not the user's fault
		}
		if errors.Is(err, directory.ErrUnavailable) && s.warned.allow("directory/"+c.Name, s.now()) {
			s.log.Error("RADIUS first factor: directory unavailable", "client", c.Name, "directory", c.Directory.Name(), "err", err)
		}
		return ffResult{err: err}
	}
	refund()
	return ffResult{ident: ident}
}

// lockedOut answers a login refused by the first-factor limits. Unlike
// refuse, it keeps its message for passwordless directories too: the
// message is the same for every user name, known or not.
func (s *Server) lockedOut(ctx context.Context, l *login, reason string) *radius.Packet {
	resp := l.req.Response(radius.CodeAccessReject)
	addReplyMessage(resp, msgLockedOut)
	s.audit(ctx, l, store.ResultDenied, reason, "")
	s.metrics.decisions.WithLabelValues(l.c.Name, "reject").Inc()
	return resp
}

// codeLimits counts wrong one-time codes per user, over all nodes.
type codeLimits struct{ l *store.Limits }

func codeLimit(user string) store.Limit {
	return store.Limit{Key: "radius/code/" + store.NameKey(user), Max: maxCodeFailures, Window: codeWindow}
}

// reserve counts an attempt before the code is checked, so that attempts
// sent at once cannot all pass the check while the first is being
// verified; it reports false when the user has none left. A right code
// resets the count, an attempt that failed for the store's sake is
// refunded.
func (c codeLimits) reserve(ctx context.Context, user string) (bool, error) {
	v, err := c.l.Take(ctx, codeLimit(user))
	if err != nil {
		return false, fmt.Errorf("counting the code attempt: %w", err)
	}
	return v.OK, nil
}

func (c codeLimits) refund(ctx context.Context, user string) error {
	return c.l.Refund(context.WithoutCancel(ctx), codeLimit(user))
}

func (c codeLimits) reset(ctx context.Context, user string) error {
	return c.l.Reset(context.WithoutCancel(ctx), codeLimit(user).Key)
}

// maFlag is the flag of an auto client that has sent a
// Message-Authenticator: set once, never expiring.
func maFlag(c *Client) store.Limit {
	return store.Limit{Key: "radius/ma-seen/" + c.Name, Max: 1}
}

// maAuto applies message_authenticator auto to an Access-Request of c: once
// any node has seen c send a Message-Authenticator, it is required, on
// every node and after restarts. It reports whether p may be answered. The
// read loop drops what this node already knows to refuse; this runs on the
// request's goroutine, where the store may be asked.
func (s *Server) maAuto(ctx context.Context, c *Client, p *radius.Packet) bool {
	if _, has := p.Lookup(rfc2869.MessageAuthenticator_Type); has {
		if !c.maStored.Load() {
			if _, err := s.limits.Take(ctx, maFlag(c)); err != nil {
				s.log.Error("recording that a RADIUS client sends Message-Authenticator failed; trying again with its next request", "client", c.Name, "err", err)
			} else {
				c.maStored.Store(true)
			}
		}
		return true
	}
	if c.sawMA.Load() {
		return false
	}
	n, err := s.limits.Count(ctx, maFlag(c))
	if err != nil {
		// Fail closed: the NAS retries, and the store is needed for the
		// login anyway.
		if s.warned.allow("maflag/"+c.Name, s.now()) {
			s.log.Error("reading whether a RADIUS client has sent Message-Authenticator failed; dropping its request", "client", c.Name, "err", err)
		}
		return false
	}
	if n > 0 {
		c.sawMA.Store(true)
		s.log.Info("RADIUS client has sent a Message-Authenticator before (seen by this or another node): requiring it from now on", "client", c.Name)
		return false
	}
	return true
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}
