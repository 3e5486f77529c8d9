package feed

import (
	"slices"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

type pageResult struct {
	stopped bool
	notes   pageNotes // logged once the page has committed
}

// commitPage takes every decision for one page inside tx and advances the checkpoint. budget is how
// many events this page may still emit.
func (f *Feed) commitPage(tx *store.Tx, cp *store.Checkpoint, page *wiz.Page, incidents mapped, budget int, res *Result) (pageResult, error) {
	var pr pageResult
	now := f.opt.Now().UTC()
	var createdStart time.Time // the created feed's first-run start (updates feed only)
	var haveCreatedStart bool
	if f.opt.Name == Updates {
		ccp, ok, err := tx.Checkpoint(f.opt.Instance, Created)
		if err != nil {
			return pr, err
		}
		createdStart, haveCreatedStart = ccp.FirstStart, ok && !ccp.FirstStart.IsZero()
	}

	// Timestamps beyond horizon do not move the watermark (guard.go).
	horizon := now.Add(MaxClockSkew)
	rejectedBefore, err := tx.RejectedCount(f.opt.Instance)
	if err != nil {
		return pr, err
	}
	hasRejected := rejectedBefore > 0 // whether a processed issue may have a rejected-issue record to clear
	pr.notes.nullPage, pr.notes.null = page.NodesNull, page.NullNodes
	if page.NodesNull {
		res.NullPages++
	}
	res.NullNodes += page.NullNodes

	emitted := 0
	pageStart := time.Time{} // the earliest timestamp a re-read of this page can return
	for i := range page.Issues {
		if emitted >= budget {
			pr.stopped = true
			break
		}
		is := &page.Issues[i]
		res.Fetched++
		var ts time.Time
		if f.opt.Name == Created {
			ts = is.CreatedAt
		} else if is.StatusChangedAt != nil {
			ts = *is.StatusChangedAt
		}
		if ts.After(horizon) {
			// The next window would start past every issue still to come.
			res.FutureTimestamps++
			pr.notes.future = append(pr.notes.future, futureNote{id: is.ID, ts: ts})
		} else if !ts.IsZero() {
			if pageStart.IsZero() || ts.Before(pageStart) {
				pageStart = ts
			}
			if ts.After(cp.Watermark) {
				cp.Watermark = ts
			}
		}
		if n := incidents.note(i); n.rej != nil {
			// Not an incident: recorded, and nothing else (no mark, no incident) is written, so a
			// good version of the issue, later, is processed as any other node.
			var raw []byte
			if i < len(page.Raw) {
				raw = page.Raw[i]
			}
			recorded, err := recordRejected(tx, f.opt.Instance, f.opt.Name, is, raw, n.rej, now)
			if err != nil {
				return pr, err
			}
			hasRejected = hasRejected || recorded
			res.Rejected[n.rej.reason]++
			pr.notes.rejected = append(pr.notes.rejected, rejectedNote{id: is.ID, reason: n.rej.reason, detail: n.rej.detail, recorded: recorded})
			continue
		} else if n.clipped > 0 {
			res.Clipped++
			nodeBytes := 0
			if i < len(page.Raw) {
				nodeBytes = len(page.Raw[i])
			}
			pr.notes.clipped = append(pr.notes.clipped, clippedNote{id: is.ID, strings: n.clipped, nodeBytes: nodeBytes})
		}
		if ts.IsZero() {
			res.Ignored[ReasonNoTimestamp]++
			continue
		}
		if hasRejected {
			if _, err := tx.DeleteRejected(f.opt.Instance, is.ID); err != nil {
				return pr, err
			}
		}
		var rec *store.IncidentRecord
		var known bool
		var err error
		if f.opt.Name == Created {
			// The created feed's dedup key is the issue id, and every issue it ever emitted has an
			// incident under that id: the incident is the mark (one lookup, no extra writes).
			if known, err = tx.KnownIssue(f.opt.Instance, is.ID, is.CreatedAt); err != nil {
				return pr, err
			}
		} else {
			key := markKey(is)
			seen, err := tx.HasMark(f.opt.Instance, f.opt.Name, key)
			if err != nil {
				return pr, err
			}
			if seen {
				res.Ignored[ReasonDuplicate]++
				continue
			}
			// A future statusChangedAt's mark is kept no later than horizon, so that pruning
			// reaches it.
			if err := tx.PutMark(f.opt.Instance, f.opt.Name, key, notLater(ts, horizon)); err != nil {
				return pr, err
			}
			if rec, known, err = tx.FindIncident(f.opt.Instance, is.ID, is.CreatedAt); err != nil {
				return pr, err
			}
		}
		var kind string
		switch {
		case f.opt.Name == Created && known:
			res.Ignored[ReasonKnown]++
		case f.opt.Name == Created && !is.CreatedAt.After(cp.FirstStart):
			res.Ignored[ReasonOutsideWindow]++
		case f.opt.Name == Created && !matchesEnumFilters(f.opt.Fetch, is):
			res.Ignored[ReasonNotMatching]++
		case f.opt.Name == Created:
			kind = incident.KindCreated
		case known && isStale(rec, is, horizon):
			// A push (or the other feed) already committed a newer change of this issue while this
			// page was in flight: never step the incident back.
			res.Ignored[ReasonStale]++
		case known && rec.Status != is.Status:
			kind = incident.KindUpdated
		case known:
			res.Ignored[ReasonStatusUnchanged]++
			// Keep the freshest JSON even without an event.
			rec.Incident = incidents.json[i]
			rec.UpdatedAt = now
			if err := tx.PutIncident(rec); err != nil {
				return pr, err
			}
		case !MatchesCreated(f.opt.Fetch, is):
			res.Ignored[ReasonNotMatching]++
		case !haveCreatedStart || !is.CreatedAt.After(createdStart):
			res.Ignored[ReasonOutsideWindow]++
		default:
			kind = incident.KindCreated
		}
		if kind == "" {
			continue
		}
		if err := Emit(tx, EmitInput{
			Instance: f.opt.Instance, Kind: kind, Issue: is, Incident: incidents.json[i],
			Previous: rec, Sinks: f.opt.Sinks, Now: now,
		}); err != nil {
			return pr, err
		}
		emitted++
		if kind == incident.KindCreated {
			res.Created++
		} else {
			res.Updated++
		}
	}

	// Marks older than watermark - 2×overlap can go (DESIGN.md §2.3), but while the window is open
	// never those a re-read could meet: a re-read of this page (after a mid-page stop) starts at its
	// first item, and a restarted window at watermark - overlap. Pruning a little every page keeps
	// each commit small, instead of one huge delete when a long backfill's window closes.
	cutoff := time.Time{}
	if !cp.Watermark.IsZero() {
		cutoff = cp.Watermark.Add(-2 * f.opt.Fetch.Overlap.D())
	}
	switch {
	case pr.stopped:
		// Re-read this page next time: keep the cursor that fetched it.
		cutoff = earliest(cutoff, pageStart)
	case page.HasNextPage:
		cp.Cursor = page.EndCursor
		cutoff = earliest(cutoff, pageStart)
	default:
		cp.WindowAfter, cp.Cursor = time.Time{}, ""
	}
	if !cutoff.IsZero() && f.opt.Name == Updates {
		if _, err := tx.PruneMarks(f.opt.Instance, f.opt.Name, cutoff); err != nil {
			return pr, err
		}
	}
	cp.UpdatedAt = now
	return pr, tx.PutCheckpoint(f.opt.Instance, f.opt.Name, *cp)
}

// isStale reports whether the fetched issue is older than the change its incident already reflects.
// A change the incident holds from beyond horizon (now + MaxClockSkew) is bogus, and would make every
// real change look stale for good: it makes nothing stale.
func isStale(rec *store.IncidentRecord, is *wiz.Issue, horizon time.Time) bool {
	return rec.StatusChangedAt != nil && is.StatusChangedAt != nil && !rec.StatusChangedAt.After(horizon) &&
		is.StatusChangedAt.Before(*rec.StatusChangedAt)
}

// earliest is the earlier of two times, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// markKey is the updates feed's dedup key: issue id and statusChangedAt (DESIGN.md §2.3).
func markKey(is *wiz.Issue) string {
	return is.ID + "|" + is.StatusChangedAt.UTC().Format(time.RFC3339Nano)
}

// MatchesCreated reports whether an issue passes the created feed's filters (status, severity, type,
// project). Wiz applies them server side; the updates feed (which has no status filter) and pushes use
// this to decide whether an unknown issue deserves a `created`.
func MatchesCreated(fc config.Fetch, is *wiz.Issue) bool {
	if len(fc.Status) > 0 && !slices.Contains(fc.Status, is.Status) {
		return false
	}
	if len(fc.Severity) > 0 && !slices.Contains(fc.Severity, is.Severity) {
		return false
	}
	if len(fc.Type) > 0 && !slices.Contains(fc.Type, is.Type) {
		return false
	}
	if len(fc.ProjectIDs) > 0 && !slices.ContainsFunc(is.Projects, func(p wiz.Project) bool {
		return slices.Contains(fc.ProjectIDs, p.ID)
	}) {
		return false
	}
	return true
}
