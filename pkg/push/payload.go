package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// Payload errors. ParsePayload's errors match exactly one of them with errors.Is.
var (
	// ErrBadJSON: the body is not one JSON object.
	ErrBadJSON = errors.New("body is not a JSON object")
	// ErrNoIssueID: the body names no issue (neither issue.id nor a top-level id).
	ErrNoIssueID = errors.New("no issue id")
	// ErrBadIssueID: the issue id is present but is not a UUID.
	ErrBadIssueID = errors.New("issue id is not a UUID")
)

// maxInfoLen bounds the informational fields of a Payload, in runes.
const maxInfoLen = 64

// Payload is what wizfetch keeps of a push. A push is only a notification (WIZ_API.md §7): the
// issue itself is re-fetched over GraphQL, so everything but IssueID is informational (logs).
type Payload struct {
	IssueID  string // lower-case UUID
	Status   string // issue status as rendered by the template, e.g. OPEN
	Severity string // issue severity, e.g. HIGH
	Trigger  string // trigger type: CREATED, UPDATED, RESOLVED, REOPENED (or whatever the template says)
	RuleName string // the issue's source rule: control.name or sourceRule.name
}

// ParsePayload reads a Wiz webhook body. It accepts Wiz's default template
//
//	{"trigger": {"type", "ruleId", "ruleName", ...}, "issue": {"id", "status", "severity", ...},
//	 "resource": {...}, "control" | "sourceRule": {"id", "name", ...}}
//
// and the legacy flat template with top-level placeholders ({"id", "status", "severity", ...}).
// Operators edit templates, so only the issue id is required; fields of unexpected types are
// ignored rather than rejected. The id is returned in lower case.
func ParsePayload(body []byte) (Payload, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return Payload{}, fmt.Errorf("%w: invalid JSON at byte %d: %s", ErrBadJSON, syn.Offset, syn.Error())
		}
		return Payload{}, fmt.Errorf("%w: %s", ErrBadJSON, describeJSONError(err))
	}
	if top == nil { // the literal null
		return Payload{}, fmt.Errorf("%w: got null", ErrBadJSON)
	}

	issue := object(top["issue"])
	trigger := object(top["trigger"])
	rule := object(top["control"])
	if rule == nil {
		rule = object(top["sourceRule"])
	}

	// Everything but the id is only logged, and the sender controls it: clip it so that one push
	// cannot write a megabyte log line.
	p := Payload{
		Status:   clip(first(str(issue["status"]), str(top["status"])), maxInfoLen),
		Severity: clip(first(str(issue["severity"]), str(top["severity"])), maxInfoLen),
		Trigger:  clip(first(str(trigger["type"]), str(top["trigger"]), str(top["triggerType"])), maxInfoLen),
		RuleName: clip(first(str(rule["name"]), str(top["ruleName"]), str(top["controlName"])), maxInfoLen),
	}
	id := first(str(issue["id"]), str(top["issueId"]), str(top["id"]))
	if id == "" {
		return p, ErrNoIssueID
	}
	if !isUUID(id) {
		return p, fmt.Errorf("%w: %q", ErrBadIssueID, clip(id, 64))
	}
	p.IssueID = strings.ToLower(id)
	return p, nil
}

// describeJSONError renders a non-syntax decoding error without echoing body content.
func describeJSONError(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return "expected an object, got " + typ.Value
	}
	return err.Error()
}

// object decodes raw as a JSON object, or returns nil when it is anything else.
func object(raw json.RawMessage) map[string]json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// str returns raw as a trimmed string when it is a JSON string or number, else "".
func str(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return strings.TrimSpace(s)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(raw)
	}
	return ""
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// isUUID accepts only the canonical 8-4-4-4-12 form Wiz uses (uuid.Parse alone also accepts
// braces, urn: prefixes and the unhyphenated form).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
