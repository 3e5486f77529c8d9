package wizsim

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// updateMutation is updateIssue as the Wiz pack sends it (Wiz.py UPDATE_ISSUE_QUERY).
const updateMutation = `mutation U($issueId: ID!, $patch: UpdateIssuePatch, $override: UpdateIssuePatch) {
	updateIssue(input: {id: $issueId, patch: $patch, override: $override}) {
	issue { id status dueAt resolutionReason resolvedAt statusChangedAt notes { id text serviceAccount { name } } } } }`

func issueOfType(t *testing.T, h *harness, typ string, not string) IssueState {
	t.Helper()
	for _, st := range h.sim.Snapshot() {
		if st.Type == typ && st.Status != not {
			return st
		}
	}
	t.Fatalf("no %s issue", typ)
	return IssueState{}
}

type updated struct {
	Issue struct {
		ID               string  `json:"id"`
		Status           string  `json:"status"`
		DueAt            *string `json:"dueAt"`
		ResolutionReason *string `json:"resolutionReason"`
		ResolvedAt       *string `json:"resolvedAt"`
		StatusChangedAt  *string `json:"statusChangedAt"`
		Notes            []struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		} `json:"notes"`
	} `json:"issue"`
}

func TestUpdateIssueRules(t *testing.T) {
	h := newHarness(t, Options{Issues: 300, Seed: 20})
	threat := issueOfType(t, h, "THREAT_DETECTION", "RESOLVED")
	config := issueOfType(t, h, "CLOUD_CONFIGURATION", "REJECTED")
	tests := []struct {
		name  string
		query string // updateMutation when empty
		vars  map[string]any
		code  string
		msg   string
	}{
		{name: "resolve non-threat", vars: map[string]any{"issueId": config.ID, "patch": map[string]any{"status": "RESOLVED"}},
			code: CodeBadUserInput, msg: "changing to resolved status is not allowed"},
		{name: "note too long", vars: map[string]any{"issueId": threat.ID, "patch": map[string]any{"status": "REJECTED", "resolutionReason": "WONT_FIX", "note": strings.Repeat("x", 1501)}},
			code: CodeBadUserInput, msg: "too long"},
		{name: "not a uuid", vars: map[string]any{"issueId": "issue-1", "patch": map[string]any{"status": "OPEN"}},
			code: CodeBadUserInput, msg: "UUID"},
		{name: "unknown issue", vars: map[string]any{"issueId": "00000000-0000-4000-8000-000000000000", "patch": map[string]any{"status": "OPEN"}},
			code: CodeNotFound, msg: "not found"},
		{name: "bad enum", vars: map[string]any{"issueId": threat.ID, "patch": map[string]any{"status": "CLOSED"}},
			code: CodeBadUserInput, msg: "CLOSED"},

		// Item: no named input type (no public client names one; override is an UpdateIssuePatch).
		{name: "named input type", query: `mutation U($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }`,
			vars: map[string]any{"input": map[string]any{"id": threat.ID, "patch": map[string]any{"status": "OPEN"}}},
			code: CodeValidationFailed, msg: `Unknown type "UpdateIssueInput"`},
		{name: "override type of its own", query: `mutation U($issueId: ID!, $override: UpdateIssueOverride) { updateIssue(input: {id: $issueId, override: $override}) { issue { id } } }`,
			vars: map[string]any{"issueId": threat.ID, "override": map[string]any{"dueAt": nil}},
			code: CodeValidationFailed, msg: `Unknown type "UpdateIssueOverride"`},
		{name: "id typed String", query: `mutation U($issueId: String!, $patch: UpdateIssuePatch) { updateIssue(input: {id: $issueId, patch: $patch}) { issue { id } } }`,
			vars: map[string]any{"issueId": threat.ID, "patch": map[string]any{"status": "OPEN"}},
			code: CodeValidationFailed, msg: "ID!"},

		// Item: reasons per action.
		{name: "reject with a resolve-only reason", vars: map[string]any{"issueId": config.ID, "patch": map[string]any{"status": "REJECTED", "resolutionReason": "ISSUE_FIXED"}},
			code: CodeBadUserInput, msg: "supported: FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
		{name: "resolve with an unsupported reason", vars: map[string]any{"issueId": threat.ID, "patch": map[string]any{"status": "RESOLVED", "resolutionReason": "DETECTION_EXPIRED"}},
			code: CodeBadUserInput, msg: "supported: OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX"},

		// Item: patch.note only with a resolve or reject that has a reason.
		{name: "note with reopen", vars: map[string]any{"issueId": threat.ID, "patch": map[string]any{"status": "OPEN", "note": "reopened"}},
			code: CodeBadUserInput, msg: "createIssueNote"},
		{name: "note with in-progress", vars: map[string]any{"issueId": threat.ID, "patch": map[string]any{"status": "IN_PROGRESS", "note": "looking"}},
			code: CodeBadUserInput, msg: "createIssueNote"},
		{name: "note with reject but no reason", vars: map[string]any{"issueId": config.ID, "patch": map[string]any{"status": "REJECTED", "note": "why"}},
			code: CodeBadUserInput, msg: "createIssueNote"},
		{name: "note alone", vars: map[string]any{"issueId": threat.ID, "patch": map[string]any{"note": "hello"}},
			code: CodeBadUserInput, msg: "createIssueNote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.sim.Snapshot()
			q := tt.query
			if q == "" {
				q = updateMutation
			}
			status, r := h.do(q, tt.vars)
			// gqlparser may add a second validation error (the position of the unknown type).
			if status != 200 || len(r.Errors) == 0 || r.Errors[0].Extensions.Code != tt.code || !strings.Contains(r.Errors[0].Message, tt.msg) {
				t.Fatalf("status %d errors %+v; want %s mentioning %q", status, r.Errors, tt.code, tt.msg)
			}
			if !reflect.DeepEqual(h.sim.Snapshot(), before) {
				t.Error("a refused update changed the simulator's issues")
			}
		})
	}
	t.Run("resolve threat with note", func(t *testing.T) {
		h.clock.Advance(time.Minute)
		now := h.clock.Now().Truncate(time.Microsecond)
		note := strings.Repeat("n", 1500)
		_, r := h.do(updateMutation, map[string]any{"issueId": threat.ID,
			"patch": map[string]any{"status": "RESOLVED", "resolutionReason": "FALSE_POSITIVE", "note": note, "dueAt": "2025-01-01T00:00:00.000Z"}})
		var u updated
		if err := json.Unmarshal(r.Data["updateIssue"], &u); err != nil || len(r.Errors) > 0 {
			t.Fatalf("%v %+v", err, r.Errors)
		}
		if u.Issue.Status != "RESOLVED" || *u.Issue.ResolutionReason != "FALSE_POSITIVE" || u.Issue.DueAt == nil ||
			!mustTime(t, *u.Issue.StatusChangedAt).Equal(now) || !mustTime(t, *u.Issue.ResolvedAt).Equal(now) {
			t.Fatalf("updated issue %+v", u.Issue)
		}
		if n := u.Issue.Notes[len(u.Issue.Notes)-1]; n.Text != note {
			t.Fatal("note not appended")
		}
		// Visible at once to an updates query.
		p := h.page(map[string]any{"first": 10, "filterBy": map[string]any{"statusChangedAt": map[string]any{"after": now.Add(-time.Microsecond).Format(tsLayout)}}})
		if len(p.Nodes) != 1 || p.Nodes[0].ID != threat.ID || p.Nodes[0].Status != "RESOLVED" {
			t.Fatalf("updates query after the change: %+v", p.Nodes)
		}
	})
	t.Run("override clears dueAt", func(t *testing.T) {
		_, r := h.do(updateMutation, map[string]any{"issueId": threat.ID, "override": map[string]any{"dueAt": nil}})
		var u updated
		if err := json.Unmarshal(r.Data["updateIssue"], &u); err != nil || u.Issue.DueAt != nil || len(r.Errors) > 0 {
			t.Fatalf("%v dueAt %v errors %+v", err, u.Issue.DueAt, r.Errors)
		}
	})
	t.Run("reject non-threat", func(t *testing.T) {
		_, r := h.do(updateMutation, map[string]any{"issueId": config.ID, "patch": map[string]any{"status": "REJECTED", "resolutionReason": "WONT_FIX"}})
		var u updated
		if err := json.Unmarshal(r.Data["updateIssue"], &u); err != nil || u.Issue.Status != "REJECTED" || u.Issue.ResolvedAt != nil {
			t.Fatalf("%v %+v %+v", err, u.Issue, r.Errors)
		}
	})
	t.Run("new reason for a rejected issue", func(t *testing.T) {
		for _, tc := range []struct {
			reason, code string
		}{{"EXCEPTION", ""}, {"OBJECT_DELETED", CodeBadUserInput}} {
			_, r := h.do(updateMutation, map[string]any{"issueId": config.ID, "patch": map[string]any{"resolutionReason": tc.reason}})
			if got := errCode(r); got != tc.code {
				t.Errorf("%s: code %q, want %q (%+v)", tc.reason, got, tc.code, r.Errors)
			}
		}
	})
}

// TestResolutionReasonsPerStatus tries every value of the resolutionReason enum with both closing
// statuses: Wiz accepts FALSE_POSITIVE, EXCEPTION, WONT_FIX for REJECTED and OBJECT_DELETED,
// ISSUE_FIXED and those three for RESOLVED (Wiz pack release notes 2.0.3, PR #43959).
func TestResolutionReasonsPerStatus(t *testing.T) {
	h := newHarness(t, Options{Issues: 100, Seed: 23})
	threat := issueOfType(t, h, "THREAT_DETECTION", "")
	accepted := map[string]string{
		"REJECTED": "FALSE_POSITIVE EXCEPTION WONT_FIX",
		"RESOLVED": "OBJECT_DELETED ISSUE_FIXED FALSE_POSITIVE EXCEPTION WONT_FIX",
	}
	all := []string{"OBJECT_DELETED", "ISSUE_FIXED", "CONTROL_CHANGED", "CONTROL_DISABLED", "CONTROL_DELETED",
		"FALSE_POSITIVE", "EXCEPTION", "WONT_FIX", "DETECTION_EXPIRED"}
	for status, ok := range accepted {
		for _, reason := range all {
			_, r := h.do(updateMutation, map[string]any{"issueId": threat.ID, "patch": map[string]any{
				"status": status, "resolutionReason": reason, "note": "closing with " + reason}})
			want := CodeBadUserInput
			if slices.Contains(strings.Fields(ok), reason) {
				want = ""
			}
			if got := errCode(r); got != want {
				t.Errorf("%s with %s: code %q, want %q (%+v)", status, reason, got, want, r.Errors)
			}
		}
	}
}

// errCode is the code of a response's only error, or "" when it has none.
func errCode(r gqlResp) string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Extensions.Code
}

func TestNotes(t *testing.T) {
	h := newHarness(t, Options{Issues: 50, Seed: 21})
	id := h.sim.Snapshot()[0].ID
	create := `mutation($input: CreateIssueNoteInput!) { createIssueNote(input: $input) { issueNote { id createdAt text } } }`
	del := `mutation($input: DeleteIssueNoteInput!) { deleteIssueNote(input: $input) { _stub } }`

	status, r := h.do(create, map[string]any{"input": map[string]any{"issueId": id, "text": strings.Repeat("é", 1501)}})
	if status != 200 || len(r.Errors) != 1 || r.Errors[0].Extensions.Code != CodeBadUserInput {
		t.Fatalf("long note: %d %+v", status, r.Errors)
	}
	_, r = h.do(create, map[string]any{"input": map[string]any{"issueId": id, "text": "looked at it"}})
	var c struct {
		IssueNote struct{ ID, CreatedAt, Text string } `json:"issueNote"`
	}
	if err := json.Unmarshal(r.Data["createIssueNote"], &c); err != nil || c.IssueNote.Text != "looked at it" {
		t.Fatalf("%v %+v", err, r)
	}
	mustTime(t, c.IssueNote.CreatedAt)
	_, r = h.do(del, map[string]any{"input": map[string]any{"id": c.IssueNote.ID}})
	if len(r.Errors) > 0 || string(r.Data["deleteIssueNote"]) != `{"_stub":true}` {
		t.Fatalf("delete: %+v", r)
	}
	_, r = h.do(del, map[string]any{"input": map[string]any{"id": c.IssueNote.ID}})
	if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != CodeNotFound {
		t.Fatalf("second delete: %+v", r)
	}
	if got := h.sim.Stats().Mutations; got["createIssueNote"] != 1 || got["deleteIssueNote"] != 1 {
		t.Fatalf("mutation stats %v", got)
	}
}

func TestSetStatusAndAddIssue(t *testing.T) {
	h := newHarness(t, Options{Issues: 100, Seed: 22})
	h.revealAll()
	snap := h.sim.Snapshot()
	h.clock.Advance(time.Second)
	since := h.clock.Now().Add(-time.Microsecond).Format(tsLayout)
	if err := h.sim.SetStatus(snap[0].ID, "IN_PROGRESS"); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.SetStatus(snap[0].ID, "CLOSED"); err == nil {
		t.Fatal("unknown status accepted")
	}
	id, err := h.sim.AddIssue(NewIssue{Type: "THREAT_DETECTION", Severity: "CRITICAL", ProjectIDs: snap[1].ProjectIDs})
	if err != nil {
		t.Fatal(err)
	}
	hidden, err := h.sim.AddIssue(NewIssue{Lag: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(h.walk(10, map[string]any{"statusChangedAt": map[string]any{"after": since}}, nil))
	if len(got) != 2 || !strings.Contains(strings.Join(got, ","), snap[0].ID) || !strings.Contains(strings.Join(got, ","), id) {
		t.Fatalf("changed since %s: %v", since, got)
	}
	h.clock.Advance(time.Minute)
	got = ids(h.walk(10, map[string]any{"statusChangedAt": map[string]any{"after": since}}, nil))
	if len(got) != 3 || got[2] != hidden {
		t.Fatalf("after the lag: %v", got)
	}
	if _, err := h.sim.AddIssue(NewIssue{ProjectIDs: []string{"nope"}}); err == nil {
		t.Fatal("unknown project accepted")
	}
}
