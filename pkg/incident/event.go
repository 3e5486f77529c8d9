package incident

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// Event kinds (DESIGN.md §6).
const (
	// KindCreated is the one event ever emitted for a new issue.
	KindCreated = "created"
	// KindUpdated is emitted once per status change of an issue that already has an incident.
	KindUpdated = "updated"
)

// EventNamespace is the UUIDv5 namespace of event ids. It is fixed forever: changing it would give
// every already-delivered event a new id and break sink-side dedup (DESIGN.md §2.8).
const EventNamespace = "de27c81c-e72e-4f5c-b221-c9ef8b04d845"

// eventNamespace is EventNamespace as a uuid.UUID (a function, not a mutable package variable).
func eventNamespace() uuid.UUID {
	return uuid.UUID{0xde, 0x27, 0xc8, 0x1c, 0xe7, 0x2e, 0x4f, 0x5c, 0xb2, 0x21, 0xc9, 0xef, 0x8b, 0x04, 0xd8, 0x45}
}

// Event is one entry of a sink's outbox and one line of the JSONL sink (DESIGN.md §6): the event's
// own fields, then its incident as the mapper encoded it (Mapper.MapJSON) or the store kept it.
// Field order is the JSON order; event_id comes first, because the JSONL sink's restart check reads
// only a line's first member.
type Event struct {
	EventID     string          `json:"event_id"`
	Kind        string          `json:"kind"`
	Instance    string          `json:"instance"`
	IssueID     string          `json:"issue_id"`
	IssueStatus string          `json:"issue_status"`
	EmittedAt   string          `json:"emitted_at"` // RFC 3339, UTC
	Incident    json.RawMessage `json:"incident"`
}

// eventHead is an Event without its incident, in the same order.
type eventHead struct {
	EventID     string `json:"event_id"`
	Kind        string `json:"kind"`
	Instance    string `json:"instance"`
	IssueID     string `json:"issue_id"`
	IssueStatus string `json:"issue_status"`
	EmittedAt   string `json:"emitted_at"`
}

// Line returns the event as one line of JSON, without the trailing newline, in a new slice: every
// event line is built here. The event's fields are marshalled (json.go), and the incident,
// marshalled already (Mapper.MapJSON), follows them as it is: the bytes are those of
// encoding/json's Marshal(e), without its second pass over the incident (it compacts and checks
// every json.RawMessage, which costs more than mapping the issue).
func (e *Event) Line() ([]byte, error) {
	if len(e.Incident) == 0 {
		return nil, fmt.Errorf("event %s of issue %.64q has no incident", e.EventID, e.IssueID)
	}
	head, err := marshalJSON(&eventHead{
		EventID: e.EventID, Kind: e.Kind, Instance: e.Instance, IssueID: e.IssueID,
		IssueStatus: e.IssueStatus, EmittedAt: e.EmittedAt,
	})
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.EventID, err)
	}
	const member = `,"incident":`
	dst := make([]byte, 0, len(head)+len(member)+len(e.Incident)+1)
	dst = append(dst, head[:len(head)-1]...) // without its closing brace
	dst = append(dst, member...)
	dst = append(dst, e.Incident...)
	return append(dst, '}'), nil
}

// EventID returns the stable id of an event (DESIGN.md §2.8): uuid.NewSHA1, in EventNamespace, of the
// instance, issue id, kind and statusChangedAt (RFC3339Nano in UTC, "" when nil). Each part is
// length-prefixed ("<len>:<part>"), so no two different tuples share a name whatever they contain.
// The same change seen by a push and by a pull gets the same id, and so does a retry or a replay.
// statusChangedAt is compared as an instant: the same time in another zone gives the same id.
func EventID(instance, issueID, kind string, statusChangedAt *time.Time) string {
	sca := ""
	if statusChangedAt != nil {
		sca = statusChangedAt.UTC().Format(time.RFC3339Nano)
	}
	name := make([]byte, 0, 16+len(instance)+len(issueID)+len(kind)+len(sca))
	for _, part := range [...]string{instance, issueID, kind, sca} {
		name = strconv.AppendInt(name, int64(len(part)), 10)
		name = append(name, ':')
		name = append(name, part...)
	}
	return uuid.NewSHA1(eventNamespace(), name).String()
}

// IssueEventID is the id of issue's event of kind: a `created` event is emitted once per issue, so
// its id leaves statusChangedAt out (a push and a pull of a new issue get the same id whatever
// status changes came between them); an `updated` one is emitted once per status change, so its id
// has the issue's statusChangedAt.
func IssueEventID(instance, kind string, issue *wiz.Issue) string {
	if kind == KindCreated {
		return EventID(instance, issue.ID, kind, nil)
	}
	return EventID(instance, issue.ID, kind, issue.StatusChangedAt)
}

// NewEvent builds the event of kind for issue, whose incident's JSON is incidentJSON, emitted at now
// (rendered in UTC, RFC 3339). Its id is IssueEventID's.
func NewEvent(instance, kind string, issue *wiz.Issue, incidentJSON []byte, now time.Time) Event {
	return Event{
		EventID:     IssueEventID(instance, kind, issue),
		Kind:        kind,
		Instance:    instance,
		IssueID:     issue.ID,
		IssueStatus: issue.Status,
		EmittedAt:   now.UTC().Format(time.RFC3339),
		Incident:    incidentJSON,
	}
}
