package feed

import (
	"fmt"
	"time"

	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// EmitInput is one event to commit: the issue as fetched, its mapped incident JSON, and the incident's
// previous record (nil for a `created`), as found by id (store.Tx.FindIncident).
type EmitInput struct {
	Instance string
	Kind     string // incident.KindCreated or incident.KindUpdated
	Issue    *wiz.Issue
	Incident []byte // the mapped incident's JSON
	Packed   []byte // optional: Incident packed by store.AppendPackedIncident outside the transaction
	Previous *store.IncidentRecord
	Sinks    []string
	Now      time.Time
	// Arena, when set, is a buffer the event line is appended to (and left extended), instead of a
	// buffer of its own; it must not be modified until the transaction ends.
	Arena *[]byte
}

// Emit records an event inside tx: the incident record is upserted (status of this event, freshest
// JSON, version bumped) and the event line is appended to every sink's outbox. The event id is fixed
// here, once, so every sink and every retry sees the same one (DESIGN.md §2.8).
func Emit(tx *store.Tx, in EmitInput) error { return emit(tx, in, nil) }

// emit is Emit with, optionally, what the mapper prepared of the issue's created event (used only
// when the event is a created one).
func emit(tx *store.Tx, in EmitInput, prepared *preparedEvent) error {
	is := in.Issue
	if in.Kind != incident.KindCreated {
		prepared = nil
	}
	var id string
	switch {
	case prepared != nil:
		id = prepared.id
	case in.Kind == incident.KindUpdated:
		id = incident.EventID(in.Instance, is.ID, in.Kind, is.StatusChangedAt)
	default:
		id = incident.EventID(in.Instance, is.ID, in.Kind, nil)
	}
	arena := in.Arena
	if arena == nil {
		own := make([]byte, 0, len(in.Incident)+257)
		arena = &own
	}
	start := len(*arena)
	header := EventHeader{
		EventID:     id,
		Kind:        in.Kind,
		Instance:    in.Instance,
		IssueID:     is.ID,
		IssueStatus: is.Status,
		EmittedAt:   in.Now,
	}
	rec := in.Previous
	if rec == nil {
		// An incident is keyed by the createdAt it is first seen with (no later than now +
		// MaxClockSkew); a known one keeps its key whatever createdAt Wiz sends later (the store
		// finds it by id: store.Tx.FindIncident).
		rec = &store.IncidentRecord{Instance: in.Instance, IssueID: is.ID, FirstSeen: in.Now,
			CreatedAt: incidentKeyTime(is.CreatedAt, in.Now)}
	}
	rec.Status = is.Status
	rec.StatusChangedAt = is.StatusChangedAt
	rec.Incident = in.Incident
	rec.PackedIncident = in.Packed
	rec.Version++
	rec.LastEventID = id
	rec.UpdatedAt = in.Now
	rec.ClosedAt = nil
	if is.Status == "RESOLVED" || is.Status == "REJECTED" {
		closed := in.Now
		if is.StatusChangedAt != nil {
			closed = *is.StatusChangedAt
		}
		rec.ClosedAt = &closed
	}
	if len(in.Packed) > 0 {
		// The outbox keeps the line's prefix and suffix, and refers to the incident as the store
		// keeps it (already compressed): each incident is written once per page commit.
		var pb [320]byte
		var prefix []byte
		if prepared != nil {
			prefix = appendEmittedAt(append(pb[:0], prepared.head...), in.Now)
		} else {
			prefix = AppendEventPrefix(pb[:0], header)
		}
		if err := tx.PutIncidentAndEnqueue(rec, in.Sinks, prefix, []byte(eventSuffix), arena); err != nil {
			return fmt.Errorf("store event %s: %w", id, err)
		}
		return nil
	}
	line := AppendEvent(store.AppendEventBuffer(*arena), header, in.Incident)
	*arena = line
	line = line[start:len(line):len(line)]
	if err := tx.PutIncident(rec); err != nil {
		return fmt.Errorf("store incident %s: %w", is.ID, err)
	}
	if err := tx.EnqueueOwned(in.Sinks, line); err != nil {
		return fmt.Errorf("enqueue event %s: %w", id, err)
	}
	return nil
}
