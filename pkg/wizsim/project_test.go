package wizsim

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestGoldenStandardPage(t *testing.T) {
	h := newHarness(t, Options{Issues: 300, Seed: 1})
	h.revealAll()
	_, _, body := h.raw(h.token, StandardQuery, map[string]any{"first": 3, "orderBy": map[string]any{"field": "CREATED_AT", "direction": "DESC"}})
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatalf("indent: %v", err)
	}
	path := filepath.Join("testdata", "standard_page.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("standard page differs from %s (run with -update if intended):\n%s", path, pretty.String())
	}
}

// TestStandardSelectionDecodes checks the §3 selection decodes into wiz.Issue and that the data has the
// nulls and values real data has.
func TestStandardSelectionDecodes(t *testing.T) {
	h := newHarness(t, Options{Issues: 1000, Seed: 2})
	h.revealAll()
	_, r := h.do(StandardQuery, map[string]any{"first": 500})
	var conn struct {
		Nodes []wiz.Issue `json:"nodes"`
	}
	if err := json.Unmarshal(r.Data["issues"], &conn); err != nil {
		t.Fatalf("decode into wiz.Issue: %v", err)
	}
	seen := map[string]bool{}
	for _, i := range conn.Nodes {
		switch {
		case i.SourceRule == nil:
			seen["null sourceRule"] = true
		case i.SourceRule.Typename != "":
			seen[i.SourceRule.Typename] = true
		}
		if i.DueAt == nil {
			seen["null dueAt"] = true
		}
		if i.StatusChangedAt == nil {
			seen["null statusChangedAt"] = true
		} else if i.StatusChangedAt.Before(i.CreatedAt) {
			seen["statusChangedAt before createdAt"] = true
		}
		if i.ResolvedAt != nil {
			seen["resolvedAt"] = true
			if i.Status != "RESOLVED" {
				t.Errorf("issue %s has resolvedAt with status %s", i.ID, i.Status)
			}
		}
		if i.EntitySnapshot != nil && i.EntitySnapshot.CloudPlatform == "" {
			seen["null cloudPlatform"] = true
		}
		if i.EntitySnapshot != nil && i.EntitySnapshot.Region == "" {
			seen["empty region"] = true
		}
		if len(i.Notes) > 0 {
			seen["notes"] = true
		}
		if len(i.ServiceTickets) > 0 {
			seen["tickets"] = true
		}
	}
	for _, want := range []string{"null sourceRule", "Control", "CloudEventRule", "CloudConfigurationRule", "null dueAt",
		"null statusChangedAt", "statusChangedAt before createdAt", "resolvedAt", "null cloudPlatform", "empty region", "notes", "tickets"} {
		if !seen[want] {
			t.Errorf("no issue with %s among %d", want, len(conn.Nodes))
		}
	}
}

// TestProjection checks aliases, fragments and __typename, and that the fast path and the projection
// agree.
func TestProjection(t *testing.T) {
	h := newHarness(t, Options{Issues: 200, Seed: 3})
	h.revealAll()
	vars := map[string]any{"first": 50, "orderBy": map[string]any{"field": "CREATED_AT"}}
	nodesOf := func(query string) []map[string]any {
		t.Helper()
		status, r := h.do(query, vars)
		if status != 200 || len(r.Errors) > 0 {
			t.Fatalf("status %d errors %+v", status, r.Errors)
		}
		var conn struct {
			Nodes []map[string]any `json:"nodes"`
		}
		var raw json.RawMessage
		for _, v := range r.Data {
			raw = v
		}
		if err := json.Unmarshal(raw, &conn); err != nil {
			t.Fatal(err)
		}
		return conn.Nodes
	}
	fast := nodesOf(StandardQuery)
	// The same fields through a named fragment, in another order: still the standard shape.
	reordered := strings.Replace(StandardQuery, "nodes {", "nodes { ...F ", 1)
	reordered = strings.Replace(reordered, "pageInfo { hasNextPage endCursor }\n  }\n}", "pageInfo { hasNextPage endCursor }\n  }\n}\nfragment F on Issue { severity status id }", 1)
	if got := nodesOf(reordered); !reflect.DeepEqual(got, fast) {
		t.Fatal("fragment form of the standard selection answers differently")
	}
	// Adding __typename forces the projection; the rest must be identical.
	projected := nodesOf(strings.Replace(StandardQuery, "nodes {", "nodes { __typename ", 1))
	for k := range projected {
		if projected[k]["__typename"] != "Issue" {
			t.Fatalf("__typename = %v", projected[k]["__typename"])
		}
		delete(projected[k], "__typename")
	}
	if !reflect.DeepEqual(projected, fast) {
		t.Fatal("projection and pre-serialised bytes disagree")
	}

	q := `query Q($first: Int, $orderBy: IssueOrder) { page: issuesV2(first: $first, orderBy: $orderBy) {
		nodes { key: id id ...R sourceRule { ... on CloudEventRule { kind: type } } }
		__typename totalCount } }
		fragment R on Issue { rule: sourceRule { __typename ... on Control { name } } }`
	for _, n := range nodesOf(q) {
		if n["key"] != n["id"] || n["key"] == nil {
			t.Fatalf("alias key=%v id=%v", n["key"], n["id"])
		}
		if len(n) != 4 {
			t.Fatalf("node has keys %v, want exactly key, id, rule, sourceRule", n)
		}
		rule, _ := n["rule"].(map[string]any)
		src, _ := n["sourceRule"].(map[string]any)
		if rule == nil {
			continue
		}
		switch rule["__typename"] {
		case "Control":
			if len(rule) != 2 || rule["name"] == nil || len(src) != 0 {
				t.Fatalf("Control: rule %v sourceRule %v", rule, src)
			}
		case "CloudEventRule":
			if len(rule) != 1 || src["kind"] != "CLOUD_DETECTION" {
				t.Fatalf("CloudEventRule: rule %v sourceRule %v", rule, src)
			}
		default:
			if len(rule) != 1 || len(src) != 0 {
				t.Fatalf("%v: rule %v sourceRule %v", rule["__typename"], rule, src)
			}
		}
	}
	status, r := h.do(q, vars)
	var conn map[string]any
	if err := json.Unmarshal(r.Data["page"], &conn); err != nil || status != 200 {
		t.Fatal(err, status)
	}
	if conn["__typename"] != "IssueConnection" || conn["totalCount"] != 200.0 || conn["pageInfo"] != nil {
		t.Fatalf("connection %v", conn)
	}
}

func TestSkipInclude(t *testing.T) {
	h := newHarness(t, Options{Issues: 20, Seed: 3})
	q := `query($s: Boolean!) { issuesV2(first: 1) { nodes { id status @skip(if: $s) severity @include(if: $s) } } }`
	for _, skip := range []bool{true, false} {
		_, r := h.do(q, map[string]any{"s": skip})
		var conn struct {
			Nodes []map[string]any `json:"nodes"`
		}
		if err := json.Unmarshal(r.Data["issuesV2"], &conn); err != nil || len(conn.Nodes) != 1 {
			t.Fatalf("decode: %v %+v", err, r)
		}
		_, hasStatus := conn.Nodes[0]["status"]
		_, hasSeverity := conn.Nodes[0]["severity"]
		if hasStatus == skip || hasSeverity != skip {
			t.Fatalf("skip=%v: node %v", skip, conn.Nodes[0])
		}
	}
}

// TestClientQueryTakesTheFastPath: wizfetch's own issues query (wiz.IssuesQuery) has the standard
// node shape, so the simulator answers it from pre-serialised bytes. A field added to the client's
// query but not to standardNodeSelection would silently send every page through the slow
// projection, and every benchmark and scale test would measure the simulator instead of wizfetch.
func TestClientQueryTakesTheFastPath(t *testing.T) {
	sim, err := New(Options{Issues: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cd := sim.document(wiz.IssuesQuery)
	if len(cd.errs) > 0 {
		t.Fatalf("the simulator refuses wiz.IssuesQuery: %v", cd.errs)
	}
	issues := cd.doc.Operations[0].SelectionSet[0].(*ast.Field)
	var nodes []*ast.Field
	for _, sel := range issues.SelectionSet {
		if f, ok := sel.(*ast.Field); ok && f.Name == "nodes" {
			nodes = append(nodes, f)
		}
	}
	if len(nodes) != 1 {
		t.Fatalf("wiz.IssuesQuery selects nodes %d times", len(nodes))
	}
	p := &projector{schema: sim.schema}
	if got := p.shape(subSets(nodes), "Issue"); got != sim.stdShape {
		t.Fatalf("wiz.IssuesQuery's node shape differs from standardNodeSelection:\nclient: %s\nsim:    %s", got, sim.stdShape)
	}
}
