package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// Mirroring directions, actions and results: the label values of
// wizfetch_mirror_actions_total{sink,direction,action,result} and of the status page.
const (
	MirrorToXSOAR = "to_xsoar" // a Wiz change applied to the XSOAR incident (this file)
	MirrorToWiz   = "to_wiz"   // an XSOAR change applied to the Wiz issue (pkg/mirror)

	MirrorClose  = "close"
	MirrorReopen = "reopen"
	MirrorNote   = "note"

	MirrorOK      = "ok"      // applied
	MirrorRefused = "refused" // the other side refused it for good: logged, counted, not retried
	MirrorError   = "error"   // failed for now: retried (with the event, or at the next poll)
)

// MirrorNoteMarker starts every note wizfetch writes into Wiz from XSOAR; a Wiz note holding it
// is never mirrored back into the war room.
const MirrorNoteMarker = "[wizfetch:xsoar"

// MirrorObserver is told of every mirrored action; err is nil for MirrorOK.
type MirrorObserver func(direction, action, result string, err error)

// xsoarMirror is the Wiz → XSOAR half of bi-directional mirroring (issue 20), run by the xsoar
// sink after it delivered an event (the XSOAR → Wiz half is pkg/mirror, which reads XSOAR through
// ChangedIncidents). Per event, with the incident as XSOAR answered the create or update:
//
//   - The sink acts only when the incident shows the state wizfetch knows it in
//     (store.MirrorIncident.Closed): a close or reopen by an analyst that the poll has not yet
//     mirrored to Wiz is left to it, so neither side undoes the other.
//   - reopen (close_incidents): the issue is OPEN or IN_PROGRESS and the incident closed;
//   - notes (notes): each Wiz note not yet mirrored (by note id, store.MirroredNote) and not
//     written by wizfetch (MirrorNoteMarker) becomes a war-room entry tagged with its id;
//   - close (close_incidents): the issue is RESOLVED or REJECTED and the incident open; the close
//     reason is XSOAR's stock reason for the Wiz resolution reason, the notes name it.
//
// Crash safety: before a close or reopen the record's Expect says which state wizfetch is about
// to set, and after XSOAR's answer Closed takes it (two transactions). A restart, or the poll,
// that finds Expect matching the incident takes the change as wizfetch's own; the retried event
// sees the incident already in the wanted state and sends nothing, so a close is never sent
// twice. A note's entry is looked for in the war room before it is added again.
//
// A refusal (HTTP 4xx) is logged and counted and the event is still acknowledged: mirroring never
// dead-letters or blocks delivery. A transient failure fails the event, which the dispatcher
// retries (the incident update is idempotent).
type xsoarMirror struct {
	cfg        config.XSOARMirror
	base       string
	closeURL   string
	executeURL string
	entryURL   string
	observe    MirrorObserver
}

// newXSOARMirror returns the mirroring of cfg, nil when cfg has no mirror block.
func newXSOARMirror(cfg config.Sink, base string) (*xsoarMirror, error) {
	if cfg.Mirror == nil {
		return nil, nil
	}
	m := &xsoarMirror{cfg: *cfg.Mirror, base: base, observe: func(string, string, string, error) {}}
	var err error
	if m.closeURL, err = joinURL(base, "/incident/batchClose"); err != nil {
		return nil, err
	}
	if m.executeURL, err = joinURL(base, "/entry/execute/sync"); err != nil {
		return nil, err
	}
	if m.entryURL, err = joinURL(base, "/entry"); err != nil {
		return nil, err
	}
	return m, nil
}

// MirrorConfig returns the sink's mirror block, nil when it mirrors nothing.
func (x *XSOAR) MirrorConfig() *config.XSOARMirror {
	if x.mirror == nil {
		return nil
	}
	c := x.mirror.cfg
	return &c
}

// SetMirrorObserver sets the observer of mirrored actions. Call it before the first Deliver.
func (x *XSOAR) SetMirrorObserver(fn MirrorObserver) {
	if x.mirror != nil && fn != nil {
		x.mirror.observe = fn
	}
}

// mirrorIssue is the part of the issue (the event's rawJSON) mirroring reads.
type mirrorIssue struct {
	Status           string `json:"status"`
	Type             string `json:"type"`
	ResolutionReason string `json:"resolutionReason"`
	Notes            []struct {
		ID        string `json:"id"`
		CreatedAt string `json:"createdAt"`
		Text      string `json:"text"`
		User      *struct {
			Name  string `json:"name"`
			Email string `json:"email"`
		} `json:"user"`
		ServiceAccount *struct {
			Name string `json:"name"`
		} `json:"serviceAccount"`
	} `json:"notes"`
}

func parseMirrorIssue(ev eventLine) (mirrorIssue, error) {
	var inc struct {
		RawJSON string `json:"rawJSON"`
	}
	var iss mirrorIssue
	if err := json.Unmarshal(ev.Incident, &inc); err != nil {
		return iss, fmt.Errorf("event %s: incident: %w", ev.EventID, err)
	}
	if err := json.Unmarshal([]byte(inc.RawJSON), &iss); err != nil {
		return iss, fmt.Errorf("event %s: rawJSON: %w", ev.EventID, err)
	}
	return iss, nil
}

// KnownClosed returns the state wizfetch knows incident inc in: the record's, unless a change
// wizfetch was about to make (Expect) shows on the incident, which makes it wizfetch's own.
func KnownClosed(rec *store.MirrorIncident, inc XSOARIncident) bool {
	if rec.Expect != "" && (rec.Expect == store.ExpectClosed) == inc.Closed() {
		return inc.Closed()
	}
	return rec.Closed
}

// mirrorAfter runs the Wiz → XSOAR mirroring of ev, whose incident ref XSOAR answered with answer
// (created: wizfetch just created it).
func (x *XSOAR) mirrorAfter(ctx context.Context, ev eventLine, ref *xsoarRef, answer []byte, created bool) error {
	m := x.mirror
	if m == nil {
		return nil
	}
	inc, err := parseIncident(answer)
	if err != nil {
		if inc, err = x.readIncident(ctx, ref.ID); err != nil {
			return x.mirrorFailed(MirrorToXSOAR, "read", ev, err)
		}
	}
	iss, err := parseMirrorIssue(ev)
	if err != nil {
		x.log.Warn("not mirroring an event whose issue cannot be read", "issue_id", ev.IssueID, "err", err)
		return nil
	}
	rec, err := x.mirrorRecord(ev, inc, iss, created)
	if err != nil {
		return err
	}
	known := KnownClosed(rec, inc)
	settled := known == inc.Closed() // no analyst change waits for the poll
	wantClosed := wizdef.Closed(iss.Status)
	if m.cfg.CloseIncidents && settled && inc.Closed() && !wantClosed {
		got, err := x.mirrorChange(ctx, ev, inc, store.ExpectOpen, func() (XSOARIncident, error) { return x.reopenIncident(ctx, inc) })
		if err != nil {
			return x.mirrorFailed(MirrorReopen, "reopen", ev, err)
		}
		inc = got
	}
	if m.cfg.Notes {
		if err := x.mirrorNotes(ctx, ev, inc, iss); err != nil {
			return err
		}
	}
	if m.cfg.CloseIncidents && settled && !inc.Closed() && wantClosed {
		reason, notes := closeReasonFor(ev.IssueID, iss, x.now())
		_, err := x.mirrorChange(ctx, ev, inc, store.ExpectClosed, func() (XSOARIncident, error) {
			return x.closeIncident(ctx, inc.ID, reason, notes)
		})
		if err != nil {
			return x.mirrorFailed(MirrorClose, "close", ev, err)
		}
	}
	return nil
}

// mirrorRecord returns the record of inc, creating it when there is none: as XSOAR shows the
// incident when wizfetch just created it, else presumed in step with the issue (so that a close
// made in XSOAR before mirroring was on still reaches Wiz). A change wizfetch was about to make
// that shows on the incident is settled into Closed.
func (x *XSOAR) mirrorRecord(ev eventLine, inc XSOARIncident, iss mirrorIssue, created bool) (*store.MirrorIncident, error) {
	var rec *store.MirrorIncident
	err := x.st.Update(func(tx *store.Tx) error {
		var err error
		if rec, err = tx.MirrorIncident(x.name, inc.ID); err != nil {
			return err
		}
		switch {
		case rec == nil:
			closed := wizdef.Closed(iss.Status)
			if created {
				closed = inc.Closed()
			}
			rec = &store.MirrorIncident{IncidentID: inc.ID, Closed: closed, Version: inc.Version}
		case rec.Expect != "" && (rec.Expect == store.ExpectClosed) == inc.Closed():
			rec.Closed, rec.Expect, rec.ByWizfetch, rec.Version = inc.Closed(), "", true, inc.Version
		case rec.Instance == ev.Instance && rec.IssueID == ev.IssueID:
			return nil // nothing new to write
		}
		rec.Instance, rec.IssueID, rec.UpdatedAt = ev.Instance, ev.IssueID, x.now().UTC()
		return tx.PutMirrorIncident(x.name, *rec)
	})
	if err != nil {
		return nil, fmt.Errorf("mirror state of incident %s: %w", inc.ID, err)
	}
	return rec, nil
}

// mirrorChange records that wizfetch is about to set incident inc to expect, runs change, and
// records the state XSOAR answered.
func (x *XSOAR) mirrorChange(ctx context.Context, ev eventLine, inc XSOARIncident, expect string, change func() (XSOARIncident, error)) (XSOARIncident, error) {
	err := x.st.Update(func(tx *store.Tx) error {
		rec, err := tx.MirrorIncident(x.name, inc.ID)
		if err != nil || rec == nil {
			return err
		}
		rec.Expect = expect
		return tx.PutMirrorIncident(x.name, *rec)
	})
	if err != nil {
		return inc, fmt.Errorf("mirror state of incident %s: %w", inc.ID, err)
	}
	got, cerr := change()
	err = x.st.Update(func(tx *store.Tx) error {
		rec, err := tx.MirrorIncident(x.name, inc.ID)
		if err != nil || rec == nil {
			return err
		}
		if cerr != nil && !refused(cerr) {
			return nil // unknown outcome: Expect stays for the retry or the poll to settle
		}
		rec.Expect = ""
		if cerr == nil {
			rec.Closed, rec.Version, rec.ByWizfetch, rec.UpdatedAt = got.Closed(), got.Version, true, x.now().UTC()
		}
		return tx.PutMirrorIncident(x.name, *rec)
	})
	if cerr != nil {
		return inc, cerr
	}
	if err != nil {
		return inc, fmt.Errorf("mirror state of incident %s: %w", inc.ID, err)
	}
	// The close or reopen bumped the version: keep the issue → incident map current, so that the
	// next update does not start with a version conflict.
	key := "xsoar:" + ev.Instance + ":" + ev.IssueID
	ref, err := x.loadRef(key)
	if err != nil {
		return got, err
	}
	extra := ""
	if ref != nil {
		extra = ref.Extra
	}
	if err := x.saveRef(key, &xsoarRef{ID: got.ID, Version: got.Version, Extra: extra}); err != nil {
		return got, err
	}
	action := MirrorClose
	if expect == store.ExpectOpen {
		action = MirrorReopen
	}
	x.log.Info("mirrored to XSOAR", "action", action, "issue_id", ev.IssueID, "incident_id", inc.ID, "version", got.Version)
	x.mirror.observe(MirrorToXSOAR, action, MirrorOK, nil)
	return got, nil
}

// mirrorFailed logs and counts a failed action: a refusal is given up (nil: the event is
// delivered), anything else fails the event so that it is retried.
func (x *XSOAR) mirrorFailed(action, what string, ev eventLine, err error) error {
	if refused(err) {
		x.log.Warn("XSOAR refused a mirrored change; not retrying it", "action", what, "issue_id", ev.IssueID, "err", err)
		x.mirror.observe(MirrorToXSOAR, action, MirrorRefused, err)
		return nil
	}
	x.mirror.observe(MirrorToXSOAR, action, MirrorError, err)
	return fmt.Errorf("mirror %s of issue %s: %w", what, ev.IssueID, err)
}

// mirrorNotes adds each new Wiz note of iss to the war room of inc, once.
func (x *XSOAR) mirrorNotes(ctx context.Context, ev eventLine, inc XSOARIncident, iss mirrorIssue) error {
	type note struct{ id, text string }
	var pending []note
	err := x.st.View(func(tx *store.Tx) error {
		for _, n := range iss.Notes {
			if n.ID == "" || strings.TrimSpace(n.Text) == "" || strings.Contains(n.Text, MirrorNoteMarker) {
				continue
			}
			done, err := tx.MirroredNote(x.name, ev.Instance, ev.IssueID, n.ID)
			if err != nil {
				return err
			}
			if !done {
				author := "Wiz"
				switch {
				case n.User != nil && n.User.Name != "":
					author = n.User.Name
				case n.ServiceAccount != nil && n.ServiceAccount.Name != "":
					author = n.ServiceAccount.Name + " (service account)"
				}
				text := fmt.Sprintf("**Wiz note** by %s, %s\n\n%s\n\n_%s, mirrored by wizfetch)_", author, n.CreatedAt, n.Text, noteTag(n.ID))
				pending = append(pending, note{id: n.ID, text: text})
			}
		}
		return nil
	})
	if err != nil || len(pending) == 0 {
		if err != nil {
			return fmt.Errorf("read mirrored notes of issue %s: %w", ev.IssueID, err)
		}
		return nil
	}
	// A crash between an entry and its record would add it twice: look in the war room first.
	existing, err := x.entryContents(ctx, investigationOf(inc))
	if err != nil {
		return x.mirrorFailed(MirrorNote, "note", ev, err)
	}
	for _, n := range pending {
		if !containsAny(existing, noteTag(n.id)) {
			if err := x.addEntry(ctx, investigationOf(inc), n.text); err != nil {
				if ferr := x.mirrorFailed(MirrorNote, "note", ev, err); ferr != nil || refused(err) {
					return ferr
				}
			}
			x.mirror.observe(MirrorToXSOAR, MirrorNote, MirrorOK, nil)
		}
		err := x.st.Update(func(tx *store.Tx) error { return tx.PutMirroredNote(x.name, ev.Instance, ev.IssueID, n.id) })
		if err != nil {
			return fmt.Errorf("record mirrored note %s of issue %s: %w", n.id, ev.IssueID, err)
		}
	}
	return nil
}

// noteTag identifies the war-room entry of a Wiz note.
func noteTag(id string) string { return "(Wiz note " + id }

// closeReasonFor returns the XSOAR close reason and notes for an issue Wiz resolved or rejected:
// XSOAR's stock reasons (False Positive, Resolved, Other) for the Wiz resolution reason.
func closeReasonFor(issueID string, iss mirrorIssue, now time.Time) (string, string) {
	reason := "Other"
	switch iss.ResolutionReason {
	case wizdef.ReasonFalsePositive:
		reason = "False Positive"
	case wizdef.ReasonIssueFixed, wizdef.ReasonObjectDeleted:
		reason = "Resolved"
	}
	why := iss.ResolutionReason
	if why == "" {
		why = "no resolution reason given"
	}
	return reason, fmt.Sprintf("Wiz issue %s is %s in Wiz (%s). Closed by wizfetch at %s.", issueID, iss.Status, why,
		now.UTC().Format(time.RFC3339))
}
