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
	Incident []byte // the mapped incident's JSON (incident.Mapper.MapJSON)
	Previous *store.IncidentRecord
	Sinks    []string
	Now      time.Time
}

// Emit records an event inside tx: the incident record is upserted (status of this event, freshest
// JSON, version bumped) and the event line (incident.Event.Line) is appended to every sink's outbox.
// The event id is fixed here, once, so every sink and every retry sees the same one (DESIGN.md §2.8).
func Emit(tx *store.Tx, in EmitInput) error {
	is := in.Issue
	ev := incident.NewEvent(in.Instance, in.Kind, is, in.Incident, in.Now)
	// Each line is a slice of its own: the outbox keeps it, and the incident JSON, as they are
	// until the commit (store.Tx.Enqueue, store.Tx.PutIncident).
	line, err := ev.Line()
	if err != nil {
		return fmt.Errorf("build event %s: %w", ev.EventID, err)
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
	rec.Version++
	rec.LastEventID = ev.EventID
	rec.UpdatedAt = in.Now
	rec.ClosedAt = nil
	if is.Status == "RESOLVED" || is.Status == "REJECTED" {
		closed := in.Now
		if is.StatusChangedAt != nil {
			closed = *is.StatusChangedAt
		}
		rec.ClosedAt = &closed
	}
	if err := tx.PutIncident(rec); err != nil {
		return fmt.Errorf("store incident %s: %w", is.ID, err)
	}
	for _, sink := range in.Sinks {
		if _, err := tx.Enqueue(sink, in.Instance, line); err != nil {
			return fmt.Errorf("enqueue event %s: %w", ev.EventID, err)
		}
	}
	return nil
}
