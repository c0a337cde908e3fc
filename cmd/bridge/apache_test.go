package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
)

// Apache httpd with mod_auth_openidc as the relying party, configured as
// examples/oidc-apache says: the test reads the example's files and only
// moves them to local addresses, so the example cannot rot.

const (
	apacheBin          = "/usr/sbin/apache2"
	apacheModules      = "/usr/lib/apache2/modules"
	apacheExampleDir   = "../../examples/oidc-apache/"
	wikiExampleSite    = "https://wiki.example.com"
	wikiExampleBridge  = "https://mfa.example.com"
	wikiExampleSecrets = "/etc/apache2/wiki-oidc.secrets"
	wikiExampleSecret  = "/etc/bridge/oidc/wiki.secret"
)

// requireApache skips (fails in CI) without apache2 and mod_auth_openidc.
func requireApache(t *testing.T) {
	t.Helper()
	for _, f := range []string{apacheBin, filepath.Join(apacheModules, "mod_auth_openidc.so")} {
		if _, err := os.Stat(f); err != nil {
			testenv.Unavailable(t, "apache", "apt-get install apache2 libapache2-mod-auth-openidc")
		}
	}
}

// apacheExampleBlock returns the lines of file between the markers "# (begin
// NAME)" and "# (end NAME)" (or, for a Markdown file, the first fenced
// block of language NAME), with the replacements old→new made; each old
// string must occur.
func apacheExampleBlock(t *testing.T, file, name string, replace ...string) string {
	t.Helper()
	data, err := os.ReadFile(apacheExampleDir + file)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "# (begin "+name+")\n", "# (end "+name+")"
	if strings.HasSuffix(file, ".md") {
		begin, end = "```"+name+"\n", "```"
	}
	_, rest, ok := strings.Cut(string(data), begin)
	block, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("%s: no %q block; update this test with the example", file, name)
	}
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(block, replace[i]) {
			t.Fatalf("%s: the %q block no longer contains %q; update this test with the example", file, name, replace[i])
		}
		block = strings.ReplaceAll(block, replace[i], replace[i+1])
	}
	return block
}

// apache is a running httpd.
type apache struct {
	base     string // http://127.0.0.1:PORT
	dir      string
	errorLog string
}

// startApache runs httpd on port with the site directives of
// examples/oidc-apache/wiki.conf (edited by edit) in a virtual host, for
// the bridge b, until the test ends. The test adds response headers that
// show what applications behind it see (REMOTE_USER, the sub claim and
// the ID token).
func startApache(t *testing.T, b *liveBridge, port int, edit func(string) string) *apache {
	t.Helper()
	a := &apache{base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: t.TempDir()}
	a.errorLog = filepath.Join(a.dir, "error.log")

	secrets := filepath.Join(a.dir, "wiki-oidc.secrets")
	if err := os.WriteFile(secrets, fmt.Appendf(nil, "OIDCClientSecret %s\nOIDCCryptoPassphrase %s\n", oidcSecret, rand.Text()), 0o600); err != nil {
		t.Fatal(err)
	}
	site := apacheExampleBlock(t, "wiki.conf", "OIDC",
		wikiExampleBridge, b.baseURL(),
		wikiExampleSite, a.base,
		wikiExampleSecrets, secrets)
	if edit != nil {
		site = edit(site)
	}

	return runApache(t, a, port, []string{"auth_openidc"}, "auth_openidc:info", site, `    # The test's window on what the site's applications see.
    OIDCPassIDTokenAs claims serialized
    <Location />
        Header always set X-Remote-User "expr=%{REMOTE_USER}"
        Header always set X-Claim-Sub "%{OIDC_CLAIM_sub}e"
        Header always set X-ID-Token "%{OIDC_id_token}e"
    </Location>`)
}

func (a *apache) log() string {
	data, _ := os.ReadFile(a.errorLog)
	return string(data)
}

// apacheAuditEvent is an event of `bridge audit tail --json`.
type apacheAuditEvent struct {
	Action, Subject, Result, Reason string
	Details                         map[string]string
}

// authorizeFailures returns the bridge's audited refusals of
// authorization requests.
func authorizeFailures(t *testing.T, b *liveBridge) []apacheAuditEvent {
	t.Helper()
	var events []apacheAuditEvent
	for _, line := range strings.Split(strings.TrimSpace(b.cli("", "audit", "tail", "-n", "100000", "--json")), "\n") {
		var e apacheAuditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit tail: %v: %q", err, line)
		}
		if strings.HasSuffix(e.Action, "authorize") && e.Result == "failure" {
			events = append(events, e)
		}
	}
	return events
}

func TestApacheModAuthOpenIDC(t *testing.T) {
	requireApache(t)
	port := freePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	// The bridge's side of the example, as its README has it.
	b := startOIDCBridge(t, apacheExampleBlock(t, "README.md", "yaml",
		wikiExampleSite, site,
		wikiExampleSecret, "oidc.secret"))
	b.cli(password+"\n", "users", "add", "alice", "--password-stdin", "--email", "alice@example.com", "--display-name", "Alice Liddell")
	phone := b.enroll("alice")

	t.Run("example", func(t *testing.T) {
		a := startApache(t, b, port, nil)
		br := htmlBrowser(t)
		wait := signIn(t, br, a.base+"/", "alice")
		landed := approve(t, b, br, wait, phone)
		if landed.status != http.StatusOK || !strings.Contains(landed.body, "Welcome to the wiki") || landed.url.String() != a.base+"/" {
			t.Fatalf("after approval the browser is at %s with %d:\n%s\nvisits: %v", landed.url, landed.status, landed.body, br.visits)
		}
		// The code came back with iss (RFC 9207), and mod_auth_openidc
		// exchanged it with PKCE (the bridge requires it) and accepted the
		// ID token: ES256, the bridge's default.
		var cb *url.URL
		for _, v := range br.visits {
			if u, _ := url.Parse(v); u != nil && u.Path == "/redirect_uri" {
				cb = u
			}
		}
		if cb == nil || cb.Query().Get("code") == "" || cb.Query().Get("iss") != b.issuer() {
			t.Fatalf("no authorization response with code and iss=%s: %v", b.issuer(), br.visits)
		}
		for _, v := range br.visits {
			if u, _ := url.Parse(v); u != nil && u.Path == "/oidc/authorize" && u.Query().Get("code_challenge_method") != "S256" {
				t.Errorf("mod_auth_openidc sent no S256 code challenge: %s", v)
			}
		}

		// What applications behind the site see; the session cookie
		// keeps the user signed in without the bridge.
		before := len(br.visits)
		resp, err := br.c.Get(a.base + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(br.visits) != before {
			t.Fatalf("second visit: %d, redirected through %v", resp.StatusCode, br.visits[before:])
		}
		if got := resp.Header.Get("X-Remote-User"); got != "alice@example.com" {
			t.Errorf("REMOTE_USER = %q, want alice@example.com (OIDCRemoteUserClaim email)", got)
		}
		if got := resp.Header.Get("X-Claim-Sub"); got != "alice" {
			t.Errorf("OIDC_CLAIM_sub = %q, want alice", got)
		}
		if alg := jwsAlg(t, resp.Header.Get("X-ID-Token")); alg != "ES256" {
			t.Errorf("mod_auth_openidc accepted an ID token signed with %q, want ES256 (the default)", alg)
		}
		if n := auditCount(t, b, "oidc.authorize", "alice"); n != 1 {
			t.Errorf("%d oidc.authorize events for alice, want 1", n)
		}
		if t.Failed() {
			t.Logf("visits: %v", br.visits)
		}
	})

	// mod_auth_openidc's defaults send no PKCE: the bridge refuses the
	// request, and the user sees Apache's error page.
	t.Run("defaults without PKCE", func(t *testing.T) {
		a := startApache(t, b, port, func(conf string) string {
			const line = "    OIDCPKCEMethod S256\n"
			if !strings.Contains(conf, line) {
				t.Fatalf("the example has no %q", line)
			}
			return strings.Replace(conf, line, "", 1)
		})
		failures := len(authorizeFailures(t, b))
		br := htmlBrowser(t)
		landed := br.get(a.base + "/")
		var authz, cb *url.URL
		for _, v := range br.visits {
			u, _ := url.Parse(v)
			switch {
			case u == nil:
			case u.Path == "/oidc/authorize":
				authz = u
			case u.Path == "/redirect_uri":
				cb = u
			}
		}
		if authz == nil || authz.Query().Get("code_challenge") != "" {
			t.Fatalf("expected an authorization request without PKCE: %v", br.visits)
		}
		if cb == nil || cb.Query().Get("error") != "invalid_request" || cb.Query().Get("iss") != b.issuer() ||
			cb.Query().Get("state") != authz.Query().Get("state") || !strings.Contains(cb.Query().Get("error_description"), "PKCE is required") {
			t.Fatalf("expected the bridge to answer invalid_request (PKCE is required) with iss and state: %v", br.visits)
		}
		// mod_auth_openidc 2.4.12 takes a redirect with iss (RFC 9207)
		// and without code for a third-party-initiated login, so the user
		// sees an error page that does not name the real cause (in 2.4.12:
		// 200, "Invalid Request", "SSO to this module without specifying
		// a target_link_uri parameter is not possible because
		// OIDCDefaultURL is not set"), and Apache logs nothing about it.
		text := visibleText(landed.body)
		if landed.url.Path != "/redirect_uri" || !strings.Contains(text, "Error") || strings.Contains(landed.body, "Welcome to the wiki") {
			t.Fatalf("after the refusal the browser is at %s with %d:\n%s", landed.url, landed.status, landed.body)
		}
		t.Logf("without OIDCPKCEMethod the user sees Apache's answer %d at %s:\n%s", landed.status, landed.url.Path, text)
		t.Logf("apache error log:\n%s", a.log())
		events := authorizeFailures(t, b)
		if len(events) != failures+1 || events[len(events)-1].Details["client_id"] != "wiki" || !strings.Contains(events[len(events)-1].Reason, "PKCE") {
			t.Errorf("the refusal was not audited as a PKCE failure of wiki: %+v", events)
		}
	})

	// A redirect URI the bridge does not know: the bridge shows its own
	// error page and never sends the browser back.
	t.Run("unregistered redirect URI", func(t *testing.T) {
		a := startApache(t, b, port, func(conf string) string {
			line := "OIDCRedirectURI " + site + "/redirect_uri\n"
			if !strings.Contains(conf, line) {
				t.Fatalf("the example has no %q", line)
			}
			return strings.Replace(conf, line, "OIDCRedirectURI "+site+"/redirect_uri/\n", 1)
		})
		br := htmlBrowser(t)
		landed := br.get(a.base + "/")
		if landed.status != http.StatusBadRequest || landed.url.Path != "/oidc/authorize" || !strings.Contains(landed.body, "Go back to the application and sign in again") ||
			!strings.Contains(landed.body, "redirect_uri that is not registered") {
			t.Fatalf("unregistered redirect URI: %d at %s:\n%s", landed.status, landed.url, landed.body)
		}
		t.Logf("the user sees the bridge's answer %d:\n%s", landed.status, visibleText(landed.body))
	})
}

// htmlBrowser is newBrowser that asks for HTML, as browsers do:
// mod_auth_openidc answers 401 instead of redirecting to the bridge when a
// request does not accept text/html (it takes it for an API call).
func htmlBrowser(t *testing.T) *browser {
	br := newBrowser(t)
	br.c.Transport = acceptHTML{http.DefaultTransport}
	return br
}

type acceptHTML struct{ next http.RoundTripper }

func (a acceptHTML) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	return a.next.RoundTrip(req)
}

// visibleText is roughly what a browser shows of an HTML page.
func visibleText(page string) string {
	tags := regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>|<[^>]+>`)
	spaces := regexp.MustCompile(`\s*\n\s*`)
	return strings.TrimSpace(spaces.ReplaceAllString(html.UnescapeString(tags.ReplaceAllString(page, "\n")), "\n"))
}

// runApache runs Apache in the foreground on 127.0.0.1:port, from a config
// in a.dir: the base modules plus modules, the example's site directives
// and probe (directives that show the test what the site sees), serving a
// wiki page. It stops Apache when the test ends and logs its config,
// output and error log if the test failed.
func runApache(t *testing.T, a *apache, port int, modules []string, logLevel, site, probe string) *apache {
	t.Helper()
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
	for _, m := range append([]string{"mpm_prefork", "authn_core", "authz_core", "authz_user", "headers", "mime", "dir"}, modules...) {
		fmt.Fprintf(&mods, "LoadModule %s_module %s/mod_%s.so\n", m, apacheModules, m)
	}
	conf := fmt.Sprintf(`ServerRoot %[1]s
DefaultRuntimeDir %[1]s
PidFile %[1]s/httpd.pid
ErrorLog %[2]s
LogLevel warn %[8]s
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
%[9]s
</VirtualHost>
`, a.dir, a.errorLog, mods.String(), user, port, docroot, site, logLevel, probe)
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
