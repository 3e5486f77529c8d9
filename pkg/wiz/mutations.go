package wiz

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// Write-back mutations (WIZ_API.md §5 and §10), shaped like the Wiz XSOAR pack's.
//
// UpdateIssueMutation passes id, patch and override as separate variables into an inline input
// object, as the pack's UPDATE_ISSUE_QUERY and every other public client do: no public client
// names updateIssue's input type, and override is an UpdateIssuePatch, not a type of its own.
const (
	UpdateIssueMutation = `mutation UpdateIssue($issueId: ID!, $patch: UpdateIssuePatch, $override: UpdateIssuePatch) {
  updateIssue(input: {id: $issueId, patch: $patch, override: $override}) {
    issue {
      id
      status
      dueAt
      resolutionReason
      notes {
        id
        createdAt
        updatedAt
        text
        user {
          name
          email
        }
        serviceAccount {
          name
        }
      }
    }
  }
}`
	CreateIssueNoteMutation = `mutation CreateIssueNote($input: CreateIssueNoteInput!) {
  createIssueNote(input: $input) {
    issueNote {
      id
      createdAt
      text
    }
  }
}`
	DeleteIssueNoteMutation = `mutation DeleteIssueNote($input: DeleteIssueNoteInput!) {
  deleteIssueNote(input: $input) {
    _stub
  }
}`
)

// MaxNoteLen is the most characters (runes) of note text sent, NoteTruncatedSuffix included: Wiz
// rejects notes over ~1500 characters, and the XSOAR pack's truncate_note cuts longer notes to
// 1400 characters marker included (WIZ_API.md §10).
const (
	MaxNoteLen          = 1400
	NoteTruncatedSuffix = "... [truncated]"
)

// IssuePatch is a change to one issue. Only THREAT_DETECTION issues may be set RESOLVED by the
// API (wizdef.Resolvable); others must be REJECTED (with a ResolutionReason).
type IssuePatch struct {
	Status           string     // one of wizdef.Statuses; empty: unchanged
	Note             string     // only with Status RESOLVED or REJECTED and a ResolutionReason
	ResolutionReason string     // with RESOLVED: wizdef.ResolveReasons; with REJECTED: wizdef.RejectReasons
	DueAt            *time.Time // set the due date
	ClearDueAt       bool       // remove the due date (exclusive with DueAt)
}

// updateIssuePatch is the wire form of UpdateIssuePatch, for both patch and override.
type updateIssuePatch struct {
	Status           string `json:"status,omitempty"`
	Note             string `json:"note,omitempty"`
	ResolutionReason string `json:"resolutionReason,omitempty"`
	DueAt            string `json:"dueAt,omitempty"`
}

// createIssueNoteInput is the input of createIssueNote.
type createIssueNoteInput struct {
	IssueID string `json:"issueId"`
	Text    string `json:"text"`
}

// deleteIssueNoteInput is the input of deleteIssueNote.
type deleteIssueNoteInput struct {
	ID string `json:"id"`
}

// TruncateNote cuts s to at most MaxNoteLen characters, NoteTruncatedSuffix included, as the XSOAR
// pack's truncate_note does, and reports whether it cut. A note of MaxNoteLen characters or fewer
// is returned unchanged.
func TruncateNote(s string) (string, bool) {
	if utf8.RuneCountInString(s) <= MaxNoteLen {
		return s, false
	}
	keep := MaxNoteLen - utf8.RuneCountInString(NoteTruncatedSuffix)
	return string([]rune(s)[:keep]) + NoteTruncatedSuffix, true
}

// UpdateIssue changes an issue's status, resolution reason or due date and returns the issue as
// Wiz reports it afterwards (id, status, dueAt, notes; Issue has no resolutionReason field). A
// Note goes only with a resolve or reject that has a reason, as the XSOAR pack sends it; add any
// other note with CreateIssueNote. A patch without a note is idempotent, so it is retried like a
// read; one with a note is retried only when throttled (429, which Wiz never processed), as
// CreateIssueNote is: a lost answer to a processed request would add the note twice.
func (c *Client) UpdateIssue(ctx context.Context, id string, patch IssuePatch) (*Issue, error) {
	const op = "UpdateIssue"
	id = strings.TrimSpace(id)
	status := strings.ToUpper(strings.TrimSpace(patch.Status))
	reason := strings.ToUpper(strings.TrimSpace(patch.ResolutionReason))
	switch {
	case id == "":
		return nil, &APIError{Class: ErrBadRequest, Op: op, Message: "empty issue id"}
	case patch.DueAt != nil && patch.ClearDueAt:
		return nil, &APIError{Class: ErrBadRequest, Op: op, Message: "DueAt and ClearDueAt are exclusive"}
	case status == "" && patch.Note == "" && reason == "" && patch.DueAt == nil && !patch.ClearDueAt:
		return nil, &APIError{Class: ErrBadRequest, Op: op, Message: "empty patch"}
	case patch.Note != "" && (!wizdef.Closed(status) || reason == ""):
		return nil, &APIError{Class: ErrBadRequest, Op: op,
			Message: "a note goes in the patch only with status RESOLVED or REJECTED and a resolution reason; add it with CreateIssueNote"}
	}
	vars := map[string]any{"issueId": id}
	p := updateIssuePatch{Status: status, ResolutionReason: reason}
	p.Note, _ = TruncateNote(patch.Note)
	if patch.DueAt != nil {
		p.DueAt = patch.DueAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	if p != (updateIssuePatch{}) {
		vars["patch"] = p
	}
	if patch.ClearDueAt {
		// A null in patch means "unchanged"; override replaces the field, so it clears it.
		vars["override"] = map[string]any{"dueAt": nil}
	}
	execCtx := ctx
	if p.Note != "" {
		execCtx = withUnsafeRetries(ctx)
	}
	data, err := c.exec(execCtx, op, UpdateIssueMutation, vars)
	if err != nil {
		return nil, fmt.Errorf("update issue %s: %w", id, err)
	}
	var out struct {
		UpdateIssue *struct {
			Issue *Issue `json:"issue"`
		} `json:"updateIssue"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("update issue %s: %w", id, &APIError{Class: ErrTransient, Op: op, Message: "decode response: " + shorten(err.Error())})
	}
	if out.UpdateIssue == nil || out.UpdateIssue.Issue == nil {
		return nil, fmt.Errorf("update issue %s: %w", id, ErrNotFound)
	}
	return out.UpdateIssue.Issue, nil
}

// CreateIssueNote adds a note (cut by TruncateNote) to an issue. Because a repeated request
// would add the note twice, only throttled (429) attempts are retried.
func (c *Client) CreateIssueNote(ctx context.Context, issueID, text string) (*Note, error) {
	const op = "CreateIssueNote"
	issueID = strings.TrimSpace(issueID)
	if issueID == "" || strings.TrimSpace(text) == "" {
		return nil, &APIError{Class: ErrBadRequest, Op: op, Message: "issue id and text are required"}
	}
	in := createIssueNoteInput{IssueID: issueID}
	in.Text, _ = TruncateNote(text)
	data, err := c.exec(withUnsafeRetries(ctx), op, CreateIssueNoteMutation, map[string]any{"input": in})
	if err != nil {
		return nil, fmt.Errorf("add note to issue %s: %w", issueID, err)
	}
	var out struct {
		CreateIssueNote *struct {
			IssueNote *Note `json:"issueNote"`
		} `json:"createIssueNote"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("add note to issue %s: %w", issueID, &APIError{Class: ErrTransient, Op: op, Message: "decode response: " + shorten(err.Error())})
	}
	if out.CreateIssueNote == nil || out.CreateIssueNote.IssueNote == nil {
		return nil, fmt.Errorf("add note to issue %s: %w", issueID, ErrNotFound)
	}
	return out.CreateIssueNote.IssueNote, nil
}

// DeleteIssueNote deletes a note by its id.
func (c *Client) DeleteIssueNote(ctx context.Context, noteID string) error {
	const op = "DeleteIssueNote"
	noteID = strings.TrimSpace(noteID)
	if noteID == "" {
		return &APIError{Class: ErrBadRequest, Op: op, Message: "empty note id"}
	}
	if _, err := c.exec(ctx, op, DeleteIssueNoteMutation, map[string]any{"input": deleteIssueNoteInput{ID: noteID}}); err != nil {
		return fmt.Errorf("delete note %s: %w", noteID, err)
	}
	return nil
}
