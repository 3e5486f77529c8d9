package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Mirror state: what an xsoar sink's bi-directional mirroring (issue 20) knows and has decided,
// kept in the sinkstate bucket under the sink's name (sink 0 key), so that it is dropped or kept
// with the sink's other state and needs no schema change:
//
//	"mirror:inc:" incidentID                     -> JSON MirrorIncident
//	"mirror:pending:" incidentID                 -> JSON MirrorAction (decided, not known applied)
//	"mirror:note:" instance 0 issueID 0 noteID    -> "1" (a Wiz note now a war-room entry)
//	"mirror:checkpoint"                          -> JSON MirrorCheckpoint
//
// Crash safety comes from the order callers follow: a decision is written (PutMirrorAction) before
// the change is sent, and cleared together with the new known state after the answer
// (CompleteMirrorAction, one transaction); a restart finds the decision and first checks whether
// the other side already shows it, so a kill -9 at any point neither loses nor repeats a change.
const (
	mirrorIncPrefix     = "mirror:inc:"
	mirrorPendingPrefix = "mirror:pending:"
	mirrorNotePrefix    = "mirror:note:"
	mirrorCheckpointKey = "mirror:checkpoint"
)

// MirrorIncident is what the mirror knows of one XSOAR incident of a sink.
type MirrorIncident struct {
	IncidentID string `json:"incident_id"`
	Instance   string `json:"instance"`
	IssueID    string `json:"issue_id"`
	// Closed is the XSOAR state as wizfetch last wrote or accepted it (true: Done or Archived).
	// The mirror acts on a change of this state made by someone else.
	Closed bool `json:"closed"`
	// Version is the incident version that state was seen at (after wizfetch's own close or
	// reopen, the version XSOAR answered), for the record.
	Version int64 `json:"version"`
	// ByWizfetch tells whether wizfetch made the last change of Closed (a close or reopen it sent).
	ByWizfetch bool `json:"by_wizfetch,omitempty"`
	// Expect is the state wizfetch is about to set (ExpectClosed, ExpectOpen), written before the
	// request and cleared after the answer: an incident found in that state was changed by
	// wizfetch even if a crash kept Closed from being updated.
	Expect    string    `json:"expect,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MirrorIncident.Expect values.
const (
	ExpectClosed = "closed"
	ExpectOpen   = "open"
)

// MirrorAction is a decided change of a Wiz issue, written before it is sent.
type MirrorAction struct {
	IncidentID string `json:"incident_id"`
	Instance   string `json:"instance"`
	IssueID    string `json:"issue_id"`
	// Kind is "close" (resolve a THREAT_DETECTION, reject anything else) or "reopen".
	Kind   string `json:"kind"`
	Reason string `json:"reason,omitempty"` // the Wiz resolution reason of a close
	Note   string `json:"note,omitempty"`
	// Token is unique to this decision and is part of Note: a restart finds out whether the note
	// already reached Wiz by looking for it.
	Token string `json:"token"`
	// Closed and Version are the XSOAR state that prompted the decision.
	Closed    bool      `json:"closed"`
	Version   int64     `json:"version"`
	Actor     string    `json:"actor,omitempty"` // the XSOAR user who closed or reopened
	Attempts  int       `json:"attempts"`
	DecidedAt time.Time `json:"decided_at"`
}

// MirrorCheckpoint is how far a sink's poll of XSOAR got: incidents modified at or after Since
// are asked for next.
type MirrorCheckpoint struct {
	Since     time.Time `json:"since"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (tx *Tx) getMirrorJSON(sink, key string, v any) (bool, error) {
	raw, err := tx.SinkState(sink, key)
	if err != nil || raw == nil {
		return false, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode mirror state %q of sink %s: %w", key, sink, err)
	}
	return true, nil
}

func (tx *Tx) putMirrorJSON(sink, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode mirror state %q of sink %s: %w", key, sink, err)
	}
	return tx.PutSinkState(sink, key, b)
}

// MirrorIncident returns what sink's mirror knows of XSOAR incident id, nil when nothing.
func (tx *Tx) MirrorIncident(sink, id string) (*MirrorIncident, error) {
	var m MirrorIncident
	ok, err := tx.getMirrorJSON(sink, mirrorIncPrefix+id, &m)
	if err != nil || !ok {
		return nil, err
	}
	return &m, nil
}

// PutMirrorIncident stores m (keyed by m.IncidentID).
func (tx *Tx) PutMirrorIncident(sink string, m MirrorIncident) error {
	if m.IncidentID == "" {
		return fmt.Errorf("write mirror state of sink %s: empty incident id", sink)
	}
	return tx.putMirrorJSON(sink, mirrorIncPrefix+m.IncidentID, m)
}

// MirrorAction returns the pending decision about incident id, nil when none.
func (tx *Tx) MirrorAction(sink, id string) (*MirrorAction, error) {
	var a MirrorAction
	ok, err := tx.getMirrorJSON(sink, mirrorPendingPrefix+id, &a)
	if err != nil || !ok {
		return nil, err
	}
	return &a, nil
}

// PutMirrorAction records a decision (keyed by a.IncidentID), replacing any earlier one.
func (tx *Tx) PutMirrorAction(sink string, a MirrorAction) error {
	if a.IncidentID == "" {
		return fmt.Errorf("write mirror decision of sink %s: empty incident id", sink)
	}
	return tx.putMirrorJSON(sink, mirrorPendingPrefix+a.IncidentID, a)
}

// CompleteMirrorAction clears the decision about m's incident and stores m, together.
func (tx *Tx) CompleteMirrorAction(sink string, m MirrorIncident) error {
	if err := tx.PutSinkState(sink, mirrorPendingPrefix+m.IncidentID, nil); err != nil {
		return err
	}
	return tx.PutMirrorIncident(sink, m)
}

// MirrorActions returns every pending decision of sink, in incident-id byte order.
func (tx *Tx) MirrorActions(sink string) ([]MirrorAction, error) {
	if err := checkName("sink", sink); err != nil {
		return nil, fmt.Errorf("read mirror decisions: %w", err)
	}
	b, err := tx.bucket(bucketSinkState)
	if err != nil {
		return nil, fmt.Errorf("read mirror decisions of %s: %w", sink, err)
	}
	prefix := joinKey(0, sink, mirrorPendingPrefix)
	var out []MirrorAction
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var a MirrorAction
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, fmt.Errorf("decode mirror decision %q of sink %s: %w", k[len(prefix):], sink, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func mirrorNoteKey(instance, issueID, noteID string) string {
	return mirrorNotePrefix + instance + string(rune(sep)) + issueID + string(rune(sep)) + noteID
}

// MirroredNote reports whether Wiz note noteID of the issue is already a war-room entry.
func (tx *Tx) MirroredNote(sink, instance, issueID, noteID string) (bool, error) {
	raw, err := tx.SinkState(sink, mirrorNoteKey(instance, issueID, noteID))
	return raw != nil, err
}

// PutMirroredNote records that Wiz note noteID of the issue is a war-room entry now.
func (tx *Tx) PutMirroredNote(sink, instance, issueID, noteID string) error {
	return tx.PutSinkState(sink, mirrorNoteKey(instance, issueID, noteID), []byte("1"))
}

// MirrorCheckpoint returns sink's poll checkpoint; the zero value when there is none.
func (tx *Tx) MirrorCheckpoint(sink string) (MirrorCheckpoint, error) {
	var cp MirrorCheckpoint
	_, err := tx.getMirrorJSON(sink, mirrorCheckpointKey, &cp)
	return cp, err
}

// PutMirrorCheckpoint stores sink's poll checkpoint.
func (tx *Tx) PutMirrorCheckpoint(sink string, cp MirrorCheckpoint) error {
	return tx.putMirrorJSON(sink, mirrorCheckpointKey, cp)
}
