package feed

import (
	"encoding/json"
	"time"
)

// EventHeader is everything of an event line but its incident (DESIGN.md §6).
type EventHeader struct {
	EventID     string
	Kind        string
	Instance    string
	IssueID     string
	IssueStatus string
	EmittedAt   time.Time
}

// AppendEvent appends one event line (without a newline) in the field order of DESIGN.md §6:
// {"event_id","kind","instance","issue_id","issue_status","emitted_at","incident"}. incidentJSON must be
// a JSON object; it is embedded as is (no re-encoding: this runs once per event on the hot path).
func AppendEvent(dst []byte, h EventHeader, incidentJSON []byte) []byte {
	dst = AppendEventPrefix(dst, h)
	dst = append(dst, incidentJSON...)
	return append(dst, eventSuffix...)
}

// AppendEventPrefix appends what comes before the incident in AppendEvent's line; eventSuffix comes
// after it.
func AppendEventPrefix(dst []byte, h EventHeader) []byte {
	return appendEmittedAt(appendEventHead(dst, h), h.EmittedAt)
}

// appendEventHead appends the start of AppendEventPrefix's output, up to the opening quote of
// emitted_at: everything that is known before the commit.
func appendEventHead(dst []byte, h EventHeader) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, h.EventID)
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, h.Kind)
	dst = append(dst, `,"instance":`...)
	dst = appendString(dst, h.Instance)
	dst = append(dst, `,"issue_id":`...)
	dst = appendString(dst, h.IssueID)
	dst = append(dst, `,"issue_status":`...)
	dst = appendString(dst, h.IssueStatus)
	return append(dst, `,"emitted_at":"`...)
}

// appendEmittedAt finishes what appendEventHead started.
func appendEmittedAt(dst []byte, at time.Time) []byte {
	dst = at.UTC().AppendFormat(dst, time.RFC3339)
	return append(dst, `","incident":`...)
}

// eventSuffix closes an event line after its incident.
const eventSuffix = "}"

// appendString appends s as a JSON string: plain ASCII is copied, anything else goes through
// encoding/json so escaping is always right.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // marshalling a string cannot fail
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
