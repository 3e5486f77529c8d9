// Package feed pulls one feed of one Wiz tenant into the store: it keeps the window, cursor, overlap
// and dedup logic of DESIGN.md §2–§3 and commits every page, with its events, in one bbolt write
// transaction.
//
// A feed is either the created feed (createdAt after, CREATED_AT ASC, status/severity/type/project
// filters; emits `created`) or the updates feed (statusChangedAt after, STATUS_CHANGED_AT ASC, no status
// filter; emits `updated` on a status change, or `created` for an issue the created feed skipped).
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
	"slices"
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
}

// maxPrefetchAge is how old a prefetched page may be and still be used: older data is not wrong
// (the stale guard and the marks hold for any page), but a fetch should not act on a page read long
// before it started.
const maxPrefetchAge = 10 * time.Second

// Feed is one (instance, feed) pair. Fetch must not be called concurrently on one Feed, nor with
// Close.
type Feed struct {
	opt    Options
	log    *slog.Logger
	stream *pageStream // with Options.Prefetch: the pages of the open window, fetched ahead
	// bufs is a free list of the buffers mapPage encodes a page into: one page is committing, up to
	// three are mapped ahead in the stream. (A sync.Pool would not do: it is emptied at every GC
	// cycle, which runs every few pages.)
	bufs chan *pageBuffers
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
	if opt.Name != Created && opt.Name != Updates {
		return nil, fmt.Errorf("feed: unknown feed %q", opt.Name)
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
	return &Feed{opt: opt, bufs: make(chan *pageBuffers, 4), log: opt.Logger.With("component", "feed", "instance", opt.Instance, "feed", opt.Name)}, nil
}

// Name is the feed's name (Created or Updates).
func (f *Feed) Name() string { return f.opt.Name }

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
		page, mapIncidents, err := f.fetchPage(ctx, cp.WindowAfter, cp.Cursor, limit)
		if err != nil {
			if errors.Is(err, wiz.ErrCursorRejected) && cp.Cursor != "" && res.Restarts < maxCursorRestarts {
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
				f.log.Warn("cursor rejected; restarting window", "after", restart, "err", err)
				cp.WindowAfter, cp.Cursor = restart, ""
				continue
			}
			return res, fmt.Errorf("fetch page %d of %s/%s: %w", res.Pages+1, f.opt.Instance, f.opt.Name, err)
		}
		if page.HasNextPage && page.EndCursor == "" {
			f.dropStream()
			return res, fmt.Errorf("fetch page %d of %s/%s: %w", res.Pages+1, f.opt.Instance, f.opt.Name, ErrMissingCursor)
		}
		if f.stream != nil {
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
		kept := false
		err = f.opt.Store.Update(func(tx *store.Tx) error {
			var err error
			pr, err = f.commitPage(tx, &next, page, incidents, limit-emitted, &delta)
			if err == nil {
				// The sinks may read the page's lines from these buffers (store.Tx.KeepLines),
				// which the store hands back once it is done with them.
				tx.KeepLines(func() { f.recycle(incidents) })
				kept = true
			}
			return err
		})
		if !kept {
			f.recycle(incidents)
		}
		if err != nil {
			return res, fmt.Errorf("commit page %d of %s/%s: %w", res.Pages, f.opt.Instance, f.opt.Name, err)
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
// returns its incidents, mapped. With Options.Prefetch the page comes from the feed's stream (started
// here when there is none, or none at that cursor) and stays at its head until Fetch takes it;
// otherwise it is requested and mapped on the spot.
func (f *Feed) fetchPage(ctx context.Context, after time.Time, cursor string, first int) (*wiz.Page, func() mapped, error) {
	if !f.opt.Prefetch {
		page, err := f.opt.Source.Issues(ctx, f.filter(after), f.order(), first, cursor)
		if err != nil {
			return nil, nil, err
		}
		return page, func() mapped { return f.mapPage(page) }, nil
	}
	for restarted := false; ; restarted = true {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		inherited := f.stream != nil // started by an earlier fetch
		if !inherited {
			f.stream = f.startStream(ctx, after, cursor, first)
		}
		sp, err := f.stream.next(ctx, after, cursor, first)
		if err != nil {
			return nil, nil, err
		}
		if sp == nil {
			f.dropStream()
			if !inherited || restarted {
				// A new stream's first page is the one asked for, so it ended early: ctx ended
				// just before the stream could hand its first page over.
				if err := ctx.Err(); err != nil {
					return nil, nil, err
				}
				return nil, nil, errors.New("feed: a new page stream ended before its first page")
			}
			continue
		}
		if sp.err != nil {
			f.dropStream()
			// A stream cut short by an earlier fetch's context says nothing about this fetch.
			if inherited && !restarted && (errors.Is(sp.err, context.Canceled) || errors.Is(sp.err, context.DeadlineExceeded)) {
				continue
			}
			return nil, nil, sp.err
		}
		return sp.page, func() mapped {
			<-sp.mapped // the mapper closes it for every page, cancelled or not
			if len(sp.incidents.json) != len(sp.page.Issues) {
				// The stream was cancelled (its fetch's context ended) before it mapped this page.
				return f.mapPage(sp.page)
			}
			return sp.incidents
		}, nil
	}
}

// dropStream cancels the feed's stream.
func (f *Feed) dropStream() {
	if f.stream != nil {
		f.stream.cancel()
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
// none (DESIGN.md §2.5).
func (f *Feed) checkpoint() (store.Checkpoint, error) {
	var cp store.Checkpoint
	// Almost always the checkpoint is there: a read transaction finds it without the two fsyncs
	// (freelist and meta) that bbolt spends on every read-write commit, even an empty one.
	var found bool
	err := f.opt.Store.View(func(tx *store.Tx) error {
		got, ok, err := tx.Checkpoint(f.opt.Instance, f.opt.Name)
		if ok && !got.FirstStart.IsZero() {
			cp, found = got, true
		}
		return err
	})
	if err != nil {
		return cp, fmt.Errorf("load checkpoint of %s/%s: %w", f.opt.Instance, f.opt.Name, err)
	}
	if found {
		return cp, nil
	}
	err = f.opt.Store.Update(func(tx *store.Tx) error {
		got, ok, err := tx.Checkpoint(f.opt.Instance, f.opt.Name)
		if err != nil {
			return err
		}
		if ok && !got.FirstStart.IsZero() {
			cp = got
			return nil
		}
		now := f.opt.Now().UTC()
		got.FirstStart = now.Add(-f.opt.Fetch.Overlap.D())
		if f.opt.Name == Created {
			got.FirstStart = now.Add(-f.opt.Fetch.Lookback.D())
		}
		got.UpdatedAt = now
		cp = got
		return tx.PutCheckpoint(f.opt.Instance, f.opt.Name, got)
	})
	if err != nil {
		return cp, fmt.Errorf("load checkpoint of %s/%s: %w", f.opt.Instance, f.opt.Name, err)
	}
	return cp, nil
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

func (f *Feed) filter(after time.Time) wiz.IssueFilter {
	fc := f.opt.Fetch
	flt := wiz.IssueFilter{Severity: fc.Severity, Type: fc.Type, ProjectIDs: fc.ProjectIDs}
	a := after
	if f.opt.Name == Created {
		flt.Status = fc.Status
		flt.CreatedAfter = &a
	} else {
		flt.StatusChangedAfter = &a
	}
	return flt
}

func (f *Feed) order() *wiz.IssueOrder {
	if f.opt.Name == Created {
		return &wiz.IssueOrder{Field: "CREATED_AT", Direction: "ASC"}
	}
	return &wiz.IssueOrder{Field: "STATUS_CHANGED_AT", Direction: "ASC"}
}

// mapped is a page's incidents, mapped and compressed for the store, index for index with its issues.
type mapped struct {
	buf     *pageBuffers    // what json and packed share; recycled once the page is committed
	json    [][]byte        // the incidents' JSON (nil for a rejected node); the store copies what it keeps (see Tx.KeepLines)
	packed  [][]byte        // store.AppendPackedIncident of json[i], handed to the store as is
	created []preparedEvent // the created feed's: each issue's created event, as far as it is known before the commit
	notes   []nodeNote      // nil when no node was rejected or clipped, else one per issue
}

// note returns what mapping found about issue i.
func (m mapped) note(i int) nodeNote {
	if i < len(m.notes) {
		return m.notes[i]
	}
	return nodeNote{}
}

// preparedEvent is what the mapper computes of an issue's `created` event ahead of the commit (which
// only adds emitted_at): its id (a SHA-1 UUID) and the line up to emitted_at.
type preparedEvent struct {
	id   string
	head []byte
}

// pageBuffers are the buffers one page's incidents, their compressed form, their outbox values and
// their prepared event heads are encoded into (about 1 MiB, 300 KiB, 80 KiB and 50 KiB), kept for
// the next page instead of being allocated for every page.
type pageBuffers struct{ json, packed, events, heads []byte }

// mapPage classifies, maps and compresses every node outside the transaction (pure CPU work, done
// by the stream's mapper while earlier pages commit when prefetching).
func (f *Feed) mapPage(page *wiz.Page) mapped {
	out := make([][]byte, len(page.Issues))
	packed := make([][]byte, len(page.Issues))
	size := 0
	for _, raw := range page.Raw {
		// rawJSON is the node escaped as a string (at most incident.MaxRawJSONBytes before
		// escaping), plus the mapped fields.
		size += 2*min(len(raw), incident.MaxRawJSONBytes) + 2048
	}
	var bufs *pageBuffers
	select {
	case bufs = <-f.bufs:
	default:
		bufs = &pageBuffers{}
	}
	buf := slices.Grow(bufs.json[:0], size)
	pk := bufs.packed[:0]
	heads := bufs.heads[:0]
	var fields []incident.CustomField // MapCompact's scratch, reused for every issue
	var created []preparedEvent
	if f.opt.Name == Created { // the updates feed seldom emits a created event: it computes its own
		created = make([]preparedEvent, len(page.Issues))
	}
	var notes []nodeNote
	note := func(i int, n nodeNote) {
		if notes == nil {
			notes = make([]nodeNote, len(page.Issues))
		}
		notes[i] = n
	}
	for i := range page.Issues {
		is := &page.Issues[i]
		var raw []byte
		if i < len(page.Raw) {
			raw = page.Raw[i]
		}
		if rej := checkIssue(is); rej != nil {
			note(i, nodeNote{rej: rej})
			continue
		}
		start := len(buf)
		var clipped int
		var rej *rejection
		if buf, clipped, rej = encodeIncident(f.opt.Mapper, f.opt.Classifier, buf, is, raw, &fields); rej != nil {
			note(i, nodeNote{rej: rej})
			continue
		}
		if clipped > 0 {
			note(i, nodeNote{clipped: clipped})
		}
		out[i] = buf[start:len(buf):len(buf)]
		pstart := len(pk)
		pk = store.AppendPackedIncident(pk, out[i])
		packed[i] = pk[pstart:len(pk):len(pk)]
		if created != nil {
			id := incident.EventID(f.opt.Instance, is.ID, incident.KindCreated, nil)
			hstart := len(heads)
			heads = appendEventHead(heads, EventHeader{
				EventID: id, Kind: incident.KindCreated, Instance: f.opt.Instance, IssueID: is.ID, IssueStatus: is.Status,
			})
			created[i] = preparedEvent{id: id, head: heads[hstart:len(heads):len(heads)]}
		}
	}
	bufs.json, bufs.packed, bufs.events, bufs.heads = buf, pk, slices.Grow(bufs.events[:0], eventArenaPerIssue*len(page.Issues)), heads
	return mapped{buf: bufs, json: out, packed: packed, created: created, notes: notes}
}

// eventArena is the buffer a page's event lines are built in (nil: each line gets its own).
func (m mapped) eventArena() *[]byte {
	if m.buf == nil {
		return nil
	}
	return &m.buf.events
}

// recycle keeps a committed (or abandoned) page's buffers for the next page: nothing refers to them
// once the transaction has ended (the store copied, or bbolt wrote out, what it keeps).
func (f *Feed) recycle(m mapped) {
	if m.buf == nil || cap(m.buf.json)+cap(m.buf.packed)+cap(m.buf.events)+cap(m.buf.heads) > maxPooledBuffers {
		return
	}
	select {
	case f.bufs <- m.buf:
	default:
	}
}

// eventArenaPerIssue is the room a page's event arena starts with per issue: the outbox value of a
// feed's event refers to the stored incident, and holds only the line's prefix and suffix (store
// codecDocRef), a few hundred bytes.
const eventArenaPerIssue = 384

// maxPooledBuffers keeps an unusually large page's buffers out of the free list.
const maxPooledBuffers = 12 << 20

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
			rec.Incident, rec.PackedIncident = incidents.json[i], incidents.packed[i]
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
		var prepared *preparedEvent
		if i < len(incidents.created) {
			prepared = &incidents.created[i]
		}
		if err := emit(tx, EmitInput{
			Instance: f.opt.Instance, Kind: kind, Issue: is, Incident: incidents.json[i], Packed: incidents.packed[i],
			Previous: rec, Sinks: f.opt.Sinks, Now: now, Arena: incidents.eventArena(),
		}, prepared); err != nil {
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
