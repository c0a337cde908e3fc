package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

	// The pages are served by Apache's children, which run as www-data
	// when the test runs as root: the document root must be theirs to
	// read, unlike t.TempDir().
	docroot, err := os.MkdirTemp("", "apache-docroot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(docroot) })
	if err := os.WriteFile(filepath.Join(docroot, "index.html"), []byte("<!doctype html><title>Wiki</title><h1>Welcome to the wiki</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "User www-data\nGroup www-data"
	}
	var mods strings.Builder
	for _, m := range []string{"mpm_prefork", "authn_core", "authz_core", "authz_user", "auth_mellon", "env", "headers", "mime", "dir"} {
		fmt.Fprintf(&mods, "LoadModule %s_module %s/mod_%s.so\n", m, apacheModules, m)
	}
	conf := fmt.Sprintf(`ServerRoot %[1]s
DefaultRuntimeDir %[1]s
PidFile %[1]s/httpd.pid
ErrorLog %[2]s
LogLevel warn auth_mellon:debug
%[3]s
%[4]s
ServerName 127.0.0.1
Listen 127.0.0.1:%[5]d
TypesConfig /etc/mime.types
DirectoryIndex index.html
StartServers 2
<VirtualHost 127.0.0.1:%[5]d>
    ServerName 127.0.0.1
    DocumentRoot %[6]s
    <Directory %[6]s>
        Require all granted
    </Directory>
%[7]s
    # The test's window on what the site's applications see.
    <Location />
        Header always set X-Remote-User "expr=%%{REMOTE_USER}"
        Header always set X-Mellon-Uid "%%{MELLON_uid}e"
        Header always set X-Mellon-Email "%%{MELLON_email}e"
        Header always set X-Mellon-NameID "%%{MELLON_NAME_ID}e"
    </Location>
</VirtualHost>
`, a.dir, a.errorLog, mods.String(), user, port, docroot, site)
	confFile := filepath.Join(a.dir, "httpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(apacheBin, "-f", confFile, "-DFOREGROUND")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("apache config:\n%s\napache output:\n%s\napache error log:\n%s", conf, out.String(), a.log())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return a
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("apache exited: %v\n%s\nerror log:\n%s", err, out.String(), a.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("apache does not listen on port %d:\n%s\nerror log:\n%s", port, out.String(), a.log())
		}
	}
}
