package writeback

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

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
		{"resolve without reason", Action{Kind: "resolve", IssueID: someID}, "resolve needs a reason (one of OBJECT_DELETED"},
		{"bad reason", Action{Kind: "reject", IssueID: someID, Reason: "BECAUSE", Note: "n"}, `reason "BECAUSE" is not one of Wiz's resolution reasons`},
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

func TestTruncateNote(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantLen int
		cut     bool
	}{
		{"short", "hello", 5, false},
		{"exactly the limit", strings.Repeat("a", wiz.MaxNoteLen), wiz.MaxNoteLen, false},
		{"one over", strings.Repeat("a", wiz.MaxNoteLen+1), wiz.MaxNoteLen + len(wiz.NoteTruncatedSuffix), true},
		{"multi-byte runes", strings.Repeat("é", 2000), wiz.MaxNoteLen + len(wiz.NoteTruncatedSuffix), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := TruncateNote(tt.in)
			if cut != tt.cut || utf8.RuneCountInString(got) != tt.wantLen || !utf8.ValidString(got) {
				t.Fatalf("got %d runes, cut %v; want %d, %v", utf8.RuneCountInString(got), cut, tt.wantLen, tt.cut)
			}
			if cut && !strings.HasSuffix(got, wiz.NoteTruncatedSuffix) {
				t.Errorf("no marker: ...%q", got[len(got)-20:])
			}
			again, _ := TruncateNote(got)
			if again != got {
				t.Errorf("truncating twice changed the note")
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
			{Action{Kind: KindInProgress, IssueID: id}, "IN_PROGRESS"},
		}
		for _, s := range steps {
			res, err := Do(ctx, env.client, s.a)
			if err != nil {
				t.Fatalf("%s: %v", s.a.Kind, err)
			}
			if res.Status != s.want || env.status(t, id) != s.want {
				t.Fatalf("%s: result %+v, simulator %s; want %s", s.a.Kind, res, env.status(t, id), s.want)
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
		if !strings.Contains(joined, "accepted risk") || !strings.Contains(joined, "risk no longer accepted") {
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
				if want := strings.Repeat("x", wiz.MaxNoteLen) + wiz.NoteTruncatedSuffix; n.Text != want {
					t.Errorf("note has %d characters, want the 1400 first plus the marker", len(n.Text))
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
