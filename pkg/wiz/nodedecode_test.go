package wiz

import (
	"encoding/json"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fuzzer rarely builds well-formed nodes with repeated and case-folded keys at depth; this
// generator builds only such nodes (from Issue's own shape), and the decoder must match
// encoding/json on every one of them.
func TestDecodeIssueMatchesEncodingJSONOnGeneratedNodes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for it := 0; it < 30000; it++ {
		node := genNodeObject(rng, "issue", 0)
		var want Issue
		wantErr := json.Unmarshal([]byte(node), &want)
		var got Issue
		r := &nodeReader{data: []byte(node)}
		gotErr := r.decodeIssueNode(&got, &nodeArena{})
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("encoding/json: %v, decoder: %v\nnode: %s", wantErr, gotErr, node)
		}
		got.createdAtSent, got.dueAtSent = "", ""
		if wantErr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("decoded differently\nencoding/json: %+v\ndecoder:       %+v\nnode: %s", want, got, node)
		}
	}
}

// genNodeKeys are the keys each object kind may get: its fields, case variants and unknown keys.
var genNodeKeys = map[string][]string{
	"issue": {"id", "ID", "sourceRule", "sourceRules", "type", "createdAt", "updatedAt", "dueAt", "projects",
		"entitySnapshot", "serviceTickets", "notes", "SEVERITY", "status", "x"},
	"rule":    {"__typename", "id", "name", "securitySubCategories", "type", "Type", "description"},
	"sub":     {"title", "category"},
	"cat":     {"name", "framework"},
	"name":    {"name", "NAME", "other"},
	"risk":    {"businessImpact", "BusinessImpact"},
	"project": {"id", "slug", "riskProfile", "projectOwners", "securityChampions"},
	"person":  {"name", "email", "EMAIL"},
	"entity":  {"id", "tags", "subscriptionTags", "region", "Region"},
	"ticket":  {"url", "name", "externalId"},
	"note":    {"id", "createdAt", "updatedAt", "user", "serviceAccount", "text"},
}

// genNodeKind is the value kind of a key (per object kind where a name is shared).
func genNodeKind(obj, key string) string {
	switch obj + "." + strings.ToLower(key) {
	case "cat.framework":
		return "obj:name"
	case "project.riskprofile":
		return "obj:risk"
	}
	return map[string]string{
		"sourcerule": "obj:rule", "sourcerules": "arr:rule", "securitysubcategories": "arr:sub", "category": "obj:cat",
		"projects": "arr:project", "projectowners": "arr:person", "securitychampions": "arr:person",
		"entitysnapshot": "obj:entity", "servicetickets": "arr:ticket", "notes": "arr:note", "user": "obj:person",
		"serviceaccount": "obj:person", "tags": "raw", "subscriptiontags": "raw", "createdat": "time",
		"updatedat": "time", "dueat": "time",
	}[strings.ToLower(key)]
}

func genNodeValue(rng *rand.Rand, kind string, depth int) string {
	if rng.Intn(8) == 0 {
		return "null"
	}
	switch {
	case kind == "time":
		return []string{`"2024-01-02T03:04:05Z"`, `"2024-01-02T03:04:05.5+01:00"`, `null`, `"bad"`}[rng.Intn(4)]
	case kind == "raw":
		return []string{`{"a":1}`, `[1, 2]`, `"s"`, `null`, ` { } `}[rng.Intn(5)]
	case strings.HasPrefix(kind, "obj:"):
		return genNodeObject(rng, kind[4:], depth+1)
	case strings.HasPrefix(kind, "arr:"):
		parts := make([]string, rng.Intn(4))
		for i := range parts {
			if rng.Intn(6) == 0 {
				parts[i] = "null"
			} else {
				parts[i] = genNodeObject(rng, kind[4:], depth+1)
			}
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return []string{`"a"`, `"b"`, `"\u00e9"`, `null`, `1`}[rng.Intn(5)]
}

func genNodeObject(rng *rand.Rand, obj string, depth int) string {
	keys := genNodeKeys[obj]
	n := rng.Intn(5)
	if depth > 3 {
		n = rng.Intn(2)
	}
	parts := make([]string, n)
	for i := range parts {
		k := keys[rng.Intn(len(keys))]
		b, _ := json.Marshal(k)
		parts[i] = string(b) + ":" + genNodeValue(rng, genNodeKind(obj, k), depth)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

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

// TestDecodeSourceRules decodes a page whose nodes carry the rule in sourceRules (sourceRule null, or
// a differing sourceRule): the list reaches the struct, the raw node keeps it byte for byte, and
// Rule() is the list's first rule.
func TestDecodeSourceRules(t *testing.T) {
	const ruleA = `{"__typename":"CloudConfigurationRule","id":"ccr-1","name":"Bucket versioning","description":"d","remediationInstructions":"enable it","serviceType":"AWS"}`
	const ruleB = `{"__typename":"Control","id":"wc-id-7","name":"Exposed VM","description":"old","resolutionRecommendation":"r","securitySubCategories":[]}`
	nodes := []string{
		`{"id":"a","sourceRule":null,"sourceRules":[` + ruleA + `]}`,
		`{"id":"b","sourceRule":` + ruleB + `,"sourceRules":[` + ruleA + `,` + ruleB + `]}`,
		`{"id":"c","sourceRule":` + ruleB + `,"sourceRules":null}`,
	}
	body := `{"data":{"issues":{"nodes":[` + strings.Join(nodes, ",") + `],"pageInfo":{"hasNextPage":false}}}}`
	page, err := walkResponse([]byte(body), len(nodes))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Issues) != len(nodes) {
		t.Fatalf("decoded %d issues, want %d", len(page.Issues), len(nodes))
	}
	var wantA, wantB SourceRule
	if err := json.Unmarshal([]byte(ruleA), &wantA); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(ruleB), &wantB); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		wantList []SourceRule
		wantRule SourceRule
	}{
		{wantList: []SourceRule{wantA}, wantRule: wantA},
		{wantList: []SourceRule{wantA, wantB}, wantRule: wantA},
		{wantList: nil, wantRule: wantB},
	}
	for i, tt := range tests {
		is := &page.Issues[i]
		if !reflect.DeepEqual(is.SourceRules, tt.wantList) {
			t.Errorf("issue %s: sourceRules = %+v, want %+v", is.ID, is.SourceRules, tt.wantList)
		}
		if r := is.Rule(); r == nil || !reflect.DeepEqual(*r, tt.wantRule) {
			t.Errorf("issue %s: Rule() = %+v, want %+v", is.ID, r, tt.wantRule)
		}
		if string(page.Raw[i]) != nodes[i] {
			t.Errorf("issue %s: raw = %s, want the node as sent", is.ID, page.Raw[i])
		}
		// The struct marshals back with the list, so an issue without raw bytes keeps it too.
		b, err := json.Marshal(is)
		if err != nil {
			t.Fatal(err)
		}
		var back Issue
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if len(back.SourceRules) != len(is.SourceRules) || back.Rule() == nil || back.Rule().ID != tt.wantRule.ID ||
			!strings.Contains(string(b), `"sourceRules":`) {
			t.Errorf("issue %s: marshalled as %s, sourceRules did not round-trip", is.ID, b)
		}
	}
}

// Degraded answers (WIZ_API.md §3): a null nodes list and null nodes decode to an empty or shorter
// page, and the page says so (the feeds log it at WARN).
func TestDecodeNullNodes(t *testing.T) {
	for _, tc := range []struct {
		data      string
		issues    int
		nullNodes int
		nodesNull bool
	}{
		{`{"issues":{"nodes":null,"pageInfo":{"hasNextPage":false}}}`, 0, 0, true},
		{`{"issues":{"nodes":[null,{"id":"x"},null],"pageInfo":{"hasNextPage":false}}}`, 1, 2, false},
		{`{"issues":{"nodes":[],"pageInfo":{"hasNextPage":false}}}`, 0, 0, false},
		{`{"issues":{"nodes":null,"nodes":[null],"pageInfo":{"hasNextPage":false}}}`, 0, 1, false},
	} {
		page, err := walkResponse([]byte(`{"data":`+tc.data+`}`), 10)
		if err != nil {
			t.Fatalf("%s: %v", tc.data, err)
		}
		if len(page.Issues) != tc.issues || page.NullNodes != tc.nullNodes || page.NodesNull != tc.nodesNull {
			t.Fatalf("%s: %d issues, %d null nodes, nodes null %v", tc.data, len(page.Issues), page.NullNodes, page.NodesNull)
		}
	}
}

// A node with every field null decodes to an empty issue, which Defects rejects field by field.
func TestIssueDefects(t *testing.T) {
	var all Issue
	r := &nodeReader{data: []byte(`{"id":null,"type":null,"createdAt":null,"status":null,"severity":null,"sourceRule":null}`)}
	if err := r.decodeIssueNode(&all, &nodeArena{}); err != nil {
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
