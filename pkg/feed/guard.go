package feed

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/classify"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// What Wiz returns is data to check, not to trust (issue 17): no node may crash the daemon, exhaust
// its memory, stall a feed for good or break exactly-once. This file holds the feeds' (and pushes')
// answers to the three ways a node went wrong in the field:
//
//   - A timestamp from the future (createdAt 2999-01-01) moved the watermark there for good, so no new
//     issue was ever fetched. A timestamp beyond now + MaxClockSkew never moves a watermark; the
//     issue itself is processed, and its incident is keyed no later than now + MaxClockSkew.
//   - A node with a null status, severity or type became an incident (status "", severity 0) that
//     passed every filter, and the real data, later, was deduplicated away. Such a node is rejected:
//     recorded in the store (store.RejectedIssue, with the raw node), counted, logged at WARN; no
//     incident, no event and no dedup mark stand in the way of a later good version.
//   - One huge node cost gigabytes and wrote event lines as large. The mapper clips (see
//     incident.MaxFieldBytes); an incident that stays too large, or a mapping that fails or panics, is
//     rejected as above.

// MaxClockSkew is how far past the local clock a Wiz timestamp may be and still move a watermark
// (clocks drift; Wiz's are not ours). Beyond it a timestamp is bogus for the watermark's purpose:
// the issue is processed, the watermark stays, Result.FutureTimestamps counts it.
const MaxClockSkew = 10 * time.Minute

// Reasons an issue is rejected (store.RejectedIssue.Reason, Result.Rejected).
const (
	RejectIncomplete = "incomplete"     // a required field is null or malformed (wiz.Issue.Defects)
	RejectTooLarge   = "too_large"      // the incident stays above incident.MaxIncidentBytes once clipped
	RejectMapping    = "mapping_failed" // mapping or encoding the incident failed (or panicked)
)

// maxDetail bounds a rejection's detail (an error or panic message may quote data).
const maxDetail = 512

// rejection says why a node is not an incident.
type rejection struct{ reason, detail string }

// checkIssue rejects a node missing what every incident needs (wiz.Issue.Defects).
func checkIssue(is *wiz.Issue) *rejection {
	if d := is.Defects(); len(d) > 0 {
		return &rejection{reason: RejectIncomplete, detail: strings.Join(d, "; ")}
	}
	return nil
}

// encodeIncident classifies and maps is and returns its incident's JSON (incident.Mapper.MapJSON);
// what goes wrong, a panic included, becomes a rejection. (The stream maps pages on a goroutine of
// its own, where a panic would end the process.)
func encodeIncident(m *incident.Mapper, c *classify.Classifier, is *wiz.Issue, raw []byte) (out []byte, clipped int, rej *rejection) {
	defer func() {
		if p := recover(); p != nil {
			out, clipped, rej = nil, 0, &rejection{reason: RejectMapping, detail: clipDetail(fmt.Sprintf("panic: %v", p))}
		}
	}()
	out, clipped, err := m.MapJSON(is, raw, c.Classify(is))
	switch {
	case errors.Is(err, incident.ErrTooLarge):
		return nil, 0, &rejection{reason: RejectTooLarge, detail: clipDetail(err.Error())}
	case err != nil:
		return nil, 0, &rejection{reason: RejectMapping, detail: clipDetail(err.Error())}
	}
	return out, clipped, nil
}

func clipDetail(s string) string {
	if len(s) > maxDetail {
		return s[:maxDetail] + "…"
	}
	return s
}

// recordRejected records a rejected node in tx (see store.Tx.PutRejected).
func recordRejected(tx *store.Tx, instance, feedName string, is *wiz.Issue, raw []byte, rej *rejection, now time.Time) (bool, error) {
	recorded, err := tx.PutRejected(store.RejectedIssue{
		Instance: instance, IssueID: is.ID, Feed: feedName, Reason: rej.reason, Detail: rej.detail, LastSeen: now,
	}, raw)
	if err != nil {
		return false, fmt.Errorf("record rejected issue: %w", err)
	}
	return recorded, nil
}

// incidentKeyTime is the createdAt a new incident is keyed by: the issue's, but never later than now
// + MaxClockSkew, so that a bogus future createdAt does not sit at the tail of the index (where
// every later incident would be looked up below it). The store finds an incident by id whatever its
// key (store.Tx.FindIncident).
func incidentKeyTime(createdAt, now time.Time) time.Time {
	if h := now.Add(MaxClockSkew); createdAt.After(h) {
		return h
	}
	return createdAt
}

// notLater is t, or horizon when t is later.
func notLater(t, horizon time.Time) time.Time {
	if t.After(horizon) {
		return horizon
	}
	return t
}

// matchesEnumFilters reports whether is passes the status, severity and type filters of the created
// feed, which Wiz applies server side: a node that does not is a degraded answer, not an incident
// of this feed. Projects are left to Wiz (its project filter may match through a folder project
// that the node's own list does not name).
func matchesEnumFilters(fc config.Fetch, is *wiz.Issue) bool {
	return (len(fc.Status) == 0 || slices.Contains(fc.Status, is.Status)) &&
		(len(fc.Severity) == 0 || slices.Contains(fc.Severity, is.Severity)) &&
		(len(fc.Type) == 0 || slices.Contains(fc.Type, is.Type))
}

// healWatermark rewinds a checkpoint that a bogus future timestamp has moved past now +
// MaxClockSkew (a wizfetch before issue 17 let one move it, and no issue was fetched after): the
// feed re-reads the lookback, which the dedup makes safe and which fetches what the bad watermark
// hid. It reports whether it changed cp.
func (f *Feed) healWatermark(cp *store.Checkpoint, now time.Time) bool {
	horizon := now.Add(MaxClockSkew)
	if !cp.Watermark.After(horizon) && !cp.WindowAfter.After(horizon) {
		return false
	}
	rewind := now.Add(-f.opt.Fetch.Lookback.D())
	if rewind.Before(cp.FirstStart) {
		rewind = cp.FirstStart
	}
	f.log.Warn("watermark is in the future (a bogus timestamp from Wiz moved it); rewinding it to re-read the lookback",
		"watermark", cp.Watermark, "window_after", cp.WindowAfter, "rewind_to", rewind)
	cp.Watermark, cp.WindowAfter, cp.Cursor = rewind, time.Time{}, ""
	return true
}

// nodeNote is what mapping found about one node: a rejection, or how many strings it clipped.
type nodeNote struct {
	rej     *rejection
	clipped int
}

// pageNotes are a committed page's nodes worth a WARN line, logged after the commit.
type pageNotes struct {
	rejected []rejectedNote
	future   []futureNote
	clipped  []clippedNote
	nullPage bool // the page's nodes list was null
	null     int  // null nodes
}

type rejectedNote struct {
	id, reason, detail string
	recorded           bool
}

type futureNote struct {
	id string
	ts time.Time
}

type clippedNote struct {
	id        string
	strings   int
	nodeBytes int
}

// maxNoteLines bounds the WARN lines of one kind per page; the rest are summed up in one line.
const maxNoteLines = 5

// log writes the notes at WARN: a line per node up to maxNoteLines of each kind, then a count.
func (n *pageNotes) log(log *slog.Logger, page int) {
	if n.nullPage {
		log.Warn("Wiz returned a page whose nodes list is null", "page", page)
	}
	if n.null > 0 {
		log.Warn("Wiz returned null nodes; they were skipped", "page", page, "null_nodes", n.null)
	}
	for i, r := range n.rejected {
		if i == maxNoteLines {
			log.Warn("more issues rejected on this page", "page", page, "count", len(n.rejected)-i)
			break
		}
		log.Warn("issue rejected: not an incident (recorded with its raw node; a good version later is processed as usual)",
			"page", page, "issue_id", clipID(r.id), "reason", r.reason, "detail", r.detail, "recorded", r.recorded)
	}
	for i, fu := range n.future {
		if i == maxNoteLines {
			log.Warn("more timestamps from the future on this page", "page", page, "count", len(n.future)-i)
			break
		}
		log.Warn("timestamp from the future: it does not move the watermark", "page", page, "issue_id", clipID(fu.id),
			"timestamp", fu.ts, "max_clock_skew", MaxClockSkew)
	}
	for i, c := range n.clipped {
		if i == maxNoteLines {
			log.Warn("more incidents clipped on this page", "page", page, "count", len(n.clipped)-i)
			break
		}
		log.Warn("incident clipped: strings over the size bound cut (the full issue: wizfetch issue get)", "page", page,
			"issue_id", clipID(c.id), "clipped_strings", c.strings, "node_bytes", c.nodeBytes)
	}
}

// clipID bounds an issue id in a log line (ids of rejected nodes are not checked).
func clipID(id string) string {
	if len(id) > wiz.MaxIDBytes {
		return id[:wiz.MaxIDBytes] + "…"
	}
	return id
}
