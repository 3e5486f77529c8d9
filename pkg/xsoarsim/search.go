package xsoarsim

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// maxSearchSize is the largest page /incidents/search returns (demisto-py docs/IncidentFilter.md).
const maxSearchSize = 1000

// serveSearchLocked answers /incidents/search.
func (s *Server) serveSearchLocked(w http.ResponseWriter, req map[string]any) {
	s.stats.Searches++
	filter, _ := req["filter"].(map[string]any)
	var ids map[string]bool
	if list, ok := filter["id"].([]any); ok {
		ids = map[string]bool{}
		for _, x := range list {
			if id, ok := x.(string); ok {
				ids[id] = true
			}
		}
	}
	var terms []queryTerm
	if q, _ := filter["query"].(string); strings.TrimSpace(q) != "" {
		var err error
		if terms, err = parseQuery(q); err != nil {
			answer(w, http.StatusBadRequest, map[string]any{"detail": err.Error()})
			return
		}
	}
	asc := true
	if sorts, _ := filter["sort"].([]any); len(sorts) > 0 {
		if o, _ := sorts[0].(map[string]any); o != nil {
			if f, _ := o["field"].(string); f == "created" || f == "id" {
				asc, _ = o["asc"].(bool)
			}
		}
	}
	var matches []map[string]any
	for i := range s.order {
		id := s.order[i]
		if !asc {
			id = s.order[len(s.order)-1-i]
		}
		if ids != nil && !ids[id] {
			continue
		}
		inc := s.incidents[id]
		if !matchAll(inc.fields, terms) {
			continue
		}
		obj := make(map[string]any, len(inc.fields)+3)
		for k, v := range inc.fields {
			obj[k] = v // encoded before the lock is released: sharing the values is safe
		}
		obj["id"], obj["version"], obj["created"] = id, inc.version, inc.created.Format(time.RFC3339Nano)
		matches = append(matches, obj)
	}
	size, _ := filter["size"].(float64)
	page, _ := filter["page"].(float64)
	if size <= 0 {
		s.stats.SearchesWithoutSize++
	}
	size = min(size, maxSearchSize)
	data := []map[string]any{}
	if size > 0 && page >= 0 {
		from := int(page) * int(size)
		for i := from; i < len(matches) && i < from+int(size); i++ {
			data = append(data, matches[i])
		}
	}
	answer(w, http.StatusOK, map[string]any{"total": len(matches), "data": data})
}

// queryTerm is one field:"value" term of a search query.
type queryTerm struct{ field, value string }

// termRE matches one term: a field name, a colon, then a quoted value (with \" and \\ escapes) or a
// bare word.
var termRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_.]*):("(?:[^"\\]|\\.)*"|[^\s"()]+)`)

// parseQuery reads field:"value" terms joined by whitespace or AND (the subset wizfetch sends).
func parseQuery(q string) ([]queryTerm, error) {
	var out []queryTerm
	rest := strings.TrimSpace(q)
	for rest != "" {
		if len(out) > 0 {
			if len(rest) > 4 && strings.EqualFold(rest[:4], "and ") {
				rest = strings.TrimSpace(rest[4:])
			}
		}
		m := termRE.FindStringSubmatch(rest)
		if m == nil {
			return nil, fmt.Errorf("unsupported query %q: the test XSOAR understands field:\"value\" terms joined by AND", q)
		}
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			var err error
			if v, err = unquote(v); err != nil {
				return nil, fmt.Errorf("query %q: %w", q, err)
			}
		}
		out = append(out, queryTerm{field: m[1], value: v})
		rest = strings.TrimSpace(rest[len(m[0]):])
	}
	return out, nil
}

// unquote undoes the backslash escapes of a quoted query value.
func unquote(s string) (string, error) {
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i+1 == len(s) {
				return "", errors.New("dangling backslash")
			}
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// matchAll reports whether obj has every term's value in a top-level field or a customField of that
// name (field names compare case-insensitively).
func matchAll(obj map[string]any, terms []queryTerm) bool {
	for _, t := range terms {
		if !matchField(obj, t) {
			custom, _ := obj["customFields"].(map[string]any)
			if !matchField(custom, t) {
				return false
			}
		}
	}
	return true
}

func matchField(obj map[string]any, t queryTerm) bool {
	for k, v := range obj {
		if strings.EqualFold(k, t.field) {
			s, ok := v.(string)
			if !ok {
				s = fmt.Sprint(v)
			}
			return s == t.value
		}
	}
	return false
}
