package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// Apache httpd with mod_auth_mellon as the SAML service provider,
// configured as examples/saml-mellon says: the test reads the example's
// files and only moves them to local addresses, so the example cannot rot.

const (
	mellonCreateMetadata = "/usr/sbin/mellon_create_metadata"
	mellonExample        = "../saml-mellon/" // relative to apacheExampleDir
	mellonExampleSite    = "https://wiki.example.com"
	mellonExampleFiles   = "/etc/apache2/mellon/"
	mellonExampleSPFile  = "/etc/bridge/saml/wiki-mellon.xml"
)

// requireMellon skips (fails in CI) without apache2 and mod_auth_mellon.
func requireMellon(t *testing.T) {
	t.Helper()
	for _, f := range []string{apacheBin, filepath.Join(apacheModules, "mod_auth_mellon.so"), mellonCreateMetadata} {
		if _, err := os.Stat(f); err != nil {
			testenv.Unavailable(t, "mellon", "apt-get install apache2 libapache2-mod-auth-mellon")
		}
	}
}

func TestApacheModAuthMellon(t *testing.T) {
	requireMellon(t)
	port := freePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", port)

	// The SP's files, as README.md makes them, in a directory Apache's
	// children (www-data when the test runs as root) can read: mellon
	// reads the IdP metadata there, on the first request, not at start.
	dir, err := os.MkdirTemp("", "mellon")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	create := exec.Command(mellonCreateMetadata, site+"/mellon/metadata", site+"/mellon")
	create.Dir = dir
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("mellon_create_metadata: %v\n%s", err, out)
	}
	prefix := filepath.Join(dir, fmt.Sprintf("http_127.0.0.1_%d_mellon_metadata", port))
	spMetadata, err := os.ReadFile(prefix + ".xml")
	if err != nil {
		t.Fatal(err)
	}

	// The bridge's side of the example, as its README has it.
	bin, phoneBin := binaries(t)
	b := &liveBridge{t: t, dir: t.TempDir(), bin: bin, phone: phoneBin}
	b.cfg = filepath.Join(b.dir, "bridge.yaml")
	if err := os.WriteFile(filepath.Join(b.dir, "wiki-mellon.xml"), spMetadata, 0o600); err != nil {
		t.Fatal(err)
	}
	b.public = freePort(t)
	b.start(b.baseConfig(nil) + apacheExampleBlock(t, mellonExample+"README.md", "yaml",
		mellonExampleSPFile, "wiki-mellon.xml"))
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com", "--display-name", "Alice Liddell")
	phone := b.enroll("alice")

	// The bridge's IdP metadata, saved for mellon as README.md says.
	resp, err := http.Get(b.baseURL() + "/saml/metadata")
	if err != nil {
		t.Fatal(err)
	}
	idpMetadata, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("IdP metadata: %d\n%s", resp.StatusCode, idpMetadata)
	}
	if err := os.WriteFile(filepath.Join(dir, "bridge-idp.xml"), idpMetadata, 0o644); err != nil {
		t.Fatal(err)
	}

	// The example's site over plain http: the cookie settings for http
	// that its comment describes.
	block := apacheExampleBlock(t, mellonExample+"wiki-mellon.conf", "MELLON",
		mellonExampleFiles+"wiki.key", prefix+".key",
		mellonExampleFiles+"wiki.cert", prefix+".cert",
		mellonExampleFiles+"wiki.xml", prefix+".xml",
		mellonExampleFiles+"bridge-idp.xml", filepath.Join(dir, "bridge-idp.xml"),
		"        MellonSecureCookie On\n", "        MellonSecureCookie Off\n        SetEnv MELLON_DISABLE_SAMESITE 1\n")
	a := startMellonApache(t, port, block)

	br := htmlBrowser(t)
	wait := signIn(t, br, a.base+"/", "alice")
	var sso *url.URL
	for _, v := range br.visits {
		if u, _ := url.Parse(v); u != nil && u.Path == "/saml/sso" {
			sso = u
		}
	}
	if sso == nil || sso.Query().Get("Signature") == "" || sso.Query().Get("SigAlg") != "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" {
		t.Fatalf("mellon sent no RSA-SHA256-signed Redirect-binding request: %v", br.visits)
	}
	done := approve(t, b, br, wait, phone)
	if done.url.Path != "/saml/login/done" || done.status != http.StatusOK {
		t.Fatalf("after approval: %s (%d)\n%s", done.url, done.status, done.body)
	}
	landed, response := postSAMLForm(t, br, done)
	if landed.status != http.StatusOK || landed.url.String() != a.base+"/" || !strings.Contains(landed.body, "Welcome to the wiki") {
		t.Fatalf("mellon did not accept the response: %d at %s:\n%s\nvisits: %v\nresponse:\n%s", landed.status, landed.url, landed.body, br.visits, response)
	}
	if !strings.Contains(response, `Destination="`+site+`/mellon/postResponse"`) {
		t.Errorf("the response is not addressed to mellon's ACS:\n%s", response)
	}

	// What applications behind the site see; mellon's session cookie
	// keeps the user signed in without the bridge.
	before := len(br.visits)
	resp, err = br.c.Get(a.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(br.visits) != before {
		t.Fatalf("second visit: %d, redirected through %v", resp.StatusCode, br.visits[before:])
	}
	for header, want := range map[string]string{
		"X-Remote-User":  "alice",
		"X-Mellon-Uid":   "alice",
		"X-Mellon-Email": "alice@example.com",
	} {
		if got := resp.Header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	if nameID := resp.Header.Get("X-Mellon-NameID"); nameID == "" || nameID == "alice" || nameID == "(null)" {
		t.Errorf("MELLON_NAME_ID = %q, want an opaque persistent NameID", nameID)
	}
	if n := auditCount(t, b, "saml.sso", "alice"); n != 1 {
		t.Errorf("%d saml.sso events for alice, want 1", n)
	}
	if t.Failed() {
		t.Logf("visits: %v\nresponse:\n%s", br.visits, response)
	}
}

// startMellonApache runs httpd on port with the site directives site in a
// virtual host until the test ends. The test adds response headers that
// show what applications behind it see.
func startMellonApache(t *testing.T, port int, site string) *apache {
	t.Helper()
	a := &apache{base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: t.TempDir()}
	a.errorLog = filepath.Join(a.dir, "error.log")
	return runApache(t, a, port, []string{"auth_mellon", "env"}, "auth_mellon:debug", site, `    # The test's window on what the site's applications see.
    <Location />
        Header always set X-Remote-User "expr=%{REMOTE_USER}"
        Header always set X-Mellon-Uid "%{MELLON_uid}e"
        Header always set X-Mellon-Email "%{MELLON_email}e"
        Header always set X-Mellon-NameID "%{MELLON_NAME_ID}e"
    </Location>`)
}
