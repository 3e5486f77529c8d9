package feed

import (
	"fmt"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// policy is what makes a feed the created or the updates feed: the query it sends, the timestamp
// its watermark follows, how far back its first window starts, and how it decides, issue by issue,
// whether a node is new. Everything else (windows, cursors, the page stream, the guards, the
// transaction per page) is the same for both and lives in Feed. The policy is chosen once, by
// New, from Options.Name.
type policy interface {
	// name is the feed's name (Created or Updates): its checkpoint, marks, logs and metrics.
	name() string
	// firstStart is the pinned start of the first window of a feed that has no checkpoint yet.
	firstStart(now time.Time) time.Time
	// filter and order are the query of the window pinned at after.
	filter(after time.Time) wiz.IssueFilter
	order() *wiz.IssueOrder
	// timestamp is the issue's time on this feed's axis (zero when Wiz sent null): the watermark
	// follows it and the window's `after` is compared with it.
	timestamp(is *wiz.Issue) time.Time
	// beginPage reads, inside a page's transaction, what the page's decisions need, and returns the
	// decision for one issue.
	beginPage(env pageEnv) (decideFunc, error)
	// prune drops the dedup marks older than cutoff, when the feed keeps any.
	prune(env pageEnv, cutoff time.Time) error
}

// pageEnv is what a policy's decisions on one page read: the page's transaction, the feed's
// first-run start, and the page's clock.
type pageEnv struct {
	tx         *store.Tx
	instance   string
	firstStart time.Time // this feed's first-run start (store.Checkpoint.FirstStart)
	now        time.Time
	horizon    time.Time // now + MaxClockSkew
}

// decideFunc decides one issue of a page, whose timestamp on the feed's axis is ts (not zero) and
// whose incident JSON is incJSON, writing the dedup mark it needs.
type decideFunc func(is *wiz.Issue, ts time.Time, incJSON []byte) (verdict, error)

// verdict is the decision on one issue: an event to emit (kind, and the incident's previous record,
// nil for a new incident), or the reason (Reason*) no event is due.
type verdict struct {
	kind    string // incident.KindCreated or incident.KindUpdated; "" when ignored
	prev    *store.IncidentRecord
	ignored string
}

func emit(kind string, prev *store.IncidentRecord) verdict { return verdict{kind: kind, prev: prev} }
func ignore(reason string) verdict                         { return verdict{ignored: reason} }

// newPolicy returns the policy of the feed called name.
func newPolicy(name string, fc config.Fetch) (policy, error) {
	switch name {
	case Created:
		return createdPolicy{fc: fc}, nil
	case Updates:
		return updatesPolicy{fc: fc}, nil
	}
	return nil, fmt.Errorf("feed: unknown feed %q", name)
}

// createdPolicy is the created feed: createdAt after the window, CREATED_AT ASC, with the status,
// severity, type and project filters; it emits `created` for an issue it has not seen. Its dedup
// key is the issue id, and the incident stored under it is the mark.
type createdPolicy struct{ fc config.Fetch }

func (createdPolicy) name() string { return Created }

// firstStart: the created feed reaches back the lookback, so that a first run delivers recent issues.
func (p createdPolicy) firstStart(now time.Time) time.Time { return now.Add(-p.fc.Lookback.D()) }

func (p createdPolicy) filter(after time.Time) wiz.IssueFilter {
	flt := wiz.IssueFilter{Severity: p.fc.Severity, Type: p.fc.Type, ProjectIDs: p.fc.ProjectIDs, Status: p.fc.Status}
	flt.CreatedAfter = &after
	return flt
}

func (createdPolicy) order() *wiz.IssueOrder {
	return &wiz.IssueOrder{Field: "CREATED_AT", Direction: "ASC"}
}

func (createdPolicy) timestamp(is *wiz.Issue) time.Time { return is.CreatedAt }

func (p createdPolicy) beginPage(env pageEnv) (decideFunc, error) {
	return func(is *wiz.Issue, _ time.Time, _ []byte) (verdict, error) {
		// Every issue the created feed ever emitted has an incident under its id: the incident is
		// the mark (one lookup, no extra writes).
		known, err := env.tx.KnownIssue(env.instance, is.ID, is.CreatedAt)
		switch {
		case err != nil:
			return verdict{}, err
		case known:
			return ignore(ReasonKnown), nil
		case !is.CreatedAt.After(env.firstStart):
			return ignore(ReasonOutsideWindow), nil
		case !matchesEnumFilters(p.fc, is):
			return ignore(ReasonNotMatching), nil
		}
		return emit(incident.KindCreated, nil), nil
	}, nil
}

// prune: the created feed keeps no marks.
func (createdPolicy) prune(pageEnv, time.Time) error { return nil }

// updatesPolicy is the updates feed: statusChangedAt after the window, STATUS_CHANGED_AT ASC, no
// status filter; it emits `updated` on a status change, or `created` for an issue the created feed
// skipped. It keeps marks of (issue id, statusChangedAt).
type updatesPolicy struct{ fc config.Fetch }

func (updatesPolicy) name() string { return Updates }

// firstStart: the updates feed starts one overlap back; older changes are the created feed's.
func (p updatesPolicy) firstStart(now time.Time) time.Time { return now.Add(-p.fc.Overlap.D()) }

func (p updatesPolicy) filter(after time.Time) wiz.IssueFilter {
	flt := wiz.IssueFilter{Severity: p.fc.Severity, Type: p.fc.Type, ProjectIDs: p.fc.ProjectIDs}
	flt.StatusChangedAfter = &after
	return flt
}

func (updatesPolicy) order() *wiz.IssueOrder {
	return &wiz.IssueOrder{Field: "STATUS_CHANGED_AT", Direction: "ASC"}
}

func (updatesPolicy) timestamp(is *wiz.Issue) time.Time {
	if is.StatusChangedAt == nil {
		return time.Time{}
	}
	return *is.StatusChangedAt
}

func (p updatesPolicy) beginPage(env pageEnv) (decideFunc, error) {
	// An unknown issue is `created` only when the created feed's window would have held it.
	ccp, ok, err := env.tx.Checkpoint(env.instance, Created)
	if err != nil {
		return nil, err
	}
	createdStart, haveCreatedStart := ccp.FirstStart, ok && !ccp.FirstStart.IsZero()
	return func(is *wiz.Issue, ts time.Time, incJSON []byte) (verdict, error) {
		tx, inst := env.tx, env.instance
		key := markKey(is)
		seen, err := tx.HasMark(inst, Updates, key)
		if err != nil {
			return verdict{}, err
		}
		if seen {
			return ignore(ReasonDuplicate), nil
		}
		// A future statusChangedAt's mark is kept no later than horizon, so that pruning reaches it.
		if err := tx.PutMark(inst, Updates, key, notLater(ts, env.horizon)); err != nil {
			return verdict{}, err
		}
		rec, known, err := tx.FindIncident(inst, is.ID, is.CreatedAt)
		if err != nil {
			return verdict{}, err
		}
		switch {
		case known && isStale(rec, is, env.horizon):
			// A push (or the other feed) already committed a newer change of this issue while this
			// page was in flight: never step the incident back.
			return ignore(ReasonStale), nil
		case known && rec.Status != is.Status:
			return emit(incident.KindUpdated, rec), nil
		case known:
			// Keep the freshest JSON even without an event.
			rec.Incident = incJSON
			rec.UpdatedAt = env.now
			return ignore(ReasonStatusUnchanged), tx.PutIncident(rec)
		case !MatchesCreated(p.fc, is):
			return ignore(ReasonNotMatching), nil
		case !haveCreatedStart || !is.CreatedAt.After(createdStart):
			return ignore(ReasonOutsideWindow), nil
		}
		return emit(incident.KindCreated, nil), nil
	}, nil
}

func (updatesPolicy) prune(env pageEnv, cutoff time.Time) error {
	_, err := env.tx.PruneMarks(env.instance, Updates, cutoff)
	return err
}
