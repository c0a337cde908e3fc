package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/bridge-idp/bridge/keys"
)

// Config is a loaded and validated bridge.yaml: the File with every default
// applied, relative paths made absolute against the config file's
// directory, and the secrets resolved. Build it with Load or Parse.
//
// Resolved in place in File: Storage.Postgres.DSN holds the DSN read from
// dsn_file, and each LDAP directory's BindPassword the password read from
// bind_password_file; Keys.KEK holds the KEK text read from kek_file,
// HTTP.AdminAPI.Token the token read from token_file,
// Push.FraudWebhook.Secret the secret read from secret_file, each RADIUS
// client's Secret the shared secret read from its secret_file,
// Web.Captcha.Secret the secret read from secret_file, and each OIDC
// client's Secret the client secret read from its secret_file and JWKS the
// key set read from its jwks_file, and App.AttestationRootCerts the
// certificates read from app.attestation_roots. PushState resolves push.state auto;
// OIDCIssuer gives the OpenID Provider's issuer.
type Config struct {
	File

	// Source is the config file as named to Load (or the source given to
	// Parse); errors and warnings start with it.
	Source string

	// KEK is the 32-byte key-encryption key from keys.kek or
	// keys.kek_file. It is nil only in dev mode when neither is set: serve
	// then uses (and creates) the key in DevKEKPath.
	KEK []byte

	// Warnings lists every setting weaker than the default (dev_mode, plain
	// HTTP on a non-loopback address, LDAP without certificate checks, ...),
	// one line each in the same format as errors. serve logs each at every
	// start.
	Warnings []string

	// lines maps key paths ("http.public.listen", "directories[0].ldap")
	// to their line in the file, for error messages.
	lines map[string]int

	// fromEnv holds the values written with ${ENV}, by key path, so that
	// messages name their variables instead of quoting them.
	fromEnv map[string]envUse
}

// DevKEKPath is where a dev-mode node keeps its generated KEK:
// data_dir/dev.kek. The config package never writes it.
func (c *Config) DevKEKPath() string { return filepath.Join(c.DataDir, "dev.kek") }

// Load reads, decodes, completes and validates the config file at path,
// with ${ENV} expanded from the process environment. Relative paths in the
// file are relative to the file's directory. The error lists every problem,
// one per line, as "file:line: key: problem".
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data, path, filepath.Dir(abs), os.LookupEnv)
}

// Parse is Load for a config held in memory. source names it in errors
// (usually the file name); relative paths are made absolute against baseDir
// (the current directory if empty); env looks up ${NAME} (os.LookupEnv if
// nil). Files named by *_file and tls keys are read from disk.
func Parse(data []byte, source, baseDir string, env func(string) (string, bool)) (*Config, error) {
	return parse(data, source, baseDir, env, readFile, fileMode)
}

// parse is Parse with the file reader (and the stat of secret files, for
// their permission warning) injected, so that fuzzing never touches the
// real file system.
func parse(data []byte, source, baseDir string, env func(string) (string, bool),
	read func(string) ([]byte, error), mode func(string) (fs.FileMode, error)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	base, err := filepath.Abs(baseDir)
	if err != nil {
		return nil, fmt.Errorf("config: base directory: %w", err)
	}
	d := newDecoder(source, env)
	root := d.document(data)
	if root == nil {
		return nil, joinErrors(d.errs)
	}
	var f File
	d.mapping(root, reflect.ValueOf(&f).Elem(), "")

	// Carry on after problems in keys or values, so that one run reports
	// them all; what a bad value would make Validate say is left out.
	c := &Config{File: f, Source: source, lines: d.lines, fromEnv: d.fromEnv}
	defaults(&c.File, func(path string) bool { return d.set[path] && !d.bad[path] })
	if u, ok := c.fromEnv["http.public.listen"]; ok && !d.set["http.public.base_url"] {
		// Derived from listen: as secret as listen.
		c.fromEnv["http.public.base_url"] = envUse{raw: u.raw, value: c.HTTP.Public.BaseURL}
	}
	if u, ok := c.fromEnv["radius.listen"]; ok && !d.set["radius.accounting_listen"] {
		c.fromEnv["radius.accounting_listen"] = envUse{raw: u.raw, value: c.Radius.AccountingListen}
	}
	c.makeAbsolute(base)
	r := resolver{c: c, read: read}
	r.secrets()
	errs := d.errs
	for _, e := range append(r.errs, c.validate(read)...) {
		if !d.underBad(e.Path) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	if c.Keys.KEK != "" {
		c.KEK, _ = keys.ParseKEK(c.Keys.KEK) // validate checked it
	}
	c.Warnings = c.warnings(r.files, mode)
	return c, nil
}

// Validate checks the completed config and reports every problem at once
// (errors.Join of *Error, sorted by line). Load and Parse call it; call it
// again after changing a Config in code.
func (c *Config) Validate() error { return joinErrors(c.validate(readFile)) }

// lineOf returns the line of path, or of its closest ancestor that is in the
// file (a defaulted key has no line of its own), or 0.
func (c *Config) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
	}
	return 0
}

// has reports whether path was written in the file (possibly empty).
func (c *Config) has(path string) bool {
	_, ok := c.lines[path]
	return ok
}

func (c *Config) newError(path, format string, args ...any) *Error {
	return &Error{Source: c.Source, Line: c.lineOf(path), Path: path, Msg: c.redact(path, fmt.Sprintf(format, args...), false)}
}

// show quotes the value s of path for a message or, when it came from the
// environment, names the variables instead ("the value of ${NAME}"): a
// secret such as a DSN or a KEK put under the wrong key must not end up in
// logs.
func (c *Config) show(path, s string) string {
	if u, ok := c.fromEnv[path]; ok {
		return envRef(u.raw)
	}
	return quote(s)
}

// showFile is show for a file name, quoted in full.
func (c *Config) showFile(path, file string) string {
	if u, ok := c.fromEnv[path]; ok {
		return envRef(u.raw)
	}
	return strconv.Quote(file)
}

// plain is show for a number or duration, written without quotes.
func (c *Config) plain(path string, v any) string {
	if u, ok := c.fromEnv[path]; ok {
		return envRef(u.raw)
	}
	return fmt.Sprint(v)
}

// redact replaces, in a message about path, the quoted values of path and
// of the keys under it that came from the environment with their variable
// names: the safety net for messages written elsewhere (the ldap package's
// Validate) or without show. With bare, it replaces the values unquoted
// too, when they are long enough not to match ordinary text by chance.
func (c *Config) redact(path, msg string, bare bool) string {
	for p, u := range c.fromEnv {
		if u.value == "" || (p != path && path != "" &&
			!strings.HasPrefix(p, path+".") && !strings.HasPrefix(p, path+"[")) {
			continue
		}
		ref := envRef(u.raw)
		msg = strings.ReplaceAll(msg, strconv.Quote(u.value), ref)
		msg = strings.ReplaceAll(msg, quote(u.value), ref)
		if bare && len(u.value) >= 8 {
			msg = strings.ReplaceAll(msg, u.value, ref)
		}
	}
	return msg
}

// maxSecretSize bounds files read for secrets and TLS; it also keeps a
// misconfigured path such as /dev/zero from reading forever.
const maxSecretSize = 1 << 20

// readFile reads a file of at most maxSecretSize bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretSize {
		return nil, errors.New("file is larger than 1 MiB")
	}
	return b, nil
}

// fileMode returns the permission bits of a file.
func fileMode(path string) (fs.FileMode, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), nil
}

// fileError is the reason a file could not be read, without the path that
// the caller names itself.
func fileError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
