package wiz

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Write-back mutations (WIZ_API.md §5), shaped like the Wiz XSOAR pack's.
const (
	UpdateIssueMutation = `mutation UpdateIssue($input: UpdateIssueInput!) {
  updateIssue(input: $input) {
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

// MaxNoteLen is the longest note text sent: Wiz rejects notes over ~1500 characters, so longer
// ones are cut to MaxNoteLen runes followed by NoteTruncatedSuffix (as the XSOAR pack does).
const (
	MaxNoteLen          = 1400
	NoteTruncatedSuffix = "... [truncated]"
)

// IssuePatch is a change to one issue. Only THREAT_DETECTION issues may be set RESOLVED by the
// API; others must be REJECTED (with a ResolutionReason).
type IssuePatch struct {
	Status           string     // OPEN, IN_PROGRESS, RESOLVED, REJECTED; empty: unchanged
	Note             string     // a note attached to the status change
	ResolutionReason string     // e.g. WONT_FIX, FALSE_POSITIVE
	DueAt            *time.Time // set the due date
	ClearDueAt       bool       // remove the due date (exclusive with DueAt)
}

// updateIssuePatch is the wire form of IssuePatch's patch part.
type updateIssuePatch struct {
	Status           string `json:"status,omitempty"`
	Note             string `json:"note,omitempty"`
	ResolutionReason string `json:"resolutionReason,omitempty"`
	DueAt            string `json:"dueAt,omitempty"`
}

// updateIssueInput is the input of updateIssue.
type updateIssueInput struct {
	ID       string           `json:"id"`
	Patch    updateIssuePatch `json:"patch"`
	Override map[string]any   `json:"override,omitempty"`
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

// truncateNote applies MaxNoteLen.
func truncateNote(s string) string {
	if utf8.RuneCountInString(s) <= MaxNoteLen {
		return s
	}
	r := []rune(s)
	return string(r[:MaxNoteLen]) + NoteTruncatedSuffix
}

// UpdateIssue changes an issue's status, note, resolution reason or due date and returns the
// issue as Wiz reports it afterwards (id, status, dueAt, notes; Issue has no resolutionReason
// field). The patch is idempotent, so it is retried like a read.
func (c *Client) UpdateIssue(ctx context.Context, id string, patch IssuePatch) (*Issue, error) {
	const op = "UpdateIssue"
	id = strings.TrimSpace(id)
	switch {
	case id == "":
		return nil, &APIError{Class: ErrBadRequest, Op: op, Message: "empty issue id"}
	case patch.DueAt != nil && patch.ClearDueAt:
		return nil, &APIError{Class: ErrBadRequest, Op: op, Message: "DueAt and ClearDueAt are exclusive"}
	case patch.Status == "" && patch.Note == "" && patch.ResolutionReason == "" && patch.DueAt == nil && !patch.ClearDueAt:
		return nil, &APIError{Class: ErrBadRequest, Op: op, Message: "empty patch"}
	}
	in := updateIssueInput{ID: id, Patch: updateIssuePatch{
		Status:           strings.ToUpper(patch.Status),
		Note:             truncateNote(patch.Note),
		ResolutionReason: strings.ToUpper(patch.ResolutionReason),
	}}
	if patch.DueAt != nil {
		in.Patch.DueAt = patch.DueAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	if patch.ClearDueAt {
		in.Override = map[string]any{"dueAt": nil}
	}
	data, err := c.exec(ctx, op, UpdateIssueMutation, map[string]any{"input": in})
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

// CreateIssueNote adds a note (truncated to MaxNoteLen) to an issue. Because a repeated request
// would add the note twice, only throttled (429) attempts are retried.
func (c *Client) CreateIssueNote(ctx context.Context, issueID, text string) (*Note, error) {
	const op = "CreateIssueNote"
	issueID = strings.TrimSpace(issueID)
	if issueID == "" || strings.TrimSpace(text) == "" {
		return nil, &APIError{Class: ErrBadRequest, Op: op, Message: "issue id and text are required"}
	}
	in := createIssueNoteInput{IssueID: issueID, Text: truncateNote(text)}
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
