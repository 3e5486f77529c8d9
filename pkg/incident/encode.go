package incident

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the event as one line of JSON, without the trailing newline, and returns the
// extended buffer. The bytes are identical to json.Marshal(e) (same field order, sorted map keys, the
// same HTML-safe string escaping), written without reflection; it fails only where json.Marshal would
// (a NaN or infinite float, or a customFields value json.Marshal rejects), and then dst is returned
// unextended.
func (e *Event) AppendJSON(dst []byte) ([]byte, error) {
	start := len(dst)
	b := append(dst, `{"event_id":`...)
	b = appendString(b, e.EventID)
	b = append(b, `,"kind":`...)
	b = appendString(b, e.Kind)
	b = append(b, `,"instance":`...)
	b = appendString(b, e.Instance)
	b = append(b, `,"issue_id":`...)
	b = appendString(b, e.IssueID)
	b = append(b, `,"issue_status":`...)
	b = appendString(b, e.IssueStatus)
	b = append(b, `,"emitted_at":`...)
	b = appendString(b, e.EmittedAt)
	b = append(b, `,"incident":`...)
	b, err := e.Incident.AppendJSON(b)
	if err != nil {
		return dst[:start], fmt.Errorf("encode event %s: %w", e.EventID, err)
	}
	return append(b, '}'), nil
}

// AppendJSON appends the incident as JSON, byte for byte what json.Marshal produces.
func (inc *Incident) AppendJSON(dst []byte) ([]byte, error) {
	start := len(dst)
	b := append(dst, `{"name":`...)
	b = appendString(b, inc.Name)
	b = append(b, `,"type":`...)
	b = appendString(b, inc.Type)
	b = append(b, `,"severity":`...)
	b, err := appendFloat(b, inc.Severity)
	if err != nil {
		return dst[:start], fmt.Errorf("severity: %w", err)
	}
	b = append(b, `,"occurred":`...)
	b = appendString(b, inc.Occurred)
	b = append(b, `,"details":`...)
	b = appendString(b, inc.Details)
	b = append(b, `,"labels":`...)
	if inc.Labels == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, l := range inc.Labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = appendString(b, l.Type)
			b = append(b, `,"value":`...)
			b = appendString(b, l.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"customFields":`...)
	if b, err = appendCustomFields(b, inc.CustomFields, inc.customFieldOrder, inc.builtin); err != nil {
		return dst[:start], fmt.Errorf("customFields: %w", err)
	}
	b = append(b, `,"rawJSON":`...)
	b = appendString(b, inc.RawJSON)
	b = append(b, `,"dbotMirrorId":`...)
	b = appendString(b, inc.DbotMirrorID)
	return append(b, '}'), nil
}

// appendCustomFields writes cf and builtin (sorted by key; cf wins on a key both have) with their
// keys sorted: in the order of keys (sorted, see Incident.customFieldOrder) when that holds every
// key, else by sorting them.
func appendCustomFields(b []byte, cf map[string]any, keys []string, builtin []CustomField) ([]byte, error) {
	if len(builtin) > 0 {
		if len(cf) == 0 {
			return appendBuiltinFields(b, builtin), nil
		}
		merged := make(map[string]any, len(cf)+len(builtin))
		for _, f := range builtin {
			merged[f.Key] = f.Str
		}
		for k, v := range cf {
			merged[k] = v
		}
		cf = merged
	}
	if cf == nil || len(keys) < len(cf) {
		return appendValue(b, cf)
	}
	start := len(b)
	b = append(b, '{')
	n := 0
	for _, k := range keys {
		v, ok := cf[k]
		if !ok {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, v); err != nil {
			return b[:start], err
		}
	}
	if n != len(cf) {
		return appendValue(b[:start], cf) // a key outside the order
	}
	return append(b, '}'), nil
}

// appendBuiltinFields writes built-in custom fields, already sorted by key, as a JSON object.
func appendBuiltinFields(b []byte, fields []CustomField) []byte {
	b = append(b, '{')
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.Key)
		b = append(b, ':')
		b = appendString(b, f.Str)
	}
	return append(b, '}')
}

// appendValue writes the types Map produces without reflection and falls back to json.Marshal for
// anything else (a caller may put its own values into CustomFields).
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		return appendFloat(b, v)
	case []string:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, x); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		var small [32]string
		keys := small[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, v[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return b, err
		}
		return append(b, raw...), nil
	}
}

// appendFloat formats like encoding/json's float64 encoder (ES6 number formatting).
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, fmt.Errorf("unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// safeASCII[c] is true for the bytes appendString copies as they are: printable ASCII except the
// quote, the backslash and encoding/json's HTML-unsafe < > &.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString quotes s exactly as encoding/json does by default: short escapes for \" \\ \b \f \n
// \r \t, \u00XX for other control characters and for < > &, \u2028 and \u2029 escaped, invalid UTF-8
// replaced by \ufffd.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Copy runs of safe bytes in one go: most of an issue's JSON is plain ASCII.
		for i < len(s) && safeASCII[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
