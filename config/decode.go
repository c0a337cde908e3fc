package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds a config file: far more than any real config, small
// enough that parsing a hostile one is cheap.
const maxFileSize = 1 << 20

// decoder turns a YAML document into a File strictly: it walks the YAML node
// tree alongside the Go type (by yaml tags), rejecting unknown and duplicate
// keys, aliases and anchors, and parsing each scalar itself into the field's
// type, so that every problem is reported with its key path and line. It
// expands ${ENV} in scalar values as it goes.
type decoder struct {
	source string
	env    func(string) (string, bool)
	errs   []*Error
	// lines maps the path of every key in the file (also those with an
	// empty value) to the line it is on.
	lines map[string]int
	// set holds the paths of keys given a non-null value; defaults fill
	// the others.
	set map[string]bool
	// fromEnv holds the values that used ${ENV}, by path. Messages name
	// them by their variables, never by their value (see show).
	fromEnv map[string]envUse
	// bad holds the paths with a problem already reported: their value is
	// left to the default, and later problems under them are not reported.
	bad map[string]bool
}

func newDecoder(source string, env func(string) (string, bool)) *decoder {
	return &decoder{
		source:  source,
		env:     env,
		lines:   map[string]int{},
		set:     map[string]bool{},
		fromEnv: map[string]envUse{},
		bad:     map[string]bool{},
	}
}

// maxErrors bounds the problems reported for one file, so that a hostile
// file cannot make a huge error.
const maxErrors = 100

func (d *decoder) errorf(line int, path, format string, args ...any) {
	if path != "" {
		d.bad[path] = true
	}
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, &Error{Source: d.source, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, &Error{Source: d.source, Line: line, Msg: "too many problems; stopping here"})
	}
}

// underBad reports whether path is, or is inside, a path whose problem was
// reported while decoding.
func (d *decoder) underBad(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if d.bad[p] {
			return true
		}
	}
	return false
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError reports an error of the YAML parser with its line.
func (d *decoder) yamlError(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.errorf(line, "", "invalid YAML: %s", m[2])
		return
	}
	d.errorf(0, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// document parses data into the top-level mapping node, or reports why it
// cannot and returns nil.
func (d *decoder) document(data []byte) (root *yaml.Node) {
	if len(data) > maxFileSize {
		d.errorf(0, "", "file is larger than %d bytes (1 MiB)", maxFileSize)
		return nil
	}
	defer func() {
		// yaml.v3 panics on a few inputs it considers impossible; a config
		// loader must not crash on any input.
		if r := recover(); r != nil {
			d.errorf(0, "", "invalid YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorf(0, "", "file is empty")
			return nil
		}
		d.yamlError(err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.yamlError(err)
		return nil
	default:
		d.errorf(next.Line, "", "more than one YAML document (a config file holds one; remove the second ---)")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		d.errorf(0, "", "file is empty")
		return nil
	}
	if !d.noAliases(&doc) {
		return nil
	}
	root = doc.Content[0]
	if isNull(root) {
		d.errorf(root.Line, "", "file is empty")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root.Line, "", "the top level must be a mapping of keys (key: value), not %s", describe(root))
		return nil
	}
	return root
}

// noAliases reports every anchor and alias in the tree, and whether there
// were none. A config has no use for them, and rejecting them up front
// rules out alias bombs ("billion laughs") whatever the rest of the file.
// Aliases are not followed, so the walk is linear in the file.
func (d *decoder) noAliases(doc *yaml.Node) bool {
	ok := true
	stack := []*yaml.Node{doc}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			d.errorf(n.Line, "", "YAML anchors and aliases (&name, *name) are not supported in the config")
			ok = false
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, n.Content[i])
		}
	}
	return ok
}

// allowedTags are the explicit tags accepted; anything else (!!binary,
// custom tags) has no meaning in a config.
var allowedTags = []string{"!!str", "!!int", "!!bool", "!!null", "!!float", "!!map", "!!seq"}

var durationType = reflect.TypeFor[time.Duration]()

// decode stores node n into v, whose key path is path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		// noAliases rejected the file already; never follow an alias.
		d.errorf(n.Line, path, "YAML anchors and aliases (&name, *name) are not supported in the config")
		return
	}
	if n.Style&yaml.TaggedStyle != 0 && !slices.Contains(allowedTags, n.Tag) {
		d.errorf(n.Line, path, "unsupported YAML tag %s", quote(n.Tag))
		return
	}
	if isNull(n) {
		return // an empty value leaves the default
	}
	if v.Type() == durationType {
		d.scalar(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Pointer:
		if v.Type().Elem().Kind() != reflect.Struct {
			d.errorf(n.Line, path, "internal error: unsupported field type %s", v.Type())
			return
		}
		p := reflect.New(v.Type().Elem())
		d.mapping(n, p.Elem(), path)
		v.Set(p)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n.Line, path, "expected a list (lines starting with -), got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			d.decode(item, s.Index(i), p)
		}
		v.Set(s)
	default:
		d.scalar(n, v, path)
	}
}

// mapping stores a mapping node into the struct v.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping (key: value lines), got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Anchor != "" || k.Style&yaml.TaggedStyle != 0 {
			d.errorf(k.Line, path, "keys must be plain names")
			continue
		}
		name := k.Value
		p := joinPath(path, name)
		if first, dup := seen[name]; dup {
			d.errorf(k.Line, p, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[name] = k.Line
		idx, ok := fields.index[name]
		if !ok {
			d.errorf(k.Line, p, "unknown key%s", suggest(name, fields.names))
			continue
		}
		d.lines[p] = k.Line
		if !isNull(val) {
			d.set[p] = true
		}
		d.decode(val, v.Field(idx), p)
	}
}

// scalar parses a scalar node into v, after ${ENV} expansion.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "expected a single value, got %s", describe(n))
		return
	}
	s, err := expand(n.Value, d.env)
	if err != nil {
		d.errorf(n.Line, path, "%v", err)
		return
	}
	if strings.Contains(n.Value, "${") {
		d.fromEnv[path] = envUse{raw: n.Value, value: s}
	}
	if v.Type() == durationType {
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(n.Line, path, "invalid duration %s (write a number with a unit, such as 500ms, 30s, 5m or 1h)", d.show(path, s))
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			d.errorf(n.Line, path, "expected true or false, got %s", d.show(path, s))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				d.errorf(n.Line, path, "integer %s is out of range", d.show(path, s))
			} else {
				d.errorf(n.Line, path, "expected an integer, got %s", d.show(path, s))
			}
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			max := uint64(math.MaxUint64) >> (64 - v.Type().Bits())
			d.errorf(n.Line, path, "expected an integer from 0 to %d, got %s", max, d.show(path, s))
			return
		}
		v.SetUint(u)
	default:
		d.errorf(n.Line, path, "internal error: unsupported field type %s", v.Type())
	}
}

// show quotes the value s of path for a message or, when it came from the
// environment, names the variables instead: a secret such as a DSN or a
// KEK put under the wrong key must not end up in logs.
func (d *decoder) show(path, s string) string {
	if u, ok := d.fromEnv[path]; ok {
		return envRef(u.raw)
	}
	return quote(s)
}

// isNull reports whether n is an empty value ("key:" or "key: ~").
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of a node for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "the value " + quote(n.Value)
	}
}

// structFields is the yaml view of a struct type.
type structFields struct {
	index map[string]int // yaml key -> field index
	names []string       // yaml keys in declaration order
}

var fieldCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{index: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		f.index[name] = i
		f.names = append(f.names, name)
	}
	fieldCache.Store(t, f)
	return f
}

// expand replaces ${NAME} with the value of the environment variable NAME
// and $$ with $. Any other $ is kept as written. An unset variable is an
// error; a variable set to the empty string expands to nothing.
func expand(s string, env func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New(`unterminated "${" (write $$ for a literal $)`)
			}
			name := s[i+2 : i+2+end]
			if !envName.MatchString(name) {
				return "", fmt.Errorf("invalid environment variable name %s in ${...} (write $$ for a literal $)", quote(name))
			}
			val, ok := env(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(val)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// suggest returns ` (did you mean "x"?)` for the known key closest to name,
// or lists the known keys when none is close.
func suggest(name string, known []string) string {
	best, bestDist := "", math.MaxInt
	norm := normalizeKey(name)
	for _, k := range known {
		dist := levenshtein(name, k)
		switch nk := normalizeKey(k); {
		case nk == norm:
			dist = 0
		case len(norm) >= 4 && strings.Contains(nk, norm):
			dist = min(dist, 2) // base_dn -> user_base_dn
		}
		if dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" && (bestDist <= 2 || bestDist <= len(name)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(known) == 0 {
		return ""
	}
	return " (known keys here: " + strings.Join(known, ", ") + ")"
}

func normalizeKey(s string) string {
	return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
}

// levenshtein is the edit distance between a and b (bytes; keys are ASCII).
// Long inputs are capped so that a hostile key costs little.
func levenshtein(a, b string) int {
	const max = 64
	if len(a) > max || len(b) > max {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
