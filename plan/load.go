package plan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a plan file, with its position.
type Error struct {
	File      string
	Line, Col int
	Key       string // dotted key path, e.g. full_load.parallel
	Msg       string
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", where, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

// ErrorList holds every problem found in a plan file, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// A URLCheck says what is wrong with a connection string (source.url, target.url):
// the binary's engines know their own (engine.CheckURL). With none, a plan checks
// only that a URL parses.
type URLCheck func(url string) error

// Load reads and validates the plan file at path, expanding ${VAR} from the
// environment; check validates its connection strings.
func Load(path string, check URLCheck) (*Plan, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("plan file %s not found: write one with `cutover init --source URL --target URL -o %s`, or name another with -c", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read plan file: %w", err)
	}
	return ParseChecked(path, data, os.LookupEnv, check)
}

// Parse validates a plan held in memory; file names it in messages and env resolves
// ${VAR}. Its URLs are checked only for parsing.
func Parse(file string, data []byte, env func(string) (string, bool)) (*Plan, error) {
	return ParseChecked(file, data, env, nil)
}

// ParseChecked is Parse, with check validating the connection strings.
func ParseChecked(file string, data []byte, env func(string) (string, bool), check URLCheck) (*Plan, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, ErrorList{syntaxError(file, err)}
	}
	if len(doc.Content) == 0 {
		return nil, ErrorList{{File: file, Msg: "the plan is empty: write one with `cutover init --source URL --target URL`"}}
	}
	d := &decoder{file: file, env: env, check: check, nodes: map[string]*yaml.Node{}, root: doc.Content[0]}
	p := Defaults()
	d.decode(doc.Content[0], reflect.ValueOf(p).Elem(), "")
	if len(d.errs) == 0 {
		d.validate(p)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i], d.errs[j]
			return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
		})
		return nil, d.errs
	}
	p.Path = file
	return p, nil
}

// syntaxError turns a yaml.v3 error ("yaml: line 3: ...") into a positioned Error.
func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: file, Msg: "not valid YAML: " + msg}
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		e.Line, e.Col = line, 1
		e.Msg = "not valid YAML:" + strings.SplitN(msg, ":", 2)[1]
	}
	return e
}

// scalarSetter is implemented by plan types written as one YAML scalar.
type scalarSetter interface{ setScalar(string) error }

type decoder struct {
	file  string
	env   func(string) (string, bool)
	check URLCheck
	errs  ErrorList
	nodes map[string]*yaml.Node // key path -> value node, for validation messages
	root  *yaml.Node
}

func (d *decoder) errAt(n *yaml.Node, key, format string, args ...any) {
	e := &Error{File: d.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// errKey reports a problem with the value at key, or where it should have been.
func (d *decoder) errKey(key, format string, args ...any) {
	n := d.nodes[key]
	for k := key; n == nil && k != ""; {
		i := strings.LastIndex(k, ".")
		if i < 0 {
			k = ""
			n = d.root
		} else {
			k = k[:i]
			n = d.nodes[k]
		}
	}
	d.errAt(n, key, format, args...)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!int":
		return "a number"
	case "!!float":
		return "a number"
	case "!!bool":
		return "true/false"
	case "!!null":
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		d.nodes[path] = n
	}
	if s, ok := v.Addr().Interface().(scalarSetter); ok {
		text, ok := d.scalar(n, path)
		if ok {
			if err := s.setScalar(text); err != nil {
				d.errAt(n, path, "%s", err.Error())
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errAt(n, path, "expected a list (for example [a, b] or one \"- item\" per line), got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errAt(n, path, "expected a mapping (for example {\"tinyint(1)\": boolean}), got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key, value := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			d.decode(k, key, join(path, k.Value))
			d.decode(val, value, join(path, k.Value))
			if m.MapIndex(key).IsValid() {
				d.errAt(k, join(path, k.Value), "given twice; keep one")
				continue
			}
			m.SetMapIndex(key, value)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!null") {
			d.errAt(n, path, "expected a string, got %s (quote it if it is meant as text)", kindName(n))
			return
		}
		if text, ok := d.scalar(n, path); ok {
			v.SetString(text)
		}
	case reflect.Int, reflect.Int64:
		text, ok := d.scalar(n, path)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil || (n.Tag != "!!int" && !strings.Contains(n.Value, "${")) {
			d.errAt(n, path, "expected a whole number, got %s", kindName(n))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		text, ok := d.scalar(n, path)
		if !ok {
			return
		}
		b, err := strconv.ParseBool(text)
		if err != nil || (n.Tag != "!!bool" && !strings.Contains(n.Value, "${")) {
			d.errAt(n, path, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("plan: no decoder for %s", v.Type()))
	}
}

// scalar returns a scalar's text with ${VAR} expanded.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, path, "expected a single value, got %s", kindName(n))
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	text, err := expandEnv(n.Value, d.env)
	if err != nil {
		d.errAt(n, path, "%s", err.Error())
		return "", false
	}
	return text, true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errAt(n, path, "expected a mapping of keys (%s), got %s", strings.Join(fieldNames(v.Type()), ", "), kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		idx := fieldIndex(v.Type(), k.Value)
		if idx < 0 {
			d.errAt(k, key, "unknown key%s; expected one of: %s", suggest(k.Value, fieldNames(v.Type())), strings.Join(fieldNames(v.Type()), ", "))
			continue
		}
		if seen[k.Value] {
			d.errAt(k, key, "given twice; keep one")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(idx), key)
	}
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	return names
}

func fieldIndex(t reflect.Type, key string) int {
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("yaml") == key {
			return i
		}
	}
	return -1
}

// suggest names the closest known key when the given one looks like a typo.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
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

// expandEnv replaces ${NAME} and ${NAME:-default} with environment values; $${ is a literal ${.
func expandEnv(s string, env func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("${ is not closed with }: write ${NAME}, or $${ for a literal ${")
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: %q is not an environment variable name (letters, digits and _)", expr, name)
		}
		val, ok := env(name)
		if !ok {
			if !hasDef {
				return "", fmt.Errorf("environment variable %s is not set: export it, or write ${%s:-default}", name, name)
			}
			val = def
		}
		b.WriteString(s[:i] + val)
		s = s[i+end+1:]
	}
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}
