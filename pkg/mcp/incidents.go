package mcp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// Paging bounds of list_incidents.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
	// maxScan bounds the incidents one list_incidents call reads when filters pass over most of
	// them; the answer then carries a cursor to go on from where it stopped.
	maxScan = 20_000
)

type listIncidentsArgs struct {
	Instance string   `json:"instance,omitempty" jsonschema:"only incidents of this Wiz tenant (instance)"`
	Status   []string `json:"status,omitempty" jsonschema:"only these issue statuses: OPEN, IN_PROGRESS, RESOLVED, REJECTED"`
	Severity []string `json:"severity,omitempty" jsonschema:"only these severities: CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL"`
	Type     []string `json:"type,omitempty" jsonschema:"only these issue types: TOXIC_COMBINATION, THREAT_DETECTION, CLOUD_CONFIGURATION"`
	Since    string   `json:"since,omitempty" jsonschema:"only incidents updated at or after this RFC 3339 time, e.g. 2025-01-02T15:04:05Z"`
	Limit    int      `json:"limit,omitempty" jsonschema:"how many incidents to return, 1 to 100 (default 20)"`
	After    string   `json:"after,omitempty" jsonschema:"the next cursor of the previous page"`
}

// IncidentSummary is one incident in list_incidents.
type IncidentSummary struct {
	Instance        string     `json:"instance"`
	IssueID         string     `json:"issue_id"`
	Status          string     `json:"status"`
	Severity        string     `json:"severity"`
	IssueType       string     `json:"issue_type"`
	Name            string     `json:"name"`
	IncidentType    string     `json:"incident_type"`
	Resource        string     `json:"resource,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	StatusChangedAt *time.Time `json:"status_changed_at,omitempty"`
}

// IncidentPage is the result of list_incidents.
type IncidentPage struct {
	Incidents []IncidentSummary `json:"incidents"`
	// Next is the cursor of the following page ("" on the last).
	Next string `json:"next"`
	// ScanLimited is true when the filters passed over so many incidents that the call stopped
	// reading; Next goes on from there.
	ScanLimited bool `json:"scan_limited,omitempty"`
}

func summarize(rec *store.IncidentRecord) IncidentSummary {
	doc := gjson.ParseBytes(rec.Incident)
	raw := gjson.Parse(doc.Get("rawJSON").String())
	return IncidentSummary{
		Instance: rec.Instance, IssueID: rec.IssueID, Status: rec.Status,
		Severity: raw.Get("severity").String(), IssueType: raw.Get("type").String(),
		Name: clip(doc.Get("name").String(), 200), IncidentType: doc.Get("type").String(),
		Resource:  clip(raw.Get("entitySnapshot.name").String(), 200),
		CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, StatusChangedAt: rec.StatusChangedAt,
	}
}

var errPageDone = errors.New("page done")

func (h *Handler) listIncidents(ctx context.Context, _ *user, in listIncidentsArgs) (any, error) {
	if h.opt.Store == nil {
		report(ctx, ResultError, errors.New("the store is not open"))
		return nil, errors.New("the store is not open")
	}
	limit := in.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 1 || limit > MaxListLimit {
		return nil, invalid(ctx, "limit: %d is not from 1 to %d", limit, MaxListLimit)
	}
	statuses, err := checkEnum(ctx, "status", in.Status, wizdef.Statuses())
	if err != nil {
		return nil, err
	}
	severities, err := checkEnum(ctx, "severity", in.Severity, wizdef.Severities())
	if err != nil {
		return nil, err
	}
	types, err := checkEnum(ctx, "type", in.Type, wizdef.IssueTypes())
	if err != nil {
		return nil, err
	}
	var since time.Time
	if in.Since != "" {
		if since, err = time.Parse(time.RFC3339Nano, in.Since); err != nil {
			return nil, invalid(ctx, "since: %q is not an RFC 3339 time (e.g. 2025-01-02T15:04:05Z)", clip(in.Since, 40))
		}
	}
	if in.Instance != "" && !slices.Contains(h.instances(), in.Instance) {
		return nil, invalid(ctx, "instance: unknown instance %q (configured: %s)", clip(in.Instance, 64), strings.Join(h.instances(), ", "))
	}
	var after *store.IncidentPos
	if in.After != "" {
		pos, ok := decodeCursor(in.After)
		if !ok {
			return nil, invalid(ctx, "after: is not a cursor returned in next")
		}
		after = &pos
	}

	page := IncidentPage{Incidents: []IncidentSummary{}}
	scanned := 0
	var last *store.IncidentRecord
	err = h.opt.Store.View(func(tx *store.Tx) error {
		return tx.ForEachIncidentAfter(in.Instance, after, func(rec *store.IncidentRecord) error {
			if len(page.Incidents) == limit {
				page.Next = encodeCursor(last)
				return errPageDone
			}
			if scanned++; scanned > maxScan {
				page.Next, page.ScanLimited = encodeCursor(last), true
				return errPageDone
			}
			last = rec
			if len(statuses) > 0 && !slices.Contains(statuses, rec.Status) || !since.IsZero() && rec.UpdatedAt.Before(since) {
				return nil
			}
			s := summarize(rec)
			if len(severities) > 0 && !slices.Contains(severities, s.Severity) || len(types) > 0 && !slices.Contains(types, s.IssueType) {
				return nil
			}
			page.Incidents = append(page.Incidents, s)
			return nil
		})
	})
	if err != nil && !errors.Is(err, errPageDone) {
		report(ctx, ResultError, err)
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return page, nil
}

// A cursor is the store position (instance, createdAt, issue id) of the last incident read.
func encodeCursor(rec *store.IncidentRecord) string {
	if rec == nil {
		return ""
	}
	raw := rec.Instance + "\x00" + strconv.FormatInt(rec.CreatedAt.UnixMicro(), 10) + "\x00" + rec.IssueID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(c string) (store.IncidentPos, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return store.IncidentPos{}, false
	}
	parts := strings.SplitN(string(raw), "\x00", 3)
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return store.IncidentPos{}, false
	}
	us, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return store.IncidentPos{}, false
	}
	return store.IncidentPos{Instance: parts[0], CreatedAt: time.UnixMicro(us), IssueID: parts[2]}, true
}

// IncidentDetail is the result of get_incident.
type IncidentDetail struct {
	Instance        string          `json:"instance"`
	IssueID         string          `json:"issue_id"`
	Status          string          `json:"status"`
	Version         int             `json:"version"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	FirstSeen       time.Time       `json:"first_seen"`
	StatusChangedAt *time.Time      `json:"status_changed_at,omitempty"`
	ClosedAt        *time.Time      `json:"closed_at,omitempty"`
	Incident        json.RawMessage `json:"incident"`
}

func (h *Handler) getIncident(ctx context.Context, _ *user, in issueArgs) (any, error) {
	if err := writeback.ValidateIssueID(in.IssueID); err != nil {
		return nil, invalid(ctx, "%s", err.Error())
	}
	if h.opt.Store == nil {
		report(ctx, ResultError, errors.New("the store is not open"))
		return nil, errors.New("the store is not open")
	}
	instances := h.instances()
	if in.Instance != "" {
		if !slices.Contains(instances, in.Instance) {
			return nil, invalid(ctx, "instance: unknown instance %q (configured: %s)", clip(in.Instance, 64), strings.Join(instances, ", "))
		}
		instances = []string{in.Instance}
	}
	id := strings.ToLower(strings.TrimSpace(in.IssueID))
	found, err := h.opt.Store.IncidentsByID(instances, id)
	switch {
	case err != nil:
		report(ctx, ResultError, err)
		return nil, fmt.Errorf("read incident: %w", err)
	case len(found) == 0:
		err := fmt.Errorf("wizfetch holds no incident for issue %s (get_issue reads Wiz itself)", id)
		report(ctx, ResultNotFound, err)
		return nil, err
	case len(found) > 1:
		return nil, invalid(ctx, "issue %s is in several instances: pass instance", id)
	}
	rec := found[0]
	return IncidentDetail{Instance: rec.Instance, IssueID: rec.IssueID, Status: rec.Status, Version: rec.Version,
		CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, FirstSeen: rec.FirstSeen,
		StatusChangedAt: rec.StatusChangedAt, ClosedAt: rec.ClosedAt, Incident: withoutRawJSON(rec.Incident)}, nil
}

// withoutRawJSON drops the incident's rawJSON (the whole issue, up to 1 MiB, as a string): get_issue
// reads the issue itself.
func withoutRawJSON(doc []byte) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(doc, &m) != nil {
		return json.RawMessage("null")
	}
	delete(m, "rawJSON")
	b, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}
