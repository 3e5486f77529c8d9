package writeback

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

const someID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		a       Action
		wantErr string // "" = valid
	}{
		{"resolve", Action{Kind: "resolve", IssueID: someID, Reason: "FALSE_POSITIVE"}, ""},
		{"resolve lower-case reason and upper-case id", Action{Kind: "resolve", IssueID: strings.ToUpper(someID), Reason: "false_positive", Note: "n"}, ""},
		{"resolve without reason", Action{Kind: "resolve", IssueID: someID}, "resolve needs a reason (one of OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX)"},
		{"reject without reason", Action{Kind: "reject", IssueID: someID, Note: "n"}, "reject needs a reason (one of FALSE_POSITIVE, EXCEPTION, WONT_FIX)"},
		{"bad reason", Action{Kind: "reject", IssueID: someID, Reason: "BECAUSE", Note: "n"}, `reason "BECAUSE" is not accepted by Wiz for reject: use one of FALSE_POSITIVE, EXCEPTION, WONT_FIX`},
		{"reject with a resolve-only reason", Action{Kind: "reject", IssueID: someID, Reason: "ISSUE_FIXED", Note: "n"}, `reason "ISSUE_FIXED" is not accepted by Wiz for reject: use one of FALSE_POSITIVE, EXCEPTION, WONT_FIX`},
		{"reject OBJECT_DELETED", Action{Kind: "reject", IssueID: someID, Reason: "object_deleted", Note: "n"}, "use one of FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
		{"reject EXCEPTION", Action{Kind: "reject", IssueID: someID, Reason: "EXCEPTION", Note: "n"}, ""},
		{"resolve ISSUE_FIXED", Action{Kind: "resolve", IssueID: someID, Reason: "ISSUE_FIXED"}, ""},
		{"resolve OBJECT_DELETED", Action{Kind: "resolve", IssueID: someID, Reason: "OBJECT_DELETED"}, ""},
		{"resolve DETECTION_EXPIRED", Action{Kind: "resolve", IssueID: someID, Reason: "DETECTION_EXPIRED"}, `reason "DETECTION_EXPIRED" is not accepted by Wiz for resolve: use one of OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX`},
		{"resolve CONTROL_CHANGED", Action{Kind: "resolve", IssueID: someID, Reason: "CONTROL_CHANGED"}, "is not accepted by Wiz for resolve"},
		{"reject without note", Action{Kind: "reject", IssueID: someID, Reason: "WONT_FIX"}, "reject needs a note"},
		{"reject", Action{Kind: "reject", IssueID: someID, Reason: "WONT_FIX", Note: "accepted risk"}, ""},
		{"reopen", Action{Kind: "reopen", IssueID: someID}, ""},
		{"reopen with reason", Action{Kind: "reopen", IssueID: someID, Reason: "WONT_FIX"}, "reopen does not take a reason"},
		{"in-progress", Action{Kind: "in-progress", IssueID: someID}, ""},
		{"note", Action{Kind: "note", IssueID: someID, Text: "hello"}, ""},
		{"note without text", Action{Kind: "note", IssueID: someID, Text: "  "}, "note needs a text"},
		{"due-date", Action{Kind: "due-date", IssueID: someID, DueDate: "2030-01-31"}, ""},
		{"due-date bad", Action{Kind: "due-date", IssueID: someID, DueDate: "31/01/2030"}, `due date "31/01/2030" is not a date in the form YYYY-MM-DD`},
		{"due-date impossible", Action{Kind: "due-date", IssueID: someID, DueDate: "2030-02-30"}, "not a date"},
		{"due-date missing", Action{Kind: "due-date", IssueID: someID}, "due-date needs a date"},
		{"clear-due-date", Action{Kind: "clear-due-date", IssueID: someID}, ""},
		{"clear-due-date with date", Action{Kind: "clear-due-date", IssueID: someID, DueDate: "2030-01-01"}, "does not take a due date"},
		{"unknown kind", Action{Kind: "close", IssueID: someID}, `unknown action "close"`},
		{"missing id", Action{Kind: "reopen"}, "missing issue id"},
		{"id not a uuid", Action{Kind: "reopen", IssueID: "12345"}, `issue id "12345" is not a UUID`},
		{"id with braces", Action{Kind: "reopen", IssueID: "{" + someID + "}"}, "is not a UUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestDoAgainstSimulator(t *testing.T) {
	env := newSimEnv(t)
	ctx := context.Background()
	threat := env.byType["THREAT_DETECTION"]
	config := env.byType["CLOUD_CONFIGURATION"]
	toxic := env.byType["TOXIC_COMBINATION"]

	t.Run("resolve a threat detection", func(t *testing.T) {
		res, err := Do(ctx, env.client, Action{Kind: KindResolve, IssueID: threat[0], Reason: "false_positive", Note: "benign scanner"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != "RESOLVED" || res.Action != KindResolve || res.IssueID != threat[0] {
			t.Errorf("result %+v", res)
		}
		if got := env.status(t, threat[0]); got != "RESOLVED" {
			t.Errorf("simulator status %s", got)
		}
	})
	for _, id := range []string{config[0], toxic[0]} {
		t.Run("resolve refused for other types", func(t *testing.T) {
			_, err := Do(ctx, env.client, Action{Kind: KindResolve, IssueID: id, Reason: "WONT_FIX"})
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("err = %v, want ErrNotAllowed", err)
			}
			for _, want := range []string{"only THREAT_DETECTION issues can be resolved", "reject " + id + " --reason WONT_FIX"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if got := env.status(t, id); got != "OPEN" {
				t.Errorf("simulator status changed to %s", got)
			}
			// A resolve reason reject does not take: the hint names one it does.
			_, err = Do(ctx, env.client, Action{Kind: KindResolve, IssueID: id, Reason: "ISSUE_FIXED"})
			if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "reject "+id+" --reason WONT_FIX") {
				t.Errorf("hint for ISSUE_FIXED: %v, want a reject with a reason reject takes", err)
			}
		})
	}
	t.Run("reject, reopen, in-progress", func(t *testing.T) {
		id := config[1]
		steps := []struct {
			a    Action
			want string
		}{
			{Action{Kind: KindReject, IssueID: id, Reason: "WONT_FIX", Note: "accepted risk"}, "REJECTED"},
			{Action{Kind: KindReopen, IssueID: id, Note: "risk no longer accepted"}, "OPEN"},
			{Action{Kind: KindInProgress, IssueID: id, Note: "owner contacted"}, "IN_PROGRESS"},
			{Action{Kind: KindReopen, IssueID: id}, "OPEN"},
		}
		for _, s := range steps {
			res, err := Do(ctx, env.client, s.a)
			if err != nil {
				t.Fatalf("%s: %v", s.a.Kind, err)
			}
			if res.Status != s.want || env.status(t, id) != s.want {
				t.Fatalf("%s: result %+v, simulator %s; want %s", s.a.Kind, res, env.status(t, id), s.want)
			}
			if added := s.a.Kind != KindReject && s.a.Note != ""; (res.NoteID != "") != added {
				t.Errorf("%s: note id %q, want one: %v", s.a.Kind, res.NoteID, added)
			}
		}
		iss, _, err := env.client.Issue(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, n := range iss.Notes {
			texts = append(texts, n.Text)
		}
		joined := strings.Join(texts, "|")
		if !strings.Contains(joined, "accepted risk") || !strings.Contains(joined, "risk no longer accepted") || !strings.Contains(joined, "owner contacted") {
			t.Errorf("status-change notes missing: %q", joined)
		}
	})
	t.Run("note is truncated", func(t *testing.T) {
		id := toxic[1]
		long := strings.Repeat("x", 3000)
		res, err := Do(ctx, env.client, Action{Kind: KindNote, IssueID: id, Text: long})
		if err != nil {
			t.Fatal(err)
		}
		if res.NoteID == "" || !res.NoteTruncated {
			t.Errorf("result %+v", res)
		}
		iss, _, err := env.client.Issue(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, n := range iss.Notes {
			if n.ID == res.NoteID {
				found = true
				if want := strings.Repeat("x", wiz.MaxNoteLen-len(wiz.NoteTruncatedSuffix)) + wiz.NoteTruncatedSuffix; n.Text != want {
					t.Errorf("note has %d characters, want 1400 with the marker", len(n.Text))
				}
			}
		}
		if !found {
			t.Errorf("note %s not on the issue", res.NoteID)
		}
	})
	t.Run("due date set and cleared", func(t *testing.T) {
		id := threat[1]
		res, err := Do(ctx, env.client, Action{Kind: KindDueDate, IssueID: id, DueDate: "2030-01-31"})
		if err != nil {
			t.Fatal(err)
		}
		if res.DueAt != "2030-01-31T00:00:00Z" {
			t.Errorf("due_at %q", res.DueAt)
		}
		iss, _, err := env.client.Issue(ctx, id)
		if err != nil || iss.DueAt == nil || iss.DueAt.Format("2006-01-02T15:04:05Z07:00") != "2030-01-31T00:00:00Z" {
			t.Fatalf("issue dueAt %v, %v", iss, err)
		}
		res, err = Do(ctx, env.client, Action{Kind: KindClearDueDate, IssueID: id})
		if err != nil {
			t.Fatal(err)
		}
		if res.DueAt != "" {
			t.Errorf("due_at %q after clearing", res.DueAt)
		}
		iss, _, err = env.client.Issue(ctx, id)
		if err != nil || iss.DueAt != nil {
			t.Fatalf("issue dueAt %v after clearing, %v", iss.DueAt, err)
		}
	})
	t.Run("unknown issue", func(t *testing.T) {
		for _, a := range []Action{
			{Kind: KindResolve, IssueID: someID, Reason: "ISSUE_FIXED"},
			{Kind: KindReopen, IssueID: someID},
			{Kind: KindNote, IssueID: someID, Text: "x"},
		} {
			if _, err := Do(ctx, env.client, a); !errors.Is(err, wiz.ErrNotFound) {
				t.Errorf("%s: err = %v, want wiz.ErrNotFound", a.Kind, err)
			}
		}
	})
	t.Run("invalid action makes no call", func(t *testing.T) {
		before := env.sim.Stats().Requests
		total := func(m map[string]map[int]int) (n int) {
			for _, byStatus := range m {
				for _, c := range byStatus {
					n += c
				}
			}
			return n
		}
		_, err := Do(ctx, env.client, Action{Kind: KindReject, IssueID: threat[2], Reason: "WONT_FIX"})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
		if got, was := total(env.sim.Stats().Requests), total(before); got != was {
			t.Errorf("%d requests made for an invalid action", got-was)
		}
	})
}

// recordingClient records the calls Do makes and answers them like Wiz would.
type recordingClient struct {
	typ     string // the issue's type
	noteErr error  // CreateIssueNote's answer
	pErr    error  // UpdateIssue's answer
	calls   []string
	patches []wiz.IssuePatch
	notes   []string
}

func (r *recordingClient) Issue(_ context.Context, id string) (*wiz.Issue, json.RawMessage, error) {
	r.calls = append(r.calls, "Issue")
	return &wiz.Issue{ID: id, Type: r.typ, Status: "OPEN"}, json.RawMessage(`{}`), nil
}

func (r *recordingClient) UpdateIssue(_ context.Context, id string, p wiz.IssuePatch) (*wiz.Issue, error) {
	r.calls = append(r.calls, "UpdateIssue")
	r.patches = append(r.patches, p)
	if r.pErr != nil {
		return nil, r.pErr
	}
	return &wiz.Issue{ID: id, Status: p.Status}, nil
}

func (r *recordingClient) CreateIssueNote(_ context.Context, _, text string) (*wiz.Note, error) {
	r.calls = append(r.calls, "CreateIssueNote")
	r.notes = append(r.notes, text)
	if r.noteErr != nil {
		return nil, r.noteErr
	}
	return &wiz.Note{ID: "note-1", Text: text}, nil
}

// TestDoNotes checks where each action's note goes: in the patch with a resolve or reject (with its
// reason), and for reopen and in-progress in a createIssueNote after a status-only update, as the
// Wiz pack's reopen_issue and _set_status do (WIZ_API.md §10).
func TestDoNotes(t *testing.T) {
	long := strings.Repeat("z", 2000)
	cut := strings.Repeat("z", wiz.MaxNoteLen-len(wiz.NoteTruncatedSuffix)) + wiz.NoteTruncatedSuffix
	tests := []struct {
		name      string
		a         Action
		wantCalls string
		wantPatch wiz.IssuePatch
		wantNotes []string
		wantRes   Result
	}{
		{name: "reopen with note", a: Action{Kind: KindReopen, IssueID: someID, Note: "not fixed"},
			wantCalls: "UpdateIssue CreateIssueNote", wantPatch: wiz.IssuePatch{Status: "OPEN"}, wantNotes: []string{"not fixed"},
			wantRes: Result{IssueID: someID, Action: KindReopen, Status: "OPEN", NoteID: "note-1"}},
		{name: "in-progress with long note", a: Action{Kind: KindInProgress, IssueID: someID, Note: long},
			wantCalls: "UpdateIssue CreateIssueNote", wantPatch: wiz.IssuePatch{Status: "IN_PROGRESS"}, wantNotes: []string{cut},
			wantRes: Result{IssueID: someID, Action: KindInProgress, Status: "IN_PROGRESS", NoteID: "note-1", NoteTruncated: true}},
		{name: "reopen without note", a: Action{Kind: KindReopen, IssueID: someID},
			wantCalls: "UpdateIssue", wantPatch: wiz.IssuePatch{Status: "OPEN"},
			wantRes: Result{IssueID: someID, Action: KindReopen, Status: "OPEN"}},
		{name: "reject carries its note", a: Action{Kind: KindReject, IssueID: someID, Reason: "wont_fix", Note: long},
			wantCalls: "UpdateIssue", wantPatch: wiz.IssuePatch{Status: "REJECTED", ResolutionReason: "WONT_FIX", Note: cut},
			wantRes: Result{IssueID: someID, Action: KindReject, Status: "REJECTED", NoteTruncated: true}},
		{name: "resolve carries its note", a: Action{Kind: KindResolve, IssueID: someID, Reason: "ISSUE_FIXED", Note: "patched"},
			wantCalls: "Issue UpdateIssue", wantPatch: wiz.IssuePatch{Status: "RESOLVED", ResolutionReason: "ISSUE_FIXED", Note: "patched"},
			wantRes: Result{IssueID: someID, Action: KindResolve, Status: "RESOLVED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &recordingClient{typ: "THREAT_DETECTION"}
			res, err := Do(context.Background(), c, tt.a)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(c.calls, " "); got != tt.wantCalls {
				t.Errorf("calls %q, want %q", got, tt.wantCalls)
			}
			if len(c.patches) != 1 || c.patches[0] != tt.wantPatch {
				t.Errorf("patches %+v, want %+v", c.patches, tt.wantPatch)
			}
			if !slices.Equal(c.notes, tt.wantNotes) {
				t.Errorf("notes %d %q..., want %d", len(c.notes), c.notes, len(tt.wantNotes))
			}
			if res != tt.wantRes {
				t.Errorf("result %+v, want %+v", res, tt.wantRes)
			}
		})
	}
	// A transient failure may follow a note Wiz added (the answer lost): the outcome is unknown, and
	// saying "not added" would make an operator add it twice. A refusal is a note not added.
	t.Run("note fails after the status change", func(t *testing.T) {
		c := &recordingClient{noteErr: &wiz.APIError{Class: wiz.ErrTransient, Op: "CreateIssueNote", Message: "boom"}}
		_, err := Do(context.Background(), c, Action{Kind: KindReopen, IssueID: someID, Note: "n"})
		if !errors.Is(err, wiz.ErrTransient) || !errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "whether the note was added is unknown") {
			t.Fatalf("err = %v", err)
		}
		// A reject with its note, failing for now: the same unknown outcome; without a note, a
		// plain failure (the patch alone is idempotent and was retried).
		c = &recordingClient{pErr: &wiz.APIError{Class: wiz.ErrTransient, Op: "UpdateIssue", Message: "502"}}
		_, err = Do(context.Background(), c, Action{Kind: KindReject, IssueID: someID, Reason: "WONT_FIX", Note: "accepted"})
		if !errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "whether the change and its note were applied is unknown") {
			t.Fatalf("reject with a note, failing for now: %v", err)
		}
		_, err = Do(context.Background(), c, Action{Kind: KindInProgress, IssueID: someID})
		if errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, wiz.ErrTransient) {
			t.Fatalf("in-progress without a note, failing for now: %v", err)
		}
		c = &recordingClient{noteErr: &wiz.APIError{Class: wiz.ErrPermission, Op: "CreateIssueNote", Message: "no scope"}}
		_, err = Do(context.Background(), c, Action{Kind: KindReopen, IssueID: someID, Note: "n"})
		if !errors.Is(err, wiz.ErrPermission) || !strings.Contains(err.Error(), "status is now OPEN but the note was not added") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestDoRefusesReasonsWithoutCalling: a reason Wiz does not accept for the action is refused
// before any call.
func TestDoRefusesReasonsWithoutCalling(t *testing.T) {
	tests := []struct {
		a    Action
		want string
	}{
		{Action{Kind: KindReject, IssueID: someID, Reason: "ISSUE_FIXED"}, "FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
		{Action{Kind: KindReject, IssueID: someID, Reason: "OBJECT_DELETED", Note: "n"}, "FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
		{Action{Kind: KindResolve, IssueID: someID, Reason: "DETECTION_EXPIRED"}, "OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
		{Action{Kind: KindResolve, IssueID: someID, Reason: "CONTROL_DISABLED"}, "OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
	}
	for _, tt := range tests {
		t.Run(tt.a.Kind+" "+tt.a.Reason, func(t *testing.T) {
			c := &recordingClient{typ: "THREAT_DETECTION"}
			_, err := Do(context.Background(), c, tt.a)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalid naming %s", err, tt.want)
			}
			if len(c.calls) != 0 {
				t.Errorf("calls %v made for a refused reason", c.calls)
			}
		})
	}
}
