package wiz

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

func TestMutationsWire(t *testing.T) {
	due := time.Date(2025, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600))
	long := strings.Repeat("é", MaxNoteLen+10)
	cut := strings.Repeat("é", MaxNoteLen-utf8.RuneCountInString(NoteTruncatedSuffix)) + NoteTruncatedSuffix
	tests := []struct {
		name     string
		call     func(c *Client) error
		wantOp   string
		wantVars string
	}{
		{name: "reject with reason and note", wantOp: "UpdateIssue",
			call: func(c *Client) error {
				_, err := c.UpdateIssue(testCtx(t), "i-1", IssuePatch{Status: "rejected", Note: "fp", ResolutionReason: "wont_fix"})
				return err
			},
			wantVars: `{"issueId":"i-1","patch":{"status":"REJECTED","note":"fp","resolutionReason":"WONT_FIX"}}`},
		{name: "reject with a long note", wantOp: "UpdateIssue",
			call: func(c *Client) error {
				_, err := c.UpdateIssue(testCtx(t), "i-1", IssuePatch{Status: "REJECTED", Note: long, ResolutionReason: "WONT_FIX"})
				return err
			},
			wantVars: `{"issueId":"i-1","patch":{"status":"REJECTED","note":"` + cut + `","resolutionReason":"WONT_FIX"}}`},
		{name: "status alone", wantOp: "UpdateIssue",
			call: func(c *Client) error {
				_, err := c.UpdateIssue(testCtx(t), "i-1", IssuePatch{Status: "IN_PROGRESS"})
				return err
			},
			wantVars: `{"issueId":"i-1","patch":{"status":"IN_PROGRESS"}}`},
		{name: "due date", wantOp: "UpdateIssue",
			call: func(c *Client) error {
				_, err := c.UpdateIssue(testCtx(t), "i-1", IssuePatch{DueAt: &due})
				return err
			},
			wantVars: `{"issueId":"i-1","patch":{"dueAt":"2025-01-01T00:00:00.000Z"}}`},
		{name: "clear due date", wantOp: "UpdateIssue",
			call: func(c *Client) error {
				_, err := c.UpdateIssue(testCtx(t), "i-1", IssuePatch{ClearDueAt: true})
				return err
			},
			wantVars: `{"issueId":"i-1","override":{"dueAt":null}}`},
		{name: "note", wantOp: "CreateIssueNote",
			call: func(c *Client) error {
				_, err := c.CreateIssueNote(testCtx(t), "i-1", "hello")
				return err
			},
			wantVars: `{"input":{"issueId":"i-1","text":"hello"}}`},
		{name: "long note truncated", wantOp: "CreateIssueNote",
			call: func(c *Client) error {
				_, err := c.CreateIssueNote(testCtx(t), "i-1", long)
				return err
			},
			wantVars: `{"input":{"issueId":"i-1","text":"` + cut + `"}}`},
		{name: "delete note", wantOp: "DeleteIssueNote",
			call:     func(c *Client) error { return c.DeleteIssueNote(testCtx(t), "n-1") },
			wantVars: `{"input":{"id":"n-1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, req gqlRequest, _ int64) {
				var data map[string]any
				switch req.OperationName {
				case "UpdateIssue":
					data = map[string]any{"updateIssue": map[string]any{"issue": map[string]any{"id": "i-1", "status": "REJECTED", "dueAt": nil}}}
				case "CreateIssueNote":
					data = map[string]any{"createIssueNote": map[string]any{"issueNote": map[string]any{"id": "n-9", "text": "hello"}}}
				case "DeleteIssueNote":
					data = map[string]any{"deleteIssueNote": map[string]any{"_stub": nil}}
				}
				writeJSON(w, 200, map[string]any{"data": data})
			})
			c := newTestClient(t, f.options())
			if err := tt.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			var req gqlRequest
			if err := json.Unmarshal(f.recorded("/graphql")[0].Body, &req); err != nil {
				t.Fatal(err)
			}
			if req.OperationName != tt.wantOp || !strings.Contains(req.Query, "mutation "+tt.wantOp+"(") {
				t.Errorf("operation = %q, query %q", req.OperationName, req.Query)
			}
			if string(req.Variables) != tt.wantVars {
				t.Errorf("variables =\n %s\nwant\n %s", req.Variables, tt.wantVars)
			}
		})
	}
}

// TestUpdateIssueMutationShape pins updateIssue to the form of the Wiz pack's UPDATE_ISSUE_QUERY
// (WIZ_API.md §10): separately typed variables in an inline input object, no named input type.
func TestUpdateIssueMutationShape(t *testing.T) {
	doc, err := parser.ParseQuery(&ast.Source{Input: UpdateIssueMutation})
	if err != nil {
		t.Fatal(err)
	}
	op := doc.Operations[0]
	var vars []string
	for _, v := range op.VariableDefinitions {
		vars = append(vars, "$"+v.Variable+": "+v.Type.String())
	}
	if got, want := strings.Join(vars, ", "), "$issueId: ID!, $patch: UpdateIssuePatch, $override: UpdateIssuePatch"; got != want {
		t.Errorf("variables = %s, want %s", got, want)
	}
	field, _ := op.SelectionSet[0].(*ast.Field)
	if field == nil || field.Name != "updateIssue" || len(field.Arguments) != 1 || field.Arguments[0].Name != "input" {
		t.Fatalf("selection %+v, want updateIssue(input: ...)", op.SelectionSet[0])
	}
	if got, want := field.Arguments[0].Value.String(), "{id:$issueId,patch:$patch,override:$override}"; got != want {
		t.Errorf("input = %s, want %s", got, want)
	}
}

func TestTruncateNote(t *testing.T) {
	keep := MaxNoteLen - utf8.RuneCountInString(NoteTruncatedSuffix)
	tests := []struct {
		name string
		in   string
		want string
		cut  bool
	}{
		{"short", "hello", "hello", false},
		{"exactly the limit", strings.Repeat("a", MaxNoteLen), strings.Repeat("a", MaxNoteLen), false},
		{"one over", strings.Repeat("a", MaxNoteLen+1), strings.Repeat("a", keep) + NoteTruncatedSuffix, true},
		{"multi-byte runes", strings.Repeat("é", 2000), strings.Repeat("é", keep) + NoteTruncatedSuffix, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := TruncateNote(tt.in)
			if got != tt.want || cut != tt.cut {
				t.Fatalf("got %d runes (cut %v), want %d (cut %v)", utf8.RuneCountInString(got), cut, utf8.RuneCountInString(tt.want), tt.cut)
			}
			if n := utf8.RuneCountInString(got); n > MaxNoteLen || !utf8.ValidString(got) {
				t.Errorf("%d runes, valid UTF-8 %v: the limit includes the marker", n, utf8.ValidString(got))
			}
			if again, _ := TruncateNote(got); again != got {
				t.Error("truncating twice changed the note")
			}
		})
	}
}

func TestMutationResults(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, req gqlRequest, _ int64) {
		switch req.OperationName {
		case "UpdateIssue":
			writeJSON(w, 200, map[string]any{"data": map[string]any{"updateIssue": map[string]any{"issue": map[string]any{
				"id": "i-1", "status": "IN_PROGRESS", "dueAt": "2025-01-01T00:00:00.000Z", "resolutionReason": nil,
				"notes": []any{map[string]any{"id": "n1", "text": "t"}}}}}})
		case "CreateIssueNote":
			writeJSON(w, 200, gqlErrors("BAD_USER_INPUT", "note too long"))
		}
	})
	c := newTestClient(t, f.options())
	issue, err := c.UpdateIssue(testCtx(t), "i-1", IssuePatch{Status: "IN_PROGRESS"})
	if err != nil {
		t.Fatal(err)
	}
	if issue.Status != "IN_PROGRESS" || issue.DueAt == nil || len(issue.Notes) != 1 {
		t.Errorf("issue = %+v", issue)
	}
	if _, err := c.CreateIssueNote(testCtx(t), "i-1", "x"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("CreateIssueNote err = %v, want ErrBadRequest", err)
	}
	sent := len(f.recorded("/graphql"))
	bad := []IssuePatch{
		{},
		{DueAt: new(time.Now()), ClearDueAt: true},
		{Status: "OPEN", Note: "reopened"},            // a note goes with a resolve or reject only
		{Status: "IN_PROGRESS", Note: "looking"},      // likewise
		{Status: "REJECTED", Note: "no reason"},       // and only with a reason
		{Note: "alone", ResolutionReason: "WONT_FIX"}, // and only with a status change
	}
	for _, p := range bad {
		if _, err := c.UpdateIssue(testCtx(t), "i-1", p); !errors.Is(err, ErrBadRequest) {
			t.Errorf("UpdateIssue(%+v) err = %v, want ErrBadRequest", p, err)
		}
	}
	if _, err := c.UpdateIssue(testCtx(t), " ", IssuePatch{Status: "OPEN"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("empty id: err = %v", err)
	}
	if n := len(f.recorded("/graphql")) - sent; n != 0 {
		t.Errorf("%d requests sent for refused patches", n)
	}
}

// TestSimUpdateIssueShape runs every kind of update through the simulator, whose schema has the
// types public clients prove (no UpdateIssueInput), and checks that a named input type is refused
// there the way Wiz's GraphQL validation refuses an unknown type.
func TestSimUpdateIssueShape(t *testing.T) {
	sim := startSim(t, wizsim.Options{})
	c := newTestClient(t, simOptions(sim))
	ctx := testCtx(t)
	var threat string
	for _, s := range sim.Snapshot() {
		if s.Type == "THREAT_DETECTION" && s.Status == "OPEN" {
			threat = s.ID
			break
		}
	}
	if threat == "" {
		t.Fatal("no open THREAT_DETECTION issue in the simulator")
	}
	due := time.Date(2031, 2, 3, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		patch   IssuePatch
		status  string
		wantDue bool
	}{
		{IssuePatch{Status: "IN_PROGRESS"}, "IN_PROGRESS", false},
		{IssuePatch{DueAt: &due}, "IN_PROGRESS", true},
		{IssuePatch{ClearDueAt: true}, "IN_PROGRESS", false},
		{IssuePatch{Status: "RESOLVED", ResolutionReason: "ISSUE_FIXED", Note: strings.Repeat("r", 3000)}, "RESOLVED", false},
		{IssuePatch{Status: "OPEN"}, "OPEN", false},
		{IssuePatch{Status: "REJECTED", ResolutionReason: "EXCEPTION", Note: "accepted"}, "REJECTED", false},
	}
	for _, s := range steps {
		got, err := c.UpdateIssue(ctx, threat, s.patch)
		if err != nil {
			t.Fatalf("UpdateIssue(%+v): %v", s.patch, err)
		}
		if got.Status != s.status || (got.DueAt != nil) != s.wantDue {
			t.Fatalf("after %+v: status %s, dueAt %v", s.patch, got.Status, got.DueAt)
		}
	}

	named := `mutation UpdateIssue($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }`
	_, err := c.exec(ctx, "UpdateIssue", named, map[string]any{"input": map[string]any{"id": threat, "patch": map[string]any{"status": "OPEN"}}})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Class != ErrBadRequest || apiErr.Code != "GRAPHQL_VALIDATION_FAILED" || !strings.Contains(apiErr.Message, "UpdateIssueInput") {
		t.Errorf("named input type: err = %v, want GRAPHQL_VALIDATION_FAILED naming UpdateIssueInput", err)
	}
}

// A resolve or reject with a note is not retried after a 5xx (a lost answer to a processed request
// would add the note twice); without a note it is, like a read.
func TestUpdateIssueWithANoteIsNotRetriedOn5xx(t *testing.T) {
	for _, tc := range []struct {
		patch    IssuePatch
		requests int64
	}{
		{IssuePatch{Status: "REJECTED", ResolutionReason: "WONT_FIX", Note: "accepted risk"}, 1},
		{IssuePatch{Status: "IN_PROGRESS"}, 2},
	} {
		f := newFakeWiz(t)
		var n atomic.Int64
		f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
			if n.Add(1) == 1 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"data":{"updateIssue":{"issue":{"id":"i-1","status":"IN_PROGRESS"}}}}`))
		})
		c := newTestClient(t, f.options())
		_, err := c.UpdateIssue(testCtx(t), "i-1", tc.patch)
		if got := n.Load(); got != tc.requests {
			t.Errorf("patch %+v: %d requests (err %v), want %d", tc.patch, got, err, tc.requests)
		}
	}
}
