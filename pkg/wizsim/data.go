package wizsim

import "time"

// tsLayout is Wiz's timestamp format: RFC 3339 UTC to the microsecond, trailing zeros of the
// fraction left out, and the fraction with them when it is zero. A real IssuesTable answer captured
// on 2026-08-13 and published in a public repository shows both: "updatedAt":
// "2026-08-13T10:30:01.04991Z" (five digits) beside "2026-08-13T10:29:28.224635Z", and "dueAt":
// "2026-01-31T23:00:00Z". Timestamps are truncated to the microsecond first (micro), so at most
// six digits are written.
const tsLayout = time.RFC3339Nano

// maxLag is the largest ingestion lag of generated history (WIZ_API.md §3: issues become visible minutes
// after their timestamp).
const maxLag = 5 * time.Minute

// liveMaxLag is the largest lag of issues and changes made by live mode, short so a demo sees them soon.
const liveMaxLag = 3 * time.Second

func ts(t time.Time) string { return micro(t).Format(tsLayout) }

func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// rule is a shared source rule; tree is its immutable GraphQL value.
type rule struct {
	typename string
	id       string
	tree     map[string]any
}

// project is a shared Wiz project.
type project struct {
	id   string
	tree map[string]any
}

// note is a comment on an issue.
type note struct {
	id        string
	createdAt time.Time
	updatedAt time.Time
	text      string
	user      map[string]any // nil when written by a service account
	account   map[string]any
}

func (n *note) tree() map[string]any {
	m := map[string]any{"id": n.id, "createdAt": ts(n.createdAt), "updatedAt": ts(n.updatedAt), "text": n.text}
	m["user"] = nilIfEmpty(n.user)
	m["serviceAccount"] = nilIfEmpty(n.account)
	return m
}

func nilIfEmpty(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

// issue is one simulated issue. Fields are guarded by Server.mu; full is replaced, never modified.
type issue struct {
	id               string
	typ              string
	severity         string
	status           string
	rule             *rule // nil: sourceRule is null and sourceRules empty
	ruleListOnly     bool  // the rule is only in sourceRules; the deprecated sourceRule is null
	createdAt        time.Time
	updatedAt        time.Time
	dueAt            *time.Time
	resolvedAt       *time.Time
	statusChangedAt  *time.Time
	resolutionReason string
	projects         []*project
	entity           map[string]any
	tickets          []any
	notes            []*note
	visibleAt        time.Time
	full             []byte // pre-serialised standard selection
}

func optTS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// tree is the issue as a generic GraphQL value, the input of the field-by-field projection.
func (i *issue) tree() map[string]any {
	m := map[string]any{
		"__typename":      "Issue",
		"id":              i.id,
		"type":            i.typ,
		"createdAt":       ts(i.createdAt),
		"updatedAt":       ts(i.updatedAt),
		"dueAt":           optTS(i.dueAt),
		"resolvedAt":      optTS(i.resolvedAt),
		"statusChangedAt": optTS(i.statusChangedAt),
		"status":          i.status,
		"severity":        i.severity,
		"entitySnapshot":  i.entity,
		"serviceTickets":  i.tickets,
	}
	// sourceRule is deprecated in favour of sourceRules (WIZ_API.md §10): some issues fill only the
	// list. The projection returns each field only to a query that selects it.
	switch {
	case i.rule == nil:
		m["sourceRule"] = nil
		m["sourceRules"] = []any{}
	case i.ruleListOnly:
		m["sourceRule"] = nil
		m["sourceRules"] = []any{i.rule.tree}
	default:
		m["sourceRule"] = i.rule.tree
		m["sourceRules"] = []any{i.rule.tree}
	}
	if i.resolutionReason != "" {
		m["resolutionReason"] = i.resolutionReason
	} else {
		m["resolutionReason"] = nil
	}
	projects := make([]any, len(i.projects))
	for k, p := range i.projects {
		projects[k] = p.tree
	}
	m["projects"] = projects
	notes := make([]any, len(i.notes))
	for k, n := range i.notes {
		notes[k] = n.tree()
	}
	m["notes"] = notes
	evidenceFields(i, m)
	return m
}

// latest is the issue's newest own timestamp, the base of its visibility lag.
func (i *issue) latest() time.Time {
	if i.statusChangedAt != nil && i.statusChangedAt.After(i.createdAt) {
		return *i.statusChangedAt
	}
	return i.createdAt
}
