// Package writeback changes Wiz issues on an operator's behalf: resolve, reject, reopen, mark in
// progress, add a note, set or clear the due date (WIZ_API.md §5 and §10). It validates an Action
// before any network call (UUID ids, the resolution reasons Wiz accepts for each action, YYYY-MM-DD
// dates), applies Wiz's rules that would otherwise fail late (only THREAT_DETECTION issues may be
// resolved; notes are cut to 1400 characters, marker included; a reopen or in-progress note is
// added with createIssueNote after the status change), and serves the same actions over HTTP for
// SOAR playbooks, with one audit line per write.
package writeback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// Action kinds.
const (
	KindResolve      = "resolve"
	KindReject       = "reject"
	KindReopen       = "reopen"
	KindInProgress   = "in-progress"
	KindNote         = "note"
	KindDueDate      = "due-date"
	KindClearDueDate = "clear-due-date"
)

// Kinds lists every action kind, in the CLI's order.
var Kinds = []string{KindResolve, KindReject, KindReopen, KindInProgress, KindNote, KindDueDate, KindClearDueDate}

// Errors. Do's errors match at most one of them, and may wrap one of wiz's error classes.
var (
	// ErrInvalid: the action is malformed (bad id, reason, date, missing or extra field).
	ErrInvalid = errors.New("invalid action")
	// ErrNotAllowed: Wiz would refuse the change for this issue (resolving an issue that is not
	// a THREAT_DETECTION).
	ErrNotAllowed = errors.New("not allowed")
	// ErrOutcomeUnknown: a change carrying a note failed in a way that may follow its success in
	// Wiz (a 5xx, a lost answer); it is not retried, since a retry would add the note twice. It
	// wraps the Wiz error as well.
	ErrOutcomeUnknown = errors.New("outcome unknown")
)

// DateLayout is the form of Action.DueDate.
const DateLayout = "2006-01-02"

// Client is the part of the Wiz client write-back uses; *wiz.Client satisfies it.
type Client interface {
	Issue(ctx context.Context, id string) (*wiz.Issue, json.RawMessage, error)
	UpdateIssue(ctx context.Context, id string, patch wiz.IssuePatch) (*wiz.Issue, error)
	CreateIssueNote(ctx context.Context, issueID, text string) (*wiz.Note, error)
}

// Action is one change to one issue. Which fields apply depends on Kind:
//
//	resolve         Reason (required, one of wizdef.ResolveReasons()), Note
//	reject          Reason (required, one of wizdef.RejectReasons()) and Note (required)
//	reopen          Note (added with createIssueNote after the status change)
//	in-progress     Note (likewise)
//	note            Text (required)
//	due-date        DueDate (required, YYYY-MM-DD, sent as midnight UTC)
//	clear-due-date  nothing
//
// Reasons may come in any letter case. Notes and texts are cut by wiz.TruncateNote.
type Action struct {
	Kind    string
	IssueID string
	Reason  string
	Note    string
	Text    string
	DueDate string
}

// Result is what an action did, for the CLI's --json and the HTTP API.
type Result struct {
	IssueID       string `json:"issue_id"`
	Action        string `json:"action"`
	Status        string `json:"status,omitempty"`
	DueAt         string `json:"due_at,omitempty"`
	NoteID        string `json:"note_id,omitempty"` // the note added by note, reopen or in-progress
	NoteTruncated bool   `json:"note_truncated,omitempty"`
}

// normalize trims every field, lower-cases the id and upper-cases the reason.
func (a Action) normalize() Action {
	a.Kind = strings.ToLower(strings.TrimSpace(a.Kind))
	a.IssueID = strings.ToLower(strings.TrimSpace(a.IssueID))
	a.Reason = strings.ToUpper(strings.TrimSpace(a.Reason))
	a.Note = strings.TrimSpace(a.Note)
	a.Text = strings.TrimSpace(a.Text)
	a.DueDate = strings.TrimSpace(a.DueDate)
	return a
}

// Validate checks the action without any network call. Its error wraps ErrInvalid and says what
// is wrong and what is expected.
func (a Action) Validate() error {
	a = a.normalize()
	if err := a.validate(); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalid, err.Error())
	}
	return nil
}

func (a Action) validate() error {
	if !slices.Contains(Kinds, a.Kind) {
		return fmt.Errorf("unknown action %q (one of %s)", a.Kind, strings.Join(Kinds, ", "))
	}
	if err := ValidateIssueID(a.IssueID); err != nil {
		return err
	}
	takes := map[string]struct{ reason, note, text, due bool }{
		KindResolve:      {reason: true, note: true},
		KindReject:       {reason: true, note: true},
		KindReopen:       {note: true},
		KindInProgress:   {note: true},
		KindNote:         {text: true},
		KindDueDate:      {due: true},
		KindClearDueDate: {},
	}[a.Kind]
	for _, f := range []struct {
		name    string
		set, ok bool
	}{
		{"a reason", a.Reason != "", takes.reason},
		{"a note", a.Note != "", takes.note},
		{"a text", a.Text != "", takes.text},
		{"a due date", a.DueDate != "", takes.due},
	} {
		if f.set && !f.ok {
			return fmt.Errorf("%s does not take %s", a.Kind, f.name)
		}
	}
	switch a.Kind {
	case KindResolve, KindReject:
		allowed := Reasons(a.Kind)
		if a.Reason == "" {
			return fmt.Errorf("%s needs a reason (one of %s)", a.Kind, strings.Join(allowed, ", "))
		}
		if !slices.Contains(allowed, a.Reason) {
			return fmt.Errorf("reason %q is not accepted by Wiz for %s: use one of %s", clip(a.Reason, 32), a.Kind, strings.Join(allowed, ", "))
		}
		if a.Kind == KindReject && a.Note == "" {
			return errors.New("reject needs a note saying why")
		}
	case KindNote:
		if a.Text == "" {
			return errors.New("note needs a text")
		}
	case KindDueDate:
		if _, err := parseDate(a.DueDate); err != nil {
			return err
		}
	}
	return nil
}

// ValidateIssueID checks that id is a Wiz issue id: a UUID in the 8-4-4-4-12 form.
func ValidateIssueID(id string) error {
	id = strings.TrimSpace(id)
	if id == "" {
		return errors.New("missing issue id")
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return fmt.Errorf("issue id %q is not a UUID (Wiz issue ids look like 5c2e3d4b-9b8a-4c1d-8e7f-0a1b2c3d4e5f)", clip(id, 64))
	}
	return nil
}

func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("due-date needs a date (YYYY-MM-DD)")
	}
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("due date %q is not a date in the form YYYY-MM-DD", clip(s, 32))
	}
	return t, nil
}

// Reasons returns the resolution reasons Wiz accepts for an action kind: wizdef.ResolveReasons for
// resolve, wizdef.RejectReasons for reject, nil for the kinds that take no reason.
func Reasons(kind string) []string {
	switch kind {
	case KindResolve:
		return wizdef.ResolveReasons()
	case KindReject:
		return wizdef.RejectReasons()
	}
	return nil
}

// Do validates a and carries it out. Resolving first fetches the issue: only THREAT_DETECTION
// issues may be resolved (WIZ_API.md §5), anything else fails with ErrNotAllowed and a hint to
// reject instead. A resolve or reject carries its note in the update; reopen and in-progress
// change the status alone and then add the note with createIssueNote, as the Wiz pack's
// reopen_issue and _set_status do (WIZ_API.md §10). Wiz failures keep their wiz error class
// (errors.Is(err, wiz.ErrNotFound) ...).
func Do(ctx context.Context, c Client, a Action) (Result, error) {
	a = a.normalize()
	if err := a.validate(); err != nil {
		return Result{}, fmt.Errorf("%w: %s", ErrInvalid, err.Error())
	}
	res := Result{IssueID: a.IssueID, Action: a.Kind}
	var truncated bool
	a.Note, truncated = wiz.TruncateNote(a.Note)
	res.NoteTruncated = truncated

	var patch wiz.IssuePatch
	var note string // added with createIssueNote once the status is changed
	switch a.Kind {
	case KindNote:
		text, cut := wiz.TruncateNote(a.Text)
		n, err := c.CreateIssueNote(ctx, a.IssueID, text)
		if err != nil {
			return Result{}, fmt.Errorf("note: %w", err)
		}
		res.NoteID, res.NoteTruncated = n.ID, cut
		return res, nil
	case KindResolve:
		iss, _, err := c.Issue(ctx, a.IssueID)
		if err != nil {
			return Result{}, fmt.Errorf("resolve: %w", err)
		}
		if !wizdef.Resolvable(iss.Type) {
			// Suggest a reject that Wiz accepts: the same reason when reject takes it, else one
			// reject does take.
			reason := a.Reason
			if !slices.Contains(wizdef.RejectReasons(), reason) {
				reason = wizdef.ReasonWontFix
			}
			return Result{}, fmt.Errorf("%w: issue %s is %s: only THREAT_DETECTION issues can be resolved; use `reject %s --reason %s --note ...` (reject takes %s)",
				ErrNotAllowed, a.IssueID, typeName(iss.Type), a.IssueID, reason, strings.Join(wizdef.RejectReasons(), ", "))
		}
		patch = wiz.IssuePatch{Status: wizdef.StatusResolved, ResolutionReason: a.Reason, Note: a.Note}
	case KindReject:
		patch = wiz.IssuePatch{Status: wizdef.StatusRejected, ResolutionReason: a.Reason, Note: a.Note}
	case KindReopen:
		patch, note = wiz.IssuePatch{Status: wizdef.StatusOpen}, a.Note
	case KindInProgress:
		patch, note = wiz.IssuePatch{Status: wizdef.StatusInProgress}, a.Note
	case KindDueDate:
		due, _ := parseDate(a.DueDate) // validated above
		patch = wiz.IssuePatch{DueAt: &due}
	case KindClearDueDate:
		patch = wiz.IssuePatch{ClearDueAt: true}
	}
	iss, err := c.UpdateIssue(ctx, a.IssueID, patch)
	if err != nil {
		if patch.Note != "" && wiz.IsRetryable(err) {
			// Not retried (the note would be added twice): the request may have reached Wiz.
			return Result{}, fmt.Errorf("%s: %w: whether the change and its note were applied is unknown (check the issue before trying again): %w",
				a.Kind, ErrOutcomeUnknown, err)
		}
		return Result{}, fmt.Errorf("%s: %w", a.Kind, err)
	}
	res.Status = iss.Status
	if iss.DueAt != nil {
		res.DueAt = iss.DueAt.UTC().Format(time.RFC3339)
	}
	if note != "" {
		n, err := c.CreateIssueNote(ctx, a.IssueID, note)
		if err != nil {
			if wiz.IsRetryable(err) {
				// The request may have reached Wiz and the answer been lost: the note may be there.
				return Result{}, fmt.Errorf("%s: status is now %s, but %w: whether the note was added is unknown (check the issue before adding it again): %w",
					a.Kind, iss.Status, ErrOutcomeUnknown, err)
			}
			return Result{}, fmt.Errorf("%s: status is now %s but the note was not added: %w", a.Kind, iss.Status, err)
		}
		res.NoteID = n.ID
	}
	return res, nil
}

func typeName(t string) string {
	if t == "" {
		return "of unknown type"
	}
	return t
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
