package wiz

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// TestIssueRule pins which rule an issue is named after: sourceRules[0] (the current field), else
// the deprecated sourceRule (WIZ_API.md §10: Wiz deprecated sourceRule, Elastic 4.0.0 dropped it).
func TestIssueRule(t *testing.T) {
	single := &SourceRule{Typename: "Control", ID: "wc-id-1", Name: "Deprecated field"}
	tests := []struct {
		name   string
		issue  Issue
		wantID string // "" for no rule
	}{
		{name: "only sourceRule", issue: Issue{SourceRule: single}, wantID: "wc-id-1"},
		{name: "only sourceRules", issue: Issue{SourceRules: []SourceRule{{ID: "wc-id-2"}, {ID: "wc-id-3"}}}, wantID: "wc-id-2"},
		{name: "sourceRules[0] wins over a differing sourceRule",
			issue: Issue{SourceRule: single, SourceRules: []SourceRule{{ID: "wc-id-2"}}}, wantID: "wc-id-2"},
		{name: "empty sourceRules falls back to sourceRule", issue: Issue{SourceRule: single, SourceRules: []SourceRule{}}, wantID: "wc-id-1"},
		{name: "neither", issue: Issue{}, wantID: ""},
		{name: "empty list and null", issue: Issue{SourceRules: []SourceRule{}}, wantID: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.issue.Rule()
			switch {
			case tt.wantID == "" && r != nil:
				t.Fatalf("Rule() = %+v, want nil", r)
			case tt.wantID != "" && (r == nil || r.ID != tt.wantID):
				t.Fatalf("Rule() = %+v, want the rule %s", r, tt.wantID)
			}
		})
	}
}

// A node with every field null decodes to an empty issue, which Defects rejects field by field.
func TestIssueDefects(t *testing.T) {
	var all Issue
	if err := json.Unmarshal([]byte(`{"id":null,"type":null,"createdAt":null,"status":null,"severity":null,"sourceRule":null}`), &all); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(all.Defects(), "; "); got != "id is null; createdAt is null; status is null; severity is null; type is null" {
		t.Fatalf("all-null node: %s", got)
	}
	good := Issue{ID: "00000000-0000-4000-8000-000000000001", Type: "CLOUD_CONFIGURATION", Status: "OPEN",
		Severity: "HIGH", CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if d := good.Defects(); d != nil {
		t.Fatalf("complete issue: %v", d)
	}
	future := good
	future.Type = "SOME_NEW_TYPE" // a value Wiz may add
	if d := future.Defects(); d != nil {
		t.Fatalf("new enum value: %v", d)
	}
	for _, tc := range []struct {
		mutate func(*Issue)
		want   string
	}{
		{func(i *Issue) { i.ID = strings.Repeat("a", MaxIDBytes+1) }, "id is longer than 256 bytes"},
		{func(i *Issue) { i.ID = "a\x00b" }, "id holds control characters or invalid UTF-8"},
		{func(i *Issue) { i.ID = "a\xffb" }, "id holds control characters or invalid UTF-8"},
		{func(i *Issue) { i.Status = "open now" }, "status is not an enum value"},
		{func(i *Issue) { i.Severity = strings.Repeat("H", 65) }, "severity is not an enum value"},
	} {
		is := good
		tc.mutate(&is)
		if got := strings.Join(is.Defects(), "; "); got != tc.want {
			t.Fatalf("got %q, want %q", got, tc.want)
		}
	}
}

// Timestamps keep Wiz's microseconds, and createdAt and dueAt are also kept exactly as sent (the
// incident mapper passes them on as `occurred` and the due date): whatever zone, precision or
// case of the separator Wiz uses, never re-rendered.
func TestIssueTimestampsAsSent(t *testing.T) {
	tests := []struct {
		name        string
		node        string
		wantCreated time.Time
		sentCreated string
		wantDue     *time.Time
		sentDue     string
		wantErr     string
	}{
		{name: "microseconds", node: `{"createdAt":"2023-08-23T07:56:09.903743Z","dueAt":"2023-09-01T00:00:00.000100Z"}`,
			wantCreated: time.Date(2023, 8, 23, 7, 56, 9, 903743000, time.UTC), sentCreated: "2023-08-23T07:56:09.903743Z",
			wantDue: new(time.Date(2023, 9, 1, 0, 0, 0, 100000, time.UTC)), sentDue: "2023-09-01T00:00:00.000100Z"},
		{name: "zone and nanoseconds", node: `{"createdAt":"2024-01-02T03:04:05.123456789+02:00"}`,
			wantCreated: time.Date(2024, 1, 2, 1, 4, 5, 123456789, time.UTC), sentCreated: "2024-01-02T03:04:05.123456789+02:00"},
		{name: "no fraction", node: `{"createdAt":"2024-01-02T03:04:05Z","dueAt":null}`,
			wantCreated: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), sentCreated: "2024-01-02T03:04:05Z"},
		{name: "nulls", node: `{"createdAt":null,"dueAt":null}`},
		{name: "missing", node: `{"id":"x"}`},
		{name: "case-folded keys", node: `{"CREATEDAT":"2024-01-02T03:04:05Z","DueAt":"2024-01-03T00:00:00Z"}`,
			wantCreated: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), sentCreated: "2024-01-02T03:04:05Z",
			wantDue: new(time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)), sentDue: "2024-01-03T00:00:00Z"},
		{name: "repeated key: the last wins", node: `{"dueAt":"2024-01-03T00:00:00Z","dueAt":null}`},
		{name: "escaped string", node: `{"createdAt":"2024-01-02T03:04:05\u005a"}`, wantErr: "parsing time"},
		{name: "not RFC 3339", node: `{"createdAt":"2024-01-02 03:04:05"}`, wantErr: "parsing time"},
		{name: "a number", node: `{"dueAt":12}`, wantErr: "not a JSON string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var is Issue
			err := json.Unmarshal([]byte(tt.node), &is)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !is.CreatedAt.Equal(tt.wantCreated) || is.SentCreatedAt() != tt.sentCreated {
				t.Errorf("createdAt = %v sent as %q, want %v sent as %q", is.CreatedAt, is.SentCreatedAt(), tt.wantCreated, tt.sentCreated)
			}
			if (is.DueAt == nil) != (tt.wantDue == nil) || is.DueAt != nil && !is.DueAt.Equal(*tt.wantDue) || is.SentDueAt() != tt.sentDue {
				t.Errorf("dueAt = %v sent as %q, want %v sent as %q", is.DueAt, is.SentDueAt(), tt.wantDue, tt.sentDue)
			}
		})
	}
}

// plainIssue decodes node as encoding/json decodes Issue's fields without Issue.UnmarshalJSON.
func plainIssue(node []byte) (Issue, error) {
	var plain issueFields
	err := json.Unmarshal(node, &plain)
	return Issue(plain), err
}

// checkDecodesAsPlain holds Issue.UnmarshalJSON (go-json, decodeJSON) to encoding/json's decoding
// of the plain struct: both accept the same nodes and fill every field alike, and the strings kept
// as sent give the decoded times. A key repeated within one object, which Wiz never sends, is left
// out of the field comparison: where a list decoded earlier is followed by [] and then by nulls,
// go-json decodes the nulls into the earlier elements, encoding/json into new ones.
func checkDecodesAsPlain(t *testing.T, node []byte) {
	t.Helper()
	want, wantErr := plainIssue(node)
	var got Issue
	gotErr := json.Unmarshal(node, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("plain struct: %v, Issue: %v\nnode: %s", wantErr, gotErr, node)
	}
	if gotErr != nil {
		return
	}
	if s := got.SentCreatedAt(); s != "" {
		if at, err := time.Parse(time.RFC3339Nano, s); err != nil || !at.Equal(got.CreatedAt) {
			t.Fatalf("createdAt kept as sent %q does not give %v (%v)", s, got.CreatedAt, err)
		}
	}
	if s := got.SentDueAt(); s != "" || got.DueAt != nil {
		if at, err := time.Parse(time.RFC3339Nano, s); err != nil || got.DueAt == nil || !at.Equal(*got.DueAt) {
			t.Fatalf("dueAt kept as sent %q does not give %v (%v)", s, got.DueAt, err)
		}
	}
	got.createdAtSent, got.dueAtSent = "", ""
	if !hasRepeatedKey(node) && !reflect.DeepEqual(want, got) {
		t.Fatalf("decoded differently\nplain struct: %+v\nIssue:        %+v\nnode: %s", want, got, node)
	}
}

// hasRepeatedKey reports whether an object in data (valid JSON) has two keys that are equal but for
// case.
func hasRepeatedKey(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		keys   []string
		atKey  bool // the next token of an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.atKey {
			if key, ok := tok.(string); ok {
				for _, k := range top.keys {
					if strings.EqualFold(k, key) {
						return true
					}
				}
				top.keys = append(top.keys, key)
				top.atKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if top != nil && top.object {
				top.atKey = true // after this value
			}
			stack = append(stack, &frame{object: tok == json.Delim('{'), atKey: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.object {
			top.atKey = true
		}
	}
}

// Issue.UnmarshalJSON decodes exactly what the struct's tags say, on the corners of encoding/json's
// semantics (repeated and case-folded keys, nulls, wrong types).
func TestIssueDecodesAsPlainStruct(t *testing.T) {
	if hasRepeatedKey([]byte(`{"a":{"a":1},"b":[{"a":1},{"a":2}],"c":"a"}`)) || !hasRepeatedKey([]byte(`{"x":[{"a":1,"b":2,"A":3}]}`)) {
		t.Fatal("hasRepeatedKey is wrong")
	}
	for _, seed := range decodeIssueSeeds {
		checkDecodesAsPlain(t, []byte(seed))
	}
}

// decodeIssueSeeds are corners of encoding/json's semantics an issue decodes with.
var decodeIssueSeeds = []string{
	`null`,
	`{}`,
	`"x"`,
	`[]`,
	`{"id":"a","ID":"b","Id":null}`,
	`{"ſourceRule":{"name":"folded key"}}`,
	`{"id":"caf\u00e9 \ud83d\ude00 \ud83d lone \\ \" \/ \b\f\n\r\t"}`,
	"{\"id\":\"bad utf8 \xff\xfe end\"}",
	`{"id":1}`,
	`{"id":true}`,
	`{"createdAt":null,"updatedAt":null,"dueAt":"2024-01-02T03:04:05Z","resolvedAt":"bad"}`,
	`{"createdAt":"2024-01-02T03:04:05.123456789+02:00"}`,
	`{"createdAt":"2024-01-02T03:04:05\u005a"}`,
	`{"createdAt":12}`,
	`{"createdAt":"2024-01-02T03:04:05Z","createdAt":"2025-01-02T03:04:05Z","CreatedAt":null}`,
	`{"dueAt":null,"dueAt":"2024-01-02T03:04:05Z"}`,
	`{"projects":[{"id":"p","projectOwners":[{"name":"a"},null],"securityChampions":[]},null],"projects":[{"slug":"s"}]}`,
	`{"projects":{}}`,
	`{"projects":[1]}`,
	`{"sourceRule":{"name":"x"},"sourceRule":{"id":"y"},"sourceRules":[{"__typename":"Control","securitySubCategories":[{"title":"t","category":{"name":"c","framework":{"name":"f"}}}]}]}`,
	`{"sourceRule":[]}`,
	`{"sourceRule":null,"sourceRules":[{"__typename":"CloudEventRule","id":"cer-1","name":"n"}],"sourceRules":[null]}`,
	`{"sourceRules":{}}`,
	`{"entitySnapshot":{"tags":{"a":"b"},"subscriptionTags":null,"unknown":[1,{"x":[true,false,null,-1.5e3]}]}}`,
	`{"entitySnapshot":null,"serviceTickets":[{"url":"u"}],"notes":[{"createdAt":"2024-01-02T03:04:05Z","user":{"name":"n"},"serviceAccount":null}]}`,
	`{"notes":[{"user":"x"}]}`,
	`{"unknown":{"deep":[[[{}]]]},"id":"after"}`,
	`{"projects":[{"id":"a"},{"id":"b"}],"projects":[{"slug":"x"}],"projects":[{},{}]}`,
	`{"notes":[{"text":"a"},{"text":"b"}],"notes":[],"notes":[null,null]}`,
	`{"Notes":[{"text":"a"}],"notes":[]}`,
	`{"projects":[{"id":"a","ID":"b"}],"projects":[{"slug":"x","riskProfile":{"businessImpact":"HBI"}}]}`,
}

// FuzzIssueUnmarshal holds Issue.UnmarshalJSON to encoding/json's decoding of the plain struct on
// any input (checkDecodesAsPlain).
func FuzzIssueUnmarshal(f *testing.F) {
	for _, seed := range decodeIssueSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkDecodesAsPlain)
}

// Adding a field to the query means adding it to the struct (and to the simulator): every field
// IssuesQuery selects for a node has a JSON field of that name in Issue, recursively, inline
// fragments of the rule union included. A selected field without one would reach rawJSON but never
// the struct.
func TestIssueStructCoversQuery(t *testing.T) {
	doc, err := parser.ParseQuery(&ast.Source{Name: "IssuesTable", Input: IssuesQuery})
	if err != nil {
		t.Fatal(err)
	}
	var nodes *ast.Field
	for _, sel := range doc.Operations[0].SelectionSet[0].(*ast.Field).SelectionSet {
		if f, ok := sel.(*ast.Field); ok && f.Name == "nodes" {
			nodes = f
		}
	}
	if nodes == nil {
		t.Fatal("no nodes selection")
	}
	checkSelectionCovered(t, "nodes", nodes.SelectionSet, reflect.TypeFor[Issue]())
}

// checkSelectionCovered checks that each field of set has a JSON field in typ (a struct, or a
// pointer to or slice of one), and its sub-selection in that field's type.
func checkSelectionCovered(t *testing.T, path string, set ast.SelectionSet, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct {
		t.Errorf("%s selects fields but decodes into %s", path, typ)
		return
	}
	fields := map[string]reflect.Type{}
	for f := range typ.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			ft, ok := fields[s.Name]
			if !ok {
				t.Errorf("%s.%s is selected but %s has no JSON field %q", path, s.Name, typ, s.Name)
				continue
			}
			if len(s.SelectionSet) > 0 {
				checkSelectionCovered(t, path+"."+s.Name, s.SelectionSet, ft)
			}
		case *ast.InlineFragment:
			checkSelectionCovered(t, path+"(on "+s.TypeCondition+")", s.SelectionSet, typ)
		default:
			t.Errorf("%s: unexpected selection %T", path, sel)
		}
	}
}
