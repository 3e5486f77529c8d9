package mcp

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

type addNoteArgs struct {
	IssueID  string `json:"issue_id" jsonschema:"the Wiz issue id (UUID)"`
	Text     string `json:"text" jsonschema:"the note, in plain text; your name is appended"`
	Instance string `json:"instance,omitempty" jsonschema:"the Wiz tenant (instance); omit when only one is configured"`
}

type closeArgs struct {
	IssueID  string `json:"issue_id" jsonschema:"the Wiz issue id (UUID)"`
	Reason   string `json:"reason" jsonschema:"the resolution reason Wiz records (see the tool description for the accepted values)"`
	Note     string `json:"note,omitempty" jsonschema:"why; stored with the change and signed with your name"`
	Instance string `json:"instance,omitempty" jsonschema:"the Wiz tenant (instance); omit when only one is configured"`
}

type reopenArgs struct {
	IssueID  string `json:"issue_id" jsonschema:"the Wiz issue id (UUID)"`
	Note     string `json:"note,omitempty" jsonschema:"why; added as a note after the change, signed with your name"`
	Instance string `json:"instance,omitempty" jsonschema:"the Wiz tenant (instance); omit when only one is configured"`
}

type dueDateArgs struct {
	IssueID  string `json:"issue_id" jsonschema:"the Wiz issue id (UUID)"`
	DueDate  string `json:"due_date,omitempty" jsonschema:"the new due date, YYYY-MM-DD (midnight UTC); omit with clear: true"`
	Clear    bool   `json:"clear,omitempty" jsonschema:"true to remove the due date instead"`
	Instance string `json:"instance,omitempty" jsonschema:"the Wiz tenant (instance); omit when only one is configured"`
}

// Signature returns the line that attributes a note to user: Wiz sees one shared service account,
// so the note itself names who acted.
func Signature(user string) string { return "— " + user + " via wizfetch" }

// Attributed appends user's signature to text, cutting text (with wiz.NoteTruncatedSuffix) so
// that the whole note stays within wiz.MaxNoteLen characters and the signature is never cut. An
// empty text is the signature alone.
func Attributed(text, user string) string {
	sig := Signature(user)
	text = strings.TrimSpace(text)
	if text == "" {
		return sig
	}
	room := wiz.MaxNoteLen - utf8.RuneCountInString(sig) - 2
	if utf8.RuneCountInString(text) > room {
		keep := room - utf8.RuneCountInString(wiz.NoteTruncatedSuffix)
		text = string([]rune(text)[:keep]) + wiz.NoteTruncatedSuffix
	}
	return text + "\n\n" + sig
}

// write validates a as the CLI and the HTTP API do (writeback.Action.Validate: UUID, the reasons Wiz
// accepts per action, dates) before any Wiz call, signs its note with the user's name, and carries
// it out through the instance's client (and so its token and rate limiter).
func (h *Handler) write(ctx context.Context, u *user, instance string, a writeback.Action) (any, error) {
	if err := a.Validate(); err != nil {
		return nil, invalid(ctx, "%s", err.Error())
	}
	name, c, err := h.client(ctx, instance)
	if err != nil {
		return nil, err
	}
	switch a.Kind {
	case writeback.KindNote:
		a.Text = Attributed(a.Text, u.name)
	case writeback.KindResolve, writeback.KindReject, writeback.KindReopen, writeback.KindInProgress:
		a.Note = Attributed(a.Note, u.name) // a status change names its author even without a note
	}
	cost := 2 // a status change reads the issue, or adds its note, besides the update
	if a.Kind == writeback.KindNote || a.Kind == writeback.KindDueDate || a.Kind == writeback.KindClearDueDate {
		cost = 1
	}
	if err := h.allow(ctx, u, cost); err != nil {
		return nil, err
	}
	res, err := writeback.Do(ctx, c, a)
	h.wiz.record(name, h.opt.Now(), err)
	if err != nil {
		return nil, wizFailed(ctx, err)
	}
	return res, nil
}

func (h *Handler) addNote(ctx context.Context, u *user, in addNoteArgs) (any, error) {
	return h.write(ctx, u, in.Instance, writeback.Action{Kind: writeback.KindNote, IssueID: in.IssueID, Text: in.Text})
}

func (h *Handler) resolveIssue(ctx context.Context, u *user, in closeArgs) (any, error) {
	return h.write(ctx, u, in.Instance, writeback.Action{Kind: writeback.KindResolve, IssueID: in.IssueID, Reason: in.Reason, Note: in.Note})
}

func (h *Handler) rejectIssue(ctx context.Context, u *user, in closeArgs) (any, error) {
	return h.write(ctx, u, in.Instance, writeback.Action{Kind: writeback.KindReject, IssueID: in.IssueID, Reason: in.Reason, Note: in.Note})
}

func (h *Handler) reopenIssue(ctx context.Context, u *user, in reopenArgs) (any, error) {
	return h.write(ctx, u, in.Instance, writeback.Action{Kind: writeback.KindReopen, IssueID: in.IssueID, Note: in.Note})
}

func (h *Handler) setDueDate(ctx context.Context, u *user, in dueDateArgs) (any, error) {
	switch {
	case in.Clear && in.DueDate != "":
		return nil, invalid(ctx, "pass either due_date or clear: true, not both")
	case in.Clear:
		return h.write(ctx, u, in.Instance, writeback.Action{Kind: writeback.KindClearDueDate, IssueID: in.IssueID})
	}
	return h.write(ctx, u, in.Instance, writeback.Action{Kind: writeback.KindDueDate, IssueID: in.IssueID, DueDate: in.DueDate})
}
