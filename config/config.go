package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"github.com/bridge-idp/bridge/keys"
)

// Config is a loaded and validated bridge.yaml: the File with every default
// applied, relative paths made absolute against the config file's
// directory, and the secrets resolved. Build it with Load or Parse.
//
// Resolved in place in File: Storage.Postgres.DSN holds the DSN read from
// dsn_file, and each LDAP directory's BindPassword the password read from
// bind_password_file; Keys.KEK holds the KEK text read from kek_file.
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
	return parse(data, source, baseDir, env, readFile)
}

// parse is Parse with the file reader injected, so that fuzzing never
// touches the real file system.
func parse(data []byte, source, baseDir string, env func(string) (string, bool), read func(string) ([]byte, error)) (*Config, error) {
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
	c := &Config{File: f, Source: source, lines: d.lines}
	defaults(&c.File, func(path string) bool { return d.set[path] && !d.bad[path] })
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
	c.Warnings = c.warnings(d.fromEnv)
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
	return &Error{Source: c.Source, Line: c.lineOf(path), Path: path, Msg: fmt.Sprintf(format, args...)}
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

// fileError is the reason a file could not be read, without the path that
// the caller names itself.
func fileError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
