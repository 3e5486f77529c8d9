package incident

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// noRuleName names an incident whose issue has no source rule, as the XSOAR pack does.
const noRuleName = "No sourceRule"

// microLayout formats a timestamp the way Wiz sends them (RFC 3339, microseconds, Z), used only when
// the raw JSON does not carry the value as a string.
const microLayout = "2006-01-02T15:04:05.000000Z07:00"

// Mapper builds incidents from issues for one Wiz tenant. It is immutable after NewMapper and safe
// for concurrent use.
type Mapper struct {
	appBase string
	fields  []fieldPath // mapping.fields sorted by cliName, so application order is deterministic
}

type fieldPath struct {
	cliName string
	path    string
}

// NewMapper validates the mapping.fields of one instance and returns its Mapper. apiURL is the
// tenant's wiz.api_url; it decides the portal host of wizissueurl (see AppBaseURL).
//
// Each mapping.fields entry is cliName -> GJSON path (github.com/tidwall/gjson syntax) evaluated on
// the raw issue JSON. gjson has no compile step, so validation is structural: a cliName must be
// lowercase letters, digits or "_" (XSOAR machine names; viper lower-cases map keys anyway), a path
// must be non-empty without surrounding whitespace, with balanced (), [] and {} outside quoted
// strings, and must evaluate without panicking. Every problem is reported, one line per key.
func NewMapper(m config.Mapping, apiURL string) (*Mapper, error) {
	mp := &Mapper{appBase: AppBaseURL(apiURL)}
	var errs []error
	for cli, path := range m.Fields {
		if err := checkCLIName(cli); err != nil {
			errs = append(errs, fmt.Errorf("mapping.fields: key %q: %w", cli, err))
			continue
		}
		if err := checkPath(path); err != nil {
			errs = append(errs, fmt.Errorf("mapping.fields.%s: %w", cli, err))
			continue
		}
		mp.fields = append(mp.fields, fieldPath{cliName: cli, path: path})
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(mp.fields, func(a, b fieldPath) int { return strings.Compare(a.cliName, b.cliName) })
	return mp, nil
}

// AppBase returns the Wiz portal base URL used for issue links.
func (m *Mapper) AppBase() string { return m.appBase }

func checkCLIName(s string) error {
	if s == "" {
		return errors.New("cliName must not be empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return errors.New("cliName must be lowercase letters, digits or _")
		}
	}
	return nil
}

// pathProbe is a small issue-shaped document a path is tried on at NewMapper.
const pathProbe = `{"id":"x","sourceRule":{"__typename":"Control","name":"n"},` +
	`"sourceRules":[{"__typename":"Control","name":"n"}],"projects":[{"name":"p"}],` +
	`"entitySnapshot":{"tags":{"k":"v"}},"notes":[{"text":"t"}]}`

func checkPath(path string) (err error) {
	if strings.TrimSpace(path) == "" {
		return errors.New("path must not be empty")
	}
	if strings.TrimSpace(path) != path {
		return errors.New("path must not start or end with whitespace")
	}
	var stack []byte
	inQuote := false
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '\\':
			i++ // escaped character
		case inQuote:
			if c == '"' {
				inQuote = false
			}
		case c == '"':
			inQuote = true
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case c == ')' || c == ']' || c == '}':
			open := map[byte]byte{')': '(', ']': '[', '}': '{'}[c]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return fmt.Errorf("path %q: unbalanced %q at offset %d", path, c, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote {
		return fmt.Errorf("path %q: unterminated string", path)
	}
	if len(stack) > 0 {
		return fmt.Errorf("path %q: unclosed %q", path, stack[len(stack)-1])
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("path %q: cannot be evaluated: %v", path, r)
		}
	}()
	_ = gjson.Get(pathProbe, path)
	return nil
}

// Map builds the incident of one issue. raw is the issue node's JSON exactly as Wiz sent it (it
// becomes rawJSON, and mapping.fields paths and the "as sent" timestamps are read from it); when raw
// is nil the issue is marshalled instead and timestamps are formatted in UTC with microseconds.
// incidentType comes from pkg/classify. A nil issue maps as an empty one. Map never fails: missing
// data leaves fields empty.
//
// Every string is kept within its bound (clip.go): a string longer than MaxFieldBytes is cut and
// marked, rawJSON becomes a copy with its long strings cut (or, above MaxRawJSONBytes, a small stub),
// and Incident.Clipped counts what was cut. mapping.fields and the "as sent" timestamps still read
// the whole node.
//
// The rule everything rule-derived comes from (name, details, the sourceRule* labels, framework
// labels, wizdetails, wizissueresolutionrecommendation) is issue.Rule(): the first of sourceRules,
// else the deprecated sourceRule (WIZ_API.md §10). Name is "<rule name> - <id>"; a rule with an empty
// name is named by its id; no rule (or neither name nor id) gives "No sourceRule - <id>".
//
// Labels, in this order, each only when its value is non-empty (types are stable, for XSOAR
// searches such as labels.type:cloudPlatform): issueType, severity, status, sourceRuleType
// (Control, CloudEventRule, CloudConfigurationRule), sourceRuleId, sourceRuleName, cloudPlatform,
// cloudAccount (subscriptionExternalId), resourceType, then one project label per project name, one
// framework label per distinct compliance framework of a Control's securitySubCategories, and one
// serviceTicket label per linked ticket (its url, else name, else externalId).
//
// CustomFields are the Wiz pack's cliNames (WIZ_API.md §6) plus wizissuestatus, wizissueseverity and
// wizissuetype. A field whose source is null, absent or empty is left out rather than sent as null or
// "", as XSOAR's own mapper does; so is a dueAt of null. Every value is a string, the type of the
// pack's fields (see builtinFields): wizissueprojects joins the project names (falling back to
// the project id) with ", ", and wizprojectowners and wizprojectsecuritychampions join the distinct
// person names across projects, in order, the same way. wizissuenote joins the notes' texts with a
// blank line ("\n\n"), oldest first as Wiz lists them (the pack read a "note" field that does not
// exist). wizissueurl links the tenant's own portal (AppBaseURL), not always app.wiz.io.
// wizissueduedate is dueAt as Wiz sent it. wizissueresolutionrecommendation is set for Control rules
// only.
//
// mapping.fields then add or override customFields: each path is evaluated on the raw JSON and the
// result's native value is stored (string, float64, bool, []any, map[string]any; a number too large
// for float64 is kept as json.Number). A path that matches nothing, or matches JSON null, sets nothing
// and does not delete the default value.
func (m *Mapper) Map(issue *wiz.Issue, raw []byte, incidentType string) Incident {
	inc, builtin, extra := m.mapIssue(issue, raw, incidentType)
	inc.CustomFields = builtin.withExtra(extra)
	return inc
}

// mapIssue is Map with the incident's customFields left nil and returned apart: the built-in fields
// and the mapping.fields that matched (nil when none did), which override the built-in field of
// the same name (its value is emptied here). Every string is clipped, and counted in inc.clipped.
func (m *Mapper) mapIssue(issue *wiz.Issue, raw []byte, incidentType string) (inc Incident, builtin builtinFields, extra map[string]any) {
	if issue == nil {
		issue = &wiz.Issue{}
	}
	// sent is what Wiz sent, for the "as sent" timestamps; rawJSON falls back to the marshalled issue.
	var rawJSON, sent string
	if raw != nil {
		rawJSON = string(raw)
		sent = rawJSON
	} else if b, err := json.Marshal(issue); err == nil {
		raw, rawJSON = b, string(b)
	}
	// mapping.fields and the "as sent" timestamps read the node whole; the incident keeps it within
	// MaxRawJSONBytes.
	keptRaw := rawJSON
	clippedRaw, clipped := clipRawJSON(raw, issue)
	if clipped > 0 {
		keptRaw = clippedRaw
	}
	rule := issue.Rule()
	name, nameClipped := incidentName(rule, issue.ID)
	inc = Incident{
		Name:         name,
		Type:         incidentType,
		Severity:     SeverityScore(issue.Severity),
		Occurred:     asSent(issue.SentCreatedAt(), sent, "createdAt", &issue.CreatedAt),
		Labels:       labels(issue, rule),
		RawJSON:      keptRaw,
		DbotMirrorID: issue.ID,
		clipped:      nameClipped,
	}
	if rule != nil {
		inc.Details = rule.Description
	}
	builtin = m.builtinFields(issue, rule, sent)
	for _, f := range m.fields {
		r := gjson.Get(rawJSON, f.path)
		if !r.Exists() || r.Type == gjson.Null {
			continue
		}
		if extra == nil {
			extra = make(map[string]any, len(m.fields))
		}
		extra[f.cliName] = nativeValue(r)
	}
	if extra != nil {
		for _, b := range builtin.fields() {
			if _, ok := extra[b.cliName]; ok {
				*b.value = ""
			}
		}
	}
	inc.clipped += clipped + clipIncident(&inc, &builtin, extra, issue.ID)
	return inc, builtin, extra
}

// document is an Incident as MapJSON marshals it: the same members in the same order
// (TestDocumentMembers), with customFields the built-in fields alone (a struct, the cheap and common
// case) or, when mapping.fields set any on the issue, the map Map would give.
type document struct {
	Name         string  `json:"name"`
	Type         string  `json:"type"`
	Severity     float64 `json:"severity"`
	Occurred     string  `json:"occurred"`
	Details      string  `json:"details"`
	Labels       []Label `json:"labels"`
	CustomFields any     `json:"customFields"`
	RawJSON      string  `json:"rawJSON"`
	DbotMirrorID string  `json:"dbotMirrorId"`
}

// MapJSON maps issue (Map) and returns the incident's JSON, the bytes encoding/json gives for Map's
// incident (marshalled by goccy/go-json, json.go), kept within MaxIncidentBytes: a larger incident
// is encoded again with the stub as its rawJSON (see MaxRawJSONBytes), and one still larger fails
// with ErrTooLarge. clipped counts the strings the mapper clipped (0: the incident is whole). An
// encoding error (a customFields value the encoder refuses) is returned as is.
func (m *Mapper) MapJSON(issue *wiz.Issue, raw []byte, incidentType string) (incidentJSON []byte, clipped int, err error) {
	if issue == nil {
		issue = &wiz.Issue{}
	}
	inc, builtin, extra := m.mapIssue(issue, raw, incidentType)
	doc := document{
		Name: inc.Name, Type: inc.Type, Severity: inc.Severity, Occurred: inc.Occurred, Details: inc.Details,
		Labels: inc.Labels, CustomFields: &builtin, RawJSON: inc.RawJSON, DbotMirrorID: inc.DbotMirrorID,
	}
	if extra != nil {
		doc.CustomFields = builtin.withExtra(extra)
	}
	out, err := marshalJSON(&doc)
	if err != nil {
		return nil, 0, fmt.Errorf("encode incident %.64q: %w", issue.ID, err)
	}
	if len(out) <= MaxIncidentBytes {
		return out, inc.clipped, nil
	}
	size := len(doc.RawJSON)
	if raw != nil {
		size = len(raw)
	}
	doc.RawJSON = rawStub(issue, size)
	if out, err = marshalJSON(&doc); err != nil {
		return nil, 0, fmt.Errorf("encode incident %.64q: %w", issue.ID, err)
	}
	if len(out) > MaxIncidentBytes {
		return nil, 0, fmt.Errorf("incident of issue %.64q is %d bytes, above %d even without its raw JSON: %w",
			issue.ID, len(out), MaxIncidentBytes, ErrTooLarge)
	}
	return out, inc.clipped + 1, nil
}

// incidentName is "<rule name> - <id>", the rule name clipped to MaxFieldBytes (the id is bounded
// by the feeds, wiz.MaxIDBytes).
func incidentName(rule *wiz.SourceRule, id string) (string, int) {
	name := noRuleName
	if rule != nil {
		if rule.Name != "" {
			name = rule.Name
		} else if rule.ID != "" {
			name = rule.ID
		}
	}
	name, clipped := clipString(name, id)
	if clipped {
		return name + " - " + id, 1
	}
	return name + " - " + id, 0
}

// asSent returns a timestamp exactly as Wiz sent it: decoded (what the page decoder kept, see
// wiz.Issue.SentCreatedAt), else the top-level key of raw, else t formatted with microseconds; ""
// when t is nil or zero (null in the issue).
func asSent(decoded, raw, key string, t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	if decoded != "" && len(decoded) <= maxTimestampBytes {
		return decoded
	}
	if decoded == "" {
		if r := gjson.Get(raw, key); r.Type == gjson.String && r.Str != "" && len(r.Str) <= maxTimestampBytes {
			return r.Str
		}
	}
	// (A timestamp sent with a fraction of a second thousands of digits long is valid RFC 3339.)
	return t.UTC().Format(microLayout)
}

// listSeparator joins the values of a list-valued source into one shortText field.
const listSeparator = ", "

func joinNotes(notes []wiz.Note) string {
	switch len(notes) {
	case 0:
		return ""
	case 1:
		return notes[0].Text
	}
	var b strings.Builder
	for i := range notes {
		if notes[i].Text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(notes[i].Text)
	}
	return b.String()
}

// appendPeople appends the names of people not already in dst.
func appendPeople(dst []string, people []wiz.Person) []string {
	for _, p := range people {
		if p.Name != "" && !slices.Contains(dst, p.Name) {
			dst = append(dst, p.Name)
		}
	}
	return dst
}

func labels(issue *wiz.Issue, rule *wiz.SourceRule) []Label {
	ls := make([]Label, 0, 12+len(issue.Projects)+len(issue.ServiceTickets))
	add := func(t, v string) {
		if v != "" {
			ls = append(ls, Label{Type: t, Value: v})
		}
	}
	add("issueType", issue.Type)
	add("severity", issue.Severity)
	add("status", issue.Status)
	if rule != nil {
		add("sourceRuleType", rule.Typename)
		add("sourceRuleId", rule.ID)
		add("sourceRuleName", rule.Name)
	}
	if e := issue.EntitySnapshot; e != nil {
		add("cloudPlatform", e.CloudPlatform)
		add("cloudAccount", e.SubscriptionExternalID)
		add("resourceType", e.Type)
	}
	for i := range issue.Projects {
		add("project", issue.Projects[i].Name)
	}
	if rule != nil && rule.Typename == "Control" {
		first := len(ls)
		for _, sc := range rule.SecuritySubCategories {
			if sc.Category == nil || sc.Category.Framework == nil || sc.Category.Framework.Name == "" {
				continue
			}
			name := sc.Category.Framework.Name
			if !slices.ContainsFunc(ls[first:], func(l Label) bool { return l.Value == name }) {
				add("framework", name)
			}
		}
	}
	for _, t := range issue.ServiceTickets {
		switch {
		case t.URL != "":
			add("serviceTicket", t.URL)
		case t.Name != "":
			add("serviceTicket", t.Name)
		default:
			add("serviceTicket", t.ExternalID)
		}
	}
	return ls
}

// nativeValue is gjson's Result.Value, except that a number that overflows float64 (valid JSON such
// as 1e999, which encoding/json cannot marshal as a float) is kept as its json.Number text.
func nativeValue(r gjson.Result) any {
	switch r.Type {
	case gjson.Number:
		if math.IsInf(r.Num, 0) || math.IsNaN(r.Num) {
			if json.Valid([]byte(r.Raw)) {
				return json.Number(strings.TrimSpace(r.Raw))
			}
			return nil
		}
		return r.Num
	case gjson.JSON:
		if r.IsArray() {
			out := make([]any, 0, 4)
			r.ForEach(func(_, v gjson.Result) bool {
				out = append(out, nativeValue(v))
				return true
			})
			return out
		}
		out := make(map[string]any)
		r.ForEach(func(k, v gjson.Result) bool {
			out[k.String()] = nativeValue(v)
			return true
		})
		return out
	default:
		return r.Value()
	}
}
