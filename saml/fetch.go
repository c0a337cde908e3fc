package saml

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	crewjam "github.com/crewjam/saml"
)

// Limits of a metadata fetch.
const (
	// MaxMetadataSize bounds a metadata document; a bigger one is an
	// error, not truncated.
	MaxMetadataSize = 1 << 20
	// metadataTimeout bounds one fetch, redirects included.
	metadataTimeout = 10 * time.Second
	// maxMetadataRedirects is how many redirects a fetch follows.
	maxMetadataRedirects = 3
	// maxRetryDelay is the longest wait before fetching again after a
	// failed fetch.
	maxRetryDelay = 5 * time.Minute
)

// FetchMetadata fetches a service provider's metadata from rawURL and
// checks it: an EntityDescriptor (or an EntitiesDescriptor holding exactly
// one) without a DOCTYPE, with an entityID and an SPSSODescriptor with an
// AssertionConsumerService. client may be nil (http.DefaultClient's
// transport); its redirect policy is replaced by this one: at most 3
// redirects, from https only to https, and to http:// only on a loopback
// host.
func FetchMetadata(ctx context.Context, client *http.Client, rawURL string) (*crewjam.EntityDescriptor, error) {
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	c := http.Client{}
	if client != nil {
		c = *client
	}
	c.CheckRedirect = checkMetadataRedirect
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metadata: HTTP status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("metadata: reading the response: %w", err)
	}
	if len(b) > MaxMetadataSize {
		return nil, fmt.Errorf("metadata: larger than %d bytes", MaxMetadataSize)
	}
	return ParseSPMetadata(b)
}

// checkMetadataRedirect is the redirect policy of FetchMetadata.
func checkMetadataRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxMetadataRedirects {
		return fmt.Errorf("more than %d redirects", maxMetadataRedirects)
	}
	switch {
	case req.URL.Scheme == "https":
		return nil
	case req.URL.Scheme == "http" && via[0].URL.Scheme == "http" && loopback(req.URL.Hostname()):
		return nil
	}
	return fmt.Errorf("redirect to %s refused: only https://, or http:// to a loopback host from http://", redacted(req.URL))
}

// loopback reports whether host is localhost or a loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseSPMetadata parses and checks a service provider's metadata, as
// FetchMetadata does after fetching it.
func ParseSPMetadata(b []byte) (*crewjam.EntityDescriptor, error) {
	root, err := metadataRoot(b)
	if err != nil {
		return nil, err
	}
	var md crewjam.EntityDescriptor
	switch root {
	case "EntityDescriptor":
		if err := xml.Unmarshal(b, &md); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
	case "EntitiesDescriptor":
		var set crewjam.EntitiesDescriptor
		if err := xml.Unmarshal(b, &set); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		if n := len(set.EntityDescriptors); n != 1 {
			return nil, fmt.Errorf("metadata: an EntitiesDescriptor with %d EntityDescriptors, want exactly one", n)
		}
		md = set.EntityDescriptors[0]
	default:
		return nil, fmt.Errorf("metadata: root element <%s>, want <EntityDescriptor> or <EntitiesDescriptor>", root)
	}
	if md.EntityID == "" {
		return nil, errors.New("metadata: no entityID")
	}
	hasACS := false
	for _, d := range md.SPSSODescriptors {
		hasACS = hasACS || len(d.AssertionConsumerServices) > 0
		// Assertions and logout answers are posted to these: absolute
		// https URLs (http only to loopback, for tests).
		for _, e := range d.AssertionConsumerServices {
			if err := endpointURL(e.Location); err != nil {
				return nil, fmt.Errorf("metadata of %q: AssertionConsumerService %q: %w", md.EntityID, e.Location, err)
			}
		}
		for _, e := range d.SingleLogoutServices {
			if err := endpointURL(e.Location); err != nil {
				return nil, fmt.Errorf("metadata of %q: SingleLogoutService %q: %w", md.EntityID, e.Location, err)
			}
		}
	}
	if !hasACS {
		return nil, fmt.Errorf("metadata of %q: no SPSSODescriptor with an AssertionConsumerService", md.EntityID)
	}
	return &md, nil
}

// endpointURL checks an SP endpoint's Location.
func endpointURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case !u.IsAbs() || u.Host == "":
		return errors.New("not an absolute URL")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	}
	return errors.New("not https")
}

// metadataRoot reads the whole document, refusing a DOCTYPE (and any other
// <!...> directive) and malformed XML, and returns the local name of its
// root element.
func metadataRoot(b []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("metadata: not XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return "", errors.New("metadata: a DOCTYPE (or other <!...> directive) is not allowed")
		case xml.StartElement:
			if root == "" {
				root = t.Name.Local
			}
		}
	}
	if root == "" {
		return "", errors.New("metadata: no root element")
	}
	return root, nil
}

// RefreshMetadata fetches the metadata of the service provider called name
// from rawURL every interval until ctx ends, and hands it to the IdP. A
// failed fetch, or metadata the IdP refuses (a changed entity id), keeps
// the last good metadata, is logged as a warning and is tried again
// sooner: after min(every, 5m).
func RefreshMetadata(ctx context.Context, idp *IdP, name, rawURL string, every time.Duration, client *http.Client, logger *slog.Logger) {
	if every <= 0 {
		every = 24 * time.Hour
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	retry := min(every, maxRetryDelay)
	shown := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		shown = redacted(u)
	}
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		md, err := FetchMetadata(ctx, client, rawURL)
		if err == nil {
			err = idp.UpdateMetadata(name, md)
		}
		next := every
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			logger.WarnContext(ctx, "refreshing SAML service provider metadata failed; keeping the last good metadata",
				"service_provider", name, "url", shown, "err", err, "retry_in", retry)
			next = retry
		default:
			logger.DebugContext(ctx, "refreshed SAML service provider metadata", "service_provider", name, "url", shown)
		}
		t.Reset(next)
	}
}

// redacted is u without a password, for messages.
func redacted(u *url.URL) string { return u.Redacted() }
