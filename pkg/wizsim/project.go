package wizsim

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// projector writes GraphQL values for a selection set, the way any GraphQL executor does: fields are
// collected in document order (merging equal response keys, applying fragments whose type condition
// matches and @skip/@include), aliases name the output keys and __typename answers the concrete type.
type projector struct {
	schema *ast.Schema
	vars   map[string]any
	nodes  int // issue nodes answered so far (the latency model charges per node)
}

// collected is one response key with every field selected under it.
type collected struct {
	key    string
	fields []*ast.Field
}

func (p *projector) included(dirs ast.DirectiveList) bool {
	if d := dirs.ForName("skip"); d != nil {
		if v, _ := d.ArgumentMap(p.vars)["if"].(bool); v {
			return false
		}
	}
	if d := dirs.ForName("include"); d != nil {
		if v, _ := d.ArgumentMap(p.vars)["if"].(bool); !v {
			return false
		}
	}
	return true
}

func (p *projector) applies(cond, typeName string) bool {
	if cond == "" || cond == typeName {
		return true
	}
	def := p.schema.Types[cond]
	if def == nil {
		return false
	}
	for _, t := range p.schema.GetPossibleTypes(def) {
		if t.Name == typeName {
			return true
		}
	}
	return false
}

// collect gathers the fields of sets (merged) that apply to the concrete type typeName.
func (p *projector) collect(sets []ast.SelectionSet, typeName string) []collected {
	var out []collected
	index := map[string]int{}
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if !p.included(s.Directives) {
					continue
				}
				key := s.Alias
				if key == "" {
					key = s.Name
				}
				if k, ok := index[key]; ok {
					out[k].fields = append(out[k].fields, s)
					continue
				}
				index[key] = len(out)
				out = append(out, collected{key: key, fields: []*ast.Field{s}})
			case *ast.InlineFragment:
				if p.included(s.Directives) && p.applies(s.TypeCondition, typeName) {
					walk(s.SelectionSet)
				}
			case *ast.FragmentSpread:
				if s.Definition != nil && p.included(s.Directives) && p.applies(s.Definition.TypeCondition, typeName) {
					walk(s.Definition.SelectionSet)
				}
			}
		}
	}
	for _, set := range sets {
		walk(set)
	}
	return out
}

// concrete returns the object type name of value v of (possibly abstract) type name.
func (p *projector) concrete(name string, v map[string]any) string {
	def := p.schema.Types[name]
	if def != nil && (def.Kind == ast.Union || def.Kind == ast.Interface) {
		if t, ok := v["__typename"].(string); ok {
			return t
		}
	}
	return name
}

func subSets(fields []*ast.Field) []ast.SelectionSet {
	sets := make([]ast.SelectionSet, 0, len(fields))
	for _, f := range fields {
		sets = append(sets, f.SelectionSet)
	}
	return sets
}

// writeObject writes the object v of concrete type typeName for the merged selection sets.
func (p *projector) writeObject(b []byte, sets []ast.SelectionSet, typeName string, v map[string]any) []byte {
	b = append(b, '{')
	for k, c := range p.collect(sets, typeName) {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, c.key)
		b = append(b, ':')
		f := c.fields[0]
		if f.Name == "__typename" {
			b = strconv.AppendQuote(b, typeName)
			continue
		}
		b = p.writeValue(b, c.fields, f.Definition.Type, v[f.Name])
	}
	return append(b, '}')
}

// writeValue writes v of GraphQL type t for the fields selecting it.
func (p *projector) writeValue(b []byte, fields []*ast.Field, t *ast.Type, v any) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	if t.Elem != nil {
		list, _ := v.([]any)
		b = append(b, '[')
		for k, e := range list {
			if k > 0 {
				b = append(b, ',')
			}
			b = p.writeValue(b, fields, t.Elem, e)
		}
		return append(b, ']')
	}
	if m, ok := v.(map[string]any); ok && len(fields[0].SelectionSet) > 0 {
		return p.writeObject(b, subSets(fields), p.concrete(t.Name(), m), m)
	}
	switch x := v.(type) {
	case string:
		return strconv.AppendQuote(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

// shape is a canonical description of what a selection produces for an object of type typeName,
// independent of field order and fragment structure; two selections with the same shape produce the
// same keys and values. It is "" when the selection uses aliases (then only a projection is exact).
func (p *projector) shape(sets []ast.SelectionSet, typeName string) string {
	cs := p.collect(sets, typeName)
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		f := c.fields[0]
		if c.key != f.Name {
			return ""
		}
		part := f.Name
		if f.Name != "__typename" && len(f.SelectionSet) > 0 {
			named := f.Definition.Type.Name()
			def := p.schema.Types[named]
			var subs []string
			if def != nil && (def.Kind == ast.Union || def.Kind == ast.Interface) {
				for _, pt := range p.schema.GetPossibleTypes(def) {
					s := p.shape(subSets(c.fields), pt.Name)
					if s == "" {
						return ""
					}
					subs = append(subs, pt.Name+s)
				}
				sort.Strings(subs)
			} else {
				s := p.shape(subSets(c.fields), named)
				if s == "" {
					return ""
				}
				subs = append(subs, s)
			}
			part += strings.Join(subs, "|")
		}
		parts = append(parts, part)
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}
