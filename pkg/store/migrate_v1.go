package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// incidentHeaderV1 is schema 1's JSON header of a stored incident; the packed incident JSON followed
// it in the same framed value. Only migrateIncidentsV1 reads it.
type incidentHeaderV1 struct {
	Status          string     `json:"status"`
	StatusChangedAt *time.Time `json:"status_changed_at,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	Version         int        `json:"version"`
	LastEventID     string     `json:"last_event_id,omitempty"`
	FirstSeen       time.Time  `json:"first_seen"`
	UpdatedAt       time.Time  `json:"updated_at"`
	ClosedAt        *time.Time `json:"closed_at,omitempty"`
}

// decodeIncidentV1 decodes one schema 1 incident value.
func decodeIncidentV1(instance, issueID string, raw []byte) (*IncidentRecord, error) {
	hdr, payload, err := unframe(raw)
	if err != nil {
		return nil, fmt.Errorf("decode schema 1 incident %s/%s: %w", instance, issueID, err)
	}
	var h incidentHeaderV1
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, fmt.Errorf("decode schema 1 incident %s/%s: header: %w", instance, issueID, err)
	}
	rec := &IncidentRecord{
		Instance: instance, IssueID: issueID, Status: h.Status, StatusChangedAt: h.StatusChangedAt,
		CreatedAt: h.CreatedAt, Version: h.Version, LastEventID: h.LastEventID, FirstSeen: h.FirstSeen,
		UpdatedAt: h.UpdatedAt, ClosedAt: h.ClosedAt,
	}
	if len(payload) > 0 {
		if rec.Incident, err = unpack(payload); err != nil {
			return nil, fmt.Errorf("decode schema 1 incident %s/%s: %w", instance, issueID, err)
		}
	}
	return rec, nil
}
