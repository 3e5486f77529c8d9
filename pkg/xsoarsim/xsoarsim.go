// Package xsoarsim is the test XSOAR receiver: an in-process Cortex XSOAR REST API (create, update
// and search incidents) written from XSOAR's public documentation, for the tests of the xsoar sink
// and of the whole app. It is an http.Handler; serve it with httptest.NewServer.
//
// What it does, each with its public source:
//   - Authentication as XSOAR 6 ("Authorization: <key>"), XSOAR 8 standard keys (plus
//     "x-xdr-auth-id") and XSOAR 8 advanced keys (Authorization = hex(sha256(key + nonce +
//     timestamp)), 64-alphanumeric "x-xdr-nonce", unix-ms "x-xdr-timestamp", a nonce never reused),
//     as WIZ_API.md §8 gathers them from the XSOAR 6/8 API docs. A refusal is a 401 that echoes
//     the Authorization it got, so tests prove the sink redacts it.
//   - POST <prefix>/incident without "id" creates an incident: ids "1", "2", … and version 1. XSOAR
//     does not deduplicate (WIZ_API.md §8).
//   - POST <prefix>/incident with "id" and "version" updates it when version is the current one and
//     bumps it (XSOAR 8 "Create or update an incident": "To update an existing incident, you must
//     update the version parameter"; optimistic locking). A stale version is refused with 400
//     {"id": "errOptimisticLock", "status": 400, "title": "Optimistic lock error", "error": "DB
//     Version '4' and Insert version '10' do not match for id: …"}, as a Palo Alto Networks answer
//     on LIVE quotes it (live.paloaltonetworks.com, message 436126, "Use the endpoint /incident with
//     POST data").
//   - An update replaces the incident: "The POST data must contain all the investigation data. If
//     you do not provide the field data for a specific field, it will be wiped from the
//     investigation" (the same answer, which recommends reading the incident, changing it and
//     posting it back). So every field the body leaves out is gone afterwards, status and close
//     fields included (mirror.go); only id, created and the war room stay.
//   - An incident is answered with its custom fields under "CustomFields", the key XSOAR's own
//     scripts read (demisto.incident().get('CustomFields') throughout demisto/content, e.g.
//     Packs/Vectra's and Packs/CyCognito's scripts); a create or update sets them with
//     "customFields" (XSOAR 6/8 "Create or update an incident": "To update incident custom fields,
//     they must be in lowercase and without spaces"; demisto-py CreateIncidentRequest).
//   - A create with "createInvestigation": true starts the incident type's playbook, which changes
//     the incident and so bumps its version (XSOAR 6/8 "Create or update an incident"; WIZ_API.md
//     §10). Options.PlaybookEdits makes that deterministic: the edits land right after the create
//     is answered, before the next request is served.
//   - "createInvestigation" is documented for creation only; the docs do not say an update carrying
//     it is refused, so it is accepted and counted (Stats.UpdatesWithCreateInvestigation).
//   - POST <prefix>/incidents/search {"filter": {"id": [...], "query": "...", "page", "size",
//     "sort"}} answers {"total": n, "data": [incident, ...]}. Without "size" (or with 0) no
//     incident comes back, and size is capped at 1000 (demisto-py docs/IncidentFilter.md: "Size is
//     limited to 1000, if not passed it defaults to 0, and no results will return"). The query
//     understands field:"value" terms joined by AND, on top-level fields (dbotMirrorId, name, type…)
//     and customFields; anything else is refused with 400 rather than guessed.
//   - Analysts and playbooks change incidents between wizfetch's requests: Edit, SetFields, the
//     playbook of Options.PlaybookEdits (which sets "phase") and RaceAfterSearch (an edit landing
//     between a client's read and its write).
//   - Injected failures (FailNext) answer the next requests before anything else; a 429 carries
//     "Retry-After: 3".
//   - Bi-directional mirroring (mirror.go): incident status and close fields, "modified",
//     /incident/batchClose, /entry, /entry/execute/sync (reopenInvestigation), /investigation/<id>,
//     and the `field:*` and `modified:>="<time>"` query terms, each with its source; Close and
//     Reopen act as an analyst in the UI.
package xsoarsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Prefix8 is the path prefix of the XSOAR 8 / XSIAM public API; XSOAR 6 has none.
const Prefix8 = "/xsoar/public/v1"

// Options configure a Server.
type Options struct {
	// Key is the API key every request must carry.
	Key string
	// KeyID is the XSOAR 8 API key id; empty means XSOAR 6 (no prefix, no x-xdr-auth-id).
	KeyID string
	// Advanced makes it an XSOAR 8 advanced key (signed, nonce and timestamp per request).
	Advanced bool
	// PlaybookEdits is how many times the playbook started by "createInvestigation": true changes a
	// new incident, each change bumping its version and setting its "phase" to PlaybookPhase. 0: no
	// playbook.
	PlaybookEdits int
	// OnAccept, when set, is called with each created or updated incident body as accepted, in
	// order, with the server's lock held: it must not call the Server.
	OnAccept func(body map[string]any)
	// Now is the server's clock for "created" and "modified"; nil uses time.Now.
	Now func() time.Time
	// APIUser is the user XSOAR records for changes made with the API key (closingUserId of a
	// close through the API); empty: "api".
	APIUser string
}

// Incident is one incident as XSOAR holds it.
type Incident struct {
	ID      string
	Version int64
	// Body is the last accepted request body, decoded (a copy the caller owns).
	Body map[string]any
	// Status is XSOAR's incident status: StatusPending, StatusActive, StatusDone or StatusArchive.
	Status      int
	CloseReason string
	CloseNotes  string
	ClosingUser string
	Modified    time.Time
}

// Label returns the value of the first label of typ, "" if none.
func (i Incident) Label(typ string) string {
	labels, _ := i.Body["labels"].([]any)
	for _, l := range labels {
		m, _ := l.(map[string]any)
		if m["type"] == typ {
			s, _ := m["value"].(string)
			return s
		}
	}
	return ""
}

// MirrorID returns the incident's dbotMirrorId (wizfetch puts the Wiz issue id there).
func (i Incident) MirrorID() string {
	s, _ := i.Body["dbotMirrorId"].(string)
	return s
}

// Request is one request as received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Stats counts what the server did.
type Stats struct {
	Creates   int // incidents created
	Updates   int // incidents updated
	Conflicts int // updates refused for a stale version
	Searches  int // /incidents/search requests answered
	// SearchesWithoutSize counts searches that returned nothing because size was missing or 0.
	SearchesWithoutSize int
	// UpdatesWithCreateInvestigation counts updates that carried "createInvestigation".
	UpdatesWithCreateInvestigation int
	// Closes counts incidents closed through /incident/batchClose; RedundantCloses those of them
	// that were closed already. Reopens counts reopenInvestigation runs that reopened an incident.
	Closes, RedundantCloses, Reopens int
	// Entries counts war-room entries added through /entry.
	Entries int
}

type incident struct {
	version int64
	created time.Time // answered as "created"
	body    []byte    // the last accepted body
	// fields is the incident's fields as they are now: the last accepted body decoded, then
	// changed by analysts and playbooks (never handed out).
	fields map[string]any
	state  incidentState // fields XSOAR keeps itself (mirror.go)
}

// PlaybookPhase is the "phase" the playbook of Options.PlaybookEdits sets.
const PlaybookPhase = "Triage"

// Server is a test XSOAR. Create it with New.
type Server struct {
	opt    Options
	prefix string

	mu        sync.Mutex
	nextID    int
	nextEntry int
	clock     func() time.Time
	incidents map[string]*incident
	order     []string // incident ids in creation order
	requests  []Request
	nonces    map[string]bool
	fail      []int
	stats     Stats
	// races holds, per incident id, the edits to make right after each of the next searches that
	// answer with it, in order (RaceAfterSearch).
	races map[string][]int
}

// New returns a test XSOAR that accepts the credentials of o.
func New(o Options) *Server {
	s := &Server{opt: o, incidents: map[string]*incident{}, nonces: map[string]bool{}, clock: o.Now, races: map[string][]int{}}
	if s.clock == nil {
		s.clock = time.Now
	}
	if o.KeyID != "" {
		s.prefix = Prefix8
	}
	return s
}

// Prefix is the API path prefix the server answers under: Prefix8 for XSOAR 8, "" for XSOAR 6.
func (s *Server) Prefix() string { return s.prefix }

// FailNext makes the next len(statuses) requests fail with these statuses, in order, before
// authentication or anything else; a 0 lets its request through.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, statuses...)
}

// nextFailureLocked pops the status to inject into this request, 0 for none.
func (s *Server) nextFailureLocked() int {
	if len(s.fail) == 0 {
		return 0
	}
	status := s.fail[0]
	s.fail = s.fail[1:]
	return status
}

// Edit changes incident id n times, as an analyst or a playbook would, bumping its version.
func (s *Server) Edit(id string, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.incidents[id]
	if inc == nil {
		return fmt.Errorf("edit incident %s: no such incident", id)
	}
	inc.version += int64(n)
	inc.state.modified = s.nowLocked()
	return nil
}

// SetFields changes incident id as an analyst or a playbook would: each of top is set as a field
// of the incident, each of custom as one of its custom fields, and the version is bumped.
func (s *Server) SetFields(id string, top, custom map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.incidents[id]
	if inc == nil {
		return fmt.Errorf("set fields of incident %s: no such incident", id)
	}
	for k, v := range top {
		inc.fields[k] = v
	}
	if len(custom) > 0 {
		cf, _ := inc.fields["customFields"].(map[string]any)
		if cf == nil {
			cf = map[string]any{}
			inc.fields["customFields"] = cf
		}
		for k, v := range custom {
			cf[k] = v
		}
	}
	inc.version++
	inc.state.modified = s.nowLocked()
	return nil
}

// RaceAfterSearch makes the next search that answers with incident id edit it n times right after
// answering, as an analyst saving the incident between a client's read and its write would; n < 0
// deletes it instead (XSOAR deletes incidents: demisto-py DefaultApi.delete_incidents_batch). Each
// call arms one more search.
func (s *Server) RaceAfterSearch(id string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.races[id] = append(s.races[id], n)
}

// Incidents returns every incident in creation order.
func (s *Server) Incidents() []Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Incident, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.exportLocked(id))
	}
	return out
}

// Incident returns incident id.
func (s *Server) Incident(id string) (Incident, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.incidents[id] == nil {
		return Incident{}, false
	}
	return s.exportLocked(id), true
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = Request{Method: r.Method, Path: r.Path, Header: r.Header.Clone(), Body: append([]byte(nil), r.Body...)}
	}
	return out
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Server) exportLocked(id string) Incident {
	inc := s.incidents[id]
	var body map[string]any
	_ = json.Unmarshal(inc.body, &body) // stored only after it decoded
	st := inc.state
	return Incident{ID: id, Version: inc.version, Body: body, Status: st.status, CloseReason: st.closeReason,
		CloseNotes: st.closeNotes, ClosingUser: st.closingUser, Modified: st.modified}
}

var alnum64 = regexp.MustCompile(`^[A-Za-z0-9]{64}$`)

// authenticateLocked returns why h is refused, "" when it is accepted.
func (s *Server) authenticateLocked(h http.Header) string {
	if s.opt.KeyID == "" {
		if h.Get("x-xdr-auth-id") != "" {
			return "unexpected x-xdr-auth-id for XSOAR 6"
		}
		if h.Get("Authorization") != s.opt.Key {
			return "bad key " + h.Get("Authorization")
		}
		return ""
	}
	if h.Get("x-xdr-auth-id") != s.opt.KeyID {
		return "bad x-xdr-auth-id"
	}
	if !s.opt.Advanced {
		if h.Get("Authorization") != s.opt.Key {
			return "bad key " + h.Get("Authorization")
		}
		return ""
	}
	nonce, ts := h.Get("x-xdr-nonce"), h.Get("x-xdr-timestamp")
	if !alnum64.MatchString(nonce) {
		return "nonce is not 64 alphanumerics"
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil || len(ts) != 13 {
		return "timestamp is not unix milliseconds"
	}
	sum := sha256.Sum256([]byte(s.opt.Key + nonce + ts))
	if h.Get("Authorization") != hex.EncodeToString(sum[:]) {
		return "bad advanced signature " + h.Get("Authorization")
	}
	if s.nonces[nonce] {
		return "nonce reused"
	}
	s.nonces[nonce] = true
	return ""
}

// answer writes status and a JSON body.
func answer(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	w.Header().Set("Content-Type", "application/json")
	if status := s.nextFailureLocked(); status != 0 {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "3")
		}
		answer(w, status, map[string]any{"id": "error", "status": status, "detail": "injected failure"})
		return
	}
	if err != nil {
		answer(w, http.StatusBadRequest, map[string]any{"detail": "read body: " + err.Error()})
		return
	}
	if reason := s.authenticateLocked(r.Header); reason != "" {
		answer(w, http.StatusUnauthorized, map[string]any{"id": "unauthorized", "status": 401, "detail": reason})
		return
	}
	if r.Method != http.MethodPost || !jsonContent(r.Header.Get("Content-Type")) {
		answer(w, http.StatusBadRequest, map[string]any{"detail": "want POST application/json"})
		return
	}
	if r.ContentLength != int64(len(body)) || len(r.TransferEncoding) != 0 {
		w.WriteHeader(http.StatusLengthRequired)
		return
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		answer(w, http.StatusBadRequest, map[string]any{"detail": "bad JSON"})
		return
	}
	switch path := r.URL.Path; {
	case path == s.prefix+"/incident":
		s.serveIncidentLocked(w, req, body)
	case path == s.prefix+"/incidents/search":
		s.serveSearchLocked(w, req)
	case path == s.prefix+"/incident/batchClose":
		s.serveBatchCloseLocked(w, req)
	case path == s.prefix+"/entry":
		s.serveEntryLocked(w, req)
	case path == s.prefix+"/entry/execute/sync":
		s.serveExecuteLocked(w, req)
	case strings.HasPrefix(path, s.prefix+"/investigation/"):
		s.serveInvestigationLocked(w, strings.TrimPrefix(path, s.prefix+"/investigation/"))
	default:
		answer(w, http.StatusNotFound, map[string]any{"detail": "no such endpoint"})
	}
}

// serveIncidentLocked creates (no id) or updates (id and current version) an incident.
func (s *Server) serveIncidentLocked(w http.ResponseWriter, req map[string]any, body []byte) {
	id, _ := req["id"].(string)
	creating := id == ""
	var inc *incident
	if creating {
		s.nextID++
		id = strconv.Itoa(s.nextID)
		now := s.nowLocked()
		inc = &incident{version: 1, created: now, state: newState(now, req)}
		s.incidents[id] = inc
		s.order = append(s.order, id)
		s.stats.Creates++
	} else {
		inc = s.incidents[id]
		if inc == nil {
			answer(w, http.StatusBadRequest, map[string]any{"detail": "Could not find incident " + id})
			return
		}
		if _, ok := req["createInvestigation"]; ok {
			s.stats.UpdatesWithCreateInvestigation++
		}
		v, _ := req["version"].(float64)
		if int64(v) != inc.version {
			s.stats.Conflicts++
			answer(w, http.StatusBadRequest, map[string]any{
				"id": "errOptimisticLock", "status": 400, "title": "Optimistic lock error", "detail": "Optimistic lock error",
				"error": fmt.Sprintf("DB Version '%d' and Insert version '%d' do not match for id: %s on bucket [] [incidents] (15)",
					inc.version, int64(v), id),
				"encrypted": false, "multires": nil})
			return
		}
		inc.version++
		inc.state.replace(req, s.nowLocked())
		s.stats.Updates++
	}
	inc.body = append([]byte(nil), body...)
	inc.fields = req
	delete(inc.fields, "CustomFields") // the answer's key; a body sets customFields
	if s.opt.OnAccept != nil {
		var cp map[string]any
		_ = json.Unmarshal(body, &cp) // decoded once already
		s.opt.OnAccept(cp)
	}
	answer(w, http.StatusOK, s.exportFieldsLocked(id, inc))
	// The playbook runs after the create is answered; holding the lock makes its edits land before
	// the next request, deterministically.
	if start, _ := req["createInvestigation"].(bool); start && creating && s.opt.PlaybookEdits > 0 {
		inc.version += int64(s.opt.PlaybookEdits)
		inc.fields["phase"] = PlaybookPhase
	}
}
