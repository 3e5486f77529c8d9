package feed

import (
	"errors"
	"slices"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// errNothingToCommit is what commitPage returns for a page that changed nothing durable: no event,
// no incident, no mark written or pruned, no rejected-issue record written or cleared (the store's
// Tx.Wrote says so, whatever wrote), and a checkpoint equal to the stored one but for UpdatedAt.
// Store.Update rolls the transaction back on it, as on any error, and Fetch takes it as a committed
// page: the store already holds exactly what a commit would have written, so every invariant of
// DESIGN.md §2 holds as after a commit, and an idle fetch (a page of issues already seen, or none)
// costs no meta page, freelist write nor fsync. Checkpoint.UpdatedAt is thereby the last time the
// checkpoint changed, not the last fetch: that one is the status tracker's last_fetch and the
// last-fetch-success metric.
var errNothingToCommit = errors.New("page changed nothing: transaction rolled back")

type pageResult struct {
	stopped bool
	notes   pageNotes // logged once the page has committed
}

// commitPage takes every decision for one page inside tx and advances the checkpoint. budget is how
// many events this page may still emit. What is the same for both feeds (the watermark, the guards,
// the cursor, pruning) is here; whether an issue is new is the feed's policy (policy.go).
func (f *Feed) commitPage(tx *store.Tx, cp *store.Checkpoint, page *wiz.Page, incidents mapped, budget int, res *Result) (pageResult, error) {
	var pr pageResult
	now := f.opt.Now().UTC()
	// Timestamps beyond horizon do not move the watermark (guard.go).
	horizon := now.Add(MaxClockSkew)
	env := pageEnv{tx: tx, instance: f.opt.Instance, firstStart: cp.FirstStart, now: now, horizon: horizon}
	decide, err := f.pol.beginPage(env)
	if err != nil {
		return pr, err
	}

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
		ts := f.pol.timestamp(is)
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
			recorded, err := recordRejected(tx, f.opt.Instance, f.pol.name(), is, raw, n.rej, now)
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
		v, err := decide(is, ts, incidents.json[i])
		if err != nil {
			return pr, err
		}
		if v.kind == "" {
			res.Ignored[v.ignored]++
			continue
		}
		if err := Emit(tx, EmitInput{
			Instance: f.opt.Instance, Kind: v.kind, Issue: is, Incident: incidents.json[i],
			Previous: v.prev, Sinks: f.opt.Sinks, Now: now,
		}); err != nil {
			return pr, err
		}
		emitted++
		if v.kind == incident.KindCreated {
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
	if !cutoff.IsZero() {
		if err := f.pol.prune(env, cutoff); err != nil {
			return pr, err
		}
	}
	stored, ok, err := tx.Checkpoint(f.opt.Instance, f.pol.name())
	if err != nil {
		return pr, err
	}
	if ok && !tx.Wrote() && sameProgress(stored, *cp) {
		return pr, errNothingToCommit
	}
	cp.UpdatedAt = now
	return pr, tx.PutCheckpoint(f.opt.Instance, f.pol.name(), *cp)
}

// sameProgress reports whether two checkpoints are equal but for UpdatedAt.
func sameProgress(a, b store.Checkpoint) bool {
	return a.Watermark.Equal(b.Watermark) && a.WindowAfter.Equal(b.WindowAfter) && a.Cursor == b.Cursor &&
		a.FirstStart.Equal(b.FirstStart)
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
