package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/bridge-idp/bridge/directory"
)

// pool keeps up to size idle service-bound connections and lets at most
// cap(slots) be open at once.
type pool struct {
	idle  chan *goldap.Conn
	slots chan struct{} // one token per open connection
	done  chan struct{} // closed by close
}

func newPool(size, max int) *pool {
	return &pool{
		idle:  make(chan *goldap.Conn, size),
		slots: make(chan struct{}, max),
		done:  make(chan struct{}),
	}
}

var errPoolClosed = errors.New("directory closed")

// get returns an idle connection, or a slot to dial a new one (c == nil).
func (p *pool) get(ctx context.Context) (*goldap.Conn, error) {
	for {
		select {
		case <-p.done:
			return nil, errPoolClosed
		default:
		}
		var c *goldap.Conn
		select {
		case c = <-p.idle:
		default:
			select {
			case c = <-p.idle:
			case p.slots <- struct{}{}:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-p.done:
				return nil, errPoolClosed
			}
		}
		if !c.IsClosing() {
			return c, nil
		}
		p.discard(c) // closed by the server while idle
	}
}

// put returns a healthy service-bound connection to the pool.
func (p *pool) put(c *goldap.Conn) {
	select {
	case <-p.done:
		p.discard(c)
		return
	default:
	}
	select {
	case p.idle <- c:
		// It may have raced with close: drain again.
		select {
		case <-p.done:
			p.drain()
		default:
		}
	default:
		p.discard(c)
	}
}

// discard closes c and frees its slot.
func (p *pool) discard(c *goldap.Conn) {
	if c != nil {
		c.Close()
	}
	<-p.slots
}

// release frees a slot taken for a dial that failed.
func (p *pool) release() { <-p.slots }

func (p *pool) drain() {
	for {
		select {
		case c := <-p.idle:
			p.discard(c)
		default:
			return
		}
	}
}

func (p *pool) close() {
	select {
	case <-p.done:
		return
	default:
		close(p.done)
	}
	p.drain()
}

// do runs op on c, bounded by the timeout and by ctx: either ends it by
// closing the connection. It returns op's error, or an ErrUnavailable error
// naming what timed out or was cancelled.
func (d *dir) do(ctx context.Context, c *goldap.Conn, what string, op func() error) error {
	opCtx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	stop := context.AfterFunc(opCtx, func() { c.Close() })
	err := op()
	if !stop() {
		if ctx.Err() != nil {
			return d.unavailable(ctx, what, ctx.Err())
		}
		return d.unavailable(ctx, what, fmt.Errorf("no answer within %s", d.cfg.Timeout))
	}
	return err
}

// dial opens a connection (TLS as configured) and binds it as the service
// account.
func (d *dir) dial(ctx context.Context) (*goldap.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	dialer := net.Dialer{Timeout: d.cfg.Timeout}
	raw, err := dialer.DialContext(dctx, "tcp", d.hostport)
	if err != nil {
		return nil, d.unavailable(ctx, "dial", err)
	}
	if d.ldaps {
		tc := tls.Client(raw, d.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, d.unavailable(ctx, "TLS handshake", err)
		}
		raw = tc
	}
	c := goldap.NewConn(raw, d.ldaps)
	c.Start()
	// do bounds every operation by the timeout and names the step that ran
	// out; go-ldap's own request timeout is only a backstop, set longer so
	// that it never wins that race.
	c.SetTimeout(2 * d.cfg.Timeout)
	if d.cfg.StartTLS {
		if err := d.do(ctx, c, "StartTLS", func() error { return c.StartTLS(d.tls) }); err != nil {
			c.Close()
			return nil, d.unavailable(ctx, "StartTLS", err)
		}
	}
	if err := d.serviceBind(ctx, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// serviceBind binds c as the service account (or anonymously with
// anonymous_bind).
func (d *dir) serviceBind(ctx context.Context, c *goldap.Conn) error {
	if d.cfg.AnonymousBind {
		err := d.do(ctx, c, "anonymous bind", func() error { return c.UnauthenticatedBind("") })
		return d.unavailable(ctx, "anonymous bind", err)
	}
	err := d.do(ctx, c, "service account bind", func() error { return c.Bind(d.cfg.BindDN, d.bindPassword) })
	if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		err = fmt.Errorf("%w: %w", errServiceAccount, err)
	}
	return d.unavailable(ctx, "service account bind", err)
}

// unavailableError is ErrUnavailable with the server, the operation that
// failed and the cause (which errors.Is and errors.As still see).
type unavailableError struct {
	url, what string
	err       error
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("%s: %s: %s: %s", directory.ErrUnavailable, e.url, e.what, errText(e.err))
}

func (e *unavailableError) Unwrap() []error { return []error{directory.ErrUnavailable, e.err} }

// unavailable wraps err as ErrUnavailable naming the server and the
// operation (and the context's error if it is done); nil stays nil and
// errors already ErrUnavailable are kept. An err that is already another
// class (ErrInvalidCredentials or ErrDisabled from a request whose
// connection then broke) keeps only its text: an error is of one class.
func (d *dir) unavailable(ctx context.Context, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, directory.ErrUnavailable):
		return err
	case errors.Is(err, directory.ErrInvalidCredentials) || errors.Is(err, directory.ErrDisabled):
		err = errors.New(err.Error())
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		err = fmt.Errorf("%w (%v)", context.Cause(ctx), errText(err))
	}
	return &unavailableError{url: d.cfg.URL, what: what, err: err}
}

// errServiceAccount is the cause when the server refuses the service
// account's bind.
var errServiceAccount = errors.New("server refused the service account (wrong bind_dn or bind_password)")

// errText strips go-ldap's "LDAP Result Code 200 "Network Error": " prefix
// from network errors, which says nothing the rest does not.
func errText(err error) string {
	var le *goldap.Error
	if errors.As(err, &le) && le.ResultCode == goldap.ErrorNetwork && le.Err != nil {
		return le.Err.Error()
	}
	return err.Error()
}

// broken reports whether err means the connection itself failed (so a
// retry on a new connection may succeed).
func broken(c *goldap.Conn, err error) bool {
	if err == nil {
		return false
	}
	return c.IsClosing() || goldap.IsErrorWithCode(err, goldap.ErrorNetwork) || errors.Is(err, net.ErrClosed)
}
