package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The XSOAR REST calls of bi-directional mirroring (issue 20), each as the public sources show it
// (the test XSOAR, pkg/xsoarsim, encodes the same with the sources in its comments):
//
//	close    POST <base>/incident/batchClose {"ids": [id], "closeReason", "closeNotes", "all": false,
//	         "filter": {}} -> {"total", "data": [incident]} (demisto-py close_incidents_batch,
//	         docs/UpdateDataBatch.md)
//	reopen   POST <base>/entry/execute/sync {"investigationId": id, "data": "!reopenInvestigation
//	         id=<id>"} -> [entry] (demisto-py investigation_add_entries_sync runs a command in an
//	         investigation; reopenInvestigation is XSOAR's documented reopen: XSOAR's REST reference
//	         has no reopen endpoint, so this is the best-documented way)
//	entry    POST <base>/entry {"investigationId": id, "data": markdown, "markdown": true} -> entry
//	         (demisto-py investigation_add_entry_handler, docs/UpdateEntry.md)
//	entries  POST <base>/investigation/<id> {} -> {"entries": [...]} (read before adding an entry
//	         that may already be there after a crash)
//	changes  POST <base>/incidents/search {"filter": {"query": `dbotMirrorId:* and
//	         modified:>="<RFC 3339>"`, "page", "size", "sort": [{"field": "modified", "asc": true}]}}
//	         (the query forms of demisto/content GetIncidentsByQuery; size is required,
//	         demisto-py docs/IncidentFilter.md)

// XSOAR incident statuses (demisto-py docs/IncidentStatus.md).
const (
	xsoarStatusDone    = 2
	xsoarStatusArchive = 3
)

// XSOARIncident is the part of an XSOAR incident mirroring reads.
type XSOARIncident struct {
	ID              string
	Version         int64
	Status          int // 0 Pending, 1 Active, 2 Done, 3 Archive
	CloseReason     string
	CloseNotes      string
	ClosingUser     string
	MirrorID        string    // dbotMirrorId: the Wiz issue id of wizfetch's incidents
	Modified        time.Time // zero when XSOAR did not say
	InvestigationID string
	// Labels holds the incident's labels by type (first value wins): wizfetch's incidents carry the
	// issue's "status" and "issueType" as last delivered.
	Labels map[string]string
}

// Closed reports whether the incident is closed (Done or Archived).
func (i XSOARIncident) Closed() bool {
	return i.Status == xsoarStatusDone || i.Status == xsoarStatusArchive
}

// parseIncident reads an incident of an XSOAR answer.
func parseIncident(b []byte) (XSOARIncident, error) {
	ref, err := parseRef(b)
	if err != nil {
		return XSOARIncident{}, err
	}
	var raw struct {
		Status          json.Number `json:"status"`
		CloseReason     string      `json:"closeReason"`
		CloseNotes      string      `json:"closeNotes"`
		ClosingUser     string      `json:"closingUserId"`
		MirrorID        string      `json:"dbotMirrorId"`
		Modified        string      `json:"modified"`
		InvestigationID string      `json:"investigationId"`
		Labels          []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"labels"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return XSOARIncident{}, fmt.Errorf("incident %s: %w", ref.ID, err)
	}
	inc := XSOARIncident{ID: ref.ID, Version: ref.Version, CloseReason: raw.CloseReason, CloseNotes: raw.CloseNotes,
		ClosingUser: raw.ClosingUser, MirrorID: raw.MirrorID, InvestigationID: raw.InvestigationID,
		Labels: map[string]string{}}
	if raw.Status == "" {
		return XSOARIncident{}, fmt.Errorf("incident %s: XSOAR's answer has no status", ref.ID)
	}
	st, err := raw.Status.Int64()
	if err != nil {
		return XSOARIncident{}, fmt.Errorf("incident %s: status %q is not a number", ref.ID, raw.Status)
	}
	inc.Status = int(st)
	if raw.Modified != "" {
		if t, err := time.Parse(time.RFC3339Nano, raw.Modified); err == nil {
			inc.Modified = t
		}
	}
	for _, l := range raw.Labels {
		if _, ok := inc.Labels[l.Type]; !ok {
			inc.Labels[l.Type] = l.Value
		}
	}
	return inc, nil
}

// ChangedIncidents returns page (0-based) of the incidents with a dbotMirrorId modified at or after
// since, oldest change first, size at most per page. It serves the XSOAR → Wiz direction of
// mirroring (pkg/mirror). since is sent at second precision, rounded down (the query compares
// inclusively, so nothing is skipped).
func (x *XSOAR) ChangedIncidents(ctx context.Context, since time.Time, page, size int) ([]XSOARIncident, error) {
	query := "dbotMirrorId:*"
	if !since.IsZero() {
		query += ` and modified:>="` + since.UTC().Truncate(time.Second).Format(time.RFC3339) + `"`
	}
	data, err := x.searchFilter(ctx, map[string]any{
		"query": query,
		"page":  page,
		"size":  size,
		"sort":  []map[string]any{{"field": "modified", "asc": true}},
	})
	if err != nil {
		return nil, fmt.Errorf("xsoar sink %s: search changed incidents: %w", x.name, err)
	}
	out := make([]XSOARIncident, 0, len(data))
	for _, d := range data {
		inc, err := parseIncident(d)
		if err != nil {
			x.log.Warn("skipping an incident XSOAR answered in an unexpected form", "err", err)
			continue
		}
		out = append(out, inc)
	}
	return out, nil
}

// closeIncident closes incident id with reason and notes and returns it as XSOAR answered.
func (x *XSOAR) closeIncident(ctx context.Context, id, reason, notes string) (XSOARIncident, error) {
	body, err := json.Marshal(map[string]any{
		"ids": []string{id}, "closeReason": reason, "closeNotes": notes, "all": false, "filter": map[string]any{},
	})
	if err != nil {
		return XSOARIncident{}, fmt.Errorf("render close: %w", err)
	}
	resp, err := x.http.do(ctx, http.MethodPost, x.mirror.closeURL, x.headers(), body)
	if err != nil {
		return XSOARIncident{}, fmt.Errorf("close incident %s: %w", id, err)
	}
	var res struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(resp.body, &res); err != nil {
		return XSOARIncident{}, fmt.Errorf("close incident %s: the answer is not JSON: %w", id, err)
	}
	for _, d := range res.Data {
		if inc, err := parseIncident(d); err == nil && inc.ID == id {
			return inc, nil
		}
	}
	// Closed, but the answer does not show it: read it.
	return x.readIncident(ctx, id)
}

// readIncident reads incident id by search.
func (x *XSOAR) readIncident(ctx context.Context, id string) (XSOARIncident, error) {
	data, err := x.search(ctx, map[string]any{"id": []string{id}})
	if err != nil {
		return XSOARIncident{}, fmt.Errorf("read incident %s: %w", id, err)
	}
	for _, d := range data {
		if inc, err := parseIncident(d); err == nil && inc.ID == id {
			return inc, nil
		}
	}
	return XSOARIncident{}, Permanent(fmt.Errorf("read incident %s: XSOAR does not have it", id))
}

// reopenIncident runs reopenInvestigation for incident id and returns it as XSOAR has it then.
func (x *XSOAR) reopenIncident(ctx context.Context, inc XSOARIncident) (XSOARIncident, error) {
	body, err := json.Marshal(map[string]any{
		"investigationId": investigationOf(inc), "data": "!reopenInvestigation id=" + inc.ID,
	})
	if err != nil {
		return XSOARIncident{}, fmt.Errorf("render reopen: %w", err)
	}
	if _, err := x.http.do(ctx, http.MethodPost, x.mirror.executeURL, x.headers(), body); err != nil {
		return XSOARIncident{}, fmt.Errorf("reopen incident %s: %w", inc.ID, err)
	}
	got, err := x.readIncident(ctx, inc.ID)
	if err != nil {
		return XSOARIncident{}, err
	}
	if got.Closed() {
		return got, Permanent(fmt.Errorf("reopen incident %s: XSOAR ran reopenInvestigation but the incident is still closed", inc.ID))
	}
	return got, nil
}

// investigationOf returns the investigation id of inc (XSOAR gives an incident's investigation
// the incident's id).
func investigationOf(inc XSOARIncident) string {
	if inc.InvestigationID != "" {
		return inc.InvestigationID
	}
	return inc.ID
}

// addEntry adds a markdown war-room entry to investigation invID.
func (x *XSOAR) addEntry(ctx context.Context, invID, text string) error {
	body, err := json.Marshal(map[string]any{"investigationId": invID, "data": text, "markdown": true})
	if err != nil {
		return fmt.Errorf("render entry: %w", err)
	}
	if _, err := x.http.do(ctx, http.MethodPost, x.mirror.entryURL, x.headers(), body); err != nil {
		return fmt.Errorf("add a war-room entry to incident %s: %w", invID, err)
	}
	return nil
}

// entryContents returns the contents of every entry of investigation invID.
func (x *XSOAR) entryContents(ctx context.Context, invID string) ([]string, error) {
	u, err := joinURL(x.mirror.base, "/investigation/"+invID)
	if err != nil {
		return nil, Permanent(err)
	}
	resp, err := x.http.do(ctx, http.MethodPost, u, x.headers(), []byte("{}"))
	if err != nil {
		return nil, fmt.Errorf("read the war room of incident %s: %w", invID, err)
	}
	var res struct {
		Entries []struct {
			Contents json.RawMessage `json:"contents"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(resp.body, &res); err != nil {
		return nil, fmt.Errorf("read the war room of incident %s: the answer is not JSON: %w", invID, err)
	}
	out := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		var s string
		if json.Unmarshal(e.Contents, &s) != nil {
			s = string(e.Contents) // contents of another entry type: search its JSON text
		}
		out = append(out, s)
	}
	return out, nil
}

// refused reports whether err is XSOAR (or the sink) refusing a request for good: retrying the
// same request cannot help.
func refused(err error) bool {
	return errors.Is(err, ErrPermanent)
}

// containsAny reports whether any of texts contains sub.
func containsAny(texts []string, sub string) bool {
	for _, t := range texts {
		if strings.Contains(t, sub) {
			return true
		}
	}
	return false
}

// MappedIncident returns the id of the XSOAR incident the sink delivers issueID of instance to,
// "" when it has none.
func (x *XSOAR) MappedIncident(instance, issueID string) (string, error) {
	ref, err := x.loadRef("xsoar:" + instance + ":" + issueID)
	if err != nil || ref == nil {
		return "", err
	}
	return ref.ID, nil
}
