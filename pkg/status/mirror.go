package status

import "time"

// Mirror is the state of an xsoar sink's bi-directional mirroring (issue 20).
type Mirror struct {
	Enabled bool `json:"enabled"`
	// ToXSOAR and ToWiz count the actions applied in each direction (closes, reopens, notes).
	ToXSOAR int64 `json:"to_xsoar"`
	ToWiz   int64 `json:"to_wiz"`
	// Refused counts actions the other side refused for good (given up); Errors those that failed
	// for now and are retried.
	Refused     int64     `json:"refused"`
	Errors      int64     `json:"errors"`
	LastAction  time.Time `json:"last_action,omitzero"`
	LastRefusal string    `json:"last_refusal,omitempty"`
	// LastPoll is when XSOAR was last asked what changed; LastPollError why that failed.
	LastPoll      time.Time `json:"last_poll,omitzero"`
	LastPollError string    `json:"last_poll_error,omitempty"`
}

// EnableMirror marks sink as mirroring.
func (t *Tracker) EnableMirror(sink string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sink(sink).Mirror.Enabled = true
}

// MirrorAction records one mirrored action of sink (action "poll" records a poll of XSOAR);
// direction is "to_xsoar" or "to_wiz", result "ok", "refused" or "error".
func (t *Tracker) MirrorAction(sink, direction, action, result string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := &t.sink(sink).Mirror
	m.Enabled = true
	now := t.now()
	if action == "poll" {
		m.LastPoll, m.LastPollError = now, ""
		if err != nil {
			m.LastPollError = err.Error()
		}
		return
	}
	switch result {
	case "ok":
		m.LastAction = now
		if direction == "to_wiz" {
			m.ToWiz++
		} else {
			m.ToXSOAR++
		}
	case "refused":
		m.Refused++
		if err != nil {
			m.LastRefusal = direction + " " + action + ": " + err.Error()
		}
	default:
		m.Errors++
	}
}
