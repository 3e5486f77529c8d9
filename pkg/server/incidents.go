package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// Paging bounds of GET /v1/incidents.
const (
	DefaultIncidentLimit = 50
	MaxIncidentLimit     = 1000
)

// IncidentDoc is one stored incident as the API shows it.
type IncidentDoc struct {
	Instance        string          `json:"instance"`
	IssueID         string          `json:"issue_id"`
	Status          string          `json:"status"`
	Version         int             `json:"version"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	FirstSeen       time.Time       `json:"first_seen"`
	StatusChangedAt *time.Time      `json:"status_changed_at"`
	ClosedAt        *time.Time      `json:"closed_at"`
	LastEventID     string          `json:"last_event_id"`
	Incident        json.RawMessage `json:"incident"`
}

// IncidentList is the body of GET /v1/incidents; Next is the cursor for ?after= ("" on the last page).
type IncidentList struct {
	Incidents []IncidentDoc `json:"incidents"`
	Next      string        `json:"next"`
}

func incidentDoc(rec *store.IncidentRecord) IncidentDoc {
	d := IncidentDoc{
		Instance: rec.Instance, IssueID: rec.IssueID, Status: rec.Status, Version: rec.Version,
		CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, FirstSeen: rec.FirstSeen,
		StatusChangedAt: rec.StatusChangedAt, ClosedAt: rec.ClosedAt, LastEventID: rec.LastEventID,
		Incident: json.RawMessage("null"),
	}
	if len(rec.Incident) > 0 && json.Valid(rec.Incident) {
		d.Incident = rec.Incident
	}
	return d
}

// incidentQuery is the parsed query of GET /v1/incidents.
type incidentQuery struct {
	instance     string
	statuses     []string // empty = any
	since        time.Time
	limit        int
	afterInst    string
	afterCreated int64 // createdAt in Unix microseconds, the store's key precision
	afterIssue   string
	afterCursor  bool
}

// badParam is a query parameter error (400 naming the parameter).
type badParam struct {
	param, msg string
}

func (e *badParam) Error() string { return e.param + ": " + e.msg }

func parseIncidentQuery(r *http.Request) (incidentQuery, error) {
	q := r.URL.Query()
	out := incidentQuery{instance: q.Get("instance"), limit: DefaultIncidentLimit}
	if strings.IndexByte(out.instance, 0) >= 0 {
		return out, &badParam{"instance", "must not contain a NUL byte"}
	}
	if v := q.Get("status"); v != "" {
		for _, st := range strings.Split(v, ",") {
			st = strings.ToUpper(strings.TrimSpace(st))
			if !wizdef.IsStatus(st) {
				return out, &badParam{"status", fmt.Sprintf("%q is not one of %s", st, strings.Join(wizdef.Statuses(), ", "))}
			}
			out.statuses = append(out.statuses, st)
		}
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return out, &badParam{"since", fmt.Sprintf("%q is not an RFC 3339 time (e.g. 2025-01-02T15:04:05Z)", v)}
		}
		out.since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxIncidentLimit {
			return out, &badParam{"limit", fmt.Sprintf("%q is not a whole number from 1 to %d", v, MaxIncidentLimit)}
		}
		out.limit = n
	}
	if v := q.Get("after"); v != "" {
		inst, created, issue, ok := decodeCursor(v)
		if !ok {
			return out, &badParam{"after", "is not a cursor returned in \"next\""}
		}
		out.afterInst, out.afterCreated, out.afterIssue, out.afterCursor = inst, created, issue, true
	}
	return out, nil
}

// A cursor is the position of the last incident of a page in the store's order — (instance,
// createdAt, issue id) — opaque to clients.
func encodeCursor(instance string, createdAt time.Time, issueID string) string {
	raw := instance + "\x00" + strconv.FormatInt(createdAt.UnixMicro(), 10) + "\x00" + issueID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(c string) (instance string, createdAt int64, issueID string, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", 0, "", false
	}
	parts := strings.SplitN(string(raw), "\x00", 3)
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return "", 0, "", false
	}
	if createdAt, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return "", 0, "", false
	}
	return parts[0], createdAt, parts[2], true
}

func (q *incidentQuery) matches(rec *store.IncidentRecord) bool {
	if len(q.statuses) > 0 && !slices.Contains(q.statuses, rec.Status) {
		return false
	}
	return q.since.IsZero() || !rec.UpdatedAt.Before(q.since)
}

// errPageFull stops the store walk once a page and one look-ahead are found.
var errPageFull = errors.New("page full")

// handleIncidents serves GET /v1/incidents: filters, in the store's order (instance, then the
// issue's createdAt, then issue id), cursor paging. Each page seeks to its cursor in the store, so
// paging through a large store reads only what it returns (and what the filters pass over).
func (s *Server) handleIncidents(w http.ResponseWriter, r *http.Request) {
	q, err := parseIncidentQuery(r)
	if err != nil {
		var bp *badParam
		if errors.As(err, &bp) {
			writeError(w, http.StatusBadRequest, bp.Error(), bp.param)
			return
		}
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	if s.opt.Store == nil {
		writeError(w, http.StatusServiceUnavailable, "the store is not open", "")
		return
	}
	list := IncidentList{Incidents: []IncidentDoc{}}
	more := false
	var lastCreated time.Time
	err = s.opt.Store.View(func(tx *store.Tx) error {
		var after *store.IncidentPos
		if q.afterCursor {
			after = &store.IncidentPos{Instance: q.afterInst, CreatedAt: time.UnixMicro(q.afterCreated), IssueID: q.afterIssue}
		}
		return tx.ForEachIncidentAfter(q.instance, after, func(rec *store.IncidentRecord) error {
			if !q.matches(rec) {
				return nil
			}
			if len(list.Incidents) == q.limit {
				more = true
				return errPageFull
			}
			list.Incidents = append(list.Incidents, incidentDoc(rec))
			lastCreated = rec.CreatedAt
			return nil
		})
	})
	if err != nil && !errors.Is(err, errPageFull) {
		s.log.Error("list incidents", "err", err)
		writeError(w, http.StatusInternalServerError, "list incidents: "+err.Error(), "")
		return
	}
	if more {
		last := list.Incidents[len(list.Incidents)-1]
		list.Next = encodeCursor(last.Instance, lastCreated, last.IssueID)
	}
	writeJSON(w, http.StatusOK, list)
}

// handleIncident serves GET /v1/incidents/{issue_id}[?instance=]. Without instance, every instance
// with incidents is looked up; an issue id found in several instances needs ?instance=.
func (s *Server) handleIncident(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("issue_id")
	instance := r.URL.Query().Get("instance")
	if strings.IndexByte(instance, 0) >= 0 {
		writeError(w, http.StatusBadRequest, "instance: must not contain a NUL byte", "instance")
		return
	}
	if id == "" || strings.IndexByte(id, 0) >= 0 {
		writeError(w, http.StatusBadRequest, "issue_id: must be a non-empty id", "issue_id")
		return
	}
	if s.opt.Store == nil {
		writeError(w, http.StatusServiceUnavailable, "the store is not open", "")
		return
	}
	instances := []string{instance}
	if instance == "" {
		st, err := s.opt.Store.Stats()
		if err != nil {
			s.log.Error("read store stats", "err", err)
			writeError(w, http.StatusInternalServerError, "read store: "+err.Error(), "")
			return
		}
		instances = instances[:0]
		for inst := range st.Incidents {
			instances = append(instances, inst)
		}
		slices.Sort(instances)
	}
	found, err := s.opt.Store.IncidentsByID(instances, id)
	switch {
	case err != nil:
		s.log.Error("read incident", "err", err)
		writeError(w, http.StatusInternalServerError, "read incident: "+err.Error(), "")
	case len(found) == 0:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no incident for issue %s", id), "")
	case len(found) > 1:
		names := make([]string, len(found))
		for i, rec := range found {
			names[i] = rec.Instance
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("instance: issue %s exists in several instances (%s); pass ?instance=",
			id, strings.Join(names, ", ")), "instance")
	default:
		writeJSON(w, http.StatusOK, incidentDoc(found[0]))
	}
}
