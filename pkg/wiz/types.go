package wiz

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Issue is one Wiz issue as selected by the issues query (WIZ_API.md §3). Every pointer or slice may be
// nil: real data has nulls almost everywhere. Timestamps keep Wiz's microsecond precision.
type Issue struct {
	ID              string       `json:"id"`
	SourceRule      *SourceRule  `json:"sourceRule"` // deprecated by Wiz: see Rule
	SourceRules     []SourceRule `json:"sourceRules"`
	Type            string       `json:"type"`
	CreatedAt       time.Time    `json:"createdAt"`
	UpdatedAt       *time.Time   `json:"updatedAt"`
	DueAt           *time.Time   `json:"dueAt"`
	ResolvedAt      *time.Time   `json:"resolvedAt"`
	StatusChangedAt *time.Time   `json:"statusChangedAt"`
	// ResolutionReason is why a RESOLVED or REJECTED issue was closed (wizdef.ResolutionReasons),
	// null for an open one; the XSOAR mirror names it when it closes the incident.
	ResolutionReason *string   `json:"resolutionReason"`
	Projects         []Project `json:"projects"`
	Status           string    `json:"status"`
	Severity         string    `json:"severity"`
	EntitySnapshot   *Entity   `json:"entitySnapshot"`
	ServiceTickets   []Ticket  `json:"serviceTickets"`
	Notes            []Note    `json:"notes"`

	// createdAtSent and dueAtSent are the timestamps' strings exactly as Wiz sent them (see
	// SentCreatedAt), kept by UnmarshalJSON.
	createdAtSent, dueAtSent string
	// decodeErr is why the node did not decode as an issue (decodeNode), reported by Defects.
	decodeErr string
}

// decodeNode decodes one node of an issues page. A node that is valid JSON but not an issue (a field
// of the wrong type, a timestamp that does not parse) comes back as an Issue holding only its id,
// when that much decodes, and the reason, which Defects reports first: the feed rejects it like any
// other defective node (recorded with its raw JSON, counted, and the window moves on). Failing the
// whole page instead would stall the feed on that one node for good (issue 17: no input from Wiz may
// stall a feed).
func decodeNode(raw []byte) Issue {
	var is Issue
	err := is.UnmarshalJSON(raw)
	if err == nil {
		return is
	}
	var id struct {
		ID string `json:"id"`
	}
	_ = decodeJSON(raw, &id) // best effort: an id of the wrong type stays ""
	return Issue{ID: id.ID, decodeErr: shorten(err.Error())}
}

// SentCreatedAt returns createdAt exactly as it was sent when the issue was decoded from JSON (an
// issues page, a stored raw node), else "" (the issue was built another way, or createdAt was null).
func (i *Issue) SentCreatedAt() string { return i.createdAtSent }

// SentDueAt returns dueAt exactly as it was sent when the issue was decoded from JSON and dueAt
// was set, else "".
func (i *Issue) SentDueAt() string { return i.dueAtSent }

// issueFields is Issue without its methods, for UnmarshalJSON to decode into.
type issueFields Issue

// UnmarshalJSON decodes an issue as encoding/json decodes the plain struct (decodeJSON), and keeps
// createdAt and dueAt as sent besides (SentCreatedAt, SentDueAt): the incident mapper passes Wiz's
// own strings on, so that a timestamp is never re-rendered with another precision or zone.
func (i *Issue) UnmarshalJSON(b []byte) error {
	// The outer createdAt and dueAt shadow the embedded struct's (the shallowest field of a name
	// wins), so they are decoded once, into sentTime.
	w := struct {
		issueFields
		CreatedAt sentTime  `json:"createdAt"`
		DueAt     *sentTime `json:"dueAt"`
	}{issueFields: issueFields(*i), CreatedAt: sentTime{i.CreatedAt, i.createdAtSent}}
	if i.DueAt != nil {
		w.DueAt = &sentTime{*i.DueAt, i.dueAtSent}
	}
	err := decodeJSON(b, &w)
	*i = Issue(w.issueFields)
	i.CreatedAt, i.createdAtSent = w.CreatedAt.t, w.CreatedAt.sent
	i.DueAt, i.dueAtSent = nil, ""
	if w.DueAt != nil {
		i.DueAt, i.dueAtSent = &w.DueAt.t, w.DueAt.sent
	}
	if err != nil {
		return fmt.Errorf("decode issue: %w", err)
	}
	return nil
}

// sentTime is a timestamp decoded as time.Time decodes it (RFC 3339, Wiz's microseconds kept),
// with the string it was sent as.
type sentTime struct {
	t    time.Time
	sent string
}

// UnmarshalJSON implements json.Unmarshaler; null leaves the value as it is, as for time.Time.
func (s *sentTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if err := s.t.UnmarshalJSON(b); err != nil {
		return err
	}
	// time.Time accepts only a quoted string without escapes: the text between the quotes is
	// what was sent.
	s.sent = string(b[1 : len(b)-1])
	return nil
}

// Rule returns the issue's source rule: the first of sourceRules, else the deprecated sourceRule,
// else nil. Wiz deprecated sourceRule in favour of the list (WIZ_API.md §10), may leave it null while
// the list holds the rule, and may drop it; every consumer (incident name, details, labels,
// customFields, classification, the issue command) takes the rule from here.
func (i *Issue) Rule() *SourceRule {
	if len(i.SourceRules) > 0 {
		return &i.SourceRules[0]
	}
	return i.SourceRule
}

// MaxIDBytes bounds the issue id wizfetch accepts. Wiz's ids are UUIDs (36 bytes); an id becomes part
// of store keys (bbolt refuses keys over 32 KiB, and would refuse the page's whole commit) and of
// every event line, so a longer one is not an issue wizfetch can keep.
const MaxIDBytes = 256

// maxEnumBytes bounds a status, severity or type value: Wiz's are short upper-case words.
const maxEnumBytes = 64

// Defects lists what keeps the issue from being an incident, or nil when nothing does: a required
// field that is null or missing (id, type, createdAt, status, severity — real Wiz data has nulls,
// WIZ_API.md §3, and an incident with status "" would pass every status filter and then stand for
// the issue for good), a node that did not decode (decodeNode), an id longer than MaxIDBytes, not
// UTF-8 or with control characters, and an enum value that no Wiz enum has the shape of (more than 64 bytes, or other than letters, digits and
// "_"). An enum value Wiz may add later (a new type, say) passes.
func (i *Issue) Defects() []string {
	var out []string
	if i.decodeErr != "" {
		out = append(out, "the node does not decode: "+i.decodeErr)
	}
	switch {
	case i.ID == "":
		out = append(out, "id is null")
	case len(i.ID) > MaxIDBytes:
		out = append(out, "id is longer than "+strconv.Itoa(MaxIDBytes)+" bytes")
	case !utf8.ValidString(i.ID) || hasControl(i.ID):
		out = append(out, "id holds control characters or invalid UTF-8")
	}
	if i.CreatedAt.IsZero() {
		out = append(out, "createdAt is null")
	}
	for _, f := range [...]struct{ name, v string }{{"status", i.Status}, {"severity", i.Severity}, {"type", i.Type}} {
		switch {
		case f.v == "":
			out = append(out, f.name+" is null")
		case !enumShaped(f.v):
			out = append(out, f.name+" is not an enum value")
		}
	}
	return out
}

// hasControl reports whether s holds an ASCII control character (NUL included).
func hasControl(s string) bool {
	for j := 0; j < len(s); j++ {
		if s[j] < 0x20 || s[j] == 0x7f {
			return true
		}
	}
	return false
}

// enumShaped reports whether v looks like a GraphQL enum value: 1 to 64 letters, digits or "_".
func enumShaped(v string) bool {
	if len(v) == 0 || len(v) > maxEnumBytes {
		return false
	}
	for j := 0; j < len(v); j++ {
		c := v[j]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// SourceRule is the union Control | CloudEventRule | CloudConfigurationRule, flattened; Typename
// tells which fields apply.
type SourceRule struct {
	Typename                 string                `json:"__typename"`
	ID                       string                `json:"id"`
	Name                     string                `json:"name"`
	Description              string                `json:"description"`
	ResolutionRecommendation string                `json:"resolutionRecommendation,omitempty"`
	SecuritySubCategories    []SecuritySubCategory `json:"securitySubCategories,omitempty"`
	SourceType               string                `json:"sourceType,omitempty"`
	RuleType                 string                `json:"type,omitempty"`
	RemediationInstructions  string                `json:"remediationInstructions,omitempty"`
	ServiceType              string                `json:"serviceType,omitempty"`
}

// SecuritySubCategory is a compliance framework entry of a Control.
type SecuritySubCategory struct {
	Title    string `json:"title"`
	Category *struct {
		Name      string `json:"name"`
		Framework *struct {
			Name string `json:"name"`
		} `json:"framework"`
	} `json:"category"`
}

// Project is a Wiz project an issue belongs to.
type Project struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Slug         string `json:"slug"`
	BusinessUnit string `json:"businessUnit"`
	RiskProfile  *struct {
		BusinessImpact string `json:"businessImpact"`
	} `json:"riskProfile"`
	ProjectOwners     []Person `json:"projectOwners"`
	SecurityChampions []Person `json:"securityChampions"`
}

// Person is a named user (project owner, security champion, note author).
type Person struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// Entity is the snapshot of the cloud resource an issue is about.
type Entity struct {
	ID                      string          `json:"id"`
	Type                    string          `json:"type"`
	NativeType              string          `json:"nativeType"`
	Name                    string          `json:"name"`
	Status                  string          `json:"status"`
	CloudPlatform           string          `json:"cloudPlatform"`
	CloudProviderURL        string          `json:"cloudProviderURL"`
	ProviderID              string          `json:"providerId"`
	Region                  string          `json:"region"`
	ResourceGroupExternalID string          `json:"resourceGroupExternalId"`
	SubscriptionExternalID  string          `json:"subscriptionExternalId"`
	SubscriptionName        string          `json:"subscriptionName"`
	SubscriptionTags        json.RawMessage `json:"subscriptionTags"`
	Tags                    json.RawMessage `json:"tags"`
	ExternalID              string          `json:"externalId"`
}

// Ticket is a service ticket (Jira, ServiceNow ...) linked to an issue.
type Ticket struct {
	ExternalID string `json:"externalId"`
	Name       string `json:"name"`
	URL        string `json:"url"`
}

// Note is a comment on an issue.
type Note struct {
	ID             string     `json:"id"`
	CreatedAt      *time.Time `json:"createdAt"`
	UpdatedAt      *time.Time `json:"updatedAt"`
	Text           string     `json:"text"`
	User           *Person    `json:"user"`
	ServiceAccount *Person    `json:"serviceAccount"`
}
