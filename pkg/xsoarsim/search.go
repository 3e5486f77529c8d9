package xsoarsim

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// maxSearchSize is the largest page /incidents/search returns (demisto-py docs/IncidentFilter.md).
const maxSearchSize = 1000

// serveSearchLocked answers /incidents/search.
//
// Sorting: filter.sort is a list of {"field", "asc"} (demisto-py docs/Order.md); the first entry
// counts. "created" and "id" sort in creation order, "modified" by the modification time (then
// creation order); anything else keeps creation order.
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
	asc, byModified := true, false
	if sorts, _ := filter["sort"].([]any); len(sorts) > 0 {
		if o, _ := sorts[0].(map[string]any); o != nil {
			switch f, _ := o["field"].(string); f {
			case "created", "id":
				asc, _ = o["asc"].(bool)
			case "modified":
				asc, _ = o["asc"].(bool)
				byModified = true
			}
		}
	}
	type match struct {
		id       string
		obj      map[string]any
		modified time.Time
	}
	var matches []match
	for _, id := range s.order {
		if ids != nil && !ids[id] {
			continue
		}
		inc := s.incidents[id]
		obj := s.exportFieldsLocked(id, inc)
		if !matchAll(obj, terms) {
			continue
		}
		matches = append(matches, match{id: id, obj: obj, modified: inc.state.modified})
	}
	if byModified {
		sort.SliceStable(matches, func(i, j int) bool { return matches[i].modified.Before(matches[j].modified) })
	}
	if !asc {
		for i, j := 0, len(matches)-1; i < j; i, j = i+1, j-1 {
			matches[i], matches[j] = matches[j], matches[i]
		}
	}
	size, _ := filter["size"].(float64)
	page, _ := filter["page"].(float64)
	if size <= 0 {
		s.stats.SearchesWithoutSize++
	}
	size = min(size, maxSearchSize)
	data := []map[string]any{}
	var answered []string
	if size > 0 && page >= 0 {
		from := int(page) * int(size)
		for i := from; i < len(matches) && i < from+int(size); i++ {
			data = append(data, matches[i].obj)
			answered = append(answered, matches[i].id)
		}
	}
	answer(w, http.StatusOK, map[string]any{"total": len(matches), "data": data})
	// An analyst saves an incident just answered (RaceAfterSearch): the client's next write of it
	// carries a stale version. The answer is encoded already, and the lock held until the next
	// request, so the edit lands in between.
	for _, id := range answered {
		queue := s.races[id]
		if len(queue) == 0 {
			continue
		}
		s.races[id] = queue[1:]
		if n := queue[0]; n < 0 {
			delete(s.incidents, id)
			s.order = slices.DeleteFunc(s.order, func(o string) bool { return o == id })
		} else {
			s.incidents[id].version += int64(n)
			s.incidents[id].state.modified = s.nowLocked()
		}
	}
}

// queryTerm is one term of a search query: field:"value", field:* (the field is set), or
// field:>="time" (also >, <, <=) comparing times.
type queryTerm struct{ field, op, value string }

// termRE matches one term: a field name, a colon, an optional comparison, then a quoted value
// (with \" and \\ escapes) or a bare word.
var termRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_.]*):(>=|<=|>|<)?("(?:[^"\\]|\\.)*"|[^\s"()]+)`)

// parseQuery reads terms joined by whitespace or AND (the subset wizfetch sends). The forms follow
// XSOAR's incident query language as public content writes it: `dbotMirrorId:"<id>"`
// (demisto/content Packs/Doppel/Scripts/DoppelSyncAlerts), `<field>:*` for "not empty" and
// `<timeField>:>="<ISO time>"` (demisto/content Packs/Base/Scripts/GetIncidentsByQuery,
// build_incidents_query, with timeField "created" or "modified"). Anything else is refused with
// 400 rather than guessed.
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
			return nil, fmt.Errorf("unsupported query %q: the test XSOAR understands field:\"value\", field:* and field:>=\"time\" terms joined by AND", q)
		}
		v := m[3]
		if strings.HasPrefix(v, `"`) {
			var err error
			if v, err = unquote(v); err != nil {
				return nil, fmt.Errorf("query %q: %w", q, err)
			}
		}
		if m[2] != "" {
			if _, err := parseQueryTime(v); err != nil {
				return nil, fmt.Errorf("query %q: %s%s needs a time: %w", q, m[1], m[2], err)
			}
		}
		out = append(out, queryTerm{field: m[1], op: m[2], value: v})
		rest = strings.TrimSpace(rest[len(m[0]):])
	}
	return out, nil
}

// parseQueryTime reads a time of a query: RFC 3339, as Python's isoformat() writes it too.
func parseQueryTime(v string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, v)
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
			custom, _ := obj["CustomFields"].(map[string]any)
			if !matchField(custom, t) {
				return false
			}
		}
	}
	return true
}

func matchField(obj map[string]any, t queryTerm) bool {
	for k, v := range obj {
		if !strings.EqualFold(k, t.field) {
			continue
		}
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		switch {
		case t.op != "":
			return compareTimes(s, t.op, t.value)
		case t.value == "*":
			return v != nil && s != ""
		default:
			return s == t.value
		}
	}
	return false
}

// compareTimes reports whether the time have relates to want as op says.
func compareTimes(have, op, want string) bool {
	h, err1 := parseQueryTime(have)
	w, err2 := parseQueryTime(want)
	if err1 != nil || err2 != nil {
		return false
	}
	switch op {
	case ">=":
		return !h.Before(w)
	case ">":
		return h.After(w)
	case "<=":
		return !h.After(w)
	default:
		return h.Before(w)
	}
}
