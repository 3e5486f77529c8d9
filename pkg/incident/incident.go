// Package incident holds wizfetch's output model: the XSOAR incident every sink renders from
// (DESIGN.md §6), the mapper that builds it from a Wiz issue with the Wiz XSOAR pack's customFields
// (WIZ_API.md §6, with the pack's bugs fixed) and marshals it to encoding/json's bytes (through
// goccy/go-json, json.go), and the event that carries it through the outbox, whose line
// (Event.Line) is built in one place.
package incident

import (
	"net"
	"net/url"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Label is one XSOAR incident label. Values are always strings.
type Label struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Incident is an XSOAR incident (DESIGN.md §6). Field order is the JSON order.
type Incident struct {
	// Name is "<source rule name> - <issue id>", or "No sourceRule - <issue id>" without a rule.
	Name string `json:"name"`
	// Type is the incident type chosen by pkg/classify.
	Type string `json:"type"`
	// Severity is XSOAR's scale: CRITICAL 4, HIGH 3, MEDIUM 2, LOW 1, INFORMATIONAL 0.5, else 0.
	Severity float64 `json:"severity"`
	// Occurred is createdAt exactly as Wiz sent it (RFC 3339 with microseconds).
	Occurred string `json:"occurred"`
	// Details is the source rule's description.
	Details string `json:"details"`
	// Labels is the label set documented on Mapper.Map; never nil.
	Labels []Label `json:"labels"`
	// CustomFields maps XSOAR cliNames to values (see Mapper.Map); never nil.
	CustomFields map[string]any `json:"customFields"`
	// RawJSON is the issue node's JSON, as a string, byte for byte as Wiz sent it.
	RawJSON string `json:"rawJSON"`
	// DbotMirrorID is the Wiz issue id.
	DbotMirrorID string `json:"dbotMirrorId"`

	// clipped counts the strings the mapper clipped (see Clipped).
	clipped int
}

// SeverityScore converts a Wiz severity to XSOAR's scale: CRITICAL 4, HIGH 3, MEDIUM 2, LOW 1,
// INFORMATIONAL 0.5, anything else (null, a future value) 0. Case-insensitive.
func SeverityScore(severity string) float64 {
	switch severity {
	case "CRITICAL":
		return 4
	case "HIGH":
		return 3
	case "MEDIUM":
		return 2
	case "LOW":
		return 1
	case "INFORMATIONAL":
		return 0.5
	}
	if up := strings.ToUpper(severity); up != severity {
		return SeverityScore(up)
	}
	return 0
}

// defaultAppBase is the commercial Wiz portal, the only host the XSOAR pack knows.
const defaultAppBase = "https://app.wiz.io"

// AppBaseURL derives the Wiz portal base URL (no trailing slash) from a tenant's GraphQL API URL,
// given with or without scheme and /graphql. The rule generalises Wiz's naming: drop a leading "api"
// label, then the data-centre label when four or more labels remain, and keep the result when it is
// a host under wiz.io or wiz.us with at least three labels:
//
//	https://api.us1.app.wiz.io/graphql -> https://app.wiz.io
//	https://api.us17.app.wiz.us        -> https://app.wiz.us   (FedRAMP)
//	api.usgov1.gov.wiz.io              -> https://gov.wiz.io   (AWS GovCloud)
//	api.test.wiz.io                    -> https://test.wiz.io
//
// Anything else (loopback such as the simulator, IP addresses, proxies, unparsable input) gives
// https://app.wiz.io, the pack's behaviour, because no better guess exists.
func AppBaseURL(apiURL string) string {
	s := strings.TrimSpace(apiURL)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return defaultAppBase
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" || net.ParseIP(host) != nil {
		return defaultAppBase
	}
	labels := strings.Split(host, ".")
	if labels[0] == "api" {
		labels = labels[1:]
		if len(labels) >= 4 {
			labels = labels[1:]
		}
	}
	if len(labels) < 3 {
		return defaultAppBase
	}
	for _, l := range labels {
		if l == "" {
			return defaultAppBase
		}
	}
	host = strings.Join(labels, ".")
	if !strings.HasSuffix(host, ".wiz.io") && !strings.HasSuffix(host, ".wiz.us") {
		return defaultAppBase
	}
	return "https://" + host
}

// IssueURL is the portal link to one issue: appBase + "/issues#~(issue~'<id>)", the jsurl-encoded
// state the XSOAR pack uses. The id is encoded as jsurl encodes strings ([A-Za-z0-9_.-] as is, "$" as
// "!", other characters as *xx or **xxxx), so an odd id cannot break the fragment; Wiz's UUIDs pass
// unchanged.
func IssueURL(appBase, issueID string) string {
	appBase = strings.TrimRight(appBase, "/")
	b := make([]byte, 0, len(appBase)+len(issueID)+20)
	b = append(b, appBase...)
	b = append(b, "/issues#~(issue~'"...)
	b = appendJSURLString(b, issueID)
	b = append(b, ')')
	return string(b)
}

// appendJSURLString encodes s like jsurl's encode: UTF-16 code units, below 0x100 as *xx, else **xxxx.
func appendJSURLString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
			b = append(b, byte(r))
		case r == '$':
			b = append(b, '!')
		case r < 0x100:
			b = append(b, '*', hex[r>>4], hex[r&15])
		default:
			units := []rune{r}
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError || r2 != utf8.RuneError {
				units = []rune{r1, r2}
			}
			for _, u := range units {
				b = append(b, '*', '*', hex[u>>12&15], hex[u>>8&15], hex[u>>4&15], hex[u&15])
			}
		}
	}
	return b
}
