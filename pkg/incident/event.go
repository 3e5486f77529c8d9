package incident

import (
	"crypto/sha1"
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

// Event is one entry of a sink's outbox and one line of the JSONL sink (DESIGN.md §6). Field order is
// the JSON order.
type Event struct {
	EventID     string   `json:"event_id"`
	Kind        string   `json:"kind"`
	Instance    string   `json:"instance"`
	IssueID     string   `json:"issue_id"`
	IssueStatus string   `json:"issue_status"`
	EmittedAt   string   `json:"emitted_at"` // RFC 3339, UTC
	Incident    Incident `json:"incident"`
}

// EventID returns the stable id of an event (DESIGN.md §2.8): the UUIDv5, in EventNamespace, of the
// instance, issue id, kind and statusChangedAt (RFC3339Nano in UTC, "" when nil). Each part is
// length-prefixed ("<len>:<part>"), so no two different tuples share a name whatever they contain.
// The same change seen by a push and by a pull gets the same id, and so does a retry or a replay.
// statusChangedAt is compared as an instant: the same time in another zone gives the same id.
func EventID(instance, issueID, kind string, statusChangedAt *time.Time) string {
	// uuid.NewSHA1(eventNamespace(), name), without its allocations (a hash, its sum, the name):
	// the mapper computes one id per issue.
	var stack [192]byte
	buf := append(stack[:0], eventNamespaceBytes[:]...)
	var scaBuf [40]byte
	sca := scaBuf[:0]
	if statusChangedAt != nil {
		sca = statusChangedAt.UTC().AppendFormat(sca, time.RFC3339Nano)
	}
	for _, part := range [...]string{instance, issueID, kind} {
		buf = strconv.AppendInt(buf, int64(len(part)), 10)
		buf = append(buf, ':')
		buf = append(buf, part...)
	}
	buf = strconv.AppendInt(buf, int64(len(sca)), 10)
	buf = append(buf, ':')
	buf = append(buf, sca...)
	sum := sha1.Sum(buf)
	var id uuid.UUID
	copy(id[:], sum[:])
	id[6] = (id[6] & 0x0f) | 0x50 // version 5
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 4122 variant
	return id.String()
}

// eventNamespaceBytes is eventNamespace as an array, for EventID.
var eventNamespaceBytes = [16]byte(eventNamespace())

// NewEvent builds the event of kind for issue and its mapped incident, emitted at now (rendered in
// UTC, RFC 3339). The id uses issue.StatusChangedAt.
func NewEvent(instance, kind string, issue *wiz.Issue, inc Incident, now time.Time) Event {
	return Event{
		EventID:     EventID(instance, issue.ID, kind, issue.StatusChangedAt),
		Kind:        kind,
		Instance:    instance,
		IssueID:     issue.ID,
		IssueStatus: issue.Status,
		EmittedAt:   now.UTC().Format(time.RFC3339),
		Incident:    inc,
	}
}
