package wiz

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file decodes a page of issuesV2 nodes in one pass over the response, the way encoding/json
// would decode them into Issue (FuzzDecodeIssue holds the two to the same results), but without
// reflection and without copying: strings that need no unescaping, and json.RawMessage fields, are
// slices of the response, which nothing modifies once it has been read. Nothing has validated the
// response before (see pagequery.go), so the decoder does: typed fields are checked as they are
// decoded and skipped values by skip, which accepts exactly what json.Valid does (FuzzSkip).
//
// Semantics kept from encoding/json (FuzzDecodeIssue and a generated-node test compare the two):
// keys match exactly, else case-insensitively (bytes.EqualFold); unknown keys are ignored; null
// leaves a string or a struct as it is, sets a pointer or a slice to nil, and gives a
// json.RawMessage the literal null; a repeated key decodes into what the first one left (structs
// merge, slices decode element by element into the old backing array, [] starts a new one);
// invalid UTF-8 and lone surrogates in strings become U+FFFD; a value of the wrong type is an
// error.

// nodeReader reads JSON values from data, starting at pos.
type nodeReader struct {
	data  []byte
	pos   int
	depth int // objects and arrays open around pos (encoding/json allows maxDepth)
}

// errEnd is returned when the data ends inside a value.
var errEnd = errors.New("unexpected end of JSON input")

func (r *nodeReader) syntax(what string) error {
	if r.pos >= len(r.data) {
		return errEnd
	}
	return fmt.Errorf("invalid character %q at offset %d: %s", r.data[r.pos], r.pos, what)
}

// typeError reports a value of the wrong JSON type for a Go field (as encoding/json's
// UnmarshalTypeError does).
func (r *nodeReader) typeError(field, want string) error {
	kind := "value"
	switch r.peek() {
	case '"':
		kind = "string"
	case '{':
		kind = "object"
	case '[':
		kind = "array"
	case 't', 'f':
		kind = "bool"
	case 'n':
		kind = "null"
	default:
		kind = "number"
	}
	return fmt.Errorf("json: cannot unmarshal %s into field %s of type %s", kind, field, want)
}

// peek skips white space and returns the next byte (0 at the end of data) without consuming it.
func (r *nodeReader) peek() byte {
	for r.pos < len(r.data) {
		switch c := r.data[r.pos]; c {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return c
		}
	}
	return 0
}

// atEnd skips white space and reports whether nothing is left (peek's 0 could also be a NUL byte).
func (r *nodeReader) atEnd() bool {
	r.peek()
	return r.pos >= len(r.data)
}

// null consumes a null literal if one is next.
func (r *nodeReader) null() bool {
	if r.peek() == 'n' && r.pos+4 <= len(r.data) && string(r.data[r.pos:r.pos+4]) == "null" {
		r.pos += 4
		return true
	}
	return false
}

// stringChar marks the bytes a string's fast path copies as they are (not '"', '\\', control
// characters or non-ASCII).
var stringChar = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string (the next value must be one). A string with nothing to unescape is returned
// as a slice of data, without a copy.
func (r *nodeReader) str() (string, error) {
	if r.peek() != '"' {
		return "", r.syntax("expected a string")
	}
	start := r.pos + 1
	i := start
	for i < len(r.data) && stringChar[r.data[i]] {
		i++
	}
	if i < len(r.data) && r.data[i] == '"' {
		r.pos = i + 1
		if i == start {
			return "", nil
		}
		return unsafe.String(&r.data[start], i-start), nil
	}
	return r.slowStr(start, i)
}

// slowStr finishes a string that has escapes, control characters or non-ASCII bytes from i on.
func (r *nodeReader) slowStr(start, i int) (string, error) {
	d := r.data
	// Valid UTF-8 without escapes can still be a slice of data.
	j := i
	for j < len(d) {
		c := d[j]
		if c == '"' {
			r.pos = j + 1
			return unsafe.String(&d[start], j-start), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		if c < utf8.RuneSelf {
			j++
			continue
		}
		rn, size := utf8.DecodeRune(d[j:])
		if rn == utf8.RuneError && size == 1 {
			break
		}
		j += size
	}
	b := make([]byte, 0, j-start+16)
	b = append(b, d[start:j]...)
	for j < len(d) {
		c := d[j]
		switch {
		case c == '"':
			r.pos = j + 1
			return unsafe.String(unsafe.SliceData(b), len(b)), nil
		case c == '\\':
			if j+1 >= len(d) {
				r.pos = len(d)
				return "", errEnd
			}
			switch e := d[j+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
				j += 2
			case 'b':
				b = append(b, '\b')
				j += 2
			case 'f':
				b = append(b, '\f')
				j += 2
			case 'n':
				b = append(b, '\n')
				j += 2
			case 'r':
				b = append(b, '\r')
				j += 2
			case 't':
				b = append(b, '\t')
				j += 2
			case 'u':
				rn, ok := hex4(d, j+2)
				if !ok {
					r.pos = j
					return "", r.syntax("invalid \\u escape")
				}
				j += 6
				if utf16.IsSurrogate(rn) {
					// A valid pair combines; anything else is U+FFFD (as in encoding/json).
					lo, ok := rune(-1), false
					if j+1 < len(d) && d[j] == '\\' && d[j+1] == 'u' {
						lo, ok = hex4(d, j+2)
					}
					if dec := utf16.DecodeRune(rn, lo); ok && dec != utf8.RuneError {
						rn = dec
						j += 6
					} else {
						rn = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, rn)
			default:
				r.pos = j
				return "", r.syntax("invalid escape")
			}
		case c < 0x20:
			r.pos = j
			return "", r.syntax("control character in string")
		case c < utf8.RuneSelf:
			b = append(b, c)
			j++
		default:
			rn, size := utf8.DecodeRune(d[j:])
			if rn == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, d[j:j+size]...)
			}
			j += size
		}
	}
	r.pos = len(d)
	return "", errEnd
}

// hex4 reads four hex digits at i.
func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}

// maxDepth is how deeply skip lets values nest (encoding/json's limit).
const maxDepth = 10000

// skip consumes one value of any type, checking that it is valid JSON as json.Valid would (strings
// are not checked for valid UTF-8, as encoding/json does not). Every byte of a response passes
// through either a typed decoder or skip, so a page that decodes is valid JSON and its raw nodes
// can be written out as they are.
func (r *nodeReader) skip() error { return r.skipDepth(r.depth) }

func (r *nodeReader) skipDepth(depth int) error {
	switch c := r.peek(); c {
	case '"':
		return r.skipString()
	case '{':
		if depth >= maxDepth {
			return r.syntax("exceeded max depth")
		}
		r.pos++
		if r.peek() == '}' {
			r.pos++
			return nil
		}
		for {
			if err := r.skipString(); err != nil {
				return err
			}
			if r.peek() != ':' {
				return r.syntax("expected ':' after an object key")
			}
			r.pos++
			if err := r.skipDepth(depth + 1); err != nil {
				return err
			}
			switch r.peek() {
			case ',':
				r.pos++
			case '}':
				r.pos++
				return nil
			default:
				return r.syntax("expected ',' or '}' in an object")
			}
		}
	case '[':
		if depth >= maxDepth {
			return r.syntax("exceeded max depth")
		}
		r.pos++
		if r.peek() == ']' {
			r.pos++
			return nil
		}
		for {
			if err := r.skipDepth(depth + 1); err != nil {
				return err
			}
			switch r.peek() {
			case ',':
				r.pos++
			case ']':
				r.pos++
				return nil
			default:
				return r.syntax("expected ',' or ']' in an array")
			}
		}
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	case 'n':
		return r.literal("null")
	case 0:
		if r.pos >= len(r.data) {
			return errEnd
		}
	}
	if c := r.data[r.pos]; c == '-' || ('0' <= c && c <= '9') {
		return r.skipNumber()
	}
	return r.syntax("expected a value")
}

// literal consumes the literal lit (true, false or null), which must be next.
func (r *nodeReader) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		if r.pos >= len(r.data) {
			return errEnd
		}
		if r.data[r.pos] != lit[i] {
			return r.syntax("in literal " + lit)
		}
		r.pos++
	}
	return nil
}

// skipNumber consumes a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. What follows it is
// the caller's to check.
func (r *nodeReader) skipNumber() error {
	d := r.data
	if d[r.pos] == '-' {
		r.pos++
	}
	digits := func() error {
		start := r.pos
		for r.pos < len(d) && '0' <= d[r.pos] && d[r.pos] <= '9' {
			r.pos++
		}
		if r.pos == start {
			return r.syntax("in a number, expected a digit")
		}
		return nil
	}
	if r.pos < len(d) && d[r.pos] == '0' {
		r.pos++
	} else if err := digits(); err != nil {
		return err
	}
	if r.pos < len(d) && d[r.pos] == '.' {
		r.pos++
		if err := digits(); err != nil {
			return err
		}
	}
	if r.pos < len(d) && (d[r.pos] == 'e' || d[r.pos] == 'E') {
		r.pos++
		if r.pos < len(d) && (d[r.pos] == '+' || d[r.pos] == '-') {
			r.pos++
		}
		if err := digits(); err != nil {
			return err
		}
	}
	return nil
}

// skipString consumes a string without decoding it, checking its escapes and that it holds no
// control character.
func (r *nodeReader) skipString() error {
	if r.peek() != '"' {
		return r.syntax("expected a string")
	}
	d := r.data
	for i := r.pos + 1; i < len(d); i++ {
		if stringChar[d[i]] {
			continue
		}
		switch c := d[i]; {
		case c == '"':
			r.pos = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(d) {
				r.pos = len(d)
				return errEnd
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if _, ok := hex4(d, i+2); !ok {
					r.pos = i
					if i+6 > len(d) {
						return errEnd
					}
					return r.syntax("invalid \\u escape")
				}
				i += 5
			default:
				r.pos = i
				return r.syntax("invalid escape")
			}
		case c < 0x20:
			r.pos = i
			return r.syntax("control character in string")
		}
		// Non-ASCII bytes are taken as they are.
	}
	r.pos = len(d)
	return errEnd
}

// raw consumes one value and returns its bytes (a slice of data).
func (r *nodeReader) raw() ([]byte, error) {
	r.peek()
	start := r.pos
	if err := r.skip(); err != nil {
		return nil, err
	}
	return r.data[start:r.pos:r.pos], nil
}

// object reads an object, calling field with each key; field consumes the value and reports true,
// or reports false without consuming anything for a key it does not know. Such a key is then
// matched case-insensitively against names (field is called again with the name), else its value
// is skipped.
func (r *nodeReader) object(names []string, field func(key string) (bool, error)) error {
	if r.peek() != '{' {
		return r.syntax("expected an object")
	}
	if r.depth >= maxDepth {
		return r.syntax("exceeded max depth")
	}
	r.depth++
	err := r.objectFields(names, field)
	r.depth--
	return err
}

// objectFields is object after its opening brace.
func (r *nodeReader) objectFields(names []string, field func(key string) (bool, error)) error {
	r.pos++
	if r.peek() == '}' {
		r.pos++
		return nil
	}
	for {
		key, err := r.str()
		if err != nil {
			return err
		}
		if r.peek() != ':' {
			return r.syntax("expected ':' after an object key")
		}
		r.pos++
		known, err := field(key)
		if err != nil {
			return err
		}
		if !known {
			for _, name := range names {
				if strings.EqualFold(key, name) {
					if known, err = field(name); err != nil {
						return err
					}
					break
				}
			}
		}
		if !known {
			if err := r.skip(); err != nil {
				return err
			}
		}
		switch r.peek() {
		case ',':
			r.pos++
		case '}':
			r.pos++
			return nil
		default:
			return r.syntax("expected ',' or '}' in an object")
		}
	}
}

// array reads an array, calling elem for each element (elem consumes it).
func (r *nodeReader) array(elem func(i int) error) error {
	if r.peek() != '[' {
		return r.syntax("expected an array")
	}
	if r.depth >= maxDepth {
		return r.syntax("exceeded max depth")
	}
	r.depth++
	err := r.arrayElems(elem)
	r.depth--
	return err
}

// arrayElems is array after its opening bracket.
func (r *nodeReader) arrayElems(elem func(i int) error) error {
	r.pos++
	if r.peek() == ']' {
		r.pos++
		return nil
	}
	for i := 0; ; i++ {
		if err := elem(i); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.pos++
		case ']':
			r.pos++
			return nil
		default:
			return r.syntax("expected ',' or ']' in an array")
		}
	}
}

// setString decodes a string field (null leaves it as it is).
func (r *nodeReader) setString(dst *string, field string) error {
	switch r.peek() {
	case '"':
		s, err := r.str()
		*dst = s
		return err
	case 'n':
		if r.null() {
			return nil
		}
	}
	return r.typeError(field, "string")
}

// setBool decodes a bool field (null leaves it as it is).
func (r *nodeReader) setBool(dst *bool, field string) error {
	switch c := r.peek(); {
	case c == 't' && r.pos+4 <= len(r.data) && string(r.data[r.pos:r.pos+4]) == "true":
		r.pos += 4
		*dst = true
		return nil
	case c == 'f' && r.pos+5 <= len(r.data) && string(r.data[r.pos:r.pos+5]) == "false":
		r.pos += 5
		*dst = false
		return nil
	case r.null():
		return nil
	}
	return r.typeError(field, "bool")
}

// setTime decodes a time field with time.Time's own UnmarshalJSON, as encoding/json does. When sent
// is not nil it receives the string as sent (a slice of data), "" for null.
func (r *nodeReader) setTime(dst *time.Time, field string, sent *string) error {
	b, err := r.raw()
	if err != nil {
		return err
	}
	if err := dst.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("field %s: %w", field, err)
	}
	if sent != nil {
		*sent = ""
		if len(b) > 2 && b[0] == '"' {
			// UnmarshalJSON accepted it, so it holds no escape.
			*sent = unsafe.String(&b[1], len(b)-2)
		}
	}
	return nil
}

// setTimePtr decodes a *time.Time field: null sets it to nil.
func (r *nodeReader) setTimePtr(dst **time.Time, field string, a *nodeArena, sent *string) error {
	if r.null() {
		*dst = nil
		if sent != nil {
			*sent = ""
		}
		return nil
	}
	if *dst == nil {
		*dst = a.time()
	}
	return r.setTime(*dst, field, sent)
}

// setRaw decodes a json.RawMessage field: the value's bytes, null included.
func (r *nodeReader) setRaw(dst *json.RawMessage) error {
	b, err := r.raw()
	*dst = b
	return err
}

// structPtr decodes an object into *dst (allocating it when nil); null sets *dst to nil.
func structPtr[T any](r *nodeReader, dst **T, field string, alloc func() *T, decode func(*T) error) error {
	switch r.peek() {
	case '{':
		if *dst == nil {
			*dst = alloc()
		}
		return decode(*dst)
	case 'n':
		if r.null() {
			*dst = nil
			return nil
		}
	}
	return r.typeError(field, "object")
}

// slice decodes an array into *dst in place, as encoding/json does: element i is decoded into what
// the slice's backing array holds there (a repeated key's elements, even past the old length within
// its capacity), the slice grows by append past its capacity, and ends at the array's length. null
// sets *dst to nil, [] to a new empty slice.
func slice[T any](r *nodeReader, dst *[]T, field string, decode func(*T) error) error {
	switch r.peek() {
	case '[':
		s := (*dst)[:0]
		err := r.array(func(i int) error {
			if i < cap(s) {
				s = s[:i+1]
			} else {
				var zero T
				s = append(s, zero)
			}
			return decode(&s[i])
		})
		if len(s) == 0 {
			s = []T{} // a new empty slice, dropping the old backing array
		}
		*dst = s
		return err
	case 'n':
		if r.null() {
			*dst = nil
			return nil
		}
	}
	return r.typeError(field, "array")
}

// structValue decodes an object, or null (which leaves it as it is), into a struct element.
func structValue(r *nodeReader, field string, decode func() error) error {
	switch r.peek() {
	case '{':
		return decode()
	case 'n':
		if r.null() {
			return nil
		}
	}
	return r.typeError(field, "object")
}

// nodeArena hands out the pointed-to values of a page's issues from a few large allocations.
type nodeArena struct {
	times    []time.Time
	rules    []SourceRule
	entities []Entity
}

func (a *nodeArena) time() *time.Time {
	if len(a.times) == cap(a.times) {
		a.times = make([]time.Time, 0, 256)
	}
	a.times = a.times[:len(a.times)+1]
	return &a.times[len(a.times)-1]
}

func (a *nodeArena) rule() *SourceRule {
	if len(a.rules) == cap(a.rules) {
		a.rules = make([]SourceRule, 0, 64)
	}
	a.rules = a.rules[:len(a.rules)+1]
	return &a.rules[len(a.rules)-1]
}

func (a *nodeArena) entity() *Entity {
	if len(a.entities) == cap(a.entities) {
		a.entities = make([]Entity, 0, 64)
	}
	a.entities = a.entities[:len(a.entities)+1]
	return &a.entities[len(a.entities)-1]
}

var issueFields = []string{"id", "sourceRule", "sourceRules", "type", "createdAt", "updatedAt", "dueAt",
	"resolvedAt", "statusChangedAt", "projects", "status", "severity", "entitySnapshot", "serviceTickets", "notes"}

// decodeIssueNode decodes one node (an object, or null which leaves is as it is) into is.
func (r *nodeReader) decodeIssueNode(is *Issue, a *nodeArena) error {
	if r.null() {
		return nil
	}
	if r.peek() != '{' {
		return r.typeError("(node)", "wiz.Issue")
	}
	return r.object(issueFields, func(key string) (bool, error) {
		var err error
		switch key {
		case "id":
			err = r.setString(&is.ID, key)
		case "sourceRule":
			err = structPtr(r, &is.SourceRule, key, a.rule, func(sr *SourceRule) error { return r.decodeRule(sr) })
		case "sourceRules":
			err = slice(r, &is.SourceRules, key, func(sr *SourceRule) error {
				return structValue(r, key, func() error { return r.decodeRule(sr) })
			})
		case "type":
			err = r.setString(&is.Type, key)
		case "createdAt":
			err = r.setTime(&is.CreatedAt, key, &is.createdAtSent)
		case "updatedAt":
			err = r.setTimePtr(&is.UpdatedAt, key, a, nil)
		case "dueAt":
			err = r.setTimePtr(&is.DueAt, key, a, &is.dueAtSent)
		case "resolvedAt":
			err = r.setTimePtr(&is.ResolvedAt, key, a, nil)
		case "statusChangedAt":
			err = r.setTimePtr(&is.StatusChangedAt, key, a, nil)
		case "projects":
			err = slice(r, &is.Projects, key, func(p *Project) error {
				return structValue(r, key, func() error { return r.decodeProject(p) })
			})
		case "status":
			err = r.setString(&is.Status, key)
		case "severity":
			err = r.setString(&is.Severity, key)
		case "entitySnapshot":
			err = structPtr(r, &is.EntitySnapshot, key, a.entity, func(e *Entity) error { return r.decodeEntity(e) })
		case "serviceTickets":
			err = slice(r, &is.ServiceTickets, key, func(t *Ticket) error {
				return structValue(r, key, func() error { return r.decodeTicket(t) })
			})
		case "notes":
			err = slice(r, &is.Notes, key, func(n *Note) error {
				return structValue(r, key, func() error { return r.decodeNote(n, a) })
			})
		default:
			return false, nil
		}
		return true, err
	})
}

var ruleFields = []string{"__typename", "id", "name", "description", "resolutionRecommendation",
	"securitySubCategories", "sourceType", "type", "remediationInstructions", "serviceType"}

func (r *nodeReader) decodeRule(sr *SourceRule) error {
	return r.object(ruleFields, func(key string) (bool, error) {
		var err error
		switch key {
		case "__typename":
			err = r.setString(&sr.Typename, key)
		case "id":
			err = r.setString(&sr.ID, key)
		case "name":
			err = r.setString(&sr.Name, key)
		case "description":
			err = r.setString(&sr.Description, key)
		case "resolutionRecommendation":
			err = r.setString(&sr.ResolutionRecommendation, key)
		case "securitySubCategories":
			err = slice(r, &sr.SecuritySubCategories, key, func(sc *SecuritySubCategory) error {
				return structValue(r, key, func() error { return r.decodeSubCategory(sc) })
			})
		case "sourceType":
			err = r.setString(&sr.SourceType, key)
		case "type":
			err = r.setString(&sr.RuleType, key)
		case "remediationInstructions":
			err = r.setString(&sr.RemediationInstructions, key)
		case "serviceType":
			err = r.setString(&sr.ServiceType, key)
		default:
			return false, nil
		}
		return true, err
	})
}

var (
	subCategoryFields = []string{"title", "category"}
	nameField         = []string{"name"}
	categoryFields    = []string{"name", "framework"}
)

func (r *nodeReader) decodeSubCategory(sc *SecuritySubCategory) error {
	type category = struct {
		Name      string `json:"name"`
		Framework *struct {
			Name string `json:"name"`
		} `json:"framework"`
	}
	type framework = struct {
		Name string `json:"name"`
	}
	return r.object(subCategoryFields, func(key string) (bool, error) {
		switch key {
		case "title":
			return true, r.setString(&sc.Title, key)
		case "category":
			return true, structPtr(r, &sc.Category, key, func() *category { return new(category) }, func(c *category) error {
				return r.object(categoryFields, func(key string) (bool, error) {
					switch key {
					case "name":
						return true, r.setString(&c.Name, key)
					case "framework":
						return true, structPtr(r, &c.Framework, key, func() *framework { return new(framework) }, func(f *framework) error {
							return r.object(nameField, func(key string) (bool, error) {
								if key != "name" {
									return false, nil
								}
								return true, r.setString(&f.Name, key)
							})
						})
					}
					return false, nil
				})
			})
		}
		return false, nil
	})
}

var projectFields = []string{"id", "name", "slug", "businessUnit", "riskProfile", "projectOwners", "securityChampions"}

func (r *nodeReader) decodeProject(p *Project) error {
	type riskProfile = struct {
		BusinessImpact string `json:"businessImpact"`
	}
	return r.object(projectFields, func(key string) (bool, error) {
		var err error
		switch key {
		case "id":
			err = r.setString(&p.ID, key)
		case "name":
			err = r.setString(&p.Name, key)
		case "slug":
			err = r.setString(&p.Slug, key)
		case "businessUnit":
			err = r.setString(&p.BusinessUnit, key)
		case "riskProfile":
			err = structPtr(r, &p.RiskProfile, key, func() *riskProfile { return new(riskProfile) }, func(rp *riskProfile) error {
				return r.object(businessImpactField, func(key string) (bool, error) {
					if key != "businessImpact" {
						return false, nil
					}
					return true, r.setString(&rp.BusinessImpact, key)
				})
			})
		case "projectOwners":
			err = slice(r, &p.ProjectOwners, key, func(pp *Person) error {
				return structValue(r, key, func() error { return r.decodePerson(pp) })
			})
		case "securityChampions":
			err = slice(r, &p.SecurityChampions, key, func(pp *Person) error {
				return structValue(r, key, func() error { return r.decodePerson(pp) })
			})
		default:
			return false, nil
		}
		return true, err
	})
}

var (
	businessImpactField = []string{"businessImpact"}
	personFields        = []string{"name", "email"}
)

func (r *nodeReader) decodePerson(p *Person) error {
	return r.object(personFields, func(key string) (bool, error) {
		switch key {
		case "name":
			return true, r.setString(&p.Name, key)
		case "email":
			return true, r.setString(&p.Email, key)
		}
		return false, nil
	})
}

var entityFields = []string{"id", "type", "nativeType", "name", "status", "cloudPlatform", "cloudProviderURL",
	"providerId", "region", "resourceGroupExternalId", "subscriptionExternalId", "subscriptionName",
	"subscriptionTags", "tags", "externalId"}

func (r *nodeReader) decodeEntity(e *Entity) error {
	return r.object(entityFields, func(key string) (bool, error) {
		var err error
		switch key {
		case "id":
			err = r.setString(&e.ID, key)
		case "type":
			err = r.setString(&e.Type, key)
		case "nativeType":
			err = r.setString(&e.NativeType, key)
		case "name":
			err = r.setString(&e.Name, key)
		case "status":
			err = r.setString(&e.Status, key)
		case "cloudPlatform":
			err = r.setString(&e.CloudPlatform, key)
		case "cloudProviderURL":
			err = r.setString(&e.CloudProviderURL, key)
		case "providerId":
			err = r.setString(&e.ProviderID, key)
		case "region":
			err = r.setString(&e.Region, key)
		case "resourceGroupExternalId":
			err = r.setString(&e.ResourceGroupExternalID, key)
		case "subscriptionExternalId":
			err = r.setString(&e.SubscriptionExternalID, key)
		case "subscriptionName":
			err = r.setString(&e.SubscriptionName, key)
		case "subscriptionTags":
			err = r.setRaw(&e.SubscriptionTags)
		case "tags":
			err = r.setRaw(&e.Tags)
		case "externalId":
			err = r.setString(&e.ExternalID, key)
		default:
			return false, nil
		}
		return true, err
	})
}

var ticketFields = []string{"externalId", "name", "url"}

func (r *nodeReader) decodeTicket(t *Ticket) error {
	return r.object(ticketFields, func(key string) (bool, error) {
		switch key {
		case "externalId":
			return true, r.setString(&t.ExternalID, key)
		case "name":
			return true, r.setString(&t.Name, key)
		case "url":
			return true, r.setString(&t.URL, key)
		}
		return false, nil
	})
}

var noteFields = []string{"id", "createdAt", "updatedAt", "text", "user", "serviceAccount"}

func (r *nodeReader) decodeNote(n *Note, a *nodeArena) error {
	return r.object(noteFields, func(key string) (bool, error) {
		var err error
		switch key {
		case "id":
			err = r.setString(&n.ID, key)
		case "createdAt":
			err = r.setTimePtr(&n.CreatedAt, key, a, nil)
		case "updatedAt":
			err = r.setTimePtr(&n.UpdatedAt, key, a, nil)
		case "text":
			err = r.setString(&n.Text, key)
		case "user":
			err = structPtr(r, &n.User, key, func() *Person { return new(Person) }, r.decodePerson)
		case "serviceAccount":
			err = structPtr(r, &n.ServiceAccount, key, func() *Person { return new(Person) }, r.decodePerson)
		default:
			return false, nil
		}
		return true, err
	})
}
