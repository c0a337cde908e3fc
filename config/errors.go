package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Error is one problem in a config file: where it is (the file, the line of
// the key, the key's path such as "http.public.listen" or
// "directories[1].ldap.url") and what is wrong. Parse and Validate return
// every problem at once, as errors.Join of *Error sorted by line; use
// errors.As to inspect one.
type Error struct {
	Source string // the file name as given to Load or Parse
	Line   int    // 1-based line of the key, 0 if unknown
	Path   string // dotted key path, empty for problems with the whole file
	Msg    string
	Err    error // the underlying error, if any
}

// Error formats the problem as source:line: path: message, leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
	} else {
		b.WriteString("config")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// joinErrors sorts problems by line (problems without a line first; the
// order of emission is kept within a line) and joins them. It returns nil
// for none.
func joinErrors(list []*Error) error {
	if len(list) == 0 {
		return nil
	}
	slices.SortStableFunc(list, func(a, b *Error) int { return a.Line - b.Line })
	if len(list) > maxErrors+1 {
		last := list[maxErrors]
		list = append(list[:maxErrors], &Error{Source: last.Source, Line: last.Line, Msg: "too many problems; stopping here"})
	}
	errs := make([]error, len(list))
	for i, e := range list {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// flatten unpacks errors.Join trees into their leaves.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

var keyPrefix = regexp.MustCompile(`^([a-z_][a-z0-9_]*(?:\[[0-9]+\])?(?:\.[a-z_][a-z0-9_]*(?:\[[0-9]+\])?)*): (.+)$`)

// splitKey splits an error text of the form "yaml_key: message", as
// subpackages' Validate methods write them, into the key and the message.
// Texts without such a prefix return an empty key.
func splitKey(text string) (key, msg string) {
	if m := keyPrefix.FindStringSubmatch(text); m != nil {
		return m[1], m[2]
	}
	return "", text
}

// quote quotes a value for an error message, shortened so that a long (or
// secret-bearing) value does not flood the log.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// envUse is a value written with ${ENV}: the text as written in the file
// and the value it expanded to.
type envUse struct {
	raw, value string
}

// envRef names a value written with ${ENV} for a message, without its
// expansion, which may be a secret that ended up under the wrong key:
// "the value of ${NAME}" for a value written as just ${NAME}, otherwise the
// text as written ("the value of \"x-${NAME}\"") or, when that is long,
// the variables it uses.
func envRef(raw string) string {
	names := envNames(raw)
	switch {
	case len(names) == 1 && raw == "${"+names[0]+"}":
		return "the value of ${" + names[0] + "}"
	case len(raw) <= 40:
		return "the value of " + quote(raw)
	case len(names) == 0:
		return "the expanded value"
	}
	refs := make([]string, len(names))
	for i, n := range names {
		refs[i] = "${" + n + "}"
	}
	return "the value with " + strings.Join(refs, ", ") + " expanded"
}

// envNames lists the variables that ${NAME} in s refers to, as expand
// reads them ($$ is a literal $).
func envNames(s string) []string {
	var names []string
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		switch s[i+1] {
		case '$':
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return names
			}
			if n := s[i+2 : i+2+end]; !slices.Contains(names, n) {
				names = append(names, n)
			}
			i += 2 + end
		}
	}
	return names
}

// parentPath returns the path one level up: "a.b[2]" -> "a.b", "a.b" -> "a".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// joinPath appends a key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
