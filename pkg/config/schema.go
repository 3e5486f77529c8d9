package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// problem is one line of a ValidationError with the file line it came from (0 when unknown), so
// problems found while reading the file can be reported in file order.
type problem struct {
	line int
	msg  string
}

// schemaCheck walks the parsed YAML against the Config struct before anything is decoded. It is
// what makes unknown keys (at any depth, including inside sinks and instances items), keys of
// another sink type, duplicate keys and values of the wrong shape errors that name their key:
// viper and mapstructure would either accept them silently or fail with a message that names a
// Go field. A value of the wrong shape cannot be decoded: its key is pruned from the tree (see
// wrong) like an unknown key, so the rest of the file is still decoded and validated and every
// problem reported at once. fatal problems (the YAML itself unreadable, an alias bomb) stop loading.
type schemaCheck struct {
	problems []problem
	fatal    bool
	// wrong holds the keys whose values have the wrong shape, and the second of two duplicate keys,
	// pruned before decoding (defaults, or the first value, apply while the rest is validated);
	// wrongPaths holds the wrong-shaped ones' key paths, whose knock-on problems in Validate (a
	// required key now missing) are not reported a second time.
	wrong      []unknownKey
	wrongPaths []string
	visited    int // nodes walked, bounded by maxSchemaNodes against alias bombs
	// merging holds the mappings whose merge keys are being expanded: a merge key whose alias
	// leads back to one of them (wiz: &w {<<: *w}) would otherwise expand forever.
	merging map[*yaml.Node]bool
	// unknown holds the reported unknown keys, pruned from the tree before decoding so that
	// viper's case-insensitive merge (Fetch: into fetch:) cannot change the values checked next.
	unknown []unknownKey
}

type unknownKey struct{ parent, key *yaml.Node }

// maxSchemaNodes bounds the walk: aliases can make a small file expand exponentially.
const maxSchemaNodes = 1_000_000

func (sc *schemaCheck) add(n *yaml.Node, fatal bool, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	sc.problems = append(sc.problems, problem{line: line, msg: key + ": " + fmt.Sprintf(format, args...)})
	if fatal {
		sc.fatal = true
	}
}

// resolveAlias follows YAML aliases (*name) to the anchored node.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// join builds a key path: join("fetch", "status") = "fetch.status"; join("", "wiz") = "wiz".
func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// describe renders a scalar for a message: strings quoted, numbers and booleans as written.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Kind != yaml.ScalarNode {
		return "a YAML " + n.Tag
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// fieldsByKey maps the mapstructure keys of a struct type to their field types.
func fieldsByKey(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if key != "" && key != "-" {
			m[key] = f.Type
		}
	}
	return m
}

// walk checks node n, found at key path, against type t.
func (sc *schemaCheck) walk(path string, n *yaml.Node, t reflect.Type) {
	n = resolveAlias(n)
	if isNull(n) {
		return // null means "the default" (or "inherit" inside an instance)
	}
	if sc.visited++; sc.visited > maxSchemaNodes {
		if sc.visited == maxSchemaNodes+1 {
			sc.add(n, true, "yaml", "the document is too large or contains excessive aliasing")
		}
		return
	}
	if t == reflect.TypeFor[Duration]() {
		sc.scalarDuration(path, n)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		sc.walk(path, n, t.Elem())
	case reflect.Struct:
		sc.mapping(path, n, t)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			sc.add(n, true, path, "must be a list (e.g. [A, B]), not %s", describe(n))
			return
		}
		for i, item := range n.Content {
			item = resolveAlias(item)
			ipath := fmt.Sprintf("%s[%d]", path, i)
			if isNull(item) {
				sc.add(item, true, ipath, "empty list item")
				continue
			}
			sc.walk(ipath, item, t.Elem())
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			sc.add(n, true, path, "must be a mapping (key: value), not %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolveAlias(n.Content[i]), n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				sc.add(k, true, path, "keys must be plain strings")
				continue
			}
			sc.walk(join(path, k.Value), v, t.Elem())
		}
	case reflect.String:
		sc.scalarString(path, n)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			sc.add(n, true, path, "%s is not true or false", describe(n))
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			sc.add(n, true, path, "%s is not a whole number", describe(n))
		}
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			sc.add(n, true, path, "%s is not a number", describe(n))
		}
	default:
		sc.add(n, true, path, "unsupported value")
	}
}

func (sc *schemaCheck) scalarString(path string, n *yaml.Node) {
	if n.Kind != yaml.ScalarNode {
		sc.add(n, true, path, "must be a string, not %s", describe(n))
		return
	}
	switch n.ShortTag() {
	case "!!str":
	case "!!int":
		// A plain decimal like `api_key_id: 3` is fine; 0x1F, 012 or 1_000 would not survive the
		// round trip through a number, so they must be quoted.
		if _, err := strconv.ParseUint(n.Value, 10, 64); err != nil || (len(n.Value) > 1 && n.Value[0] == '0') {
			sc.add(n, true, path, "%s must be quoted to be read as a string", n.Value)
		}
	default:
		sc.add(n, true, path, "%s is not a string (quote it)", describe(n))
	}
}

func (sc *schemaCheck) scalarDuration(path string, n *yaml.Node) {
	if n.Kind != yaml.ScalarNode {
		sc.add(n, true, path, "must be a duration such as 30s, 5m or 7d, not %s", describe(n))
		return
	}
	if _, err := ParseDuration(n.Value); err != nil {
		sc.add(n, true, path, "%s is not a duration (examples: 90s, 30m, 168h, 7d, 1d12h)", describe(n))
	}
}

// mapping checks a YAML mapping against struct type t: every key known, none repeated.
func (sc *schemaCheck) mapping(path string, n *yaml.Node, t reflect.Type) {
	if n.Kind != yaml.MappingNode {
		where := path
		if where == "" {
			where = "config"
		}
		sc.add(n, true, where, "must be a mapping (key: value), not %s", describe(n))
		return
	}
	fields := fieldsByKey(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			sc.add(k, true, join(path, "?"), "keys must be plain strings")
			continue
		}
		if k.ShortTag() == "!!merge" { // <<: *anchor
			sc.merge(path, n, v, t)
			continue
		}
		kpath := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			// Reported, and dropped so that the first one is decoded and validated.
			sc.add(k, false, kpath, "duplicate key (first on line %d)", first)
			sc.wrong = append(sc.wrong, unknownKey{parent: n, key: n.Content[i]})
			continue
		}
		seen[k.Value] = k.Line
		ft, ok := fields[k.Value]
		if !ok {
			sc.add(k, false, kpath, "unknown key")
			sc.unknown = append(sc.unknown, unknownKey{parent: n, key: n.Content[i]})
			continue
		}
		wasFatal, before := sc.fatal, len(sc.problems)
		sc.fatal = false
		sc.walk(kpath, v, ft)
		// Pruning a key with a bad list item would drop the whole list: the other items' problems
		// would go unseen, and an empty instances list makes the top level the only instance (a
		// false "wiz.api_url: required"). Such a key stays fatal, as does the YAML itself.
		if sc.fatal && !slices.ContainsFunc(sc.problems[before:], func(p problem) bool {
			return strings.HasPrefix(p.msg, "yaml: ") || strings.HasPrefix(p.msg, kpath+"[")
		}) {
			// A value of the wrong shape, here or below: drop the key, report it, go on.
			sc.fatal = false
			sc.wrong = append(sc.wrong, unknownKey{parent: n, key: n.Content[i]})
			sc.wrongPaths = append(sc.wrongPaths, kpath)
		}
		sc.fatal = sc.fatal || wasFatal
	}
	if t == reflect.TypeFor[Sink]() {
		sc.sinkKeysApply(path, n)
	}
}

// merge checks the value of a YAML merge key (<<: *a or <<: [*a, *b]) of the mapping parent.
func (sc *schemaCheck) merge(path string, parent, v *yaml.Node, t reflect.Type) {
	if sc.merging == nil {
		sc.merging = map[*yaml.Node]bool{}
	}
	sc.merging[parent] = true
	defer delete(sc.merging, parent)
	v = resolveAlias(v)
	targets := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		targets = v.Content
	}
	for _, m := range targets {
		m = resolveAlias(m)
		if sc.merging[m] {
			sc.add(m, true, join(path, "<<"), "the merge key refers to a mapping that contains it (an alias cycle)")
			continue
		}
		if sc.visited++; sc.visited > maxSchemaNodes {
			if sc.visited == maxSchemaNodes+1 {
				sc.add(m, true, "yaml", "the document is too large or contains excessive aliasing")
			}
			return
		}
		sc.mapping(path, m, t)
	}
}

// sinkKeysApply reports keys of a sinks item that belong to another sink type.
func (sc *schemaCheck) sinkKeysApply(path string, n *yaml.Node) {
	typ := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			typ = resolveAlias(n.Content[i+1]).Value
		}
	}
	allowed := sinkKeys(typ)
	if allowed == nil {
		return // unknown or missing type: Validate reports it
	}
	allowed = append(allowed, "name", "type", "max_pending", "retry_for", "timeout")
	fields := fieldsByKey(reflect.TypeFor[Sink]())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if _, known := fields[k.Value]; known && !slices.Contains(allowed, k.Value) {
			sc.add(k, false, join(path, k.Value), "does not apply to a %s sink", typ)
		}
	}
}

// checkSchema parses data and checks it against the Config schema.
func checkSchema(data []byte) (root *yaml.Node, sc *schemaCheck) {
	sc = &schemaCheck{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		sc.add(nil, true, "yaml", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, sc
	}
	root = &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	sc.walk("", root, reflect.TypeFor[Config]())
	slices.SortStableFunc(sc.problems, func(a, b problem) int { return a.line - b.line })
	return root, sc
}

// pruneUnknown removes the reported unknown keys (and their values) from the tree.
func (sc *schemaCheck) pruneUnknown() {
	for _, u := range slices.Concat(sc.unknown, sc.wrong) {
		for i := 0; i+1 < len(u.parent.Content); i += 2 {
			if u.parent.Content[i] == u.key {
				u.parent.Content = slices.Delete(u.parent.Content, i, i+2)
				break
			}
		}
	}
}
