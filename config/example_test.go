package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const examplePath = "../examples/bridge.yaml"

// TestExampleConfig loads examples/bridge.yaml as is, as
// `bridge serve --config examples/bridge.yaml` does on a fresh clone, so
// that the example cannot rot.
func TestExampleConfig(t *testing.T) {
	t.Setenv("LDAP_BIND_PASSWORD", "") // the example must not need it
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("examples/bridge.yaml does not load:\n%v", err)
	}
	examples, err := filepath.Abs("../examples")
	if err != nil {
		t.Fatal(err)
	}
	if !c.DevMode || c.KEK != nil {
		t.Errorf("dev_mode %v, KEK %x: the example is a dev-mode trial", c.DevMode, c.KEK)
	}
	if c.DataDir != filepath.Join(examples, "data") || c.Storage.Driver != "sqlite" ||
		c.Storage.SQLite.Path != filepath.Join(examples, "data", "bridge.db") {
		t.Errorf("data_dir %q, storage %+v", c.DataDir, c.Storage)
	}
	if c.DevKEKPath() != filepath.Join(examples, "data", "dev.kek") {
		t.Errorf("DevKEKPath %q", c.DevKEKPath())
	}
	if c.HTTP.Public.Listen != "127.0.0.1:8080" || !c.HTTP.Public.AllowPlainHTTP || c.HTTP.Admin.Listen != "127.0.0.1:9090" {
		t.Errorf("http %+v", c.HTTP)
	}
	if len(c.Directory) != 1 || c.Directory[0].Name != "local" || c.Directory[0].Type != "local" {
		t.Errorf("directories %+v", c.Directory)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "dev_mode") {
		t.Errorf("warnings %q, want just dev_mode", c.Warnings)
	}
}

// uncommentExample returns examples/bridge.yaml with the example between
// "(begin NAME example)" and "(end NAME example)" uncommented: one "# " is
// removed from each line between the markers.
func uncommentExample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in, found := false, false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.Contains(line, "(begin "+name+" example)"):
			in, found = true, true
		case strings.Contains(line, "(end "+name+" example)"):
			in = false
		case in:
			indent := len(line) - len(strings.TrimLeft(line, " "))
			rest, ok := strings.CutPrefix(line[indent:], "# ")
			if !ok {
				continue // the explanation before the example
			}
			line = line[:indent] + rest
		}
		out = append(out, line)
	}
	if !found {
		t.Fatalf("no (begin %s example) marker in examples/bridge.yaml", name)
	}
	return []byte(strings.Join(out, "\n"))
}

// TestExampleLDAP uncomments the LDAP example in examples/bridge.yaml and
// checks that it is valid too.
func TestExampleLDAP(t *testing.T) {
	data := uncommentExample(t, "LDAP")
	abs, _ := filepath.Abs("../examples")
	c, err := Parse(data, "bridge.yaml", abs, envOf(map[string]string{"LDAP_BIND_PASSWORD": "secret"}))
	if err != nil {
		t.Fatalf("the LDAP example does not load:\n%v\n%s", err, data)
	}
	if len(c.Directory) != 2 || c.Directory[1].LDAP == nil || c.Directory[1].LDAP.BindPassword != "secret" {
		t.Errorf("directories %+v", c.Directory)
	}
}

// TestExamplePush uncomments the push example in examples/bridge.yaml and
// checks that it is valid and that the values it shows are the defaults.
func TestExamplePush(t *testing.T) {
	data := uncommentExample(t, "push")
	if !strings.Contains(string(data), "\npush:\n") {
		t.Fatalf("no push section in the uncommented example:\n%s", data)
	}
	abs, _ := filepath.Abs("../examples")
	c, err := Parse(data, "bridge.yaml", abs, envOf(nil))
	if err != nil {
		t.Fatalf("the push example does not load:\n%v\n%s", err, data)
	}
	for _, p := range keyPaths(reflect.TypeFor[Push](), "push") {
		if strings.Count(p, ".") == 1 && !c.has(p) {
			t.Errorf("the push example does not show %s", p)
		}
	}
	def, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Push, def.Push) {
		t.Errorf("the push example shows other values than the defaults:\n got %+v\nwant %+v", c.Push, def.Push)
	}
	if len(c.Warnings) != 1 {
		t.Errorf("warnings %q, want just dev_mode", c.Warnings)
	}
}

// TestExampleRADIUS uncomments the RADIUS example in examples/bridge.yaml
// and checks that it is valid, with its secret file moved to a test file
// and its ${BRIDGE_RADIUS_SECRET} set.
func TestExampleRADIUS(t *testing.T) {
	const secretFile = "/etc/bridge/radius/vpn.secret"
	data := uncommentExample(t, "RADIUS")
	if !strings.Contains(string(data), "\nradius:\n") || !strings.Contains(string(data), secretFile) {
		t.Fatalf("no radius section with secret_file %s in the uncommented example:\n%s", secretFile, data)
	}
	tmp := t.TempDir()
	file := writeFile(t, tmp, "vpn.secret", "0123456789abcdef0123456789abcdef\n")
	data = []byte(strings.ReplaceAll(string(data), secretFile, file))
	abs, _ := filepath.Abs("../examples")
	env := map[string]string{"BRIDGE_RADIUS_SECRET": "fedcba9876543210fedcba9876543210"}
	c, err := Parse(data, "bridge.yaml", abs, envOf(env))
	if err != nil {
		t.Fatalf("the RADIUS example does not load:\n%v\n%s", err, data)
	}
	r := c.Radius
	if !r.Enabled() || len(r.Clients) != 2 || r.Listen != "0.0.0.0:1812" || r.AccountingListen != "0.0.0.0:1813" {
		t.Fatalf("radius %+v", r)
	}
	vpn, fw := r.Clients[0], r.Clients[1]
	if vpn.Wait != "hold" || vpn.NumberMatching || vpn.Secret != "0123456789abcdef0123456789abcdef" ||
		fw.Wait != "challenge" || !fw.NumberMatching || fw.Secret != env["BRIDGE_RADIUS_SECRET"] {
		t.Errorf("clients %+v", r.Clients)
	}
	for _, rc := range r.Clients {
		if _, err := rc.Reply.Values(); err != nil {
			t.Errorf("%s: %v", rc.Name, err)
		}
		for _, g := range rc.Reply.Groups {
			if _, err := g.Values(); err != nil {
				t.Errorf("%s: %s: %v", rc.Name, g.Group, err)
			}
		}
	}
	if len(c.Warnings) != 1 {
		t.Errorf("warnings %q, want just dev_mode", c.Warnings)
	}
}

// TestExampleWeb uncomments the web example in examples/bridge.yaml and
// checks that it is valid and that the values it shows are the defaults;
// then uncomments its CAPTCHA too.
func TestExampleWeb(t *testing.T) {
	data := uncommentExample(t, "web")
	if !strings.Contains(string(data), "\nweb:\n") {
		t.Fatalf("no web section in the uncommented example:\n%s", data)
	}
	abs, _ := filepath.Abs("../examples")
	c, err := Parse(data, "bridge.yaml", abs, envOf(nil))
	if err != nil {
		t.Fatalf("the web example does not load:\n%v\n%s", err, data)
	}
	for _, p := range keyPaths(reflect.TypeFor[Web](), "web") {
		if strings.Count(p, ".") == 1 && !c.has(p) {
			t.Errorf("the web example does not show %s", p)
		}
	}
	def, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Web, def.Web) {
		t.Errorf("the web example shows other values than the defaults:\n got %+v\nwant %+v", c.Web, def.Web)
	}
	if len(c.Warnings) != 1 {
		t.Errorf("warnings %q, want just dev_mode", c.Warnings)
	}

	// The CAPTCHA: one more "# " off the lines from "# captcha:" to the
	// end of the section, with its secret file moved to a test file.
	const secretFile = "/etc/bridge/captcha.secret"
	lines := strings.Split(string(data), "\n")
	in := false
	for i, line := range lines {
		switch {
		case line == "  # captcha:":
			in = true
		case !strings.HasPrefix(line, "  # "):
			in = false
		}
		if in {
			lines[i] = "  " + strings.TrimPrefix(line, "  # ")
		}
	}
	captcha := strings.Join(lines, "\n")
	if !strings.Contains(captcha, "\n  captcha:\n    provider: turnstile\n") || !strings.Contains(captcha, secretFile) {
		t.Fatalf("no captcha with secret_file %s in the uncommented example:\n%s", secretFile, captcha)
	}
	file := writeFile(t, t.TempDir(), "captcha.secret", "1x0000000000000000000000000000000AA\n")
	c, err = Parse([]byte(strings.ReplaceAll(captcha, secretFile, file)), "bridge.yaml", abs, envOf(nil))
	if err != nil {
		t.Fatalf("the CAPTCHA example does not load:\n%v\n%s", err, captcha)
	}
	if cp := c.Web.Captcha; !cp.Enabled() || cp.Secret != "1x0000000000000000000000000000000AA" || cp.AfterFailures != 0 ||
		cp.VerifyURL != captchaProviders["turnstile"].verifyURL || cp.Timeout != 5*time.Second {
		t.Errorf("captcha %+v", cp)
	}
	if len(c.Warnings) != 1 {
		t.Errorf("warnings %q, want just dev_mode", c.Warnings)
	}
}

// TestExampleOIDC uncomments the OIDC example in examples/bridge.yaml and
// checks that it is valid, with its secret file moved to a test file, and
// that the lifetimes it shows are the defaults.
func TestExampleOIDC(t *testing.T) {
	const secretFile = "/etc/bridge/oidc/wiki.secret"
	data := uncommentExample(t, "OIDC")
	if !strings.Contains(string(data), "\noidc:\n") || !strings.Contains(string(data), secretFile) {
		t.Fatalf("no oidc section with secret_file %s in the uncommented example:\n%s", secretFile, data)
	}
	file := writeFile(t, t.TempDir(), "wiki.secret", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n")
	data = []byte(strings.ReplaceAll(string(data), secretFile, file))
	abs, _ := filepath.Abs("../examples")
	c, err := Parse(data, "bridge.yaml", abs, envOf(nil))
	if err != nil {
		t.Fatalf("the OIDC example does not load:\n%v\n%s", err, data)
	}
	o := c.OIDC
	if !o.Enabled() || len(o.Clients) != 2 || !slices.Equal(o.Algorithms(), []string{"ES256"}) {
		t.Fatalf("oidc %+v", o)
	}
	def := mustParse(t, trial("oidc:\n  clients:\n    - {id: x, redirect_uris: ['http://127.0.0.1/']}\n"))
	lifetimes := func(o OIDC) OIDC { o.Clients = nil; return o }
	if !reflect.DeepEqual(lifetimes(o), lifetimes(def.OIDC)) {
		t.Errorf("the OIDC example shows other values than the defaults:\n got %+v\nwant %+v", lifetimes(o), lifetimes(def.OIDC))
	}
	wiki, cli := o.Clients[0], o.Clients[1]
	if wiki.ID != "wiki" || wiki.Public() || wiki.AuthMethod != "client_secret_basic" || len(wiki.Secret) != 64 ||
		!slices.Equal(wiki.RedirectURIs, []string{"https://wiki.example.com/redirect_uri"}) || !wiki.NumberMatching || !wiki.SessionReuse ||
		!slices.Equal(wiki.Scopes, def.OIDC.Clients[0].Scopes) {
		t.Errorf("wiki %+v", wiki)
	}
	if !cli.Public() || cli.Secret != "" || len(cli.RedirectURIs) != 2 || cli.Directory != "local" {
		t.Errorf("public client %+v", cli)
	}
	if got := c.OIDCIssuer(); got != "http://localhost:8080/oidc" {
		t.Errorf("issuer %q", got)
	}
	if len(c.Warnings) != 1 {
		t.Errorf("warnings %q, want just dev_mode", c.Warnings)
	}
}
