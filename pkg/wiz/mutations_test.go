package wiz

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMutationsWire(t *testing.T) {
	due := time.Date(2025, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600))
	long := strings.Repeat("é", MaxNoteLen+10)
	tests := []struct {
		name     string
		call     func(c *Client) error
		wantOp   string
		wantVars string
	}{
		{name: "reject with reason", wantOp: "UpdateIssue",
			call: func(c *Client) error {
				_, err := c.UpdateIssue(testCtx(t), "i-1", IssuePatch{Status: "rejected", Note: "fp", ResolutionReason: "WONT_FIX"})
				return err
			},
			wantVars: `{"input":{"id":"i-1","patch":{"status":"REJECTED","note":"fp","resolutionReason":"WONT_FIX"}}}`},
		{name: "due date", wantOp: "UpdateIssue",
			call: func(c *Client) error {
				_, err := c.UpdateIssue(testCtx(t), "i-1", IssuePatch{DueAt: &due})
				return err
			},
			wantVars: `{"input":{"id":"i-1","patch":{"dueAt":"2025-01-01T00:00:00.000Z"}}}`},
		{name: "clear due date", wantOp: "UpdateIssue",
			call: func(c *Client) error {
				_, err := c.UpdateIssue(testCtx(t), "i-1", IssuePatch{ClearDueAt: true})
				return err
			},
			wantVars: `{"input":{"id":"i-1","patch":{},"override":{"dueAt":null}}}`},
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
			wantVars: `{"input":{"issueId":"i-1","text":"` + strings.Repeat("é", MaxNoteLen) + NoteTruncatedSuffix + `"}}`},
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
	bad := []IssuePatch{{}, {DueAt: new(time.Now()), ClearDueAt: true}}
	for _, p := range bad {
		if _, err := c.UpdateIssue(testCtx(t), "i-1", p); !errors.Is(err, ErrBadRequest) {
			t.Errorf("UpdateIssue(%+v) err = %v, want ErrBadRequest", p, err)
		}
	}
	if _, err := c.UpdateIssue(testCtx(t), " ", IssuePatch{Status: "OPEN"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("empty id: err = %v", err)
	}
}
