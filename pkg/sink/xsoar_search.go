package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// How the xsoar sink finds incidents in XSOAR: by id (readCurrent, before every update) and by the
// issue id in dbotMirrorId (findByIssue, when the store has no record of the issue), both through
// POST <base>/incidents/search.

// searchSize is the page size of every incident search. XSOAR's /incidents/search returns no
// incident without a size: it defaults to 0 (and is capped at 1000), demisto-py
// docs/IncidentFilter.md. One incident is expected; the rest of the page shows duplicates.
const searchSize = 100

// readCurrent returns incident id as XSOAR holds it now (POST <base>/incidents/search
// {"filter": {"id": [id], …}}); nil when XSOAR no longer has it.
func (x *XSOAR) readCurrent(ctx context.Context, id string) (json.RawMessage, error) {
	data, err := x.search(ctx, map[string]any{"id": []string{id}})
	if err != nil {
		return nil, err
	}
	for _, d := range data {
		ref, err := parseRef(d)
		if err == nil && ref.ID == id {
			return d, nil
		}
	}
	return nil, nil
}

// findByIssue returns the oldest XSOAR incident whose dbotMirrorId is issueID, and the incident as
// the search answered it; nil when there is none.
//
// Why dbotMirrorId: it is a system field every incident has (no pack needed, unlike the Wiz pack's
// custom field wizissueid, which the mapping may also override), the sink sets it to the issue id,
// and XSOAR's incident query language searches it: public XSOAR content looks incidents up with
// exactly this query, e.g. demisto/content Packs/Doppel/Scripts/DoppelSyncAlerts/DoppelSyncAlerts.py
// (getIncidents with {"query": `dbotMirrorId:"<id>"`, "page", "size"}, then reading each answered
// incident's dbotMirrorId). The query is a search, not a lookup: only an exact dbotMirrorId in the
// answer counts. Caveat: XSOAR 8's "Create or update an incident" page lists a short body without
// dbotMirrorId; a tenant that drops the field makes the look-up find nothing, and the sink creates
// the incident as it did before the look-up existed.
func (x *XSOAR) findByIssue(ctx context.Context, issueID string) (*xsoarRef, json.RawMessage, error) {
	data, err := x.search(ctx, map[string]any{
		"query": `dbotMirrorId:"` + queryEscaper.Replace(issueID) + `"`,
		"sort":  []map[string]any{{"field": "created", "asc": true}},
	})
	if err != nil {
		return nil, nil, err
	}
	var found *xsoarRef
	var obj json.RawMessage
	matches := 0
	for _, d := range data {
		var inc struct {
			MirrorID string `json:"dbotMirrorId"`
		}
		if json.Unmarshal(d, &inc) != nil || inc.MirrorID != issueID {
			continue
		}
		ref, err := parseRef(d)
		if err != nil {
			continue
		}
		matches++
		if found == nil {
			found, obj = ref, d
		}
	}
	if matches > 1 {
		x.log.Warn("XSOAR holds several incidents of one issue; updating the oldest", "issue_id", issueID,
			"incidents", matches, "incident_id", found.ID)
	}
	return found, obj, nil
}

// queryEscaper escapes a value for a double-quoted term of XSOAR's incident query.
var queryEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// search runs POST <base>/incidents/search with filter (page 0, searchSize incidents) and returns
// the incidents of the answer.
func (x *XSOAR) search(ctx context.Context, filter map[string]any) ([]json.RawMessage, error) {
	filter["page"] = 0
	filter["size"] = searchSize
	return x.searchFilter(ctx, filter)
}

// searchFilter runs POST <base>/incidents/search with filter as given (page and size included).
func (x *XSOAR) searchFilter(ctx context.Context, filter map[string]any) ([]json.RawMessage, error) {
	q, err := json.Marshal(map[string]any{"filter": filter})
	if err != nil {
		return nil, fmt.Errorf("render search: %w", err)
	}
	resp, err := x.http.do(ctx, http.MethodPost, x.searchURL, x.headers(), q)
	if err != nil {
		return nil, err
	}
	var res struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(resp.body, &res); err != nil {
		return nil, fmt.Errorf("search answer is not JSON: %w", err)
	}
	return res.Data, nil
}

// parseRef reads id (a string or a number) and version from an XSOAR incident.
func parseRef(b []byte) (*xsoarRef, error) {
	var raw struct {
		ID      json.RawMessage `json:"id"`
		Version json.Number     `json:"version"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("incident is not JSON: %w", err)
	}
	var id string
	if err := json.Unmarshal(raw.ID, &id); err != nil {
		var n json.Number
		if json.Unmarshal(raw.ID, &n) != nil {
			return nil, errors.New("incident has no id")
		}
		id = n.String()
	}
	if id == "" {
		return nil, errors.New("incident has an empty id")
	}
	ref := &xsoarRef{ID: id}
	if raw.Version != "" {
		v, err := raw.Version.Int64()
		if err != nil {
			return nil, fmt.Errorf("incident version %q is not an integer", raw.Version)
		}
		ref.Version = v
	}
	return ref, nil
}
