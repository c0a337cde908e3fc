package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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

// TestExampleLDAP uncomments the LDAP example in examples/bridge.yaml (the
// lines between "(begin LDAP example)" and "(end LDAP example)") and checks
// that it is valid too.
func TestExampleLDAP(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in, found := false, false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.Contains(line, "(begin LDAP example)"):
			in, found = true, true
		case strings.Contains(line, "(end LDAP example)"):
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
		t.Fatal("no (begin LDAP example) marker in examples/bridge.yaml")
	}
	abs, _ := filepath.Abs("../examples")
	c, err := Parse([]byte(strings.Join(out, "\n")), "bridge.yaml", abs, envOf(map[string]string{"LDAP_BIND_PASSWORD": "secret"}))
	if err != nil {
		t.Fatalf("the LDAP example does not load:\n%v\n%s", err, strings.Join(out, "\n"))
	}
	if len(c.Directory) != 2 || c.Directory[1].LDAP == nil || c.Directory[1].LDAP.BindPassword != "secret" {
		t.Errorf("directories %+v", c.Directory)
	}
}
