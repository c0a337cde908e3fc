package config

import (
	"strings"
	"testing"
	"time"
)

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown key with suggestion", "http:\n  public:\n    listne: 1.2.3.4:80\n",
			[]string{`bridge.yaml:3: http.public.listne: unknown key (did you mean "listen"?)`}},
		{"unknown key camel case", "dataDir: x\n", []string{`bridge.yaml:1: dataDir: unknown key (did you mean "data_dir"?)`}},
		{"unknown key lists known keys", "log:\n  zzzzzzzz: 1\n", []string{`log.zzzzzzzz: unknown key (known keys here: level, format)`}},
		{"unknown top-level key", "foo: 1\n", []string{"bridge.yaml:1: foo: unknown key"}},
		{"unknown ldap key", "directories:\n  - name: corp\n    type: ldap\n    ldap:\n      ur1: ldaps://x\n",
			[]string{`bridge.yaml:5: directories[0].ldap.ur1: unknown key (did you mean "url"?)`}},
		{"every decode problem at once", "foo: 1\nlog:\n  bar: 2\n", []string{"bridge.yaml:1: foo", "bridge.yaml:3: log.bar"}},
		{"invalid duration", "storage:\n  sweep_interval: 5x\n", []string{`bridge.yaml:2: storage.sweep_interval: invalid duration "5x"`}},
		{"duration without unit", "totp:\n  period: 30\n", []string{`totp.period: invalid duration "30"`}},
		{"integer", "totp:\n  digits: six\n", []string{`bridge.yaml:2: totp.digits: expected an integer, got "six"`}},
		{"integer out of range", "totp:\n  digits: 99999999999999999999\n", []string{"totp.digits: integer", "out of range"}},
		{"uint8 overflow", "passwords:\n  argon2id:\n    threads: 300\n", []string{`passwords.argon2id.threads: expected an integer from 0 to 255, got "300"`}},
		{"negative uint", "passwords:\n  argon2id:\n    memory_kib: -1\n", []string{"passwords.argon2id.memory_kib: expected an integer from 0 to 4294967295"}},
		{"bool", "dev_mode: yes\n", []string{`bridge.yaml:1: dev_mode: expected true or false, got "yes"`}},
		{"mapping expected", "http: 8080\n", []string{`bridge.yaml:1: http: expected a mapping (key: value lines), got the value "8080"`}},
		{"scalar expected", "log:\n  level: [a, b]\n", []string{"bridge.yaml:2: log.level: expected a single value, got a list"}},
		{"list expected", "directories:\n  name: x\n", []string{"bridge.yaml:2: directories: expected a list"}},
		{"list item not a mapping", "directories:\n  - local\n", []string{"bridge.yaml:2: directories[0]: expected a mapping"}},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", []string{"bridge.yaml:3: log.level: duplicate key (first set on line 2)"}},
		{"duplicate section", "log: {}\nlog: {}\n", []string{"bridge.yaml:2: log: duplicate key"}},
		{"two documents", "dev_mode: true\n---\ndev_mode: false\n", []string{"bridge.yaml:2: more than one YAML document"}},
		{"top level list", "- a\n- b\n", []string{"bridge.yaml:1: the top level must be a mapping of keys (key: value), not a list"}},
		{"top level scalar", "hello\n", []string{"the top level must be a mapping"}},
		{"empty", "", []string{"bridge.yaml: file is empty"}},
		{"only comments", "# nothing\n\n", []string{"file is empty"}},
		{"null document", "~\n", []string{"file is empty"}},
		{"document marker only", "---\n", []string{"file is empty"}},
		{"anchor", "log: &l\n  level: info\n", []string{"bridge.yaml:1: YAML anchors and aliases"}},
		{"alias", "log:\n  level: &x info\n  format: *x\n", []string{"bridge.yaml:2: YAML anchors", "bridge.yaml:3: YAML anchors"}},
		{"merge key", "x: &a {level: info}\nlog:\n  <<: *a\n", []string{"bridge.yaml:1: YAML anchors", "bridge.yaml:3: YAML anchors"}},
		{"custom tag", "log:\n  level: !secret info\n", []string{`bridge.yaml:2: log.level: unsupported YAML tag "!secret"`}},
		{"binary tag", "keys:\n  kek: !!binary aGVsbG8=\n", []string{`keys.kek: unsupported YAML tag "!!binary"`}},
		{"non-scalar key", "? [a]\n: b\n", []string{"bridge.yaml:1: keys must be plain names"}},
		{"syntax error", "log:\n  level: info\n format: text\n", []string{"bridge.yaml:2: invalid YAML: did not find expected key"}},
		{"unterminated quote", "log:\n  level: \"info\n", []string{"invalid YAML"}},
		{"tab indentation", "log:\n\tlevel: info\n", []string{"invalid YAML"}},
		{"unset variable", "log:\n  level: ${BRIDGE_LEVEL}\n", []string{"bridge.yaml:2: log.level: environment variable BRIDGE_LEVEL is not set"}},
		{"bad variable name", "log:\n  level: ${1X}\n", []string{`log.level: invalid environment variable name "1X"`}},
		{"unterminated variable", "log:\n  level: ${X\n", []string{`log.level: unterminated "${"`}},
		{"expanded value type-checked, named by its variable", "totp:\n  digits: ${DIGITS}\n", []string{`bridge.yaml:2: totp.digits: expected an integer, got the value of ${DIGITS}`}},
		{"too large", "log: {}\n" + strings.Repeat("#", maxFileSize), []string{"bridge.yaml: file is larger than 1048576 bytes"}},
		{"deep nesting", strings.Repeat("[", 20000), []string{"invalid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, tt.src, "", map[string]string{"DIGITS": "six"})
			wantErr(t, err, tt.want...)
		})
	}
}

func TestBillionLaughs(t *testing.T) {
	var b strings.Builder
	b.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(n + ": &" + n + " [")
		for i := range 9 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	start := time.Now()
	_, err := parseString(t, b.String(), "", nil)
	wantErr(t, err, "YAML anchors and aliases")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s: aliases were expanded", d)
	}
}

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"A": "x", "EMPTY": "", "PASS": "p$ss${B}"})
	tests := []struct {
		name, in, want, err string
	}{
		{"plain", "abc", "abc", ""},
		{"variable", "${A}", "x", ""},
		{"inside text", "https://${A}:8443/p", "https://x:8443/p", ""},
		{"two variables", "${A}${A}", "xx", ""},
		{"empty variable", "a${EMPTY}b", "ab", ""},
		{"value is not expanded again", "${PASS}", "p$ss${B}", ""},
		{"dollar dollar", "$$", "$", ""},
		{"escaped variable", "$${A}", "${A}", ""},
		{"lone dollar kept", "pa$word", "pa$word", ""},
		{"trailing dollar", "a$", "a$", ""},
		{"dollar before brace text", "$a{b}", "$a{b}", ""},
		{"unset", "${NOPE}", "", "environment variable NOPE is not set"},
		{"unterminated", "${A", "", "unterminated"},
		{"empty name", "${}", "", "invalid environment variable name"},
		{"bad name", "${A-B}", "", "invalid environment variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expand(tt.in, env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestEnvInValues(t *testing.T) {
	env := map[string]string{"HOST": "mfa.example.com", "LEVEL": "debug", "SWEEP": "2m", "DIGITS": "8", "DEV": "true", "KEK": testKEK}
	src := `dev_mode: ${DEV}
log:
  level: ${LEVEL}
storage:
  sweep_interval: ${SWEEP}
keys:
  kek: ${KEK}
http:
  public:
    listen: 127.0.0.1:8080
    base_url: https://${HOST}
    allow_plain_http: true
totp:
  digits: ${DIGITS}
  issuer: "Cost $$5"
`
	c, err := parseString(t, src, "", env)
	if err != nil {
		t.Fatal(err)
	}
	if !c.DevMode || c.Log.Level != "debug" || c.Storage.SweepInterval != 2*time.Minute ||
		c.HTTP.Public.BaseURL != "https://mfa.example.com" || c.TOTP.Digits != 8 || c.TOTP.Issuer != "Cost $5" {
		t.Errorf("expansion: %+v", c.File)
	}
	if len(c.KEK) != 32 {
		t.Errorf("KEK = %d bytes", len(c.KEK))
	}
	for _, w := range c.Warnings {
		if strings.Contains(w, "keys.kek") {
			t.Errorf("warning for a KEK from the environment: %s", w)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"listen", "base_url", "tls", "allow_plain_http"}
	tests := []struct{ in, want string }{
		{"listne", `(did you mean "listen"?)`},
		{"baseurl", `(did you mean "base_url"?)`},
		{"allowPlainHTTP", `(did you mean "allow_plain_http"?)`},
		{"certificate", "(known keys here: listen, base_url, tls, allow_plain_http)"},
		{strings.Repeat("x", 1000), "(known keys here"},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, known); !strings.Contains(got, tt.want) {
			t.Errorf("suggest(%.20q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDecodeThenValidate checks that problems found while decoding and
// those Validate finds are reported together, without a second complaint
// about a value that did not decode.
func TestDecodeThenValidate(t *testing.T) {
	src := "storage:\n  driver: mysql\nhttp:\n  public:\n    listne: 1\n    allow_plain_http: true\ntotp:\n  digits: six\ndirectories:\n  - oops\n"
	_, err := parseString(t, src, "", nil)
	wantErr(t, err,
		"bridge.yaml:2: storage.driver: unknown value",
		"bridge.yaml:5: http.public.listne: unknown key",
		`bridge.yaml:8: totp.digits: expected an integer, got "six"`,
		"bridge.yaml:10: directories[0]: expected a mapping",
		"keys.kek_file: a key-encryption key is required")
	for _, not := range []string{"must be 6 or 8", "directories[0].name", "directories[0].type"} {
		if strings.Contains(err.Error(), not) {
			t.Errorf("error repeats a decoding problem as %q:\n%v", not, err)
		}
	}
}

func TestTooManyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("directories:\n")
	for range 300 {
		b.WriteString("  - {name: X, type: y}\n")
	}
	_, err := parseString(t, b.String(), "", nil)
	wantErr(t, err, "too many problems; stopping here")
	if n := len(flatten(err)); n != maxErrors+1 {
		t.Errorf("%d problems, want %d", n, maxErrors+1)
	}
}
