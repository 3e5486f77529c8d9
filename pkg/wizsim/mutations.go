package wizsim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// checkReason refuses a resolution reason that a change to status does not accept
// (wizdef.ReasonsFor): the other values of IssueResolutionReason are "unsupported" and answered
// with BAD_USER_INPUT, as Wiz does.
func checkReason(status, reason string) *execError {
	allowed := wizdef.ReasonsFor(status)
	if reason == "" || allowed == nil || slices.Contains(allowed, reason) {
		return nil
	}
	return userError("resolutionReason %s is not supported for status %s; supported: %s", reason, status, strings.Join(allowed, ", "))
}

func notFound(format string, args ...any) *execError {
	return &execError{status: http.StatusOK, code: CodeNotFound, msg: fmt.Sprintf(format, args...)}
}

func checkUUID(what, id string) *execError {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return userError("%s: %q is not a valid UUID", what, id)
	}
	return nil
}

func checkNote(text string) *execError {
	if n := utf8.RuneCountInString(text); n > wizdef.MaxNoteLen {
		return userError("note is too long: %d characters, the maximum is %d", n, wizdef.MaxNoteLen)
	}
	return nil
}

// execMutation runs one top-level mutation field and writes its payload.
func (s *Server) execMutation(b []byte, p *projector, name string, fields []*ast.Field) ([]byte, *execError) {
	input, _ := fields[0].ArgumentMap(p.vars)["input"].(map[string]any)
	var payload map[string]any
	var payloadType string
	var xerr *execError
	switch name {
	case "updateIssue":
		payloadType = "UpdateIssuePayload"
		payload, xerr = s.updateIssue(input)
	case "createIssueNote":
		payloadType = "CreateIssueNotePayload"
		payload, xerr = s.createIssueNote(input)
	case "deleteIssueNote":
		payloadType = "DeleteIssueNotePayload"
		payload, xerr = s.deleteIssueNote(input)
	default:
		return b, userError("unknown field %q", name)
	}
	if xerr != nil {
		return b, xerr
	}
	s.stats.mutation(name)
	return p.writeObject(b, subSets(fields), payloadType, payload), nil
}

func (s *Server) updateIssue(in map[string]any) (map[string]any, *execError) {
	id, _ := in["id"].(string)
	if e := checkUUID("id", id); e != nil {
		return nil, e
	}
	patch, _ := in["patch"].(map[string]any)
	override, _ := in["override"].(map[string]any)
	status, _ := patch["status"].(string)
	note, _ := patch["note"].(string)
	reason, _ := patch["resolutionReason"].(string)
	// The Wiz pack sends patch.note only with status REJECTED or RESOLVED and a resolutionReason;
	// reopen and in-progress change the status alone and add the note with createIssueNote (Wiz.py
	// reopen_issue, _set_status). What Wiz does with any other note is not public: refusing it makes
	// a client that depends on it fail here rather than in production.
	if note != "" && (!wizdef.Closed(status) || reason == "") {
		return nil, userError("patch.note is accepted only with status RESOLVED or REJECTED and a resolutionReason; add other notes with createIssueNote")
	}
	if e := checkReason(status, reason); e != nil {
		return nil, e
	}
	if e := checkNote(note); e != nil {
		return nil, e
	}
	var due *time.Time
	setDue := false
	for k, m := range []map[string]any{patch, override} {
		v, present := m["dueAt"]
		if !present {
			continue
		}
		if k == 0 && v == nil {
			continue // a null in patch means "unchanged"; override clears
		}
		setDue, due = true, nil
		if v != nil {
			str, _ := v.(string)
			t, err := time.Parse(time.RFC3339Nano, str)
			if err != nil {
				return nil, userError("dueAt: invalid timestamp %q", str)
			}
			t = micro(t)
			due = &t
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.byID[id]
	if iss == nil {
		return nil, notFound("issue %s not found", id)
	}
	if status == wizdef.StatusResolved && !wizdef.Resolvable(iss.typ) {
		return nil, userError("changing to resolved status is not allowed")
	}
	if status == "" {
		if e := checkReason(iss.status, reason); e != nil { // a new reason for a closed issue
			return nil, e
		}
	}
	now := micro(s.now())
	if status != "" && status != iss.status {
		s.changeStatusLocked(iss, status, reason, now, now)
	} else if reason != "" && wizdef.Closed(iss.status) {
		iss.resolutionReason = reason
	}
	if note != "" {
		n := s.world.addNote(iss, now, note, "")
		n.user, n.account = nil, map[string]any{"name": s.opts.ClientID}
		s.notes[n.id] = iss
	}
	if setDue {
		iss.dueAt = due
	}
	iss.updatedAt = now
	if iss.visibleAt.After(now) {
		iss.visibleAt = now
	}
	s.serialize(iss)
	return map[string]any{"issue": iss.tree()}, nil
}

func (s *Server) createIssueNote(in map[string]any) (map[string]any, *execError) {
	id, _ := in["issueId"].(string)
	text, _ := in["text"].(string)
	if e := checkUUID("issueId", id); e != nil {
		return nil, e
	}
	if e := checkNote(text); e != nil {
		return nil, e
	}
	if text == "" {
		return nil, userError("note text must not be empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.byID[id]
	if iss == nil {
		return nil, notFound("issue %s not found", id)
	}
	now := micro(s.now())
	n := s.world.addNote(iss, now, text, "")
	n.user, n.account = nil, map[string]any{"name": s.opts.ClientID}
	s.notes[n.id] = iss
	iss.updatedAt = now
	s.serialize(iss)
	return map[string]any{"issueNote": n.tree()}, nil
}

func (s *Server) deleteIssueNote(in map[string]any) (map[string]any, *execError) {
	id, _ := in["id"].(string)
	if e := checkUUID("id", id); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.notes[id]
	if iss == nil {
		return nil, notFound("note %s not found", id)
	}
	iss.notes = slices.DeleteFunc(slices.Clone(iss.notes), func(n *note) bool { return n.id == id })
	delete(s.notes, id)
	iss.updatedAt = micro(s.now())
	s.serialize(iss)
	return map[string]any{"_stub": true}, nil
}

// changeStatusLocked changes iss's status at time at, keeping the statusChangedAt index sorted; the
// change becomes visible at visible. The caller holds s.mu and re-serialises iss.
func (s *Server) changeStatusLocked(iss *issue, status, reason string, at, visible time.Time) {
	if reason == "" {
		switch status {
		case wizdef.StatusResolved:
			reason = wizdef.ReasonIssueFixed
		case wizdef.StatusRejected:
			reason = wizdef.ReasonWontFix
		}
	}
	s.idx[orderStatusChangedAt] = removeSorted(s.idx[orderStatusChangedAt], orderStatusChangedAt, iss)
	s.world.setStatus(iss, status, reason, at)
	s.idx[orderStatusChangedAt] = insertSorted(s.idx[orderStatusChangedAt], orderStatusChangedAt, iss)
	iss.visibleAt = visible
}
