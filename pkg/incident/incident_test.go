package incident

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

func TestSeverityScore(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"CRITICAL", 4}, {"HIGH", 3}, {"MEDIUM", 2}, {"LOW", 1}, {"INFORMATIONAL", 0.5},
		{"high", 3}, {"Informational", 0.5}, {"", 0}, {"SEVERE", 0}, {"NONE", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := SeverityScore(tt.in); got != tt.want {
				t.Errorf("SeverityScore(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestAppBaseURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://api.us1.app.wiz.io/graphql", "https://app.wiz.io"},
		{"https://api.us17.app.wiz.io", "https://app.wiz.io"},
		{"api.eu1.app.wiz.io/graphql", "https://app.wiz.io"},
		{"https://API.US1.APP.WIZ.IO:443/graphql/", "https://app.wiz.io"},
		{"https://api.us30.app.wiz.us/graphql", "https://app.wiz.us"},
		{"https://api.usgov1.gov.wiz.io/graphql", "https://gov.wiz.io"},
		{"https://api.test.wiz.io/graphql", "https://test.wiz.io"},
		{"https://api.us1.app.wiz.io./graphql", "https://app.wiz.io"},
		{"http://127.0.0.1:8443/graphql", "https://app.wiz.io"},
		{"http://localhost:9000", "https://app.wiz.io"},
		{"http://[::1]:9000/graphql", "https://app.wiz.io"},
		{"https://wiz-proxy.corp.example.com/graphql", "https://app.wiz.io"},
		{"https://api.wiz.io.evil.example/graphql", "https://app.wiz.io"},
		{"https://evil-wiz.io/graphql", "https://app.wiz.io"},
		{"", "https://app.wiz.io"},
		{"://%%", "https://app.wiz.io"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := AppBaseURL(tt.in); got != tt.want {
				t.Errorf("AppBaseURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestIssueURL(t *testing.T) {
	tests := []struct{ base, id, want string }{
		{"https://app.wiz.io", "3b1e2c4d-5f60-4a71-8b92-a3b4c5d6e7f8",
			"https://app.wiz.io/issues#~(issue~'3b1e2c4d-5f60-4a71-8b92-a3b4c5d6e7f8)"},
		{"https://app.wiz.us/", "abc", "https://app.wiz.us/issues#~(issue~'abc)"},
		{"https://app.wiz.io", "a)b~c'd$ é😀",
			"https://app.wiz.io/issues#~(issue~'a*29b*7ec*27d!*20*e9**d83d**de00)"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := IssueURL(tt.base, tt.id); got != tt.want {
				t.Errorf("IssueURL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestName(t *testing.T) {
	const id = "11111111-2222-4333-8444-555555555555"
	tests := []struct {
		name  string
		issue wiz.Issue
		want  string
	}{
		{"sourceRule", wiz.Issue{ID: id, SourceRule: &wiz.SourceRule{ID: "wc-id-1", Name: "Exposed VM"}}, "Exposed VM - " + id},
		{"sourceRules list", wiz.Issue{ID: id, SourceRules: []wiz.SourceRule{{Name: "First"}, {Name: "Second"}}}, "First - " + id},
		{"sourceRules[0] wins over a differing sourceRule", wiz.Issue{ID: id, SourceRule: &wiz.SourceRule{Name: "Single"},
			SourceRules: []wiz.SourceRule{{Name: "List"}}}, "List - " + id},
		{"null sourceRule, rule in the list", wiz.Issue{ID: id, SourceRule: nil,
			SourceRules: []wiz.SourceRule{{Typename: "Control", ID: "wc-id-2", Name: "Listed"}}}, "Listed - " + id},
		{"empty list falls back to sourceRule", wiz.Issue{ID: id, SourceRule: &wiz.SourceRule{Name: "Single"},
			SourceRules: []wiz.SourceRule{}}, "Single - " + id},
		{"no rule", wiz.Issue{ID: id}, "No sourceRule - " + id},
		{"empty list", wiz.Issue{ID: id, SourceRules: []wiz.SourceRule{}}, "No sourceRule - " + id},
		{"rule without name uses id", wiz.Issue{ID: id, SourceRule: &wiz.SourceRule{ID: "wc-id-9"}}, "wc-id-9 - " + id},
		{"rule without name or id", wiz.Issue{ID: id, SourceRule: &wiz.SourceRule{}}, "No sourceRule - " + id},
	}
	m := mustMapper(t, config.Mapping{}, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Map(&tt.issue, nil, "T").Name; got != tt.want {
				t.Errorf("Name = %q, want %q", got, tt.want)
			}
		})
	}
}

func mustMapper(t testing.TB, m config.Mapping, apiURL string) *Mapper {
	t.Helper()
	mp, err := NewMapper(m, apiURL)
	if err != nil {
		t.Fatalf("NewMapper: %v", err)
	}
	return mp
}

func TestLabels(t *testing.T) {
	type fw = struct {
		Name string `json:"name"`
	}
	issue := &wiz.Issue{
		ID: "i", Type: "TOXIC_COMBINATION", Severity: "HIGH", Status: "OPEN",
		SourceRule: &wiz.SourceRule{Typename: "Control", ID: "wc-id-1", Name: "Rule",
			SecuritySubCategories: []wiz.SecuritySubCategory{
				{Title: "a", Category: &struct {
					Name      string `json:"name"`
					Framework *struct {
						Name string `json:"name"`
					} `json:"framework"`
				}{Name: "c", Framework: &fw{Name: "CIS"}}},
				{Title: "b", Category: nil},
				{Title: "c", Category: &struct {
					Name      string `json:"name"`
					Framework *struct {
						Name string `json:"name"`
					} `json:"framework"`
				}{Name: "c", Framework: &fw{Name: "CIS"}}},
			}},
		EntitySnapshot: &wiz.Entity{CloudPlatform: "GCP", SubscriptionExternalID: "proj-1", Type: "BUCKET"},
		Projects:       []wiz.Project{{ID: "p1", Name: "One"}, {ID: "p2"}},
		ServiceTickets: []wiz.Ticket{{URL: "https://t/1", Name: "T-1"}, {Name: "T-2"}, {ExternalID: "X-3"}, {}},
	}
	want := []Label{
		{"issueType", "TOXIC_COMBINATION"}, {"severity", "HIGH"}, {"status", "OPEN"},
		{"sourceRuleType", "Control"}, {"sourceRuleId", "wc-id-1"}, {"sourceRuleName", "Rule"},
		{"cloudPlatform", "GCP"}, {"cloudAccount", "proj-1"}, {"resourceType", "BUCKET"},
		{"project", "One"}, {"framework", "CIS"},
		{"serviceTicket", "https://t/1"}, {"serviceTicket", "T-2"}, {"serviceTicket", "X-3"},
	}
	got := mustMapper(t, config.Mapping{}, "").Map(issue, nil, "T").Labels
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labels:\n got %v\nwant %v", got, want)
	}
	empty := mustMapper(t, config.Mapping{}, "").Map(&wiz.Issue{}, nil, "T")
	if empty.Labels == nil || len(empty.Labels) != 0 {
		t.Errorf("empty issue labels = %#v, want non-nil empty", empty.Labels)
	}
	if empty.CustomFields == nil {
		t.Error("CustomFields must never be nil")
	}
}

const mappingRaw = `{"id":"abc","sourceRule":{"__typename":"Control","name":"R","description":"d",` +
	`"resolutionRecommendation":"fix it"},"type":"TOXIC_COMBINATION","severity":"LOW","status":"OPEN",` +
	`"createdAt":"2025-01-02T03:04:05.123456Z","dueAt":null,"projects":[{"id":"p","name":"Proj","projectOwners":[{"name":"O"}]}],` +
	`"entitySnapshot":{"id":"e","cloudPlatform":"AWS","name":"vm-1","region":"","tags":{"env":"prod","n":3},` +
	`"subscriptionTags":null,"big":1e999,"n":42.5,"ok":true},"notes":[{"text":"a"},{"text":"b"}]}`

func TestMappingFields(t *testing.T) {
	var issue wiz.Issue
	if err := json.Unmarshal([]byte(mappingRaw), &issue); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		fields map[string]string
		key    string
		want   any
		absent bool
	}{
		{"adds a string", map[string]string{"wizresourcename": "entitySnapshot.name"}, "wizresourcename", "vm-1", false},
		{"adds an object", map[string]string{"wiztags": "entitySnapshot.tags"}, "wiztags",
			map[string]any{"env": "prod", "n": float64(3)}, false},
		{"adds an array", map[string]string{"wiznotes": "notes.#.text"}, "wiznotes", []any{"a", "b"}, false},
		{"adds a number", map[string]string{"wizn": "entitySnapshot.n"}, "wizn", 42.5, false},
		{"adds a bool", map[string]string{"wizok": "entitySnapshot.ok"}, "wizok", true, false},
		{"huge number kept as text", map[string]string{"wizbig": "entitySnapshot.big"}, "wizbig", json.Number("1e999"), false},
		{"overrides a default", map[string]string{"wizdetails": "sourceRule.name"}, "wizdetails", "R", false},
		{"overrides with a modifier", map[string]string{"wizissueprojects": "projects.#.id"}, "wizissueprojects", []any{"p"}, false},
		{"no match keeps the default", map[string]string{"wizcloudplatform": "entitySnapshot.nope"}, "wizcloudplatform", "AWS", false},
		{"null keeps the default", map[string]string{"wizissuenote": "dueAt"}, "wizissuenote", "a\n\nb", false},
		{"no match adds nothing", map[string]string{"wizextra": "nothing.here"}, "wizextra", nil, true},
		{"null adds nothing", map[string]string{"wizsubtags": "entitySnapshot.subscriptionTags"}, "wizsubtags", nil, true},
		{"empty string is a value", map[string]string{"wizregion": "entitySnapshot.region"}, "wizregion", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustMapper(t, config.Mapping{Fields: tt.fields}, "")
			inc := m.Map(&issue, []byte(mappingRaw), "T")
			got, ok := inc.CustomFields[tt.key]
			if tt.absent {
				if ok {
					t.Errorf("%s = %#v, want absent", tt.key, got)
				}
				return
			}
			if !ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v (present %v), want %#v", tt.key, got, ok, tt.want)
			}
			line, err := json.Marshal(&inc)
			if err != nil || !json.Valid(line) {
				t.Errorf("json.Marshal: %v, valid %v", err, json.Valid(line))
			}
		})
	}
}

func TestDefaultCustomFields(t *testing.T) {
	var issue wiz.Issue
	if err := json.Unmarshal([]byte(mappingRaw), &issue); err != nil {
		t.Fatal(err)
	}
	inc := mustMapper(t, config.Mapping{}, "https://api.us3.app.wiz.us").Map(&issue, []byte(mappingRaw), "T")
	want := map[string]any{
		"wizissueid":                       "abc",
		"wizissueurl":                      "https://app.wiz.us/issues#~(issue~'abc)",
		"wizissuestatus":                   "OPEN",
		"wizissueseverity":                 "LOW",
		"wizissuetype":                     "TOXIC_COMBINATION",
		"wizdetails":                       "d",
		"wizissueresolutionrecommendation": "fix it",
		"wizissuenote":                     "a\n\nb",
		"wizissueprojects":                 "Proj",
		"wizprojectowners":                 "O",
		"wizcloudplatform":                 "AWS",
		"wizresourceid":                    "e",
	}
	if !reflect.DeepEqual(inc.CustomFields, want) {
		t.Errorf("customFields:\n got %#v\nwant %#v", inc.CustomFields, want)
	}
	if inc.Occurred != "2025-01-02T03:04:05.123456Z" || inc.Severity != 1 || inc.Details != "d" ||
		inc.DbotMirrorID != "abc" || inc.Type != "T" || inc.RawJSON != mappingRaw {
		t.Errorf("incident header wrong: %+v", inc)
	}
}

func TestResolutionRecommendationControlOnly(t *testing.T) {
	m := mustMapper(t, config.Mapping{}, "")
	for _, typ := range []string{"CloudEventRule", "CloudConfigurationRule", ""} {
		t.Run(typ, func(t *testing.T) {
			issue := &wiz.Issue{ID: "x", SourceRule: &wiz.SourceRule{Typename: typ, ResolutionRecommendation: "r"}}
			if v, ok := m.Map(issue, nil, "T").CustomFields["wizissueresolutionrecommendation"]; ok {
				t.Errorf("set for %q: %v", typ, v)
			}
		})
	}
}

func TestTimestampsWithoutRaw(t *testing.T) {
	created := time.Date(2025, 3, 4, 5, 6, 7, 890000000, time.FixedZone("CET", 3600))
	due := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	m := mustMapper(t, config.Mapping{}, "")
	inc := m.Map(&wiz.Issue{ID: "x", CreatedAt: created, DueAt: &due}, nil, "T")
	if inc.Occurred != "2025-03-04T04:06:07.890000Z" {
		t.Errorf("Occurred = %q", inc.Occurred)
	}
	if got := inc.CustomFields["wizissueduedate"]; got != "2025-04-01T00:00:00.000000Z" {
		t.Errorf("wizissueduedate = %v", got)
	}
	var back wiz.Issue
	if err := json.Unmarshal([]byte(inc.RawJSON), &back); err != nil || back.ID != "x" {
		t.Errorf("rawJSON fallback is not the marshalled issue: %v %q", err, inc.RawJSON)
	}
	if got := m.Map(&wiz.Issue{ID: "x"}, []byte(`{"id":"x","createdAt":null}`), "T").Occurred; got != "" {
		t.Errorf("null createdAt gave Occurred %q, want empty", got)
	}
	if got := m.Map(nil, nil, "T"); got.Name != "No sourceRule - " || got.CustomFields == nil {
		t.Errorf("nil issue: %+v", got)
	}
}

func TestNewMapperErrors(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]string
		want   []string
	}{
		{"empty key", map[string]string{"": "id"}, []string{`mapping.fields: key "": cliName must not be empty`}},
		{"bad key", map[string]string{"wiz Field": "id"}, []string{`mapping.fields: key "wiz Field": cliName must be lowercase`}},
		{"empty path", map[string]string{"wizx": " "}, []string{"mapping.fields.wizx: path must not be empty"}},
		{"whitespace path", map[string]string{"wizx": " id"}, []string{"mapping.fields.wizx: path must not start or end"}},
		{"unbalanced", map[string]string{"wizx": "projects.#(name==\"a\"", "wizy": "a]"}, []string{
			`mapping.fields.wizx: path "projects.#(name==\"a\"": unclosed '('`,
			`mapping.fields.wizy: path "a]": unbalanced ']'`,
		}},
		{"unterminated string", map[string]string{"wizx": `projects.#(name=="a)`}, []string{"mapping.fields.wizx: path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMapper(config.Mapping{Fields: tt.fields}, "")
			if err == nil {
				t.Fatalf("NewMapper succeeded (%v), want error", m)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d lines, want %d: %v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
	ok := map[string]string{
		"wiza": "projects.#.name", "wizb": `projects.#(name=="x)y").id`, "wizc": "entitySnapshot.tags.app\\.kubernetes\\.io/name",
		"wizd": "notes.@reverse", "wize": `@this`,
	}
	if _, err := NewMapper(config.Mapping{Fields: ok}, ""); err != nil {
		t.Errorf("valid paths rejected: %v", err)
	}
}

func TestEventID(t *testing.T) {
	t1 := time.Date(2025, 5, 1, 10, 0, 0, 123456000, time.UTC)
	t1Other := t1.In(time.FixedZone("X", -5*3600))
	t2 := t1.Add(time.Microsecond)
	base := EventID("default", "issue-1", KindUpdated, &t1)
	if base != EventID("default", "issue-1", KindUpdated, &t1) {
		t.Fatal("EventID is not deterministic")
	}
	if base != EventID("default", "issue-1", KindUpdated, &t1Other) {
		t.Error("the same instant in another zone must give the same id")
	}
	// Pinned value (cross-checked with Python uuid.uuid5): changing the namespace or the name layout would re-id every delivered event.
	if want := EventID("default", "issue-1", KindCreated, nil); want != "be4cf51a-6d94-5405-9a9e-870fa861378d" {
		t.Errorf("pinned EventID changed: %s", want)
	}
	tests := []struct {
		name                  string
		instance, issue, kind string
		sca                   *time.Time
	}{
		{"other instance", "tenant-b", "issue-1", KindUpdated, &t1},
		{"other issue", "default", "issue-2", KindUpdated, &t1},
		{"other kind", "default", "issue-1", KindCreated, &t1},
		{"other statusChangedAt (1µs)", "default", "issue-1", KindUpdated, &t2},
		{"nil statusChangedAt", "default", "issue-1", KindUpdated, nil},
		{"shifted separator a", "default:", "issue-1", KindUpdated, &t1},
		{"shifted separator b", "default", ":issue-1", KindUpdated, &t1},
		{"concatenation ambiguity", "defaultissue-1", "", KindUpdated, &t1},
	}
	seen := map[string]string{base: "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := EventID(tt.instance, tt.issue, tt.kind, tt.sca)
			if other, dup := seen[id]; dup {
				t.Errorf("id %s collides with %s", id, other)
			}
			seen[id] = tt.name
			if len(id) != 36 || id[14] != '5' {
				t.Errorf("%q is not a version-5 UUID", id)
			}
		})
	}
}

func TestNewEvent(t *testing.T) {
	sca := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	issue := &wiz.Issue{ID: "i-1", Status: "RESOLVED", StatusChangedAt: &sca}
	now := time.Date(2025, 5, 2, 3, 4, 5, 600, time.FixedZone("X", 7200))
	ev := NewEvent("tenant", KindUpdated, issue, []byte(`{"name":"n"}`), now)
	want := Event{EventID: EventID("tenant", "i-1", KindUpdated, &sca), Kind: KindUpdated, Instance: "tenant",
		IssueID: "i-1", IssueStatus: "RESOLVED", EmittedAt: "2025-05-02T01:04:05Z", Incident: []byte(`{"name":"n"}`)}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("NewEvent:\n got %+v\nwant %+v", ev, want)
	}
	// A created event is one per issue: its id leaves statusChangedAt out.
	if ev := NewEvent("tenant", KindCreated, issue, []byte(`{}`), now); ev.EventID != EventID("tenant", "i-1", KindCreated, nil) {
		t.Errorf("created event id %s, want the one without statusChangedAt", ev.EventID)
	}
}

// Line writes what json.Marshal writes for the event, escaping included, with event_id first.
func TestEventLineMatchesMarshal(t *testing.T) {
	tricky := "quote\" back\\ <script>&amp; \u2028\u2029 ctl\x00\x01\x1f\b\f\n\r\t bad\xff\xfe utf8 é😀 \x7f"
	incidentOf := func(inc Incident) []byte {
		b, err := json.Marshal(&inc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		ev   Event
	}{
		{"empty fields", Event{Incident: []byte(`{}`)}},
		{"tricky strings", Event{EventID: tricky, Kind: tricky, Instance: tricky, IssueID: tricky, IssueStatus: tricky,
			EmittedAt: tricky, Incident: incidentOf(Incident{Name: tricky, Type: tricky, Occurred: tricky, Details: tricky,
				Labels: []Label{{tricky, tricky}}, RawJSON: tricky, DbotMirrorID: tricky,
				CustomFields: map[string]any{tricky: tricky}})}},
		{"values", Event{EventID: "e", Incident: incidentOf(Incident{Severity: 0.5, Labels: []Label{}, CustomFields: map[string]any{
			"s": "x", "b": false, "n": nil, "f": 1e21, "ls": []string{"a", "<b>"}, "num": json.Number("1e999"),
			"m": map[string]any{"z": 1.0, "a": map[string]any{"k": []any{true}}},
		}})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ev.Line()
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(&tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("Line:\n got %s\nwant %s", got, want)
			}
			if !strings.HasPrefix(string(got), `{"event_id":`) {
				t.Errorf("event_id is not the first member: %.40s", got)
			}
		})
	}
	if _, err := (&Event{EventID: "e"}).Line(); err == nil {
		t.Error("an event without an incident made a line")
	}
}

// A fully populated issue sets every built-in customField, and nothing else without mapping.fields.
func TestEveryBuiltinCustomField(t *testing.T) {
	due := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	issue := &wiz.Issue{
		ID: "i", Status: "OPEN", Severity: "HIGH", Type: "TOXIC_COMBINATION", DueAt: &due,
		SourceRule: &wiz.SourceRule{Typename: "Control", Description: "d", ResolutionRecommendation: "r"},
		Notes:      []wiz.Note{{Text: "n"}},
		Projects: []wiz.Project{{Name: "p", ProjectOwners: []wiz.Person{{Name: "o"}},
			SecurityChampions: []wiz.Person{{Name: "c"}}}},
		EntitySnapshot: &wiz.Entity{SubscriptionExternalID: "a", SubscriptionName: "an", CloudPlatform: "AWS",
			ID: "e", ProviderID: "arn", Region: "r", Type: "T", NativeType: "nt"},
	}
	inc := mustMapper(t, config.Mapping{}, "").Map(issue, nil, "T")
	var keys []string
	for k := range inc.CustomFields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, BuiltinCustomFields()) {
		t.Fatalf("customFields keys %v, want %v", keys, BuiltinCustomFields())
	}
}

// TestEventIDMatchesUUIDv5 pins EventID to uuid.NewSHA1 over names of every length class, and pins
// ids that stores and sinks already hold (computed by the releases before EventID called
// uuid.NewSHA1): a change here would re-id every delivered event.
func TestEventIDMatchesUUIDv5(t *testing.T) {
	sca := time.Date(2025, 5, 1, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	long := strings.Repeat("x", 300) // past EventID's stack buffer
	for _, tc := range []struct {
		instance, issue, kind string
		sca                   *time.Time
	}{
		{"default", "issue-1", KindCreated, nil},
		{"default", "900937e8-5fef-43c2-8f93-fad1dfabfc2c", KindUpdated, &sca},
		{"", "", "", nil},
		{long, long, KindUpdated, &sca},
		{"tenant:b", "é\x00id", KindCreated, &sca},
	} {
		s := ""
		if tc.sca != nil {
			s = tc.sca.UTC().Format(time.RFC3339Nano)
		}
		var name []byte
		for _, part := range []string{tc.instance, tc.issue, tc.kind, s} {
			name = strconv.AppendInt(name, int64(len(part)), 10)
			name = append(name, ':')
			name = append(name, part...)
		}
		want := uuid.NewSHA1(eventNamespace(), name).String()
		if got := EventID(tc.instance, tc.issue, tc.kind, tc.sca); got != want {
			t.Errorf("EventID(%.20q, %.20q, %q, %v) = %s, want %s", tc.instance, tc.issue, tc.kind, tc.sca, got, want)
		}
	}
	at := time.Date(2025, 5, 1, 10, 0, 0, 123456000, time.UTC)
	for _, pin := range []struct {
		instance, issue, kind string
		sca                   *time.Time
		want                  string
	}{
		{"default", "issue-1", KindCreated, nil, "be4cf51a-6d94-5405-9a9e-870fa861378d"},
		{"default", "900937e8-5fef-43c2-8f93-fad1dfabfc2c", KindCreated, nil, "0021e1cb-7d97-555e-bf10-482e87a6fdbc"},
		{"default", "900937e8-5fef-43c2-8f93-fad1dfabfc2c", KindUpdated, &at, "d466abf9-f754-585e-afb3-9bfd42f72afd"},
		{"tenant-b", "900937e8-5fef-43c2-8f93-fad1dfabfc2c", KindUpdated, &at, "784b5f66-1638-50eb-93f5-0ab21d8c83d1"},
	} {
		if got := EventID(pin.instance, pin.issue, pin.kind, pin.sca); got != pin.want {
			t.Errorf("EventID(%s, %s, %s, %v) = %s, want the pinned %s", pin.instance, pin.issue, pin.kind, pin.sca, got, pin.want)
		}
	}
}

// TestPreferredRuleFeedsEveryField: whatever the deprecated sourceRule holds, the name, details,
// labels and rule-derived customFields all come from sourceRules[0] when the list has a rule
// (WIZ_API.md §10), in the incident's JSON.
func TestPreferredRuleFeedsEveryField(t *testing.T) {
	const id = "11111111-2222-4333-8444-555555555555"
	const listed = `{"__typename":"Control","id":"wc-id-2","name":"Listed rule","description":"listed description",` +
		`"resolutionRecommendation":"listed fix"}`
	const deprecated = `{"__typename":"CloudEventRule","id":"cer-1","name":"Deprecated rule","description":"deprecated description"}`
	tests := []struct {
		name, raw string
	}{
		{"null sourceRule", `{"id":"` + id + `","sourceRule":null,"sourceRules":[` + listed + `]}`},
		{"differing sourceRule", `{"id":"` + id + `","sourceRule":` + deprecated + `,"sourceRules":[` + listed + `,` + deprecated + `]}`},
	}
	want := map[string]string{
		"name":                             "Listed rule - " + id,
		"details":                          "listed description",
		"wizdetails":                       "listed description",
		"wizissueresolutionrecommendation": "listed fix",
		"label sourceRuleType":             "Control",
		"label sourceRuleId":               "wc-id-2",
		"label sourceRuleName":             "Listed rule",
	}
	m := mustMapper(t, config.Mapping{}, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var issue wiz.Issue
			if err := json.Unmarshal([]byte(tt.raw), &issue); err != nil {
				t.Fatal(err)
			}
			line, _, err := m.MapJSON(&issue, []byte(tt.raw), "T")
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Name, Details string
				Labels        []Label
				CustomFields  map[string]string
			}
			if err := json.Unmarshal(line, &out); err != nil {
				t.Fatalf("decode %s: %v", line, err)
			}
			got := map[string]string{"name": out.Name, "details": out.Details,
				"wizdetails":                       out.CustomFields["wizdetails"],
				"wizissueresolutionrecommendation": out.CustomFields["wizissueresolutionrecommendation"]}
			for _, l := range out.Labels {
				if strings.HasPrefix(l.Type, "sourceRule") {
					got["label "+l.Type] = l.Value
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}
}

// TestCustomFieldJSONTypes holds every built-in custom field to the type of the Wiz pack's incident
// field with that cliName (Packs/Wiz/IncidentFields/*.json in demisto/content; see
// builtinFields): shortText, markdown and url fields take a JSON string, so list-valued sources
// (projects, owners, champions) are joined with ", ". wizissueseverity, wizissuestatus and
// wizissuetype are wizfetch's own, not the pack's, and are strings too.
func TestCustomFieldJSONTypes(t *testing.T) {
	const raw = `{"id":"abc","sourceRules":[{"__typename":"Control","id":"wc-id-1","name":"R","description":"d",` +
		`"resolutionRecommendation":"fix **it**"}],"type":"TOXIC_COMBINATION","severity":"LOW","status":"OPEN",` +
		`"createdAt":"2025-01-02T03:04:05.123456Z","dueAt":"2025-02-03T04:05:06.5Z",` +
		`"projects":[{"id":"p1","name":"Payments","projectOwners":[{"name":"Ann"},{"name":"Bob"}],"securityChampions":[{"name":"Cy"}]},` +
		`{"id":"p2","name":"","projectOwners":[{"name":"Bob"},{"name":"Dee"}],"securityChampions":[{"name":"Cy"},{"name":"Eve"}]}],` +
		`"entitySnapshot":{"id":"e","type":"BUCKET","nativeType":"s3","cloudPlatform":"AWS","providerId":"arn:b","region":"us-east-1",` +
		`"subscriptionExternalId":"123","subscriptionName":"prod"},"notes":[{"text":"a"},{"text":"b"}]}`
	tests := []struct {
		cliName  string
		packType string // the pack's "type"; "" for wizfetch's own fields
		want     string // the JSON value sent
	}{
		{"wizcloudaccount", "shortText", `"123"`},
		{"wizcloudaccountname", "shortText", `"prod"`},
		{"wizcloudplatform", "shortText", `"AWS"`},
		{"wizdetails", "shortText", `"d"`},
		{"wizissueduedate", "shortText", `"2025-02-03T04:05:06.5Z"`}, // dueAt as Wiz sent it, not an XSOAR date
		{"wizissueid", "shortText", `"abc"`},
		{"wizissuenote", "shortText", `"a\n\nb"`},
		{"wizissueprojects", "shortText", `"Payments, p2"`},
		{"wizissueresolutionrecommendation", "markdown", `"fix **it**"`},
		{"wizissueseverity", "", `"LOW"`},
		{"wizissuestatus", "", `"OPEN"`},
		{"wizissuetype", "", `"TOXIC_COMBINATION"`},
		{"wizissueurl", "url", `"https://app.wiz.io/issues#~(issue~'abc)"`},
		{"wizprojectowners", "shortText", `"Ann, Bob, Dee"`},
		{"wizprojectsecuritychampions", "shortText", `"Cy, Eve"`},
		{"wizresourcecloudid", "shortText", `"arn:b"`},
		{"wizresourceid", "shortText", `"e"`},
		{"wizresourcenativetype", "shortText", `"s3"`},
		{"wizresourceregion", "shortText", `"us-east-1"`},
		{"wizresourcetype", "shortText", `"BUCKET"`},
	}
	var names []string
	for _, tt := range tests {
		names = append(names, tt.cliName)
	}
	if !slices.Equal(names, BuiltinCustomFields()) {
		t.Fatalf("the table covers %v, want every built-in field %v", names, BuiltinCustomFields())
	}
	var issue wiz.Issue
	if err := json.Unmarshal([]byte(raw), &issue); err != nil {
		t.Fatal(err)
	}
	m := mustMapper(t, config.Mapping{}, "")
	line, _, err := m.MapJSON(&issue, []byte(raw), "T")
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		CustomFields map[string]json.RawMessage `json:"customFields"`
	}
	if err := json.Unmarshal(line, &out); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.cliName, func(t *testing.T) {
			got := out.CustomFields[tt.cliName]
			if len(got) == 0 || got[0] != '"' {
				t.Fatalf("%s = %s, want a JSON string (the pack's field is %s)", tt.cliName, got, tt.packType)
			}
			if string(got) != tt.want {
				t.Errorf("%s = %s, want %s", tt.cliName, got, tt.want)
			}
		})
	}
}

// jsonNames lists the JSON names of t's fields, in order.
func jsonNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// The built-in fields marshal as the map would only if their JSON names are sorted, as encoding/json
// sorts a map's keys, left out when empty, and listed by fields() under the same names.
func TestBuiltinFieldsOrder(t *testing.T) {
	names := jsonNames(reflect.TypeFor[builtinFields]())
	if !slices.IsSorted(names) {
		t.Errorf("builtinFields JSON names are not sorted: %v", names)
	}
	if !slices.Equal(names, BuiltinCustomFields()) {
		t.Errorf("builtinFields JSON names %v, fields() names %v", names, BuiltinCustomFields())
	}
	for f := range reflect.TypeFor[builtinFields]().Fields() {
		if f.Type.Kind() != reflect.String || !strings.HasSuffix(f.Tag.Get("json"), ",omitempty") {
			t.Errorf("builtinFields.%s: %s %q, want a string left out when empty", f.Name, f.Type, f.Tag.Get("json"))
		}
	}
	var f builtinFields
	for i, e := range f.fields() {
		*e.value = e.cliName
		if got := reflect.ValueOf(f).Field(i).String(); got != e.cliName {
			t.Errorf("fields()[%d] %s points at the field holding %q", i, e.cliName, got)
		}
	}
}

// MapJSON marshals a document in place of the Incident: the same members, in the same order.
func TestDocumentMembers(t *testing.T) {
	if got, want := jsonNames(reflect.TypeFor[document]()), jsonNames(reflect.TypeFor[Incident]()); !slices.Equal(got, want) {
		t.Errorf("document members %v, Incident members %v", got, want)
	}
}
