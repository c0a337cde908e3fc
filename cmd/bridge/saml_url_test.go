package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
)

// An SP whose metadata is at a metadata_url: the bridge fetches it at
// start and serves the SP's sign-ins.
func TestSAMLMetadataURL(t *testing.T) {
	bin, _ := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	spDir := t.TempDir() // not next to the config: only reachable over HTTP
	sp := newSAMLSP(t, spDir, false)
	md, err := os.ReadFile(filepath.Join(spDir, "sp.xml"))
	if err != nil {
		t.Fatal(err)
	}
	mdSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(md)
	}))
	defer mdSrv.Close()
	b.public = freePort(t)
	b.start(b.baseConfig(nil) + `saml:
  service_providers:
    - name: wiki
      metadata_url: ` + mdSrv.URL + `/sp.xml
      metadata_refresh: 1m
`)
	if l := b.log(); !strings.Contains(l, "fetched SAML service provider metadata") {
		t.Errorf("the fetch is not logged:\n%s", l)
	}
	br := newBrowser(t)
	form := br.get(samlRedirect(t, b, sp, func(*crewjam.AuthnRequest) {}))
	if form.status != http.StatusOK || !strings.Contains(form.body, `name="username"`) {
		t.Fatalf("a request of the SP did not reach the sign-in form: %s (%d)\n%s", form.url, form.status, form.body)
	}
}

// A bridge that cannot fetch an SP's metadata does not start.
func TestSAMLMetadataURLUnreachable(t *testing.T) {
	bin, _ := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	b.public = freePort(t)
	l := listenLoopback(t)
	unreachable := "http://" + l.Addr().String() + "/sp.xml"
	l.Close()
	text := b.baseConfig(nil) + "saml:\n  service_providers:\n    - name: wiki\n      metadata_url: " + unreachable + "\n"
	if err := os.WriteFile(b.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "serve", "--config", b.cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `saml service provider "wiki"`) || !strings.Contains(string(out), unreachable) {
		t.Errorf("serve with an unreachable metadata_url: %v\n%s", err, out)
	}
}
