package wizsim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const updateMutation = `mutation U($input: UpdateIssueInput!) { updateIssue(input: $input) {
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
		input map[string]any
		code  string
		msg   string
	}{
		{"resolve non-threat", map[string]any{"id": config.ID, "patch": map[string]any{"status": "RESOLVED"}}, CodeBadUserInput, "changing to resolved status is not allowed"},
		{"note too long", map[string]any{"id": threat.ID, "patch": map[string]any{"note": strings.Repeat("x", 1501)}}, CodeBadUserInput, "too long"},
		{"not a uuid", map[string]any{"id": "issue-1", "patch": map[string]any{"status": "OPEN"}}, CodeBadUserInput, "UUID"},
		{"unknown issue", map[string]any{"id": "00000000-0000-4000-8000-000000000000", "patch": map[string]any{"status": "OPEN"}}, CodeNotFound, "not found"},
		{"bad enum", map[string]any{"id": threat.ID, "patch": map[string]any{"status": "CLOSED"}}, CodeBadUserInput, "CLOSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, r := h.do(updateMutation, map[string]any{"input": tt.input})
			if status != 200 || len(r.Errors) != 1 || r.Errors[0].Extensions.Code != tt.code || !strings.Contains(r.Errors[0].Message, tt.msg) {
				t.Fatalf("status %d errors %+v", status, r.Errors)
			}
		})
	}
	t.Run("resolve threat with note", func(t *testing.T) {
		h.clock.Advance(time.Minute)
		now := h.clock.Now().Truncate(time.Microsecond)
		note := strings.Repeat("n", 1500)
		_, r := h.do(updateMutation, map[string]any{"input": map[string]any{"id": threat.ID,
			"patch": map[string]any{"status": "RESOLVED", "resolutionReason": "FALSE_POSITIVE", "note": note, "dueAt": "2025-01-01T00:00:00.000Z"}}})
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
		_, r := h.do(updateMutation, map[string]any{"input": map[string]any{"id": threat.ID, "override": map[string]any{"dueAt": nil}}})
		var u updated
		if err := json.Unmarshal(r.Data["updateIssue"], &u); err != nil || u.Issue.DueAt != nil {
			t.Fatalf("%v dueAt %v errors %+v", err, u.Issue.DueAt, r.Errors)
		}
	})
	t.Run("reject non-threat", func(t *testing.T) {
		_, r := h.do(updateMutation, map[string]any{"input": map[string]any{"id": config.ID, "patch": map[string]any{"status": "REJECTED", "resolutionReason": "WONT_FIX"}}})
		var u updated
		if err := json.Unmarshal(r.Data["updateIssue"], &u); err != nil || u.Issue.Status != "REJECTED" || u.Issue.ResolvedAt != nil {
			t.Fatalf("%v %+v %+v", err, u.Issue, r.Errors)
		}
	})
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
