package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// IncidentRecord is wizfetch's memory of one issue's incident: what it last emitted, for dedup of
// status changes (DESIGN.md §3), and the freshest incident JSON, for replay and sinks.
type IncidentRecord struct {
	Instance string
	IssueID  string
	// Status is the issue_status of the LAST EVENT emitted for this incident.
	Status string
	// StatusChangedAt is the issue's statusChangedAt in the last event.
	StatusChangedAt *time.Time
	// CreatedAt is the issue's createdAt.
	CreatedAt time.Time
	// Incident is the latest incident JSON (mapped from the freshest issue seen).
	Incident []byte
	// Version is bumped on every event.
	Version int
	// LastEventID is the event_id of the last event.
	LastEventID string
	// FirstSeen and UpdatedAt are local clock times.
	FirstSeen time.Time
	UpdatedAt time.Time
	// ClosedAt is when the issue was last seen RESOLVED or REJECTED (drives retention); nil if open.
	ClosedAt *time.Time
}

// incidentHeader is the JSON header of a stored incident; the incident JSON follows it verbatim.
type incidentHeader struct {
	Status          string     `json:"status"`
	StatusChangedAt *time.Time `json:"status_changed_at,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	Version         int        `json:"version"`
	LastEventID     string     `json:"last_event_id,omitempty"`
	FirstSeen       time.Time  `json:"first_seen"`
	UpdatedAt       time.Time  `json:"updated_at"`
	ClosedAt        *time.Time `json:"closed_at,omitempty"`
}

// Incident returns a copy of the record of (instance, issueID); ok is false when there is none.
func (tx *Tx) Incident(instance, issueID string) (*IncidentRecord, bool, error) {
	if err := checkIncident(instance, issueID); err != nil {
		return nil, false, fmt.Errorf("read incident: %w", err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return nil, false, fmt.Errorf("read incident: %w", err)
	}
	raw := b.Get(joinKey(0, instance, issueID))
	if raw == nil {
		return nil, false, nil
	}
	rec, err := decodeIncident(instance, issueID, raw)
	if err != nil {
		return nil, false, err
	}
	return rec, true, nil
}

// HasIncident reports whether an incident exists for (instance, issueID), without decoding it.
func (tx *Tx) HasIncident(instance, issueID string) (bool, error) {
	if err := checkIncident(instance, issueID); err != nil {
		return false, fmt.Errorf("read incident: %w", err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return false, fmt.Errorf("read incident: %w", err)
	}
	return b.Get(joinKey(0, instance, issueID)) != nil, nil
}

// PutIncident inserts or replaces rec (keyed by rec.Instance, rec.IssueID). The store keeps its own
// copy of rec.Incident.
func (tx *Tx) PutIncident(rec *IncidentRecord) error {
	if rec == nil {
		return fmt.Errorf("write incident: nil record")
	}
	if err := checkIncident(rec.Instance, rec.IssueID); err != nil {
		return fmt.Errorf("write incident: %w", err)
	}
	if err := tx.writable(); err != nil {
		return fmt.Errorf("write incident %s/%s: %w", rec.Instance, rec.IssueID, err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return fmt.Errorf("write incident: %w", err)
	}
	closed, err := tx.bucket(bucketIncidentsClosed)
	if err != nil {
		return fmt.Errorf("write incident: %w", err)
	}
	key := joinKey(0, rec.Instance, rec.IssueID)
	var oldClosed *time.Time
	if old := b.Get(key); old != nil {
		h, _, err := decodeIncidentHeader(old)
		if err != nil {
			return fmt.Errorf("write incident %s/%s: previous record: %w", rec.Instance, rec.IssueID, err)
		}
		oldClosed = h.ClosedAt
	} else {
		tx.addCounter(incidentCounter(rec.Instance), 1)
	}
	header, err := json.Marshal(incidentHeader{
		Status:          rec.Status,
		StatusChangedAt: rec.StatusChangedAt,
		CreatedAt:       rec.CreatedAt,
		Version:         rec.Version,
		LastEventID:     rec.LastEventID,
		FirstSeen:       rec.FirstSeen,
		UpdatedAt:       rec.UpdatedAt,
		ClosedAt:        rec.ClosedAt,
	})
	if err != nil {
		return fmt.Errorf("encode incident %s/%s: %w", rec.Instance, rec.IssueID, err)
	}
	if err := b.Put(key, frame(header, packNonEmpty(rec.Incident))); err != nil {
		return fmt.Errorf("write incident %s/%s: %w", rec.Instance, rec.IssueID, err)
	}
	// Keep the retention index in step with ClosedAt.
	if !sameClosed(oldClosed, rec.ClosedAt) {
		if oldClosed != nil {
			if err := closed.Delete(closedKey(*oldClosed, key)); err != nil {
				return fmt.Errorf("write incident %s/%s: retention index: %w", rec.Instance, rec.IssueID, err)
			}
			tx.addCounter(counterClosed, -1)
		}
		if rec.ClosedAt != nil {
			if err := closed.Put(closedKey(*rec.ClosedAt, key), nil); err != nil {
				return fmt.Errorf("write incident %s/%s: retention index: %w", rec.Instance, rec.IssueID, err)
			}
			tx.addCounter(counterClosed, 1)
		}
	}
	return nil
}

// ForEachIncident calls fn with a copy of every incident of instance ("" = every instance), ordered by
// instance then issue id. An error from fn stops the walk and is returned as is.
func (tx *Tx) ForEachIncident(instance string, fn func(*IncidentRecord) error) error {
	var prefix []byte
	if instance != "" {
		if err := checkName("instance", instance); err != nil {
			return fmt.Errorf("list incidents: %w", err)
		}
		prefix = append(joinKey(1, instance), sep)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return fmt.Errorf("list incidents: %w", err)
	}
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		inst, id, ok := splitKey2(k)
		if !ok {
			return fmt.Errorf("list incidents: malformed key %q", k)
		}
		rec, err := decodeIncident(inst, id, v)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// IncidentCount returns how many incidents instance holds ("" = all instances), in O(instances).
func (tx *Tx) IncidentCount(instance string) (int, error) {
	if instance != "" {
		n, err := tx.counter(incidentCounter(instance))
		if err != nil {
			return 0, fmt.Errorf("count incidents: %w", err)
		}
		return n, nil
	}
	st, err := tx.stats()
	if err != nil {
		return 0, fmt.Errorf("count incidents: %w", err)
	}
	total := 0
	for _, n := range st.Incidents {
		total += n
	}
	return total, nil
}

// PruneClosedIncidents deletes the incidents whose ClosedAt is before `before` (microsecond
// precision) and returns how many. It visits only what it deletes.
func (tx *Tx) PruneClosedIncidents(before time.Time) (int, error) {
	if err := tx.writable(); err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	closed, err := tx.bucket(bucketIncidentsClosed)
	if err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	limit := timeKey(before)
	var doomed [][]byte
	c := closed.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, limit[:]) < 0; k, _ = c.Next() {
		doomed = append(doomed, bytes.Clone(k))
	}
	n := 0
	for _, k := range doomed {
		if len(k) < 8 {
			return n, fmt.Errorf("prune incidents: malformed index key %q", k)
		}
		if err := closed.Delete(k); err != nil {
			return n, fmt.Errorf("prune incidents: %w", err)
		}
		tx.addCounter(counterClosed, -1)
		ik := k[8:]
		v := b.Get(ik)
		if v == nil {
			continue
		}
		h, _, err := decodeIncidentHeader(v)
		if err != nil {
			return n, fmt.Errorf("prune incidents: %q: %w", ik, err)
		}
		if h.ClosedAt == nil {
			continue // reopened: the index entry was stale
		}
		if tk := timeKey(*h.ClosedAt); !bytes.Equal(tk[:], k[:8]) {
			continue
		}
		if err := b.Delete(ik); err != nil {
			return n, fmt.Errorf("prune incidents: %w", err)
		}
		inst, _, _ := splitKey2(ik)
		tx.addCounter(incidentCounter(inst), -1)
		n++
	}
	return n, nil
}

const counterClosed = "closed"

func incidentCounter(instance string) string { return "incidents\x00" + instance }

func closedKey(t time.Time, incidentKey []byte) []byte {
	tk := timeKey(t)
	k := make([]byte, 0, 8+len(incidentKey))
	k = append(k, tk[:]...)
	return append(k, incidentKey...)
}

func sameClosed(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return timeKey(*a) == timeKey(*b)
}

func decodeIncidentHeader(raw []byte) (incidentHeader, []byte, error) {
	var h incidentHeader
	hdr, payload, err := unframe(raw)
	if err != nil {
		return h, nil, err
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		return h, nil, fmt.Errorf("decode header: %w", err)
	}
	return h, payload, nil
}

func decodeIncident(instance, issueID string, raw []byte) (*IncidentRecord, error) {
	h, payload, err := decodeIncidentHeader(raw)
	if err != nil {
		return nil, fmt.Errorf("decode incident %s/%s: %w", instance, issueID, err)
	}
	rec := &IncidentRecord{
		Instance:        instance,
		IssueID:         issueID,
		Status:          h.Status,
		StatusChangedAt: h.StatusChangedAt,
		CreatedAt:       h.CreatedAt,
		Version:         h.Version,
		LastEventID:     h.LastEventID,
		FirstSeen:       h.FirstSeen,
		UpdatedAt:       h.UpdatedAt,
		ClosedAt:        h.ClosedAt,
	}
	if len(payload) > 0 {
		if rec.Incident, err = unpack(payload); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

func checkIncident(instance, issueID string) error {
	if err := checkName("instance", instance); err != nil {
		return err
	}
	return checkName("issue id", issueID)
}
