package incident

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// Bounds on one incident. Wiz sends whatever an issue holds: a rule description, a note or a tag can
// be any size, and one issue with a 200 MB field once cost the daemon 3.85 GB and wrote two 209 MB
// event lines — and a daemon under a memory limit that is killed on a page re-reads that page on
// every restart. So the mapper clips what is too long, with a marker that says so and how to get
// the whole issue (its raw JSON stays reachable by id: `wizfetch issue get <id>`).
const (
	// MaxFieldBytes bounds every string of an incident: the rule name in its name, details,
	// occurred, each label value, each customFields string (nested ones included), and each string
	// (value or key) inside rawJSON. A longer string keeps its first MaxFieldBytes bytes, cut at a
	// character boundary, followed by the clip marker:
	// "…[clipped by wizfetch: N bytes; full issue: wizfetch issue get <id>]", N its full size.
	MaxFieldBytes = 64 << 10
	// MaxRawJSONBytes bounds rawJSON (the issue node as JSON, before it is quoted as a string).
	// A node above it once its strings are clipped is replaced by a small JSON object holding the
	// issue's id, type, status, severity, createdAt and statusChangedAt and, under
	// "wizfetchClipped", the clip marker.
	MaxRawJSONBytes = 1 << 20
	// MaxEventBytes bounds one event line (DESIGN.md §6) for instance names under 2 KiB: the incident
	// gets MaxIncidentBytes of it, the rest is the event's own fields (issue ids are at most
	// wiz.MaxIDBytes, statuses 64 bytes).
	MaxEventBytes = 2 << 20
	// MaxIncidentBytes bounds an incident's JSON. MapJSON first replaces a larger incident's
	// rawJSON by the small object above; an incident still larger (thousands of projects, say) is
	// refused with ErrTooLarge, and the caller records the issue instead.
	MaxIncidentBytes = MaxEventBytes - 8<<10
)

// maxTimestampBytes bounds a timestamp kept "as sent": time.Time accepts fractions of a second of
// any length, so a longer one is formatted from the parsed time instead.
const maxTimestampBytes = 64

// ErrTooLarge is returned by MapJSON for an issue whose incident stays above
// MaxIncidentBytes even with its rawJSON replaced.
var ErrTooLarge = errors.New("incident too large")

// ClipMarker is what follows the kept part of a clipped string: size is the string's full size in
// bytes, issueID the issue it belongs to.
func ClipMarker(size int, issueID string) string {
	return "…[clipped by wizfetch: " + strconv.Itoa(size) + " bytes; full issue: wizfetch issue get " + issueID + "]"
}

// clipString returns s, or when it is longer than MaxFieldBytes its clipped form and true.
func clipString(s, issueID string) (string, bool) {
	if len(s) <= MaxFieldBytes {
		return s, false
	}
	cut := MaxFieldBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ClipMarker(len(s), issueID), true
}

// clipIncident clips every string of inc but Name (clipped by incidentName, so that the issue id at
// its end stays) and RawJSON (clipRawJSON), of its built-in custom fields and of the values of extra
// (mapping.fields), and counts the strings it clipped.
func clipIncident(inc *Incident, builtin *builtinFields, extra map[string]any, issueID string) int {
	n := 0
	clip := func(s *string) {
		if len(*s) > MaxFieldBytes {
			*s, _ = clipString(*s, issueID)
			n++
		}
	}
	clip(&inc.Details)
	clip(&inc.Occurred)
	for i := range inc.Labels {
		clip(&inc.Labels[i].Value)
	}
	for _, f := range builtin.fields() {
		clip(f.value)
	}
	for k, v := range extra {
		if c, clipped := clipValue(v, issueID); clipped > 0 {
			extra[k] = c
			n += clipped
		}
	}
	return n
}

// clipValue clips the strings of a customFields value (nativeValue's types, nested) and counts them.
// A json.Number too long to be a number anyone means is clipped as a string.
func clipValue(v any, issueID string) (any, int) {
	switch v := v.(type) {
	case string:
		if c, ok := clipString(v, issueID); ok {
			return c, 1
		}
	case json.Number:
		// A number literal of more than 64 KiB (1e999… is valid JSON) becomes a clipped string.
		if c, ok := clipString(string(v), issueID); ok {
			return c, 1
		}
	case []string:
		n := 0
		for i := range v {
			var ok bool
			if v[i], ok = clipString(v[i], issueID); ok {
				n++
			}
		}
		return v, n
	case []any:
		n := 0
		for i := range v {
			var k int
			v[i], k = clipValue(v[i], issueID)
			n += k
		}
		return v, n
	case map[string]any:
		n := 0
		for key, x := range v {
			if c, k := clipValue(x, issueID); k > 0 {
				v[key] = c
				n += k
			}
		}
		return v, n
	}
	return v, 0
}

// clipRawJSON returns what replaces raw as the rawJSON of the issue's incident, with clipped > 0,
// or clipped 0 when raw is kept as it is (no string in it is longer than MaxFieldBytes, and it is
// not longer than MaxRawJSONBytes). The replacement is a copy of raw with those strings clipped
// (the marker inside the string, so the JSON stays valid), or when that is still above
// MaxRawJSONBytes the stub of the issue; clipped counts the strings clipped, the stub as one more.
func clipRawJSON(raw []byte, issue *wiz.Issue) (replacement string, clipped int) {
	if len(raw) <= MaxFieldBytes {
		return "", 0 // no string inside can be longer than the whole node
	}
	b, n, fits := clipJSONStrings(raw, MaxFieldBytes, MaxRawJSONBytes, issue.ID)
	switch {
	case !fits:
		return rawStub(issue, len(raw)), n + 1
	case n == 0:
		return "", 0
	}
	return string(b), n
}

// clipJSONStrings returns raw with every string token (value or key) whose JSON text, escapes
// included, is longer than limit bytes cut to at most limit bytes — never inside an escape, a
// surrogate pair or a UTF-8 sequence — and followed by the clip marker, and how many it clipped;
// raw itself when nothing is clipped. fits is false (and the bytes nil) when the result would be
// longer than max: clipping stops there, so a huge node never costs a copy of itself. Bytes outside
// strings are copied as they are, so valid JSON stays valid (and invalid JSON as invalid as it was).
func clipJSONStrings(raw []byte, limit, max int, issueID string) (out []byte, n int, fits bool) {
	copied := 0
	for i := 0; i < len(raw); i++ {
		if raw[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(raw) && raw[j] != '"' {
			if raw[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(raw) {
			break // an unterminated string: nothing more to clip
		}
		body := raw[i+1 : j]
		if len(body) > limit {
			if out == nil {
				out = make([]byte, 0, min(len(raw), max+1))
			}
			out = append(out, raw[copied:i+1]...)
			out = append(out, body[:jsonCut(body, limit)]...)
			out = appendStringContent(out, ClipMarker(len(body), issueID))
			out = append(out, '"')
			copied = j + 1
			n++
			if len(out) > max {
				return nil, n, false
			}
		}
		i = j
	}
	if out == nil {
		return raw, 0, len(raw) <= max
	}
	if len(out)+len(raw)-copied > max {
		return nil, n, false
	}
	return append(out, raw[copied:]...), n, true
}

// jsonCut is the largest cut of a JSON string's text (between its quotes) at most limit bytes long
// that ends on a whole character: after an escape (a \uXXXX surrogate pair counts as one), or after
// a whole UTF-8 sequence.
func jsonCut(body []byte, limit int) int {
	i := 0
	for i < len(body) {
		size := 1
		switch c := body[i]; {
		case c == '\\' && i+1 < len(body) && body[i+1] == 'u':
			size = 6
			if hi, ok := hex4At(body, i+2); ok && 0xD800 <= hi && hi < 0xDC00 && i+7 < len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
				if lo, ok := hex4At(body, i+8); ok && 0xDC00 <= lo && lo < 0xE000 {
					size = 12 // a surrogate pair: one character
				}
			}
		case c == '\\':
			size = 2
		case c >= utf8.RuneSelf:
			_, size = utf8.DecodeRune(body[i:])
		}
		if i+size > limit {
			break
		}
		i += size
	}
	return min(i, len(body))
}

// hex4At reads four hex digits at i.
func hex4At(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	r, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	return rune(r), err == nil
}

// appendStringContent appends s escaped as inside a JSON string (by encoding/json), without the
// quotes.
func appendStringContent(dst []byte, s string) []byte {
	quoted, err := json.Marshal(s)
	if err != nil { // a string always marshals
		return dst
	}
	return append(dst, quoted[1:len(quoted)-1]...)
}

// rawStub is the rawJSON of an issue whose node is too large even with its strings clipped: what
// identifies the issue, and the clip marker with the node's full size.
func rawStub(issue *wiz.Issue, size int) string {
	stub := struct {
		ID              string `json:"id"`
		Type            string `json:"type,omitempty"`
		Status          string `json:"status,omitempty"`
		Severity        string `json:"severity,omitempty"`
		CreatedAt       string `json:"createdAt,omitempty"`
		StatusChangedAt string `json:"statusChangedAt,omitempty"`
		Clipped         string `json:"wizfetchClipped"`
	}{
		Clipped: ClipMarker(size, issue.ID),
	}
	stub.ID, _ = clipString(issue.ID, issue.ID)
	stub.Type, _ = clipString(issue.Type, issue.ID)
	stub.Status, _ = clipString(issue.Status, issue.ID)
	stub.Severity, _ = clipString(issue.Severity, issue.ID)
	if !issue.CreatedAt.IsZero() {
		stub.CreatedAt = issue.CreatedAt.UTC().Format(microLayout)
	}
	if t := issue.StatusChangedAt; t != nil && !t.IsZero() {
		stub.StatusChangedAt = t.UTC().Format(microLayout)
	}
	b, err := json.Marshal(stub)
	if err != nil { // strings and a marker: cannot fail
		return `{"wizfetchClipped":"clipped"}`
	}
	return string(b)
}

// Clipped counts the strings the mapper clipped to keep the incident within its bounds (see
// MaxFieldBytes); 0 means the incident is whole.
func (inc *Incident) Clipped() int { return inc.clipped }
