package saml

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fetchTestMetadata is the metadata of the test SP (sigTestSP) with its
// entity id and assertion consumer service URL changed.
func fetchTestMetadata(t testing.TB, entityID, acs string) []byte {
	t.Helper()
	k := sigTestKeys(t)
	sp := sigTestSP(k.rsaKey, k.rsaCert, "")
	u, err := url.Parse(acs)
	if err != nil {
		t.Fatal(err)
	}
	sp.AcsURL = *u
	sp.EntityID = entityID
	b, err := xml.Marshal(sp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fetchTestServer serves h on 127.0.0.1 and returns its metadata URL.
func fetchTestServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server not on 127.0.0.1: %s", srv.URL)
	}
	return srv.URL + "/metadata"
}

func serveBytes(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(b)
	}
}

func TestFetchMetadata(t *testing.T) {
	good := fetchTestMetadata(t, sigTestSPEntity, "https://sp.example.com/saml/acs")
	entityBody := good
	if i := bytes.Index(entityBody, []byte("?>")); i >= 0 { // no XML declaration: the set wraps it
		entityBody = entityBody[i+2:]
	}
	entities := []byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + string(entityBody) + `</EntitiesDescriptor>`)
	twoEntities := []byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + string(entityBody) + string(entityBody) + `</EntitiesDescriptor>`)
	noSP := []byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.com/saml/metadata">` +
		`<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><SingleSignOnService ` +
		`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://sp.example.com/sso"/></IDPSSODescriptor></EntityDescriptor>`)
	noACS := []byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.com/saml/metadata">` +
		`<SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"></SPSSODescriptor></EntityDescriptor>`)
	noEntityID := bytes.Replace(good, []byte(`entityID="`+sigTestSPEntity+`"`), []byte(`entityID=""`), 1)
	if bytes.Equal(noEntityID, good) {
		t.Fatalf("entityID not found in %s", good)
	}
	doctype := []byte(`<?xml version="1.0"?><!DOCTYPE EntityDescriptor [<!ENTITY x "y">]>` + string(entityBody))
	big := append(append([]byte{}, good[:len(good)-len("</EntityDescriptor>")]...),
		[]byte("<!-- "+strings.Repeat("x", MaxMetadataSize)+" --></EntityDescriptor>")...)

	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		wantErr string
	}{
		{"good", serveBytes(good), ""},
		{"entities with one", serveBytes(entities), ""},
		{"entities with two", serveBytes(twoEntities), "exactly one"},
		{"too big", serveBytes(big), "larger than"},
		{"404", http.NotFound, "404"},
		{"garbage", serveBytes([]byte("this is not <xml")), "not XML"},
		{"empty", serveBytes(nil), "no root element"},
		{"other root", serveBytes([]byte(`<html><body>hi</body></html>`)), "root element <html>"},
		{"doctype", serveBytes(doctype), "DOCTYPE"},
		{"no SPSSODescriptor", serveBytes(noSP), "no SPSSODescriptor"},
		{"no ACS", serveBytes(noACS), "AssertionConsumerService"},
		{"no entityID", serveBytes(noEntityID), "no entityID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md, err := FetchMetadata(context.Background(), nil, fetchTestServer(t, tc.h))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if md.EntityID != sigTestSPEntity || md.SPSSODescriptors[0].AssertionConsumerServices[0].Location != "https://sp.example.com/saml/acs" {
				t.Fatalf("parsed %+v", md)
			}
		})
	}
}

func TestFetchMetadataRedirects(t *testing.T) {
	good := fetchTestMetadata(t, sigTestSPEntity, "https://sp.example.com/saml/acs")
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metadata":
			w.Write(good)
		case "/elsewhere": // a plain-HTTP host that is not loopback
			http.Redirect(w, r, "http://sp.example.com/metadata", http.StatusFound)
		default: // /hop/N redirects N more times
			var n int
			if _, err := fmt.Sscanf(r.URL.Path, "/hop/%d", &n); err != nil {
				http.NotFound(w, r)
				return
			}
			next := "/metadata"
			if n > 0 {
				next = "/hop/" + strconv.Itoa(n-1)
			}
			http.Redirect(w, r, next, http.StatusFound)
		}
	}))
	defer srv.Close()
	if _, err := FetchMetadata(context.Background(), nil, srv.URL+"/hop/2"); err != nil {
		t.Errorf("3 redirects: %v", err)
	}
	if _, err := FetchMetadata(context.Background(), nil, srv.URL+"/hop/3"); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Errorf("4 redirects: %v", err)
	}
	if _, err := FetchMetadata(context.Background(), nil, srv.URL+"/elsewhere"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("redirect to plain HTTP off loopback: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRefreshMetadata(t *testing.T) {
	const (
		acsA = "https://sp.example.com/saml/acs-a"
		acsB = "https://sp.example.com/saml/acs-b"
		acsC = "https://sp.example.com/saml/acs-c"
	)
	initial, err := ParseSPMetadata(fetchTestMetadata(t, sigTestSPEntity, acsA))
	if err != nil {
		t.Fatal(err)
	}
	// Only what UpdateMetadata and sp use: the registered SPs.
	idp := &IdP{sps: map[string]*ServiceProvider{sigTestSPEntity: {Name: "wiki", Metadata: initial}}}

	var (
		mode atomic.Value // the metadata served, or nil for a 500
		hits atomic.Int64
	)
	mode.Store(fetchTestMetadata(t, sigTestSPEntity, acsB))
	u := fetchTestServer(t, func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		b, _ := mode.Load().([]byte)
		if b == nil {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		RefreshMetadata(ctx, idp, "wiki", u, 50*time.Millisecond, nil, logger)
	}()
	defer func() { cancel(); <-done }()

	acs := func() string {
		sp := idp.sp(sigTestSPEntity)
		if sp == nil {
			t.Fatal("the SP is gone")
		}
		return sp.Metadata.SPSSODescriptors[0].AssertionConsumerServices[0].Location
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\nlog:\n%s", what, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// waitFetches waits until the server has answered n more times (and the
	// last answer has been taken or refused).
	waitFetches := func(n int64) {
		t.Helper()
		from := hits.Load()
		waitFor("fetches", func() bool { return hits.Load() >= from+n+1 })
	}

	waitFor("the new ACS URL", func() bool { return acs() == acsB })

	mode.Store([]byte(nil))
	waitFetches(2)
	if got := acs(); got != acsB {
		t.Errorf("after failed fetches the ACS URL is %s, want the last good %s", got, acsB)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "500") || !strings.Contains(l, "keeping the last good metadata") {
		t.Errorf("no warning with the error:\n%s", l)
	}

	mode.Store(fetchTestMetadata(t, "https://evil.example.com/saml/metadata", acsC))
	waitFetches(2)
	if got := acs(); got != acsB {
		t.Errorf("after a changed entity id the ACS URL is %s, want the last good %s", got, acsB)
	}
	if idp.sp("https://evil.example.com/saml/metadata") != nil {
		t.Error("the changed entity id was registered")
	}
	if l := logs.String(); !strings.Contains(l, "evil.example.com") {
		t.Errorf("no warning about the changed entity id:\n%s", l)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RefreshMetadata did not stop with its context")
	}
}
