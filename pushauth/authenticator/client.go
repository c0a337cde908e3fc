package authenticator

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// ServerError is an error response from the bridge: the HTTP status and
// the protocol.Error body (Code is one of the protocol.Err* values, or ""
// when the body was not a protocol error, for example from a proxy).
type ServerError struct {
	Status      int
	Code        string
	Description string
}

func (e *ServerError) Error() string {
	msg := fmt.Sprintf("authenticator: the bridge answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// ErrTLSPin: the bridge's TLS certificate does not have the key pinned by
// the activation URL.
var ErrTLSPin = errors.New("authenticator: the server's TLS certificate does not match the pinned key")

const (
	// requestTimeout bounds a request whose context has no deadline (plus
	// the wait of a long-poll).
	requestTimeout = 30 * time.Second
	// maxResponse bounds the body of a response the device reads.
	maxResponse = 1 << 20
)

// httpClient makes the client the device uses: a copy of base (or of the
// default client) that follows no redirects (a proof is bound to one URL),
// trusts caPEM in addition to the system roots, and, when tlsPin is set,
// checks the key of the server's leaf certificate in VerifyConnection, in
// addition to the normal verification.
func httpClient(base *http.Client, tlsPin string, caPEM []byte) (*http.Client, error) {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if tlsPin == "" && len(caPEM) == 0 {
		return c, nil
	}
	var tr *http.Transport
	switch t := c.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, fmt.Errorf("authenticator: cannot enforce the TLS pin or CA certificates on an HTTP transport of type %T (want *http.Transport)", t)
	}
	cfg := tr.TLSClientConfig
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("authenticator: the CA certificates hold no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if tlsPin != "" {
		prev := cfg.VerifyConnection
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if prev != nil {
				if err := prev(cs); err != nil {
					return err
				}
			}
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: no certificate", ErrTLSPin)
			}
			if got := protocol.SPKIPin(cs.PeerCertificates[0].RawSubjectPublicKeyInfo); got != tlsPin {
				return fmt.Errorf("%w: pin %s, want %s", ErrTLSPin, got, tlsPin)
			}
			return nil
		}
	}
	tr.TLSClientConfig = cfg
	c.Transport = tr
	return c, nil
}

// call makes one authenticated request to base+path (with query, if any):
// in, if not nil, is sent as JSON; a response with status want is decoded
// into out, if not nil; any other status is a *ServerError.
func (d *Device) call(ctx context.Context, method, path string, query url.Values, in, out any, want int) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("authenticator: encoding %s %s: %w", method, path, err)
		}
	}
	target := d.base + path
	proof, err := d.Proof(method, target, body)
	if err != nil {
		return err
	}
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("authenticator: %w", err)
	}
	req.Header.Set(protocol.ProofHeader, proof)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return roundTrip(d.client, req, want, out)
}

// roundTrip sends req and decodes the answer (see call).
func roundTrip(client *http.Client, req *http.Request, want int, out any) error {
	req.Header.Set("Accept", "application/json")
	ctx := req.Context()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		req = req.WithContext(ctx)
	}
	what := req.Method + " " + req.URL.Path
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("authenticator: %s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("authenticator: %s: reading the answer: %w", what, err)
	}
	if len(data) > maxResponse {
		return fmt.Errorf("authenticator: %s: the answer is longer than %d bytes", what, maxResponse)
	}
	if resp.StatusCode != want {
		return serverError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("authenticator: %s: decoding the answer: %w", what, err)
	}
	return nil
}

// serverError makes the *ServerError of an unexpected response.
func serverError(status int, body []byte) *ServerError {
	var perr protocol.Error
	if json.Unmarshal(body, &perr) == nil && perr.Code != "" {
		return &ServerError{Status: status, Code: printable(perr.Code, 64), Description: printable(perr.Description, 256)}
	}
	return &ServerError{Status: status, Description: printable(strings.TrimSpace(string(body)), 256)}
}

// printable makes text from the network safe to show on a terminal:
// control characters become U+FFFD, and it is cut to n runes.
func printable(s string, n int) string { return Printable(s, n) }

// Printable makes text from the bridge (a challenge's application name,
// user agent, location) safe to show on a terminal or screen: invalid
// UTF-8 and non-printing characters (escape sequences) become U+FFFD, and
// it is cut to n runes followed by "...".
func Printable(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if count == n {
			b.WriteString("...")
			break
		}
		count++
		if !unicode.IsPrint(r) && r != ' ' {
			r = '\uFFFD'
		}
		b.WriteRune(r)
	}
	return b.String()
}
