package xsoarsim

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// What the test XSOAR does for bi-directional mirroring (issue 20), each with its public source:
//
//   - Incident status is XSOAR's IncidentStatus: 0 Pending, 1 Active, 2 Done (closed), 3 Archive
//     (demisto-py docs/IncidentStatus.md). A create with "createInvestigation": true starts the
//     investigation (status Active, investigationId = the incident id: XSOAR 6 API "Create single
//     incident", "Use the 'createInvestigation: true' to start the investigation process"); without
//     it the incident stays Pending and has no war room. investigationId, created and modified are
//     XSOAR's own; status, closeReason, closeNotes and closingUserId are set by closing and
//     reopening, and an update replaces them with the body's values like every other field (an
//     update that leaves them out wipes them: see the package doc). Every change of the incident
//     moves "modified" (the field GetIncidentsByQuery searches with timeField "modified").
//   - POST <prefix>/incident/batchClose {"ids": [...], "closeReason", "closeNotes", "all": false,
//     "filter": {...}} closes the incidents and answers {"total", "data": [incident...]}
//     (demisto-py DefaultApi.close_incidents_batch, docs/UpdateDataBatch.md; demisto/content
//     Packs/CommunityCommonScripts/Scripts/Bulk uses the same body). Each close bumps the version.
//     Closing a closed incident is not documented as refused: it is accepted and counted
//     (Stats.RedundantCloses) so tests prove wizfetch never does it.
//   - POST <prefix>/entry {"investigationId", "data", "markdown"} adds a war-room entry and answers
//     the Entry {"id", "investigationId", "contents", "type": 1, "created"} (demisto-py
//     DefaultApi.investigation_add_entry_handler, docs/UpdateEntry.md; entry type 1 is a note). An
//     incident without an investigation (Pending) has no war room: 400.
//   - POST <prefix>/entry/execute/sync {"investigationId", "data": "!reopenInvestigation id=<id>"}
//     runs the command and answers a list of entries (demisto-py
//     DefaultApi.investigation_add_entries_sync). XSOAR's REST reference has no reopen endpoint;
//     reopenInvestigation is the documented way to reopen a closed incident
//     (xsoar.pan.dev/docs/integrations/reopen-investigation). It sets the incident Active, clears
//     the close fields and bumps the version. Other commands are refused with 400: the test XSOAR
//     runs no integrations.
//   - POST <prefix>/investigation/<id> {} answers the investigation with its entries ({"id",
//     "entries": [...]}; the Cortex XSOAR community answer "use /investigation/<incident-id> in a
//     POST request to obtain the latest information of the investigation").

// Incident statuses (demisto-py docs/IncidentStatus.md).
const (
	StatusPending = 0
	StatusActive  = 1
	StatusDone    = 2
	StatusArchive = 3
)

// Entry is one war-room entry.
type Entry struct {
	ID       string
	Contents string
	Markdown bool
	Created  time.Time
}

// incidentState is what XSOAR keeps of an incident besides the body it was sent.
type incidentState struct {
	status        int
	closeReason   string
	closeNotes    string
	closingUser   string
	modified      time.Time
	investigation bool // the investigation was started: the incident has a war room
	entries       []Entry
}

func newState(now time.Time, req map[string]any) incidentState {
	st := incidentState{status: StatusPending, modified: now}
	if start, _ := req["createInvestigation"].(bool); start {
		st.status, st.investigation = StatusActive, true
	}
	return st
}

// replace sets the state an update's body carries (status, closeReason, closeNotes,
// closingUserId), wiping what it leaves out, at now.
func (st *incidentState) replace(req map[string]any, now time.Time) {
	status, _ := req["status"].(float64)
	st.status = int(status)
	st.closeReason, _ = req["closeReason"].(string)
	st.closeNotes, _ = req["closeNotes"].(string)
	st.closingUser, _ = req["closingUserId"].(string)
	st.modified = now
}

func (s *Server) nowLocked() time.Time { return s.clock().UTC() }

func (s *Server) apiUser() string {
	if s.opt.APIUser != "" {
		return s.opt.APIUser
	}
	return "api"
}

// jsonContent accepts application/json with or without parameters.
func jsonContent(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt) == "application/json"
}

// exportFieldsLocked renders an incident as XSOAR answers it: the last accepted body plus the
// fields XSOAR keeps (a fresh map; the values are encoded before the lock is released).
func (s *Server) exportFieldsLocked(id string, inc *incident) map[string]any {
	out := make(map[string]any, len(inc.fields)+10)
	for k, v := range inc.fields {
		if k == "customFields" {
			k = "CustomFields" // set as customFields, answered as CustomFields (package doc)
		}
		out[k] = v
	}
	st := inc.state
	out["id"], out["version"], out["created"] = id, inc.version, inc.created.Format(time.RFC3339Nano)
	out["modified"], out["status"] = st.modified.Format(time.RFC3339Nano), st.status
	out["closeReason"], out["closeNotes"], out["closingUserId"] = st.closeReason, st.closeNotes, st.closingUser
	out["investigationId"] = ""
	if st.investigation {
		out["investigationId"] = id
	}
	return out
}

// closeLocked closes incident id as user.
func (s *Server) closeLocked(id string, inc *incident, reason, notes, user string) {
	if inc.state.status == StatusDone || inc.state.status == StatusArchive {
		s.stats.RedundantCloses++
	}
	inc.state.status, inc.state.closeReason, inc.state.closeNotes, inc.state.closingUser = StatusDone, reason, notes, user
	inc.version++
	inc.state.modified = s.nowLocked()
	s.stats.Closes++
}

// reopenLocked reopens incident id.
func (s *Server) reopenLocked(inc *incident) {
	inc.state.status, inc.state.closeReason, inc.state.closeNotes, inc.state.closingUser = StatusActive, "", "", ""
	inc.state.investigation = true
	inc.version++
	inc.state.modified = s.nowLocked()
	s.stats.Reopens++
}

// Close closes incident id as an analyst would in the UI.
func (s *Server) Close(id, reason, notes, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.incidents[id]
	if inc == nil {
		return fmt.Errorf("close incident %s: no such incident", id)
	}
	s.closeLocked(id, inc, reason, notes, user)
	return nil
}

// Reopen reopens incident id as an analyst would in the UI.
func (s *Server) Reopen(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.incidents[id]
	if inc == nil {
		return fmt.Errorf("reopen incident %s: no such incident", id)
	}
	if inc.state.status != StatusDone && inc.state.status != StatusArchive {
		return fmt.Errorf("reopen incident %s: it is not closed", id)
	}
	s.reopenLocked(inc)
	return nil
}

// Entries returns the war-room entries of incident id, oldest first.
func (s *Server) Entries(id string) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.incidents[id]
	if inc == nil {
		return nil
	}
	return append([]Entry(nil), inc.state.entries...)
}

// serveBatchCloseLocked answers /incident/batchClose.
func (s *Server) serveBatchCloseLocked(w http.ResponseWriter, req map[string]any) {
	list, _ := req["ids"].([]any)
	if all, _ := req["all"].(bool); all || len(list) == 0 {
		answer(w, http.StatusBadRequest, map[string]any{"detail": "the test XSOAR closes listed ids only (ids non-empty, all false)"})
		return
	}
	reason, _ := req["closeReason"].(string)
	notes, _ := req["closeNotes"].(string)
	var ids []string
	for _, x := range list {
		id, _ := x.(string)
		if s.incidents[id] == nil {
			answer(w, http.StatusBadRequest, map[string]any{"detail": "Could not find incident " + id})
			return
		}
		ids = append(ids, id)
	}
	data := []map[string]any{}
	for _, id := range ids {
		inc := s.incidents[id]
		s.closeLocked(id, inc, reason, notes, s.apiUser())
		data = append(data, s.exportFieldsLocked(id, inc))
	}
	answer(w, http.StatusOK, map[string]any{"total": len(data), "data": data})
}

// investigationLocked returns the incident whose investigation is id, or why there is none.
func (s *Server) investigationLocked(id string) (*incident, string) {
	inc := s.incidents[id]
	if inc == nil || !inc.state.investigation {
		return nil, "Investigation " + id + " not found"
	}
	return inc, ""
}

// serveEntryLocked answers /entry: a war-room note.
func (s *Server) serveEntryLocked(w http.ResponseWriter, req map[string]any) {
	invID, _ := req["investigationId"].(string)
	data, _ := req["data"].(string)
	inc, why := s.investigationLocked(invID)
	if inc == nil {
		answer(w, http.StatusBadRequest, map[string]any{"detail": why})
		return
	}
	if strings.TrimSpace(data) == "" {
		answer(w, http.StatusBadRequest, map[string]any{"detail": "entry data is empty"})
		return
	}
	md, _ := req["markdown"].(bool)
	s.nextEntry++
	e := Entry{ID: strconv.Itoa(s.nextEntry) + "@" + invID, Contents: data, Markdown: md, Created: s.nowLocked()}
	inc.state.entries = append(inc.state.entries, e)
	s.stats.Entries++
	answer(w, http.StatusOK, exportEntry(invID, e))
}

func exportEntry(invID string, e Entry) map[string]any {
	return map[string]any{"id": e.ID, "investigationId": invID, "contents": e.Contents, "type": 1,
		"created": e.Created.Format(time.RFC3339Nano)}
}

// reopenCommand matches the one command the test XSOAR runs.
var reopenCommand = regexp.MustCompile(`^!reopenInvestigation(?:\s+id=("?)([^"\s]+)("?))?\s*$`)

// serveExecuteLocked answers /entry/execute/sync.
func (s *Server) serveExecuteLocked(w http.ResponseWriter, req map[string]any) {
	invID, _ := req["investigationId"].(string)
	data, _ := req["data"].(string)
	m := reopenCommand.FindStringSubmatch(strings.TrimSpace(data))
	if m == nil {
		answer(w, http.StatusBadRequest, map[string]any{"detail": "the test XSOAR runs only !reopenInvestigation [id=<id>]"})
		return
	}
	target := invID
	if m[2] != "" {
		target = m[2]
	}
	inc := s.incidents[target]
	if inc == nil || s.incidents[invID] == nil {
		answer(w, http.StatusBadRequest, map[string]any{"detail": "Could not find incident " + target})
		return
	}
	if inc.state.status != StatusDone && inc.state.status != StatusArchive {
		answer(w, http.StatusOK, []map[string]any{{"id": "", "investigationId": invID, "type": 4,
			"contents": "Incident " + target + " is not closed"}})
		return
	}
	s.reopenLocked(inc)
	answer(w, http.StatusOK, []map[string]any{{"id": "", "investigationId": invID, "type": 1,
		"contents": "Incident " + target + " was reopened"}})
}

// serveInvestigationLocked answers /investigation/<id>.
func (s *Server) serveInvestigationLocked(w http.ResponseWriter, id string) {
	inc, why := s.investigationLocked(id)
	if inc == nil {
		answer(w, http.StatusNotFound, map[string]any{"detail": why})
		return
	}
	entries := make([]map[string]any, 0, len(inc.state.entries))
	for _, e := range inc.state.entries {
		entries = append(entries, exportEntry(id, e))
	}
	answer(w, http.StatusOK, map[string]any{"id": id, "status": inc.state.status, "entries": entries})
}
