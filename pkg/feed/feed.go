// Package feed turns Wiz issues into committed events: it pulls one feed of one Wiz tenant (the
// window, cursor, overlap and dedup logic of DESIGN.md §2–§3), maps every page's issues to incidents
// and commits the page, with its incidents and events, in one bbolt write transaction. It also holds
// the decision for one pushed issue (refetch.go), which shares the feeds' guards and marks; the push
// flow itself (receiver, queue, worker) is pkg/push's.
//
// A feed is either the created feed (createdAt after, CREATED_AT ASC, status/severity/type/project
// filters; emits `created`) or the updates feed (statusChangedAt after, STATUS_CHANGED_AT ASC, no status
// filter; emits `updated` on a status change, or `created` for an issue the created feed skipped). The
// difference is one small policy each (policy.go: createdPolicy, updatesPolicy), chosen by New; Feed
// (feed.go, commit.go) is what both share, and pageStream (stream.go) fetches ahead to hide Wiz's
// latency.
//
// Why it is safe:
//   - Dedup: the created feed's key is the issue id, and the incident stored under it is the mark (found
//     by id whatever createdAt a node carries: store.Tx.FindIncident); the updates feed keeps marks of
//     (issue id, statusChangedAt).
//   - The watermark is only ever a timestamp Wiz returned, compared as time.Time (microseconds), and
//     never one beyond now + MaxClockSkew (guard.go).
//   - A node that cannot be an incident (a required field null, too large once clipped, a mapping
//     that fails) is recorded and skipped in the page's transaction: the window moves on (guard.go).
//   - A window pins after = watermark - overlap and walks endCursor; Wiz's after is exclusive and
//     timestamps tie, so the overlap re-reads the boundary and the dedup marks drop what was seen.
//   - Every decision (is this issue known? did its status change?) is taken inside the page's write
//     transaction, so the two feeds of one instance (and pushes) can never both emit `created`.
//   - When the per-fetch cap stops a fetch in the middle of a page, the cursor is not advanced: the next
//     fetch re-reads that page and the marks skip what was already committed.
//   - Marks older than watermark - 2×overlap are pruned as pages commit, but never those a re-read page
//     (mid-page stop) or a restarted window could meet again.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wizfetch/wizfetch/pkg/classify"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// Feed names, as used in checkpoints, logs and metrics.
const (
	Created = "created"
	Updates = "updates"
)

// Reasons an issue is passed over without an event (wizfetch_updates_ignored_total{reason}).
const (
	ReasonDuplicate       = "duplicate"        // dedup mark already present (overlap re-read)
	ReasonKnown           = "known"            // created feed: an incident already exists
	ReasonStatusUnchanged = "status_unchanged" // updates feed: same status as the last event
	ReasonNotMatching     = "not_matching"     // unknown issue outside the created feed's filters (also a node Wiz should have filtered out)
	ReasonOutsideWindow   = "outside_window"   // created before the first-run start
	ReasonNoTimestamp     = "no_timestamp"     // the feed's timestamp is null
	ReasonStale           = "stale"            // older than the change the incident already reflects
)

// maxCursorRestarts bounds how often one fetch restarts its window after a rejected cursor.
const maxCursorRestarts = 3

// maxCursorFailures is how many fetches in a row may fail on one cursor, in any other way than a
// rejection, before the window restarts without it. How Wiz answers an expired or invalid cursor
// is not documented (WIZ_API.md §10): wiz.ErrCursorRejected is its BAD_USER_INPUT, and a cursor
// whose page keeps failing otherwise (an INTERNAL, a 5xx, another 400) is dropped after this many
// fetches, so that no answer can keep a feed on it for good. Restarting re-reads from just below
// the watermark, which the marks make safe; a Wiz outage costs at most that re-read.
const maxCursorFailures = 3

// ErrMissingCursor is returned when Wiz says hasNextPage but gives no endCursor (WIZ_API.md §3).
var ErrMissingCursor = errors.New("page has hasNextPage=true but an empty endCursor")

// IssueSource is the part of the Wiz client a feed needs.
type IssueSource interface {
	Issues(ctx context.Context, f wiz.IssueFilter, order *wiz.IssueOrder, first int, after string) (*wiz.Page, error)
}

// Options configure one feed.
type Options struct {
	Instance   string
	Name       string // Created or Updates
	Fetch      config.Fetch
	Sinks      []string // every sink's outbox receives every event
	Source     IssueSource
	Store      *store.Store
	Classifier *classify.Classifier
	Mapper     *incident.Mapper
	Now        func() time.Time // nil: time.Now
	Logger     *slog.Logger
	// Prefetch streams the pages of an open window (see pageStream): each request follows the
	// previous page at once and pages are mapped as they arrive, while earlier ones commit. Set it
	// when the next fetch follows at once while a backlog remains (catch_up); a streamed page is
	// used only by a fetch that asks for exactly that window, cursor and size within
	// maxPrefetchAge, and a fetch ends before a page that would not fit in its budget instead of
	// stopping in the middle of it. A stream runs at most three pages ahead of the commits: those
	// requests are wasted when the feed stops.
	Prefetch bool
	// PageSlots, shared by every feed of the process, bounds the pages held in memory at once
	// (wiz.PageSlots): a page holds a slot from Wiz's answer until it is committed or dropped. Nil:
	// no bound.
	PageSlots *wiz.PageSlots
}

// maxPrefetchAge is how old a prefetched page may be and still be used: older data is not wrong
// (the stale guard and the marks hold for any page), but a fetch should not act on a page read long
// before it started.
const maxPrefetchAge = 10 * time.Second

// Feed is one (instance, feed) pair. Fetch must not be called concurrently on one Feed, nor with
// Close.
type Feed struct {
	opt    Options
	pol    policy // the created or the updates feed's rules, chosen by New
	log    *slog.Logger
	stream *pageStream // with Options.Prefetch: the pages of the open window, fetched ahead
	// failingCursor is the cursor the last fetches failed on, cursorFailures how many in a row
	// (maxCursorFailures). Fetch is never called concurrently for one feed.
	failingCursor  string
	cursorFailures int
}

// Result summarises one fetch.
type Result struct {
	Pages     int
	Fetched   int // nodes processed
	Created   int
	Updated   int
	Ignored   map[string]int
	Backlog   bool // more remains: the cap stopped the fetch or the window has more pages
	Closed    bool // the window closed (hasNextPage false) during this fetch
	Restarts  int  // window restarts after a rejected cursor
	Watermark time.Time
	Duration  time.Duration
	// Rejected counts the nodes that could not be incidents, by reason (RejectIncomplete,
	// RejectTooLarge, RejectMapping); each is recorded in the store (store.RejectedIssue).
	Rejected map[string]int
	// FutureTimestamps counts the nodes whose feed timestamp was beyond now + MaxClockSkew: the
	// watermark ignored them.
	FutureTimestamps int
	// Clipped counts the incidents with strings clipped to their bound (incident.MaxFieldBytes).
	Clipped int
	// NullNodes counts the null nodes Wiz returned, and NullPages the pages whose nodes list was null.
	NullNodes int
	NullPages int
}

// add merges one committed page's counts.
func (r *Result) add(d Result) {
	r.Fetched += d.Fetched
	r.Created += d.Created
	r.Updated += d.Updated
	for k, v := range d.Ignored {
		r.Ignored[k] += v
	}
	for k, v := range d.Rejected {
		r.Rejected[k] += v
	}
	r.FutureTimestamps += d.FutureTimestamps
	r.Clipped += d.Clipped
	r.NullNodes += d.NullNodes
	r.NullPages += d.NullPages
}

// Emitted is the number of events this fetch committed.
func (r Result) Emitted() int { return r.Created + r.Updated }

// New validates the options and returns a feed.
func New(opt Options) (*Feed, error) {
	pol, err := newPolicy(opt.Name, opt.Fetch)
	if err != nil {
		return nil, err
	}
	if opt.Source == nil || opt.Store == nil || opt.Classifier == nil || opt.Mapper == nil {
		return nil, errors.New("feed: source, store, classifier and mapper are required")
	}
	if opt.Fetch.MaxPerFetch < 1 {
		return nil, fmt.Errorf("feed: max_per_fetch %d must be at least 1", opt.Fetch.MaxPerFetch)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Feed{opt: opt, pol: pol, log: opt.Logger.With("component", "feed", "instance", opt.Instance, "feed", opt.Name)}, nil
}

// cursorKeepsFailing counts a fetch that failed with err on cursor and reports whether it is the
// maxCursorFailures-th in a row on that cursor. Failures the cursor cannot cause (authentication,
// permission, a cancelled context) are not counted.
func (f *Feed) cursorKeepsFailing(cursor string, err error) bool {
	if !wiz.IsRetryable(err) && !errors.Is(err, wiz.ErrBadRequest) {
		return false
	}
	if cursor != f.failingCursor {
		f.failingCursor, f.cursorFailures = cursor, 0
	}
	f.cursorFailures++
	return f.cursorFailures >= maxCursorFailures
}

// Name is the feed's name (Created or Updates).
func (f *Feed) Name() string { return f.pol.name() }

// Instance is the instance the feed belongs to.
func (f *Feed) Instance() string { return f.opt.Instance }

// Fetch runs one fetch: it walks pages of the open window (opening one if needed) until the window
// closes or max_per_fetch events have been committed. Each page is committed before the next request.
func (f *Feed) Fetch(ctx context.Context) (res Result, err error) {
	start := f.opt.Now()
	res.Ignored, res.Rejected = map[string]int{}, map[string]int{}
	defer func() { res.Duration = f.opt.Now().Sub(start) }()

	cp, err := f.checkpoint()
	if err != nil {
		return res, err
	}
	if f.healWatermark(&cp, start) {
		f.dropStream() // it reads a window pinned past the new one
	}
	res.Watermark = cp.Watermark
	limit := f.opt.Fetch.MaxPerFetch
	emitted := 0

	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if cp.WindowAfter.IsZero() {
			cp.WindowAfter = f.windowStart(cp)
			cp.Cursor = ""
		}
		page, mapIncidents, streamed, err := f.fetchPage(ctx, cp.WindowAfter, cp.Cursor, limit)
		if err == nil {
			f.failingCursor, f.cursorFailures = "", 0
		}
		if err != nil {
			rejected := errors.Is(err, wiz.ErrCursorRejected)
			if cp.Cursor != "" && res.Restarts < maxCursorRestarts && (rejected || f.cursorKeepsFailing(cp.Cursor, err)) {
				// Everything before the watermark was committed in order, so the window restarts
				// just below it (Wiz's `after` is exclusive): only the issues tied at the watermark
				// are read again, and their marks drop them. No overlap is needed here: late-visible
				// issues behind the watermark are caught by the next window's overlap, exactly as for
				// a window that was never interrupted. (DESIGN.md §2.3 restarts from the window's
				// pinned start, which re-reads the whole window: equally safe, but a long backfill
				// could then never finish under repeated invalidation.) A tie group longer than the
				// pages Wiz serves between two invalidations cannot be crossed at all — Wiz has no
				// keyset filter — so such a fetch fails after maxCursorRestarts and is retried with
				// backoff; nothing is lost.
				res.Restarts++
				restart := cp.WindowAfter
				if below := cp.Watermark.Add(-time.Microsecond); !cp.Watermark.IsZero() && below.After(restart) {
					restart = below
				}
				if rejected {
					f.log.Warn("cursor rejected; restarting window", "after", restart, "err", err)
				} else {
					f.log.Warn("pages keep failing on one cursor; restarting window without it", "after", restart,
						"failed_fetches", f.cursorFailures, "err", err)
				}
				f.failingCursor, f.cursorFailures = "", 0
				cp.WindowAfter, cp.Cursor = restart, ""
				continue
			}
			return res, fmt.Errorf("fetch page %d of %s/%s: %w", res.Pages+1, f.opt.Instance, f.pol.name(), err)
		}
		if page.HasNextPage && page.EndCursor == "" {
			f.dropStream()
			page.Release()
			return res, fmt.Errorf("fetch page %d of %s/%s: %w", res.Pages+1, f.opt.Instance, f.pol.name(), ErrMissingCursor)
		}
		if streamed {
			if emitted > 0 && len(page.Issues) > limit-emitted {
				// A streamed page is never stopped mid-way: it waits, whole, at the head of the
				// stream for the next fetch, which starts with the full budget (first == limit).
				res.Backlog = true
				return res, nil
			}
			f.stream.take()
		}
		res.Pages++
		incidents := mapIncidents()
		// The page's decisions land in next and delta, and count only once the transaction commits.
		next := cp
		delta := Result{Ignored: map[string]int{}, Rejected: map[string]int{}}
		var pr pageResult
		err = f.opt.Store.Update(func(tx *store.Tx) error {
			var err error
			pr, err = f.commitPage(tx, &next, page, incidents, limit-emitted, &delta)
			return err
		})
		page.Release() // committed or not, the page is done with
		if errors.Is(err, errNothingToCommit) {
			err = nil // rolled back: the store already holds what the page would have written
		}
		if err != nil {
			return res, fmt.Errorf("commit page %d of %s/%s: %w", res.Pages, f.opt.Instance, f.pol.name(), err)
		}
		stoppedMidPage := pr.stopped
		pr.notes.log(f.log, res.Pages)
		cp = next
		res.add(delta)
		emitted = res.Emitted()
		res.Watermark = cp.Watermark

		switch {
		case stoppedMidPage:
			res.Backlog = true
			return res, nil
		case cp.WindowAfter.IsZero():
			res.Closed = true
			return res, nil
		case emitted >= limit:
			res.Backlog = true
			return res, nil
		}
	}
}

// fetchPage returns the page of the window pinned at after, from cursor, and a function that
// returns its incidents, mapped. With Options.Prefetch a page after a window's first comes from the
// feed's stream (started after the first page, or here when there is none at that cursor) and stays
// at its head until Fetch takes it; otherwise it is requested and mapped on the spot.
func (f *Feed) fetchPage(ctx context.Context, after time.Time, cursor string, first int) (page *wiz.Page, mapIncidents func() mapped, streamed bool, err error) {
	// A window's first page is requested on the spot unless a stream already holds it: most windows
	// of a caught-up feed are that one page, often empty, and a stream for it would only cost its
	// goroutines. A window that goes on is streamed from its second page, requested at once.
	if !f.opt.Prefetch || f.stream == nil && cursor == "" {
		page, err := f.opt.Source.Issues(wiz.WithPageSlots(ctx, f.opt.PageSlots), f.pol.filter(after), f.pol.order(), first, cursor)
		if err != nil {
			return nil, nil, false, err
		}
		if f.opt.Prefetch && page.HasNextPage && page.EndCursor != "" {
			f.stream = f.startStream(ctx, after, page.EndCursor, first)
		}
		return page, func() mapped { return f.mapPage(page) }, false, nil
	}
	for restarted := false; ; restarted = true {
		if err := ctx.Err(); err != nil {
			return nil, nil, false, err
		}
		inherited := f.stream != nil // started by an earlier fetch
		if !inherited {
			f.stream = f.startStream(ctx, after, cursor, first)
		}
		sp, err := f.stream.next(ctx, after, cursor, first)
		if err != nil {
			return nil, nil, false, err
		}
		if sp == nil {
			f.dropStream()
			if !inherited || restarted {
				// A new stream's first page is the one asked for, so it ended early: ctx ended
				// just before the stream could hand its first page over.
				if err := ctx.Err(); err != nil {
					return nil, nil, false, err
				}
				return nil, nil, false, errors.New("feed: a new page stream ended before its first page")
			}
			continue
		}
		if sp.err != nil {
			f.dropStream()
			// A stream cut short by an earlier fetch's context says nothing about this fetch.
			if inherited && !restarted && (errors.Is(sp.err, context.Canceled) || errors.Is(sp.err, context.DeadlineExceeded)) {
				continue
			}
			return nil, nil, false, sp.err
		}
		return sp.page, func() mapped {
			<-sp.mapped // the mapper closes it for every page, cancelled or not
			if len(sp.incidents.json) != len(sp.page.Issues) {
				// The stream was cancelled (its fetch's context ended) before it mapped this page.
				return f.mapPage(sp.page)
			}
			return sp.incidents
		}, true, nil
	}
}

// dropStream cancels the feed's stream and releases the pages it held (see Options.PageSlots).
func (f *Feed) dropStream() {
	if f.stream != nil {
		f.stream.drop()
		f.stream = nil
	}
}

// Close cancels the feed's stream (see Options.Prefetch) and waits for its goroutines to return (a
// request in flight is cancelled; a page being mapped is finished). The feed can be used again
// afterwards.
func (f *Feed) Close() {
	if s := f.stream; s != nil {
		f.dropStream()
		<-s.done
	}
}

// checkpoint loads the feed's checkpoint, pinning and persisting the first-run start when there is
// none (DESIGN.md §2.5; the engine pins every feed's at once before the first fetches, PinFirstStarts).
func (f *Feed) checkpoint() (store.Checkpoint, error) {
	var cp store.Checkpoint
	// Almost always the checkpoint is there: a read transaction finds it without the two fsyncs
	// (freelist and meta) that bbolt spends on every read-write commit, even an empty one.
	var found bool
	err := f.opt.Store.View(func(tx *store.Tx) error {
		got, ok, err := tx.Checkpoint(f.opt.Instance, f.pol.name())
		if ok && !got.FirstStart.IsZero() {
			cp, found = got, true
		}
		return err
	})
	if err != nil {
		return cp, fmt.Errorf("load checkpoint of %s/%s: %w", f.opt.Instance, f.pol.name(), err)
	}
	if found {
		return cp, nil
	}
	err = f.opt.Store.Update(func(tx *store.Tx) error {
		cp, err = f.pin(tx)
		return err
	})
	if err != nil {
		return cp, fmt.Errorf("load checkpoint of %s/%s: %w", f.opt.Instance, f.pol.name(), err)
	}
	return cp, nil
}

// pin returns the feed's checkpoint in tx, first pinning and storing its first-run start (from
// the feed's clock) when it has none.
func (f *Feed) pin(tx *store.Tx) (store.Checkpoint, error) {
	got, ok, err := tx.Checkpoint(f.opt.Instance, f.pol.name())
	if err != nil || (ok && !got.FirstStart.IsZero()) {
		return got, err
	}
	now := f.opt.Now().UTC()
	got.FirstStart = f.pol.firstStart(now)
	got.UpdatedAt = now
	return got, tx.PutCheckpoint(f.opt.Instance, f.pol.name(), got)
}

// PinFirstStarts pins and persists the first-run start of every feed of feeds that has none yet
// (DESIGN.md §2.5), all in one transaction: what each feed's first fetch would otherwise do in a
// commit of its own, with two fsyncs, one after the other behind the store's one writer. The
// engine calls it just before it starts the feeds, so a thousand tenants start with one commit
// instead of two thousand. It reads the checkpoints with one walk; a feed whose checkpoint does not
// read is left to its first fetch, which reports the error as its own. Every feed must use st.
func PinFirstStarts(st *store.Store, feeds []*Feed) error {
	var missing []*Feed
	err := st.View(func(tx *store.Tx) error {
		pinned := map[[2]string]bool{}
		all, err := tx.Checkpoints()
		for _, e := range all {
			pinned[[2]string{e.Instance, e.Feed}] = !e.Checkpoint.FirstStart.IsZero()
		}
		for _, f := range feeds {
			key := [2]string{f.opt.Instance, f.pol.name()}
			if err != nil {
				// Some checkpoint does not read: look at each feed's own.
				cp, ok, ferr := tx.Checkpoint(key[0], key[1])
				pinned[key] = ferr != nil || ok && !cp.FirstStart.IsZero()
			}
			if !pinned[key] {
				missing = append(missing, f)
			}
		}
		return nil
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	return st.Update(func(tx *store.Tx) error {
		for _, f := range missing {
			if _, err := f.pin(tx); err != nil {
				return fmt.Errorf("pin the first start of %s/%s: %w", f.opt.Instance, f.pol.name(), err)
			}
		}
		return nil
	})
}

// windowStart is the pinned `after` of a new window: the first-run start, or watermark - overlap
// (never earlier than the first-run start).
func (f *Feed) windowStart(cp store.Checkpoint) time.Time {
	if cp.Watermark.IsZero() {
		return cp.FirstStart
	}
	after := cp.Watermark.Add(-f.opt.Fetch.Overlap.D())
	if after.Before(cp.FirstStart) {
		return cp.FirstStart
	}
	return after
}
