package wiz

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got: %s\nwant: %s", name, got, want)
	}
}

func TestIssuesQueryGolden(t *testing.T) {
	golden(t, "issues_query.graphql", []byte(IssuesQuery+"\n"))
}

func TestIssuesQueryParses(t *testing.T) {
	doc, err := parser.ParseQuery(&ast.Source{Name: "IssuesTable", Input: IssuesQuery})
	if err != nil {
		t.Fatalf("IssuesQuery does not parse: %v", err)
	}
	if len(doc.Operations) != 1 || doc.Operations[0].Name != "IssuesTable" {
		t.Fatalf("want one operation IssuesTable")
	}
	var vars []string
	for _, v := range doc.Operations[0].VariableDefinitions {
		vars = append(vars, v.Variable+":"+v.Type.String())
	}
	if got, want := strings.Join(vars, ","), "filterBy:IssueFilters,first:Int,after:String,orderBy:IssueOrder"; got != want {
		t.Errorf("variables = %s, want %s", got, want)
	}
	for _, m := range []string{CreateIssueNoteMutation, UpdateIssueMutation, DeleteIssueNoteMutation} {
		if _, err := parser.ParseQuery(&ast.Source{Input: m}); err != nil {
			t.Errorf("mutation does not parse: %v\n%s", err, m)
		}
	}
}

func TestIssuesRequestGolden(t *testing.T) {
	after := time.Date(2024, 3, 1, 10, 0, 0, 500000000, time.FixedZone("CET", 3600))
	before := time.Date(2024, 3, 2, 0, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name   string
		filter IssueFilter
		order  *IssueOrder
		first  int
		after  string
	}{
		{name: "created_feed", first: 200, order: &IssueOrder{Field: "CREATED_AT", Direction: "ASC"},
			filter: IssueFilter{Status: []string{"OPEN", "IN_PROGRESS"}, Severity: []string{}, Type: nil,
				ProjectIDs: []string{"p1"}, CreatedAfter: &after, CreatedBefore: &before}},
		{name: "updates_feed_next_page", first: 500, after: "Y3Vyc29yOjM=", order: &IssueOrder{Field: "STATUS_CHANGED_AT", Direction: "ASC"},
			filter: IssueFilter{Severity: []string{"HIGH", " "}, StatusChangedAfter: &after}},
		{name: "no_filters", first: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			c := newTestClient(t, f.options())
			if _, err := c.Issues(testCtx(t), tt.filter, tt.order, tt.first, tt.after); err != nil {
				t.Fatal(err)
			}
			var req gqlRequest
			if err := json.Unmarshal(f.recorded("/graphql")[0].Body, &req); err != nil {
				t.Fatal(err)
			}
			if req.Query != IssuesQuery || req.OperationName != "IssuesTable" {
				t.Errorf("query or operationName differ: %q", req.OperationName)
			}
			if bytes.Contains(req.Variables, []byte("[]")) {
				t.Errorf("an empty list was sent: %s", req.Variables)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, req.Variables, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden(t, "variables_"+tt.name+".json", pretty.Bytes())
		})
	}
}

func TestFormatTime(t *testing.T) {
	tm := time.Date(2023, 8, 23, 9, 56, 9, 903743000, time.FixedZone("CEST", 7200))
	if got, want := FormatTime(tm), "2023-08-23T07:56:09.903743Z"; got != want {
		t.Errorf("FormatTime = %q, want %q", got, want)
	}
	if got, want := FormatTime(time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)), "2023-01-01T00:00:00.000000Z"; got != want {
		t.Errorf("FormatTime = %q, want %q", got, want)
	}
}

func TestDecodeMixedPage(t *testing.T) {
	body, err := os.ReadFile("testdata/page_mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	c := newTestClient(t, f.options())
	page, err := c.Issues(testCtx(t), IssueFilter{}, nil, 10, "")
	if err != nil {
		t.Fatalf("Issues: %v", err)
	}
	if len(page.Issues) != 3 || len(page.Raw) != 3 {
		t.Fatalf("got %d issues, %d raw; want 3 and 3 (the null node skipped)", len(page.Issues), len(page.Raw))
	}
	if !page.HasNextPage || page.EndCursor != "Y3Vyc29yOjM=" {
		t.Errorf("pageInfo = %v %q", page.HasNextPage, page.EndCursor)
	}
	i0, i1, i2 := page.Issues[0], page.Issues[1], page.Issues[2]
	if i0.Rule() == nil || i0.Rule().ID != "wc-id-1335" || i0.Rule().ResolutionRecommendation != "Block it" {
		t.Errorf("issue 0 rule = %+v", i0.Rule())
	}
	if want := time.Date(2023, 8, 23, 7, 56, 9, 903743000, time.UTC); !i0.CreatedAt.Equal(want) {
		t.Errorf("createdAt = %v, want microseconds kept", i0.CreatedAt)
	}
	if i0.EntitySnapshot == nil || i0.EntitySnapshot.CloudPlatform != "" || string(i0.EntitySnapshot.SubscriptionTags) != `{"env":"prod"}` {
		t.Errorf("entity = %+v", i0.EntitySnapshot)
	}
	if i1.SourceRule != nil || i1.Rule() == nil || i1.Rule().Typename != "CloudEventRule" {
		t.Errorf("issue 1 sourceRules not used: %+v", i1.Rule())
	}
	if len(i1.Notes) != 1 || i1.Notes[0].User == nil || i1.Notes[0].User.Email != "bob@example.com" {
		t.Errorf("issue 1 notes = %+v", i1.Notes)
	}
	if i1.StatusChangedAt != nil || i1.DueAt == nil {
		t.Errorf("issue 1 statusChangedAt/dueAt = %v/%v", i1.StatusChangedAt, i1.DueAt)
	}
	if i2.ID != "6f1c1f5e-0000-4000-8000-000000000003" || i2.Rule() != nil {
		t.Errorf("sparse issue = %+v", i2)
	}
	// Raw holds each node's exact bytes, unknown fields included.
	if !bytes.Contains(page.Raw[0], []byte(`"brandNewField":{"nested":[1,2,3]}`)) {
		t.Errorf("raw node 0 lost the unknown field: %s", page.Raw[0])
	}
	if string(page.Raw[2]) != `{"id":"6f1c1f5e-0000-4000-8000-000000000003"}` {
		t.Errorf("raw node 2 = %s", page.Raw[2])
	}
	if !bytes.Contains(body, page.Raw[1]) {
		t.Error("raw node 1 is not a verbatim slice of the response")
	}
}

func TestPageShapes(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantErr    error
		wantIssues int
	}{
		{name: "nodes null", body: `{"data":{"issues":{"nodes":null,"pageInfo":{"hasNextPage":false,"endCursor":null}}}}`},
		{name: "issues null", body: `{"data":{"issues":null}}`},
		{name: "data null", body: `{"data":null}`, wantErr: ErrTransient},
		{name: "next page without cursor", body: `{"data":{"issues":{"nodes":[],"pageInfo":{"hasNextPage":true,"endCursor":""}}}}`, wantErr: ErrTransient},
		// Kept, for the feed to reject (decodeNode), rather than failing the page.
		{name: "node of the wrong shape", body: `{"data":{"issues":{"nodes":[{"id":1}],"pageInfo":{"hasNextPage":false}}}}`, wantIssues: 1},
		{name: "truncated body", body: `{"data":{"issues":{"nodes":[{"id":"a"`, wantErr: ErrTransient},
		{name: "partial data is a failed page", wantErr: ErrTransient,
			body: `{"data":{"issues":{"nodes":[{"id":"a"}],"pageInfo":{"hasNextPage":false}}},"errors":[{"message":"resolver failed","extensions":{"code":"INTERNAL"}}]}`},
		{name: "one node", body: `{"data":{"issues":{"nodes":[{"id":"a","status":"OPEN","extra":true}],"pageInfo":{"hasNextPage":false}}}}`, wantIssues: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tt.body))
			})
			c := newTestClient(t, f.options())
			page, err := c.Issues(testCtx(t), IssueFilter{}, nil, 10, "")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Issues: %v", err)
			}
			if len(page.Issues) != tt.wantIssues || len(page.Raw) != tt.wantIssues {
				t.Errorf("issues = %d, raw = %d, want %d", len(page.Issues), len(page.Raw), tt.wantIssues)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		code     string
		message  string
		want     error
		wantText string
	}{
		{name: "bad input", status: 200, code: "BAD_USER_INPUT", message: "invalid enum", want: ErrBadRequest, wantText: "BAD_USER_INPUT"},
		{name: "validation", status: 200, code: "GRAPHQL_VALIDATION_FAILED", message: "no field x", want: ErrBadRequest},
		// No cursor was sent: the wording decides nothing (cursors: TestCursorRejectedByRequestNotWording).
		{name: "cursor wording without a cursor", status: 200, code: "BAD_USER_INPUT", message: "invalid cursor value", want: ErrBadRequest},
		{name: "cursor wording without a cursor as 400", status: 400, code: "BAD_USER_INPUT", message: "Cursor expired", want: ErrBadRequest},
		{name: "empty list 400", status: 400, code: "BAD_USER_INPUT", message: "empty list", want: ErrBadRequest, wantText: "HTTP 400"},
		{name: "forbidden 403", status: 403, code: "", message: "", want: ErrPermission},
		{name: "unauthorized scope", status: 200, code: "UNAUTHORIZED", message: "missing read:issues", want: ErrPermission},
		{name: "ip block", status: 200, code: "FORBIDDEN_IP", message: "blocked", want: ErrPermission},
		{name: "internal", status: 200, code: "INTERNAL", message: "oops", want: ErrTransient},
		{name: "unknown code", status: 200, code: "SOMETHING_NEW", message: "?", want: ErrTransient},
		{name: "not found", status: 200, code: "NOT_FOUND", message: "no such issue", want: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
				writeJSON(w, tt.status, gqlErrors(tt.code, tt.message))
			})
			c := newTestClient(t, f.options())
			_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 10, "")
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrAuth, ErrPermission, ErrBadRequest, ErrTransient, ErrCursorRejected, ErrNotFound} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("err also matches %v", other)
				}
			}
			if tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("err %q lacks %q", err, tt.wantText)
			}
			if strings.Contains(err.Error(), "tok-1") {
				t.Errorf("error leaks the access token: %q", err)
			}
		})
	}
}

func TestIssueByID(t *testing.T) {
	const id = "6f1c1f5e-0000-4000-8000-000000000002"
	tests := []struct {
		name    string
		nodes   string
		wantErr error
	}{
		{name: "found", nodes: `[{"id":"` + id + `","status":"OPEN"}]`},
		{name: "missing", nodes: `[]`, wantErr: ErrNotFound},
		{name: "another issue", nodes: `[{"id":"other"}]`, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
				_, _ = w.Write([]byte(`{"data":{"issues":{"nodes":` + tt.nodes + `,"pageInfo":{"hasNextPage":false,"endCursor":null}}}}`))
			})
			c := newTestClient(t, f.options())
			issue, raw, err := c.Issue(testCtx(t), id)
			var req gqlRequest
			_ = json.Unmarshal(f.recorded("/graphql")[0].Body, &req)
			if got, want := string(req.Variables), `{"after":null,"filterBy":{"id":"`+id+`"},"first":1,"orderBy":null}`; got != want {
				t.Errorf("variables = %s, want %s", got, want)
			}
			if req.Query != IssuesQuery {
				t.Error("Issue does not use the issues query")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || issue.ID != id || !bytes.Contains(raw, []byte(id)) {
				t.Fatalf("Issue = %+v, %s, %v", issue, raw, err)
			}
		})
	}
}

func TestIssuesRejectsBadPageSize(t *testing.T) {
	f := newFakeWiz(t)
	c := newTestClient(t, f.options())
	for _, first := range []int{0, -1, 501} {
		if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, first, ""); !errors.Is(err, ErrBadRequest) {
			t.Errorf("first=%d: err = %v, want ErrBadRequest", first, err)
		}
	}
	if n := f.gqlCount.Load(); n != 0 {
		t.Errorf("requests sent = %d, want 0", n)
	}
}

// selectionText renders a selection set canonically (fields and inline fragments in order).
func selectionText(set ast.SelectionSet) string {
	var b strings.Builder
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			b.WriteString(s.Name)
			if len(s.SelectionSet) > 0 {
				b.WriteString("{" + selectionText(s.SelectionSet) + "}")
			}
		case *ast.InlineFragment:
			b.WriteString("...on " + s.TypeCondition + "{" + selectionText(s.SelectionSet) + "}")
		case *ast.FragmentSpread:
			b.WriteString("..." + s.Name)
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// TestIssuesQuerySelectsSourceRules: the query selects the current sourceRules list and the deprecated
// sourceRule with the same union selection (WIZ_API.md §10), so rawJSON and the mapper see the rule
// whichever field Wiz fills.
func TestIssuesQuerySelectsSourceRules(t *testing.T) {
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
	rules := map[string]string{}
	for _, sel := range nodes.SelectionSet {
		if f, ok := sel.(*ast.Field); ok && (f.Name == "sourceRule" || f.Name == "sourceRules") {
			rules[f.Name] = selectionText(f.SelectionSet)
		}
	}
	if rules["sourceRules"] == "" || rules["sourceRule"] == "" {
		t.Fatalf("selected rule fields: %v, want sourceRule and sourceRules", rules)
	}
	if rules["sourceRules"] != rules["sourceRule"] {
		t.Errorf("sourceRules selects\n%s\nsourceRule selects\n%s", rules["sourceRules"], rules["sourceRule"])
	}
	for _, want := range []string{"__typename", "...on Control{", "...on CloudEventRule{", "...on CloudConfigurationRule{", "resolutionRecommendation"} {
		if !strings.Contains(rules["sourceRules"], want) {
			t.Errorf("sourceRules selection lacks %q: %s", want, rules["sourceRules"])
		}
	}
}

// TestSimSourceRules reads every simulator issue with IssuesQuery: some leave the deprecated
// sourceRule null and carry their rule only in sourceRules, and Rule() finds it there. A query that
// does not select sourceRules (the pack's, wizsim.StandardQuery) gets no such key.
func TestSimSourceRules(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 300, Seed: 7})
	c := newTestClient(t, simOptions(sim))
	ctx := testCtx(t)
	listOnly, both, after := 0, 0, ""
	for {
		page, err := c.Issues(ctx, IssueFilter{}, &IssueOrder{Field: "CREATED_AT", Direction: "ASC"}, 100, after)
		if err != nil {
			t.Fatal(err)
		}
		for i := range page.Issues {
			is := &page.Issues[i]
			if !bytes.Contains(page.Raw[i], []byte(`"sourceRules":`)) {
				t.Fatalf("issue %s: raw node lacks sourceRules: %s", is.ID, page.Raw[i])
			}
			switch {
			case is.SourceRule == nil && len(is.SourceRules) > 0:
				listOnly++
				if r := is.Rule(); r == nil || r.Name == "" || r.Name != is.SourceRules[0].Name {
					t.Errorf("issue %s: Rule() = %+v, want sourceRules[0] %q", is.ID, r, is.SourceRules[0].Name)
				}
			case is.SourceRule != nil:
				both++
				if len(is.SourceRules) != 1 || is.SourceRules[0].ID != is.SourceRule.ID {
					t.Errorf("issue %s: sourceRules %+v disagree with sourceRule %+v", is.ID, is.SourceRules, is.SourceRule)
				}
			}
		}
		if !page.HasNextPage {
			break
		}
		after = page.EndCursor
	}
	if listOnly == 0 || both == 0 {
		t.Errorf("%d issues with the rule only in sourceRules, %d with both fields; want some of each", listOnly, both)
	}

	const withoutList = `query IssuesTable($first: Int) { issues: issuesV2(first: $first) { nodes { id sourceRule { __typename ... on Control { name } } } } }`
	data, err := c.exec(ctx, "IssuesTable", withoutList, map[string]any{"first": 50})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("sourceRules")) {
		t.Error("the simulator returned sourceRules to a query that does not select it")
	}
	if !bytes.Contains(data, []byte(`"sourceRule":`)) {
		t.Error("the standard query's answer lacks sourceRule")
	}
}
